"""Learning-rate annealing counts optimizer steps and reaches 0 exactly at the last one."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from ppo_trainer.config import TrainConfig
from ppo_trainer.envs import make_env
from ppo_trainer.optim import extend_knots, knots_value, make_optimizer, make_schedule
from ppo_trainer.ppo import make_train

LR = 1e-3


def cfg_for(optimizer: str, **kw) -> TrainConfig:
    """5 updates of 2 epochs x 2 minibatches: 4 optimizer steps per update, 20 in all."""
    return tiny_config(**{"total_timesteps": 4 * 8 * 5, "optimizer": optimizer, "lr": LR,
                          "anneal_lr": True, **kw})


def expected_lr(cfg: TrainConfig, count: int, value: float = LR) -> float:
    return value * (1.0 - count / (cfg.num_optimizer_steps - 1))


def test_schedule_endpoints() -> None:
    cfg = cfg_for("adam")
    n = cfg.num_optimizer_steps
    assert n == 20
    sched = make_schedule(cfg, LR)
    assert float(sched(0)) == pytest.approx(LR)
    assert float(sched(n - 2)) > 0.0  # never 0 before the last step
    assert float(sched(n - 1)) == 0.0  # the last optimizer step (count n - 1) uses lr 0
    assert float(sched(n)) == 0.0
    const = make_schedule(cfg.replace(anneal_lr=False), LR)
    assert float(const(n - 1)) == pytest.approx(LR)


@pytest.mark.parametrize("optimizer", ["adam", "muon"])
def test_logged_learning_rate_follows_the_schedule(optimizer: str) -> None:
    cfg = cfg_for(optimizer)
    env, params = make_env(cfg)
    tx, sched = make_optimizer(cfg)
    _, metrics = jax.jit(make_train(cfg, env, params, tx, lr_schedule=sched))(jax.random.PRNGKey(0))
    lrs = np.asarray(metrics["charts/learning_rate"])
    per_update = cfg.update_epochs * cfg.num_minibatches
    for u in (0, cfg.num_updates // 2, cfg.num_updates - 1):  # first, middle, last update
        assert lrs[u] == pytest.approx(expected_lr(cfg, u * per_update), rel=1e-5)
    assert lrs[0] == pytest.approx(LR)
    assert np.isfinite(metrics["losses/loss"]).all()


def _updates_per_step(tx, params, n_steps: int) -> list:
    """Feed a fixed gradient for n_steps; return each step's update pytree."""
    grads = jax.tree.map(
        lambda p: jnp.full_like(p, 0.1) + 0.01 * jnp.arange(p.size).reshape(p.shape), params
    )

    def step(state, _):
        updates, state = tx.update(grads, state, params)
        return state, updates

    _, updates = jax.lax.scan(step, tx.init(params), None, length=n_steps)
    return [jax.tree.map(lambda u, i=i: u[i], updates) for i in range(n_steps)]


@pytest.mark.parametrize(
    "optimizer, kwargs",
    [
        ("adam", {}),
        ("muon", {}),
        ("muon", {"muon_lr": 0.05, "aux_adam_lr": 2e-3}),
    ],
)
def test_every_learning_rate_reaches_zero_at_the_last_optimizer_step(optimizer, kwargs) -> None:
    """Adam's lr and both Muon lrs (matrix and auxiliary Adam) are annealed over optimizer steps."""
    cfg = cfg_for(optimizer, optimizer_kwargs=kwargs, max_grad_norm=1e6)
    tx, _ = make_optimizer(cfg)
    params = {"dense": {"kernel": jnp.ones((4, 3)), "bias": jnp.ones((3,))}}
    n = cfg.num_optimizer_steps
    updates = _updates_per_step(tx, params, n)
    for leaf in jax.tree.leaves(updates[n - 2]):
        assert np.abs(np.asarray(leaf)).max() > 0.0  # the step before the last still learns
    for leaf in jax.tree.leaves(updates[n - 1]):
        np.testing.assert_array_equal(np.abs(np.asarray(leaf)), 0.0)  # the last uses lr 0
    # Linear in the count: the update at step k is (1 - k/(n-1)) x the first, for Adam leaves
    # once the moments are steady (constant gradient -> Adam's direction is constant).
    bias = [float(np.asarray(u["dense"]["bias"])[0]) for u in updates]
    k = n // 2
    assert bias[k] / bias[1] == pytest.approx((1 - k / (n - 1)) / (1 - 1 / (n - 1)), rel=1e-3)


def test_anneal_off_keeps_lr_constant() -> None:
    cfg = cfg_for("adam", anneal_lr=False, max_grad_norm=1e6)
    tx, sched = make_optimizer(cfg)
    params = {"w": jnp.ones((3,))}
    updates = _updates_per_step(tx, params, cfg.num_optimizer_steps)
    assert np.abs(np.asarray(updates[-1]["w"])).max() > 0.0
    assert float(sched(cfg.num_optimizer_steps - 1)) == pytest.approx(LR)


def test_resumed_schedule_continues_without_a_jump() -> None:
    """--resume with a larger budget: the rate goes on from where it was to 0 at the new last
    step (rebuilding the schedule from the new config would jump it back up)."""
    cfg = cfg_for("adam")  # 20 optimizer steps: corners (0, 1), (19, 0)
    knots = ((0, 1.0), (19, 0.0))
    extended = extend_knots(knots, 8, 39)
    before, after = make_schedule(cfg, LR, knots), make_schedule(cfg, LR, extended)
    for count in range(9):  # the past is unchanged
        assert float(after(count)) == pytest.approx(float(before(count)), rel=1e-6)
    rates = [float(after(c)) for c in range(8, 41)]
    assert rates[0] == pytest.approx(LR * (1 - 8 / 19), rel=1e-6)  # continuous at the resume
    assert all(a > b for a, b in zip(rates[:31], rates[1:32], strict=True))  # decreasing
    assert rates[31] == 0.0 and float(after(39)) == 0.0 and float(after(38)) > 0.0
    rebuilt = make_schedule(cfg.replace(total_timesteps=4 * 8 * 10), LR)
    assert float(rebuilt(8)) > float(after(8)) * 1.2  # what the old code did: a jump up


def test_extending_a_finished_run_restarts_from_the_longer_schedule() -> None:
    knots = ((0, 1.0), (19, 0.0))
    extended = extend_knots(knots, 20, 39)  # finished: the rate is 0 at count 20
    assert knots_value(extended, 20) == pytest.approx(1 - 20 / 39)
    assert knots_value(extended, 39) == 0.0 and knots_value(extended, 10) == knots_value(knots, 10)
    assert extend_knots(knots, 8, 19) == ((0, 1.0), (8, 1 - 8 / 19), (19, 0.0))  # same budget
