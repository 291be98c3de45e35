"""An example third-party optimizer plugin: optax's Lion behind a global-norm clip.

It depends only on ``plugins`` (the hook marker and ``HyperParam``) and optax, and imports optax
inside the factory so that ``ppo-train --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

from plugins import HyperParam, hookimpl


def make_lion(
    *,
    learning_rate: Any,
    max_grad_norm: float | None,
    lion_b1: float = 0.9,
    lion_b2: float = 0.99,
    lion_weight_decay: float = 0.0,
) -> Any:
    """Factory: ``clip_by_global_norm`` then ``optax.lion`` at ``--lr``."""
    import optax

    clip = optax.clip_by_global_norm(max_grad_norm) if max_grad_norm else optax.identity()
    return optax.chain(
        clip,
        optax.lion(learning_rate, b1=lion_b1, b2=lion_b2, weight_decay=lion_weight_decay),
    )


@hookimpl
def register_optimizers(register: Any) -> None:
    register(
        "lion",
        make_lion,
        hyperparams=[
            HyperParam("lion_b1", float, 0.9, "Lion interpolation rate", minimum=0.0, maximum=1.0),
            HyperParam("lion_b2", float, 0.99, "Lion momentum decay", minimum=0.0, maximum=1.0),
            HyperParam("lion_weight_decay", float, 0.0, "decoupled weight decay", minimum=0.0),
        ],
        description="Lion (sign momentum, Chen et al. 2023) after a global-norm clip",
    )
