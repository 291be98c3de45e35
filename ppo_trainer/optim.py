"""Build the optax optimizer for a run from the optimizer registry (see docs/CONTRACTS.md).

Public API:

- ``make_schedule(config, value) -> optax.Schedule``: the learning-rate schedule for a base value.
  With ``config.anneal_lr`` it is linear (same shape as ``optax.linear_schedule``) from ``value`` to 0 over the run's optimizer steps
  (updates x epochs x minibatches). Optax evaluates a schedule at the count of steps already
  taken, so optimizer step ``k`` (1-based) uses ``schedule(k - 1)``; the schedule therefore
  reaches 0 at count ``num_optimizer_steps - 1``: the last optimizer step uses lr 0 and every
  earlier one a positive lr ("reaches 0 at the last step, never before").
  Without annealing it is constant.
- ``make_optimizer(config) -> (tx, lr_schedule)``: ``plugins.get_registry().build(config.optimizer,
  learning_rate=..., max_grad_norm=config.max_grad_norm, **config.optimizer_kwargs)``; when
  annealing, ``learning_rate`` and every hyperparameter the plugin declares ``schedulable`` (e.g.
  Muon's ``muon_lr``) become ``make_schedule`` schedules. ``lr_schedule`` is the schedule of
  ``config.lr``, the one the trainer logs as ``charts/learning_rate``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax


def _horizon(config: Any) -> int:
    # Count of the last optimizer step (0-based): the schedule is 0 there.
    return max(config.num_optimizer_steps - 1, 1)


def make_schedule(config: Any, value: float) -> optax.Schedule:
    """Linear decay of ``value`` to 0 at the last optimizer step when annealing, else constant."""
    value = float(value)
    if not config.anneal_lr:
        return optax.constant_schedule(value)
    horizon = _horizon(config)

    def schedule(count: Any) -> jax.Array:
        # Integer count of remaining steps, so the last step's lr is exactly 0 even under jit
        # (optax.linear_schedule's float fraction leaves ~1e-8 * value there).
        remaining = jnp.clip(horizon - jnp.asarray(count, jnp.int32), 0, horizon)
        return value * remaining.astype(jnp.float32) / horizon

    return schedule


def make_optimizer(config: Any) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Return ``(tx, lr_schedule)`` for ``config.optimizer`` from the plugin registry."""
    from plugins import get_registry

    registry = get_registry()
    info = registry.get(config.optimizer)
    kwargs = dict(config.optimizer_kwargs)
    learning_rate: Any = config.lr
    if config.anneal_lr:
        learning_rate = make_schedule(config, config.lr)
        for hp in info.hyperparams:
            if not getattr(hp, "schedulable", False):
                continue
            value = kwargs.get(hp.name, hp.default)
            if value is not None and not callable(value):
                kwargs[hp.name] = make_schedule(config, float(value))
    tx = registry.build(
        config.optimizer,
        learning_rate=learning_rate,
        max_grad_norm=config.max_grad_norm,
        **kwargs,
    )
    return tx, make_schedule(config, config.lr)
