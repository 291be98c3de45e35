"""Entry point ``muon``: registers :func:`optimizers.muon.muon`.

Cheap to import (no jax/optax): the factory imports them when the optimizer is built.
``--lr`` is the auxiliary Adam's learning rate unless ``--aux-adam-lr`` is given; the registry
applies the global-norm clip before it.
"""

from __future__ import annotations

from typing import Any

from optimizers import defaults as d
from plugins import HyperParam, hookimpl

PLUGIN_API = 2  # the contract this module is written for (docs/optimizers.md)

HYPERPARAMS = (
    HyperParam(
        "muon_lr",
        float,
        d.MUON_LR,
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
        d.MUON_MOMENTUM,
        "Muon momentum (EMA decay)",
        minimum=0.0,
        exclusive_maximum=1.0,
    ),
    HyperParam(
        "muon_nesterov", bool, d.MUON_NESTEROV, "Nesterov look-ahead before orthogonalizing"
    ),
    HyperParam(
        "ns_preset", str, d.NS_PRESET, "Newton-Schulz polynomial schedule", choices=d.NS_PRESETS
    ),
    HyperParam("ns_steps", int, d.NS_STEPS, "Newton-Schulz steps", minimum=1, maximum=50),
    HyperParam(
        "muon_weight_decay",
        float,
        d.MUON_WEIGHT_DECAY,
        "decoupled weight decay of the Muon parameters (times the learning rate)",
        minimum=0.0,
    ),
    HyperParam(
        "muon_heads",
        bool,
        d.MUON_HEADS,
        "policy_head/value_head kernels use Muon (False: Adam, as reference Muon advises)",
    ),
)


def make_muon(
    *,
    learning_rate: Any,
    muon_lr: Any,
    aux_adam_lr: Any,
    muon_momentum: float,
    muon_nesterov: bool,
    ns_preset: str,
    ns_steps: int,
    muon_weight_decay: float,
    muon_heads: bool,
) -> Any:
    """Factory: Muon for the weight matrices, Adam for the rest (values from the registry)."""
    # Imported here, not at module level: the registry imports this module to list optimizers
    # and build --help, which must not import optax or jax (the plugin contract).
    from optimizers.muon import MuonOptions, muon

    options = MuonOptions(
        momentum=muon_momentum,
        nesterov=muon_nesterov,
        ns_preset=ns_preset,
        ns_steps=ns_steps,
        weight_decay=muon_weight_decay,
        muon_heads=muon_heads,
    )
    adam_lr = learning_rate if aux_adam_lr is None else aux_adam_lr
    return muon(muon_lr, options, adam_learning_rate=adam_lr)


@hookimpl
def register_optimizers(register: Any) -> None:
    register(
        "muon",
        make_muon,
        HYPERPARAMS,
        "Muon (Newton-Schulz orthogonalized momentum) for weight matrices, Adam for the rest",
    )
