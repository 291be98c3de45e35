"""Random-policy throughput of Snake-v0 (gymnax, auto-reset) against jumanji's Snake-v1.

Both environments run N copies under ``vmap`` inside one jitted ``lax.scan`` of ``--steps``
steps, with auto-reset inside the loop and every observation consumed (summed into the result,
as a network would read it; XLA removes an unread observation).  Compile time is excluded and
every timing ends with ``block_until_ready``.  Prints a markdown table with best and median
steps/s and the ratio.
jumanji is timed when it is installed (``pip install jumanji``) unless ``--no-jumanji``.

    python benchmarks/bench_env.py --num-envs 2048 --width 12 --height 12 --steps 1000
    python benchmarks/bench_env.py --config default --config relative-egocentric --no-jumanji

``--json OUT`` also writes every round's steps/s per rollout, with the command, date, CPU model,
core count and versions (``benchmarks/make_tables.py`` builds docs/env.md's speed table from
docs/results/speed/env.json).

``--config`` (repeatable) picks Snake-v0 configurations (see ``CONFIGS``); all rollouts are
timed in interleaved rounds so that a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import record  # noqa: E402


def snake_gymnax_rollout(
    num_envs: int,
    width: int,
    height: int,
    steps: int,
    options: Mapping[str, object] | None = None,
    **overrides: object,
) -> Callable:
    """Jitted ``key -> total reward`` for Snake-v0 with gymnax's auto-reset.

    ``options`` are Snake-v0's constructor options (``actions``, ``observation``,
    ``reachability``, ...: a ``CONFIGS`` entry's first dict), passed to ``gymnax.make`` as they
    are; ``overrides`` replace ``EnvParams`` fields (e.g. ``random_start=True``).
    """
    import gymnax

    import snake_gymnax  # noqa: F401  (registers Snake-v0 even without the auto-load hook)

    env, params = gymnax.make("Snake-v0", width=width, height=height, **(options or {}))
    params = params.replace(**overrides)
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(key: jax.Array) -> jax.Array:
        key, reset_key = jax.random.split(key)
        obs, state = reset(jax.random.split(reset_key, num_envs), params)

        def body(carry, step_key):
            state, total = carry
            action_key, env_key = jax.random.split(step_key)
            action = jax.random.randint(action_key, (num_envs,), 0, env.num_actions)
            obs, state, reward, _, _, _ = step(
                jax.random.split(env_key, num_envs), state, action, params
            )
            # Every observation is consumed, as a trainer's network would: an observation that
            # only rides in the carry is dropped by XLA (dead loop state) and flatters the env.
            return (state, total + reward.sum() + jnp.sum(obs) * 1e-9), None

        (_, total), _ = jax.lax.scan(body, (state, 0.0), jax.random.split(key, steps))
        return total

    return jax.jit(rollout)


def jumanji_rollout(num_envs: int, width: int, height: int, steps: int) -> Callable:
    """Jitted ``key -> total reward`` for jumanji Snake-v1 with ``AutoResetWrapper``."""
    import jumanji
    from jumanji.wrappers import AutoResetWrapper

    env = AutoResetWrapper(jumanji.make("Snake-v1", num_rows=height, num_cols=width))
    reset = jax.vmap(env.reset)
    step = jax.vmap(env.step)

    def rollout(key: jax.Array) -> jax.Array:
        key, reset_key = jax.random.split(key)
        state, timestep = reset(jax.random.split(reset_key, num_envs))

        def body(carry, action_key):
            state, timestep, total = carry
            # Random valid action: uniform over the action mask.
            logits = jnp.where(timestep.observation.action_mask, 0.0, -jnp.inf)
            action = jax.random.categorical(action_key, logits)
            state, timestep = step(state, action)
            seen = jnp.sum(timestep.observation.grid) * 1e-9  # consumed, as for Snake-v0
            return (state, timestep, total + timestep.reward.sum() + seen), None

        (_, _, total), _ = jax.lax.scan(body, (state, timestep, 0.0), jax.random.split(key, steps))
        return total

    return jax.jit(rollout)


# Named Snake-v0 configurations: (constructor options, EnvParams overrides).
CONFIGS: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "default": ({}, {}),
    "relative": ({"actions": "relative"}, {}),
    "egocentric": ({"observation": "egocentric"}, {}),
    "relative-egocentric": ({"actions": "relative", "observation": "egocentric"}, {}),
    "random-start": ({}, {"random_start": True}),
    "food-shaping": ({}, {"food_shaping": 0.5, "food_shaping_decay": 1.0}),
    "reachability": ({"reachability": True}, {}),
    "relative-egocentric-reachability": (
        {"actions": "relative", "observation": "egocentric", "reachability": True}, {}),
    "relative-egocentric-tail": (
        {"actions": "relative", "observation": "egocentric", "tail_channel": True}, {}),
    "relative-egocentric-tail-reach": (
        {"actions": "relative", "observation": "egocentric", "tail_reach": True}, {}),
    "relative-egocentric-reachability-tail-reach": (
        {"actions": "relative", "observation": "egocentric", "reachability": True,
         "tail_reach": True}, {}),
    "relative-egocentric-hunger": (
        {"actions": "relative", "observation": "egocentric", "hunger_channel": True}, {}),
    "relative-egocentric-tail-reach-food-reach": (
        {"actions": "relative", "observation": "egocentric", "tail_reach": True},
        {"food_reach_shaping": 0.5}),
    "relative-egocentric-tail-reach-food-reach-retry": (
        {"actions": "relative", "observation": "egocentric", "tail_reach": True,
         "retry_death": 0.5},
        {"food_reach_shaping": 0.5, "starvation_is_death": True}),
    "relative-egocentric-tail-reach-food-reach-holes": (
        {"actions": "relative", "observation": "egocentric", "tail_reach": True},
        {"food_reach_shaping": 0.5, "hole_shaping": 0.5}),
    "curriculum": ({"curriculum_start": 0.3}, {}),
    "reachability-curriculum": ({"reachability": True, "curriculum_start": 0.3}, {}),
    "all-options": (
        {"actions": "relative", "observation": "egocentric"},
        {"random_start": True, "food_shaping": 0.5, "food_shaping_decay": 1.0},
    ),
}


def measure(
    fns: dict[str, Callable], num_envs: int | dict[str, int], steps: int, repeats: int
) -> dict[str, list[float]]:
    """Steps/s of each rollout in each of ``repeats`` rounds, after one compile run (its time
    printed). ``num_envs``: one batch size, or one per rollout.

    Interleaved: each round times every rollout once, in turn, so a change in the machine's
    load (a shared machine varies by tens of percent) hits all of them alike.
    """
    sizes = num_envs if isinstance(num_envs, dict) else dict.fromkeys(fns, num_envs)
    key = jax.random.key(0)
    for name, fn in fns.items():
        start = time.perf_counter()
        jax.block_until_ready(fn(key))
        print(f"compiled {name} ({time.perf_counter() - start:.0f} s)", flush=True)
    # Keys made up front: an eager fold_in inside the timed region would time its compile.
    keys = jax.block_until_ready([jax.random.fold_in(key, i + 1) for i in range(repeats)])
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(keys[i]))
            rates[name].append(sizes[name] * steps / (time.perf_counter() - start))
    return rates


def main(argv: list[str] | None = None) -> None:
    """Parse flags, time the configurations (and jumanji), print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=2048)
    parser.add_argument("--width", type=int, default=12)
    parser.add_argument("--height", type=int, default=12)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-jumanji", action="store_true", help="time Snake-v0 only")
    parser.add_argument(
        "--config",
        action="append",
        choices=sorted(CONFIGS),
        help="Snake-v0 configuration to time (repeatable; default: default)",
    )
    parser.add_argument("--json", metavar="OUT", default=None,
                        help="also write every round's steps/s with the command, date and machine")
    args = parser.parse_args(argv)

    fns = {}
    for config in args.config or ["default"]:
        options, overrides = CONFIGS[config]
        name = "snake_gymnax Snake-v0" + ("" if config == "default" else f" {config}")
        fns[name] = snake_gymnax_rollout(
            args.num_envs, args.width, args.height, args.steps, options, **overrides
        )
    if not args.no_jumanji and importlib.util.find_spec("jumanji") is None:
        print("jumanji is not installed: timing Snake-v0 only (pip install jumanji)")
    elif not args.no_jumanji:
        fns["jumanji Snake-v1"] = jumanji_rollout(
            args.num_envs, args.width, args.height, args.steps
        )
    rates = measure(fns, args.num_envs, args.steps, args.repeats)
    results = {name: (max(r), statistics.median(r)) for name, r in rates.items()}

    device = jax.devices()[0]
    print(
        f"\n{args.num_envs} envs, {args.width}x{args.height} board, {args.steps} steps per run, "
        f"{args.repeats} interleaved repeats, jax {jax.__version__} on {device.platform} "
        f"({device.device_kind})\n"
    )
    reference = list(results.values())[-1][0]
    print("| environment | best steps/s | median steps/s | ratio (best) |")
    print("|---|---:|---:|---:|")
    for name, (best, median) in results.items():
        print(f"| {name} | {best:,.0f} | {median:,.0f} | {best / reference:.2f}x |")
    if args.json:
        settings = {k: getattr(args, k) for k in ("num_envs", "width", "height", "steps", "repeats")}
        out = {**record([f"{device.platform} ({device.device_kind})"]), "settings": settings,
               "rows": [{"rollout": name, "steps_per_s": r} for name, r in rates.items()]}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
