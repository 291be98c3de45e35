"""Reference updates of the built-in optimizers, recorded from the code before issue 29.

``python tests/optimizer_reference.py`` (CPU backend) writes ``tests/data/optimizer_updates.npz``:
the parameters, a fixed sequence of gradients and, per case, the updates each optimizer gave
(and, for the plugins, the optimizer-state layout a checkpoint holds).
``tests/test_optimizer_reference.py`` checks that today's code gives the same numbers (to 1e-6)
and the same state layout through the plugins, and the same numbers through the deprecated
library names and through their replacements. The file was written by running this module on
the code before the Muon API changed (``multi_transform_with_muon``, ``chain_with_muon``,
``muon(lr, **keywords)``, ``adam(lr, max_grad_norm)``); the cases use only names both have.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax

import plugins
from optimizers import adam as adam_module
from optimizers import muon as muon_module

DATA = Path(__file__).with_name("data") / "optimizer_updates.npz"
SCALES = (10.0, 0.1, 1.0, 0.05)  # the first gradient is clipped (norm ~100 > 0.5), the rest not
SHAPES = {
    "actor_0/kernel": (4, 8), "actor_0/bias": (8,),
    "actor_1/kernel": (8, 8), "actor_1/bias": (8,),
    "policy_head/kernel": (8, 3), "policy_head/bias": (3,),
    "value_head/kernel": (8, 1), "value_head/bias": (1,),
    "conv_0/kernel": (3, 3, 2, 4), "conv_0/bias": (4,),
    "attn/query/kernel": (8, 2, 2), "attn/query/bias": (2, 2),
    "attn/out/kernel": (2, 2, 8), "attn/out/bias": (8,),
    "cell_embed/kernel": (3, 8),
    "log_std": (3,),
}
MATRICES = ("actor_0/kernel", "actor_1/kernel", "conv_0/kernel", "attn/query/kernel",
            "attn/out/kernel")


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a/b": x}`` -> ``{"a": {"b": x}}``."""
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}/{key}" if prefix else key))
    return out


def inputs() -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(29)
    params = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    grads = [{k: (scale * rng.normal(size=s)).astype(np.float32) for k, s in SHAPES.items()}
             for scale in SCALES]
    return params, grads


def run(tx: Any, params: dict[str, np.ndarray], grads: list[dict[str, np.ndarray]]) -> dict:
    """The updates of ``tx`` for ``grads`` (flat names), stacked over steps."""
    p = nest(params)
    state, steps = tx.init(p), []
    update = jax.jit(tx.update)
    for g in grads:
        u, state = update(nest(g), state, p)
        steps.append({k: np.asarray(v) for k, v in flatten(u).items()})
    return {k: np.stack([s[k] for s in steps]) for k in steps[0]}


def linear(value: float) -> Any:
    return optax.linear_schedule(value, 0.0, len(SCALES))


# Through the registry: what ppo-train builds (the plugin's factory and the registry's clip).
PLUGIN_CASES: dict[str, dict[str, Any]] = {
    "plugin_muon_default": {"name": "muon", "learning_rate": 1e-3, "max_grad_norm": 0.5},
    "plugin_muon_options": {
        "name": "muon", "learning_rate": 1e-3, "max_grad_norm": None, "muon_lr": 0.01,
        "aux_adam_lr": 5e-4, "muon_momentum": 0.9, "muon_nesterov": False,
        "ns_preset": "polar_express", "ns_steps": 5, "muon_weight_decay": 0.01,
        "muon_heads": False,
    },
    "plugin_muon_schedule": {
        "name": "muon", "learning_rate": 1e-3, "max_grad_norm": 1.0, "schedule": linear,
        "ns_preset": "cubic", "ns_steps": 4,
    },
    "plugin_adam_default": {"name": "adam", "learning_rate": 1e-3, "max_grad_norm": 0.5},
    "plugin_adam_options": {
        "name": "adam", "learning_rate": 1e-3, "max_grad_norm": 2.0, "schedule": linear,
        "adam_eps": 1e-8, "adam_b1": 0.8, "adam_b2": 0.99,
    },
}

# The library functions as they were called before issue 29 (old names, old keywords).
LIBRARY_MULTI = {  # multi_transform_with_muon(0.02, 1e-3, **LIBRARY_MULTI)
    "momentum": 0.9, "bias_correction": True, "weight_decay": 0.01, "ns_steps": 5,
    "consistent_rms": 0.2, "eps": 1e-7, "adam_b1": 0.85, "adam_b2": 0.98, "adam_eps": 1e-8,
    "adam_eps_root": 1e-9, "adam_nesterov": True, "adam_weight_decay": 0.001,
}
LIBRARY_CHAIN = {"ns_coeffs": ((3.0, -3.2, 1.2),) * 4, "momentum": 0.9, "muon_heads": False}
LIBRARY_MUON = {  # muon(0.02, **LIBRARY_MUON) on the MATRICES only
    "nesterov": False, "weight_decay": 0.01, "consistent_rms": 0.2, "ns_preset": "polar_express",
    "ns_steps": 4, "ns_dtype": "float32",
}


def library_cases() -> dict[str, tuple[Any, bool]]:
    """``{case: (transformation, matrices only?)}`` built with the old library names."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return {
            "library_multi_transform": (
                muon_module.multi_transform_with_muon(0.02, 1e-3, **LIBRARY_MULTI), False),
            "library_chain": (
                muon_module.chain_with_muon(linear(0.02), 1e-3, 0.5, **LIBRARY_CHAIN), False),
            "library_muon_alone": (muon_module.muon(0.02, **LIBRARY_MUON), True),
            "library_adam_clip": (adam_module.adam(1e-3, 0.5, b1=0.8), False),
        }


def plugin_transformations() -> dict[str, Any]:
    registry = plugins.make_registry()
    out = {}
    for case, spec in PLUGIN_CASES.items():
        kwargs = dict(spec)
        out[case] = registry.build(kwargs.pop("name"), **kwargs)
    return out


def state_layout(tx: Any, params: dict[str, np.ndarray]) -> str:
    """The optimizer state's tree structure: what a checkpoint stores and a resume restores into."""
    return str(jax.tree.structure(tx.init(nest(params))))


def compute() -> dict[str, dict[str, np.ndarray]]:
    """Every case's updates with the code as it is now."""
    params, grads = inputs()
    out = {case: run(tx, params, grads) for case, tx in plugin_transformations().items()}
    for case, (tx, matrices) in library_cases().items():
        keep = MATRICES if matrices else tuple(params)
        out[case] = run(tx, {k: params[k] for k in keep}, [{k: g[k] for k in keep} for g in grads])
    return out


def pack(updates: dict[str, np.ndarray]) -> np.ndarray:
    """Stacked leaves ``{name: (steps, ...)}`` as one ``(steps, values)`` array, in name order."""
    return np.concatenate([updates[k].reshape(len(updates[k]), -1) for k in sorted(updates)], 1)


def main() -> None:
    assert jax.default_backend() == "cpu", "record on the CPU backend (float32 Newton-Schulz)"
    params, grads = inputs()
    arrays = {"params": pack({k: v[None] for k, v in params.items()}),
              "grads": pack({k: np.stack([g[k] for g in grads]) for k in params})}
    arrays.update({case: pack(updates) for case, updates in compute().items()})
    arrays.update({f"state/{case}": np.array(state_layout(tx, params))
                   for case, tx in plugin_transformations().items()})
    DATA.parent.mkdir(exist_ok=True)
    np.savez_compressed(DATA, **arrays)
    print(f"wrote {DATA} ({DATA.stat().st_size} bytes, {len(arrays)} arrays)")


if __name__ == "__main__":
    main()
