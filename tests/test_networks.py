"""Networks: output shapes for any leading axes, distributions, head names, dropout, errors."""

from __future__ import annotations

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppo_trainer.config import TrainConfig
from ppo_trainer.envs import make_action_fn, make_env
from ppo_trainer.errors import ConfigError
from ppo_trainer.networks import (
    MIN_STD,
    CNNActorCritic,
    MLPActorCritic,
    TransformerActorCritic,
    make_network,
)
from ppo_trainer.ppo import Trainer

SMALL = dict(hidden_size=8, num_hidden_layers=1, d_model=8, num_layers=1, num_heads=2)


def build(env_id: str, network: str, **kw):
    cfg = TrainConfig(env=env_id, network=network, **{**SMALL, **kw})
    env, env_params = make_env(cfg)
    net = make_network(cfg, env, env_params)
    obs_shape = env.observation_space(env_params).shape
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, *obs_shape)))
    return env, env_params, net, params, obs_shape


def flat_names(params) -> set[str]:
    return {
        "/".join(str(getattr(k, "key", k)) for k in path)
        for path, _ in jax.tree_util.tree_leaves_with_path(params)
    }


@pytest.mark.parametrize(
    "env_id, network, cls",
    [
        ("CartPole-v1", "auto", MLPActorCritic),
        ("Breakout-MinAtar", "auto", MLPActorCritic),
        ("Pendulum-v1", "mlp", MLPActorCritic),
        ("Breakout-MinAtar", "cnn", CNNActorCritic),
        ("Breakout-MinAtar", "transformer", TransformerActorCritic),
    ],
)
def test_shapes_for_any_leading_axes_and_head_names(env_id, network, cls) -> None:
    env, env_params, net, params, obs_shape = build(env_id, network)
    assert isinstance(net, cls)
    names = flat_names(params)
    assert {"params/policy_head/kernel", "params/value_head/kernel"} <= names
    if network == "transformer":
        assert "params/pos_embedding" in names
    for lead in [(), (5,), (3, 2)]:
        obs = jax.random.uniform(jax.random.PRNGKey(1), (*lead, *obs_shape))
        pi, value = net.apply(params, obs)
        assert value.shape == lead
        action = pi.sample(seed=jax.random.PRNGKey(2))
        assert pi.log_prob(action).shape == lead
        assert pi.mode().shape == action.shape
        # Batched and one-at-a-time evaluation agree.
        if lead == (5,):
            _, v0 = net.apply(params, obs[0])
            np.testing.assert_allclose(v0, value[0], rtol=1e-5, atol=1e-5)


def test_discrete_is_categorical_box_is_gaussian_with_state_independent_std() -> None:
    _, _, net, params, _ = build("CartPole-v1", "mlp")
    pi, _ = net.apply(params, jnp.zeros((2, 4)))
    assert isinstance(pi, distrax.Categorical)
    assert pi.logits.shape == (2, 2)

    env, env_params, net, params, _ = build("Pendulum-v1", "mlp")
    obs = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
    pi, _ = net.apply(params, obs)
    assert isinstance(pi, distrax.MultivariateNormalDiag)
    assert pi.mode().shape == (4, 1)
    np.testing.assert_allclose(pi.stddev(), 1.0)  # log_std starts at 0, same for every state
    to_env = make_action_fn(env, env_params)
    clipped = to_env(jnp.array([[-5.0], [0.5], [9.0]]))
    np.testing.assert_allclose(clipped, [[-2.0], [0.5], [2.0]])


@pytest.mark.parametrize("shared", [False, True])
def test_state_dependent_std_is_a_softplus_output_of_the_policy_head(shared: bool) -> None:
    """``--state-dependent-std``: no ``log_std`` parameter; the policy head has twice the
    outputs, the std differs between states, starts near softplus(0), and never falls below
    the floor even for a hugely negative head output."""
    _, _, net, params, _ = build("Pendulum-v1", "mlp", state_dependent_std=True,
                                 shared_torso=shared)
    assert not any("log_std" in n for n in flat_names(params))
    assert params["params"]["policy_head"]["kernel"].shape[-1] == 2
    obs = 3.0 * jax.random.normal(jax.random.PRNGKey(0), (64, 3))
    pi, _ = net.apply(params, obs)
    std = np.asarray(pi.stddev())
    assert std.shape == (64, 1) and np.ptp(std) > 1e-4
    np.testing.assert_allclose(std, np.log(2.0) + MIN_STD, atol=0.05)
    big = jax.tree_util.tree_map(lambda x: x, params)
    big["params"]["policy_head"]["bias"] = jnp.array([0.0, -1e4])
    floor = np.asarray(net.apply(big, obs)[0].stddev())
    np.testing.assert_allclose(floor, MIN_STD, rtol=1e-6)


@pytest.mark.parametrize("shared", [False, True])
def test_logit_cap_squashes_the_logits_and_keeps_every_move_possible(shared: bool) -> None:
    """``--logit-cap C``: the same parameters give ``C * tanh(logits / C)`` of the uncapped
    network's logits, so a head pushed to certainty still leaves each other move about
    ``exp(-2C)``; the value is untouched."""
    _, _, net, params, obs_shape = build("Breakout-MinAtar", "mlp", shared_torso=shared)
    _, _, capped, _, _ = build("Breakout-MinAtar", "mlp", shared_torso=shared, logit_cap=3.0)
    big = jax.tree_util.tree_map(lambda x: x, params)
    big["params"]["policy_head"]["kernel"] = 5000.0 * params["params"]["policy_head"]["kernel"]
    obs = jax.random.bernoulli(jax.random.PRNGKey(0), 0.2, (32, *obs_shape))
    (pi, value), state = net.apply(big, obs, capture_intermediates=True)
    raw = np.asarray(state["intermediates"]["policy_head"]["__call__"][0])  # the head's output
    pi_cap, value_cap = capped.apply(big, obs)
    np.testing.assert_allclose(pi_cap.probs, jax.nn.softmax(3.0 * np.tanh(raw / 3.0)),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(value_cap, value)
    assert float(np.min(pi.probs)) < 1e-6  # the uncapped head is sure
    assert float(np.min(pi_cap.probs)) > 0.5 * np.exp(-6.0) / (1 + 2 * np.exp(-6.0))


def test_logit_cap_needs_discrete_actions() -> None:
    cfg = TrainConfig(env="Pendulum-v1", logit_cap=2.0)
    env, env_params = make_env(cfg)
    with pytest.raises(ConfigError, match="--logit-cap needs a Discrete action space"):
        Trainer(cfg, env, env_params, None)


def test_initial_policy_is_near_uniform_and_value_near_zero() -> None:
    # Orthogonal init with scale 0.01 on the policy head (PureJaxRL).
    _, _, net, params, obs_shape = build("Breakout-MinAtar", "mlp")
    obs = jax.random.bernoulli(jax.random.PRNGKey(0), 0.2, (16, *obs_shape))
    pi, _ = net.apply(params, obs)
    np.testing.assert_allclose(pi.probs, 1 / 3, atol=0.02)


def test_transformer_dropout_only_when_asked() -> None:
    _, _, net, params, obs_shape = build("Breakout-MinAtar", "transformer", dropout=0.5)
    obs = jax.random.uniform(jax.random.PRNGKey(1), (4, *obs_shape))
    _, v1 = net.apply(params, obs)
    _, v2 = net.apply(params, obs)
    np.testing.assert_array_equal(v1, v2)
    _, v3 = net.apply(params, obs, deterministic=False, rngs={"dropout": jax.random.PRNGKey(3)})
    assert not np.allclose(v1, v3)


def test_snake_observations_with_every_network() -> None:
    for network in ("mlp", "cnn", "transformer"):
        env, env_params, net, params, obs_shape = build("Snake-v0", network,
                                                        env_kwargs={"width": 6, "height": 5})
        assert obs_shape[:2] == (5, 6)
        obs, _ = env.reset(jax.random.PRNGKey(0), env_params)
        pi, value = net.apply(params, obs[None])
        assert pi.logits.shape == (1, 4) and value.shape == (1,)


def test_errors() -> None:
    with pytest.raises(ValueError, match="H, W, C"):
        build("CartPole-v1", "cnn")
    with pytest.raises(ValueError, match="unknown network"):
        build("CartPole-v1", "resnet")
    with pytest.raises(ValueError, match="divisible"):
        build("Breakout-MinAtar", "transformer", d_model=10, num_heads=4)
    with pytest.raises(ValueError, match="activation"):
        build("CartPole-v1", "mlp", activation="swish")


@pytest.mark.parametrize("shape", [(300, 128), (128, 128), (128, 4), (4, 300), (3, 3, 4, 16)])
def test_orthogonal_init_is_orthogonal_at_its_scale(shape) -> None:
    from ppo_trainer.networks import _ortho

    w = np.asarray(_ortho(2.0)(jax.random.PRNGKey(0), shape)).reshape(-1, shape[-1])
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(len(gram)), atol=1e-4)
    other = np.asarray(_ortho(2.0)(jax.random.PRNGKey(1), shape)).reshape(w.shape)
    assert not np.allclose(w, other)


@pytest.mark.parametrize("network", ["mlp", "cnn", "transformer"])
def test_vmapped_init_has_no_lapack_call(network: str) -> None:
    """A batched LAPACK QR (flax's orthogonal init under vmap over seeds) deadlocks XLA:CPU on
    2 cores; the networks' init must stay matmul-only so `jax.vmap(train)` is safe."""
    env, env_params, net, _, obs_shape = build("Breakout-MinAtar", network)
    init = jax.vmap(lambda k: net.init(k, jnp.zeros((1, *obs_shape))))
    hlo = jax.jit(init).lower(jax.random.split(jax.random.PRNGKey(0), 3)).as_text()
    assert "lapack" not in hlo.lower() and "geqrf" not in hlo.lower()


def test_patch_conv_equals_flax_conv() -> None:
    from ppo_trainer.networks import PatchConv

    x = jax.random.normal(jax.random.PRNGKey(0), (2, 10, 10, 4))
    patch = PatchConv(16)
    params = patch.init(jax.random.PRNGKey(1), x)
    params = jax.tree.map(lambda p: p + 0.1, params)  # non-zero bias too
    expected = nn.Conv(16, (3, 3), padding="SAME").apply(params, x)
    np.testing.assert_allclose(patch.apply(params, x), expected, rtol=1e-5, atol=1e-5)


def test_shared_torso_shares_the_hidden_layers() -> None:
    _, _, net, params, obs_shape = build("CartPole-v1", "mlp", shared_torso=True)
    names = flat_names(params)
    assert {"params/torso_0/kernel", "params/policy_head/kernel", "params/value_head/kernel"} \
        <= names
    assert not any("actor_" in n or "critic_" in n for n in names)
    separate = build("CartPole-v1", "mlp")[3]
    count = sum(x.size for x in jax.tree.leaves(params))
    assert count < sum(x.size for x in jax.tree.leaves(separate))
    pi, value = net.apply(params, jnp.ones((3, *obs_shape)))
    assert pi.logits.shape == (3, 2) and value.shape == (3,)
