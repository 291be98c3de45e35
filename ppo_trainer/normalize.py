"""Running observation normalization and return-based reward scaling, as jittable state.

What CleanRL's ``NormalizeObservation`` / ``NormalizeReward`` wrappers and PureJaxRL's
``NormalizeVecObservation`` / ``NormalizeVecReward`` do, but as a pytree in the trainer's
``RunnerState`` instead of inside the env state. That way the statistics are saved in
checkpoints, restored on resume, applied unchanged (frozen) by greedy evaluation, and, because
every mean is taken over the env axis of a (possibly sharded) batch, they are statistics of the
global batch when the environments are split over several devices (XLA inserts the all-reduce).

- observations: ``(obs - mean) / sqrt(var + eps)``, clipped to ``+-clip_obs``; mean and var are
  updated with every step's batch of observations (all envs) before it is normalized.
- rewards: each env keeps its discounted return ``G <- gamma * G * (1 - done) + r``; the reward
  is divided by ``sqrt(var(G) + eps)``, the running variance of ``G`` over all envs and steps,
  and clipped to ``+-clip_reward``. The mean is not subtracted (it would change the optimum).

The update of mean/var from a batch is the parallel algorithm of Chan et al. (also CleanRL's and
gymnasium's ``RunningMeanStd``), written out because it is four lines of ``jnp`` and no JAX
library keeps it as a pytree.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

EPS = 1e-8


class RunningMeanStd(NamedTuple):
    mean: jax.Array
    var: jax.Array
    count: jax.Array  # float32 scalar; starts at a tiny value, as in gymnasium (1e-4)


class NormState(NamedTuple):
    """Normalization statistics carried in ``RunnerState`` (present even when unused: tiny)."""

    obs: RunningMeanStd  # over one observation's shape
    ret: RunningMeanStd  # over the scalar discounted return
    returns: jax.Array  # (num_envs,) discounted return of each env's current episode


def init_stats(shape: tuple[int, ...]) -> RunningMeanStd:
    return RunningMeanStd(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32),
                          jnp.asarray(1e-4, jnp.float32))


def init_norm(obs_shape: tuple[int, ...], num_envs: int) -> NormState:
    return NormState(init_stats(obs_shape), init_stats(()), jnp.zeros((num_envs,), jnp.float32))


def update_stats(stats: RunningMeanStd, batch: jax.Array) -> RunningMeanStd:
    """Merge a batch (leading axis = samples) into the running mean and variance."""
    batch = batch.astype(jnp.float32)
    n = jnp.asarray(batch.shape[0], jnp.float32)
    batch_mean = batch.mean(axis=0)
    batch_var = batch.var(axis=0)
    delta = batch_mean - stats.mean
    total = stats.count + n
    mean = stats.mean + delta * n / total
    m2 = stats.var * stats.count + batch_var * n + jnp.square(delta) * stats.count * n / total
    return RunningMeanStd(mean, m2 / total, total)


def normalize_obs(stats: RunningMeanStd, obs: jax.Array, clip: float) -> jax.Array:
    """Normalized observations (any leading axes)."""
    return jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + EPS), -clip, clip)


def scale_reward(stats: RunningMeanStd, reward: jax.Array, clip: float) -> jax.Array:
    return jnp.clip(reward / jnp.sqrt(stats.var + EPS), -clip, clip)


def update_returns(norm: NormState, reward: jax.Array, done: jax.Array,
                   gamma: float) -> NormState:
    """Add one step's rewards to each env's discounted return and merge those into the stats.

    The step's reward joins the episode it ends; the return restarts at 0 after it. (Gymnasium's
    ``NormalizeReward`` and PureJaxRL's ``NormalizeVecReward`` zero the return *before* adding
    the final reward, so a terminal reward starts the next episode's return there.)
    """
    returns = norm.returns * gamma + reward
    ret = update_stats(norm.ret, returns)
    return norm._replace(ret=ret, returns=returns * (1.0 - done.astype(jnp.float32)))
