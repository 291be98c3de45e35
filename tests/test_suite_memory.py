"""The suite's memory group: partially observed tasks trained with a feed-forward and a
recurrent policy per optimizer, rows keyed so both exist (adam, adam+gru), a report that sets
each recurrent row against its feed-forward row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ppo_trainer.app.suite import cli, report, run
from ppo_trainer.app.suite.run import run_env, run_key
from ppo_trainer.envs import make_env
from ppo_trainer.presets import preset_config


def memory_entries() -> dict[str, dict]:
    suite = cli.load_suite()
    return {name: entry for name, entry in suite.items() if entry["group"] == "memory"}


def test_the_memory_group_has_memorychain_and_two_partially_observed_tasks() -> None:
    entries = memory_entries()
    assert len(entries) >= 3 and cli.select(cli.load_suite(), [], ["memory"]) == list(entries)
    envs = {preset_config(name).env for name in entries}
    assert "MemoryChain-bsuite" in envs
    for name, entry in entries.items():
        assert entry["variants"] == ["none", "gru"] and "reference" in entry, name
        for optimizer in ("adam", "muon"):
            config = preset_config(name, optimizer=optimizer, rnn="gru", num_seeds=4)
            config.validate()  # whole-sequence minibatches: num_envs divides by them
        config = preset_config(name)
        if config.env != "MemoryChain-bsuite":  # made partially observed by data, not code
            assert config.obs_drop, name
            full, params = make_env(config.replace(obs_drop=()))
            env, _ = make_env(config)
            assert (env.observation_space(params).shape[0]
                    == full.observation_space(params).shape[0] - len(config.obs_drop))


def test_a_recurrent_row_is_keyed_beside_the_feed_forward_one() -> None:
    assert run_key("adam", "none") == "adam" and run_key("muon", "gru") == "muon+gru"


def fake_spec(scores_by_rnn: dict[str, list[float]]):
    """``run_spec`` without training: the config it was given and fixed per-seed scores."""
    seen = []

    def spec(config, schedule, log, eval_episodes=0):
        seen.append(config)
        scores = scores_by_rnn[config.rnn]
        return {"config": config.to_dict(), "eval": {"per_seed_mean_return": scores},
                "curves": {"charts/episodic_return": [[0.0, s] for s in scores]},
                "global_step": [1.0, 2.0], "steps_per_s": 10.0}

    return spec, seen


def test_run_env_trains_every_variant_with_every_optimizer(monkeypatch) -> None:
    spec, seen = fake_spec({"none": [0.0, 0.1], "gru": [1.0, 1.0]})
    monkeypatch.setattr(run, "run_spec", spec)
    data = run_env("CartPole-stateless", ["adam", "muon"], num_seeds=2,
                   variants=["none", "gru"])
    assert list(data["runs"]) == ["adam", "adam+gru", "muon", "muon+gru"]
    assert [(c.optimizer, c.rnn, c.obs_drop, c.rnn_size) for c in seen] == [
        ("adam", "none", (1, 3), 64), ("adam", "gru", (1, 3), 64),
        ("muon", "none", (1, 3), 64), ("muon", "gru", (1, 3), 64)]
    assert 5 < data["random"]["mean"] < 50  # CartPole's random policy: ~22 steps


def test_suite_rnn_flag_adds_recurrent_rows_instead_of_overwriting(tmp_path, monkeypatch) -> None:
    """`ppo-suite --rnn gru` on a suite env adds adam+gru beside adam; the memory group's
    report shows each pair with its intervals, the aggregate and P(recurrent > feed-forward)."""
    spec, _ = fake_spec({"none": [0.0, 0.2, -0.2, 0.0], "gru": [1.0, 0.8, 1.0, 1.0]})
    monkeypatch.setattr(run, "run_spec", spec)
    out = tmp_path / "memory"
    args = ["--only", "MemoryChain-bsuite", "--out", str(out), "--num-seeds", "4"]
    assert cli.main(args) == 0
    assert cli.main([*args, "--rnn", "gru"]) == 0
    data = json.loads((out / "raw" / "MemoryChain-bsuite.json").read_text())
    assert set(data["runs"]) == {"adam", "muon", "adam+gru", "muon+gru"}
    assert data["runs"]["adam"]["config"]["rnn"] == "none"
    assert "--rnn gru" in data["runs"]["adam+gru"]["command"]
    text = (out / "results.md").read_text()
    assert "## Recurrent vs feed-forward" in text
    row = next(line for line in text.splitlines()
               if line.startswith("| MemoryChain-bsuite | adam+gru | 0.00"))
    assert row.endswith("| yes |"), row
    assert "P(muon+gru > muon): 1.00" in text
    # the recurrent row is what its command trains with today's presets
    line = next(ln for ln in text.splitlines() if ln.startswith("| MemoryChain-bsuite | adam+gru"
                                                                 " | 0.95"))
    assert line.endswith("| preset |"), line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recurrent_over_feed_forward"]["adam+gru"]["over"] == "adam"


def test_recurrent_lines_say_no_where_the_intervals_overlap() -> None:
    def entry(scores):
        return {"eval": {"per_seed_mean_return": scores}}

    raw = {"E": {"runs": {"adam": entry([0.0, 1.0, 0.0, 1.0]),
                          "adam+gru": entry([0.5, 1.0, 0.5, 1.0])}}}
    lines = report.recurrent_lines(raw, ["adam", "adam+gru"])
    assert lines[-1].startswith("| E | adam+gru |") and lines[-1].endswith("| no |")
    assert report.recurrent_lines(raw, ["adam"]) == []  # no recurrent row: no section


def test_a_recorded_obs_drop_list_is_no_settings_drift() -> None:
    config = json.loads(json.dumps(preset_config("CartPole-stateless", optimizer="adam",
                                                 num_seeds=4, seed=0).to_dict()))
    assert config["obs_drop"] == [1, 3]
    assert report.preset_drift("CartPole-stateless", "adam", config) == {}
    np.testing.assert_equal(report.effective(config)["obs_drop"], (1, 3))


@pytest.mark.parametrize("argv", [["--group", "memory", "--rnn", "lstm"]])
def test_cli_rnn_replaces_the_variants(argv) -> None:
    args = cli.build_parser().parse_args(argv)
    suite = cli.load_suite()
    assert cli.env_variants(suite, "CartPole-stateless", args) == ["lstm"]
    assert cli.env_variants(suite, "CartPole-stateless", cli.build_parser().parse_args([])) == [
        "none", "gru"]
    assert cli.env_variants(suite, "Catch-bsuite", cli.build_parser().parse_args([])) == [None]


MEMORY = Path(__file__).resolve().parents[1] / "docs" / "results" / "memory"


@pytest.mark.skipif(not (MEMORY / "raw").is_dir(), reason="docs/results is not in the sdist")
def test_the_memory_record_follows_from_its_raw_runs() -> None:
    """results.md and summary.json are `ppo-suite --replot --out docs/results/memory` of raw/,
    every task has all four rows, and each row is its preset with its own --rnn."""
    from ppo_trainer.app.suite.cli import DEFAULT_OPTIMIZERS
    from ppo_trainer.app.suite.raw import optimizers

    suite = cli.load_suite()
    raw = {p.stem: json.loads(p.read_text()) for p in sorted((MEMORY / "raw").glob("*.json"))}
    raw = {env: raw[env] for env in suite if env in raw}
    assert set(raw) == set(memory_entries())
    text, summary = report.format_report(raw, suite, optimizers(raw, list(DEFAULT_OPTIMIZERS)))
    assert text == (MEMORY / "results.md").read_text(), \
        "run: ppo-suite --replot --out docs/results/memory"
    assert summary == json.loads((MEMORY / "summary.json").read_text())
    for env, data in raw.items():
        assert set(data["runs"]) == {"adam", "adam+gru", "muon", "muon+gru"}, env
        for key, run_ in data["runs"].items():
            assert run_["config"]["rnn"] == ("gru" if "+" in key else "none")
            assert len(run_["eval"]["per_seed_mean_return"]) == 4
            assert any(line.startswith(f"| {env} | {key} |") and line.endswith("| preset |")
                       for line in text.splitlines()), (env, key)
