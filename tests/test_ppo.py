"""PPO trainer: time-limit bootstrapping, determinism, chunked runs, smoke runs on every space."""

from __future__ import annotations

from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from ppo_trainer.config import TrainConfig
from ppo_trainer.envs import make_env
from ppo_trainer.ppo import RunnerState, make_train, make_trainer


def adam_tx(cfg: TrainConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=1e-5))


def tiny(**kw: Any) -> TrainConfig:
    base = dict(
        env="CartPole-v1",
        network="mlp",
        hidden_size=16,
        num_envs=4,
        num_steps=8,
        total_timesteps=64,
        update_epochs=2,
        num_minibatches=2,
        optimizer="adam",
    )
    return TrainConfig(**{**base, **kw})


# --------------------------------------------------------------------------- time limits


@struct.dataclass
class ConstState(environment.EnvState):
    time: int


@struct.dataclass
class ConstParams(environment.EnvParams):
    max_steps_in_episode: int = 4
    reward: float = 1.0


class ConstantRewardEnv(environment.Environment):
    """One action, a constant observation, reward r each step; episodes end only by time limit
    (``terminate=False``) or by termination at the same step (``terminate=True``)."""

    def __init__(self, terminate: bool = False):
        super().__init__()
        self.terminate = terminate

    @property
    def default_params(self) -> ConstParams:
        return ConstParams()

    def step_env(self, key, state, action, params):
        state = ConstState(time=state.time + 1)
        terminated = jnp.asarray(self.terminate) & (state.time >= params.max_steps_in_episode)
        return self._obs(), state, jnp.float32(params.reward), terminated, {}

    def reset_env(self, key, params):
        return self._obs(), ConstState(time=0)

    def _obs(self) -> jax.Array:
        return jnp.ones((2,), jnp.float32)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(1)


@pytest.mark.parametrize("terminate", [False, True])
def test_truncation_bootstraps_from_final_observation(terminate: bool) -> None:
    """Truncation-only episodes: V -> r / (1 - gamma) = 10, not the truncated sum (<= 3.44).
    The same episodes ending by termination must give the truncated (discounted-sum) value."""
    gamma, r, horizon = 0.9, 1.0, 4
    cfg = tiny(
        gamma=gamma,
        lr=3e-3,
        clip_eps=1.0,
        num_envs=8,
        num_steps=16,
        total_timesteps=8 * 16 * 150,
        update_epochs=4,
        anneal_lr=False,
    )
    env = ConstantRewardEnv(terminate=terminate)
    params = env.default_params.replace(max_steps_in_episode=horizon, reward=r)
    train = jax.jit(make_train(cfg, env, params, adam_tx(cfg)))
    state, metrics = train(jax.random.PRNGKey(0))
    trainer = make_trainer(cfg, env, params, adam_tx(cfg))
    _, value = trainer.network.apply(state.params, jnp.ones((1, 2)))
    value = float(value[0])
    truncated_sum_mean = np.mean([sum(gamma**k for k in range(n)) for n in range(1, horizon + 1)])
    if terminate:
        assert value == pytest.approx(truncated_sum_mean, rel=0.15)
    else:
        assert value == pytest.approx(r / (1 - gamma), rel=0.15)
        assert abs(value - truncated_sum_mean) > 5.0
    assert np.isfinite(metrics["losses/loss"]).all()


# --------------------------------------------------------------------------- determinism, chunking


@pytest.fixture(scope="module")
def cartpole():
    cfg = tiny(total_timesteps=4 * 8 * 3)
    env, params = make_env(cfg)
    return cfg, env, params


def test_same_key_same_metrics_and_vmapped_seeds_differ(cartpole) -> None:
    cfg, env, params = cartpole
    train = jax.jit(jax.vmap(make_train(cfg, env, params, adam_tx(cfg))))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    _, m1 = train(keys)
    _, m2 = train(keys)
    for k in m1:
        np.testing.assert_array_equal(m1[k], m2[k])
        assert m1[k].shape == (2, cfg.num_updates)
    assert not np.array_equal(m1["losses/loss"][0], m1["losses/loss"][1])
    np.testing.assert_array_equal(m1["global_step"][0], [32, 64, 96])


def test_chunked_run_equals_whole_run_and_state_serializes(cartpole) -> None:
    cfg, env, params = cartpole
    trainer = make_trainer(cfg, env, params, adam_tx(cfg))
    run = jax.jit(trainer.run, static_argnums=1)
    s0 = jax.jit(trainer.init)(jax.random.PRNGKey(2))
    s_whole, m_whole = run(s0, 2)

    s1, m_a = run(s0, 1)
    # Round-trip through flax serialization, as a checkpoint would.
    blob = flax.serialization.to_bytes(s1)
    s1 = flax.serialization.from_bytes(jax.tree.map(np.zeros_like, s1), blob)
    assert isinstance(s1, RunnerState)
    s2, m_b = run(s1, 1)

    assert int(s2.update_step) == 2
    for k in m_whole:
        np.testing.assert_array_equal(m_whole[k], np.concatenate([m_a[k], m_b[k]]))
    for a, b in zip(jax.tree.leaves(s_whole), jax.tree.leaves(s2), strict=True):
        np.testing.assert_array_equal(a, b)


def test_progress_fn_called_once_per_update(cartpole) -> None:
    cfg, env, params = cartpole
    calls: list[tuple[int, float]] = []
    train = make_train(
        cfg,
        env,
        params,
        adam_tx(cfg),
        progress_fn=lambda step, m: calls.append((int(step), int(m["global_step"]))),
    )
    jax.block_until_ready(jax.jit(train)(jax.random.key(3)))  # typed keys work too
    jax.effects_barrier()
    assert calls == [(1, 32), (2, 64), (3, 96)]


def test_bad_minibatch_count_is_rejected(cartpole) -> None:
    cfg, env, params = cartpole
    with pytest.raises(ValueError, match="num_minibatches"):
        make_train(cfg.replace(num_minibatches=5), env, params, adam_tx(cfg))


# --------------------------------------------------------------------------- smoke on every space


@pytest.mark.parametrize(
    "env_id, network, extra",
    [
        ("CartPole-v1", "auto", {}),
        ("Pendulum-v1", "mlp", {}),
        ("Breakout-MinAtar", "cnn", {}),
        (
            "Breakout-MinAtar",
            "transformer",
            dict(d_model=16, num_layers=1, num_heads=2, dropout=0.1),
        ),
    ],
)
def test_smoke(env_id: str, network: str, extra: dict) -> None:
    cfg = tiny(env=env_id, network=network, **extra)
    env, params = make_env(cfg)
    state, metrics = jax.jit(make_train(cfg, env, params, adam_tx(cfg)))(jax.random.PRNGKey(0))
    assert metrics["losses/loss"].shape == (cfg.num_updates,)
    for k, v in metrics.items():
        if k.startswith("losses/"):
            assert np.isfinite(v).all(), k
    assert int(state.update_step) == cfg.num_updates


# --------------------------------------------------------------------------- make_env


def test_make_env_resolution_and_overrides() -> None:
    env, params = make_env(TrainConfig(env="CartPole-v1", max_steps=77))
    assert params.max_steps_in_episode == 77
    env, params = make_env(TrainConfig(env="gymnax:Pendulum-v1"))
    assert env.name == "Pendulum-v1"
    with pytest.raises(ValueError, match="CartPole-v1"):
        make_env(TrainConfig(env="NoSuchEnv-v9"))
    with pytest.raises(ValueError, match="apple-reward"):
        make_env(TrainConfig(env="CartPole-v1", apple_reward=2.0))
    with pytest.raises(ValueError, match="cannot import"):
        make_env(TrainConfig(env="no_such_module_xyz:Foo-v0"))


def test_make_env_snake_size_and_params() -> None:
    pytest.importorskip("snake_gymnax")
    cfg = TrainConfig(
        env="Snake-v0",
        width=6,
        height=5,
        apple_reward=2.0,
        death_penalty=-3.0,
        step_penalty=-0.01,
        max_steps=99,
    )
    env, params = make_env(cfg)
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape[:2] == (5, 6)
    assert (params.apple_reward, params.death_penalty, params.max_steps_in_episode) == (
        2.0,
        -3.0,
        99,
    )
    assert params.step_penalty == pytest.approx(-0.01)
