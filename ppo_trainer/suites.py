"""Env suites: ``--env SUITE/ID`` for env families that are not gymnax 1.0 environments.

A suite is an object (usually a module) reached through the entry-point group
:data:`ENTRY_POINT_GROUP`; the entry point's name is the ``SUITE`` of ``SUITE/ID``. It provides:

- ``make(env_id, **kwargs) -> (env, env_params)``: a gymnax 1.0 ``Environment`` (six-value
  ``step``, ``info["final_observation"]``, time limits as truncations) built from the suite's env
  ``env_id``; ``kwargs`` are ``--env-kwargs``. It imports the suite's package here, not at module
  import, so that listing suites costs nothing;
- ``REQUIRES``: the import names ``make`` needs (checked with ``importlib.util.find_spec``, so a
  config is refused before anything is built);
- ``INSTALL``: the one line that installs them (``pip install "snake-ppo-jax[jumanji]"``);
- optionally ``IDS``: a few ids, for messages and docs, and a docstring.

Our own adapters (``ppo_trainer/adapters/``) register exactly as a third party's would: entry
points in our ``pyproject.toml``, loaded with ``plugins.loader.load_entry_points``; this module
names no suite and imports no suite package.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from plugins.loader import BUILTIN_DISTRIBUTION, Loaded, load_entry_points
from ppo_trainer.errors import ConfigError

ENTRY_POINT_GROUP = "ppo_trainer.env_suites"
"""The entry-point group a package declares its env suites in (name: the SUITE prefix)."""

BUILTIN_SUITES: Mapping[str, str] = {
    "jumanji": "ppo_trainer.adapters.jumanji",
    "navix": "ppo_trainer.adapters.navix",
    "brax": "ppo_trainer.adapters.brax",
    "playground": "ppo_trainer.adapters.playground",
    "craftax": "ppo_trainer.adapters.craftax",
}
"""Our entry points (declared in pyproject.toml), imported by module name when a source tree runs
without our dist-info."""


@dataclass(frozen=True)
class Suite:
    """One registered suite: its name, where it came from, and the object that makes envs."""

    name: str
    origin: str  # "<distribution>:<entry point>"
    make: Callable[..., tuple[Any, Any]]
    requires: tuple[str, ...] = ()
    install: str = ""
    ids: tuple[str, ...] = ()
    description: str = ""

    def missing(self) -> list[str]:
        """The required import names that are not installed (nothing is imported)."""
        out = []
        for name in self.requires:
            try:
                if importlib.util.find_spec(name) is None:
                    out.append(name)
            except (ImportError, ValueError):
                out.append(name)
        return out


def _as_suite(ep: Loaded) -> Suite:
    obj = ep.obj
    if not callable(getattr(obj, "make", None)):
        raise TypeError(f"{ep.value} has no make(env_id, **kwargs)")
    requires = getattr(obj, "REQUIRES", ())
    requires = (requires,) if isinstance(requires, str) else tuple(requires)
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    return Suite(ep.name, ep.key, obj.make, requires, str(getattr(obj, "INSTALL", "") or ""),
                 tuple(getattr(obj, "IDS", ()) or ()), doc[0] if doc else "")


@cache
def _load() -> tuple[dict[str, Suite], tuple[str, ...]]:
    suites: dict[str, Suite] = {}
    problems = []
    for ep in load_entry_points(ENTRY_POINT_GROUP, first=BUILTIN_DISTRIBUTION,
                                builtins=BUILTIN_SUITES, convert=_as_suite):
        if ep.error is not None:
            problems.append(f"env suite {ep.name!r} ({ep.key}) failed to load: "
                            f"{type(ep.error).__name__}: {ep.error}")
        elif ep.name in suites:  # ours load first: a third party cannot take a built-in name
            problems.append(f"env suite {ep.name!r} from {ep.key} is ignored: "
                            f"{suites[ep.name].origin} already defines it")
        else:
            suites[ep.name] = ep.obj
    return suites, tuple(problems)


def all_suites() -> dict[str, Suite]:
    """Every loadable suite by name (ours first, then third parties' in sorted order)."""
    return dict(_load()[0])


def load_problems() -> tuple[str, ...]:
    """One line per suite entry point that failed to load or was shadowed."""
    return _load()[1]


def is_suite_id(env: str) -> bool:
    """Whether ``env`` has the ``SUITE/ID`` form (``module:EnvId`` and plain ids do not)."""
    return "/" in env and ":" not in env.split("/", 1)[0]


def split(env: str) -> tuple[Suite, str]:
    """``(suite, id)`` for ``SUITE/ID``; one-line errors for an unknown suite, an empty id, or a
    suite whose package is not installed."""
    name, env_id = env.split("/", 1)
    suites = all_suites()
    if name not in suites:
        known = ", ".join(sorted(suites)) or "none"
        broken = [p for p in load_problems() if f"env suite {name!r}" in p]
        hint = f" ({broken[0]})" if broken else ""
        raise ConfigError(f"--env {env!r}: unknown env suite {name!r}{hint}; known suites: "
                          f"{known}")
    suite = suites[name]
    if not env_id:
        example = f" (e.g. {name}/{suite.ids[0]})" if suite.ids else ""
        raise ConfigError(f"--env {env!r}: give an env id after '{name}/'{example}")
    missing = suite.missing()
    if missing:
        how = f": {suite.install}" if suite.install else ""
        raise ConfigError(f"--env {env!r} needs the {name} suite's package "
                          f"{', '.join(missing)}, which is not installed{how}")
    return suite, env_id


def make(env: str, **kwargs: Any) -> tuple[Any, Any]:
    """``(env, env_params)`` for ``SUITE/ID``; a failure to build is one :class:`ConfigError`."""
    suite, env_id = split(env)
    try:
        return suite.make(env_id, **kwargs)
    except ConfigError:
        raise
    except ModuleNotFoundError as err:  # a dependency of the suite's package
        how = f": {suite.install}" if suite.install else ""
        raise ConfigError(f"--env {env!r}: the {suite.name} suite cannot import "
                          f"{err.name or err}{how}") from None
    except TypeError as err:
        raise ConfigError(f"--env-kwargs {kwargs}: {env} does not accept them ({err})") from None
    except Exception as err:  # an unknown id, an env that downloads data, ...
        first = str(err).splitlines()[0] if str(err) else ""
        raise ConfigError(f"--env {env!r} could not be built: {type(err).__name__}: "
                          f"{first}") from None
