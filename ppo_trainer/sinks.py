"""Where metrics go: ``metrics.jsonl`` in the run directory and, optionally, Weights & Biases.

One JSONL line per update per seed, with CleanRL's metric names plus ``update``, ``seed``
(the seed's index in the vmapped batch), ``charts/SPS`` and ``time``. Non-finite values (e.g.
an episodic return in an update where no episode ended) are written as ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ppo_trainer.errors import CLIError

METRICS_NAME = "metrics.jsonl"
TIMING_KEYS = ("time", "charts/SPS")  # the only fields that differ between identical runs


def _scalar(value: Any) -> float | int | None:
    arr = np.asarray(value)
    number = arr.item() if arr.size == 1 else float(np.mean(arr))
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return number


def chunk_rows(
    metrics: Mapping[str, Any], start_update: int, extra: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Rows for a chunk of metrics shaped ``(num_seeds, n, ...)``: one per update per seed.

    ``update`` is 1-based: the number of updates completed when the row was recorded.
    """
    arrays = {k: np.asarray(v) for k, v in metrics.items()}
    num_seeds, n = next(iter(arrays.values())).shape[:2]
    rows = []
    for i in range(n):
        for seed in range(num_seeds):
            row: dict[str, Any] = {"update": start_update + i + 1, "seed": seed}
            row.update({k: _scalar(v[seed, i]) for k, v in arrays.items()})
            row.update(extra or {})
            rows.append(row)
    return rows


class MetricsFile:
    """Append-only JSONL writer; on resume, first drops rows beyond the checkpoint."""

    def __init__(self, run_path: Path, resume_update: int | None = None) -> None:
        self.path = Path(run_path) / METRICS_NAME
        if resume_update is None:
            self.path.write_text("")
        else:
            truncate_metrics(self.path, resume_update)

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        with open(self.path, "a") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_metrics(path: Path, last_update: int) -> None:
    """Keep only rows with ``update <= last_update`` (rows written after the last checkpoint)."""
    rows = [r for r in read_metrics(path) if r.get("update", 0) <= last_update]
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in rows))


def mean_over_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per update: the mean over seeds of every numeric field (``None`` ignored)."""
    by_update: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_update.setdefault(row["update"], []).append(row)
    out = []
    for update in sorted(by_update):
        group = by_update[update]
        merged: dict[str, Any] = {"update": update}
        for key in group[0]:
            if key in ("update", "seed"):
                continue
            values = [r[key] for r in group if isinstance(r.get(key), (int, float))]
            merged[key] = float(np.mean(values)) if values else None
        out.append(merged)
    return out


class WandbSink:
    """Weights & Biases logging; ``wandb`` is imported only when this is constructed.

    The run lives under ``<run dir>/wandb`` so that in ``WANDB_MODE=offline`` the offline run
    (``wandb/offline-run-*``) sits next to the other outputs, ready for ``wandb sync``. The run id
    is kept in ``<run dir>/wandb_id`` so ``--resume`` continues the same W&B run.
    """

    def __init__(self, run_path: Path, config: Mapping[str, Any], project: str,
                 entity: str | None, name: str) -> None:
        import secrets

        import wandb

        self._wandb = wandb
        id_file = Path(run_path) / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)
        id_file.write_text(run_id)
        try:
            self.run = wandb.init(
                project=project, entity=entity, name=name, id=run_id, resume="allow",
                dir=str(run_path), config=dict(config),
            )
        except Exception as exc:  # no login, no network in online mode, bad entity...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CLIError(f"--wandb: {first} (try WANDB_MODE=offline)") from None

    def log_rows(self, rows: list[dict[str, Any]]) -> None:
        """Per update: the mean over seeds, at ``global_step``."""
        for row in mean_over_seeds(rows):
            data = {k: v for k, v in row.items() if v is not None}
            self.run.log(data, step=int(row.get("global_step") or row["update"]))

    def log_summary(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            self.run.summary[key] = value

    def log_media(self, curve: Path | None, gif: Path | None) -> None:
        data: dict[str, Any] = {}
        if curve is not None and Path(curve).is_file():
            data["learning_curve"] = self._wandb.Image(str(curve))
        if gif is not None and Path(gif).is_file():
            try:
                data["agent"] = self._wandb.Video(str(gif), format="gif")
            except Exception:  # older/newer wandb without gif video support: still an image
                data["agent"] = self._wandb.Image(str(gif))
        if data:
            self.run.log(data)

    def finish(self, exit_code: int = 0) -> None:
        self.run.finish(exit_code=exit_code)
