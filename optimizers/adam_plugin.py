"""Entry point ``adam``: registers :func:`optimizers.adam.adam`.

Cheap to import (no jax/optax): the factory imports them when the optimizer is built.
"""

from __future__ import annotations

from typing import Any

from plugins import HyperParam, hookimpl

HYPERPARAMS = (
    HyperParam("adam_eps", float, 1e-5, "Adam epsilon (1e-5 as PureJaxRL)", exclusive_minimum=0.0),
    HyperParam(
        "adam_b1", float, 0.9, "Adam first-moment decay", minimum=0.0, exclusive_maximum=1.0
    ),
    HyperParam(
        "adam_b2", float, 0.999, "Adam second-moment decay", minimum=0.0, exclusive_maximum=1.0
    ),
)


def make_adam(
    *,
    learning_rate: Any,
    max_grad_norm: float | None,
    adam_eps: float = 1e-5,
    adam_b1: float = 0.9,
    adam_b2: float = 0.999,
) -> Any:
    """Factory: global-norm clip then Adam at ``learning_rate`` (``--lr``)."""
    from optimizers.adam import adam

    return adam(learning_rate, max_grad_norm, b1=adam_b1, b2=adam_b2, eps=adam_eps)


@hookimpl
def register_optimizers(register: Any) -> None:
    register("adam", make_adam, HYPERPARAMS, "Adam after a global-norm clip (PureJaxRL)")
