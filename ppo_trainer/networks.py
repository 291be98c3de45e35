"""Actor-critic networks for any gymnax observation and action space.

Public API:

- ``make_network(config, env, env_params) -> flax.linen.Module``. The module's
  ``apply(params, obs)`` returns ``(pi, value)``: a distrax distribution over actions and a value
  estimate, for any number of leading batch axes (``obs.shape == lead + obs_shape`` gives
  ``value.shape == lead``). Greedy action: ``pi.mode()``. Dropout (transformer only) is off unless
  the caller passes ``deterministic=False`` and a ``"dropout"`` rng.
- Discrete actions -> ``distrax.Categorical``; Box actions -> ``distrax.MultivariateNormalDiag``
  with a state-independent learned log-std over the flattened action vector (the trainer reshapes
  and clips to the bounds before stepping; see ``ppo_trainer.envs.make_action_fn``), or with
  ``state_dependent_std`` a std of ``softplus(head output) + MIN_STD`` per state, the head being
  the same ``policy_head`` layer with twice the outputs (so it stays in the head's optimizer
  group).

Networks (``--network``):

- ``mlp``: separate actor and critic MLPs on the flattened observation (PureJaxRL's layout).
- ``cnn``: a small conv torso (2 x 3x3 SAME convs, relu) shared by both heads, for ``(H, W, C)``.
- ``transformer``: one token per board cell, a learned 2-D positional table ``pos_embedding``,
  pre-LN blocks, final LayerNorm, mean pool. A GPU configuration: on CPU it is ~100x slower.
- ``auto``: ``mlp`` for every observation. On CPU an MLP on the flattened planes is the cheapest
  network that still learns Snake/MinAtar well; pick ``cnn``/``transformer`` explicitly.

Memory (``--rnn gru|lstm``, any network): each torso's features go through a recurrent cell
(flax's ``GRUCell`` / ``OptimizedLSTMCell``, ``--rnn-size`` units) before the heads: two cells
(``actor_rnn``, ``critic_rnn``) after separate actor and critic torsos (mlp, cnn), one
(``torso_rnn``) after a shared one (``--shared-torso``, transformer). ``apply(params, obs,
carry=..., resets=...)`` then returns ``(carry, pi, value)`` for a sequence ``(T, B, *obs)``
(``nn.scan`` over ``T``, each cell's carry reset to :func:`initial_carry`'s zeros where
``resets``) or one step ``(B, *obs)``.

Every network names its output layers ``policy_head`` and ``value_head`` (and learned embeddings
``*embed*``) so the Muon grouping rule in docs/optimizers.md applies by name. The transformer's
input projection of cell features is named ``cell_embed``: like a token embedding it is an input
layer, which Muon's authors leave to Adam.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, get_args

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from ppo_trainer.config import Network

NETWORKS: tuple[str, ...] = get_args(Network)  # --network's choices, declared once in config.py

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"tanh": nn.tanh, "relu": nn.relu}


def _orthonormal_columns(a: jax.Array) -> jax.Array:
    """Gram-Schmidt (run twice per column, "CGS2") on a tall ``(m, n)`` matrix, ``m >= n``.

    Returns the ``Q`` of ``a = Q R`` with ``diag(R) > 0``: for Gaussian ``a`` it is Haar-distributed,
    the same law as flax's QR-based orthogonal initializer with its sign fix.
    """
    n = a.shape[1]

    def column(j: jax.Array, q: jax.Array) -> jax.Array:
        earlier = (jnp.arange(n) < j).astype(q.dtype)
        v = q[:, j]
        for _ in range(2):  # the second pass removes what rounding left of earlier directions
            v = v - q @ ((q.T @ v) * earlier)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, n, column, a)


def _ortho(scale: float) -> Callable:
    """Orthogonal init (PureJaxRL's scales) computed with matmuls only, not LAPACK's QR.

    Written by hand because flax's ``orthogonal`` calls ``jnp.linalg.qr``, and on XLA:CPU
    (jaxlib 0.10.2) a *batched* QR -- which is what ``jax.vmap(train)`` over seeds makes of it --
    runs LAPACK's ``ParallelBatchMap`` on the intra-op pool and deadlocks on 2-core machines:
    concurrent QR thunks each block a pool thread waiting for sub-tasks queued behind them
    (5 of 6 runs of a vmapped-QR reproducer hung here). Init cost is negligible either way.
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = jax.random.normal(key, (max(rows, cols), min(rows, cols)), jnp.float32)
        q = _orthonormal_columns(a)
        q = q.T if rows < cols else q
        return (scale * q).reshape(shape).astype(dtype)

    return init


_ZEROS = nn.initializers.constant(0.0)
MIN_STD = 1e-3  # floor of a state-dependent std, as gymnax-blines' Gaussian-MLP


class ActorCritic(nn.Module):
    """Base: a torso, an optional recurrent cell per torso, the heads; any leading batch axes.

    Subclasses implement ``torso(x, deterministic) -> (actor_x, critic_x)`` for ``x`` of shape
    ``(B, *obs_shape)`` (the same array twice when actor and critic share it: ``shared_trunk``).

    Feed-forward (``rnn="none"``): ``apply(params, obs) -> (pi, value)``. Recurrent:
    ``apply(params, obs, carry=carry, resets=resets) -> (carry, pi, value)`` for ``obs`` of
    shape ``(T, B, *obs_shape)`` (a sequence, scanned over ``T``) or ``(B, *obs_shape)`` (one
    step); ``carry`` is :func:`initial_carry`'s dict, one entry per cell; ``resets`` (``(T, B)``
    bool, optional) puts a cell's carry back to its initial value before the step where an
    episode starts.
    """

    obs_shape: tuple[int, ...]
    num_actions: int
    action_dim: int
    state_dependent_std: bool = False
    rnn: str = "none"
    rnn_size: int = 128
    logit_cap: float = 0.0

    @property
    def shared_trunk(self) -> bool:
        """Whether ``torso`` feeds both heads the same features (then one recurrent cell)."""
        return False

    @property
    def rnn_names(self) -> tuple[str, ...]:
        """The recurrent cells' names: none, one on a shared trunk, else one per torso."""
        if self.rnn == "none":
            return ()
        return ("torso_rnn",) if self.shared_trunk else ("actor_rnn", "critic_rnn")

    @nn.compact
    def __call__(self, obs: jax.Array, deterministic: bool = True, carry: Any = None,
                 resets: jax.Array | None = None) -> tuple:
        obs = jnp.asarray(obs, jnp.float32)
        lead = obs.shape[: obs.ndim - len(self.obs_shape)]
        x = obs.reshape((-1, *self.obs_shape))
        actor_x, critic_x = self.torso(x, deterministic)
        if self.rnn_names:
            carry, actor_x, critic_x = self._recur(carry, actor_x, critic_x, lead, resets)
        pi, value = self.heads(actor_x, critic_x)
        if lead != (x.shape[0],):  # distribution parameters back to the caller's leading axes
            if self.action_dim == 0:
                pi = distrax.Categorical(logits=pi.logits.reshape((*lead, -1)))
            else:
                loc = pi.loc.reshape((*lead, -1))
                pi = distrax.MultivariateNormalDiag(loc, pi.scale_diag.reshape(loc.shape))
            value = value.reshape(lead)
        return (carry, pi, value) if self.rnn_names else (pi, value)

    def _recur(self, carry: Any, actor_x: jax.Array, critic_x: jax.Array,
               lead: tuple[int, ...], resets: jax.Array | None) -> tuple:
        """Each torso's features through its cell, scanned over time (axis 0 of ``lead``)."""
        if len(lead) not in (1, 2):
            raise ValueError(f"a recurrent network takes (T, B, *obs) or (B, *obs) observations, "
                             f"got leading axes {lead}")
        time, batch = lead if len(lead) == 2 else (1, *lead)
        resets = jnp.zeros((time, batch), bool) if resets is None else resets.reshape(time, batch)
        new, outs = {}, []
        for name, x in zip(self.rnn_names, (actor_x, critic_x), strict=False):
            new[name], y = ScannedCell(self.rnn, self.rnn_size, name=name)(
                carry[name], (x.reshape(time, batch, -1), resets))
            outs.append(y.reshape(time * batch, -1))
        return new, outs[0], outs[-1]

    def heads(self, actor_x: jax.Array, critic_x: jax.Array) -> tuple[Any, jax.Array]:
        init = dict(kernel_init=_ortho(0.01), bias_init=_ZEROS, name="policy_head")
        if self.action_dim == 0:
            logits = nn.Dense(self.num_actions, **init)(actor_x)
            if self.logit_cap:  # static: off, the logits are the head's own
                logits = self.logit_cap * jnp.tanh(logits / self.logit_cap)
            pi = distrax.Categorical(logits=logits)
        elif self.state_dependent_std:
            out = nn.Dense(2 * self.action_dim, **init)(actor_x)
            mean, raw_std = jnp.split(out, 2, axis=-1)
            pi = distrax.MultivariateNormalDiag(mean, jax.nn.softplus(raw_std) + MIN_STD)
        else:
            mean = nn.Dense(self.action_dim, **init)(actor_x)
            log_std = self.param("log_std", _ZEROS, (self.action_dim,))
            pi = distrax.MultivariateNormalDiag(
                mean, jnp.broadcast_to(jnp.exp(log_std), mean.shape)
            )
        value = nn.Dense(1, kernel_init=_ortho(1.0), bias_init=_ZEROS, name="value_head")(critic_x)
        return pi, jnp.squeeze(value, -1)


CELLS: dict[str, type[nn.RNNCellBase]] = {"gru": nn.GRUCell, "lstm": nn.OptimizedLSTMCell}


def initial_carry(network: ActorCritic, batch: int) -> dict[str, Any]:
    """The carry of ``batch`` fresh episodes: zeros, per cell (an LSTM's is ``(c, h)``); ``{}``
    for a feed-forward network (no leaves: nothing to store, shard or checkpoint)."""
    zeros = jnp.zeros((batch, network.rnn_size), jnp.float32)
    return {name: (zeros, zeros) if network.rnn == "lstm" else zeros
            for name in network.rnn_names}


def reset_carry(carry: Any, where: jax.Array) -> Any:
    """``carry`` with the rows where ``where`` (``(B,)`` bool) back to the initial zeros."""
    return jax.tree.map(lambda h: jnp.where(where[:, None], jnp.zeros_like(h), h), carry)


class ResetCell(nn.Module):
    """One step of flax's GRU / optimized LSTM cell, its carry reset first where an episode
    starts. The hidden-to-hidden kernels use the matmul-only orthogonal init (``_ortho``):
    flax's default is a QR, which deadlocks XLA:CPU under ``vmap`` over seeds."""

    kind: str
    features: int

    @nn.compact
    def __call__(self, carry: Any, inputs: tuple[jax.Array, jax.Array]) -> tuple[Any, jax.Array]:
        x, reset = inputs
        cell = CELLS[self.kind](self.features, recurrent_kernel_init=_ortho(1.0), name="cell")
        return cell(reset_carry(carry, reset), x)


ScannedCell = nn.scan(ResetCell, variable_broadcast="params", split_rngs={"params": False},
                      in_axes=0, out_axes=0)
"""``ResetCell`` scanned over axis 0 (time) of ``(x, reset)``, one set of parameters."""


class MLPActorCritic(ActorCritic):
    """Actor and critic MLPs on the flattened observation: separate (PureJaxRL's layout), or
    sharing their hidden layers (``shared_torso``: half the cost, the value loss also shapes the
    policy's features)."""

    hidden_size: int = 64
    num_hidden_layers: int = 2
    activation: str = "tanh"
    shared_torso: bool = False

    @property
    def shared_trunk(self) -> bool:
        return self.shared_torso

    def torso(self, x: jax.Array, deterministic: bool) -> tuple[jax.Array, jax.Array]:
        act = _ACTIVATIONS[self.activation]
        x = x.reshape((x.shape[0], -1))

        def dense(name: str) -> nn.Dense:
            return nn.Dense(self.hidden_size, kernel_init=_ortho(math.sqrt(2)),
                            bias_init=_ZEROS, name=name)

        if self.shared_torso:
            for i in range(self.num_hidden_layers):
                x = act(dense(f"torso_{i}")(x))
            return x, x
        a, c = x, x
        for i in range(self.num_hidden_layers):
            a = act(dense(f"actor_{i}")(a))
            c = act(dense(f"critic_{i}")(c))
        return a, c


class PatchConv(nn.Module):
    """A SAME, stride-1 convolution computed as image patches times the kernel matrix (im2col).

    Same parameters as ``nn.Conv`` (``kernel`` ``(kh, kw, cin, cout)``, ``bias``) and the same
    result. Written by hand because XLA:CPU's convolutions (with their gradients, and as grouped
    convolutions under ``jax.vmap`` over per-seed kernels) are slow: PPO on Breakout-MinAtar
    with this CNN ran 1,299 env steps/s vs 160 with ``nn.Conv`` (1 seed, 16 envs x 64 steps,
    2-core CPU). Patches + a (batched) matmul lower to ordinary matmul kernels.
    """

    features: int
    kernel_size: tuple[int, int] = (3, 3)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        cin = x.shape[-1]
        kernel = self.param("kernel", _ortho(math.sqrt(2)), (kh, kw, cin, self.features))
        bias = self.param("bias", _ZEROS, (self.features,))
        # Patch features are ordered (cin, kh, kw); reorder the kernel to match.
        patches = jax.lax.conv_general_dilated_patches(
            x, (kh, kw), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        matrix = kernel.transpose(2, 0, 1, 3).reshape(cin * kh * kw, self.features)
        return patches @ matrix + bias


class CNNActorCritic(ActorCritic):
    """Two 3x3 SAME convs (relu) shared by both heads, then one hidden Dense layer each."""

    hidden_size: int = 128
    channels: Sequence[int] = (16, 32)
    activation: str = "relu"

    def torso(self, x: jax.Array, deterministic: bool) -> tuple[jax.Array, jax.Array]:
        act = _ACTIVATIONS[self.activation]
        for i, ch in enumerate(self.channels):
            x = nn.relu(PatchConv(ch, name=f"conv_{i}")(x))
        x = x.reshape((x.shape[0], -1))
        a = act(
            nn.Dense(
                self.hidden_size, kernel_init=_ortho(math.sqrt(2)), bias_init=_ZEROS, name="actor_0"
            )(x)
        )
        c = act(
            nn.Dense(
                self.hidden_size,
                kernel_init=_ortho(math.sqrt(2)),
                bias_init=_ZEROS,
                name="critic_0",
            )(x)
        )
        return a, c


class TransformerBlock(nn.Module):
    """Pre-LN block: x + Attn(LN(x)), then x + MLP(LN(x)) with a 4x hidden MLP."""

    d_model: int
    num_heads: int
    dropout: float

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        h = nn.LayerNorm(name="ln_attn")(x)
        h = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            qkv_features=self.d_model,
            dropout_rate=self.dropout,
            deterministic=deterministic,
            name="attn",
        )(h)
        x = x + nn.Dropout(self.dropout, deterministic=deterministic)(h)
        h = nn.LayerNorm(name="ln_mlp")(x)
        h = nn.gelu(nn.Dense(4 * self.d_model, name="mlp_in")(h))
        h = nn.Dense(self.d_model, name="mlp_out")(h)
        return x + nn.Dropout(self.dropout, deterministic=deterministic)(h)


class TransformerActorCritic(ActorCritic):
    """Board cells as tokens; shared trunk, mean-pooled into the policy and value heads."""

    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.0

    @property
    def shared_trunk(self) -> bool:
        return True

    def torso(self, x: jax.Array, deterministic: bool) -> tuple[jax.Array, jax.Array]:
        b = x.shape[0]
        tokens = x.reshape((b, -1, x.shape[-1]))  # (B, H*W, C)
        h = nn.Dense(self.d_model, name="cell_embed")(tokens)
        pos = self.param(
            "pos_embedding", nn.initializers.normal(0.02), (tokens.shape[1], self.d_model)
        )
        h = nn.Dropout(self.dropout, deterministic=deterministic)(h + pos)
        for i in range(self.num_layers):
            h = TransformerBlock(self.d_model, self.num_heads, self.dropout, name=f"block_{i}")(
                h, deterministic
            )
        h = nn.LayerNorm(name="ln_final")(h).mean(axis=1)
        return h, h


def mask_logits(pi: Any, mask: jax.Array) -> Any:
    """A Categorical with the actions outside ``mask`` at probability 0 (a large negative
    logit rather than -inf, so entropies and log-probabilities stay finite)."""
    return distrax.Categorical(logits=jnp.where(mask, pi.logits, -1e9))


def action_spec(env: Any, env_params: Any) -> tuple[int, int]:
    """``(num_actions, action_dim)``: one is 0. Discrete -> (n, 0); Box -> (0, prod(shape))."""
    space = env.action_space(env_params)
    if isinstance(space, spaces.Discrete):
        return int(space.n), 0
    if isinstance(space, spaces.Box):
        return 0, int(np.prod(space.shape)) if space.shape else 1
    raise ValueError(f"unsupported action space {space!r} (need Discrete or Box)")


def make_network(config: Any, env: Any, env_params: Any) -> nn.Module:
    """Build the actor-critic selected by ``config.network`` for this env's spaces."""
    obs_shape = tuple(int(d) for d in env.observation_space(env_params).shape)
    num_actions, action_dim = action_spec(env, env_params)
    common = dict(obs_shape=obs_shape, num_actions=num_actions, action_dim=action_dim,
                  state_dependent_std=bool(getattr(config, "state_dependent_std", False)),
                  rnn=getattr(config, "rnn", "none"), rnn_size=getattr(config, "rnn_size", 128),
                  logit_cap=float(getattr(config, "logit_cap", 0.0)))
    kind = config.network
    if kind not in NETWORKS:
        raise ValueError(f"unknown network {kind!r}; choose one of {', '.join(NETWORKS)}")
    if config.activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {config.activation!r}; choose tanh or relu")
    if kind in ("auto", "mlp"):
        return MLPActorCritic(
            **common,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            activation=config.activation,
            shared_torso=getattr(config, "shared_torso", False),
        )
    if len(obs_shape) != 3:
        raise ValueError(
            f"--network {kind} needs (H, W, C) observations, got shape {obs_shape}; use mlp"
        )
    if kind == "cnn":
        return CNNActorCritic(**common, hidden_size=config.hidden_size, activation="relu")
    if config.d_model % config.num_heads:
        raise ValueError(
            f"d_model={config.d_model} must be divisible by num_heads={config.num_heads}"
        )
    return TransformerActorCritic(
        **common,
        d_model=config.d_model,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        dropout=config.dropout,
    )
