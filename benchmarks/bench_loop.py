"""Muon vs Adam speed on the PPO configurations, measured in ONE process, interleaved.

For each configuration it builds the training program exactly as ``ppo-train`` does
(``ppo_trainer.app.build``), once per optimizer variant, compiles everything first, then times
rounds of A, B, C, A, B, C, ... so that a slower or busier machine affects every variant alike.
It reports two ratios per variant, both relative to Adam in the same process:

* optimizer step: ``tx.update`` + ``apply_updates`` on the network's parameters (the optimizer
  the registry builds for that config, clip included), 64 steps in one ``lax.scan``;
* whole loop: env steps/s of ``trainer.run(state, updates)`` (collect, GAE, epochs of
  minibatch steps), one seed.

Ratios compare each variant's fastest round with Adam's fastest (other jobs on the machine only
ever slow a run down, so the best of several interleaved rounds is the least disturbed), and the
median of the per-round ratios is shown beside them. Prints a markdown table.

    python benchmarks/bench_loop.py                        # every configuration, ~10 min here
    python benchmarks/bench_loop.py --configs cartpole acrobot --rounds 5
    python benchmarks/bench_loop.py --previous             # + the previous Muon defaults
    python benchmarks/bench_loop.py --configs snake-transformer-128 snake-transformer-256  # GPU
    python benchmarks/bench_loop.py --configs cartpole snake --rounds 3 --json loop.json
    python benchmarks/bench_loop.py --rnn none gru --configs cartpole breakout-mlp --json x.json
    python benchmarks/bench_loop.py --across --configs snake-12x12 jumanji-snake --json x.json

``--rnn CELL ...`` times network variants instead of optimizers: the same config (Adam) with
each ``--rnn`` cell (``rnn_size`` = the MLP's ``hidden_size``), env steps/s relative to the
first cell, interleaved the same way; beside each, an estimate of what its FLOPs predict:
XLA's ``cost_analysis`` of one env step, one policy step (``trainer.act``) and one
forward+backward pass of the policy and value on a single time step, combined per env step
as env + forward + epochs x forward-backward (XLA counts a ``while``/``scan`` body once, so a
whole ``trainer.run`` cannot be costed directly).

``--json OUT`` also writes every round's measurement per configuration and variant, with the
command, the date, the hardware and the package versions (``benchmarks/make_tables.py`` makes
docs/speed.md's table from docs/results/speed/loop.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import optax

from ppo_trainer.app.build import build
from ppo_trainer.config import TrainConfig
from ppo_trainer.optim import make_optimizer
from ppo_trainer.presets import preset_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import record  # noqa: E402

OPT_STEPS = 64


@dataclass(frozen=True)
class Bench:
    """One configuration: how to make its config for an optimizer, and how many updates."""

    name: str
    make: Callable[..., TrainConfig]
    updates: int
    note: str


def _cfg(**fields: Any) -> Callable[..., TrainConfig]:
    def make(**kw: Any) -> TrainConfig:
        return TrainConfig(**{**fields, **kw})

    return make


def _preset(name: str, **fields: Any) -> Callable[..., TrainConfig]:
    def make(**kw: Any) -> TrainConfig:
        return preset_config(name, **{**fields, **kw})

    return make


BLINES = dict(update_epochs=4, network="mlp", num_hidden_layers=2)
CONFIGS = {
    "cartpole": Bench(
        "CartPole-v1", _preset("CartPole-v1"), 100,
        "preset (PureJaxRL): 4 envs x 128 steps, 4 x 4 minibatches, MLP 64x2",
    ),
    "cartpole-64": Bench(
        "CartPole-v1", _preset("CartPole-v1", num_envs=64), 5,
        "preset with 64 envs: 64 x 128 steps, 4 x 4 minibatches (16 sequences each), MLP 64x2",
    ),
    "acrobot": Bench(
        "Acrobot-v1",
        _cfg(env="Acrobot-v1", num_envs=16, num_steps=32, num_minibatches=4, hidden_size=64,
             **BLINES),
        100, "gymnax-blines: 16 envs x 32 steps, 4 x 4 minibatches, MLP 64x2",
    ),
    "breakout-mlp": Bench(
        "Breakout-MinAtar",
        _cfg(env="Breakout-MinAtar", num_envs=64, num_steps=128, num_minibatches=8,
             hidden_size=256, **BLINES),
        2, "gymnax-blines-like: 64 envs x 128 steps, 4 x 8 minibatches, MLP 256x2",
    ),
    "breakout-cnn": Bench(
        "Breakout-MinAtar",
        _cfg(env="Breakout-MinAtar", network="cnn", num_envs=64, num_steps=128, update_epochs=4,
             num_minibatches=8),
        1, "64 envs x 128 steps, 4 x 8 minibatches, CNN (2 convs 16/32 + Dense 128)",
    ),
    "snake": Bench(
        "Snake-v0", _preset("Snake-v0"), 2,
        "preset: 128 envs x 128 steps, 4 x 4 minibatches, MLP 128x2",
    ),
    "snake-transformer-128": Bench(
        "Snake-v0",
        _preset("Snake-v0", network="transformer", d_model=128, num_layers=4, num_heads=8),
        2, "GPU: Snake 10x10 preset, transformer d_model 128 / 4 layers / 8 heads",
    ),
    "snake-transformer-256": Bench(
        "Snake-v0",
        _preset("Snake-v0", network="transformer", d_model=256, num_layers=6, num_heads=8),
        2, "GPU: Snake 10x10 preset, transformer d_model 256 / 6 layers / 8 heads",
    ),
    # Snake-v0 next to Jumanji's Snake-v1 on the same 12x12 board, the same trainer settings
    # (the ecosystem group's presets): --across snake-12x12 jumanji-snake
    "snake-12x12": Bench(
        "Snake-v0 12x12", _preset("Snake-v0-12x12"), 4,
        "preset Snake-v0-12x12: 64 envs x 64 steps, 4 x 4 minibatches, shared MLP 128x2",
    ),
    "jumanji-snake": Bench(
        "jumanji/Snake-v1", _preset("jumanji/Snake-v1"), 4,
        "preset jumanji/Snake-v1 (12x12): 64 envs x 64 steps, 4 x 4 minibatches, shared MLP 128x2",
    ),
}
CPU_CONFIGS = ["cartpole", "acrobot", "breakout-mlp", "breakout-cnn", "snake"]
PREVIOUS = {"ns_steps": 5, "muon_heads": True}  # the Muon defaults before docs/speed.md


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def variants(previous: bool, extra: list[str]) -> dict[str, dict[str, Any]]:
    """Adam, Muon (defaults), optionally Muon's previous defaults and ``KEY=VALUE,...`` Muon
    variants (``ns_steps=2``; ``muon_heads=false``)."""
    out: dict[str, dict[str, Any]] = {"adam": {"optimizer": "adam"}, "muon": {"optimizer": "muon"}}
    if previous:
        out["muon (quintic 5)"] = {"optimizer": "muon", "optimizer_kwargs": dict(PREVIOUS)}
    for spec in extra:
        kwargs = {k: _value(v) for k, v in (item.split("=", 1) for item in spec.split(","))}
        out[f"muon {spec}"] = {"optimizer": "muon", "optimizer_kwargs": kwargs}
    return out


def _timer(fn: Callable[[], Any]) -> Callable[[], float]:
    def timed() -> float:
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        return time.perf_counter() - t0

    return timed


def optimizer_step(cfg: TrainConfig, params: Any) -> Callable[[], float]:
    """Seconds per ``tx.update`` + ``apply_updates`` of the registry's optimizer for ``cfg``."""
    tx, _ = make_optimizer(cfg)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    grads = treedef.unflatten(
        [0.01 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)]
    )

    def body(carry: Any, _: None) -> tuple[Any, None]:
        p, s = carry
        g = jax.tree.map(lambda a, b: a + 1e-3 * b, grads, p)  # changes every step
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    state = tx.init(params)
    run = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), None, length=OPT_STEPS)[0])
    compiled = run.lower(params, state).compile()
    timed = _timer(lambda: compiled(params, state))
    return lambda: timed() / OPT_STEPS


def timed_run(cfg: TrainConfig, updates: int) -> tuple[Callable[[], float], Any]:
    """Seconds of one compiled ``trainer.run(state, updates)`` with ``cfg.num_seeds`` seeds
    vmapped (built as ``ppo-train`` builds it, compiled before the first call), and the initial
    runner state (also used by ``bench_rejax.py``)."""
    setup = build(cfg)
    trainer = setup.trainer
    state = jax.jit(jax.vmap(trainer.init))(setup.keys)
    compiled = jax.jit(jax.vmap(lambda s: trainer.run(s, updates))).lower(state).compile()
    return _timer(lambda: compiled(state)), state


def whole_loop(cfg: TrainConfig, updates: int) -> tuple[Callable[[], float], Any]:
    """Env steps/s of ``updates`` PPO updates (one seed), and the network's parameters."""
    timed, state = timed_run(cfg.replace(num_seeds=1), updates)
    steps = updates * cfg.batch_size
    return (lambda: steps / timed()), jax.tree.map(lambda x: x[0], state.params)


def interleave(fns: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    for fn in fns.values():  # warm-up
        fn()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            out[k].append(fn())
    return out


def ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of ``a / b`` (paired: the same round's two measurements)."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def bench(key: str, rounds: int, vs: dict[str, dict[str, Any]], updates: int | None
          ) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The printed rows of one configuration, and its raw measurements (every round)."""
    b = CONFIGS[key]
    cfgs = {v: b.make(**kw) for v, kw in vs.items()}
    n = updates or b.updates
    loops, steps = {}, {}
    for v, cfg in cfgs.items():
        loop, params = whole_loop(cfg, n)
        loops[v] = loop
        steps[v] = optimizer_step(cfg, params)
    t_step = interleave(steps, rounds)
    sps = interleave(loops, rounds)
    rows, raw = [], []
    cfg = cfgs["adam"]
    for v in vs:
        raw.append({"config": key, "env": b.name, "note": b.note, "optimizer": v,
                    "updates": n, "batch_size": cfg.batch_size,
                    "opt_step_s": t_step[v], "env_steps_per_s": sps[v]})
        rows.append({
            "config": f"{b.name} ({key})",
            "optimizer": v,
            "opt. step (us)": f"{statistics.median(t_step[v]) * 1e6:,.0f}",
            "opt. step / Adam": f"{min(t_step[v]) / min(t_step['adam']):.2f}x",
            "env steps/s (best)": f"{max(sps[v]):,.0f}",
            "env steps/s / Adam": f"{max(sps[v]) / max(sps['adam']):.2f}x",
            "median of per-round": f"{ratio(sps[v], sps['adam']):.2f}x",
            "per round": " ".join(f"{a / b:.2f}" for a, b in zip(sps[v], sps["adam"], strict=True)),
            "timed": f"{rounds} x {n} updates x {cfg.batch_size:,} steps",
        })
    return rows, raw


def step_flops(cfg: TrainConfig) -> dict[str, float]:
    """XLA's FLOP counts per env step for ``cfg`` (one seed): the env's step, the policy's
    forward step and a forward+backward pass, each on the batch of envs, divided by it;
    ``per_env_step`` = env + forward + ``update_epochs`` x forward-backward."""
    setup = build(cfg.replace(num_seeds=1))
    trainer, env, env_params = setup.trainer, setup.env, setup.env_params
    state = jax.jit(jax.vmap(trainer.init))(setup.keys)
    params = jax.tree.map(lambda x: x[0], state.params)
    n = cfg.num_envs
    key = jax.random.PRNGKey(0)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, n), env_params)
    carry = trainer.initial_carry(n)
    actions = jax.vmap(env.action_space(env_params).sample)(jax.random.split(key, n))

    def scalar(p: Any) -> jax.Array:
        _, pi, value = trainer.act(p, carry, obs)
        return pi.log_prob(actions).sum() + value.sum()

    def flops(fn: Callable[..., Any], *args: Any) -> float:
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return float(cost.get("flops", 0.0)) / n

    env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    out = {"env": flops(lambda k, s, a: env_step(k, s, a, env_params),
                        jax.random.split(key, n), env_state, actions),
           "forward": flops(scalar, params), "forward_backward": flops(jax.grad(scalar), params)}
    out["per_env_step"] = out["env"] + out["forward"] + cfg.update_epochs * out["forward_backward"]
    return out


def bench_networks(key: str, rounds: int, cells: list[str], optimizer: str,
                   updates: int | None) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """``bench`` for network variants: the config with each ``--rnn`` cell, same optimizer."""
    b = CONFIGS[key]
    base = b.make(optimizer=optimizer)
    cfgs = {c: base.replace(rnn=c, rnn_size=base.hidden_size) for c in cells}
    n = updates or b.updates
    loops = {c: whole_loop(cfg, n)[0] for c, cfg in cfgs.items()}
    costs = {c: step_flops(cfg) for c, cfg in cfgs.items()}
    sps = interleave(loops, rounds)
    ref = cells[0]
    rows, raw = [], []
    for c in cells:
        raw.append({"config": key, "env": b.name, "note": b.note, "optimizer": optimizer,
                    "rnn": c, "rnn_size": cfgs[c].rnn_size, "updates": n,
                    "batch_size": base.batch_size, "env_steps_per_s": sps[c], "flops": costs[c]})
        rows.append({
            "config": f"{b.name} ({key})", "network": f"--rnn {c}",
            "env steps/s (best)": f"{max(sps[c]):,.0f}",
            f"time / {ref}": f"{max(sps[ref]) / max(sps[c]):.2f}x",
            "median of per-round": f"{ratio(sps[ref], sps[c]):.2f}x",
            "FLOPs per env step": f"{costs[c]['per_env_step']:,.0f}",
            f"FLOPs / {ref}": f"{costs[c]['per_env_step'] / costs[ref]['per_env_step']:.2f}x",
            "timed": f"{rounds} x {n} updates x {base.batch_size:,} steps",
        })
    return rows, raw


def bench_across(keys: list[str], rounds: int, optimizer: str, updates: int | None
                 ) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """``bench`` across configurations (envs) instead of optimizers: each config's whole loop
    with one optimizer, the configs interleaved round by round, relative to the first."""
    cfgs = {k: CONFIGS[k].make(optimizer=optimizer) for k in keys}
    n = {k: updates or CONFIGS[k].updates for k in keys}
    sps = interleave({k: whole_loop(cfg, n[k])[0] for k, cfg in cfgs.items()}, rounds)
    ref = keys[0]
    rows, raw = [], []
    for k in keys:
        b = CONFIGS[k]
        raw.append({"config": k, "env": b.name, "note": b.note, "optimizer": optimizer,
                    "updates": n[k], "batch_size": cfgs[k].batch_size,
                    "env_steps_per_s": sps[k]})
        rows.append({
            "config": f"{b.name} ({k})", "optimizer": optimizer,
            "env steps/s (best)": f"{max(sps[k]):,.0f}",
            f"env steps/s / {ref}": f"{max(sps[k]) / max(sps[ref]):.2f}x",
            "median of per-round": f"{ratio(sps[k], sps[ref]):.2f}x",
            "timed": f"{rounds} x {n[k]} updates x {cfgs[k].batch_size:,} steps",
        })
    return rows, raw


def markdown(rows: list[dict[str, str]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=CPU_CONFIGS, choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per config")
    parser.add_argument("--updates", type=int, default=None,
                        help="PPO updates per timed run (default: per config)")
    parser.add_argument("--previous", action="store_true",
                        help=f"also time Muon with its previous defaults {PREVIOUS}")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE,...",
                        help="also time Muon with these hyperparameters (repeatable)")
    parser.add_argument("--rnn", nargs="+", default=None, metavar="CELL",
                        help="time network variants instead (none gru lstm: the first is the "
                             "baseline), with --optimizer")
    parser.add_argument("--across", action="store_true",
                        help="time the --configs against each other (the first is the baseline)"
                             " with --optimizer, instead of optimizers within each")
    parser.add_argument("--optimizer", default="adam", help="with --rnn or --across: the optimizer")
    parser.add_argument("--json", metavar="OUT", default=None,
                        help="also write the measured rounds, command, date, hardware, versions")
    args = parser.parse_args()
    vs = variants(args.previous, args.variant)
    rows, raw = [], []
    if args.across:
        rows, raw = bench_across(args.configs, args.rounds, args.optimizer, args.updates)
        print(markdown(rows), flush=True)
    for key in [] if args.across else args.configs:
        printed, measured = (
            bench_networks(key, args.rounds, args.rnn, args.optimizer, args.updates) if args.rnn
            else bench(key, args.rounds, vs, args.updates))
        rows += printed
        raw += measured
        print(markdown(printed), flush=True)
    device = jax.devices()[0]
    print(f"\njax {jax.__version__} on {device.platform} ({device.device_kind}); "
          f"{platform.processor() or platform.machine()}; interleaved in one process, "
          f"{args.rounds} rounds. Ratios: best (fastest) round of each, relative to "
          f"{'--rnn ' + args.rnn[0] if args.rnn else args.configs[0] if args.across else 'Adam'}"
          "'s best "
          "(interference from other jobs only slows a run down); also the median of the "
          "per-round ratios")
    for key in args.configs:
        print(f"- {CONFIGS[key].name} ({key}): {CONFIGS[key].note}")
    print()
    print(markdown(rows))
    if args.json:
        devices = [f"{d.platform} ({d.device_kind})" for d in jax.devices()]
        out = {**record(devices), "rounds": args.rounds, "opt_steps_per_timing": OPT_STEPS,
               "rows": raw}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
