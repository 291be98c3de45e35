"""CartPole-v1 with PureJaxRL's settings: a bounded learning check (CI) and a full run (slow)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppo_trainer.config import TrainConfig, purejaxrl_cartpole
from ppo_trainer.envs import make_env
from ppo_trainer.networks import make_network
from ppo_trainer.optim import make_optimizer
from ppo_trainer.ppo import make_train


def train_seeds(cfg: TrainConfig, num_seeds: int):
    env, env_params = make_env(cfg)
    tx, lr_schedule = make_optimizer(cfg)
    train = jax.jit(jax.vmap(make_train(cfg, env, env_params, tx, lr_schedule=lr_schedule)))
    keys = jax.random.split(jax.random.PRNGKey(cfg.seed), num_seeds)
    state, metrics = train(keys)
    return env, env_params, state, metrics


def greedy_returns(cfg, env, env_params, params, num_episodes: int = 16) -> np.ndarray:
    """Return of the first episode of each of ``num_episodes`` envs under ``pi.mode()``."""
    network = make_network(cfg, env, env_params)
    horizon = int(env_params.max_steps_in_episode)

    def one(params, key):
        keys = jax.random.split(key, num_episodes + 1)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys[1:], env_params)

        def step(carry, key):
            obs, state, ret, alive = carry
            pi, _ = network.apply(params, obs)
            step_keys = jax.random.split(key, num_episodes)
            obs, state, reward, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                step_keys, state, pi.mode(), env_params
            )
            ret = ret + reward * alive
            alive = alive * (1.0 - jnp.logical_or(term, trunc))
            return (obs, state, ret, alive), None

        init = (obs, state, jnp.zeros(num_episodes), jnp.ones(num_episodes))
        (_, _, ret, _), _ = jax.lax.scan(step, init, jax.random.split(keys[0], horizon))
        return ret

    num_seeds = jax.tree.leaves(params)[0].shape[0]
    keys = jax.random.split(jax.random.PRNGKey(123), num_seeds)
    return np.asarray(jax.jit(jax.vmap(one))(params, keys))


@pytest.mark.parametrize("optimizer", ["adam", "muon"])
def test_cartpole_learns_within_a_small_budget(optimizer: str) -> None:
    """150k steps x 2 vmapped seeds (~25 s here): random play scores ~22; learning breaks -> fail."""
    cfg = purejaxrl_cartpole(optimizer=optimizer, total_timesteps=150_000)
    _, _, _, metrics = train_seeds(cfg, num_seeds=2)
    returns = np.asarray(metrics["charts/episodic_return"])
    assert returns.shape == (2, cfg.num_updates)
    late = np.nanmean(returns[:, -20:], axis=1)
    assert (late >= 150).all(), late


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "muon"])
def test_cartpole_solved_500k_steps_8_seeds(optimizer: str) -> None:
    """PureJaxRL's CartPole, 8 seeds: greedy mean >= 475.

    Muon runs with its output heads on Adam (``--no-muon-heads``, the reference Muon's advice):
    with heads on Muon (the default) one of these 8 seeds collapsed late (greedy 264; mean 462.7),
    with heads on Adam all 8 reach 500 (measured; see the README).
    """
    cfg = purejaxrl_cartpole(optimizer=optimizer, total_timesteps=500_000)
    if optimizer == "muon":
        cfg = cfg.replace(optimizer_kwargs={"muon_heads": False})
    env, env_params, state, _ = train_seeds(cfg, num_seeds=8)
    returns = greedy_returns(cfg, env, env_params, state.params)
    assert returns.shape == (8, 16)
    assert returns.mean() >= 475, returns.mean(axis=1)
