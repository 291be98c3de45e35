"""ppo-suite: env selection, the report's statistics on known data, and one tiny real env."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ppo_trainer.app.suite import cli, report
from ppo_trainer.app.suite.run import random_return, run_env
from ppo_trainer.app.suite.tune import GRID, step_size_name
from ppo_trainer.errors import ConfigError
from ppo_trainer.presets import preset_config


def test_the_suite_lists_the_benchmark_envs_with_presets() -> None:
    from ppo_trainer.presets import all_presets

    suite = cli.load_suite()
    assert list(suite)[:5] == ["CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0",
                               "MountainCarContinuous-v0"]
    assert {"Catch-bsuite", "DeepSea-bsuite", "MemoryChain-bsuite", "UmbrellaChain-bsuite",
            "DiscountingChain-bsuite", "FourRooms-misc", "Asterix-MinAtar", "Breakout-MinAtar",
            "Freeway-MinAtar", "SpaceInvaders-MinAtar", "Snake-v0"} <= set(suite)
    assert set(suite) <= set(all_presets())  # every env has a preset
    assert cli.select(suite, [], ["bsuite"])[0] == "Catch-bsuite"
    with pytest.raises(ConfigError, match="not in the suite"):
        cli.select(suite, ["Nope-v0"], [])
    with pytest.raises(ConfigError, match="--group"):
        cli.select(suite, [], ["atari"])


def fake_run(scores: list[float], lr: float = 1e-3) -> dict:
    return {"eval": {"per_seed_mean_return": scores}, "curves": {
        "charts/episodic_return": [[0.0, s] for s in scores]}, "global_step": [10.0, 20.0],
        "config": {"lr": lr, "optimizer_kwargs": {"muon_lr": 0.02}, "total_timesteps": 20},
        "steps_per_s": 100.0, "wall_s": 1.0}


def test_report_normalizes_and_aggregates_known_numbers() -> None:
    refs = {"A": {"reference": 10.0, "blines": 10.0}, "B": {"reference": 1.0}}
    raw = {"A": {"env": "A", "random": {"mean": 0.0}, "runs": {
               "adam": fake_run([5.0, 5.0]), "muon": fake_run([10.0, 10.0])}},
           "B": {"env": "B", "random": {"mean": -1.0}, "runs": {
               "adam": fake_run([0.0, 0.0]), "muon": fake_run([1.0, 1.0])}}}
    agg = report.aggregate(raw, refs, ["adam", "muon"])
    assert agg["envs"] == ["A", "B"]
    assert agg["per_optimizer"]["adam"]["mean"][0] == pytest.approx(0.5)  # (0.5 + 0.5) / 2
    assert agg["per_optimizer"]["muon"]["iqm"][0] == pytest.approx(1.0)
    assert agg["probability_of_improvement"]["estimate"][0] == 1.0  # muon beats adam everywhere
    text, _ = report.format_report(raw, refs, ["adam", "muon"])
    assert "| A | muon | 10.0 | 10.0, 10.0 | 10.0 | 20 |" in text
    assert report.steps_to(raw["A"]["runs"]["adam"], 10.0) != report.steps_to(
        raw["A"]["runs"]["muon"], 10.0)


def test_fair_tuning_grid_is_the_same_for_every_optimizer() -> None:
    assert step_size_name("adam") == "lr" and step_size_name("muon") == "muon_lr"
    assert GRID[1] == 1.0 and GRID[0] * GRID[2] == pytest.approx(1.0)


def test_one_tiny_env_end_to_end() -> None:
    data = run_env("Catch-bsuite", ["adam"], num_seeds=2, eval_episodes=2,
                   overrides={"total_timesteps": 16 * 32 * 2})
    run = data["runs"]["adam"]
    assert len(run["eval"]["per_seed_mean_return"]) == 2 and run["wall_s"] > 0
    assert np.asarray(run["curves"]["charts/episodic_return"]).shape == (2, 2)
    rnd = random_return("Catch-bsuite", episodes=64)
    assert -1.0 <= rnd["mean"] <= 0.0  # random play mostly misses the ball


def test_add_runs_reports_a_stopped_ppo_train_run_at_the_steps_it_reached(tmp_path, capsys) -> None:
    import json

    from ppo_trainer.app import eval_cli, train_cli

    assert train_cli.main([
        "--env", "Catch-bsuite", "--optimizer", "adam", "--num-seeds", "2", "--num-envs", "4",
        "--num-steps", "16", "--total-timesteps", "256", "--num-minibatches", "2",
        "--hidden-size", "16", "--num-hidden-layers", "1", "--save-freq", "2",
        "--eval-freq", "0", "--run-dir", str(tmp_path), "--run-name", "boxed"]) == 0
    run = tmp_path / "boxed"
    # as a run stopped at a time box leaves it: the budget asked for is more than was trained
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "total_timesteps": 10_000}))
    assert eval_cli.main([str(run), "--episodes", "3", "--gif", "none",
                          "--json", str(run / "eval3.json")]) == 0
    per_seed = json.loads((run / "eval3.json").read_text())["per_seed_mean_return"]

    out = tmp_path / "suite"
    assert cli.main(["--add-runs", str(run), "--out", str(out), "--optimizers", "adam"]) == 0
    entry = json.loads((out / "raw" / "Catch-bsuite.json").read_text())["runs"]["adam"]
    assert entry["config"]["total_timesteps"] == 256  # reached, not the 10,000 asked for
    assert entry["eval"]["per_seed_mean_return"] == per_seed
    assert np.asarray(entry["curves"]["charts/episodic_return"]).shape == (2, 4)
    assert entry["steps_per_s"] > 0
    row = next(line for line in (out / "results.md").read_text().splitlines()
               if line.startswith("| Catch-bsuite | adam |"))
    assert "| 256 |" in row
    assert cli.main(["--add-runs", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "not an evaluated run directory" in capsys.readouterr().err


def test_tune_takes_its_sample_size_from_the_flags(tmp_path, monkeypatch, capsys) -> None:
    """A noisy env (Pendulum) needs more tuning seeds and episodes than the default 2 x 32."""
    from ppo_trainer.app.suite import tune

    seen = {}

    def fake_tune_env(env_id, optimizers, *, num_seeds, eval_episodes, log, overrides):
        seen.update(env=env_id, seeds=num_seeds, episodes=eval_episodes)
        return {"adam": {"name": "lr", "values": [1e-4, 3e-4, 9e-4], "scores": [1.0, 3.0, 2.0],
                         "picked": 3e-4, "seeds": num_seeds, "eval_episodes": eval_episodes}}

    monkeypatch.setattr(tune, "tune_env", fake_tune_env)
    argv = ["--tune", "--only", "Pendulum-v1", "--optimizers", "adam", "--out", str(tmp_path)]
    assert cli.main([*argv, "--tune-seeds", "4", "--tune-episodes", "256"]) == 0
    assert seen == {"env": "Pendulum-v1", "seeds": 4, "episodes": 256}
    assert (tmp_path / "tuning" / "Pendulum-v1.json").exists()
    assert "lr = 0.0003" in capsys.readouterr().out
    assert cli.main([*argv]) == 0 and (seen["seeds"], seen["episodes"]) == (2, 32)
    assert cli.main([*argv, "--tune-seeds", "0"]) == 2


def test_tune_env_scores_the_grid_around_each_optimizers_preset_value(monkeypatch) -> None:
    """The grid is 1/3, 1 and 3 times the preset's step size, on the tuning seeds; the record
    keeps every seed's score and the settings the grid varied around; a tie keeps the middle."""
    from ppo_trainer.app.suite import tune

    trained = []

    def fake_run_spec(config, wall_clock, log, *, eval_episodes):
        trained.append(config)
        value = config.lr if config.optimizer == "adam" else config.optimizer_kwargs["muon_lr"]
        per_seed = [value, None] if config.optimizer == "adam" else [7.0, 7.0]  # muon: ties
        return {"eval": {"per_seed_mean_return": per_seed}}

    monkeypatch.setattr(tune, "run_spec", fake_run_spec)
    out = tune.tune_env("CartPole-v1", ["adam", "muon"], num_seeds=2, eval_episodes=8)
    preset = {o: preset_config("CartPole-v1", optimizer=o) for o in ("adam", "muon")}
    adam, muon = out["adam"], out["muon"]
    assert adam["values"] == pytest.approx([preset["adam"].lr * f for f in GRID], rel=1e-2)
    assert adam["picked"] == adam["values"][2]  # the best score
    assert adam["per_seed"] == [[v, None] for v in adam["values"]]  # a NaN seed is None
    assert adam["scores"] == adam["values"]  # the mean over the seeds that have a score
    assert muon["picked"] == muon["values"][1] == preset["muon"].optimizer_kwargs["muon_lr"]
    assert adam["config"] == preset["adam"].to_dict() and muon["config"]["optimizer"] == "muon"
    assert {(c.seed, c.num_seeds) for c in trained} == {(tune.TUNING_SEED, 2)}
    assert len(trained) == 2 * len(GRID)


def test_tuning_one_optimizer_keeps_the_others_grid(tmp_path, monkeypatch) -> None:
    """`--tune --optimizers muon` after `--optimizers adam` adds Muon's grid to
    tuning/ENV.json instead of replacing Adam's."""
    from ppo_trainer.app.suite import tune

    def fake_tune_env(env_id, optimizers, *, num_seeds, eval_episodes, log, overrides):
        return {name: {"name": name, "values": [1.0], "scores": [float(len(name))],
                       "picked": 1.0} for name in optimizers}

    monkeypatch.setattr(tune, "tune_env", fake_tune_env)
    argv = ["--tune", "--only", "CartPole-v1", "--out", str(tmp_path)]
    assert cli.main([*argv, "--optimizers", "adam"]) == 0
    assert cli.main([*argv, "--optimizers", "muon"]) == 0
    saved = json.loads((tmp_path / "tuning" / "CartPole-v1.json").read_text())
    assert saved == {"adam": {"name": "adam", "values": [1.0], "scores": [4.0], "picked": 1.0},
                     "muon": {"name": "muon", "values": [1.0], "scores": [4.0], "picked": 1.0}}
    assert cli.main([*argv, "--optimizers", "adam"]) == 0  # a rerun replaces its own grid
    assert list(json.loads((tmp_path / "tuning" / "CartPole-v1.json").read_text())) == [
        "adam", "muon"]


def test_rerunning_one_optimizer_keeps_the_others_rows(tmp_path, monkeypatch) -> None:
    """`--only ENV --optimizers muon` (after re-tuning Muon) replaces Muon's entry only: Adam's
    run stays in raw/ and in the table, and each entry keeps the command that made it."""
    import json

    from ppo_trainer.app.suite import run

    def fake_run_env(env_id, optimizers, **_):
        return {"env": env_id, "random": {"mean": 0.0},
                "runs": {o: fake_run([0.5, 0.7] if o == "muon" else [0.2, 0.4]) for o in optimizers}}

    monkeypatch.setattr(run, "run_env", fake_run_env)
    out = tmp_path / "suite"
    assert cli.main(["--only", "Catch-bsuite", "--out", str(out), "--num-seeds", "2"]) == 0
    assert cli.main(["--only", "Catch-bsuite", "--optimizers", "muon", "--out", str(out)]) == 0
    data = json.loads((out / "raw" / "Catch-bsuite.json").read_text())
    assert set(data["runs"]) == {"adam", "muon"}
    assert "--optimizers" not in data["runs"]["adam"]["command"]
    assert "--optimizers muon" in data["runs"]["muon"]["command"]
    text = (out / "results.md").read_text()
    # the table keeps its order (adam, then muon) whichever optimizer was rerun last
    assert text.index("| Catch-bsuite | adam |") < text.index("| Catch-bsuite | muon |")
    assert text.count("`ppo-suite --only Catch-bsuite") == 2  # both commands are listed
