"""The optimizer registry as the trainer sees it: every trainer flag name reserved.

:func:`registry` is the one way the trainer and its command-line tools reach the registry
(``plugins.get_registry`` with the reserved names). Separate from ``optim`` (which needs jax and
optax) so that parsing a command line stays light.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from functools import cache
from typing import Any

from plugins import OptimizerRegistry, get_registry
from ppo_trainer.config import CLI_ONLY_FLAGS as _CLI_ONLY_FLAGS
from ppo_trainer.config import TrainConfig, field_types, flag_aliases

_REPORTED: dict[int, OptimizerRegistry] = {}  # registries whose warnings were printed, by id
# (held, so that no id is reused)


@cache
def reserved_names() -> frozenset[str]:
    """Every name a plugin hyperparameter may not take: TrainConfig fields (and their
    ``no_<bool>`` forms), their alias flags and the CLI-only flags of the command-line tools."""
    fields = dataclasses.fields(TrainConfig)
    types = field_types()
    bools = {f"no_{f.name}" for f in fields if types[f.name] is bool}
    return frozenset({f.name for f in fields} | bools | set(flag_aliases()) | set(_CLI_ONLY_FLAGS))


def registry(prog: str | None = None) -> OptimizerRegistry:
    """The optimizer registry with the trainer's flag names reserved.

    ``prog``: the command-line tool asking; the registry's load warnings (plugin problems,
    deprecated plugin APIs) are then printed once per process as ``prog: warning: <line>``
    instead of Python warnings, however often the tool asks.
    """
    if prog is None:
        return get_registry(reserved=reserved_names())
    with warnings.catch_warnings():  # reported below, one line each
        warnings.simplefilter("ignore")
        reg = get_registry(reserved=reserved_names())
    if id(reg) not in _REPORTED:
        _REPORTED[id(reg)] = reg
        for message in reg.warnings:
            print(f"{prog}: warning: {message}", file=sys.stderr)
    return reg


def __getattr__(name: str) -> Any:
    if name == "CLI_ONLY_FLAGS":  # deprecated after 0.2.0: the list moved beside the fields
        warnings.warn("ppo_trainer.registry.CLI_ONLY_FLAGS is deprecated: use "
                      "ppo_trainer.config.CLI_ONLY_FLAGS (and config.flag_aliases() for "
                      "--use-muon)", FutureWarning, stacklevel=2)
        return (*_CLI_ONLY_FLAGS, *flag_aliases())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
