"""PPO for any gymnax environment, in one jitted program (PureJaxRL's flow, with correct time limits).

- ``make_train(config, env, env_params, tx, *, progress_fn=None, lr_schedule=None, mesh=None)
  -> train(key) -> (runner_state, metrics)``: pure and jittable; ``jax.vmap(train)(keys)`` trains
  several seeds in one program. ``train`` is ``trainer.init`` then ``trainer.run``.
- ``Trainer(...)`` (same arguments): ``init(key) -> RunnerState`` and
  ``run(state, num_updates) -> (state, metrics)`` (``num_updates`` static); ``run(s, a)`` then
  ``run(s', b)`` is bit-identical to ``run(s, a + b)``: a resume needs only ``RunnerState``.
  ``mesh``: a 1-D device mesh (axis ``"envs"``) splits the environments over its devices
  (``ppo_trainer/parallel.py``). ``progress_fn(update_step, metrics)`` is called through
  ``jax.debug.callback`` every ``progress_every`` updates of a ``run`` (per seed under vmap).
  The config is trusted: ``make_train`` validates it, ``ppo_trainer.app.build`` checks it once
  for the CLIs, so a ``Trainer`` built by hand needs a checked config (``config.validate()``).

Each update (``Trainer._update``) runs four stages, in this order:

1. rollout: ``num_steps`` x ``num_envs`` :class:`Transition` s (``_env_step``: ``lax.scan``
   over steps, ``vmap`` over envs);
2. ``_gae``: advantages and value targets. Time limits are truncations: a truncated step is
   bootstrapped from ``V(info["final_observation"])`` and only ``terminated`` zeroes the
   continuation; the recursion is cut at every episode end::

       delta_t = r_t + gamma * (1 - terminated_t) * V(final_obs_t) - V(obs_t)
       A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

3. ``_train_epochs``: ``update_epochs`` epochs, each one global permutation of the batch cut into
   ``num_minibatches`` minibatches, one optimizer step (``_minibatch_step``, ``_loss``) each;
4. ``_metrics``: the update's metrics.

Recurrent policies (``--rnn``) take the same stages with three variations: the rollout carries
each env's hidden state (``RunnerState.carry``), resets it after a step that ended an episode,
and stores ``V(final_obs)`` under the cut episode's own carry (``Transition.final_value``, which
``_gae`` then uses); ``_batch`` keeps the ``(num_steps, num_envs)`` sequences with the carry
the rollout started from and the steps where episodes start; ``_minibatches`` splits the env
axis (whole sequences, PureJaxRL's ``ppo_rnn``), and ``_forward`` re-runs each from its carry.

Optional, per config: observation normalization / reward scaling with running statistics of the
global batch (``ppo_trainer/normalize.py``), value-loss clipping, action masks from the env's
``valid_actions`` hook, minibatches augmented with the env's ``symmetries``. Metrics (leading
axis ``num_updates``): ``charts/episodic_return``, ``charts/episodic_length``,
``charts/<key>`` for every scalar ``info`` value of the env (``envs.info_metrics``), averaged
over the episodes that ended in the update (NaN if none), ``charts/learning_rate`` (at the
optimizer's own step count) and ``losses/*``. Env-step counts are left to the host (Python ints:
an int32 on the device wraps after 2^31 steps). Details: docs/trainer.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from gymnax.environments import spaces
from gymnax.wrappers.purerl import LogWrapper

from ppo_trainer import normalize as nrm
from ppo_trainer.envs import (
    action_mask_fn,
    batched_step,
    check_final_observation,
    info_metrics,
    make_action_fn,
    symmetry_tables,
)
from ppo_trainer.errors import ConfigError
from ppo_trainer.networks import (
    TransformerActorCritic,
    initial_carry,
    make_network,
    mask_logits,
    reset_carry,
)
from ppo_trainer.optim import make_schedule
from ppo_trainer.parallel import AXIS


class RunnerState(NamedTuple):
    """Everything needed to continue training bit-exactly."""

    params: Any
    opt_state: Any
    env_state: Any
    last_obs: jax.Array  # raw (unnormalized) observations of the num_envs environments
    norm: nrm.NormState  # observation / return statistics (used only when enabled)
    rng: jax.Array  # raw uint32 key data
    update_step: jax.Array  # int32 scalar: updates completed
    opt_step: jax.Array  # int32 scalar: optimizer steps taken (the learning-rate schedule's count)
    # Recurrent policies: each env's hidden state per cell (networks.initial_carry), reset where
    # an episode starts; {} (no leaves) for a feed-forward network, as in older checkpoints.
    carry: Any = {}  # noqa: RUF012 (never mutated: a pytree)
    # --weights-ema D: an exponential moving average of params, updated after every update and
    # never trained on; {} (no leaves) when off, as in older checkpoints.
    ema: Any = {}  # noqa: RUF012 (never mutated: a pytree)

    @property
    def policy_params(self) -> Any:
        """The weights a policy is evaluated, kept and exported with: the average of
        ``--weights-ema`` where it is on, else the trained ``params``."""
        return self.ema if self.ema else self.params


class Transition(NamedTuple):
    """One step of every env; the rollout stacks them to ``(num_steps, num_envs, ...)``."""

    obs: jax.Array  # what the network saw (normalized if normalize_obs)
    action: jax.Array
    log_prob: jax.Array  # of the action under the rollout's policy
    value: jax.Array  # V(obs)
    reward: jax.Array  # float32, scaled if normalize_reward
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array  # the pre-reset observation as the network sees it: the bootstrap
    episode_done: jax.Array  # from gymnax's LogWrapper: an episode ended at this step
    episode_return: jax.Array
    episode_length: jax.Array
    info: dict[str, jax.Array]  # the env's own scalar info values (envs.info_metrics)
    mask: jax.Array | None  # valid actions, with action_mask
    final_value: jax.Array | None = None  # recurrent: V(final_obs) under the cut episode's carry


class Batch(NamedTuple):
    """What the loss needs of each sample (leading axes: samples)."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array  # behaviour log-probability
    value: jax.Array  # the rollout's V(obs), for value clipping
    advantage: jax.Array
    target: jax.Array  # value target: advantage + value
    mask: jax.Array | None = None
    # Recurrent policies: leaves keep their (num_steps, num_envs) axes, and each sequence is
    # re-run from the rollout's starting carry, reset where an episode starts.
    carry: Any = None  # (num_envs, ...) per cell
    start: jax.Array | None = None  # (num_steps, num_envs) bool: an episode starts at this step


def _raw_key(key: jax.Array) -> jax.Array:
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of ``x`` where ``mask``; NaN when the mask is empty."""
    n = mask.sum()
    total = jnp.where(mask, x, 0).astype(jnp.float32).sum()
    return jnp.where(n > 0, total / jnp.maximum(n, 1), jnp.nan)


def kl_from_uniform(logits: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """KL(uniform over the legal actions || softmax(logits)) per sample: ``-log n - mean log p``
    over the ``n`` legal actions. Written here because distrax's Categorical KL would count the
    masked actions' -1e9 logits. Its gradient on the logit of an action at probability ``p`` is
    ``p - 1/n`` (the entropy bonus's is ``-p (log p + H)``, which vanishes as ``p -> 0``), so a
    move the policy has all but ruled out keeps a pull towards being tried."""
    log_p = jax.nn.log_softmax(logits)
    legal = jnp.ones(logits.shape, bool) if mask is None else mask.astype(bool)
    n = legal.sum(-1)
    return -jnp.log(n) - jnp.where(legal, log_p, 0.0).sum(-1) / n


class Trainer:
    """PPO on one env/network/optimizer; ``init`` and ``run`` are pure functions of arrays."""

    def __init__(
        self,
        config: Any,
        env: Any,
        env_params: Any,
        tx: optax.GradientTransformation,
        *,
        progress_fn: Callable[[jax.Array, dict[str, jax.Array]], None] | None = None,
        lr_schedule: optax.Schedule | None = None,
        mesh: jax.sharding.Mesh | None = None,
        progress_every: int = 1,
        eval_env: Any = None,
    ) -> None:
        check_final_observation(env, env_params)
        self.config = config
        self.env = LogWrapper(env)
        # what greedy evaluation plays (envs.make_eval_env): the training env unless it differs
        self.eval_env = self.env if eval_env is None else LogWrapper(eval_env)
        self.env_params = env_params
        self.network: nn.Module = make_network(config, env, env_params)
        self.tx = tx
        self.progress_fn = progress_fn
        # A host callback per update costs a device sync: 17-41% of a tiny CartPole update
        # (docs/speed.md), so callers may ask for one every ``progress_every`` updates.
        self.progress_every = max(1, int(progress_every))
        self.lr_schedule = lr_schedule or make_schedule(config, config.lr)
        self._to_env_action = make_action_fn(env, env_params)
        self.info_keys = info_metrics(env, env_params)
        self._obs_shape = tuple(env.observation_space(env_params).shape)
        self._mask_fn = action_mask_fn(env, env_params) if config.action_mask else None
        discrete = isinstance(env.action_space(env_params), spaces.Discrete)
        for flag, value in (("--uniform-kl-coef", config.uniform_kl_coef),
                            ("--logit-cap", config.logit_cap)):
            if value and not discrete:
                raise ConfigError(f"{flag} needs a Discrete action space")
        self._symmetries = symmetry_tables(env, env_params) if config.augment_symmetry else None
        self._dropout = config.dropout > 0 and isinstance(self.network, TransformerActorCritic)
        self.recurrent = getattr(config, "rnn", "none") != "none"
        self.weights_ema = float(getattr(config, "weights_ema", 0.0))
        # Data parallelism (ppo_trainer/parallel.py): with a mesh of several devices, env-batched
        # arrays are constrained to be split on their env axis; with none, nothing changes.
        self.mesh = mesh if mesh is not None and mesh.size > 1 else None

    def _shard_env_axis(self, tree: Any, axis: int = 0) -> Any:
        """Ask XLA to split every leaf of ``tree`` over the mesh's devices along its env axis
        ``axis`` (a sharding constraint: the values do not change). No mesh: ``tree`` as is."""
        if self.mesh is None:
            return tree
        spec = jax.sharding.PartitionSpec(*([None] * axis), AXIS)
        sharding = jax.sharding.NamedSharding(self.mesh, spec)
        return jax.tree.map(
            lambda x: jax.lax.with_sharding_constraint(x, sharding)
            if x.ndim > axis and x.shape[axis] % self.mesh.size == 0 else x,
            tree,
        )

    # ------------------------------------------------------------------ init
    def init(self, key: jax.Array) -> RunnerState:
        """Fresh network, optimizer state and ``num_envs`` reset environments."""
        cfg = self.config
        rng, k_net, k_env = jax.random.split(_raw_key(key), 3)
        reset_keys = jax.random.split(k_env, cfg.num_envs)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(reset_keys, self.env_params)
        norm = nrm.init_norm(self._obs_shape, cfg.num_envs)
        if cfg.normalize_obs:
            norm = norm._replace(obs=nrm.update_stats(norm.obs, obs))
        carry = initial_carry(self.network, cfg.num_envs)
        params = self.network.init(k_net, self.network_input(norm, obs[:1]),
                                   **({"carry": initial_carry(self.network, 1)}
                                      if self.recurrent else {}))
        return RunnerState(
            params=params,
            opt_state=self.tx.init(params),
            env_state=env_state,
            last_obs=obs,
            norm=norm,
            rng=rng,
            update_step=jnp.zeros((), jnp.int32),
            opt_step=jnp.zeros((), jnp.int32),
            carry=carry,
            ema=params if self.weights_ema else {},
        )

    # ------------------------------------------------------------------ the policy
    def network_input(self, norm: nrm.NormState, obs: jax.Array) -> jax.Array:
        """What the network sees: the raw observation, normalized if ``normalize_obs``."""
        if not self.config.normalize_obs:
            return obs
        return nrm.normalize_obs(norm.obs, obs, self.config.clip_obs)

    def observe(self, norm: nrm.NormState, obs: jax.Array) -> jax.Array:
        """Deprecated name of :meth:`network_input` (it read like gymnax's
        ``Environment.observe``); it goes in the next release."""
        warnings.warn("Trainer.observe is deprecated; use Trainer.network_input", FutureWarning,
                      stacklevel=2)
        return self.network_input(norm, obs)

    def masks(self, env_state: Any) -> jax.Array | None:
        """Valid-action masks of a batch of (unwrapped) env states, if ``action_mask``."""
        return None if self._mask_fn is None else jax.vmap(self._mask_fn)(env_state)

    def policy(self, params: Any, obs: jax.Array, mask: jax.Array | None = None) -> tuple:
        """``(pi, value)`` for network inputs ``obs``; actions outside ``mask`` get probability 0."""
        pi, value = self.network.apply(params, obs)
        return (pi if mask is None else mask_logits(pi, mask)), value

    def initial_carry(self, batch: int) -> Any:
        """The hidden state of ``batch`` fresh episodes (``{}`` for a feed-forward network)."""
        return initial_carry(self.network, batch)

    def act(self, params: Any, carry: Any, obs: jax.Array,
            mask: jax.Array | None = None) -> tuple[Any, Any, jax.Array]:
        """``(carry, pi, value)`` of one step of a batch of envs from ``carry``; a feed-forward
        network (``carry == {}``) is :meth:`policy` and passes ``carry`` through."""
        if not self.recurrent:
            return (carry, *self.policy(params, obs, mask))
        carry, pi, value = self.network.apply(params, obs, carry=carry)
        return carry, self._masked(pi, mask), value

    # ------------------------------------------------------------------ run
    def run(self, runner_state: RunnerState, num_updates: int) -> tuple[RunnerState, dict]:
        """``num_updates`` PPO updates (a ``lax.scan``); metrics stacked on a leading axis."""
        # The scan index is not batched by vmap over seeds, so the progress cond stays a cond.
        return jax.lax.scan(self._update, runner_state, jnp.arange(num_updates))

    def _update(self, rs: RunnerState, index: jax.Array) -> tuple[RunnerState, dict]:
        """One PPO update: rollout, GAE, epochs of minibatch steps, metrics."""
        cfg = self.config
        (env_state, last_obs, norm, rng, carry), traj = jax.lax.scan(
            lambda c, _: self._env_step(rs.params, c),
            (rs.env_state, rs.last_obs, rs.norm, rs.rng, rs.carry), None, length=cfg.num_steps)
        traj = self._shard_env_axis(traj, axis=1)  # (num_steps, num_envs, ...)
        advantages, targets = self._gae(rs.params, traj)
        batch = self._batch(traj, advantages, targets, rs.carry)
        (params, opt_state, rng), losses = self._train_epochs(rs, batch, rng)
        metrics = self._metrics(traj, losses, rs.opt_step)
        new_state = RunnerState(
            params, opt_state, env_state, last_obs, norm, rng, rs.update_step + 1,
            rs.opt_step + cfg.update_epochs * cfg.num_minibatches, carry,
            optax.incremental_update(params, rs.ema, 1.0 - self.weights_ema)
            if self.weights_ema else {},  # static: off, no average is kept
        )
        if self.progress_fn is not None:
            jax.lax.cond((index + 1) % self.progress_every == 0,
                         lambda: jax.debug.callback(self.progress_fn, new_state.update_step,
                                                    metrics),
                         lambda: None)
        return new_state, metrics

    # ------------------------------------------------------------------ 1. rollout
    def _env_step(self, params: Any, carry: tuple) -> tuple[tuple, Transition]:
        """One step of every env with the current policy; normalization statistics updated;
        a recurrent policy's carry advanced, then reset where an episode ended."""
        cfg = self.config
        env_state, raw_obs, norm, rng, h = (*self._shard_env_axis(carry[:2]), *carry[2:4],
                                            self._shard_env_axis(carry[4]))
        rng, k_act, k_env = jax.random.split(rng, 3)
        obs = self.network_input(norm, raw_obs)
        mask = self.masks(env_state.env_state)  # env_state is the LogWrapper's
        h, pi, value = self.act(params, h, obs, mask)
        action = pi.sample(seed=k_act)
        log_prob = pi.log_prob(action)
        step_keys = self._shard_env_axis(jax.random.split(k_env, cfg.num_envs))
        next_obs, env_state, reward, terminated, truncated, info = self._shard_env_axis(
            batched_step(self.env)(step_keys, env_state, self._to_env_action(action),
                                   self.env_params))
        reward = reward.astype(jnp.float32)
        if cfg.normalize_obs:  # statistics of the whole (global) batch of new observations
            norm = norm._replace(obs=nrm.update_stats(norm.obs, next_obs))
        if cfg.normalize_reward:
            norm = nrm.update_returns(norm, reward, terminated | truncated, cfg.gamma)
            reward = nrm.scale_reward(norm.ret, reward, cfg.clip_reward)
        # normalized with the statistics the next step's observation gets
        final_obs = self.network_input(norm, info["final_observation"])
        final_value = None
        if self.recurrent:  # the cut episode's own carry bootstraps it, before the reset
            final_value = self.act(params, h, final_obs)[2]
            h = reset_carry(h, terminated | truncated)
        transition = Transition(
            obs, action, log_prob, value, reward, terminated, truncated, final_obs,
            episode_done=info["returned_episode"],
            episode_return=info["returned_episode_returns"],
            episode_length=info["returned_episode_lengths"],
            info={k: info[k] for k in self.info_keys},
            mask=mask,
            final_value=final_value,
        )
        return (env_state, next_obs, norm, rng, h), transition

    # ------------------------------------------------------------------ 2. advantages
    def _gae(self, params: Any, traj: Transition) -> tuple[jax.Array, jax.Array]:
        """``(advantages, value targets)``: GAE with truncations bootstrapped (module docstring)."""
        cfg = self.config
        next_value = traj.final_value
        if next_value is None:  # feed-forward: one batched pass over the bootstrap observations
            _, next_value = self.network.apply(params, traj.final_obs)
        terminated = traj.terminated.astype(jnp.float32)
        done = jnp.logical_or(traj.terminated, traj.truncated).astype(jnp.float32)
        delta = traj.reward + cfg.gamma * (1.0 - terminated) * next_value - traj.value

        def backwards(gae: jax.Array, step: tuple[jax.Array, jax.Array]) -> tuple:
            delta_t, not_done_t = step
            gae = delta_t + cfg.gamma * cfg.gae_lambda * not_done_t * gae
            return gae, gae

        _, advantages = jax.lax.scan(
            backwards, jnp.zeros_like(delta[0]), (delta, 1.0 - done), reverse=True
        )
        return advantages, advantages + traj.value

    # ------------------------------------------------------------------ 3. epochs, minibatches
    def _batch(self, traj: Transition, advantages: jax.Array, targets: jax.Array,
               carry: Any) -> Batch:
        """The samples of the update: flattened to ``batch_size`` for a feed-forward policy; for
        a recurrent one, ``(num_steps, num_envs)`` sequences with their starting carry and the
        steps where an episode starts (the step after each ``done``)."""
        batch = Batch(traj.obs, traj.action, traj.log_prob, traj.value, advantages, targets,
                      traj.mask)
        if not self.recurrent:
            return jax.tree.map(lambda x: x.reshape((self.config.batch_size, *x.shape[2:])),
                                batch)
        done = traj.terminated | traj.truncated
        start = jnp.concatenate([jnp.zeros_like(done[:1]), done[:-1]])
        return batch._replace(carry=carry, start=start)

    def _minibatches(self, batch: Batch, key: jax.Array) -> Batch:
        """One epoch's shuffle cut into ``num_minibatches`` (leading axis), each split over the
        devices: any samples for a feed-forward policy, whole env sequences for a recurrent one
        (PureJaxRL's ``ppo_rnn``: the env axis, axis 1 of the sequences, 0 of the carry)."""
        cfg = self.config
        if not self.recurrent:
            perm = jax.random.permutation(key, cfg.batch_size)
            minibatches = jax.tree.map(
                lambda x: jnp.take(x, perm, axis=0).reshape(
                    (cfg.num_minibatches, cfg.minibatch_size, *x.shape[1:])),
                batch,
            )
            return self._shard_env_axis(minibatches, axis=1)
        perm = jax.random.permutation(key, cfg.num_envs)

        def split(x: jax.Array, axis: int) -> jax.Array:
            x = jnp.take(x, perm, axis=axis)
            x = x.reshape((*x.shape[:axis], cfg.num_minibatches, -1, *x.shape[axis + 1:]))
            return jnp.moveaxis(x, axis, 0)

        seqs = self._shard_env_axis(jax.tree.map(lambda x: split(x, 1), batch._replace(carry=None)),
                                    axis=2)
        carry = self._shard_env_axis(jax.tree.map(lambda x: split(x, 0), batch.carry), axis=1)
        return seqs._replace(carry=carry)

    def _train_epochs(self, rs: RunnerState, batch: Batch, rng: jax.Array) -> tuple:
        """``update_epochs`` passes over ``batch``, each one global shuffle cut into minibatches:
        ``((params, opt_state, rng), losses)``, losses stacked ``(epochs, minibatches)``."""
        cfg = self.config

        def epoch(carry: tuple, _: None) -> tuple:
            params, opt_state, rng = carry
            rng, k_perm = jax.random.split(rng)
            # Each minibatch is split over the devices: its loss gradient becomes an all-reduce.
            minibatches = self._minibatches(batch, k_perm)
            return jax.lax.scan(lambda c, mb: self._minibatch_step(rs.params, c, mb),
                                (params, opt_state, rng), minibatches)

        return jax.lax.scan(epoch, (rs.params, rs.opt_state, rng), None, length=cfg.update_epochs)

    def _minibatch_step(self, rollout_params: Any, carry: tuple, mb: Batch) -> tuple[tuple, dict]:
        """One optimizer step on one minibatch (augmented first, with ``augment_symmetry``)."""
        params, opt_state, rng = carry
        rng, k_drop, k_sym = jax.random.split(rng, 3)
        if self._symmetries is not None:
            mb = self._augment(mb, k_sym)
        grads, losses = jax.grad(self._loss, has_aux=True)(params, mb, k_drop, rollout_params)
        updates, opt_state = self.tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state, rng), losses

    def _augment(self, mb: Batch, key: jax.Array) -> Batch:
        """Each sample under a random symmetry of the env: observation transformed, action (and
        mask) permuted. The behaviour log-probability, the old value, the advantage and the value
        target stay the original sample's: the mirrored transition is one the mirrored behaviour
        policy took with exactly that probability (as in Mittal et al. 2023, "Symmetry
        considerations for learning task symmetric robot policies"). Recomputing the denominator
        as pi_old(g.a | g.s) instead divides by a probability that a near-deterministic,
        asymmetric policy makes tiny."""
        transforms, perms = self._symmetries
        k = jax.random.randint(key, mb.action.shape, 0, len(transforms))
        obs = jax.vmap(lambda i, o: jax.lax.switch(i, transforms, o))(k, mb.obs)
        mask = mb.mask
        if mask is not None:  # the action playing the role of a is perm[a]: mask'[perm[a]] = mask[a]
            mask = jnp.take_along_axis(mask, jnp.argsort(perms, axis=1)[k], axis=1)
        return mb._replace(obs=obs, action=perms[k, mb.action], mask=mask)

    def _loss(self, params: Any, mb: Batch, dropout_key: jax.Array,
              rollout_params: Any) -> tuple[jax.Array, dict]:
        """Clipped policy + (optionally clipped) value loss - entropy bonus, with per-minibatch
        advantage normalization.

        With dropout, the ratio's denominator is recomputed with the rollout's parameters under
        the SAME dropout mask as the numerator, so the ratio is exactly 1 before the first
        update of every rollout (the rollout itself acts deterministically).
        """
        cfg = self.config
        pi, value, old_log_prob = self._policy_for_loss(params, mb, dropout_key, rollout_params)
        log_prob = pi.log_prob(mb.action)

        value_loss = jnp.square(value - mb.target)
        if cfg.clip_value_loss:
            value_clipped = mb.value + jnp.clip(value - mb.value, -cfg.clip_eps, cfg.clip_eps)
            value_loss = jnp.maximum(value_loss, jnp.square(value_clipped - mb.target))
        value_loss = 0.5 * value_loss.mean()

        adv = (mb.advantage - mb.advantage.mean()) / (mb.advantage.std() + 1e-8)
        log_ratio = log_prob - old_log_prob
        ratio = jnp.exp(log_ratio)
        policy_loss = -jnp.minimum(
            ratio * adv, jnp.clip(ratio, 1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps) * adv
        ).mean()
        entropy = pi.entropy().mean()
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
        extra = {}
        if cfg.uniform_kl_coef:  # static: off, the loss is the plain PPO one
            extra["uniform_kl"] = kl_from_uniform(pi.logits, mb.mask).mean()
            loss = loss + cfg.uniform_kl_coef * extra["uniform_kl"]

        return loss, {
            "value_loss": value_loss,
            "policy_loss": policy_loss,
            "entropy": entropy,
            **extra,
            "approx_kl": jax.lax.stop_gradient(((ratio - 1.0) - log_ratio).mean()),
            "clipfrac": jax.lax.stop_gradient((jnp.abs(ratio - 1.0) > cfg.clip_eps).mean()),
            "loss": loss,
        }

    def _policy_for_loss(self, params: Any, mb: Batch, dropout_key: jax.Array,
                         rollout_params: Any) -> tuple[Any, jax.Array, jax.Array]:
        """``(pi, value, old_log_prob)`` of the minibatch: the behaviour log-probability, or
        with dropout the rollout parameters' under the numerator's dropout mask."""
        if not self._dropout:
            pi, value = self._forward(params, mb)
            return self._masked(pi, mb.mask), value, mb.log_prob
        rngs = {"dropout": dropout_key}
        pi, value = self._forward(params, mb, deterministic=False, rngs=rngs)
        old_pi, _ = self._forward(jax.lax.stop_gradient(rollout_params), mb,
                                  deterministic=False, rngs=rngs)
        old_log_prob = self._masked(old_pi, mb.mask).log_prob(mb.action)
        return self._masked(pi, mb.mask), value, old_log_prob

    def _forward(self, params: Any, mb: Batch, **kwargs: Any) -> tuple[Any, jax.Array]:
        """``(pi, value)`` of the minibatch's samples; a recurrent network re-runs each
        sequence from its starting carry."""
        if mb.carry is None:
            return self.network.apply(params, mb.obs, **kwargs)
        return self.network.apply(params, mb.obs, carry=mb.carry, resets=mb.start, **kwargs)[1:]

    @staticmethod
    def _masked(pi: Any, mask: jax.Array | None) -> Any:
        return pi if mask is None else mask_logits(pi, mask)

    # ------------------------------------------------------------------ 4. metrics
    def _metrics(self, traj: Transition, losses: dict, opt_step: jax.Array) -> dict:
        """Episode statistics of the episodes that ended in this update, the learning rate at
        its first optimizer step, and the mean of each loss term over its minibatch steps."""
        ended = traj.episode_done
        return {
            "charts/episodic_return": _masked_mean(traj.episode_return, ended),
            "charts/episodic_length": _masked_mean(traj.episode_length, ended),
            "charts/learning_rate": jnp.asarray(self.lr_schedule(opt_step), jnp.float32),
            **{f"charts/{k}": _masked_mean(v, ended) for k, v in traj.info.items()},
            **{f"losses/{k}": v.mean() for k, v in losses.items()},
        }


def make_train(config: Any, env: Any, env_params: Any, tx: optax.GradientTransformation,
               **options: Any) -> Callable[[jax.Array], tuple[RunnerState, dict]]:
    """``train(key) -> (runner_state, metrics)`` for the whole run; pure, jittable, vmappable.
    ``options``: ``Trainer``'s keyword arguments (``progress_fn``, ``lr_schedule``, ``mesh``,
    ``progress_every``). The library's entry point: it checks ``config`` (``validate``) once."""
    config.validate()
    trainer = Trainer(config, env, env_params, tx, **options)

    def train(key: jax.Array) -> tuple[RunnerState, dict]:
        return trainer.run(trainer.init(key), config.num_updates)

    return train


def __getattr__(name: str) -> Any:
    """``make_trainer``: the old second name of :class:`Trainer`, kept for one release."""
    if name == "make_trainer":
        warnings.warn("ppo_trainer.ppo.make_trainer is deprecated; use ppo_trainer.ppo.Trainer "
                      "(same arguments)", FutureWarning, stacklevel=2)
        return Trainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
