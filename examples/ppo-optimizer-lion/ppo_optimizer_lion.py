"""An example third-party optimizer plugin: optax's Lion.

It depends only on ``plugins`` (the hook marker and ``HyperParam``) and optax, and imports optax
inside the factory so that ``ppo-train --help`` stays fast. The registry passes every declared
hyperparameter to the factory (the defaults live in the declarations alone) and applies the
global-norm clip (``--max-grad-norm``) before the optimizer, so the factory does neither. That
is plugin API 2, and ``PLUGIN_API = 2`` says so: a number written here, since importing
``plugins.PLUGIN_API`` would claim whatever version the installed registry has.
"""

from __future__ import annotations

from typing import Any

from plugins import HyperParam, hookimpl

PLUGIN_API = 2

HYPERPARAMS = [
    HyperParam("lion_b1", float, 0.9, "Lion interpolation rate", minimum=0.0, maximum=1.0),
    HyperParam("lion_b2", float, 0.99, "Lion momentum decay", minimum=0.0, maximum=1.0),
    HyperParam("lion_weight_decay", float, 0.0, "decoupled weight decay", minimum=0.0),
]


def make_lion(
    *, learning_rate: Any, lion_b1: float, lion_b2: float, lion_weight_decay: float
) -> Any:
    """Factory: ``optax.lion`` at ``--lr`` (a float or an optax schedule)."""
    import optax

    return optax.lion(learning_rate, b1=lion_b1, b2=lion_b2, weight_decay=lion_weight_decay)


@hookimpl
def register_optimizers(register: Any) -> None:
    register(
        "lion",
        make_lion,
        hyperparams=HYPERPARAMS,
        description="Lion (sign momentum, Chen et al. 2023)",
    )
