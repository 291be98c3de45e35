"""PPO for any gymnax environment, in one jitted program (PureJaxRL's flow, with correct time limits).

- ``make_train(config, env, env_params, tx, *, progress_fn=None, lr_schedule=None, mesh=None)
  -> train(key) -> (runner_state, metrics)``: pure and jittable; ``jax.vmap(train)(keys)`` trains
  several seeds in one program. ``train`` is ``trainer.init`` then ``trainer.run``.
- ``make_trainer(...) -> Trainer`` (same arguments): ``init(key) -> RunnerState`` and
  ``run(state, num_updates) -> (state, metrics)`` (``num_updates`` static); ``run(s, a)`` then
  ``run(s', b)`` is bit-identical to ``run(s, a + b)``: a resume needs only ``RunnerState``.
  ``mesh``: a 1-D device mesh (axis ``"envs"``) splits the environments over its devices
  (``ppo_trainer/parallel.py``). ``progress_fn(update_step, metrics)`` is called through
  ``jax.debug.callback`` every ``progress_every`` updates of a ``run`` (per seed under vmap).

Each update: collect ``num_steps`` x ``num_envs`` transitions (``lax.scan`` over steps, ``vmap``
over envs), compute GAE, then ``update_epochs`` epochs of ``num_minibatches`` minibatches drawn
by one global permutation of the batch. Time limits are truncations: a truncated step is
bootstrapped from ``V(info["final_observation"])`` and only ``terminated`` zeroes the
continuation; the GAE recursion is cut at every episode end::

    delta_t = r_t + gamma * (1 - terminated_t) * V(final_obs_t) - V(obs_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

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

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from gymnax.wrappers.purerl import LogWrapper

from ppo_trainer import normalize as nrm
from ppo_trainer.envs import (
    action_mask_fn,
    check_final_observation,
    info_metrics,
    make_action_fn,
    symmetry_tables,
)
from ppo_trainer.errors import ConfigError
from ppo_trainer.networks import TransformerActorCritic, make_network, mask_logits
from ppo_trainer.optim import make_schedule


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
    ) -> None:
        if config.num_envs < 1 or config.num_steps < 1:
            raise ConfigError("num_envs and num_steps must be positive")
        if config.batch_size % config.num_minibatches:
            raise ConfigError(
                f"num_minibatches={config.num_minibatches} must divide "
                f"num_envs * num_steps = {config.batch_size}"
            )
        check_final_observation(env, env_params)
        self.config = config
        self.env = LogWrapper(env)
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
        self._symmetries = symmetry_tables(env, env_params) if config.augment_symmetry else None
        self._dropout = config.dropout > 0 and isinstance(self.network, TransformerActorCritic)
        # Data parallelism (ppo_trainer/parallel.py): with a mesh of several devices, env-batched
        # arrays are constrained to be split on their env axis; with none, nothing changes.
        self.mesh = mesh if mesh is not None and mesh.size > 1 else None
        if self.mesh is not None and config.num_envs % self.mesh.size:
            raise ConfigError(f"num_envs={config.num_envs} must divide by the device count {self.mesh.size}")

    def _split(self, tree: Any, axis: int = 0) -> Any:
        """Constrain every leaf of ``tree`` to be sharded over the mesh along ``axis``."""
        if self.mesh is None:
            return tree
        spec = jax.sharding.PartitionSpec(*([None] * axis), "envs")
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
        params = self.network.init(k_net, self.observe(norm, obs[:1]))
        return RunnerState(
            params=params,
            opt_state=self.tx.init(params),
            env_state=env_state,
            last_obs=obs,
            norm=norm,
            rng=rng,
            update_step=jnp.zeros((), jnp.int32),
            opt_step=jnp.zeros((), jnp.int32),
        )

    def observe(self, norm: nrm.NormState, obs: jax.Array) -> jax.Array:
        """What the network sees: the raw observation, normalized if ``normalize_obs``."""
        if not self.config.normalize_obs:
            return obs
        return nrm.normalize_obs(norm.obs, obs, self.config.clip_obs)

    def masks(self, env_state: Any) -> jax.Array | None:
        """Valid-action masks of a batch of (unwrapped) env states, if ``action_mask``."""
        return None if self._mask_fn is None else jax.vmap(self._mask_fn)(env_state)

    def policy(self, params: Any, obs: jax.Array, mask: jax.Array | None = None) -> tuple:
        """``(pi, value)`` for network inputs ``obs``; actions outside ``mask`` get probability 0."""
        pi, value = self.network.apply(params, obs)
        return (pi if mask is None else mask_logits(pi, mask)), value

    # ------------------------------------------------------------------ run
    def run(self, runner_state: RunnerState, num_updates: int) -> tuple[RunnerState, dict]:
        """``num_updates`` PPO updates (a ``lax.scan``); metrics stacked on a leading axis."""
        # The scan index is not batched by vmap over seeds, so the progress cond stays a cond.
        return jax.lax.scan(self._update, runner_state, jnp.arange(num_updates))

    def _env_step(self, params: Any, carry: tuple, _: None) -> tuple[tuple, dict]:
        """One step of every env with the current policy; normalization statistics updated."""
        cfg = self.config
        env_state, raw_obs, norm, rng = carry
        env_state, raw_obs = self._split((env_state, raw_obs))
        rng, k_act, k_env = jax.random.split(rng, 3)
        obs = self.observe(norm, raw_obs)
        mask = self.masks(env_state.env_state)  # env_state is the LogWrapper's
        pi, value = self.policy(params, obs, mask)
        action = pi.sample(seed=k_act)
        log_prob = pi.log_prob(action)
        step_keys = self._split(jax.random.split(k_env, cfg.num_envs))
        next_obs, env_state, reward, terminated, truncated, info = self._split(jax.vmap(
            self.env.step, in_axes=(0, 0, 0, None)
        )(step_keys, env_state, self._to_env_action(action), self.env_params))
        reward = reward.astype(jnp.float32)
        if cfg.normalize_obs:  # statistics of the whole (global) batch of new observations
            norm = norm._replace(obs=nrm.update_stats(norm.obs, next_obs))
        if cfg.normalize_reward:
            norm = nrm.update_returns(norm, reward, terminated | truncated, cfg.gamma)
            reward = nrm.scale_reward(norm.ret, reward, cfg.clip_reward)
        transition = {
            "obs": obs,
            "action": action,
            "log_prob": log_prob,
            "value": value,
            "reward": reward,
            "terminated": terminated,
            "truncated": truncated,
            # normalized with the statistics the next step's observation gets
            "final_obs": self.observe(norm, info["final_observation"]),
            "episode_done": info["returned_episode"],
            "episode_return": info["returned_episode_returns"],
            "episode_length": info["returned_episode_lengths"],
            **{f"info/{k}": info[k] for k in self.info_keys},
            **({} if mask is None else {"mask": mask}),
        }
        return (env_state, next_obs, norm, rng), transition

    def _update(self, rs: RunnerState, index: jax.Array) -> tuple[RunnerState, dict]:
        cfg = self.config
        network = self.network

        # 1. Collect num_steps transitions from every env.
        (env_state, last_obs, norm, rng), traj = jax.lax.scan(
            lambda c, x: self._env_step(rs.params, c, x),
            (rs.env_state, rs.last_obs, rs.norm, rs.rng), None, length=cfg.num_steps
        )
        traj = self._split(traj, axis=1)  # (num_steps, num_envs, ...)

        # 2. GAE with truncation bootstrapping (see the module docstring).
        _, next_value = network.apply(rs.params, traj["final_obs"])
        terminated = traj["terminated"].astype(jnp.float32)
        done = jnp.logical_or(traj["terminated"], traj["truncated"]).astype(jnp.float32)
        delta = traj["reward"] + cfg.gamma * (1.0 - terminated) * next_value - traj["value"]

        def gae_step(gae, x):
            delta_t, not_done_t = x
            gae = delta_t + cfg.gamma * cfg.gae_lambda * not_done_t * gae
            return gae, gae

        _, advantages = jax.lax.scan(
            gae_step, jnp.zeros_like(delta[0]), (delta, 1.0 - done), reverse=True
        )
        targets = advantages + traj["value"]

        # 3. Epochs of minibatch updates over one global shuffle of the whole batch.
        batch = {
            "obs": traj["obs"],
            "action": traj["action"],
            "log_prob": traj["log_prob"],
            "value": traj["value"],
            "advantage": advantages,
            "target": targets,
            **({"mask": traj["mask"]} if "mask" in traj else {}),
        }
        batch = jax.tree.map(lambda x: x.reshape((cfg.batch_size, *x.shape[2:])), batch)

        def epoch(carry, _):
            params, opt_state, rng = carry
            rng, k_perm = jax.random.split(rng)
            perm = jax.random.permutation(k_perm, cfg.batch_size)
            minibatches = jax.tree.map(
                lambda x: jnp.take(x, perm, axis=0).reshape(
                    (cfg.num_minibatches, cfg.minibatch_size, *x.shape[1:])
                ),
                batch,
            )
            # Each minibatch is split over the devices: its loss gradient becomes an all-reduce.
            minibatches = self._split(minibatches, axis=1)

            def minibatch_step(carry, mb):
                params, opt_state, rng = carry
                rng, k_drop, k_sym = jax.random.split(rng, 3)
                if self._symmetries is not None:
                    mb = self._augment(mb, k_sym)
                grads, losses = jax.grad(self._loss, has_aux=True)(params, mb, k_drop, rs.params)
                updates, opt_state = self.tx.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
                return (params, opt_state, rng), losses

            return jax.lax.scan(minibatch_step, (params, opt_state, rng), minibatches)

        (params, opt_state, rng), losses = jax.lax.scan(
            epoch, (rs.params, rs.opt_state, rng), None, length=cfg.update_epochs
        )

        # 4. Metrics of this update.
        ep_done = traj["episode_done"]
        metrics = {
            "charts/episodic_return": _masked_mean(traj["episode_return"], ep_done),
            "charts/episodic_length": _masked_mean(traj["episode_length"], ep_done),
            "charts/learning_rate": jnp.asarray(self.lr_schedule(rs.opt_step), jnp.float32),
            **{f"charts/{k}": _masked_mean(traj[f"info/{k}"], ep_done) for k in self.info_keys},
            **{f"losses/{k}": v.mean() for k, v in losses.items()},
        }

        new_state = RunnerState(
            params, opt_state, env_state, last_obs, norm, rng, rs.update_step + 1,
            rs.opt_step + cfg.update_epochs * cfg.num_minibatches,
        )
        if self.progress_fn is not None:
            jax.lax.cond((index + 1) % self.progress_every == 0,
                         lambda: jax.debug.callback(self.progress_fn, new_state.update_step,
                                                    metrics),
                         lambda: None)
        return new_state, metrics

    def _augment(self, mb: dict, key: jax.Array) -> dict:
        """Each sample under a random symmetry of the env: observation transformed, action (and
        mask) permuted. The behaviour log-probability, the old value, the advantage and the value
        target stay the original sample's: the mirrored transition is one the mirrored behaviour
        policy took with exactly that probability (as in Mittal et al. 2023, "Symmetry
        considerations for learning task symmetric robot policies"). Recomputing the denominator
        as pi_old(g.a | g.s) instead divides by a probability that a near-deterministic,
        asymmetric policy makes tiny."""
        transforms, perms = self._symmetries
        k = jax.random.randint(key, mb["action"].shape, 0, len(transforms))
        obs = jax.vmap(lambda i, o: jax.lax.switch(i, transforms, o))(k, mb["obs"])
        out = {**mb, "obs": obs, "action": perms[k, mb["action"]]}
        if "mask" in mb:  # the action playing the role of a is perm[a]: mask'[perm[a]] = mask[a]
            out["mask"] = jnp.take_along_axis(mb["mask"], jnp.argsort(perms, axis=1)[k], axis=1)
        return out

    def _loss(self, params: Any, mb: dict, dropout_key: jax.Array,
              rollout_params: Any) -> tuple[jax.Array, dict]:
        """Clipped policy + (optionally clipped) value loss - entropy bonus, with per-minibatch
        advantage normalization.

        With dropout, the ratio's denominator is recomputed with the rollout's parameters under
        the SAME dropout mask as the numerator, so the ratio is exactly 1 before the first
        update of every rollout (the rollout itself acts deterministically).
        """
        cfg = self.config
        mask = mb.get("mask")
        if self._dropout:
            rngs = {"dropout": dropout_key}
            pi, value = self.network.apply(params, mb["obs"], deterministic=False, rngs=rngs)
            old_pi, _ = self.network.apply(jax.lax.stop_gradient(rollout_params), mb["obs"],
                                           deterministic=False, rngs=rngs)
            old_pi = old_pi if mask is None else mask_logits(old_pi, mask)
            old_log_prob = old_pi.log_prob(mb["action"])
        else:
            pi, value = self.network.apply(params, mb["obs"])
            old_log_prob = mb["log_prob"]
        pi = pi if mask is None else mask_logits(pi, mask)
        log_prob = pi.log_prob(mb["action"])

        value_loss = jnp.square(value - mb["target"])
        if cfg.clip_value_loss:
            value_clipped = mb["value"] + jnp.clip(value - mb["value"], -cfg.clip_eps, cfg.clip_eps)
            value_loss = jnp.maximum(value_loss, jnp.square(value_clipped - mb["target"]))
        value_loss = 0.5 * value_loss.mean()

        adv = mb["advantage"]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        log_ratio = log_prob - old_log_prob
        ratio = jnp.exp(log_ratio)
        policy_loss = -jnp.minimum(
            ratio * adv, jnp.clip(ratio, 1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps) * adv
        ).mean()
        entropy = pi.entropy().mean()
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy

        stats = {
            "value_loss": value_loss,
            "policy_loss": policy_loss,
            "entropy": entropy,
            "approx_kl": jax.lax.stop_gradient(((ratio - 1.0) - log_ratio).mean()),
            "clipfrac": jax.lax.stop_gradient((jnp.abs(ratio - 1.0) > cfg.clip_eps).mean()),
            "loss": loss,
        }
        return loss, stats


make_trainer = Trainer  # the chunked API (init / run) used by the run loop for checkpoints


def make_train(config: Any, env: Any, env_params: Any, tx: optax.GradientTransformation,
               **options: Any) -> Callable[[jax.Array], tuple[RunnerState, dict]]:
    """``train(key) -> (runner_state, metrics)`` for the whole run; pure, jittable, vmappable.
    ``options``: ``Trainer``'s keyword arguments (``progress_fn``, ``lr_schedule``, ``mesh``,
    ``progress_every``)."""
    trainer = Trainer(config, env, env_params, tx, **options)
    if config.num_updates < 1:
        raise ConfigError(
            f"total_timesteps={config.total_timesteps} is less than one update "
            f"(num_envs * num_steps = {config.batch_size})"
        )

    def train(key: jax.Array) -> tuple[RunnerState, dict]:
        return trainer.run(trainer.init(key), config.num_updates)

    return train
