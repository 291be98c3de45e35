"""The committed suite results are what the shipped presets give.

A user who reruns ``ppo-suite --only ENV`` must train the config that made the row in
docs/results/suite, and a preset's step size must be the one its committed grid picked.
Both drifted once (a row trained at a preset's old rate), so both are checked here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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


def effective(config: dict[str, Any]) -> dict[str, Any]:
    """A row's config with the fields added since it ran at their defaults, and Muon's
    ``aux_adam_lr`` None (meaning: the run's ``lr``) spelled out."""
    full = {**TrainConfig().to_dict(), **config}
    kwargs = dict(full["optimizer_kwargs"])
    if "aux_adam_lr" in kwargs and kwargs["aux_adam_lr"] is None:
        kwargs["aux_adam_lr"] = full["lr"]
    full["optimizer_kwargs"] = kwargs
    return full


def drift(ran: dict[str, Any], shipped: TrainConfig) -> dict[str, Any]:
    """Every setting where a recorded config differs from the shipped one: (recorded, shipped)."""
    now = effective(shipped.to_dict())
    ran = effective(ran)
    return {k: (ran[k], now[k]) for k in now if ran[k] != now[k]}


def test_the_committed_results_exist() -> None:
    assert len(ROWS) >= 16 and len(GRIDS) >= 4 and LONG


def assert_rows_are_presets(raw: dict[str, Any], taken: tuple[str, ...] = ()) -> None:
    """Each optimizer's row in a raw suite file is its preset's config; the seeds and the
    fields named in ``taken`` are taken from the row."""
    for optimizer, run in raw["runs"].items():
        ran = run["config"]
        overrides = {k: ran[k] for k in ("num_seeds", "seed", *taken)}
        diff = drift(ran, preset_config(raw["env"], optimizer=optimizer, **overrides))
        assert not diff, f"{raw['env']} / {optimizer}: (row, preset) {diff}"


@pytest.mark.parametrize("path", ROWS, ids=lambda p: p.stem)
def test_every_committed_row_is_its_presets_config(path: Path) -> None:
    assert_rows_are_presets(json.loads(path.read_text()))


@pytest.mark.parametrize("path", LONG, ids=lambda p: p.stem)
def test_every_10m_row_is_its_preset_at_10m_steps(path: Path) -> None:
    raw = json.loads(path.read_text())
    for run in raw["runs"].values():
        ran = run["config"]
        # an added run records the steps it reached: the budget rounded down to whole updates
        per_update = ran["num_envs"] * ran["num_steps"]
        assert ran["total_timesteps"] == LONG_BUDGET // per_update * per_update
    # the budget checked above, and the run's output folders (not settings)
    assert_rows_are_presets(raw, taken=("total_timesteps", "run_dir", "run_name"))


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
