"""Muon against Adam on the exploration envs (MountainCar-v0, DeepSea-bsuite): per-update
diagnostics of what each optimizer does before the first success.

Each run trains ``--seeds`` seeds of one env's preset for one optimizer (``--set`` adds flag
overrides, e.g. ``muon_heads=false``) as one jitted program: a ``lax.scan`` over updates that
calls ``Trainer.run(state, 1)`` and measures, for every weight matrix, the update the whole
PPO update applied (``W_after - W_before``): its Frobenius and spectral norms relative to the
weight's. With the trainer's own per-update metrics (entropy, approx_kl, clipfrac, value loss,
training return) and a final greedy evaluation (64 episodes per seed, as ``ppo-suite``), it
writes ``<out>/runs/<env>.<label>.json``: per-seed greedy returns, the first update with a
success, and curves downsampled to ``--points`` points.

    python benchmarks/muon_sparse.py --env MountainCar-v0 --optimizer adam --seeds 0 1 2 3 --out OUT
    python benchmarks/muon_sparse.py --env MountainCar-v0 --optimizer muon --seeds 0 1 2 3 --out OUT
    python benchmarks/muon_sparse.py --env DeepSea-bsuite --optimizer muon --seeds 100 101 102 103 \\
        --set muon_heads=false --label muon-noheads --out OUT
    python benchmarks/muon_sparse.py --replot --out OUT   # results.md and plots/ from runs/*.json

A "success" is an update whose mean training return beats the env's failure return
(MountainCar: any episode under 200 steps; DeepSea: the treasure, return > 0.5 on average
over that update's episodes is not needed, > 0 is: a failed episode returns <= 0).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

SUCCESS_ABOVE = {"MountainCar-v0": -200.0 + 1e-3, "DeepSea-bsuite": 0.0 + 1e-3}
METRICS = ("charts/episodic_return", "losses/entropy", "losses/approx_kl", "losses/clipfrac",
           "losses/value_loss")


def parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def layer_name(path: Any) -> str:
    names = [str(getattr(p, "key", getattr(p, "name", p))) for p in path]
    return "/".join(n for n in names if n != "params")


def downsample(series: np.ndarray, points: int) -> np.ndarray:
    """Mean over ``points`` equal blocks of the last axis (NaN-aware)."""
    n = series.shape[-1]
    edges = np.linspace(0, n, min(points, n) + 1).astype(int)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.stack([np.nanmean(series[..., a:b], axis=-1)
                             for a, b in zip(edges[:-1], edges[1:], strict=True)], axis=-1)


def run(env: str, optimizer: str, seeds: list[int], overrides: dict[str, Any],
        points: int, eval_episodes: int) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    from ppo_trainer.app.build import build
    from ppo_trainer.app.compare.run import final_eval
    from ppo_trainer.presets import preset_config

    assert seeds == list(range(seeds[0], seeds[0] + len(seeds))), "seeds must be consecutive"
    config = preset_config(env, optimizer=optimizer, num_seeds=len(seeds), seed=seeds[0],
                           **overrides)
    setup = build(config)
    trainer = setup.trainer
    num_updates = config.num_updates

    def sizes(before: Any, after: Any) -> dict[str, Any]:
        out = {}
        flat_b = jax.tree_util.tree_flatten_with_path(before)[0]
        flat_a = jax.tree_util.tree_leaves(after)
        for (path, w), w2 in zip(flat_b, flat_a, strict=True):
            if w.ndim != 2:
                continue
            d = w2 - w
            name = layer_name(path)
            out[f"{name}/fro"] = jnp.linalg.norm(d) / (jnp.linalg.norm(w) + 1e-12)
            out[f"{name}/spec"] = (jnp.linalg.norm(d, ord=2)
                                   / (jnp.linalg.norm(w, ord=2) + 1e-12))
        return out

    def train(key: Any) -> Any:
        def body(state: Any, _: Any) -> Any:
            new, metrics = trainer.run(state, 1)
            picked = {k: metrics[k][0] for k in METRICS}
            return new, (picked, sizes(state.params, new.params))

        return jax.lax.scan(body, trainer.init(key), None, length=num_updates)

    t0 = time.perf_counter()
    state, (metrics, upd) = jax.block_until_ready(jax.jit(jax.vmap(train))(setup.keys))
    wall = time.perf_counter() - t0
    evaluation = final_eval(setup, state, eval_episodes)
    metrics = {k: np.asarray(v, dtype=float) for k, v in jax.device_get(metrics).items()}
    upd = {k: np.asarray(v, dtype=float) for k, v in jax.device_get(upd).items()}
    ret = metrics["charts/episodic_return"]
    success = np.nan_to_num(ret, nan=-np.inf) > SUCCESS_ABOVE.get(env, np.inf)
    first = [int(np.argmax(s)) + 1 if s.any() else None for s in success]
    ent = metrics["losses/entropy"]
    half = [int(np.argmax(e < 0.5 * e[0])) + 1 if (e < 0.5 * e[0]).any() else None for e in ent]
    steps = np.arange(1, num_updates + 1) * config.batch_size
    edges = np.linspace(0, num_updates, min(points, num_updates) + 1).astype(int)
    greedy = [float(x) for x in np.asarray(evaluation["per_seed_mean_return"])]
    return {
        "env": env, "optimizer": optimizer, "overrides": overrides, "seeds": seeds,
        "config": config.to_dict(), "num_updates": num_updates,
        "wall_s": round(wall, 1), "eval_episodes_per_seed": eval_episodes,
        "greedy_return": [round(g, 3) for g in greedy],
        "first_success_update": first,
        "first_success_step": [None if f is None else int(f * config.batch_size) for f in first],
        "entropy_half_update": half,
        "success_fraction": [round(float(s.mean()), 4) for s in success],
        "global_step": [int(steps[b - 1]) for b in edges[1:]],
        "curves": {k: np.round(downsample(v, points), 6).tolist() for k, v in metrics.items()},
        "update_size": {k: np.round(downsample(v, points), 6).tolist() for k, v in upd.items()},
        # the first 20 updates undownsampled: where the runs part
        "early": {k: np.round(v[:, :20], 6).tolist()
                  for k, v in {**metrics, **upd}.items()},
    }


def compact(x: Any) -> Any:
    """Floats to 4 significant digits, recursively (the record stays small)."""
    if isinstance(x, float):
        return float(f"{x:.4g}")
    if isinstance(x, list):
        return [compact(v) for v in x]
    if isinstance(x, dict):
        return {k: compact(v) for k, v in x.items()}
    return x


def label_of(data: dict[str, Any]) -> str:
    return data.get("label") or data["optimizer"]


def mean_ci(x: list[float], reps: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    a = np.asarray(x, dtype=float)
    rng = np.random.default_rng(seed)
    boots = rng.choice(a, size=(reps, a.size)).mean(axis=1)
    return float(a.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def step_sizes(config: dict[str, Any]) -> str:
    """The run's learning rates: Adam's ``lr``; Muon's ``muon_lr``, its Adam part's rate and
    whether the heads are on Muon."""
    kw = config["optimizer_kwargs"]
    if config["optimizer"] != "muon":
        return f"lr {config['lr']:g}"
    aux = kw.get("aux_adam_lr") or config["lr"]
    heads = "" if kw.get("muon_heads", True) else ", heads on Adam"
    return f"muon_lr {kw['muon_lr']:g}, Adam part {aux:g}{heads}"


def table(runs: list[dict[str, Any]]) -> str:
    lines = ["| env | run | step sizes | seeds | greedy return [95% CI] | per seed | "
             "first success (update) |"
             " entropy halved (update) | approx_kl, first 10% | clipfrac, first 10% | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in runs:
        m, lo, hi = mean_ci(d["greedy_return"])
        half = ", ".join("never" if h is None else str(h)
                         for h in d.get("entropy_half_update") or ["n/a"] * len(d["seeds"]))
        n = max(1, len(d["global_step"]) // 10)
        kl = np.nanmean(np.asarray(d["curves"]["losses/approx_kl"])[:, :n])
        cf = np.nanmean(np.asarray(d["curves"]["losses/clipfrac"])[:, :n])
        first = ", ".join("n/a" if d["env"] not in SUCCESS_ABOVE else "never" if f is None
                          else str(f) for f in d["first_success_update"])
        seeds = f"{d['seeds'][0]}-{d['seeds'][-1]}"
        lines.append(
            f"| {d['env']} | {label_of(d)} | {step_sizes(d['config'])} | {seeds} | "
            f"{m:.2f} [{lo:.2f}, {hi:.2f}] | "
            f"{', '.join(f'{g:.2f}' for g in d['greedy_return'])} | {first} | "
            f"{half} | "
            f"{kl:.4f} | {cf:.3f} | {d['wall_s']:.0f} |")
    return "\n".join(lines)


def size_table(runs: list[dict[str, Any]]) -> str:
    """Mean relative update size per layer over the first 10% of updates."""
    lines = ["| env | run | layer | Frobenius ‖ΔW‖/‖W‖ | spectral ‖ΔW‖₂/‖W‖₂ |",
             "|---|---|---|---|---|"]
    for d in runs:
        layers = sorted({k.rsplit("/", 1)[0] for k in d["update_size"]})
        for layer in layers:
            f = np.asarray(d["update_size"][f"{layer}/fro"])
            s = np.asarray(d["update_size"][f"{layer}/spec"])
            n = max(1, f.shape[1] // 10)
            lines.append(f"| {d['env']} | {label_of(d)} | {layer} | {f[:, :n].mean():.4f} | "
                         f"{s[:, :n].mean():.4f} |")
    return "\n".join(lines)


def shrink_table(runs: list[dict[str, Any]]) -> str:
    """Does the update shrink when the loss does? Value loss and the critic's last hidden
    layer's relative spectral update over the first 1% of updates and over 40-60%."""
    lines = ["| env | run | seeds | value loss, first 1% | value loss, 40-60% | critic_1 ‖ΔW‖₂/‖W‖₂, "
             "first 1% | critic_1 ‖ΔW‖₂/‖W‖₂, 40-60% | policy_head ‖ΔW‖₂/‖W‖₂, first 1% |",
             "|---|---|---|---|---|---|---|---|"]
    for d in runs:
        vl = np.asarray(d["curves"]["losses/value_loss"])
        c = np.asarray(d["update_size"]["critic_1/kernel/spec"])
        ph = np.asarray(d["update_size"]["policy_head/kernel/spec"])
        n = vl.shape[1]
        mid = slice(int(0.4 * n), int(0.6 * n))
        lines.append(f"| {d['env']} | {label_of(d)} | {d['seeds'][0]}-{d['seeds'][-1]} | "
                     f"{np.nanmean(vl[:, 0]):.3g} | "
                     f"{np.nanmean(vl[:, mid]):.3g} | {c[:, 0].mean():.3g} | "
                     f"{c[:, mid].mean():.3g} | {ph[:, 0].mean():.3g} |")
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], env: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("charts/episodic_return", "training return", False),
              ("losses/entropy", "policy entropy", False),
              ("losses/approx_kl", "approx KL", True),
              ("losses/clipfrac", "clip fraction", False),
              ("losses/value_loss", "value loss", True),
              ("actor_policy_head", "policy head ‖ΔW‖₂/‖W‖₂", True),
              ("actor_hidden", "actor hidden ‖ΔW‖₂/‖W‖₂ (mean of layers)", True),
              ("critic", "critic ‖ΔW‖₂/‖W‖₂ (mean of layers)", True)]
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.6), dpi=60)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (key, title, log), ax in zip(panels, axes.ravel(), strict=True):
        for i, d in enumerate(r for r in runs if r["env"] == env):
            x = np.asarray(d["global_step"])
            if key.startswith("losses") or key.startswith("charts"):
                y = np.asarray(d["curves"][key])
            else:
                ks = [k for k in d["update_size"] if k.endswith("/spec") and _group(k) == key]
                if not ks:
                    continue
                y = np.mean([np.asarray(d["update_size"][k]) for k in ks], axis=0)
            c = colors[i % len(colors)]
            for s in range(y.shape[0]):
                ax.plot(x, y[s], color=c, lw=0.8, alpha=0.7,
                        label=f"{label_of(d)} s{d['seeds'][0]}-{d['seeds'][-1]}" if s == 0 else None)
        ax.set_title(title, fontsize=9)
        if log:
            ax.set_yscale("log")
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{env}: one line per seed", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_candidates(runs: list[dict[str, Any]], env: str, path: Path) -> None:
    """Every run of one env and seed set: training return and entropy, mean over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), dpi=70)
    for key, title, ax in (("charts/episodic_return", "training return", axes[0]),
                           ("losses/entropy", "policy entropy", axes[1])):
        for d in runs:
            y = np.nanmean(np.asarray(d["curves"][key]), axis=0)
            ax.plot(d["global_step"], y, lw=1.0, label=label_of(d))
        ax.set_title(f"{title} (mean over seeds {runs[0]['seeds'][0]}-{runs[0]['seeds'][-1]})",
                     fontsize=9)
        ax.tick_params(labelsize=7)
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(env, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _group(key: str) -> str:
    layer = key.rsplit("/", 1)[0]
    if "policy_head" in layer:
        return "actor_policy_head"
    if "value_head" in layer or "critic" in layer.lower():
        return "critic"
    return "actor_hidden"


def load_runs(out: Path) -> list[dict[str, Any]]:
    """Every run of ``<out>/runs``, by env, seeds, then adam, muon, the candidates."""
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    order = {"adam": 0, "muon": 1}
    runs.sort(key=lambda d: (d["env"], d["seeds"][0], order.get(label_of(d), 2), label_of(d)))
    return runs


def tables(runs: list[dict[str, Any]]) -> str:
    """``table.md``: the runs, the update size per layer, the update size against the loss."""
    return ("## Runs\n\n" + table(runs) + "\n\n## Update size per layer (first 10% of updates)"
            "\n\n" + size_table(runs) + "\n\n## Update size against the loss (means over seeds)"
            "\n\n" + shrink_table(runs) + "\n")


def replot(out: Path) -> str:
    runs = load_runs(out)
    (out / "plots").mkdir(exist_ok=True)
    for env in sorted({d["env"] for d in runs}):
        for seed0 in sorted({d["seeds"][0] for d in runs if d["env"] == env}):
            sel = [d for d in runs if d["env"] == env and d["seeds"][0] == seed0]
            base = [d for d in sel if label_of(d) in ("adam", "muon")]
            if base:
                plot(base, env, out / "plots" / f"{env}.seeds{seed0}.png")
            if len(sel) > 2:
                plot_candidates(sel, env, out / "plots" / f"{env}.seeds{seed0}.candidates.png")
    text = tables(runs)
    (out / "table.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", help=f"any env with a preset; a success is defined for "
                   f"{', '.join(sorted(SUCCESS_ABOVE))} (elsewhere: never)")
    p.add_argument("--optimizer", default="muon")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                   help="config or optimizer overrides on top of the preset")
    p.add_argument("--label", help="name of the run in the table (default: the optimizer)")
    p.add_argument("--points", type=int, default=100)
    p.add_argument("--eval-episodes", type=int, default=64)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--replot", action="store_true")
    args = p.parse_args(argv)
    if args.replot:
        print(replot(args.out))
        return 0
    overrides = dict((k, parse_value(v)) for k, v in (s.split("=", 1) for s in args.set))
    data = run(args.env, args.optimizer, args.seeds, overrides, args.points, args.eval_episodes)
    data["label"] = args.label or args.optimizer
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    name = f"{args.env}.{data['label']}.seeds{args.seeds[0]}-{args.seeds[-1]}.json"
    data = {**data, "curves": compact(data["curves"]), "update_size": compact(data["update_size"]),
            "early": compact(data["early"])}
    (args.out / "runs" / name).write_text(json.dumps(data) + "\n")
    print(f"{args.env} {data['label']} seeds {args.seeds}: greedy {data['greedy_return']}, "
          f"first success {data['first_success_update']}, wall {data['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
