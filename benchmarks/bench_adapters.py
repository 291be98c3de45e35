"""Random-policy env steps/s of suite envs through our adapters against each suite's own loop.

For each ``--env SUITE/ID`` (repeatable) two rollouts run, each N copies in one jitted
``lax.scan`` of ``--steps`` steps with auto-reset inside the loop and every observation consumed
(summed into the result, as a network would read it; XLA removes an unread observation):

- ``adapter``: ``suites.make`` -> gymnax's ``LogWrapper`` -> ``envs.batched_step``, exactly how
  the trainer steps its envs (an adapter with a ``step_batch`` runs it there);
- ``native``: the suite's own vectorised loop with its own auto-reset: jumanji
  ``AutoResetWrapper`` + ``vmap``; navix's ``env.step`` (it resets itself); craftax
  ``make_craftax_env_from_name(id, auto_reset=True)`` + ``vmap``; brax
  ``brax.envs.wrappers.training.wrap(env, episode_length)``; playground
  ``mujoco_playground.wrapper.wrap_for_brax_training`` (both reset to a cached first state, as our
  physics adapters do), each around the adapter's own inner env (its backend or MJX ``impl``
  and episode length);
- and, for an adapter that has a ``step_batch``, ``adapter, reset every step``: gymnax's own
  ``Environment.step`` under ``vmap`` (a full reset per env per step), what the hook saves.

Both sides draw their actions the same way, one batched draw per step from the adapter's action
space (``_sampler``: ``randint`` for ``Discrete(n)``, ``uniform`` in a ``Box``'s bounds), so
only the env step differs; the adapter side also splits one gymnax step key per env, which the
gymnax API needs (measured: no visible cost at 1024 envs). Compile time is
excluded, every timing ends with ``block_until_ready``, and the rollouts are timed in
interleaved rounds so that a busy machine slows them alike: on a shared machine only the
same-process ratios mean anything. A suite whose package (or adapter) is missing is skipped with
one line.

    python benchmarks/bench_adapters.py --env jumanji/Snake-v1 --env navix/Navix-DoorKey-5x5-v0
    python benchmarks/bench_adapters.py --env jumanji/Snake-v1 --env craftax/Craftax-Classic-Symbolic-v1@64

``--env SUITE/ID@N`` times that env with N envs instead of ``--num-envs`` (Craftax's own loop
generates a world per env per step: at 1024 envs one timed run takes minutes on a CPU).

``--json OUT`` writes every round's steps/s per rollout with the command, date, CPU model, core
count and versions (``benchmarks/make_tables.py`` builds docs/speed.md's speed-adapters table
from docs/results/speed/adapters.json).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_env import measure  # noqa: E402  (interleaved rounds, one timing rule)
from provenance import record  # noqa: E402

PACKAGES = {"jumanji": "jumanji", "navix": "navix", "craftax": "craftax", "brax": "brax",
            "playground": "mujoco_playground"}


def _consume(tree: Any) -> jax.Array:
    """A number that depends on every observation leaf (so XLA computes them)."""
    return sum(jnp.sum(jnp.asarray(x, jnp.float32)) for x in jax.tree.leaves(tree)) * 1e-9


def _scan(init: Callable, body: Callable, steps: int) -> Callable:
    """Jitted ``key -> total``: ``init(key) -> carry``, ``body(carry, key) -> (carry, total)``."""
    def rollout(key: jax.Array) -> jax.Array:
        key, k0 = jax.random.split(key)

        def one(carry, k):
            carry, total = carry
            carry, add = body(carry, k)
            return (carry, total + add), None

        (_, total), _ = jax.lax.scan(one, (init(k0), 0.0), jax.random.split(key, steps))
        return total

    return jax.jit(rollout)


def _sampler(space: Any, num_envs: int) -> Callable[[jax.Array], jax.Array]:
    """Uniform random actions for ``num_envs`` envs from a gymnax space, one draw per batch
    (the same on both sides: a ``vmap`` of ``space.sample`` over split keys would time key
    splitting on one side only)."""
    from gymnax.environments import spaces

    if isinstance(space, spaces.Discrete):
        return lambda key: jax.random.randint(key, (num_envs,), 0, space.n).astype(space.dtype)
    if isinstance(space, spaces.Box):
        shape = (num_envs, *space.shape)
        return lambda key: jax.random.uniform(key, shape, space.dtype, space.low, space.high)
    return lambda key: jax.vmap(space.sample)(jax.random.split(key, num_envs))


def adapter_rollout(env_id: str, num_envs: int, steps: int, kwargs: dict[str, Any],
                    reset_every_step: bool = False) -> Callable:
    """Our adapter as the trainer steps it (``LogWrapper`` + ``envs.batched_step``); with
    ``reset_every_step``, gymnax's own ``Environment.step`` under ``vmap`` instead."""
    from gymnax.environments.environment import Environment
    from gymnax.wrappers.purerl import LogWrapper

    from ppo_trainer import envs, suites

    env, params = suites.make(env_id, **kwargs)
    sample = _sampler(env.action_space(params), num_envs)
    wrapped = LogWrapper(env)
    if reset_every_step:
        step = jax.vmap(lambda k, s, a, p: Environment.step(env, k, s, a, p),
                        in_axes=(0, 0, 0, None))
        reset = jax.vmap(env.reset, in_axes=(0, None))
    else:
        step = envs.batched_step(wrapped)
        reset = jax.vmap(wrapped.reset, in_axes=(0, None))

    def init(key):
        return reset(jax.random.split(key, num_envs), params)[1]

    def body(state, key):
        k_act, k_env = jax.random.split(key)
        obs, state, reward, *_ = step(jax.random.split(k_env, num_envs), state, sample(k_act),
                                      params)
        return state, jnp.sum(reward) + _consume(obs)

    return _scan(init, body, steps)


def native_rollout(env_id: str, num_envs: int, steps: int, kwargs: dict[str, Any]) -> Callable:
    """The suite's own vectorised loop with its own auto-reset (module docstring); actions from
    the adapter's action space with the adapter side's ``_sampler``."""
    from ppo_trainer import suites

    suite, name = env_id.split("/", 1)
    adapted, adapted_params = suites.make(env_id, **kwargs)
    sample = _sampler(adapted.action_space(adapted_params), num_envs)
    if suite == "jumanji":
        import jumanji
        from jumanji.wrappers import AutoResetWrapper

        env = AutoResetWrapper(jumanji.make(name, **kwargs))
        reset, step = jax.vmap(env.reset), jax.vmap(env.step)

        def init(key):
            return reset(jax.random.split(key, num_envs))[0]

        def body(state, key):
            state, ts = step(state, sample(key))
            return state, jnp.sum(ts.reward) + _consume(ts.observation)

    elif suite == "navix":
        import navix

        env = navix.make(name, **kwargs)
        reset, step = jax.vmap(env.reset), jax.vmap(env.step)

        def init(key):
            return reset(jax.random.split(key, num_envs))

        def body(ts, key):
            ts = step(ts, sample(key))
            return ts, jnp.sum(ts.reward) + _consume(ts.observation)

    elif suite == "craftax":
        from craftax.craftax_env import make_craftax_env_from_name

        env = make_craftax_env_from_name(name, auto_reset=True)
        params = env.default_params.replace(**kwargs) if kwargs else env.default_params
        reset = jax.vmap(env.reset, in_axes=(0, None))
        step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

        def init(key):
            return reset(jax.random.split(key, num_envs), params)[1]

        def body(state, key):
            k_act, k_env = jax.random.split(key)
            obs, state, reward, _, _ = step(jax.random.split(k_env, num_envs), state,
                                            sample(k_act), params)
            return state, jnp.sum(reward) + _consume(obs)

    elif suite in ("brax", "playground"):
        # the adapter's own inner env (same backend / MJX impl, same episode length) in the
        # suite's training wrappers
        inner, length = adapted.env.env, adapted.episode_length
        if suite == "brax":
            from brax.envs.wrappers.training import wrap

            env = wrap(inner, episode_length=length)
        else:
            from mujoco_playground import wrapper

            env = wrapper.wrap_for_brax_training(inner, episode_length=length, action_repeat=1)

        def init(key):
            # raw uint32 keys: Brax's wrappers size their counters by rng.shape[:-1]
            return env.reset(jax.random.key_data(jax.random.split(key, num_envs)))

        def body(state, key):
            state = env.step(state, sample(key))
            return state, jnp.sum(state.reward) + _consume(state.obs)

    else:
        raise ValueError(f"no native loop for suite {suite!r}")
    return _scan(init, body, steps)


def available(env_id: str) -> str | None:
    """Why ``env_id`` cannot be timed here (one line), or None."""
    suite = env_id.split("/", 1)[0]
    if suite not in PACKAGES:
        return f"no native loop for suite {suite!r} (known: {', '.join(PACKAGES)})"
    if importlib.util.find_spec(PACKAGES[suite]) is None:
        return f"{PACKAGES[suite]} is not installed"
    if importlib.util.find_spec(f"ppo_trainer.adapters.{suite}") is None:
        return f"no ppo_trainer.adapters.{suite} adapter"
    return None


def main(argv: list[str] | None = None) -> None:
    """Parse flags, time every env's rollouts, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", required=True, metavar="SUITE/ID[@N]",
                        help="an env to time (repeatable); @N: with N envs")
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", metavar="OUT", default=None,
                        help="also write every round's steps/s with the command, date and machine")
    args = parser.parse_args(argv)

    fns: dict[str, Callable] = {}
    labels: dict[str, tuple[str, str]] = {}
    sizes: dict[str, int] = {}
    for spec in args.env:
        env_id, _, size = spec.partition("@")
        num_envs = int(size) if size else args.num_envs
        why = available(env_id)
        if why:
            print(f"skipping {env_id}: {why}")
            continue
        rollouts = {"adapter": adapter_rollout(env_id, num_envs, args.steps, {}),
                    "native": native_rollout(env_id, num_envs, args.steps, {})}
        from ppo_trainer import suites

        env, _ = suites.make(env_id)
        if callable(getattr(env, "step_batch", None)):
            rollouts["adapter, reset every step"] = adapter_rollout(
                env_id, num_envs, args.steps, {}, reset_every_step=True)
        for kind, fn in rollouts.items():
            fns[f"{env_id} {kind}"] = fn
            labels[f"{env_id} {kind}"] = (env_id, kind)
            sizes[f"{env_id} {kind}"] = num_envs
    rates = measure(fns, sizes, args.steps, args.repeats)

    device = jax.devices()[0]
    print(f"\n{args.steps} steps per run, {args.repeats} interleaved "
          f"rounds, jax {jax.__version__} on {device.platform} ({device.device_kind})\n")
    print("| env | envs | rollout | best steps/s | median steps/s | median per-round ratio vs "
          "native |")
    print("|---|---:|---|---:|---:|---:|")
    for name, r in rates.items():
        env_id, kind = labels[name]
        native = rates[f"{env_id} native"]
        ratio = statistics.median(a / b for a, b in zip(r, native, strict=True))
        print(f"| {env_id} | {sizes[name]} | {kind} | {max(r):,.0f} | {statistics.median(r):,.0f} | "
              f"{ratio:.2f}x |")
    if args.json:
        settings = {k: getattr(args, k) for k in ("num_envs", "steps", "repeats")}
        out = {**record([f"{device.platform} ({device.device_kind})"]), "settings": settings,
               "rows": [{"env": labels[name][0], "num_envs": sizes[name],
                         "rollout": labels[name][1], "steps_per_s": r}
                        for name, r in rates.items()]}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
