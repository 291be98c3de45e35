"""The suite's performance profile (fraction of runs above each normalized score, rliable's
run-score distribution) and its stratified-bootstrap band, on numbers small enough to check."""

from __future__ import annotations

import numpy as np
import pytest

from ppo_trainer.app.suite.report import (
    normalized_scores,
    performance_profile,
    plot_performance_profile,
    profile_taus,
)


def test_profile_is_the_fraction_of_runs_above_each_threshold_with_envs_weighted_equally() -> None:
    # env A: 4 runs, two of them above 0.5; env B: 2 runs, both above 0.5 -> (0.5 + 1) / 2
    scores = [np.array([0.0, 0.2, 0.8, 1.0]), np.array([0.9, 0.7])]
    frac, lo, hi = performance_profile(scores, np.array([-1.0, 0.5, 0.75, 1.0]), reps=300)
    np.testing.assert_allclose(frac, [1.0, 0.75, 0.5, 0.0])  # 0.75: (2/4 + 1/2) / 2
    assert np.all(lo <= frac + 1e-12) and np.all(frac <= hi + 1e-12)
    assert lo[0] == hi[0] == 1.0  # every resample is above -1
    assert hi[1] > lo[1]  # env A's runs straddle 0.5: resampling moves the fraction


def test_a_seed_without_a_finished_episode_counts_as_below_every_threshold() -> None:
    frac, _, _ = performance_profile([np.array([np.nan, 1.0])], np.array([-5.0]), reps=10)
    assert frac[0] == 0.5


def test_profile_is_non_increasing_and_its_band_narrows_with_more_runs() -> None:
    rng = np.random.default_rng(0)
    taus = np.linspace(0, 1, 11)
    few = [rng.uniform(size=4) for _ in range(3)]
    many = [rng.uniform(size=64) for _ in range(3)]
    frac, lo_few, hi_few = performance_profile(few, taus, reps=500)
    assert np.all(np.diff(frac) <= 0)
    _, lo_many, hi_many = performance_profile(many, taus, reps=500)
    assert np.mean(hi_many - lo_many) < np.mean(hi_few - lo_few)


def test_normalized_scores_keep_only_envs_every_optimizer_ran() -> None:
    run = {"eval": {"per_seed_mean_return": [10.0, 20.0]}}
    raw = {"a": {"runs": {"adam": run, "muon": run}, "random": {"mean": 0.0}},
           "b": {"runs": {"adam": run}, "random": {"mean": 0.0}}}
    refs = {"a": {"reference": 20.0}, "b": {"reference": 20.0}}
    envs, scores = normalized_scores(raw, refs, ["adam", "muon"])
    assert envs == ["a"]
    np.testing.assert_allclose(scores["muon"][0], [0.5, 1.0])


def test_thresholds_span_zero_to_one_and_every_score(tmp_path) -> None:
    scores = {"adam": [np.array([-0.3, 0.4])], "muon": [np.array([1.2, np.nan])]}
    taus = profile_taus(scores)
    assert taus[0] == pytest.approx(-0.3) and taus[-1] == pytest.approx(1.2)
    assert profile_taus({"adam": [np.array([0.5])]})[[0, -1]].tolist() == [0.0, 1.0]
    path = tmp_path / "plots" / "profile.png"
    plot_performance_profile(scores, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_optimality_gap_counts_only_the_shortfall_below_the_reference() -> None:
    from ppo_trainer.app import stats

    assert stats.optimality_gap(np.array([0.5, 1.5, 1.0, 0.0])) == pytest.approx((0.5 + 1.0) / 4)
    assert stats.optimality_gap(np.array([2.0, 3.0])) == 0.0  # above the reference: no gap
    point, lo, hi = stats.stratified_bootstrap_ci([np.array([0.2, 0.4]), np.array([1.0, 0.9])],
                                                  stats.optimality_gap, 0.95, reps=200)
    assert point == pytest.approx((0.8 + 0.6 + 0.0 + 0.1) / 4) and lo <= point <= hi
