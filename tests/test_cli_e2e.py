"""End-to-end ppo-train runs on a tiny CartPole: files, determinism, NaN stop, interrupt + resume.

Every run shares one configuration (annealing off, so the total budget is not a constant in
the compiled program) and a persistent XLA cache: the chunk program compiles once per session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest
from flax import serialization

from ppo_trainer.app import eval_cli as evaluate
from ppo_trainer.app import runner
from ppo_trainer.app import train_cli as cli
from ppo_trainer.app.runner import TrainingInterrupted
from ppo_trainer.app.sinks import TIMING_KEYS, read_metrics

BASE = ["--env", "CartPole-v1", "--optimizer", "adam", "--num-envs", "4", "--num-steps", "16",
        "--total-timesteps", "256", "--num-minibatches", "2", "--update-epochs", "1",
        "--hidden-size", "16", "--num-hidden-layers", "1", "--save-freq", "2",
        "--eval-episodes", "4", "--no-anneal-lr"]


def untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def ckpt_state(run: Path) -> dict:
    return serialization.msgpack_restore((run / "checkpoint.msgpack").read_bytes())


def assert_trees_equal(a, b) -> None:
    import numpy as np

    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def straight(runs_dir: Path) -> Path:
    assert cli.main([*BASE, "--run-dir", str(runs_dir), "--run-name", "straight"]) == 0
    return runs_dir / "straight"


def test_run_directory_contents(straight: Path) -> None:
    for name in ("config.json", "metrics.jsonl", "learning_curve.png", "checkpoint.msgpack",
                 "eval.json"):
        assert (straight / name).is_file(), name
    config = json.loads((straight / "config.json").read_text())
    assert config["env"] == "CartPole-v1" and config["num_updates"] == 4
    rows = read_metrics(straight / "metrics.jsonl")
    assert [r["update"] for r in rows] == [1, 2, 3, 4]
    for key in ("global_step", "charts/episodic_return", "charts/learning_rate", "charts/SPS",
                "losses/value_loss", "losses/policy_loss", "losses/entropy", "losses/approx_kl"):
        assert key in rows[0], key
    assert rows[-1]["global_step"] == 256
    summary = json.loads((straight / "eval.json").read_text())
    assert summary["episodes_per_seed"] == 4 and summary["mean_return"] > 0
    assert ckpt_state(straight)["update"] == 4


def test_same_seed_same_metrics(straight: Path, runs_dir: Path) -> None:
    assert cli.main([*BASE, "--run-dir", str(runs_dir), "--run-name", "again"]) == 0
    again = runs_dir / "again"
    assert untimed(read_metrics(again / "metrics.jsonl")) == untimed(read_metrics(straight / "metrics.jsonl"))
    assert_trees_equal(ckpt_state(again)["runner_state"], ckpt_state(straight)["runner_state"])


def test_interrupt_then_resume_matches_straight_run(straight: Path, runs_dir: Path, capsys) -> None:
    config = cli.parse_args([*BASE, "--run-dir", str(runs_dir), "--run-name", "resumed"]).config
    with pytest.raises(TrainingInterrupted, match="--resume"):
        runner.train(config, should_stop=lambda update: update >= 2)
    run = runs_dir / "resumed"
    assert ckpt_state(run)["update"] == 2
    assert len(read_metrics(run / "metrics.jsonl")) == 2
    assert cli.main(["--resume", str(run)]) == 0
    assert untimed(read_metrics(run / "metrics.jsonl")) == untimed(read_metrics(straight / "metrics.jsonl"))
    assert_trees_equal(ckpt_state(run)["runner_state"], ckpt_state(straight)["runner_state"])


def test_resume_of_finished_run_extends_budget(straight: Path, runs_dir: Path, tmp_path: Path) -> None:
    """Also: config.json names no machine path (a committed record carries none), so a run
    directory moved elsewhere resumes from where it is."""
    import shutil

    text = (straight / "config.json").read_text()
    assert str(runs_dir) not in text and '"run_dir"' not in text and '"resume"' not in text
    run = tmp_path / "extended"
    shutil.copytree(straight, run)
    assert cli.main(["--resume", str(run), "--total-timesteps", "384"]) == 0
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["update"] for r in rows] == [1, 2, 3, 4, 5, 6]
    text = (run / "config.json").read_text()
    assert json.loads(text)["total_timesteps"] == 384
    assert str(tmp_path) not in text and '"resume"' not in text


def test_stages_are_the_resumes_made_by_hand(straight: Path, runs_dir: Path, tmp_path: Path,
                                            capsys) -> None:
    """``--stages`` goes on after ``--total-timesteps`` as ``--resume`` with those flags would:
    the same metrics and state as the straight run resumed twice by hand; config.json ends with
    the last stage's values, says which stage set them, and keeps the stages."""
    import shutil

    assert cli.main([*BASE, "--stages", "384:gamma=0.9;512", "--run-dir", str(runs_dir),
                     "--run-name", "staged"]) == 0
    assert "stage 1 of 2: --total-timesteps 384, --gamma 0.9" in capsys.readouterr().err
    by_hand = tmp_path / "by_hand"
    shutil.copytree(straight, by_hand)
    assert cli.main(["--resume", str(by_hand), "--total-timesteps", "384", "--gamma", "0.9"]) == 0
    assert cli.main(["--resume", str(by_hand), "--total-timesteps", "512"]) == 0
    staged = runs_dir / "staged"
    rows = read_metrics(staged / "metrics.jsonl")
    assert [r["update"] for r in rows] == list(range(1, 9))
    assert untimed(rows) == untimed(read_metrics(by_hand / "metrics.jsonl"))
    assert_trees_equal(ckpt_state(staged)["runner_state"], ckpt_state(by_hand)["runner_state"])
    config = json.loads((staged / "config.json").read_text())
    assert (config["total_timesteps"], config["gamma"]) == (512, 0.9)
    assert config["sources"]["gamma"] == "stage 1" and config["sources"]["total_timesteps"] == \
        "stage 2"
    assert config["stages"] == [{"total_timesteps": 384, "gamma": 0.9}, {"total_timesteps": 512}]
    assert (staged / "eval.json").is_file()


@pytest.mark.parametrize("stop_at", [2, 4])
def test_an_interrupted_stage_resumes_into_the_stages_after_it(runs_dir: Path,
                                                               stop_at: int) -> None:
    """Stopped before the stages (4 updates), or as that budget ends, ``--resume RUN`` finishes
    it and then every stage."""
    argv = [*BASE, "--stages", "384:gamma=0.9;512", "--run-dir", str(runs_dir),
            "--run-name", f"staged_stop{stop_at}"]
    with pytest.raises(TrainingInterrupted, match=f"update {stop_at}/4"):
        runner.train(cli.parse_args(argv).config, should_stop=lambda update: update >= stop_at)
    run = runs_dir / f"staged_stop{stop_at}"
    assert json.loads((run / "config.json").read_text())["total_timesteps"] == 256
    assert cli.main(["--resume", str(run)]) == 0
    assert untimed(read_metrics(run / "metrics.jsonl")) == untimed(
        read_metrics(runs_dir / "staged" / "metrics.jsonl"))


@pytest.mark.parametrize(("stages", "says"), [
    ("128", "must exceed the one before"),
    ("384:seed=3", "--seed cannot change between stages"),
    ("384:gama=0.9", "--gama is not a setting"),
    ("384:gamma=2", "stage 1: --gamma must be in [0, 1]"),
    ("lots", "--total-timesteps 'lots' is not a valid int"),
    ("384:gamma=high", "--gamma 'high' is not a valid float"),
    ('[{"gamma": 0.9}]', "every stage needs a total_timesteps"),
])
def test_bad_stages_are_one_line(stages: str, says: str, capsys) -> None:
    assert cli.main([*BASE, "--stages", stages]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err


def test_nan_loss_stops_and_keeps_last_good_checkpoint(runs_dir: Path, monkeypatch, capsys) -> None:
    calls = []

    def finite_once(metrics):
        calls.append(1)
        return len(calls) == 1

    monkeypatch.setattr(runner, "loss_is_finite", finite_once)
    code = cli.main([*BASE, "--run-dir", str(runs_dir), "--run-name", "nan"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert "--lr" in err and "too high" in err
    run = runs_dir / "nan"
    assert ckpt_state(run)["update"] == 2
    assert [r["update"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2]


def test_keep_best_writes_the_best_periodic_policy_and_resume_keeps_it(runs_dir: Path,
                                                                      capsys) -> None:
    """``--keep-best``: best_policy.msgpack is the policy of the first evaluation with the
    highest mean return, ``ppo-eval`` of it replays that evaluation's games exactly, and a
    resumed run replaces it only with a better one."""
    import numpy as np

    from ppo_trainer.app.policy import read_meta

    run = runs_dir / "best"
    assert cli.main([*BASE, "--eval-freq", "1", "--keep-best", "--run-dir", str(runs_dir),
                     "--run-name", "best"]) == 0
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert [e["update"] for e in evals] == [1, 2, 3]  # none at the end: that is eval.json
    scores = [float(np.mean(e["episodes"]["return"])) for e in evals]
    best = int(np.argmax(scores))
    meta = read_meta(run / "best_policy.msgpack")
    assert meta["update"] == evals[best]["update"]
    assert meta["selection"]["score"] == pytest.approx(scores[best])
    out_json = run / "best_eval.json"
    assert evaluate.main([str(run / "best_policy.msgpack"), "--gif", "none", "--json",
                          str(out_json)]) == 0
    assert json.loads(out_json.read_text())["episodes"]["return"] == evals[best]["episodes"]["return"]

    # a resumed run that never beats the file's score (set out of reach here) leaves it alone
    from ppo_trainer.app.policy import load_policy, write_policy

    policy = load_policy(run / "best_policy.msgpack")
    write_policy(run / "best_policy.msgpack", policy.params, policy.norm.obs, policy.config,
                 policy.seeds, policy.update, {"selection": {"score": 1e9}})
    assert cli.main(["--resume", str(run), "--total-timesteps", "384"]) == 0
    rows = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert [e["update"] for e in rows] == [1, 2, 3, 5]
    assert read_meta(run / "best_policy.msgpack")["update"] == evals[best]["update"]


def test_keep_best_needs_periodic_evaluations(capsys) -> None:
    assert cli.main([*BASE, "--keep-best"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--keep-best needs --eval-freq" in err


def test_ppo_eval_on_finished_run(straight: Path, capsys) -> None:
    out_json = straight / "eval_cli.json"
    assert evaluate.main([str(straight), "--episodes", "3", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "greedy eval over 3 episodes" in out and "update 4" in out
    assert json.loads(out_json.read_text())["episodes_per_seed"] == 3


def test_ppo_eval_under_other_env_params(straight: Path, capsys) -> None:
    """``--env-params`` plays the same policy under other EnvParams (here a 5-step time limit:
    every episode is cut there); the run's own values otherwise; a field the env lacks is one
    line and exit 2."""
    out_json = straight / "eval_short.json"
    assert evaluate.main([str(straight), "--episodes", "3", "--env-params",
                          "max_steps_in_episode=5", "--json", str(out_json)]) == 0
    summary = json.loads(out_json.read_text())
    assert summary["env_params"] == {"max_steps_in_episode": 5}
    assert summary["mean_episode_length"] == 5 and summary["mean_return"] == 5
    capsys.readouterr()
    assert evaluate.main([str(straight), "--episodes", "3", "--env-params", "gravity_x=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no field 'gravity_x'" in err and "Traceback" not in err


def test_ppo_eval_errors(tmp_path: Path, capsys) -> None:
    assert evaluate.main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such run directory" in err and "Traceback" not in err


def test_sigint_checkpoints_and_resume_finishes(runs_dir: Path) -> None:
    """A real Ctrl-C on the CLI in a subprocess: exit 130, checkpoint, resume hint; then resume."""
    run = runs_dir / "sigint"
    env = dict(os.environ)  # conftest put the shared compilation cache in the environment
    argv = [sys.executable, "-m", "ppo_trainer.app.train_cli", *BASE, "--total-timesteps", "64000000",
            "--run-dir", str(runs_dir), "--run-name", "sigint"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not (run / "checkpoint.msgpack").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"--resume {run}" in err
    update = ckpt_state(run)["update"]
    assert update >= 2
    rows = read_metrics(run / "metrics.jsonl")
    assert rows[-1]["update"] == update
    # finish with a budget two updates beyond the checkpoint
    assert cli.main(["--resume", str(run), "--total-timesteps", str((update + 2) * 64)]) == 0
    assert [r["update"] for r in read_metrics(run / "metrics.jsonl")] == list(range(1, update + 3))


def test_resume_with_a_new_budget_and_epochs_continues_the_rate(runs_dir: Path) -> None:
    """The logged rate is the optimizer's (its own step count), continuous across a resume that
    changes the budget and the optimizer steps per update."""
    argv = [a for a in BASE if a != "--no-anneal-lr"] + ["--lr", "0.01", "--run-dir",
                                                         str(runs_dir), "--run-name", "lr"]
    config = cli.parse_args(argv).config
    with pytest.raises(TrainingInterrupted):
        runner.train(config, should_stop=lambda update: update >= 2)
    run = runs_dir / "lr"
    assert cli.main(["--resume", str(run), "--total-timesteps", "384", "--update-epochs", "2"]) == 0
    lrs = [r["charts/learning_rate"] for r in read_metrics(run / "metrics.jsonl")]
    # 2 optimizer steps per update for 2 updates (last step 7 of the first plan), then 4 per
    # update for 4 more: corners (0, 1), (4, 3/7), (19, 0).
    expected = [1.0, 5 / 7, 3 / 7, 3 / 7 * 11 / 15, 3 / 7 * 7 / 15, 3 / 7 * 3 / 15]
    assert lrs == pytest.approx([0.01 * f for f in expected], rel=1e-5)
    assert ckpt_state(run)["runner_state"]["opt_step"].tolist() == [20]  # (seeds,)


def test_chunk_line_and_bar_show_the_last_return_not_nan() -> None:
    """Episodes longer than an update (Freeway: 2,500 steps) leave the last update without a
    finished episode; the line shows the latest return instead of "nan" (which reads as a
    diverged run), and "n/a" before any episode has ended."""
    from ppo_trainer.app.progress import ProgressBar

    nan = float("nan")
    rows = [{"update": u, "seed": s, "global_step": 64 * u, "charts/episodic_return": r,
             "charts/apples": r}
            for u, returns in ((1, (1.0, 3.0)), (2, (5.0, 7.0)), (3, (nan, nan)))
            for s, r in enumerate(returns)]
    line = runner._chunk_line(rows, 3, 10, 100.0)
    assert "return 6.00" in line and "apples 6.00" in line
    assert "return n/a" in runner._chunk_line(rows[-2:], 3, 10, 100.0)

    bar = ProgressBar(10, 0, 64, num_seeds=2, extra_keys=("charts/apples",), enabled=False)
    assert "return n/a" in bar.stats()
    for update, returns in ((1, (5.0, 7.0)), (2, (nan, nan))):
        for r in returns:
            bar.callback(update, {"charts/episodic_return": r, "charts/apples": r})
    assert "return 6.00" in bar.stats() and "apples 6.00" in bar.stats()


def test_progress_bar_of_a_resumed_run_counts_only_its_own_updates(monkeypatch) -> None:
    """A run resumed at update 4 shows 4 done, and its steps/s counts the updates after it."""
    from ppo_trainer.app import progress

    clock = iter([0.0, 0.0, 10.0, 10.0, 10.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    bar = progress.ProgressBar(10, 0, 64, num_seeds=1, enabled=False)  # t0 = 0
    bar.start_at(4)
    assert bar.completed == 4
    bar.restart_clock()  # t0 = 0
    bar.set_completed(6)  # draws at t = 10
    assert bar.stats().startswith("13 steps/s")  # (6 - 4) x 64 / 10 s
