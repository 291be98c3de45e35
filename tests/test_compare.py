"""ppo-compare: statistics on known numbers, parsing/errors, and one tiny end-to-end run."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from ppo_trainer import compare, stats

# --------------------------------------------------------------------------------- statistics


def test_t_interval_known_numbers() -> None:
    # mean 2.5, s = sqrt(5/3), t_{0.975,3} = 3.182446305
    mean, half = stats.t_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert half == pytest.approx(3.182446305 * math.sqrt(5 / 3) / 2, rel=1e-7)
    # n = 2: t_{0.975,1} = 12.7062047; s = sqrt(2)
    assert stats.t_interval([0.0, 2.0])[1] == pytest.approx(12.7062047 * math.sqrt(2) / math.sqrt(2))
    m1, h1 = stats.t_interval([5.0, float("nan")])  # NaN ignored; one value: no width
    assert m1 == 5.0 and math.isnan(h1)
    assert stats.t_critical(10, 0.90) == pytest.approx(1.812461123, rel=1e-7)


def test_welch_interval_known_numbers() -> None:
    a, b = [1.0, 2.0, 3.0], [4.0, 6.0, 8.0, 10.0]
    diff, half = stats.welch_interval(a, b)
    va, vb = 1.0 / 3, (20.0 / 3) / 4  # var/n
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    assert diff == pytest.approx(7.0 - 2.0)
    assert half == pytest.approx(stats.t_critical(df) * math.sqrt(va + vb))
    assert stats.welch_interval([1.0, 1.0], [1.0, 1.0]) == (0.0, 0.0)
    assert stats.verdict(5.0, 1.0) == "win"
    assert stats.verdict(-5.0, 1.0) == "loss"
    assert stats.verdict(0.5, 1.0) == "tie"
    assert stats.verdict(0.5, float("nan")) == "n/a"


def test_curve_helpers() -> None:
    filled = stats.forward_fill(np.array([[np.nan, 1.0, np.nan, 3.0], [2.0, np.nan, np.nan, 4.0]]))
    np.testing.assert_array_equal(filled[1], [2.0, 2.0, 2.0, 4.0])
    assert math.isnan(filled[0, 0]) and filled[0, 2] == 1.0
    mean, lo, hi = stats.curve_band(np.array([[1.0, 2.0], [3.0, np.nan]]))
    np.testing.assert_allclose(mean, [2.0, 2.0])
    assert hi[0] - mean[0] == pytest.approx(stats.t_interval([1.0, 3.0])[1])
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
    s = compare.summarize(runs, final_window=0.25)["charts/episodic_return"]
    assert s["threshold"] == pytest.approx(0 + 0.9 * 10.25)  # initial 0, best final mean 10.25
    assert s["rows"]["b"]["final_verdict"] == "win"
    assert s["rows"]["b"]["steps_to_threshold"] == 3.0
    assert s["rows"]["a"]["seeds_reaching"] == 0
    assert compare.summarize(runs, threshold=1.0)["charts/episodic_return"]["threshold"] == 1.0


# --------------------------------------------------------------------------------- parsing


def test_specs_and_flags_resolve_per_optimizer() -> None:
    req = compare.parse_args([
        "--env", "CartPole-v1", "--optimizers", "adam:lr=2.5e-4", "muon", "muon:muon_lr=0.05",
        "--muon-momentum", "0.9", "--num-envs=8", "--out", "x"])
    adam, muon, muon2 = (req.configs[k] for k in ("adam:lr=2.5e-4", "muon", "muon:muon_lr=0.05"))
    assert adam.lr == 2.5e-4 and muon.lr == 5e-4 and adam.num_envs == 8 == muon.num_envs
    assert "muon_momentum" not in adam.optimizer_kwargs
    assert muon.optimizer_kwargs["muon_momentum"] == 0.9
    assert muon.optimizer_kwargs["muon_lr"] == 0.02  # the plugin's declared default
    assert muon2.optimizer_kwargs["muon_lr"] == 0.05
    assert adam.num_seeds == compare.COMPARE_DEFAULTS["num_seeds"]


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--optimizers", "adam", "nosuchopt"], "nosuchopt"),
    (["--optimizers", "adam", "--wandb"], "--wandb is a ppo-train run flag"),
    (["--optimizers", "adam", "--muon-lr", "0.1"], "--muon-lr is a hyperparameter of muon"),
    (["--optimizers", "adam", "--no-such-flag"], "unrecognized arguments"),
    (["--optimizers", "adam:muon_lr=0.1"], "optimizer spec"),
    (["--optimizers", "adam", "adam"], "twice"),
    (["--optimizers", "adam", "--num-minibatches", "3"], "must divide"),
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
        [sys.executable, "-m", "ppo_trainer.compare", "--optimizers", "adam", "bogus",
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
    for name in (compare.STEPS_PLOT, compare.TIME_PLOT, compare.TABLE_NAME, compare.JSON_NAME):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    data = json.loads((out / compare.JSON_NAME).read_text())
    assert set(data["runs"]) == {"adam", "muon"}
    run = data["runs"]["muon"]
    assert np.asarray(run["curves"]["charts/episodic_return"]).shape == (2, 8)
    assert len(run["global_step"]) == len(run["wall_clock_s"]) == 8
    assert np.all(np.diff(run["wall_clock_s"]) >= 0) and run["compile_s"] > 0
    table = (out / compare.TABLE_NAME).read_text()
    assert "| `muon` |" in table and "final vs adam" in table
    # --replot redraws from curves.json without training
    (out / compare.TABLE_NAME).unlink()
    assert compare.main([*argv, "--replot", "--threshold", "20"]) == 0
    assert "env steps to 20" in (out / compare.TABLE_NAME).read_text()
