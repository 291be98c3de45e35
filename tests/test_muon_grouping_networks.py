"""Which leaves of each of our networks Muon gets (the grouping rule of docs/optimizers.md)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import plugins
from optimizers import defaults, muon
from ppo_trainer.config import TrainConfig
from ppo_trainer.envs import make_env
from ppo_trainer.networks import initial_carry, make_network

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


def recurrent_params(rnn: str, network: str, shared_torso: bool) -> dict:
    env_id = "CartPole-v1" if network == "mlp" else "Breakout-MinAtar"
    cfg = TrainConfig(env=env_id, network=network, hidden_size=8, num_hidden_layers=1,
                      shared_torso=shared_torso, rnn=rnn, rnn_size=6)
    env, env_params = make_env(cfg)
    net = make_network(cfg, env, env_params)
    obs = jnp.zeros((1, *env.observation_space(env_params).shape))
    return net.init(jax.random.PRNGKey(0), obs, carry=initial_carry(net, 1))["params"]


GATES = {"gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
@pytest.mark.parametrize("network, shared_torso", [("mlp", False), ("mlp", True), ("cnn", False)])
def test_recurrent_kernels_go_to_muon_one_matrix_per_gate(rnn: str, network: str,
                                                          shared_torso: bool) -> None:
    """Each gate's input kernel ``i<gate>`` (in, H) and hidden-to-hidden kernel ``h<gate>``
    (H, H) is its own linear map (flax keeps them apart, the optimized LSTM concatenates them
    only to compute): each is a Muon matrix, like a Dense layer's; the cell's biases go to
    Adam."""
    params = recurrent_params(rnn, network, shared_torso)
    labels = muon.param_labels(params, muon_heads=True)
    named = {"/".join(str(getattr(k, "key", k)) for k in path): label
             for path, label in jax.tree_util.tree_leaves_with_path(labels)}
    cells = ("torso_rnn",) if shared_torso else ("actor_rnn", "critic_rnn")
    kernels = {f"{cell}/cell/{side}{gate}/kernel" for cell in cells for gate in GATES[rnn]
               for side in "ih"}
    rnn_leaves = {k: v for k, v in named.items() if "_rnn/" in k}
    assert {k for k, v in rnn_leaves.items() if v == "muon"} == kernels
    assert all(k.endswith("/bias") for k, v in rnn_leaves.items() if v != "muon")
    torso = EXPECTED_BODY[network] if not shared_torso else {"torso_0/kernel"}
    if network == "mlp":
        torso = {k for k in torso if not k.endswith("_1/kernel")}  # one hidden layer here
    assert {k for k, v in named.items() if v == "muon"} == torso | kernels | HEADS


def test_muon_update_of_a_recurrent_kernel_is_orthogonal() -> None:
    """The hidden-to-hidden kernel of a gate gets an orthogonalized update: a gradient with
    singular values spread 1 .. 1/20 comes out with them inside quintic Newton-Schulz's band."""
    params = recurrent_params("gru", "mlp", False)
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    v, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    grad_h = jnp.asarray(u @ np.diag(np.geomspace(1.0, 0.05, 6)) @ v.T, jnp.float32)
    grads = jax.tree.map(jnp.zeros_like, params)
    grads["actor_rnn"]["cell"]["hz"]["kernel"] = grad_h
    tx = plugins.get_registry().build("muon", learning_rate=1e-3, max_grad_norm=1e9)
    updates, _ = tx.update(grads, tx.init(params), params)
    s = np.linalg.svd(np.asarray(updates["actor_rnn"]["cell"]["hz"]["kernel"], np.float64),
                      compute_uv=False)
    assert s.max() / s.min() < 3.0, s  # the gradient's ratio was 20
