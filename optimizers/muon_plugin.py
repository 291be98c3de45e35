"""Entry point ``muon``: registers :func:`optimizers.muon.chain_with_muon`.

Cheap to import (no jax/optax): the factory imports them when the optimizer is built.
``--lr`` is the auxiliary Adam's learning rate unless ``--aux-adam-lr`` is given.
"""

from __future__ import annotations

from typing import Any

from plugins import HyperParam, hookimpl

NS_PRESETS = ("cubic", "quintic", "polar_express")  # = optimizers.muon.NS_PRESETS (no jax here)

HYPERPARAMS = (
    HyperParam(
        "muon_lr",
        float,
        0.02,
        "learning rate of the Muon (matrix) parameters",
        schedulable=True,
        exclusive_minimum=0.0,
    ),
    HyperParam(
        "aux_adam_lr",
        float,
        None,
        "learning rate of the auxiliary Adam (None: same as --lr)",
        schedulable=True,
        exclusive_minimum=0.0,
    ),
    HyperParam(
        "muon_momentum",
        float,
        0.95,
        "Muon momentum (EMA decay)",
        minimum=0.0,
        exclusive_maximum=1.0,
    ),
    HyperParam("muon_nesterov", bool, True, "Nesterov look-ahead before orthogonalizing"),
    HyperParam(
        "ns_preset", str, "quintic", "Newton-Schulz polynomial schedule", choices=NS_PRESETS
    ),
    HyperParam("ns_steps", int, 5, "Newton-Schulz steps", minimum=1, maximum=50),
    HyperParam(
        "muon_weight_decay",
        float,
        0.0,
        "decoupled weight decay of the Muon parameters (times the learning rate)",
        minimum=0.0,
    ),
    HyperParam(
        "muon_heads",
        bool,
        True,
        "policy_head/value_head kernels use Muon (False: Adam, as reference Muon advises)",
    ),
)


def make_muon(
    *,
    learning_rate: Any,
    max_grad_norm: float | None,
    muon_lr: Any = 0.02,
    aux_adam_lr: Any = None,
    muon_momentum: float = 0.95,
    muon_nesterov: bool = True,
    ns_preset: str = "quintic",
    ns_steps: int = 5,
    muon_weight_decay: float = 0.0,
    muon_heads: bool = True,
) -> Any:
    """Factory: global-norm clip, then Muon for the weight matrices and Adam for the rest."""
    from optimizers.muon import chain_with_muon

    return chain_with_muon(
        muon_lr,
        learning_rate if aux_adam_lr is None else aux_adam_lr,
        max_grad_norm,
        momentum=muon_momentum,
        nesterov=muon_nesterov,
        ns_preset=ns_preset,
        ns_steps=ns_steps,
        weight_decay=muon_weight_decay,
        muon_heads=muon_heads,
    )


@hookimpl
def register_optimizers(register: Any) -> None:
    register(
        "muon",
        make_muon,
        HYPERPARAMS,
        "Muon (Newton-Schulz orthogonalized momentum) for weight matrices, Adam for the rest",
    )
