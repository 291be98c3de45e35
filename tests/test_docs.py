"""The docs and result records: every table follows from its JSON, no machine paths, no diary,
links resolve, records stay small. Cheap: nothing trains.

The sdist ships the packages, not ``docs/`` or ``benchmarks/``: from an sdist these checks skip
(they check the repository, which is not there), and the file-size check needs ``git``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = DOCS / "results"
pytestmark = pytest.mark.skipif(not (DOCS / "results.md").is_file()
                                or not (ROOT / "benchmarks").is_dir(),
                                reason="docs/ and benchmarks/ are not in the sdist")

# An absolute path on some machine: a home, a work or scratch mount, a user folder. Example
# commands may use a scratch path (/tmp/...), which is not a machine's layout.
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:work|home|root|Users|mnt|scratch|data|opt|srv)/[\w.+-]")
# How the work was organised, not what it found: rounds, sessions, leases, who lent what. Checked
# in every tracked text file: code, comments, presets and scripts as well as the pages.
NARRATION = re.compile(
    r"\b(this round|earlier round|previous round|the round before|in round \d|round \d+ of|"
    r"rounds? \d(?:-\d)?:|GPU rounds?|the lease|GPU lease|was lent|were lent|lent to|"
    r"this session|this task)\b", re.IGNORECASE)
# A page is dated, so "today's" on a page is a diary; in code "today's presets" means the current
# ones (a record against the presets as they are now), so this one is checked on the pages only.
UNDATED = re.compile(r"\btoday's\b", re.IGNORECASE)
MAX_FILE_BYTES = 1_000_000
# This file spells out the patterns it checks for.
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def tracked_files() -> list[str]:
    """The repository's tracked files (``git ls-files``); without git, every file outside dot
    folders and virtual environments."""
    if shutil.which("git") is not None and (ROOT / ".git").exists():
        names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                               check=True).stdout.decode().split("\0")
        return [n for n in names if n and (ROOT / n).is_file()]
    return [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()
            and not any(part.startswith(".") or part in {"venv", "build", "dist"}
                        for part in p.relative_to(ROOT).parts)]


def text_files() -> list[Path]:
    """Every tracked text file (no NUL byte): code, tests, presets, scripts, pages, records."""
    out = []
    for name in tracked_files():
        path = ROOT / name
        if name != SELF and b"\0" not in path.read_bytes():
            out.append(path)
    return out


def _hits(pattern: re.Pattern[str], files: list[Path]) -> list[str]:
    return [f"{p.relative_to(ROOT)}:{i}: {m.group(0)!r}" for p in files
            for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
            for m in pattern.finditer(line)]


def test_text_files_cover_code_and_records() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in text_files()}
    for name in ("README.md", "docs/results.md", "ppo_trainer/presets.toml",
                 "ppo_trainer/app/suite/cli.py", "benchmarks/gpu_snake.sh",
                 "docs/results/snake-wins/results.json", "tests/test_policy.py"):
        assert name in names, name
    assert not any(n.endswith((".png", ".gif", ".msgpack")) for n in names)


def test_no_machine_paths() -> None:
    hits = _hits(MACHINE_PATH, text_files())
    assert not hits, "machine paths:\n" + "\n".join(hits)


def test_the_path_check_catches_a_path() -> None:
    assert MACHINE_PATH.search('"run_dir": "/work/exp/runs"')
    assert MACHINE_PATH.search("--rejax-python /home/me/rejax/.venv/bin/python")
    assert not MACHINE_PATH.search("ppo-train --run-dir /tmp/runs")
    assert not MACHINE_PATH.search("docs/results/suite/raw")


def test_no_narration() -> None:
    hits = _hits(NARRATION, text_files())
    assert not hits, "narration of how the work was organised:\n" + "\n".join(hits)


def test_pages_are_dated_not_today() -> None:
    pages = [p for p in text_files() if p.suffix == ".md"]
    hits = _hits(UNDATED, pages)
    assert not hits, "pages say today's instead of a date:\n" + "\n".join(hits)


STUDY = re.compile(r"docs/results/([\w.-]+)")


def test_named_studies_exist() -> None:
    """A study folder named anywhere (a docstring's example, a script's comment, a page) is in
    the tree: removed studies are named by the commit to check out, not by a dead path."""
    hits = [f"{p.relative_to(ROOT)}:{i}: docs/results/{m.group(1)}" for p in text_files()
            for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
            for m in STUDY.finditer(line) if not (RESULTS / m.group(1).rstrip(".")).exists()]
    assert not hits, "study folders that are not in the tree:\n" + "\n".join(hits)


def test_the_narration_check_catches_narration_not_code_words() -> None:
    assert NARRATION.search("Starving is a death since this round.")
    assert NARRATION.search("one H200 was lent for 15 minutes")
    assert NARRATION.search("reference = 'docs/results.md, GPU round 3'")
    assert NARRATION.search("no held-out seeds on the GPU lease")
    assert not NARRATION.search("a `Session` object; rounding to whole updates; --rounds 5")
    assert not NARRATION.search("runs once per test session; a lease-free lock")


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a markdown page."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_relative_links_resolve() -> None:
    pages = [p for p in ROOT.rglob("*.md") if not any(part.startswith(".") for part in
                                                      p.relative_to(ROOT).parts)]
    bad = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                bad.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_every_table_follows_from_its_json() -> None:
    tables = _load("make_tables")
    assert len(tables.TABLES) >= 10
    assert not tables.stale(), "run: python benchmarks/make_tables.py"


def test_a_changed_record_makes_its_table_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    tables = _load("make_tables")
    real = tables._json

    def edited(rel: str):
        data = real(rel)
        if rel == "snake-starvation/default/eval_per_seed.json":
            data[0]["mean_apples"] += 1.0
        return data

    monkeypatch.setattr(tables, "_json", edited)
    assert "docs/results.md: default-run" in tables.stale()


def test_the_crash_record_is_read_in_its_parts_in_order(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """results.json, then results-2.json, ..., results-10.json (by number, not by name)."""
    tables = _load("make_tables")
    (tmp_path / "snake-crashes").mkdir()
    for name in ("results-10", "results", "results-2"):
        rows = [{"label": f"{name} #{i}"} for i in range(2)]
        (tmp_path / "snake-crashes" / f"{name}.json").write_text(json.dumps({"rows": rows}))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    assert [r["label"] for r in tables._crash_rows()] == [
        f"{name} #{i}" for name in ("results", "results-2", "results-10") for i in range(2)]


def test_every_crash_record_part_reaches_the_tables() -> None:
    tables = _load("make_tables")
    table = tables.snake_crashes()
    parts = sorted((RESULTS / "snake-crashes").glob("results*.json"))
    assert len(parts) >= 2
    for part in parts:
        for row in json.loads(part.read_text())["rows"]:
            assert f"| {row['label']} |" in table, (part.name, row["label"])


@pytest.mark.parametrize("study", ["suite", "suite-cpu-rerun", "suite-cpu-10m"])
def test_suite_pages_follow_from_raw(study: str) -> None:
    from ppo_trainer.app.suite.cli import DEFAULT_OPTIMIZERS, load_suite
    from ppo_trainer.app.suite.raw import optimizers
    from ppo_trainer.app.suite.report import format_report

    suite = load_suite()
    files = {p.stem: p for p in (RESULTS / study / "raw").glob("*.json")}
    order = [*suite, *sorted(set(files) - set(suite))]
    raw = {env: json.loads(files[env].read_text()) for env in order if env in files}
    text, summary = format_report(raw, suite, optimizers(raw, list(DEFAULT_OPTIMIZERS)))
    assert text == (RESULTS / study / "results.md").read_text(), \
        f"run: ppo-suite --replot --out docs/results/{study}"
    assert summary == json.loads((RESULTS / study / "summary.json").read_text())


def _snake_wins_studies() -> list[str]:
    """The studies ``benchmarks/snake_wins.py`` wrote: their record has rows and periodic
    evaluations (the other records under docs/results have other shapes)."""
    return sorted(p.parent.name for p in RESULTS.glob("*/results.json")
                  if {"rows", "periodic"} <= set(json.loads(p.read_text())))


SNAKE_WINS_STUDIES = _snake_wins_studies() if RESULTS.is_dir() else []


def test_snake_wins_studies_are_found() -> None:
    """The list below is found on disk, not written out: it must hold the held-out studies
    and the lever studies make_tables' tables read."""
    tables = _load("make_tables")
    assert {*tables.HELD_OUT_STUDIES, *tables.LEVER_STUDIES, "snake-wins"} <= set(SNAKE_WINS_STUDIES)


@pytest.mark.parametrize("study", SNAKE_WINS_STUDIES)
def test_snake_pages_follow_from_their_records(study: str, tmp_path: Path) -> None:
    """The page (and its plots) regenerated from ``results.json`` alone, in an empty folder."""
    study_dir = RESULTS / study
    shutil.copy(study_dir / "results.json", tmp_path / "results.json")
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "snake_wins.py"), "--replot",
                    "--out", str(tmp_path)], check=True, capture_output=True)
    made = (tmp_path / "results.md").read_text().replace(str(tmp_path), study_dir.relative_to(ROOT).as_posix())
    assert made == (study_dir / "results.md").read_text()
    for image in re.findall(r"!\[[^\]]*\]\(([\w.]+\.png)\)", made):
        assert (tmp_path / image).stat().st_size < 150_000, image
    assert json.loads((tmp_path / "results.json").read_text()) == \
        json.loads((study_dir / "results.json").read_text())


def test_snake_wins_replot_keeps_recorded_runs_without_a_directory() -> None:
    """A run measured again replaces its rows in place; recorded runs stay; new ones follow."""
    merge = _load("snake_wins").merge_rows
    recorded = [{"run": "a --seed 1", "v": 1}, {"run": "b --seed 1 #0", "v": 2},
                {"run": "b --seed 1 #1", "v": 3}, {"run": "c --seed 1", "v": 4}]
    fresh = [{"run": "d --seed 2", "v": 5}, {"run": "b --seed 1 #0", "v": 6},
             {"run": "b --seed 1 #1", "v": 7}]
    assert [r["v"] for r in merge(recorded, fresh)] == [1, 6, 7, 4, 5]
    assert merge(recorded, []) == recorded


def test_snake_wins_adds_a_row_for_the_kept_best_policy(tmp_path: Path) -> None:
    """A run with a ``--keep-best`` evaluation gets a second row per seed, from that evaluation's
    games, at the env steps of the update the policy was picked at."""
    wins = _load("snake_wins")
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"num_seeds": 1, "seed": 16, "optimizer": "muon",
                                                 "batch_size": 100}))
    (run / "metrics.jsonl").write_text(json.dumps({"global_step": 2000, "time": 9.0}) + "\n")

    def games(win: list[int], apples: list[int]) -> dict:
        return {"update": 20, "episodes": {"win": [win], "apples": [apples],
                                           "episode_length": [[900] * len(win)],
                                           "finished": [[True] * len(win)]}}

    (run / "eval1024.json").write_text(json.dumps(games([1, 0, 0, 0], [97, 90, 80, 70])))
    best = games([1, 1, 1, 0], [97, 97, 97, 60])
    best["update"] = 7
    (run / wins.BEST_EVAL).write_text(json.dumps(best))
    final, kept = wins.summarize_run(run)
    assert (final["run"], final["env_steps"], final["win_rate"]) == ("r --seed 16", 2000, 0.25)
    assert (kept["run"], kept["env_steps"], kept["win_rate"]) == ("r --seed 16 best", 700, 0.75)
    assert kept["mean_apples"] == 87.75 and kept["apples_counts"][97] == 3
    assert kept["eval_seed"] == 16 + wins.BEST_EVAL_SEED_OFFSET
    assert wins.best_eval_command(run)[wins.best_eval_command(run).index("--seed") + 1] == "1016"
    text = wins.report([final, kept], tmp_path, "a CPU", "p")
    assert "periodic 256-game evaluation with the highest mean return" in text
    assert "(256 episodes each)" in wins.win_curves(tmp_path, {"r": {100: [0.5]}}, [final, kept])
    # picked by wins on larger evaluations (--keep-best-by win --eval-episodes 1024): said so
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "keep_best_by": "win",
                                                 "eval_episodes": 1024}))
    final, kept = wins.summarize_run(run)
    assert kept["picked_by"] == "win" and kept["periodic_episodes"] == 1024
    text = wins.report([final, kept], tmp_path, "a CPU", "p")
    assert "periodic 1024-game evaluation with the most games won" in text
    assert "(1024 episodes each)" in wins.win_curves(tmp_path, {"r": {100: [0.5]}}, [final, kept])


@pytest.mark.parametrize("name", SNAKE_WINS_STUDIES)
def test_snake_wins_record_is_compact(name: str) -> None:
    """The winning studies keep summaries, not logs: curves of at most a few hundred points per
    seed, the 1024-game evaluations as counts, no per-episode data or raw training logs."""
    study = RESULTS / name
    record = json.loads((study / "results.json").read_text())
    assert (study / "results.json").stat().st_size < 512_000
    for curve in record.get("curves", {}).values():  # the GPU study kept no training curves
        assert len(curve["global_step"]) <= 300
        for per_seed in curve["per_seed"].values():
            assert all(len(values) == len(curve["global_step"]) for values in per_seed)
    for row in record["rows"]:
        assert sum(row["apples_counts"]) == 1024
    assert not [p.name for p in study.rglob("*") if p.suffix in {".jsonl", ".log"}
                or p.name.startswith("eval")]


def test_starvation_table_follows_from_its_summary() -> None:
    study = RESULTS / "snake-starvation"
    table = _load("snake_starvation").table(json.loads((study / "summary.json").read_text()))
    assert table == (study / "table.md").read_text()


def test_muon_sparse_table_follows_from_its_runs() -> None:
    study = RESULTS / "muon-sparse"
    module = _load("muon_sparse")
    assert module.tables(module.load_runs(study)) == (study / "table.md").read_text()


def test_every_study_has_a_record() -> None:
    for study in sorted(p for p in RESULTS.iterdir() if p.is_dir()):
        record = json.loads((study / "record.json").read_text())
        assert {"study", "date", "hardware", "versions", "commands", "regenerate"} <= set(record)
        assert re.match(r"\d{4}-\d{2}-\d{2}", record["date"]), study.name


def test_no_tracked_file_over_1_mb() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout (the tracked files)")
    big = [f"{n}: {(ROOT / n).stat().st_size:,} bytes" for n in tracked_files()
           if (ROOT / n).stat().st_size > MAX_FILE_BYTES]
    assert not big, "tracked files over 1 MB:\n" + "\n".join(big)


def test_the_slow_default_run_threshold_is_below_the_measured_spread() -> None:
    """tests/test_snake_learning.py states the lowest committed default-preset run; it must be
    the records' lowest, so the threshold's margin is what its comment says."""
    learning = importlib.util.spec_from_file_location("learning", ROOT / "tests" / "test_snake_learning.py")
    module = importlib.util.module_from_spec(learning)
    learning.loader.exec_module(module)
    apples = [a for _, a, _ in _load("make_tables").pooled_runs()]
    assert round(min(apples), 1) == module.LOWEST_MEASURED_APPLES
    assert module.DEFAULT_RUN_THRESHOLD == module.LOWEST_MEASURED_APPLES - module.MARGIN_APPLES


def test_snake_wins_periodic_table_when_runs_share_no_step(tmp_path: Path) -> None:
    """Runs evaluated at different env steps still get a table (every step, n/a where a run did
    not evaluate), as do runs that share fewer than half of their steps; runs that share most
    steps get only the shared ones."""
    win_curves = _load("snake_wins").win_curves
    apart = win_curves(tmp_path, {"a": {100: [0.5]}, "b": {200: [0.25]}})
    assert "| 100 | 50% | n/a |" in apart and "| 200 | n/a | 25% |" in apart
    shared = win_curves(tmp_path, {"a": {100: [0.5], 300: [1.0]}, "b": {100: [0.75]}})
    assert "| 100 | 50% | 75% |" in shared and "| 300 |" not in shared
    few = win_curves(tmp_path, {"a": {100: [0.5], 200: [0.6], 300: [1.0]}, "b": {300: [0.75]}})
    assert "| 100 | 50% | n/a |" in few and "| 300 | 100% | 75% |" in few
