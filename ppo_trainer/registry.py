"""The optimizer registry as the trainer sees it: every trainer flag name reserved.

Separate from ``optim`` (which needs jax and optax) so that parsing a command line stays light.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

# Flags of the command-line tools that are not TrainConfig fields; plugins may not shadow them.
CLI_ONLY_FLAGS = ("help", "use_muon", "list_optimizers", "list_presets", "show_config",
                  "optimizers", "out", "only", "replot", "threshold", "threshold_frac",
                  "final_window", "confidence", "wall_clock", "seeds", "episodes", "gif", "json")


@cache
def reserved_names() -> frozenset[str]:
    """Every name a plugin hyperparameter may not take: TrainConfig fields (and their
    ``no_<bool>`` forms) and the CLI-only flags of ppo-train, ppo-compare and ppo-suite."""
    from ppo_trainer.config import TrainConfig, field_types

    fields = dataclasses.fields(TrainConfig)
    types = field_types()
    bools = {f"no_{f.name}" for f in fields if types[f.name] is bool}
    return frozenset({f.name for f in fields} | bools | set(CLI_ONLY_FLAGS))


def registry() -> Any:
    """The optimizer registry with the trainer's flag names reserved."""
    from plugins import get_registry

    return get_registry(reserved=reserved_names())
