"""ppo-compare: statistics on known numbers, parsing/errors, and one tiny end-to-end run."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from ppo_trainer.app import stats
from ppo_trainer.app.compare import analysis, report
from ppo_trainer.app.compare import cli as compare

# --------------------------------------------------------------------------------- statistics


def test_bootstrap_interval_stays_inside_the_data() -> None:
    """With 2 seeds a Student-t band spans mean +- 12.7 s; the bootstrap one never leaves the
    range of the data (the defect that drew a CartPole band down to -2000)."""
    mean, lo, hi = stats.bootstrap_ci([100.0, 500.0])
    assert mean == 300.0 and 100.0 <= lo < mean < hi <= 500.0
    m1, lo1, hi1 = stats.bootstrap_ci([5.0, float("nan")])  # NaN ignored; one value: no width
    assert m1 == lo1 == hi1 == 5.0
    assert all(math.isnan(v) for v in stats.bootstrap_ci([]))
    # 30 normal draws: close to the textbook interval mean +- 1.96 s / sqrt(n)
    x = np.random.default_rng(1).normal(10.0, 2.0, 30)
    m, lo, hi = stats.bootstrap_ci(x, reps=20000)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15) and lo < m < hi


def test_bootstrap_difference_and_verdicts() -> None:
    d, lo, hi = stats.bootstrap_diff_ci([1.0, 2.0, 3.0], [4.0, 6.0, 8.0, 10.0])
    assert d == pytest.approx(5.0) and 0 < lo < d < hi
    assert stats.verdict(lo, hi) == "win"
    assert stats.verdict(-3.0, -1.0) == "loss"
    assert stats.verdict(-1.0, 1.0) == "tie"
    assert stats.verdict(0.5, float("nan")) == "n/a"
    assert math.isnan(stats.bootstrap_diff_ci([1.0], [2.0, 3.0])[1])


def test_iqm_and_stratified_bootstrap_match_rliable() -> None:
    """Numbers from rliable 1.2.0 (``get_interval_estimates(..., aggregate_iqm, reps=50000)``
    on this (6 runs x 3 tasks) matrix, in a throwaway venv with pandas < 3): IQM 0.58626,
    95% interval [0.3309, 0.7580]."""
    a = np.array([[0.637, 0.2698, 0.041], [0.0165, 0.8133, 0.9128], [0.6066, 0.7295, 0.5436],
                  [0.9351, 0.8159, 0.0027], [0.8574, 0.0336, 0.7297], [0.1757, 0.8632, 0.5415]])
    point, lo, hi = stats.stratified_bootstrap_ci([a[:, j] for j in range(3)], reps=20000)
    assert point == pytest.approx(0.58626, abs=1e-5)
    assert lo == pytest.approx(0.3309, abs=0.01) and hi == pytest.approx(0.7580, abs=0.01)
    assert stats.iqm([1, 2, 3, 4, 100, -100, 5, 6]) == pytest.approx(3.5)


def test_curve_helpers() -> None:
    filled = stats.forward_fill(np.array([[np.nan, 1.0, np.nan, 3.0], [2.0, np.nan, np.nan, 4.0]]))
    np.testing.assert_array_equal(filled[1], [2.0, 2.0, 2.0, 4.0])
    assert math.isnan(filled[0, 0]) and filled[0, 2] == 1.0
    curves = np.array([[1.0, 2.0, 0.0], [3.0, np.nan, 500.0]])
    mean, lo, hi = stats.curve_band(curves)
    np.testing.assert_allclose(mean, [2.0, 2.0, 250.0])
    assert 1.0 <= lo[0] < hi[0] <= 3.0 and 0.0 <= lo[2] and hi[2] <= 500.0
    assert lo[1] == hi[1] == 2.0  # one finite seed: no band
    # linear ramp 0..10 over x 0..100: average value 5
    x = np.linspace(0, 100, 11)
    assert stats.normalized_auc(x, x / 10) == pytest.approx(5.0)
    assert stats.first_crossing(x, x / 10, 4.5) == 50.0
    assert math.isnan(stats.first_crossing(x, x / 10, 11.0))


def test_summarize_threshold_and_verdicts() -> None:
    steps = [1.0, 2.0, 3.0, 4.0]
    runs = {
        "a": {"global_step": steps, "curves": {"charts/episodic_return": [[0, 1, 2, 2], [0, 1, 2, 2]]}},
        "b": {"global_step": steps,
              "curves": {"charts/episodic_return": [[0, 5, 9, 10], [0, 5, 11, 10.5]]}},
    }
    s = analysis.summarize(runs, final_window=0.25)["charts/episodic_return"]
    assert s["threshold"] == pytest.approx(0 + 0.9 * 10.25)  # initial 0, best final mean 10.25
    assert s["rows"]["b"]["final_verdict"] == "win"
    assert s["rows"]["b"]["steps_to_threshold"] == 3.0
    assert s["rows"]["a"]["seeds_reaching"] == 0
    assert analysis.summarize(runs, threshold=1.0)["charts/episodic_return"]["threshold"] == 1.0


# --------------------------------------------------------------------------------- parsing


def test_specs_and_flags_resolve_per_optimizer() -> None:
    req = compare.parse_args([
        "--env", "CartPole-v1", "--optimizers", "adam:lr=1e-3", "muon", "muon:muon_lr=0.05",
        "--muon-momentum", "0.9", "--num-envs=8", "--out", "x"])
    adam, muon, muon2 = (req.configs[k] for k in ("adam:lr=1e-3", "muon", "muon:muon_lr=0.05"))
    assert adam.lr == 1e-3 and muon.lr == 2.5e-4  # the spec's value; the CartPole preset's
    assert adam.num_envs == 8 == muon.num_envs and adam.hidden_size == 64  # flag; preset
    assert "muon_momentum" not in adam.optimizer_kwargs
    assert muon.optimizer_kwargs["muon_momentum"] == 0.9
    assert muon.optimizer_kwargs["muon_lr"] == 0.02  # the plugin's declared default
    assert muon2.optimizer_kwargs["muon_lr"] == 0.05
    assert adam.num_seeds == compare.COMPARE_DEFAULTS["num_seeds"]
    qualified = compare.parse_args(["--env", "CartPole-v1", "--optimizers",
                                    "snake-ppo-jax:adam:lr=1e-3", "--out", "x"])
    assert qualified.configs["snake-ppo-jax:adam:lr=1e-3"].lr == 1e-3


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--optimizers", "adam", "nosuchopt"], "nosuchopt"),
    (["--optimizers", "adam", "--wandb"], "--wandb is a ppo-train run flag"),
    (["--optimizers", "adam", "--muon-lr", "0.1"], "--muon-lr is a hyperparameter of muon"),
    (["--optimizers", "adam", "--no-such-flag"], "unrecognized arguments"),
    (["--optimizers", "adam:muon_lr=0.1"], "optimizer spec"),
    (["--optimizers", "adam", "adam"], "twice"),
    (["--optimizers", "adam", "--num-minibatches", "3"], "must divide"),
    (["--optimizers", "adam", "--stages", "2000000"], "--stages is a ppo-train run flag"),
    (["--optimizers", "adam", "--preset", "snake-20x20-tail"], "goes on in stages"),
])
def test_bad_input_is_one_line_exit_2(argv: list[str], fragment: str, capsys) -> None:
    try:
        code = compare.main([*argv, "--out", "unused"])
    except SystemExit as exc:  # argparse's own errors exit like ppo-train's
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ppo-compare: error: ") and fragment in err


def test_unknown_optimizer_console_script(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ppo_trainer.app.compare.cli", "--optimizers", "adam", "bogus",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "bogus" in proc.stderr


# --------------------------------------------------------------------------------- end to end


def test_cartpole_two_optimizers_two_seeds(tmp_path) -> None:
    out = tmp_path / "cmp"
    argv = ["--env", "CartPole-v1", "--optimizers", "adam", "muon", "--num-seeds", "2",
            "--num-envs", "4", "--num-steps", "16", "--total-timesteps", "512",
            "--num-minibatches", "2", "--update-epochs", "1", "--hidden-size", "8",
            "--out", str(out)]
    assert compare.main(argv) == 0
    for name in (report.STEPS_PLOT, report.TIME_PLOT, report.TABLE_NAME, report.JSON_NAME):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    data = json.loads((out / report.JSON_NAME).read_text())
    assert set(data["runs"]) == {"adam", "muon"}
    run = data["runs"]["muon"]
    assert np.asarray(run["curves"]["charts/episodic_return"]).shape == (2, 8)
    assert len(run["global_step"]) == len(run["wall_clock_s"]) == 8
    assert np.all(np.diff(run["wall_clock_s"]) >= 0) and run["compile_s"] > 0
    table = (out / report.TABLE_NAME).read_text()
    assert "| `muon` |" in table and "final vs adam" in table
    # --replot redraws from curves.json without training
    (out / report.TABLE_NAME).unlink()
    assert compare.main([*argv, "--replot", "--threshold", "20"]) == 0
    assert "env steps to 20" in (out / report.TABLE_NAME).read_text()
