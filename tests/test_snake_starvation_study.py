"""benchmarks/snake_starvation.py reads real ``ppo-train`` runs of both starvation modes."""

import json
import math

from conftest import load_benchmark

from ppo_trainer.app import train_cli


def test_study_groups_runs_by_mode_and_keeps_the_starvation_curves(tmp_path, capsys):
    """Two tiny runs (truncation, death) -> one summary entry each, with the mode read from
    the run's config, per-seed greedy results and the trainer's ``charts/starved`` curve."""
    runs = []
    for death in (False, True):
        name = f"death_{death}"
        code = train_cli.main([
            "--env", "Snake-v0", "--optimizer", "adam", "--num-seeds", "2", "--seed", "5",
            "--num-envs", "4", "--num-steps", "64", "--total-timesteps", "768",
            "--eval-episodes", "2", "--env-params", f"starvation_is_death={str(death).lower()}",
            "--run-dir", str(tmp_path), "--run-name", name])
        assert code == 0
        runs.append(tmp_path / name)
    load_benchmark("snake_starvation").main([*map(str, runs), "--out", str(tmp_path / "out")])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["starvation_is_death"] for r in summary] == [False, True]
    for r in summary:
        assert r["seeds"] == [5, 6] and len(r["greedy_apples"]) == 2
        assert r["collapsed"] == [a < 10 for a in r["greedy_apples"]]
        assert len(r["train_starved"]) == 2 and len(r["train_starved"][0]) == 3
        assert all(0.0 <= x <= 1.0 for x in r["train_starved"][0] if not math.isnan(x))
        assert r["greedy_starved"] is not None
    assert (tmp_path / "out" / "curves.png").stat().st_size > 10_000
    assert "| death_True | death | 5-6 |" in capsys.readouterr().out
