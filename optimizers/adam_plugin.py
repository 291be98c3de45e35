"""Entry point ``adam``: registers :func:`optimizers.adam.adam` (the registry adds the clip).

Cheap to import (no jax/optax): the factory imports them when the optimizer is built.
"""

from __future__ import annotations

from typing import Any

from optimizers import defaults as d
from plugins import HyperParam, hookimpl

PLUGIN_API = 2  # the contract this module is written for (docs/optimizers.md)

HYPERPARAMS = (
    HyperParam(
        "adam_eps", float, d.ADAM_EPS, "Adam epsilon (1e-5 as PureJaxRL)", exclusive_minimum=0.0
    ),
    HyperParam(
        "adam_b1", float, d.ADAM_B1, "Adam first-moment decay", minimum=0.0, exclusive_maximum=1.0
    ),
    HyperParam(
        "adam_b2", float, d.ADAM_B2, "Adam second-moment decay", minimum=0.0, exclusive_maximum=1.0
    ),
)


def make_adam(*, learning_rate: Any, adam_eps: float, adam_b1: float, adam_b2: float) -> Any:
    """Factory: Adam at ``learning_rate`` (``--lr``); every hyperparameter comes from the registry."""
    # Imported here, not at module level: the registry imports this module to list optimizers
    # and build --help, which must not import optax or jax (the plugin contract).
    from optimizers.adam import adam

    return adam(learning_rate, b1=adam_b1, b2=adam_b2, eps=adam_eps)


@hookimpl
def register_optimizers(register: Any) -> None:
    register("adam", make_adam, HYPERPARAMS, "Adam (PureJaxRL's eps 1e-5)")
