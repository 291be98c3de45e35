"""The committed suite records against their own commands, and the presets' tuned rates.

A record states the settings it ran with; the report compares each row with its own command
under today's presets and marks rows that predate a preset change (the ``settings`` column),
so a preset change marks rows instead of forcing reruns. A preset's step size must be the one
its committed grid picked (the preset's claim that it was tuned).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ppo_trainer.app.suite.cli import load_suite
from ppo_trainer.app.suite.report import effective, preset_drift, settings_note
from ppo_trainer.app.suite.tune import step_size, with_step_size
from ppo_trainer.config import TrainConfig
from ppo_trainer.presets import preset_config

SUITE = Path(__file__).resolve().parents[1] / "docs" / "results" / "suite"
ROWS = sorted((SUITE / "raw").glob("*.json"))
# ENV.json is the grid behind the preset; ENV.<note>.json files are side records (other seeds
# or rates), kept as evidence for the text in docs/results.md.
GRIDS = sorted(p for p in (SUITE / "tuning").glob("*.json") if "." not in p.stem)
# MinAtar at gymnax-blines' 10M steps on the CPU: the presets with only the budget raised
LONG = sorted((SUITE.parent / "suite-cpu-10m" / "raw").glob("*.json"))
LONG_BUDGET = 10_000_000
# The sdist ships the packages, not docs/ (the records these tests read): there they skip.
pytestmark = pytest.mark.skipif(not SUITE.is_dir(), reason="docs/results is not in the sdist")


def drift(ran: dict[str, Any], shipped: TrainConfig) -> dict[str, Any]:
    """Every setting where a recorded config differs from the shipped one: (recorded, shipped)."""
    now = effective(shipped.to_dict())
    ran = effective(ran)
    return {k: (ran[k], now[k]) for k in now if ran[k] != now[k]}


def test_the_committed_results_exist() -> None:
    assert len(ROWS) >= 16 and len(GRIDS) >= 4 and LONG


@pytest.mark.parametrize("path", ROWS + LONG, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_every_row_is_marked_by_its_own_command(path: Path) -> None:
    """The page's settings cell is the row against its own command under today's presets."""
    raw = json.loads(path.read_text())
    page = (path.parent.parent / "results.md").read_text()
    overrides = load_suite().get(raw["env"], {}).get("overrides")
    for optimizer, run in raw["runs"].items():
        note = settings_note(preset_drift(raw["env"], optimizer, run["config"], overrides))
        row = next(line for line in page.splitlines()
                   if line.startswith(f"| {raw['env']} | {optimizer} |"))
        assert row.endswith(f"| {note} |"), (raw["env"], optimizer, note)


@pytest.mark.parametrize("path", LONG, ids=lambda p: p.stem)
def test_every_10m_row_ran_its_commands_budget(path: Path) -> None:
    raw = json.loads(path.read_text())
    for run in raw["runs"].values():
        ran = run["config"]
        # an added run records the steps it reached: the budget rounded down to whole updates
        per_update = ran["num_envs"] * ran["num_steps"]
        assert ran["total_timesteps"] == LONG_BUDGET // per_update * per_update
        assert ran["sources"]["total_timesteps"] == "flag"


def test_a_preset_change_marks_a_row_instead_of_failing() -> None:
    raw = json.loads((SUITE / "raw" / "Snake-v0.json").read_text())
    config = dict(raw["runs"]["muon"]["config"], gamma=0.99)  # as if the preset had moved on
    assert preset_drift("Snake-v0", "muon", raw["runs"]["muon"]["config"]) == {}
    note = settings_note(preset_drift("Snake-v0", "muon", config))
    assert note == "earlier preset: gamma 0.99 (now 0.9995)"


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.stem)
def test_every_presets_step_size_is_its_grids_pick(path: Path) -> None:
    for optimizer, grid in json.loads(path.read_text()).items():
        config = preset_config(path.stem, optimizer=optimizer)
        value = step_size(config, grid["name"])
        assert value == pytest.approx(grid["picked"], rel=1e-3), (path.stem, optimizer)
        assert grid["picked"] in grid["values"]
        if "config" in grid:  # recorded since the grids of Freeway's 4-seed tune
            tuned = TrainConfig.from_dict(grid["config"])
            at_pick = with_step_size(tuned, grid["name"], value).to_dict()
            diff = drift(at_pick, config)
            assert not diff, f"{path.stem} / {optimizer}: (tuned around, preset) {diff}"
