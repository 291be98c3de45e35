"""The suite's raw results, ``<out>/raw/<env>.json``, and grids, ``<out>/tuning/<env>.json``: one
file per env and, in it, one entry per optimizer.

Writes merge: rerunning one optimizer on an env (``ppo-suite --only ENV --optimizers muon``,
after re-tuning its rate) replaces that optimizer's entry and keeps the others', so the other
rows need not be retrained. Each entry records the command that made it, since one file can
then hold runs of different commands.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ppo_trainer.app.compare.report import jsonable


def merge_runs(raw_dir: Path, env: str, runs: dict[str, dict[str, Any]], command: str,
               random: Callable[[], dict[str, Any]]) -> None:
    """Put ``runs`` (optimizer -> entry) into ``raw_dir/<env>.json``.
    ``random`` gives the random policy's return, asked for when the file has none."""
    path = raw_dir / f"{env}.json"
    data = json.loads(path.read_text()) if path.is_file() else {"env": env, "runs": {}}
    legacy = data.pop("command", None)  # files before per-run commands: one for all runs
    for entry in data["runs"].values():
        entry.setdefault("command", legacy)
    data["runs"].update({name: {**entry, "command": command} for name, entry in runs.items()})
    if "random" not in data:
        data["random"] = random()
    path.parent.mkdir(parents=True, exist_ok=True)  # a suite id's folder: raw/jumanji/Snake-v1
    path.write_text(json.dumps(jsonable(data)) + "\n")


def merge_tuning(tuning_dir: Path, env: str, tuned: dict[str, dict[str, Any]]) -> None:
    """Put ``tuned`` (optimizer -> grid and pick) into ``tuning_dir/<env>.json``, keeping the
    other optimizers' grids (``--tune --optimizers muon`` after an Adam tune), as
    :func:`merge_runs` does for rows."""
    path = tuning_dir / f"{env}.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable({**data, **tuned}), indent=1))


def commands(raw: dict[str, dict[str, Any]]) -> list[str]:
    """Every command that made a run of ``raw`` (env -> data), sorted."""
    return sorted({entry.get("command") or data.get("command") or "?"
                   for data in raw.values() for entry in data["runs"].values()})


def optimizers(raw: dict[str, dict[str, Any]], order: list[str]) -> list[str]:
    """The optimizers to report: those of ``order`` that ``raw`` holds, in that order (a stable
    table whichever optimizer was rerun last), then any others it holds."""
    found = {name for data in raw.values() for name in data["runs"]}
    return [*dict.fromkeys(o for o in order if o in found), *sorted(found - set(order))]
