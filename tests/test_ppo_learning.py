"""CartPole-v1 with PureJaxRL's settings (its preset): a bounded learning check (CI) and a full
run (slow)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import train_seeds

from ppo_trainer.presets import preset_config


@pytest.mark.parametrize("optimizer", ["adam", "muon"])
def test_cartpole_learns_within_a_small_budget(optimizer: str) -> None:
    """150k steps x 2 vmapped seeds (~25 s here): random play scores ~22; learning breaks -> fail."""
    cfg = preset_config("CartPole-v1", optimizer=optimizer, total_timesteps=150_000)
    _, _, metrics, _ = train_seeds(cfg, num_seeds=2)
    returns = np.asarray(metrics["charts/episodic_return"])
    assert returns.shape == (2, cfg.num_updates)
    late = np.nanmean(returns[:, -20:], axis=1)
    assert (late >= 150).all(), late


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "muon"])
def test_cartpole_solved_500k_steps_8_seeds(optimizer: str) -> None:
    """PureJaxRL's CartPole, 8 seeds: greedy mean >= 475.

    Muon runs with its output heads on Adam (``--no-muon-heads``, the reference Muon's advice):
    with heads on Muon one of these 8 seeds collapsed late (greedy 264; mean 462.7), with heads
    on Adam all 8 reach 500 (measured; see docs/results.md).
    """
    kwargs = {"muon_heads": False} if optimizer == "muon" else {}
    cfg = preset_config("CartPole-v1", optimizer=optimizer, total_timesteps=500_000,
                        optimizer_kwargs=kwargs)
    _, _, _, summary = train_seeds(cfg, num_seeds=8, eval_episodes=16, eval_key=123)
    assert summary["finished_episodes"] == 8 * 16
    assert summary["mean_return"] >= 475, summary["per_seed_mean_return"]
