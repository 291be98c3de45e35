"""The best expected return on gymnax's Pendulum-v1, by dynamic programming.

gymnax-blines reports -130 for its PPO checkpoint on Pendulum-v1: the mean of 164 rollouts of
a stochastic policy.  Whether any policy can reach that *in expectation* is a question about
the env, not about PPO, and Pendulum is small enough to answer it: finite-horizon value
iteration over a (theta, theta_dot) grid for the env's 200 steps, then the one-step-lookahead
controller on that value function, rolled out in the real gymnax env from its own reset
distribution.  The controller's mean return is a lower bound on the optimum (it is a policy);
the value function at the same start states is the DP's own estimate of it.  Both plan with
gymnax's own ``step_env``; only the grid, its lookup and the backup are written here, since no
library solves a gymnax env by DP.

It also prints how often a 164-episode mean of that near-optimal controller reaches a given
return (``--reference``), resampling its episode returns: the chance that a single reading
like gymnax-blines' lands there by luck.

    python benchmarks/pendulum_optimum.py                      # 401x401 grid, 41 torques
    python benchmarks/pendulum_optimum.py --json docs/results/pendulum-optimum/optimum.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments.classic_control.pendulum import EnvState

ENV_ID = "Pendulum-v1"


def _wrap(theta: jax.Array) -> jax.Array:
    return ((theta + jnp.pi) % (2 * jnp.pi)) - jnp.pi


def _transition(env, params, theta, theta_dot, torque):
    """gymnax's own ``step_env`` for every (theta, theta_dot, torque) of broadcast arrays:
    reward and next state, so the DP plans with the env's exact dynamics."""
    theta, theta_dot, torque = jnp.broadcast_arrays(theta, theta_dot, torque)

    def one(th, dot, u):
        state = EnvState(theta=th, theta_dot=dot, last_u=jnp.float32(0.0), time=0)
        _, nxt, reward, _, _ = env.step_env(jax.random.PRNGKey(0), state, u[None], params)
        return reward, nxt.theta, nxt.theta_dot

    flat = [x.reshape(-1) for x in (theta, theta_dot, torque)]
    return tuple(y.reshape(theta.shape) for y in jax.vmap(one)(*flat))


class Grid:
    """A periodic theta axis times a bounded theta_dot axis, with bilinear lookup."""

    def __init__(self, num_theta: int, num_dot: int, max_speed: float) -> None:
        self.num_theta, self.num_dot, self.max_speed = num_theta, num_dot, max_speed
        self.theta = jnp.linspace(-jnp.pi, jnp.pi, num_theta, endpoint=False)
        self.dot = jnp.linspace(-max_speed, max_speed, num_dot)

    def lookup(self, values: jax.Array, theta: jax.Array, theta_dot: jax.Array) -> jax.Array:
        ft = (_wrap(theta) + jnp.pi) / (2 * jnp.pi / self.num_theta)
        i0 = jnp.floor(ft).astype(jnp.int32)
        a = ft - i0
        i0, i1 = i0 % self.num_theta, (i0 + 1) % self.num_theta
        step = 2 * self.max_speed / (self.num_dot - 1)
        fd = jnp.clip((theta_dot + self.max_speed) / step, 0.0, self.num_dot - 1 - 1e-6)
        j0 = jnp.floor(fd).astype(jnp.int32)
        b = fd - j0
        j1 = jnp.minimum(j0 + 1, self.num_dot - 1)
        return (
            (1 - a) * (1 - b) * values[i0, j0]
            + a * (1 - b) * values[i1, j0]
            + (1 - a) * b * values[i0, j1]
            + a * b * values[i1, j1]
        )


def value_iteration(env, params, grid: Grid, torques: jax.Array) -> jax.Array:
    """``V[k]``: the best return with ``k`` steps to go, for k = 0..max_steps_in_episode."""
    theta, dot = jnp.meshgrid(grid.theta, grid.dot, indexing="ij")

    def backup(values, _):
        def q(torque):
            reward, nt, nd = _transition(env, params, theta, dot, torque)
            return reward + grid.lookup(values, nt, nd)

        new = jax.lax.map(q, torques).max(axis=0)
        return new, new

    zero = jnp.zeros_like(theta)
    _, stages = jax.lax.scan(backup, zero, None, length=params.max_steps_in_episode)
    return jnp.concatenate([zero[None], stages])


def controller_returns(
    env,
    params,
    grid: Grid,
    values: jax.Array,
    num_episodes: int,
    seed: int,
    num_torques: int = 401,
) -> tuple[np.ndarray, np.ndarray]:
    """Episode returns of the lookahead controller in the real env, and V at the starts."""
    horizon = params.max_steps_in_episode
    torques = jnp.linspace(-params.max_torque, params.max_torque, num_torques)

    def episode(key):
        reset_key, step_key = jax.random.split(key)
        _, state = env.reset(reset_key, params)
        start_value = grid.lookup(values[horizon], state.theta, state.theta_dot)

        def act(carry, k):
            state, total = carry
            reward, nt, nd = _transition(env, params, state.theta, state.theta_dot, torques)
            torque = torques[jnp.argmax(reward + grid.lookup(values[horizon - 1 - k], nt, nd))]
            _, state, reward, _, _ = env.step_env(step_key, state, torque[None], params)
            return (state, total + reward), None

        (_, total), _ = jax.lax.scan(act, (state, jnp.float32(0.0)), jnp.arange(horizon))
        return total, start_value

    keys = jax.random.split(jax.random.PRNGKey(seed), num_episodes)
    totals, starts = jax.jit(jax.vmap(episode))(keys)
    return np.asarray(totals), np.asarray(starts)


def chance_of_reaching(returns: np.ndarray, reference: float, sample: int, seed: int) -> float:
    """Fraction of ``sample``-episode means (resampled with replacement) at or above reference."""
    rng = np.random.default_rng(seed)
    means = rng.choice(returns, size=(20_000, sample), replace=True).mean(axis=1)
    return float((means >= reference).mean())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=int, nargs=2, default=(401, 401), metavar=("THETA", "DOT"))
    parser.add_argument("--torques", type=int, default=41, help="torque levels in the DP")
    parser.add_argument("--episodes", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", type=float, default=-130.0)
    parser.add_argument("--reference-episodes", type=int, default=164)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    env, params = gymnax.make(ENV_ID)
    grid = Grid(*args.grid, max_speed=params.max_speed)
    torques = jnp.linspace(-params.max_torque, params.max_torque, args.torques)
    start = time.perf_counter()
    values = jax.block_until_ready(value_iteration(env, params, grid, torques))
    dp_seconds = time.perf_counter() - start
    returns, start_values = controller_returns(env, params, grid, values, args.episodes, args.seed)
    result = {
        "env": ENV_ID,
        "grid": list(args.grid),
        "torques": args.torques,
        "episodes": args.episodes,
        "controller_mean_return": float(returns.mean()),
        "controller_standard_error": float(returns.std(ddof=1) / np.sqrt(len(returns))),
        "controller_episode_std": float(returns.std(ddof=1)),
        "dp_value_at_starts": float(start_values.mean()),
        "reference": args.reference,
        "reference_episodes": args.reference_episodes,
        "chance_reference_sample_reaches_it": chance_of_reaching(
            returns, args.reference, args.reference_episodes, args.seed
        ),
        "dp_seconds": dp_seconds,
    }
    print(
        f"{ENV_ID}, DP on a {args.grid[0]}x{args.grid[1]} grid x {args.torques} torques "
        f"({dp_seconds:.1f} s):\n"
        f"  lookahead controller, {args.episodes} episodes: mean return "
        f"{result['controller_mean_return']:.2f} +- {result['controller_standard_error']:.2f} "
        f"(standard error), episode std {result['controller_episode_std']:.1f}\n"
        f"  DP value at the same start states: {result['dp_value_at_starts']:.2f}\n"
        f"  chance that a {args.reference_episodes}-episode mean of this controller is >= "
        f"{args.reference:g}: {result['chance_reference_sample_reaches_it']:.3f}"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
