"""The optimizer registry: which name selects which plugin's optimizer, checking and building it.

Nothing here imports jax or optax at module level: listing optimizers and ``--help`` stay fast.

Names: every optimizer is reachable as ``"<dist>:<name>"`` (``snake-ppo-jax:muon``). The plain
name selects our own distribution's optimizer if it has one (another plugin's is then reachable
only qualified, with a warning); otherwise the only plugin's that registered it; if two or more
did, the plain name is ambiguous (a one-line error listing the qualified names). No rule depends
on load order, so ``sys.path`` order cannot change the result.

Checking: each setting once on each path. :meth:`OptimizerRegistry.build` checks everything
(the hyperparameters through :meth:`~OptimizerRegistry.validate`, i.e. ``HyperParam.validate``,
the learning rate and the clip) and then builds; a caller that has checked them already (the
trainer) passes :meth:`~OptimizerRegistry.validate`'s result to
:meth:`~OptimizerRegistry.build_validated`, which builds without checking again.

Contracts: each optimizer is called by the plugin API it was written for (``plugins.api``); an
optimizer on the deprecated API 1 clips itself, so the registry does not clip it again, and its
plugin is warned once per process (:class:`~plugins.api.PluginAPIDeprecationWarning`).
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from plugins import api
from plugins.errors import (
    AmbiguousOptimizerError,
    HyperParameterError,
    OptimizerError,
    PluginAPIError,
    UnknownOptimizerError,
)
from plugins.hyperparams import is_schedule
from plugins.loader import (
    OptimizerInfo,
    Plugin,
    collect,
    load_plugins,
    normalize_dist,
    plugin_manager,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import optax

ALWAYS_RESERVED = frozenset({"learning_rate", "max_grad_norm", "schedule"})
"""Keyword arguments of :meth:`OptimizerRegistry.build`; no plugin may declare them."""

_DEPRECATION_WARNED: set[str] = set()
"""Keys of the plugins already warned about a deprecated plugin API in this process."""


@dataclass
class OptimizerRegistry:
    """Optimizers registered by plugins; built by :func:`make_registry` / :func:`get_registry`."""

    _qualified: dict[str, OptimizerInfo] = field(default_factory=dict)
    _plain: dict[str, OptimizerInfo] = field(default_factory=dict)
    _ambiguous: dict[str, list[str]] = field(default_factory=dict)
    _refused: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """One line per plugin problem (each also emitted as a ``RuntimeWarning``) or deprecation
    (emitted as a ``PluginAPIDeprecationWarning``, once per plugin per process)."""

    def names(self) -> list[str]:
        """Every name :meth:`get` accepts, sorted: the plain names, and the qualified names of
        optimizers no plain name selects (shadowed by a built-in, or ambiguous)."""
        plain = {id(info) for info in self._plain.values()}
        hidden = [q for q, info in self._qualified.items() if id(info) not in plain]
        return sorted([*self._plain, *hidden])

    def __contains__(self, name: object) -> bool:
        try:
            return bool(self.get(str(name)))
        except OptimizerError:
            return False

    def get(self, name: str) -> OptimizerInfo:
        """The optimizer called ``name``, a plain or a qualified (``dist:name``) name.

        Raises:
          AmbiguousOptimizerError: two third-party plugins registered the plain ``name``.
          PluginAPIError: a plugin registered it, but for a plugin API this registry refused.
          UnknownOptimizerError: nothing did; the message lists the available names.
        """
        dist, colon, short = name.rpartition(":")
        found = self._qualified.get(f"{normalize_dist(dist)}:{short}") if colon else None
        if found or (found := self._plain.get(name)):
            return found
        if name in self._ambiguous:
            raise AmbiguousOptimizerError(_ambiguity(name, self._ambiguous[name]))
        refused = self._refused.get(f"{normalize_dist(dist)}:{short}" if colon else name)
        if refused:  # installed, but written for a contract we cannot serve: say so, not "unknown"
            raise PluginAPIError(refused)
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        available = ", ".join(self.names()) or "none"
        raise UnknownOptimizerError(f"unknown optimizer {name!r}{hint}; available: {available}")

    def validate(self, name: str, /, **hyperparams: Any) -> dict[str, Any]:
        """All declared hyperparameters of ``name``: defaults overlaid with checked ``hyperparams``.

        Cheap (no jax), so a CLI can reject bad values before compiling anything.
        """
        declared = {hp.name: hp for hp in self.get(name).hyperparams}
        unknown = sorted(set(hyperparams) - set(declared))
        if unknown:
            accepted = ", ".join(declared) or "none"
            raise HyperParameterError(
                f"optimizer {name!r} has no hyperparameter {unknown[0]!r}; it accepts: {accepted}"
            )
        return {
            key: hp.validate(hyperparams.get(key, hp.default), optimizer=name)
            for key, hp in declared.items()
        }

    def build(
        self,
        name: str,
        /,
        *,
        learning_rate: float | Callable[[Any], Any],
        max_grad_norm: float | None = None,
        schedule: Callable[[float], Callable[[Any], Any]] | None = None,
        **hyperparams: Any,
    ) -> optax.GradientTransformation:
        """``clip_by_global_norm(max_grad_norm)`` then optimizer ``name``, as one transformation.

        Everything is checked first, here and nowhere else: the hyperparameters by
        :meth:`validate`, the learning rate (a float > 0 or a schedule) and the clip (``None``
        or >= 0). Then :meth:`build_validated` schedules, calls the factory and adds the clip.

        Raises:
          UnknownOptimizerError, AmbiguousOptimizerError, HyperParameterError, OptimizerError.
        """
        values = self.validate(name, **hyperparams)
        _check_learning_rate(name, learning_rate)
        _check_clip(name, max_grad_norm)
        return self.build_validated(
            name, values, learning_rate=learning_rate, max_grad_norm=max_grad_norm,
            schedule=schedule,
        )

    def build_validated(
        self,
        name: str,
        hyperparams: Mapping[str, Any],
        /,
        *,
        learning_rate: float | Callable[[Any], Any],
        max_grad_norm: float | None = None,
        schedule: Callable[[float], Callable[[Any], Any]] | None = None,
    ) -> optax.GradientTransformation:
        """:meth:`build` for values already checked, which it does not check again.

        ``hyperparams`` is what :meth:`validate` returned for ``name`` (every declared one);
        ``learning_rate`` and ``max_grad_norm`` were checked by the caller (the trainer's
        ``TrainConfig.validate`` checks ``--lr`` and ``--max-grad-norm``). ``schedule(float) ->
        optax schedule`` (e.g. a linear decay), if given, replaces the float learning rate and
        every float schedulable hyperparameter; then the factory is called with
        ``learning_rate`` and every declared hyperparameter. The clip is applied here, once, so
        that no plugin can forget it; ``max_grad_norm`` None or 0: no clip. A factory on the
        deprecated plugin API 1 gets ``max_grad_norm`` too and applies the clip itself, so it is
        not added here (never twice).
        """
        # optax only now: listing, --help and validate() must not import jax or optax.
        import optax

        info = self.get(name)
        learning_rate, values = _scheduled(info, learning_rate, dict(hyperparams), schedule)
        clips_itself = info.api == 1
        if clips_itself:
            values["max_grad_norm"] = None if max_grad_norm is None else float(max_grad_norm)
        try:
            tx = info.factory(learning_rate=learning_rate, **values)
        except (TypeError, ValueError) as exc:
            raise HyperParameterError(
                f"optimizer {name!r} ({info.plugin}) rejected its hyperparameters: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(tx, optax.GradientTransformation):
            raise OptimizerError(
                f"optimizer {name!r} ({info.plugin}): the factory returned a "
                f"{type(tx).__name__}, not an optax.GradientTransformation"
            )
        if clips_itself or not max_grad_norm:
            return tx
        return optax.chain(optax.clip_by_global_norm(max_grad_norm), tx)

    def format_table(self) -> str:
        """A plain-text listing for ``ppo-train --list-optimizers``."""
        lines = []
        for name in self.names():
            info = self.get(name)
            old = f"  (plugin API {info.api}, deprecated)" if info.api < api.PLUGIN_API else ""
            lines.append(f"{name}  [{info.distribution}]  {info.description}{old}".rstrip())
            for hp in info.hyperparams:
                extra = f" {{{','.join(map(str, hp.choices))}}}" if hp.choices else ""
                sched = " (schedulable)" if hp.schedulable else ""
                lines.append(
                    f"    {hp.flag} {hp.type.__name__}{extra} = {hp.default!r}{sched}: {hp.help}"
                )
        return "\n".join(lines)

    def _warn(self, message: str) -> None:
        message = " ".join(message.split())  # pluggy's validation messages span several lines
        self.warnings.append(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _deprecate(self, plugin: Plugin, optimizers: list[str]) -> None:
        message = api.deprecation(str(plugin), optimizers)
        self.warnings.append(message)
        if plugin.key not in _DEPRECATION_WARNED:
            _DEPRECATION_WARNED.add(plugin.key)
            warnings.warn(message, api.PluginAPIDeprecationWarning, stacklevel=3)

    def _add(self, info: OptimizerInfo, reserved: frozenset[str]) -> OptimizerInfo | None:
        """Register ``info`` under the contract it was written for; the added info, or ``None``
        (refused, with a warning)."""
        try:
            info = replace(
                info, api=api.resolve_api(info.declared_api, info.factory, optimizer=info.name)
            )
        except PluginAPIError as exc:
            message = f"{info.plugin}: {exc}"
            self._refused.setdefault(info.qualified_name, message)
            self._refused.setdefault(info.name, message)
            self._warn(message)
            return None
        clash = [hp.name for hp in info.hyperparams if hp.name in reserved]
        if clash:
            self._warn(
                f"{info.plugin}: optimizer {info.name!r} is not registered: its hyperparameter "
                f"{clash[0]!r} is reserved by the application"
            )
        elif info.qualified_name in self._qualified:
            self._warn(
                f"{info.plugin}: optimizer {info.qualified_name!r} is already registered by "
                f"{self._qualified[info.qualified_name].plugin}; this one is ignored"
            )
        else:
            self._qualified[info.qualified_name] = info
            return info
        return None

    def _assign_plain_names(self) -> None:
        by_name: dict[str, list[OptimizerInfo]] = {}
        for qualified in sorted(self._qualified):
            by_name.setdefault(self._qualified[qualified].name, []).append(
                self._qualified[qualified]
            )
        for name, infos in sorted(by_name.items()):
            builtin = [info for info in infos if info.plugin.builtin]
            if len(infos) > 1 and not builtin:
                self._ambiguous[name] = [info.qualified_name for info in infos]
                self._warn(_ambiguity(name, self._ambiguous[name]))
                continue
            self._plain[name] = (builtin or infos)[0]
            for other in infos:
                if other is not self._plain[name]:
                    self._warn(
                        f"{other.plugin}: optimizer {name!r} is a built-in name; this one is "
                        f"available only as --optimizer {other.qualified_name}"
                    )


def _check_learning_rate(name: str, learning_rate: Any) -> None:
    """``HyperParameterError`` unless ``learning_rate`` is a float > 0 (finite) or a schedule."""
    if is_schedule(learning_rate):
        return
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float) or not (
        0 < learning_rate < math.inf
    ):
        raise HyperParameterError(
            f"optimizer {name!r}: the learning rate (--lr) must be a float > 0 or a schedule, "
            f"got {learning_rate!r}"
        )


def _check_clip(name: str, max_grad_norm: Any) -> None:
    """``HyperParameterError`` unless ``max_grad_norm`` is ``None`` or a number >= 0."""
    if max_grad_norm is not None and (
        isinstance(max_grad_norm, bool)
        or not isinstance(max_grad_norm, int | float)
        or not max_grad_norm >= 0
    ):
        raise HyperParameterError(
            f"optimizer {name!r}: max_grad_norm (--max-grad-norm) must be >= 0 "
            f"(0 or None: no clipping), got {max_grad_norm!r}"
        )


def _scheduled(
    info: OptimizerInfo,
    learning_rate: Any,
    values: dict[str, Any],
    schedule: Callable[[float], Callable[[Any], Any]] | None,
) -> tuple[Any, dict[str, Any]]:
    """The learning rate as a float (or the schedule given), and, with ``schedule``, it and
    every float schedulable hyperparameter in ``values`` turned into schedules."""
    if not is_schedule(learning_rate):
        learning_rate = float(learning_rate)
    if schedule is None:
        return learning_rate, values
    if isinstance(learning_rate, float):
        learning_rate = schedule(learning_rate)
    for hp in info.hyperparams:
        if hp.schedulable and isinstance(values[hp.name], float):
            values[hp.name] = schedule(values[hp.name])
    return learning_rate, values


def _ambiguity(name: str, qualified: list[str]) -> str:
    choices = " or ".join(f"--optimizer {q}" for q in qualified)
    return f"optimizer name {name!r} is registered by {len(qualified)} plugins; use {choices}"


def make_registry(
    *, entry_points: bool = True, builtins: bool = True, reserved: Iterable[str] = ()
) -> OptimizerRegistry:
    """Build a fresh registry (tests, embedding); applications use :func:`get_registry`.

    Args:
      entry_points: load the plugins declared in the ``ppo_trainer.optimizers`` group.
      builtins: import our built-ins by module name where their entry points are missing.
      reserved: names of the application's own flags (``seed``, ``lr``, ...); an optimizer
        declaring a hyperparameter of that name is rejected with a warning, since its flag would
        clash. :data:`ALWAYS_RESERVED` is added.
    """
    registry = OptimizerRegistry()
    loaded, problems = load_plugins(entry_points=entry_points, builtins=builtins)
    for problem in problems:
        registry._warn(problem)
    pm = plugin_manager()
    for plugin in loaded:
        infos, problem = collect(pm, plugin)
        if problem:
            registry._warn(problem)
        added = [registry._add(info, ALWAYS_RESERVED | frozenset(reserved)) for info in infos]
        old = [info.name for info in added if info is not None and info.api < api.PLUGIN_API]
        if old:
            registry._deprecate(plugin, old)
    registry._assign_plain_names()
    return registry


_REGISTRIES: dict[frozenset[str], OptimizerRegistry] = {}


def get_registry(*, reserved: Iterable[str] = (), reload: bool = False) -> OptimizerRegistry:
    """The process-wide registry for this set of ``reserved`` names, built on first use.

    ``reload=True`` forgets every cached registry and builds this one again.
    """
    key = frozenset(reserved)
    if reload:
        _REGISTRIES.clear()
    if key not in _REGISTRIES:
        _REGISTRIES[key] = make_registry(reserved=key)
    return _REGISTRIES[key]
