"""Jitted per-step time of our Muon chain vs optax.contrib.muon (same leaves) vs Adam.

    python benchmarks/bench_optimizers.py                 # both transformer sizes
    python benchmarks/bench_optimizers.py --iters 50      # quick smoke run
    python benchmarks/bench_optimizers.py --large         # + d_model 256 / 6 layers (GPU)

Parameter trees: the ``ppo_trainer.networks`` transformer policy (one token per cell of a 10x10
board, 3 input channels, 4 actions). optax.contrib.muon gets our grouping via
``muon_dimension_numbers``, so both orthogonalize exactly the same matrices; the difference is
ours batches them into few Newton-Schulz calls (``optimizers.newton_schulz.plan_batches``) and
uses the Gram form where it is cheaper. Both run 5 steps for that comparison; our default
(3 steps) is timed too. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from optimizers.adam import adam
from optimizers.muon import MuonOptions, muon, muon_dimension_numbers, param_labels

CONFIGS = [(64, 2, 4), (128, 4, 8)]  # (d_model, layers, heads)
LARGE = (256, 6, 8)  # --large (a GPU size; docs/speed.md)
BOARD, CHANNELS, ACTIONS = 10, 3, 4


def transformer_params(d_model: int, num_layers: int, num_heads: int) -> Any:
    """Parameters of the trainer's transformer policy (a stand-in if networks.py is absent)."""
    obs = jnp.zeros((1, BOARD, BOARD, CHANNELS))
    try:
        from ppo_trainer.networks import TransformerActorCritic

        net = TransformerActorCritic(
            obs_shape=(BOARD, BOARD, CHANNELS),
            num_actions=ACTIONS,
            action_dim=0,
            d_model=d_model,
            num_layers=num_layers,
            num_heads=num_heads,
        )
        return net.init(jax.random.PRNGKey(0), obs)
    except ImportError:  # stand-in with the same leaf shapes
        import numpy as np

        z = np.zeros
        hd = d_model // num_heads
        block = {
            "ln_attn": {"scale": z(d_model), "bias": z(d_model)},
            "attn": {
                **{
                    m: {"kernel": z((d_model, num_heads, hd)), "bias": z((num_heads, hd))}
                    for m in ("query", "key", "value")
                },
                "out": {"kernel": z((num_heads, hd, d_model)), "bias": z(d_model)},
            },
            "ln_mlp": {"scale": z(d_model), "bias": z(d_model)},
            "mlp_in": {"kernel": z((d_model, 4 * d_model)), "bias": z(4 * d_model)},
            "mlp_out": {"kernel": z((4 * d_model, d_model)), "bias": z(d_model)},
        }
        tree = {
            "cell_embed": {"kernel": z((CHANNELS, d_model)), "bias": z(d_model)},
            "pos_embedding": z((BOARD * BOARD, d_model)),
            **{f"block_{i}": block for i in range(num_layers)},
            "ln_final": {"scale": z(d_model), "bias": z(d_model)},
            "policy_head": {"kernel": z((d_model, ACTIONS)), "bias": z(ACTIONS)},
            "value_head": {"kernel": z((d_model, 1)), "bias": z(1)},
        }
        return jax.tree.map(jnp.asarray, {"params": tree})


def step_time(tx: optax.GradientTransformation, params: Any, iters: int) -> float:
    """Median seconds of one jitted ``update`` + ``apply_updates``."""

    @jax.jit
    def step(p: Any, s: Any, g: Any) -> tuple[Any, Any]:
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    key = jax.random.PRNGKey(1)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    grads = treedef.unflatten(
        [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    )
    state = tx.init(params)
    p, state = step(params, state, grads)
    jax.block_until_ready(p)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        p, state = step(p, state, grads)
        jax.block_until_ready(p)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200, help="timed steps per optimizer")
    parser.add_argument("--large", action="store_true", help=f"also d/layers/heads {LARGE}")
    args = parser.parse_args()

    rows = []
    for d, layers, heads in CONFIGS + ([LARGE] if args.large else []):
        params = transformer_params(d, layers, heads)
        labels = jax.tree.leaves(param_labels(params))
        txs: dict[str, Callable[[], optax.GradientTransformation]] = {
            "ours": lambda: optax.chain(  # optax's 5 steps
                optax.clip_by_global_norm(0.5),
                muon(0.02, MuonOptions(ns_steps=5), adam_learning_rate=5e-4)),
            "ours default": lambda: optax.chain(
                optax.clip_by_global_norm(0.5), muon(0.02, adam_learning_rate=5e-4)),
            "optax": lambda: optax.chain(
                optax.clip_by_global_norm(0.5),
                optax.contrib.muon(
                    0.02,
                    adam_learning_rate=5e-4,
                    muon_weight_dimension_numbers=muon_dimension_numbers,
                ),
            ),
            "adam": lambda: optax.chain(optax.clip_by_global_norm(0.5), adam(5e-4)),
        }
        t = {name: step_time(make(), params, args.iters) for name, make in txs.items()}
        rows.append((d, layers, heads, labels.count("muon"), len(labels), t))

    print(
        f"backend: {jax.default_backend()} ({jax.devices()[0].device_kind}), iters={args.iters}\n"
    )
    print(
        "| d_model / layers / heads | Muon leaves / all | ours, 5 NS steps (ms) "
        "| optax.contrib.muon same leaves, 5 steps (ms) | ours, default 3 steps (ms) | Adam (ms) "
        "| ours 5 / optax | ours default / Adam |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for d, layers, heads, n_muon, n_all, t in rows:
        print(
            f"| {d} / {layers} / {heads} | {n_muon} / {n_all} | {t['ours'] * 1e3:.3f} "
            f"| {t['optax'] * 1e3:.3f} | {t['ours default'] * 1e3:.3f} | {t['adam'] * 1e3:.3f} "
            f"| {t['ours'] / t['optax']:.2f}x | {t['ours default'] / t['adam']:.2f}x |"
        )


if __name__ == "__main__":
    main()
