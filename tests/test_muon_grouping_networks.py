"""Which leaves of each of our networks Muon gets (the grouping rule of docs/optimizers.md)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest

import plugins
from optimizers import defaults, muon
from ppo_trainer.config import TrainConfig
from ppo_trainer.envs import make_env
from ppo_trainer.networks import make_network

HEADS = {"policy_head/kernel", "value_head/kernel"}
EXPECTED_BODY = {
    # Hidden kernels of both MLPs (the first layer included: it is a dense map, not an embedding).
    "mlp": {"actor_0/kernel", "actor_1/kernel", "critic_0/kernel", "critic_1/kernel"},
    # Conv kernels (kh, kw, cin, cout) are matrices to Muon, as are the hidden Dense kernels.
    "cnn": {"conv_0/kernel", "conv_1/kernel", "actor_0/kernel", "critic_0/kernel"},
    # Attention q/k/v/out kernels (3-D) and MLP kernels; cell_embed, pos_embedding, LayerNorm
    # and every bias (including the (heads, head_dim) attention biases) go to Adam.
    "transformer": {
        f"block_{i}/{name}/kernel"
        for i in range(2)
        for name in ("attn/query", "attn/key", "attn/value", "attn/out", "mlp_in", "mlp_out")
    },
}


def muon_leaves(env_id: str, network: str, muon_heads: bool) -> set[str]:
    cfg = TrainConfig(
        env=env_id,
        network=network,
        hidden_size=8,
        num_hidden_layers=2,
        d_model=8,
        num_layers=2,
        num_heads=2,
    )
    env, env_params = make_env(cfg)
    net = make_network(cfg, env, env_params)
    obs = jnp.zeros((1, *env.observation_space(env_params).shape))
    params = net.init(jax.random.PRNGKey(0), obs)["params"]
    labels = muon.param_labels(params, muon_heads=muon_heads)
    return {
        "/".join(str(getattr(k, "key", k)) for k in path)
        for path, label in jax.tree_util.tree_leaves_with_path(labels)
        if label == "muon"
    }


@pytest.mark.parametrize("muon_heads", [True, False])
@pytest.mark.parametrize(
    "env_id, network",
    [
        ("CartPole-v1", "mlp"),
        ("Pendulum-v1", "mlp"),  # log_std is 1-D -> Adam
        ("Breakout-MinAtar", "mlp"),
        ("Breakout-MinAtar", "cnn"),
        ("Breakout-MinAtar", "transformer"),
    ],
)
def test_exact_muon_leaves(env_id: str, network: str, muon_heads: bool) -> None:
    expected = EXPECTED_BODY[network] | (HEADS if muon_heads else set())
    assert muon_leaves(env_id, network, muon_heads) == expected


def registry_muon_leaves(env_id: str, network: str) -> set[str]:
    """The leaves that get Muon state in the optimizer ``ppo-train --optimizer muon`` builds
    with every hyperparameter at its default (the registry's path, clip included)."""
    cfg = TrainConfig(env=env_id, network=network, hidden_size=8, num_hidden_layers=2,
                      d_model=8, num_layers=2, num_heads=2)
    env, env_params = make_env(cfg)
    net = make_network(cfg, env, env_params)
    obs = jnp.zeros((1, *env.observation_space(env_params).shape))
    params = net.init(jax.random.PRNGKey(0), obs)["params"]
    state = plugins.get_registry().build("muon", learning_rate=1e-3, max_grad_norm=0.5).init(params)
    (muon_state,) = [
        s for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, muon.MuonState))
        if isinstance(s, muon.MuonState)
    ]
    masked = lambda x: isinstance(x, optax.MaskedNode)  # noqa: E731
    return {
        "/".join(str(getattr(k, "key", k)) for k in path)
        for path, leaf in jax.tree_util.tree_leaves_with_path(muon_state.mu, is_leaf=masked)
        if not masked(leaf)
    }


@pytest.mark.parametrize(
    "env_id, network",
    [("CartPole-v1", "mlp"), ("Breakout-MinAtar", "cnn"), ("Breakout-MinAtar", "transformer")],
)
def test_default_sends_heads_to_muon(env_id: str, network: str) -> None:
    """The default keeps the output heads on Muon (``muon_heads=True``): heads on Adam (at the
    auxiliary Adam's ``--lr``) learned more slowly at small budgets (docs/speed.md: CartPole
    150k steps x 4 seeds, mean return over the run 382 vs 429; Snake 2M steps x 2 seeds, apples
    over the run 10.3 vs 13.2), and on CPU the heads now cost little (batched with the first
    layers)."""
    assert defaults.MUON_HEADS is True
    assert registry_muon_leaves(env_id, network) == EXPECTED_BODY[network] | HEADS
