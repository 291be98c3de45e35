"""Build the optax optimizer of a run from the optimizer registry (see docs/optimizers.md).

Public API:

- ``schedule_knots(config) -> Knots``: the learning-rate fraction as ``((count, fraction), ...)``
  corner points over optimizer-step counts. A fresh annealed run is ``((0, 1), (H, 0))`` with
  ``H = updates x epochs x minibatches - 1``: optax evaluates a schedule at the count of steps
  already taken, so the last optimizer step uses exactly 0 and every earlier one a positive rate
  ("reaches 0 at the last step, never before"). Resuming with another budget adds a corner at the
  resume point instead of rebuilding the schedule (``extend_knots``): the rate never jumps.
- ``make_schedule(config, value, knots=None) -> optax.Schedule``: ``value`` times the piecewise
  linear fraction (constant ``value`` without ``config.anneal_lr``).
- ``make_optimizer(config, knots=None, *, validated=False) -> (tx, lr_schedule)``: the registry
  turns ``--lr`` and every hyperparameter the plugin declares ``schedulable`` (e.g. Muon's
  ``muon_lr``) into schedules with the same corners, and applies the global-norm clip once.
  The optimizer settings are checked exactly once: by ``registry().build`` here, or, for a
  config that ``ppo_trainer.app.build.check`` already checked (``validated=True``), not again
  (``registry().build_validated``). ``lr_schedule`` is the schedule of ``config.lr``, the one
  the trainer logs as ``charts/learning_rate``, at the optimizer's own step count.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from ppo_trainer.registry import registry

Knots = tuple[tuple[int, float], ...]

def schedule_knots(config: Any) -> Knots:
    """Corners of a fresh run's learning-rate fraction (see the module docstring)."""
    return ((0, 1.0), (max(config.num_optimizer_steps - 1, 1), 0.0))


def knots_value(knots: Knots, count: int) -> float:
    """The fraction at ``count`` (host-side twin of the jitted schedule)."""
    if count >= knots[-1][0]:
        return float(knots[-1][1])
    for (x0, y0), (x1, y1) in zip(knots[:-1], knots[1:], strict=True):
        if count < x1:
            return y1 + (y0 - y1) * (x1 - count) / (x1 - x0)
    raise AssertionError("unreachable")


def extend_knots(knots: Knots, count: int, new_last: int) -> Knots:
    """Corners for a run resumed at optimizer step ``count`` whose last step is now ``new_last``.

    The rate continues from its value at ``count`` and reaches 0 at ``new_last``: no jump. If the
    schedule had already reached 0 (extending a finished run), the extension starts from the
    fraction a schedule planned for the longer run would have at ``count`` (``1 - count /
    new_last``), since a rate of exactly 0 would train nothing.
    """
    kept = tuple(k for k in knots if k[0] < count)
    start = knots_value(knots, count)
    if new_last <= count:
        return kept + ((count, start),)
    if start == 0.0:
        start = 1.0 - count / new_last
    return kept + ((count, start), (new_last, 0.0))


def make_schedule(config: Any, value: float, knots: Knots | None = None) -> optax.Schedule:
    """``value`` times the piecewise linear fraction through ``knots`` (exact at each corner)."""
    value = float(value)
    if not config.anneal_lr:
        return optax.constant_schedule(value)
    knots = tuple(knots or schedule_knots(config))
    segments = list(zip(knots[:-1], knots[1:], strict=True))

    def schedule(count: Any) -> jax.Array:
        # Integer distances to each corner, so a corner at fraction 0 gives exactly 0 under jit
        # (optax.linear_schedule's float fraction leaves ~1e-8 * value there).
        count = jnp.asarray(count, jnp.int32)
        out = jnp.asarray(value * knots[-1][1], jnp.float32)
        for (x0, y0), (x1, y1) in reversed(segments):
            span = x1 - x0
            remaining = jnp.clip(x1 - count, 0, span).astype(jnp.float32)
            segment = value * (y1 + (y0 - y1) * remaining / span)
            out = jnp.where(count < x1, segment, out)
        return out

    return schedule


def make_optimizer(config: Any, knots: Knots | None = None, *, validated: bool = False
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Return ``(tx, lr_schedule)`` for ``config.optimizer`` from the plugin registry.

    ``validated=False``: the registry checks every value first (``build``). ``validated=True``:
    ``config.optimizer_kwargs`` is what ``registry().validate`` returned and ``TrainConfig.validate``
    passed (``ppo_trainer.app.build.check`` does both), so nothing is checked again
    (``build_validated``). Either way the registry then applies ``schedule`` to ``--lr`` and to
    the plugin's ``schedulable`` floats, and adds the global-norm clip.
    """
    schedule = (lambda value: make_schedule(config, value, knots)) if config.anneal_lr else None
    common = {"learning_rate": config.lr, "max_grad_norm": config.max_grad_norm,
              "schedule": schedule}
    if validated:
        tx = registry().build_validated(config.optimizer, config.optimizer_kwargs, **common)
    else:
        tx = registry().build(config.optimizer, **common, **config.optimizer_kwargs)
    return tx, make_schedule(config, config.lr, knots)
