"""PPO for any gymnax environment, in one jitted program (PureJaxRL's flow, with correct time limits).

Public API:

- ``make_train(config, env, env_params, tx, *, progress_fn=None, lr_schedule=None)
  -> train(key) -> (runner_state, metrics)``: pure and jittable; ``jax.vmap(train)(keys)`` trains
  several seeds in one program. ``train`` is ``trainer.init`` followed by
  ``trainer.run(state, config.num_updates)``.
- ``make_trainer(...) -> Trainer`` (same arguments), the chunked API for checkpointing/resume:
  ``trainer.network`` (the flax module), ``trainer.env`` (the env wrapped in ``LogWrapper``),
  ``trainer.init(key) -> RunnerState`` and ``trainer.run(state, num_updates) -> (state, metrics)``
  (``num_updates`` is a Python int: mark it static under ``jax.jit``). Both are vmappable over the
  key / the state. Running ``run(s, a)`` then ``run(s', b)`` gives bit-identical results to
  ``run(s, a + b)``: everything a resume needs is in ``RunnerState``.
- ``mesh=`` (both factories): a 1-D device mesh (axis ``"envs"``) splits the environments over
  its devices, data-parallel with an all-reduced gradient (``ppo_trainer/parallel.py``).
- ``RunnerState``: a NamedTuple ``(params, opt_state, env_state, last_obs, rng, update_step)``
  of plain arrays (``rng`` is a raw uint32 key), serializable with ``flax.serialization``.
- ``metrics``: dict of arrays with leading axis ``num_updates`` (after any vmapped seed axis):
  ``global_step`` (env steps so far, per seed), ``charts/episodic_return``,
  ``charts/episodic_length`` (mean over episodes that ended during the update; NaN if none),
  ``charts/apples`` (mean ``info["apples"]`` at episode end; only for envs reporting it),
  ``charts/learning_rate`` (``lr_schedule`` at the update's first optimizer step),
  ``losses/{value_loss,policy_loss,entropy,approx_kl,clipfrac,loss}`` (means over the update's
  epochs and minibatches).
- ``progress_fn(update_step, metrics)``: if given, called through ``jax.debug.callback`` once per
  update (once per seed under vmap) with the number of completed updates and that update's
  scalar metrics.

Each update: collect ``num_steps`` x ``num_envs`` transitions (``lax.scan`` over steps, ``vmap``
over envs), compute GAE, then ``update_epochs`` epochs of ``num_minibatches`` minibatches drawn by
one global permutation of the whole batch. Time limits are truncations: a truncated step is
bootstrapped from ``V(info["final_observation"])``, only ``terminated`` zeroes the continuation,
and the GAE recursion is cut at every episode end:

    delta_t = r_t + gamma * (1 - terminated_t) * V(final_obs_t) - V(obs_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

``final_obs_t`` is the pre-reset observation after step t; it equals ``obs_{t+1}`` unless the
episode ended, so one batched critic pass over all ``final_obs`` gives every bootstrap value
(XLA drops the unused actor half).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from gymnax.wrappers.purerl import LogWrapper

from ppo_trainer.envs import make_action_fn
from ppo_trainer.networks import TransformerActorCritic, make_network
from ppo_trainer.optim import make_schedule

METRIC_NAMES = (
    "global_step",
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/learning_rate",
    "losses/value_loss",
    "losses/policy_loss",
    "losses/entropy",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/loss",
)  # plus "charts/apples" for envs whose info has "apples"


class RunnerState(NamedTuple):
    """Everything needed to continue training bit-exactly."""

    params: Any
    opt_state: Any
    env_state: Any
    last_obs: jax.Array
    rng: jax.Array  # raw uint32 key data
    update_step: jax.Array  # int32 scalar: updates completed


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
    ) -> None:
        if config.num_envs < 1 or config.num_steps < 1:
            raise ValueError("num_envs and num_steps must be positive")
        if config.batch_size % config.num_minibatches:
            raise ValueError(
                f"num_minibatches={config.num_minibatches} must divide "
                f"num_envs * num_steps = {config.batch_size}"
            )
        self.config = config
        self.env = LogWrapper(env)
        self.env_params = env_params
        self.network: nn.Module = make_network(config, env, env_params)
        self.tx = tx
        self.progress_fn = progress_fn
        self.lr_schedule = lr_schedule or make_schedule(config, config.lr)
        self._to_env_action = make_action_fn(env, env_params)
        self._dropout = config.dropout > 0 and isinstance(self.network, TransformerActorCritic)
        # Data parallelism (ppo_trainer/parallel.py): with a mesh of several devices, env-batched
        # arrays are constrained to be split on their env axis; with none, nothing changes.
        self.mesh = mesh if mesh is not None and mesh.size > 1 else None
        if self.mesh is not None and config.num_envs % self.mesh.size:
            raise ValueError(f"num_envs={config.num_envs} must divide by the device count {self.mesh.size}")

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
        rng, k_net, k_env = jax.random.split(_raw_key(key), 3)
        reset_keys = jax.random.split(k_env, self.config.num_envs)
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(reset_keys, self.env_params)
        params = self.network.init(k_net, obs[:1])
        return RunnerState(
            params=params,
            opt_state=self.tx.init(params),
            env_state=env_state,
            last_obs=obs,
            rng=rng,
            update_step=jnp.zeros((), jnp.int32),
        )

    # ------------------------------------------------------------------ run
    def run(self, runner_state: RunnerState, num_updates: int) -> tuple[RunnerState, dict]:
        """``num_updates`` PPO updates (a ``lax.scan``); metrics stacked on a leading axis."""
        return jax.lax.scan(self._update, runner_state, None, length=num_updates)

    def _update(self, rs: RunnerState, _: None) -> tuple[RunnerState, dict]:
        cfg = self.config
        network, env, env_params = self.network, self.env, self.env_params

        # 1. Collect num_steps transitions from every env.
        def env_step(carry, _):
            env_state, obs, rng = carry
            env_state, obs = self._split((env_state, obs))
            rng, k_act, k_env = jax.random.split(rng, 3)
            pi, value = network.apply(rs.params, obs)
            action = pi.sample(seed=k_act)
            log_prob = pi.log_prob(action)
            step_keys = self._split(jax.random.split(k_env, cfg.num_envs))
            next_obs, env_state, reward, terminated, truncated, info = self._split(jax.vmap(
                env.step, in_axes=(0, 0, 0, None)
            )(step_keys, env_state, self._to_env_action(action), env_params))
            transition = {
                "obs": obs,
                "action": action,
                "log_prob": log_prob,
                "value": value,
                "reward": reward.astype(jnp.float32),
                "terminated": terminated,
                "truncated": truncated,
                "final_obs": info["final_observation"],
                "episode_done": info["returned_episode"],
                "episode_return": info["returned_episode_returns"],
                "episode_length": info["returned_episode_lengths"],
            }
            if "apples" in info:
                transition["apples"] = info["apples"]
            return (env_state, next_obs, rng), transition

        (env_state, last_obs, rng), traj = jax.lax.scan(
            env_step, (rs.env_state, rs.last_obs, rs.rng), None, length=cfg.num_steps
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
                rng, k_drop = jax.random.split(rng)
                grads, losses = jax.grad(self._loss, has_aux=True)(params, mb, k_drop)
                updates, opt_state = self.tx.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
                return (params, opt_state, rng), losses

            return jax.lax.scan(minibatch_step, (params, opt_state, rng), minibatches)

        (params, opt_state, rng), losses = jax.lax.scan(
            epoch, (rs.params, rs.opt_state, rng), None, length=cfg.update_epochs
        )

        # 4. Metrics of this update.
        steps_per_update = cfg.update_epochs * cfg.num_minibatches
        ep_done = traj["episode_done"]
        metrics = {
            "global_step": (rs.update_step + 1) * cfg.batch_size,
            "charts/episodic_return": _masked_mean(traj["episode_return"], ep_done),
            "charts/episodic_length": _masked_mean(traj["episode_length"], ep_done),
            "charts/learning_rate": jnp.asarray(
                self.lr_schedule(rs.update_step * steps_per_update), jnp.float32
            ),
            **{f"losses/{k}": v.mean() for k, v in losses.items()},
        }
        if "apples" in traj:
            metrics["charts/apples"] = _masked_mean(traj["apples"], ep_done)

        new_state = RunnerState(params, opt_state, env_state, last_obs, rng, rs.update_step + 1)
        if self.progress_fn is not None:
            jax.debug.callback(self.progress_fn, new_state.update_step, metrics)
        return new_state, metrics

    def _loss(self, params: Any, mb: dict, dropout_key: jax.Array) -> tuple[jax.Array, dict]:
        """Clipped policy + clipped value loss - entropy bonus, with per-minibatch adv. norm."""
        cfg = self.config
        if self._dropout:
            pi, value = self.network.apply(
                params, mb["obs"], deterministic=False, rngs={"dropout": dropout_key}
            )
        else:
            pi, value = self.network.apply(params, mb["obs"])
        log_prob = pi.log_prob(mb["action"])

        value_clipped = mb["value"] + jnp.clip(value - mb["value"], -cfg.clip_eps, cfg.clip_eps)
        value_loss = (
            0.5
            * jnp.maximum(
                jnp.square(value - mb["target"]), jnp.square(value_clipped - mb["target"])
            ).mean()
        )

        adv = mb["advantage"]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        log_ratio = log_prob - mb["log_prob"]
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


def make_trainer(
    config: Any,
    env: Any,
    env_params: Any,
    tx: optax.GradientTransformation,
    *,
    progress_fn: Callable[[jax.Array, dict[str, jax.Array]], None] | None = None,
    lr_schedule: optax.Schedule | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> Trainer:
    """The chunked trainer (``init`` / ``run``) used by the CLI for checkpoints and resume.

    ``mesh``: a 1-D device mesh with axis ``"envs"`` (``ppo_trainer.parallel.make_mesh``) to split
    the environments over its devices; place the state with ``parallel.state_shardings``.
    """
    return Trainer(config, env, env_params, tx, progress_fn=progress_fn, lr_schedule=lr_schedule,
                   mesh=mesh)


def make_train(
    config: Any,
    env: Any,
    env_params: Any,
    tx: optax.GradientTransformation,
    *,
    progress_fn: Callable[[jax.Array, dict[str, jax.Array]], None] | None = None,
    lr_schedule: optax.Schedule | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> Callable[[jax.Array], tuple[RunnerState, dict]]:
    """``train(key) -> (runner_state, metrics)`` for the whole run; pure, jittable, vmappable."""
    trainer = make_trainer(
        config, env, env_params, tx, progress_fn=progress_fn, lr_schedule=lr_schedule, mesh=mesh
    )
    if config.num_updates < 1:
        raise ValueError(
            f"total_timesteps={config.total_timesteps} is less than one update "
            f"(num_envs * num_steps = {config.batch_size})"
        )

    def train(key: jax.Array) -> tuple[RunnerState, dict]:
        return trainer.run(trainer.init(key), config.num_updates)

    return train
