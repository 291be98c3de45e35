"""Loading plugins from entry points: every entry point of a group in a fixed order, each isolated.

:func:`load_entry_points` serves any entry-point group: optimizers (:data:`ENTRY_POINT_GROUP`),
presets (``ppo_trainer.presets``) and whatever comes next. It iterates
``importlib.metadata.entry_points(group=...)`` itself, in a fixed order (a given distribution
first, then sorted by distribution and entry-point name), loads each one in its own ``try`` (a
failing load costs only that entry point) and keys each by ``"<distribution>:<entry point>"``.

Not pluggy's ``load_setuptools_entrypoints``: that keys a plugin by its entry-point name alone
(a broken third-party ``muon`` entry point would block our own ``muon``) and loads in
``sys.path`` order. For optimizers, pluggy supplies the hook spec, the markers, hook validation
and the call (:func:`collect`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

from plugins import hookspecs
from plugins.api import PLUGIN_API
from plugins.hyperparams import HyperParam, check_declarations

ENTRY_POINT_GROUP = "ppo_trainer.optimizers"
"""The entry-point group a package declares its optimizer plugin modules in."""

BUILTIN_DISTRIBUTION = "snake-ppo-jax"
"""Our own distribution: its optimizers keep their plain names whatever else is installed."""

BUILTIN_PLUGINS: Mapping[str, str] = {
    "adam": "optimizers.adam_plugin",
    "muon": "optimizers.muon_plugin",
}
"""Our entry points (declared in pyproject.toml), imported by module name when a source tree
runs without our dist-info."""


def normalize_dist(name: str) -> str:
    """The PEP 503 form of a distribution name (``PPO_Optimizer.Lion`` -> ``ppo-optimizer-lion``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclasses.dataclass(frozen=True)
class Plugin:
    """A plugin module and where it came from; ``str()`` names it in messages."""

    dist: str  # normalized distribution name
    version: str | None  # None: a built-in imported from the source tree
    entry_point: str
    module: Any = None

    @property
    def key(self) -> str:
        """``"<dist>:<entry point>"``: unique, so one plugin can never block another."""
        return f"{self.dist}:{self.entry_point}"

    @property
    def builtin(self) -> bool:
        """Whether it comes from our own distribution."""
        return self.dist == BUILTIN_DISTRIBUTION

    @property
    def source(self) -> str:
        """``"<dist> <version>"``, or ``"<dist> (source tree)"``."""
        return f"{self.dist} {'(source tree)' if self.version is None else self.version}"

    def __str__(self) -> str:
        return f"optimizer plugin {self.entry_point!r} from {self.source}"


@dataclasses.dataclass(frozen=True)
class OptimizerInfo:
    """One optimizer a plugin registered: what the CLI lists and the trainer builds.

    ``declared_api`` is what the plugin said (``register(plugin_api=)``, else its module's
    ``PLUGIN_API``, else ``None``); ``api`` is the contract the registry calls the factory with
    (see :mod:`plugins.api`).
    """

    name: str
    factory: Callable[..., Any]
    hyperparams: tuple[HyperParam, ...]
    description: str
    plugin: Plugin
    declared_api: Any = None
    api: int = PLUGIN_API

    @property
    def qualified_name(self) -> str:
        """``"<dist>:<name>"``, which always selects this optimizer."""
        return f"{self.plugin.dist}:{self.name}"

    @property
    def distribution(self) -> str:
        """``"<dist> <version>"`` (or ``"<dist> (source tree)"``) for listings."""
        return self.plugin.source


@dataclasses.dataclass(frozen=True)
class Loaded:
    """One entry point of a group, loaded: where it came from and what it gave, or why not.

    ``dist_name`` is the distribution's name as it spells it (``None``: no distribution);
    ``version`` is ``None`` for a built-in imported by module name from a source tree.
    """

    name: str
    value: str
    dist_name: str | None
    version: str | None
    obj: Any = None
    error: Exception | None = None

    @property
    def dist(self) -> str:
        """The normalized distribution name (``unknown`` without one)."""
        return normalize_dist(self.dist_name or "unknown")

    @property
    def key(self) -> str:
        """``"<dist>:<entry point>"``: unique, so one entry point can never block another."""
        return f"{self.dist}:{self.name}"


def load_entry_points(
    group: str,
    *,
    first: str | None = None,
    builtins: Mapping[str, str] | None = None,
    discover: bool = True,
    convert: Callable[[Loaded], Any] | None = None,
) -> list[Loaded]:
    """Load every entry point of ``group``, each isolated, in a fixed order.

    Args:
      group: the entry-point group.
      first: a distribution whose entry points come first (so that no other can claim one of
        its modules); the rest are sorted by normalized distribution name and entry-point name.
      builtins: ``{entry point: "module[:attr]"}`` of ``first``, imported by name where the
        installed metadata does not declare them (a source tree without dist-info).
      discover: read the installed entry points (``False``: ``builtins`` only).
      convert: applied to each loaded entry point inside the same isolation: its result becomes
        ``obj``, an exception it raises the entry point's ``error``.

    Returns:
      One :class:`Loaded` per entry point, in load order; a failed one has ``error`` set.
    """
    first = normalize_dist(first) if first else None
    found = []
    if discover:
        found = [_describe(ep) for ep in importlib.metadata.entry_points(group=group)]
    declared = {item.key for item, _ in found}
    for ep_name, target in (builtins or {}).items():
        item = Loaded(ep_name, target, first, None)
        if item.key not in declared:
            found.append((item, functools.partial(_import, target)))
    found.sort(key=lambda pair: (pair[0].dist != first, pair[0].dist, pair[0].name))
    return [_load(item, load, convert) for item, load in found]


def _describe(ep: Any) -> tuple[Loaded, Callable[[], Any]]:
    """An installed entry point as a not-yet-loaded :class:`Loaded` and its ``load``."""
    dist = getattr(ep, "dist", None)
    version = getattr(dist, "version", None) or "(no version)"
    return Loaded(ep.name, getattr(ep, "value", ""), getattr(dist, "name", None), version), ep.load


def _import(target: str) -> Any:
    """``"module"`` or ``"module:attr"``, as an entry point's ``load`` would give it."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    return functools.reduce(getattr, attr.split("."), obj) if attr else obj


def _load(
    item: Loaded, load: Callable[[], Any], convert: Callable[[Loaded], Any] | None
) -> Loaded:
    """``item`` with what ``load`` (then ``convert``) gave, or with the exception raised."""
    try:
        item = dataclasses.replace(item, obj=load())
        return dataclasses.replace(item, obj=convert(item)) if convert else item
    except Exception as exc:  # any failure costs only this entry point
        return dataclasses.replace(item, obj=None, error=exc)


def load_plugins(
    *, entry_points: bool = True, builtins: bool = True
) -> tuple[list[Plugin], list[str]]:
    """Import the optimizer plugins; return them (ours first, then by distribution and entry
    point) and one line per plugin that failed to import.

    Args:
      entry_points: import the modules declared in :data:`ENTRY_POINT_GROUP`.
      builtins: import each of :data:`BUILTIN_PLUGINS` by module name if our distribution does
        not declare it (a source tree without dist-info).
    """
    loaded, problems = [], []
    for item in load_entry_points(
        ENTRY_POINT_GROUP,
        first=BUILTIN_DISTRIBUTION,
        builtins=BUILTIN_PLUGINS if builtins else None,
        discover=entry_points,
    ):
        plugin = Plugin(item.dist, item.version, item.name, item.obj)
        if item.error is None:
            loaded.append(plugin)
        else:
            problems.append(
                f"{plugin} failed to import: {type(item.error).__name__}: {item.error}"
            )
    return loaded, problems


def collect(pm: pluggy.PluginManager, plugin: Plugin) -> tuple[list[OptimizerInfo], str | None]:
    """Register ``plugin`` with ``pm``, call its hook; return what it registered and a problem.

    Each way of silently registering nothing becomes a one-line problem: pluggy rejects the hook
    (wrong arguments), a hook matches no spec (misspelt), ``register_optimizers`` lacks the
    marker, the hook raises or registers something malformed, or it registers nothing.
    """
    try:
        pm.register(plugin.module, name=plugin.key)
    except Exception as exc:  # pluggy's validation, or a module already loaded as another plugin
        return [], f"{plugin} cannot be registered: {type(exc).__name__}: {exc}"
    problems = [
        f"hook {caller.name!r} matches no hook spec (expected 'register_optimizers')"
        for caller in pm.get_hookcallers(plugin.module) or ()
        if not caller.has_spec()
    ]
    others = [other for other in pm.get_plugins() if other is not plugin.module]
    hook = pm.subset_hook_caller("register_optimizers", remove_plugins=others)
    if not hook.get_hookimpls():
        if callable(getattr(plugin.module, "register_optimizers", None)):
            problems.append("its register_optimizers is not marked with @plugins.hookimpl")
        problems.append(
            "it registers nothing" if problems else "it has no register_optimizers hook"
        )
        return [], f"{plugin}: {'; '.join(problems)}"
    batch: list[OptimizerInfo] = []

    def register(
        name: str,
        factory: Callable[..., Any],
        hyperparams: Sequence[HyperParam] = (),
        description: str = "",
        *,
        plugin_api: int | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.replace("-", "_").isidentifier():
            raise ValueError(f"optimizer name {name!r} must be an identifier (dashes allowed)")
        if not callable(factory) or not isinstance(description, str):
            raise ValueError(f"optimizer {name!r}: factory must be callable, description a str")
        hps = check_declarations(name, hyperparams)
        if plugin_api is None:
            plugin_api = getattr(plugin.module, "PLUGIN_API", None)
        batch.append(OptimizerInfo(name, factory, hps, description, plugin, plugin_api))

    try:
        hook(register=register)
    except Exception as exc:  # one raising or malformed plugin must not hide the others
        return [], f"{plugin} failed in register_optimizers: {type(exc).__name__}: {exc}"
    if not batch:
        problems.append("register_optimizers registered no optimizer")
    return batch, f"{plugin}: {'; '.join(problems)}" if problems else None


def plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows our hook spec and no plugin yet."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm
