"""Tuned PPO settings per env id, as plain data, layered under the command line.

The built-in presets live in ``ppo_trainer/presets.toml`` (one table per preset, like
rl-baselines3-zoo's ``hyperparams/ppo.yml``). A preset named like an env id is picked
automatically for that env (``--preset auto``, the default); any preset can be named with
``--preset NAME``, and ``--preset none`` gives the raw ``TrainConfig`` defaults. Layering:
``default < preset < preset[optimizer] < command line``. Inside a preset table:

- every key is a ``ppo-train`` flag name (a ``TrainConfig`` field, or a hyperparameter an
  optimizer plugin declares, e.g. ``muon_lr``, which applies when that optimizer is used);
  ``env`` defaults to the preset's name, so ``--preset CartPole-v1`` trains CartPole;
- a sub-table named after an optimizer (``["CartPole-v1".muon]``) holds values used only with that
  optimizer (per-optimizer learning rates: the tuning is fair only if each optimizer gets its own);
- ``description``, ``reference`` and ``tuning`` are notes for people (``--list-presets``).

Third-party packages ship presets the way optimizers ship a plugin: an entry point in the group
``ppo_trainer.presets`` that loads to a TOML file path (``str``/``Path``/``importlib.resources``
file) or to a mapping ``{preset name: {flag: value}}``. Entry points load in sorted order, each
isolated (a broken one is a warning), through the same loader as optimizer plugins
(``plugins.loader.load_entry_points``); a name the built-ins already use stays the built-in's.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from plugins.loader import Loaded, load_entry_points
from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import ConfigError
from ppo_trainer.registry import registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BUILTIN_FILE = Path(__file__).with_name("presets.toml")
ENTRY_POINT_GROUP = "ppo_trainer.presets"
META_KEYS = ("description", "reference", "tuning")
FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig) if f.name != "optimizer_kwargs")


@dataclass(frozen=True)
class Preset:
    """One named preset: shared settings, per-optimizer settings and notes."""

    name: str
    settings: dict[str, Any]
    by_optimizer: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    origin: str = "built-in"

    def layers(self, optimizer: str) -> list[tuple[str, dict[str, Any]]]:
        """``[(source label, values), ...]`` in the order they apply for ``optimizer``."""
        out = [(f"preset {self.name}", self.settings)]
        if optimizer in self.by_optimizer:
            out.append((f"preset {self.name} [{optimizer}]", self.by_optimizer[optimizer]))
        return out


def parse_table(name: str, table: Mapping[str, Any], origin: str) -> Preset:
    """A preset from one TOML table (sub-tables not named like a field are per-optimizer)."""
    settings: dict[str, Any] = {}
    by_optimizer: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    for key, value in table.items():
        if key in META_KEYS:
            notes[key] = str(value)
        elif isinstance(value, Mapping) and key not in FIELDS:
            by_optimizer[key] = dict(value)
        else:
            settings[key] = value
    settings.setdefault("env", name)  # a preset without an env key is named by its env id
    return Preset(name, settings, by_optimizer, notes, origin)


def read_file(path: Any, origin: str) -> dict[str, Preset]:
    data = tomllib.loads(Path(str(path)).read_text() if not hasattr(path, "read_text")
                         else path.read_text())
    return {name: parse_table(name, table, origin) for name, table in data.items()}


def _from_entry_point(ep: Loaded) -> dict[str, Preset]:
    origin = f"{ep.dist_name or '?'}:{ep.name}"
    if isinstance(ep.obj, Mapping):
        return {name: parse_table(name, table, origin) for name, table in ep.obj.items()}
    return read_file(ep.obj, origin)


@cache
def all_presets() -> dict[str, Preset]:
    """Built-in presets, then third-party ones (sorted entry points; built-in names win)."""
    presets = read_file(BUILTIN_FILE, "built-in")
    # Each entry point loads and parses in isolation: one broken package must not hide the others.
    for ep in load_entry_points(ENTRY_POINT_GROUP, convert=_from_entry_point):
        if ep.error is not None:
            warnings.warn(f"preset entry point {ep.name!r} ({ep.value}) failed to load: "
                          f"{type(ep.error).__name__}: {ep.error}", RuntimeWarning, stacklevel=2)
            continue
        for name, preset in ep.obj.items():
            if name in presets:
                warnings.warn(f"preset {name!r} from {preset.origin} is ignored: "
                              f"{presets[name].origin} already defines it", RuntimeWarning,
                              stacklevel=2)
                continue
            presets[name] = preset
    return presets


def find(preset: str, env: str) -> Preset | None:
    """The preset ``--preset`` names for ``--env``: ``none``, ``auto`` (by env id) or a name."""
    if preset == "none":
        return None
    presets = all_presets()
    if preset == "auto":
        return presets.get(env.split(":", 1)[-1])
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(sorted(presets))}, "
                          "auto, none")
    return presets[preset]


def layered(preset: Preset | None, optimizer: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The preset's values for ``optimizer`` and the source of each, flattened in order."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, layer in (preset.layers(optimizer) if preset else []):
        for key, value in layer.items():
            values[key] = value
            sources[key] = source
    return values, sources


def resolve(
    base: TrainConfig,
    base_sources: dict[str, str],
    preset: Preset | None,
    optimizer: str,
    declared: dict[str, Any],
    flags: dict[str, Any],
    plugin_flags: dict[str, Any],
    known_plugin_keys: frozenset[str] = frozenset(),
) -> tuple[TrainConfig, dict[str, str]]:
    """Layer ``base`` < ``preset`` < ``preset[optimizer]`` < ``flags`` into a config. A dict
    value (``env_kwargs``, ``env_params``) is merged key by key, the later layer winning.

    ``declared``: the optimizer plugin's hyperparameters and defaults; the plugin values start
    from those, then ``base.optimizer_kwargs`` (same optimizer), the preset, ``plugin_flags``.
    A preset key that is neither a field, nor declared, nor in ``known_plugin_keys`` (another
    optimizer's hyperparameter, ignored) is an error. Returns the config and the source of each
    value (``optimizer_kwargs.<name>`` for plugin values).
    """
    values = base.to_dict()
    sources = dict(base_sources)
    kwargs = dict(declared)
    kwarg_sources = {k: "default" for k in declared}
    if base.optimizer == optimizer:
        for key in set(base.optimizer_kwargs) & set(declared):
            kwargs[key] = base.optimizer_kwargs[key]
            kwarg_sources[key] = base_sources.get(f"optimizer_kwargs.{key}", "default")
    layer, layer_sources = layered(preset, optimizer)
    for key, value in layer.items():
        if key in FIELDS:
            values[key], sources[key] = _merged(values.get(key), value), layer_sources[key]
        elif key in declared:
            kwargs[key], kwarg_sources[key] = value, layer_sources[key]
        elif key not in known_plugin_keys:
            raise ConfigError(f"{layer_sources[key]}: {key!r} is not a ppo-train flag")
    for key, value in flags.items():
        if key != "preset":
            values[key] = _merged(values.get(key), value)
    sources.update({k: "flag" for k in flags})
    if values["preset"] == "auto" or "preset" in flags:  # record what was applied
        values["preset"] = preset.name if preset is not None else "none"
        if "preset" not in flags:
            sources["preset"] = "auto (env id)"
    elif preset is not None:
        values["preset"] = preset.name
    kwargs.update(plugin_flags)
    kwarg_sources.update({k: "flag" for k in plugin_flags})
    values["optimizer"], values["optimizer_kwargs"] = optimizer, kwargs
    sources.update({f"optimizer_kwargs.{k}": v for k, v in kwarg_sources.items()})
    return TrainConfig.from_dict(values), sources


def _merged(old: Any, new: Any) -> Any:
    """``new``, except that a dict (``--env-kwargs``, ``--env-params``) adds to ``old``."""
    return {**old, **new} if isinstance(old, dict) and isinstance(new, dict) else new


def default_sources() -> dict[str, str]:
    return {name: "default" for name in FIELDS}


UNTUNED_NOTICE = {"muon": "muon_lr"}
"""Optimizers whose step size a preset does not carry over from Adam's: ``{optimizer: its
step-size hyperparameter}``. A preset's shared ``lr`` is tuned for Adam; Muon's ``muon_lr``
scales an update of fixed spectral norm, so the same default can be far too large for an env
(docs/results/muon-sparse: on MountainCar-v0 and DeepSea-bsuite Muon's policy entropy collapsed
within the first updates)."""


def untuned_notice(preset: Preset | None, optimizer: str, sources: Mapping[str, str]) -> str | None:
    """The one-line warning for a run of ``optimizer`` (e.g. ``muon``) on an env for which no
    preset tuned it, or ``None``. Tuned means: the preset has a table for the optimizer
    (``["Env".muon]``), is made for it (``optimizer = "muon"``) or its ``tuning`` note names
    the optimizer (a grid of it ran). No warning when
    the step size was given on the command line (``sources`` says ``flag``)."""
    name = UNTUNED_NOTICE.get(optimizer)
    if name is None or sources.get(f"optimizer_kwargs.{name}") == "flag":
        return None
    if preset is not None and (optimizer in preset.by_optimizer
                               or preset.settings.get("optimizer") == optimizer
                               or optimizer in preset.notes.get("tuning", "").lower()):
        return None
    flag = f"--{name.replace('_', '-')}"
    why = (f"preset {preset.name!r} has no {optimizer} settings" if preset is not None
           else "no preset")
    return (f"warning: {optimizer} is untuned on this env ({why}); its default {flag} can fail "
            f"where adam learns (docs/results/muon-sparse): give {flag} from a grid")


def preset_config(name: str, optimizer: str | None = None, **overrides: Any) -> TrainConfig:
    """A ``TrainConfig`` from a preset (library use, tests, benchmarks): its values for the
    optimizer, then ``overrides`` (``optimizer_kwargs`` merged; the optimizer's hyperparameters
    may also be given as keywords, ``muon_lr=0.01``). Validated by ``make_optimizer``
    and ``TrainConfig.validate`` where it is used."""
    preset = find(name, name)
    if preset is None:
        raise ConfigError(f"no preset named {name!r}")
    optimizer = overrides.pop("optimizer", None) or optimizer or preset.settings.get(
        "optimizer", TrainConfig.optimizer)
    reg = registry()
    declared = {hp.name: hp.default for hp in reg.get(optimizer).hyperparams}
    known = frozenset(hp.name for n in reg.names() for hp in reg.get(n).hyperparams)
    plugin = dict(overrides.pop("optimizer_kwargs", {}))
    # the optimizer's own hyperparameters as plain keywords (muon_lr=...), as on the command line
    plugin.update({k: overrides.pop(k) for k in list(overrides) if k in declared})
    config, _ = resolve(TrainConfig(), default_sources(), preset, optimizer, declared,
                        overrides, plugin, known)
    return config
