"""PPO trainer: time-limit bootstrapping, determinism, chunked runs, smoke runs on every space."""

from __future__ import annotations

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import tiny_config
from flax import struct
from gymnax.environments import environment, spaces
from gymnax.wrappers.purerl import GymnaxWrapper

from ppo_trainer.app.sinks import chunk_rows
from ppo_trainer.config import TrainConfig
from ppo_trainer.envs import make_env
from ppo_trainer.errors import ConfigError
from ppo_trainer.ppo import Batch, RunnerState, Trainer, kl_from_uniform, make_train


def adam_tx(cfg: TrainConfig) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=1e-5))


tiny = tiny_config


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
    trainer = Trainer(cfg, env, params, adam_tx(cfg))
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
    assert "global_step" not in m1  # counted on the host, in Python ints (no int32 wrap)


def test_chunked_run_equals_whole_run_and_state_serializes(cartpole) -> None:
    cfg, env, params = cartpole
    trainer = Trainer(cfg, env, params, adam_tx(cfg))
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
        progress_fn=lambda step, m: calls.append((int(step), float(m["losses/loss"]))),
    )
    jax.block_until_ready(jax.jit(train)(jax.random.key(3)))  # typed keys work too
    jax.effects_barrier()
    assert [c[0] for c in calls] == [1, 2, 3]
    calls.clear()  # every 2nd update only, once per seed under vmap
    train = make_train(cfg, env, params, adam_tx(cfg), progress_every=2,
                       progress_fn=lambda step, m: calls.append((int(step), 0.0)))
    jax.block_until_ready(jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(3), 2)))
    jax.effects_barrier()
    assert [c[0] for c in calls] == [2, 2]


def test_bad_minibatch_count_is_rejected(cartpole) -> None:
    cfg, env, params = cartpole
    with pytest.raises(ConfigError, match="--num-minibatches 5 must divide"):
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
    env, params = make_env(TrainConfig(env="CartPole-v1",
                                       env_params={"max_steps_in_episode": 77.0}))
    assert params.max_steps_in_episode == 77 and isinstance(params.max_steps_in_episode, int)
    env, params = make_env(TrainConfig(env="gymnax:Pendulum-v1"))
    assert env.name == "Pendulum-v1"
    with pytest.raises(ConfigError, match="CartPole-v1"):
        make_env(TrainConfig(env="NoSuchEnv-v9"))
    with pytest.raises(ConfigError, match="has no field 'apple_reward'"):
        make_env(TrainConfig(env="CartPole-v1", env_params={"apple_reward": 2.0}))
    with pytest.raises(ConfigError, match="does not accept"):
        make_env(TrainConfig(env="CartPole-v1", env_kwargs={"width": 3}))
    with pytest.raises(ConfigError, match="cannot import"):
        make_env(TrainConfig(env="no_such_module_xyz:Foo-v0"))


def test_make_env_constructor_kwargs_and_params_reach_any_env() -> None:
    cfg = TrainConfig(env="Snake-v0", env_kwargs={"width": 6, "height": 5},
                      env_params={"apple_reward": 2, "death_penalty": -3.0,
                                  "step_penalty": -0.01, "max_steps_in_episode": 99})
    env, params = make_env(cfg)
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape[:2] == (5, 6)
    assert (params.apple_reward, params.death_penalty, params.max_steps_in_episode) == (
        2.0, -3.0, 99)
    assert params.step_penalty == pytest.approx(-0.01)


def test_discrete_observations_are_one_hot_encoded_everywhere() -> None:
    env, params = make_env(TrainConfig(env="FrozenLake-misc"))
    assert env.observation_space(params).shape == (16,)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (16,) and float(obs.sum()) == 1.0
    out = env.step(jax.random.PRNGKey(1), state, 0, params)
    assert out[0].shape == (16,) and out[-1]["final_observation"].shape == (16,)
    raw, _ = make_env(TrainConfig(env="FrozenLake-misc", one_hot_obs=False))
    assert raw.observation_space(params).shape == ()


# --------------------------------------------------------------------------- hardening


class NoFinalObs(GymnaxWrapper):
    """A custom wrapper that drops info['final_observation']."""

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward, terminated, truncated, {
            k: v for k, v in info.items() if k != "final_observation"}


class ScaledObsOnly(GymnaxWrapper):
    """A wrapper that transforms observations but forgets info['final_observation']."""

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return jnp.concatenate([obs, obs]), state

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return jnp.concatenate([obs, obs]), state, reward, terminated, truncated, info


def test_env_without_a_matching_final_observation_is_refused_at_build_time(cartpole) -> None:
    cfg, env, params = cartpole
    with pytest.raises(ConfigError, match="no 'final_observation'"):
        Trainer(cfg, NoFinalObs(env), params, adam_tx(cfg))
    with pytest.raises(ConfigError, match=r"shape \(4,\).*\(8,\)"):
        Trainer(cfg, ScaledObsOnly(env), params, adam_tx(cfg))


def test_step_counts_do_not_wrap_at_2_31(cartpole) -> None:
    """A GPU run (16k envs x 128 steps) passes 2^31 env steps after ~1k updates: the logged
    ``global_step`` must keep counting instead of wrapping negative (int32 on the device)."""
    cfg, env, params = cartpole
    trainer = Trainer(cfg, env, params, adam_tx(cfg))
    start = 2**31 // cfg.batch_size - 1  # the next update crosses 2^31 env steps
    state = trainer.init(jax.random.PRNGKey(0))._replace(update_step=jnp.int32(start))
    state, metrics = jax.jit(trainer.run, static_argnums=1)(state, 2)
    rows = chunk_rows(jax.tree.map(lambda x: x[None], metrics), start, cfg.batch_size)
    assert [r["global_step"] for r in rows] == [(start + 1) * 32, (start + 2) * 32]
    assert rows[-1]["global_step"] > 2**31 and int(state.update_step) == start + 2


def test_info_scalars_become_charts_metrics_for_any_env() -> None:
    """Every scalar info value an env reports (here Snake's) is averaged at episode end."""
    cfg = tiny(env="Snake-v0", env_kwargs={"width": 4, "height": 4}, num_envs=8,
               num_steps=32, total_timesteps=8 * 32)
    env, params = make_env(cfg)
    trainer = Trainer(cfg, env, params, adam_tx(cfg))
    assert trainer.info_keys == ("apples", "length", "starved", "win")
    _, metrics = jax.jit(make_train(cfg, env, params, adam_tx(cfg)))(jax.random.PRNGKey(0))
    assert {"charts/apples", "charts/length", "charts/starved", "charts/win"} <= set(metrics)
    np.testing.assert_allclose(metrics["charts/length"], metrics["charts/apples"] + 3)


def test_dropout_ratio_is_one_before_the_first_update() -> None:
    """With dropout, the ratio's two log-probs use the same mask: exactly 1 at the rollout
    parameters (the old code compared a deterministic rollout with a dropped-out update)."""
    cfg = tiny(env="Breakout-MinAtar", network="transformer", d_model=16, num_layers=1,
               num_heads=2, dropout=0.3)
    env, params = make_env(cfg)
    trainer = Trainer(cfg, env, params, adam_tx(cfg))
    state = trainer.init(jax.random.PRNGKey(0))
    obs = state.last_obs
    pi, value = trainer.network.apply(state.params, obs)
    action = pi.sample(seed=jax.random.PRNGKey(1))
    mb = Batch(obs=obs, action=action, log_prob=pi.log_prob(action), value=value,
               advantage=jnp.linspace(-1.0, 1.0, obs.shape[0]), target=value)
    _, stats = trainer._loss(state.params, mb, jax.random.PRNGKey(2), state.params)
    assert float(stats["approx_kl"]) == 0.0 and float(stats["clipfrac"]) == 0.0


@pytest.mark.parametrize("clip", [True, False])
def test_value_loss_clipping_switch(clip: bool, cartpole) -> None:
    """Clipped: a value far from the rollout's moves by at most clip_eps in the loss; unclipped:
    plain squared error (returns in the hundreds would otherwise stall the critic)."""
    cfg, env, params = cartpole
    cfg = cfg.replace(clip_value_loss=clip)
    trainer = Trainer(cfg, env, params, adam_tx(cfg))
    state = trainer.init(jax.random.PRNGKey(0))
    obs = state.last_obs
    pi, value = trainer.network.apply(state.params, obs)
    action = pi.mode()
    mb = Batch(obs=obs, action=action, log_prob=pi.log_prob(action), value=value - 100.0,
               advantage=jnp.zeros(obs.shape[0]), target=value + 50.0)
    _, stats = trainer._loss(state.params, mb, jax.random.PRNGKey(2), state.params)
    clipped = 0.5 * np.mean(np.square(np.asarray(value) - 100.0 + 0.2 - np.asarray(value) - 50.0))
    expected = clipped if clip else 0.5 * 50.0**2
    assert float(stats["value_loss"]) == pytest.approx(expected, rel=1e-4)


# --------------------------------------------------------------------------- env hooks


@struct.dataclass
class PickState(environment.EnvState):
    time: int


class PickEnv(environment.Environment):
    """One-step episodes; two actions; ``valid_actions`` forbids action 0, and ``info`` reports
    whether it was taken, so the generic ``charts/invalid`` metric shows what the policy did."""

    @property
    def default_params(self):
        return environment.EnvParams(max_steps_in_episode=10)

    def step_env(self, key, state, action, params):
        info = {"invalid": (action == 0).astype(jnp.float32), "discount": jnp.float32(0.0)}
        return jnp.ones(2), PickState(time=state.time + 1), jnp.float32(1.0), jnp.bool_(True), info

    def reset_env(self, key, params):
        return jnp.ones(2), PickState(time=0)

    def is_truncated(self, state, params):
        return jnp.bool_(False)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)

    def valid_actions(self, state, params):
        return jnp.array([False, True])


@pytest.mark.parametrize("mask", [False, True])
def test_action_mask_gives_invalid_actions_zero_probability(mask: bool) -> None:
    env = PickEnv()
    cfg = tiny(action_mask=mask, total_timesteps=4 * 8 * 2)
    _, metrics = jax.jit(make_train(cfg, env, env.default_params, adam_tx(cfg)))(
        jax.random.PRNGKey(0))
    invalid = np.asarray(metrics["charts/invalid"])
    assert (invalid == 0).all() if mask else (invalid > 0.2).all(), invalid
    assert np.isfinite(metrics["losses/entropy"]).all()


def test_hooks_are_refused_when_the_env_lacks_them(cartpole) -> None:
    cfg, env, params = cartpole
    with pytest.raises(ConfigError, match="valid_actions"):
        Trainer(cfg.replace(action_mask=True), env, params, adam_tx(cfg))
    with pytest.raises(ConfigError, match="symmetries"):
        Trainer(cfg.replace(augment_symmetry=True), env, params, adam_tx(cfg))


def test_symmetry_augmentation_transforms_each_sample_consistently() -> None:
    """Snake, absolute actions on the board planes (8 symmetries): every augmented sample is
    (g(obs), perm_g[action]) for one g, its mask is permuted with it, and the ratio's
    denominator, old value and advantage stay the original sample's (the behaviour policy's
    probability of the mirrored transition is the original's, not pi_old(g.a | g.s))."""
    cfg = tiny(env="Snake-v0", env_kwargs={"width": 5, "height": 5}, num_envs=16,
               total_timesteps=16 * 8, action_mask=True, augment_symmetry=True)
    env, params = make_env(cfg)
    trainer = Trainer(cfg, env, params, adam_tx(cfg))
    state = trainer.init(jax.random.PRNGKey(0))
    obs = jax.random.uniform(jax.random.PRNGKey(1), state.last_obs.shape)
    mask = trainer.masks(state.env_state.env_state)
    action = jax.random.randint(jax.random.PRNGKey(2), (16,), 1, 4)
    pi, value = trainer.policy(state.params, obs, mask)
    mb = Batch(obs=obs, action=action, mask=mask, log_prob=pi.log_prob(action), value=value,
               advantage=jnp.ones(16), target=jnp.ones(16))
    out = trainer._augment(mb, jax.random.PRNGKey(3))
    transforms, perms = trainer._symmetries
    used = set()
    for i in range(16):
        k = next(k for k, f in enumerate(transforms) if np.allclose(f(obs[i]), out.obs[i]))
        used.add(k)
        assert int(out.action[i]) == int(perms[k][action[i]])
        np.testing.assert_array_equal(np.asarray(out.mask[i])[np.asarray(perms[k])],
                                      np.asarray(mask[i]))
    assert len(used) > 2  # random symmetries, not always the identity
    for key in ("log_prob", "value", "advantage", "target"):
        np.testing.assert_array_equal(getattr(out, key), getattr(mb, key))
    # The untrained policy is not symmetric, so the recomputed denominator would differ:
    mirrored = trainer.policy(state.params, out.obs, out.mask)[0].log_prob(out.action)
    assert not np.allclose(mirrored, mb.log_prob, atol=1e-4)
    _, metrics = jax.jit(make_train(cfg, env, params, adam_tx(cfg)))(jax.random.PRNGKey(0))
    assert np.isfinite(metrics["losses/loss"]).all()


# --------------------------------------------------------------------------- deprecated names


def test_old_names_work_for_one_release_with_a_future_warning(cartpole) -> None:
    """``make_trainer`` (a second name of ``Trainer``) and ``Trainer.observe`` (now
    ``network_input``: it read like gymnax's ``Environment.observe``) still work, and warn."""
    import ppo_trainer.ppo as ppo

    cfg, env, params = cartpole
    with pytest.warns(FutureWarning, match="make_trainer is deprecated; use ppo_trainer.ppo.Trainer"):
        from ppo_trainer.ppo import make_trainer
    assert make_trainer is Trainer
    with pytest.raises(AttributeError, match="no_such_name"):
        ppo.no_such_name  # noqa: B018
    trainer = Trainer(cfg.replace(normalize_obs=True), env, params, adam_tx(cfg))
    state = trainer.init(jax.random.PRNGKey(0))
    with pytest.warns(FutureWarning, match="use Trainer.network_input"):
        seen = trainer.observe(state.norm, state.last_obs)
    np.testing.assert_array_equal(seen, trainer.network_input(state.norm, state.last_obs))
    assert not np.array_equal(seen, state.last_obs)  # normalized: the call did something


# --------------------------------------------------------------------------- KL to uniform


def test_kl_from_uniform_keeps_a_pull_on_a_ruled_out_move() -> None:
    """The KL's gradient on a move at probability ~2e-9 is ~ -1/n (descent raises it); the
    entropy bonus's is ~1e-7 there. Masked actions do not count; unmasked, it is distrax's KL."""
    import distrax

    logits = jnp.array([10.0, 0.0, -10.0])
    kl_grad = jax.grad(lambda x: kl_from_uniform(x))(logits)
    ent_grad = jax.grad(lambda x: -distrax.Categorical(logits=x).entropy())(logits)
    assert float(kl_grad[2]) == pytest.approx(-1.0 / 3.0, abs=1e-6)
    assert abs(float(ent_grad[2])) < 1e-6
    uniform = distrax.Categorical(probs=jnp.full(3, 1.0 / 3.0))
    assert float(kl_from_uniform(logits)) == pytest.approx(
        float(uniform.kl_divergence(distrax.Categorical(logits=logits))), rel=1e-5)
    assert float(kl_from_uniform(jnp.zeros(3))) == pytest.approx(0.0, abs=1e-6)
    masked = jnp.array([0.0, 0.0, -1e9])
    assert float(kl_from_uniform(masked, jnp.array([True, True, False]))) == pytest.approx(
        0.0, abs=1e-6)


def test_uniform_kl_coef_adds_its_term_to_the_loss(cartpole) -> None:
    cfg, env, params = cartpole
    losses = {}
    for coef in (0.0, 0.5):
        trainer = Trainer(cfg.replace(uniform_kl_coef=coef), env, params, adam_tx(cfg))
        state = trainer.init(jax.random.PRNGKey(0))
        obs = state.last_obs
        pi, value = trainer.network.apply(state.params, obs)
        action = pi.mode()
        mb = Batch(obs=obs, action=action, log_prob=pi.log_prob(action), value=value,
                   advantage=jnp.linspace(-1.0, 1.0, obs.shape[0]), target=value)
        losses[coef] = trainer._loss(state.params, mb, jax.random.PRNGKey(2), state.params)[1]
    assert "uniform_kl" not in losses[0.0]
    kl = float(losses[0.5]["uniform_kl"])
    assert kl == pytest.approx(float(kl_from_uniform(pi.logits).mean()), rel=1e-5)
    assert kl > 0
    assert float(losses[0.5]["loss"] - losses[0.0]["loss"]) == pytest.approx(0.5 * kl, rel=1e-4)


def test_uniform_kl_coef_needs_discrete_actions_and_respects_masks() -> None:
    cfg = tiny(env="Pendulum-v1", uniform_kl_coef=0.1)
    env, params = make_env(cfg)
    with pytest.raises(ConfigError, match="--uniform-kl-coef needs a Discrete action space"):
        Trainer(cfg, env, params, adam_tx(cfg))
    env = PickEnv()  # action 0 masked out: the KL over the one legal move is 0, not 1e9
    cfg = tiny(action_mask=True, uniform_kl_coef=0.1, total_timesteps=4 * 8 * 2)
    _, metrics = jax.jit(make_train(cfg, env, env.default_params, adam_tx(cfg)))(
        jax.random.PRNGKey(0))
    np.testing.assert_allclose(metrics["losses/uniform_kl"], 0.0, atol=1e-5)
    assert (np.asarray(metrics["charts/invalid"]) == 0).all()
