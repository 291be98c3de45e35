"""The suite's ecosystem group: one env per env suite (``--env SUITE/ID``), reached by presets
alone, whose rows are stored under the id's own folder (``raw/jumanji/Snake-v1.json``), and
our Snake-v0 on Jumanji Snake-v1's board beside it. No training here: the record test checks
the committed results against their raw JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ppo_trainer import suites
from ppo_trainer.app.suite import cli, report, run
from ppo_trainer.envs import make_env
from ppo_trainer.presets import preset_config

ECOSYSTEM = Path(__file__).resolve().parents[1] / "docs" / "results" / "ecosystem"


def ecosystem_entries() -> dict[str, dict]:
    return {name: entry for name, entry in cli.load_suite().items()
            if entry["group"] == "ecosystem"}


def test_the_ecosystem_group_has_an_env_of_every_suite_with_references() -> None:
    entries = ecosystem_entries()
    assert cli.select(cli.load_suite(), [], ["ecosystem"]) == list(entries)
    prefixes = {preset_config(name).env.split("/")[0] for name in entries
                if suites.is_suite_id(preset_config(name).env)}
    assert {"jumanji", "navix", "craftax"} <= prefixes
    assert prefixes & {"brax", "playground"}
    for name, entry in entries.items():
        assert entry["reference_source"] and entry["published_source"], name
        assert isinstance(entry["reference"], float), name
        for optimizer in ("adam", "muon"):
            preset_config(name, optimizer=optimizer, num_seeds=4).validate()


def test_snake_v0_runs_on_jumanji_snakes_board_with_the_same_trainer_settings() -> None:
    ours, _ = make_env(preset_config("Snake-v0-12x12"))
    theirs, _ = make_env(preset_config("jumanji/Snake-v1"))
    assert (ours.height, ours.width) == (theirs.env.num_rows, theirs.env.num_cols) == (12, 12)
    a, b = preset_config("Snake-v0-12x12").to_dict(), preset_config("jumanji/Snake-v1").to_dict()
    same = ("network", "hidden_size", "num_hidden_layers", "shared_torso", "num_envs",
            "num_steps", "gamma", "total_timesteps", "update_epochs", "num_minibatches", "lr")
    assert {k: a[k] for k in same} == {k: b[k] for k in same}
    refs = ecosystem_entries()  # the board's maximum apples from each game's start length
    assert refs["Snake-v0-12x12"]["reference"] == 12 * 12 - 3
    assert refs["jumanji/Snake-v1"]["reference"] == 12 * 12 - 1


def test_a_suite_id_row_is_stored_in_its_folder_and_reported(tmp_path, monkeypatch) -> None:
    """``ppo-suite --only jumanji/Snake-v1`` writes raw/jumanji/Snake-v1.json, and --replot
    finds it there (a '/' in an env id is a folder)."""
    def spec(config, schedule, log, eval_episodes=0):
        scores = [1.0, 2.0, 3.0, 4.0]
        return {"config": config.to_dict(), "eval": {"per_seed_mean_return": scores},
                "curves": {"charts/episodic_return": [[0.0, s] for s in scores]},
                "global_step": [1.0, 2.0], "steps_per_s": 10.0}

    monkeypatch.setattr(run, "run_spec", spec)
    monkeypatch.setattr(run, "random_return", lambda *a, **k: {"mean": 0.0, "std": 0.0,
                                                               "episodes": 1})
    out = tmp_path / "eco"
    assert cli.main(["--only", "jumanji/Snake-v1", "--out", str(out)]) == 0
    data = json.loads((out / "raw" / "jumanji" / "Snake-v1.json").read_text())
    assert data["env"] == "jumanji/Snake-v1" and set(data["runs"]) == {"adam", "muon"}
    assert cli.main(["--replot", "--out", str(out)]) == 0
    text = (out / "results.md").read_text()
    assert any(line.startswith("| jumanji/Snake-v1 | adam | 2.50") for line in text.splitlines())
    assert (out / "plots" / "jumanji" / "Snake-v1.png").is_file()


@pytest.mark.skipif(not (ECOSYSTEM / "raw").is_dir(), reason="docs/results is not in the sdist")
def test_the_ecosystem_record_follows_from_its_raw_runs() -> None:
    """results.md and summary.json are `ppo-suite --replot --out docs/results/ecosystem` of
    raw/, every env ran Adam and Muon on 4 seeds with its preset, and record.json states each
    env's budget and wall time."""
    from ppo_trainer.app.suite.cli import DEFAULT_OPTIMIZERS
    from ppo_trainer.app.suite.raw import optimizers

    suite = cli.load_suite()
    files = {p.relative_to(ECOSYSTEM / "raw").with_suffix("").as_posix(): p
             for p in (ECOSYSTEM / "raw").rglob("*.json")}
    raw = {env: json.loads(files[env].read_text()) for env in suite if env in files}
    assert set(raw) == set(files) and set(raw) <= set(ecosystem_entries())
    text, summary = report.format_report(raw, suite, optimizers(raw, list(DEFAULT_OPTIMIZERS)))
    assert text == (ECOSYSTEM / "results.md").read_text(), \
        "run: ppo-suite --replot --out docs/results/ecosystem"
    assert summary == json.loads((ECOSYSTEM / "summary.json").read_text())
    record = json.loads((ECOSYSTEM / "record.json").read_text())
    for env, data in raw.items():
        assert set(data["runs"]) == {"adam", "muon"}, env
        for optimizer, run_ in data["runs"].items():
            assert len(run_["eval"]["per_seed_mean_return"]) == 4, (env, optimizer)
            overrides = suite[env].get("overrides")  # Craftax: a smaller budget
            assert report.preset_drift(env, optimizer, run_["config"], overrides) == {}, \
                (env, optimizer)
        assert record["wall_s"][env] > 0, env
