"""The optimizer registry: plugin loading, hyperparameter declarations and validation.

Nothing here imports jax or optax: listing optimizers and building ``--help`` must stay fast.
Factories import them lazily when an optimizer is built.
"""

from __future__ import annotations

import difflib
import importlib
import keyword
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from plugins import hookspecs

if TYPE_CHECKING:  # pragma: no cover - typing only
    import optax

ENTRY_POINT_GROUP = "ppo_trainer.optimizers"
"""The entry-point group third-party packages declare their optimizer plugin modules in."""

BUILTIN_PLUGINS: Mapping[str, str] = {
    "adam": "optimizers.adam_plugin",
    "muon": "optimizers.muon_plugin",
}
"""Entry-point name -> module of the built-ins (also declared as entry points in pyproject)."""

SOURCE_TREE = "<source tree>"
"""The distribution reported for a built-in registered by module name (no dist-info found)."""

RESERVED_NAMES = frozenset({"learning_rate", "max_grad_norm"})
"""Factory arguments set by the trainer (``--lr``, ``--max-grad-norm``); not declarable."""

_TYPES = (float, int, bool, str)


class OptimizerError(ValueError):
    """Base class of registry errors; ``str()`` is a complete one-line message for the CLI."""


class UnknownOptimizerError(OptimizerError):
    """No optimizer is registered under the requested name."""


class DuplicateOptimizerError(OptimizerError):
    """Two plugins registered the same optimizer name; neither is used."""


class HyperParameterError(OptimizerError):
    """A hyperparameter is unknown, of the wrong type, or out of range."""


class PluginLoadError(OptimizerError):
    """A plugin failed to import, its hook raised, or it registered something malformed."""


def _type_name(tp: type) -> str:
    return getattr(tp, "__name__", str(tp))


def _is_schedule(value: Any) -> bool:
    return callable(value) and not isinstance(value, type)


@dataclass(frozen=True)
class HyperParam:
    """One declared hyperparameter of an optimizer; the CLI makes ``--<name-with-dashes>`` of it.

    Attributes:
      name: a Python identifier (``muon_lr``), the factory's keyword argument.
      type: ``float``, ``int``, ``bool`` or ``str`` (an argparse ``type``).
      default: the value used when the user gives none; ``None`` means "not set" and is allowed
        only as a default (the help text says what ``None`` means).
      help: one line for ``--help``.
      choices: allowed values, or ``None``.
      schedulable: ``True`` for a learning rate the trainer may turn into an ``optax`` schedule;
        such a parameter also accepts a callable ``schedule(count) -> value``.
      minimum / maximum: inclusive bounds (JSON-Schema names), or ``None``.
      exclusive_minimum / exclusive_maximum: strict bounds, or ``None``.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: Sequence[Any] | None = None
    schedulable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None

    def __post_init__(self) -> None:
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def flag(self) -> str:
        """The CLI flag, ``--`` plus the name with dashes."""
        return "--" + self.name.replace("_", "-")

    def check_declaration(self) -> None:
        """Raise ``ValueError`` if the declaration itself is malformed (a plugin bug)."""
        if not (isinstance(self.name, str) and self.name.isidentifier()) or keyword.iskeyword(
            self.name
        ):
            raise ValueError(f"hyperparameter name {self.name!r} is not a Python identifier")
        if self.name in RESERVED_NAMES:
            raise ValueError(
                f"hyperparameter name {self.name!r} is reserved for the trainer "
                f"({', '.join(sorted(RESERVED_NAMES))})"
            )
        if self.type not in _TYPES:
            raise ValueError(
                f"hyperparameter {self.name!r} has type {self.type!r}; use float, int, bool or str"
            )
        if self.schedulable and self.type is not float:
            raise ValueError(f"schedulable hyperparameter {self.name!r} must have type float")
        if self.default is not None:
            self.validate(self.default, optimizer="<declaration>")

    def validate(self, value: Any, *, optimizer: str) -> Any:
        """Return ``value`` converted to the declared type, or raise :class:`HyperParameterError`.

        Accepted: an ``int`` for a ``float`` (converted), a callable schedule for a schedulable
        parameter, and ``None`` where the default is ``None``. ``bool`` is never a number.
        """
        where = f"optimizer {optimizer!r}: hyperparameter {self.name!r} ({self.flag})"
        if value is None:
            if self.default is None:
                return None
            raise HyperParameterError(f"{where} must be a {_type_name(self.type)}, got None")
        if self.schedulable and _is_schedule(value):
            return value
        tp = self.type
        ok = isinstance(value, tp) and (tp is bool or not isinstance(value, bool))
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            kind = f"{_type_name(tp)} or a schedule" if self.schedulable else _type_name(tp)
            raise HyperParameterError(
                f"{where} must be a {kind}, got {type(value).__name__} {value!r}"
            )
        if tp is float and not math.isfinite(value):
            raise HyperParameterError(f"{where} must be finite, got {value!r}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise HyperParameterError(f"{where} must be one of {allowed}; got {value!r}")
        bounds = (
            (self.minimum, lambda v, b: v >= b, ">="),
            (self.exclusive_minimum, lambda v, b: v > b, ">"),
            (self.maximum, lambda v, b: v <= b, "<="),
            (self.exclusive_maximum, lambda v, b: v < b, "<"),
        )
        for bound, holds, op in bounds:
            if bound is not None and not holds(value, bound):
                raise HyperParameterError(f"{where} must be {op} {bound}, got {value!r}")
        return value


@dataclass(frozen=True)
class OptimizerInfo:
    """A registered optimizer: what the CLI lists and the trainer builds."""

    name: str
    factory: Callable[..., optax.GradientTransformation]
    hyperparams: tuple[HyperParam, ...] = ()
    description: str = ""
    plugin: str = ""
    distribution: str | None = None

    def defaults(self) -> dict[str, Any]:
        """The declared hyperparameters and their defaults."""
        return {hp.name: hp.default for hp in self.hyperparams}

    def hyperparam(self, name: str) -> HyperParam:
        """The declaration of one hyperparameter (``KeyError`` if undeclared)."""
        for hp in self.hyperparams:
            if hp.name == name:
                return hp
        raise KeyError(name)

    @property
    def source(self) -> str:
        """``plugin (distribution)`` for messages."""
        return f"plugin {self.plugin!r} from {self.distribution or 'no distribution'}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class OptimizerRegistry:
    """Optimizers registered by plugins, with their declared hyperparameters.

    Built by :func:`make_registry`; use the cached :func:`get_registry` in applications.
    """

    _optimizers: dict[str, OptimizerInfo] = field(default_factory=dict)
    _conflicts: dict[str, list[OptimizerInfo]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    # --- queries -------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The buildable optimizer names, sorted (names claimed by two plugins are left out)."""
        return sorted(self._optimizers)

    def __contains__(self, name: object) -> bool:
        return name in self._optimizers

    def __iter__(self) -> Iterator[OptimizerInfo]:
        return iter(self._optimizers[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._optimizers)

    def get(self, name: str) -> OptimizerInfo:
        """The optimizer registered as ``name``.

        Raises:
          DuplicateOptimizerError: two plugins registered ``name``.
          UnknownOptimizerError: nothing did; the message lists the available names.
        """
        if name in self._conflicts:
            raise DuplicateOptimizerError(_duplicate_message(name, self._conflicts[name]))
        try:
            return self._optimizers[name]
        except KeyError:
            pass
        available = ", ".join(self.names()) or "none"
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownOptimizerError(
            f"unknown optimizer {name!r}{hint}; available: {available}"
        ) from None

    def validate(self, name: str, **hyperparams: Any) -> dict[str, Any]:
        """All declared hyperparameters of ``name``: defaults overlaid with checked ``hyperparams``.

        Cheap (no jax), so a CLI can reject bad values before compiling anything.
        """
        info = self.get(name)
        declared = {hp.name: hp for hp in info.hyperparams}
        unknown = sorted(set(hyperparams) - set(declared))
        if unknown:
            accepted = ", ".join(declared) or "none"
            raise HyperParameterError(
                f"optimizer {name!r} has no hyperparameter {unknown[0]!r}; it accepts: {accepted}"
            )
        return {
            hp_name: hp.validate(hyperparams.get(hp_name, hp.default), optimizer=name)
            for hp_name, hp in declared.items()
        }

    def schedulable(self, name: str) -> list[str]:
        """Names of the hyperparameters of ``name`` the trainer may anneal (besides ``--lr``)."""
        return [hp.name for hp in self.get(name).hyperparams if hp.schedulable]

    def build(
        self,
        name: str,
        *,
        learning_rate: float | Callable[[Any], Any],
        max_grad_norm: float | None = None,
        schedule: Callable[[float], Callable[[Any], Any]] | None = None,
        **hyperparams: Any,
    ) -> optax.GradientTransformation:
        """Build optimizer ``name`` into an ``optax.GradientTransformation``.

        Args:
          name: a registered optimizer name.
          learning_rate: ``--lr``, a float > 0 or an optax schedule.
          max_grad_norm: ``--max-grad-norm`` (> 0); ``None`` or ``0`` disables the clip.
          schedule: optional ``float -> schedule`` (e.g. a linear decay) applied to the learning
            rate and to every schedulable hyperparameter that is a float (annealing).
          **hyperparams: the optimizer's declared hyperparameters; the rest take defaults.

        Raises:
          UnknownOptimizerError, DuplicateOptimizerError, HyperParameterError.
        """
        info = self.get(name)
        values = self.validate(name, **hyperparams)
        if not _is_schedule(learning_rate):
            if not (_number(learning_rate) and learning_rate > 0 and math.isfinite(learning_rate)):
                raise HyperParameterError(
                    f"optimizer {name!r}: the learning rate (--lr) must be a float > 0 or a "
                    f"schedule, got {learning_rate!r}"
                )
            learning_rate = float(learning_rate)
        if max_grad_norm is not None:
            if not (_number(max_grad_norm) and max_grad_norm >= 0):
                raise HyperParameterError(
                    f"optimizer {name!r}: max_grad_norm (--max-grad-norm) must be >= 0 "
                    f"(0 or None: no clipping), got {max_grad_norm!r}"
                )
            max_grad_norm = float(max_grad_norm)
        if schedule is not None:
            if isinstance(learning_rate, float):
                learning_rate = schedule(learning_rate)
            for hp in info.hyperparams:
                if hp.schedulable and isinstance(values[hp.name], float):
                    values[hp.name] = schedule(values[hp.name])
        try:
            return info.factory(learning_rate=learning_rate, max_grad_norm=max_grad_norm, **values)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, OptimizerError):
                raise
            raise HyperParameterError(
                f"optimizer {name!r} ({info.source}) rejected its hyperparameters: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def format_table(self) -> str:
        """A plain-text listing for ``ppo-train --list-optimizers``."""
        lines = []
        for info in self:
            lines.append(f"{info.name}  [{info.source}]  {info.description}".rstrip())
            for hp in info.hyperparams:
                extra = f" {{{','.join(map(str, hp.choices))}}}" if hp.choices else ""
                sched = " (schedulable)" if hp.schedulable else ""
                lines.append(
                    f"    {hp.flag} {_type_name(hp.type)}{extra} = {hp.default!r}{sched}: {hp.help}"
                )
        return "\n".join(lines)

    # --- registration ----------------------------------------------------------------------
    def _add(self, info: OptimizerInfo) -> None:
        if info.name in self._conflicts:
            self._conflicts[info.name].append(info)
            message = _duplicate_message(info.name, self._conflicts[info.name])
        elif info.name in self._optimizers:
            first = self._optimizers.pop(info.name)
            self._conflicts[info.name] = [first, info]
            message = _duplicate_message(info.name, self._conflicts[info.name])
        else:
            self._optimizers[info.name] = info
            return
        self._warn(message)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _duplicate_message(name: str, infos: Sequence[OptimizerInfo]) -> str:
    who = " and ".join(sorted(info.source for info in infos))
    return f"optimizer name {name!r} is registered by both {who}; neither is used"


def _check_registration(
    name: Any, factory: Any, hyperparams: Any, description: Any
) -> tuple[HyperParam, ...]:
    if not isinstance(name, str) or not name or not name.replace("-", "_").isidentifier():
        raise ValueError(f"optimizer name {name!r} must be a non-empty identifier-like string")
    if not callable(factory):
        raise ValueError(f"factory of optimizer {name!r} is not callable")
    if not isinstance(description, str):
        raise ValueError(f"description of optimizer {name!r} must be a str")
    hps = tuple(hyperparams)
    seen: set[str] = set()
    for hp in hps:
        if not isinstance(hp, HyperParam):
            raise ValueError(
                f"optimizer {name!r}: hyperparams must be plugins.HyperParam, got {hp!r}"
            )
        hp.check_declaration()
        if hp.name in seen:
            raise ValueError(f"optimizer {name!r} declares hyperparameter {hp.name!r} twice")
        seen.add(hp.name)
    return hps


def _distribution_name(dist: Any) -> str:
    meta = getattr(dist, "metadata", None)
    name = meta["Name"] if meta is not None and "Name" in meta else getattr(dist, "name", None)
    version = getattr(dist, "version", None)
    return f"{name} {version}" if version else str(name)


def _entry_points_by_name() -> dict[str, list[str]]:
    """Entry-point name -> distributions declaring it in our group (to report shadowing)."""
    import importlib.metadata

    found: dict[str, list[str]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        found.setdefault(ep.name, []).append(_distribution_name(dist) if dist else "unknown")
    return found


def make_plugin_manager(
    registry: OptimizerRegistry, *, entry_points: bool = True, builtins: bool = True
) -> pluggy.PluginManager:
    """A plugin manager with entry-point plugins and (as fallback) the built-ins loaded.

    Entry points are loaded with ``load_setuptools_entrypoints(ENTRY_POINT_GROUP)``; if one
    fails to import, it is reported, blocked, and loading resumes (pluggy skips the names
    already registered or blocked). A built-in whose entry point was not found (running from a
    source tree without dist-info) is then registered by module name; one already registered
    through its entry point is skipped, so nothing is registered twice.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if entry_points:
        declared = _entry_points_by_name()
        for ep_name, dists in declared.items():
            if len(dists) > 1:
                registry._warn(
                    f"optimizer plugin entry point {ep_name!r} is declared by {' and '.join(dists)}; "
                    f"only the first is loaded"
                )
        pending = list(declared)
        while True:
            try:
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
                break
            except Exception as exc:  # a plugin module failed to import: find, block, go on
                failed = _first_unloaded(pm, pending)
                if failed is None:  # cannot attribute the failure: report it and stop loading
                    registry._warn(f"loading optimizer plugins failed: {type(exc).__name__}: {exc}")
                    break
                registry._warn(
                    str(
                        PluginLoadError(
                            f"optimizer plugin {failed!r} from {' and '.join(declared[failed])} failed to "
                            f"import: {type(exc).__name__}: {exc}"
                        )
                    )
                )
                pm.set_blocked(failed)
                pending.remove(failed)
    if builtins:
        for ep_name, module_name in BUILTIN_PLUGINS.items():
            if pm.has_plugin(ep_name) or pm.is_blocked(ep_name):
                continue
            try:
                pm.register(importlib.import_module(module_name), name=ep_name)
            except Exception as exc:
                registry._warn(
                    str(
                        PluginLoadError(
                            f"built-in optimizer plugin {ep_name!r} ({module_name}) failed to import: "
                            f"{type(exc).__name__}: {exc}"
                        )
                    )
                )
    return pm


def _first_unloaded(pm: pluggy.PluginManager, names: Sequence[str]) -> str | None:
    """The first declared entry point, in load order, that is neither registered nor blocked.

    ``load_setuptools_entrypoints`` loads in the order of ``importlib.metadata.distributions()``;
    the entry point it was importing when it raised is the first one still missing in that order.
    """
    import importlib.metadata

    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP and ep.name in names:
                if not pm.has_plugin(ep.name) and not pm.is_blocked(ep.name):
                    return ep.name
    return None


def _collect(pm: pluggy.PluginManager, registry: OptimizerRegistry) -> None:
    """Call each plugin's hook on its own, so one raising hook does not hide the others and each
    registration is attributed to its plugin and distribution."""
    dists = {
        id(plugin): _distribution_name(dist) for plugin, dist in pm.list_plugin_distributions()
    }
    for impl in pm.hook.register_optimizers.get_hookimpls():  # in registration order
        plugin_name = impl.plugin_name
        dist = dists.get(id(impl.plugin))
        if dist is None and plugin_name in BUILTIN_PLUGINS:
            dist = SOURCE_TREE
        batch: list[OptimizerInfo] = []

        def register(
            name: str,
            factory: Callable[..., Any],
            hyperparams: Sequence[HyperParam] = (),
            description: str = "",
            *,
            _batch: list[OptimizerInfo] = batch,
            _plugin: str = plugin_name,
            _dist: str | None = dist,
        ) -> None:
            hps = _check_registration(name, factory, hyperparams, description)
            _batch.append(OptimizerInfo(name, factory, hps, description, _plugin, _dist))

        try:
            impl.function(register=register)
        except Exception as exc:
            registry._warn(
                str(
                    PluginLoadError(
                        f"optimizer plugin {plugin_name!r} from {dist or 'no distribution'} failed in "
                        f"register_optimizers: {type(exc).__name__}: {exc}"
                    )
                )
            )
            continue
        for info in batch:
            registry._add(info)


def make_registry(
    plugins: Sequence[ModuleType | object] = (),
    *,
    entry_points: bool = True,
    builtins: bool = True,
) -> OptimizerRegistry:
    """Build a fresh registry (tests, embedding). Applications use :func:`get_registry`.

    Args:
      plugins: extra plugin objects (modules with a ``register_optimizers`` hookimpl) to
        register directly, after the entry points and built-ins.
      entry_points: load the ``ppo_trainer.optimizers`` entry points.
      builtins: register the built-ins by module name where their entry points are missing.
    """
    registry = OptimizerRegistry()
    pm = make_plugin_manager(registry, entry_points=entry_points, builtins=builtins)
    for plugin in plugins:
        name = getattr(plugin, "__name__", None) or repr(plugin)
        try:
            pm.register(plugin, name=name)
        except Exception as exc:
            registry._warn(
                str(
                    PluginLoadError(
                        f"optimizer plugin {name!r} could not be registered: {type(exc).__name__}: {exc}"
                    )
                )
            )
    _collect(pm, registry)
    return registry


_REGISTRY: OptimizerRegistry | None = None


def get_registry(*, reload: bool = False) -> OptimizerRegistry:
    """The process-wide registry (built on first use; ``reload=True`` rebuilds it)."""
    global _REGISTRY
    if _REGISTRY is None or reload:
        _REGISTRY = make_registry()
    return _REGISTRY
