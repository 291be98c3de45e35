"""Where a run's numbers go: the run directory's files, Weights & Biases, TensorBoard.

Every destination implements the small :class:`Sink` protocol and the run loop holds them in a
list, so a new backend (MLflow, ...) is one new class here and one line in ``make_sinks``.

Rows: one per update per seed, with CleanRL's metric names plus ``update``, ``seed`` (the
seed's index in the vmapped batch), ``global_step``, ``charts/SPS`` and ``time``. Non-finite
values (an episodic return in an update where no episode ended) become ``None``.
``global_step`` is ``update * batch_size`` computed here in Python ints: on the device an int32
would wrap negative after 2^31 env steps.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ppo_trainer.app.rundir import RunDir
from ppo_trainer.errors import TrainerError

TIMING_KEYS = ("time", "charts/SPS")  # the only fields that differ between identical runs


class SinkError(TrainerError):
    """A logging backend could not start (e.g. W&B without a login)."""


class Sink(Protocol):
    """A destination for a run's metrics, evaluations and media."""

    def log_rows(self, rows: list[dict[str, Any]]) -> None:
        """Per-update rows of a chunk (one per update per seed)."""

    def log_eval(self, summary: Mapping[str, Any], step: int, final: bool) -> None:
        """A greedy evaluation's summary at env step ``step`` (``final``: the end-of-run one)."""

    def log_media(self, curve: Path | None, gif: Path | None) -> None:
        """The learning-curve PNG and the agent GIF (either may be missing)."""

    def close(self, exit_code: int = 0) -> None:
        """Flush and finish (``exit_code`` != 0: the run failed or was interrupted)."""


def _scalar(value: Any) -> float | int | None:
    arr = np.asarray(value)
    number = arr.item() if arr.size == 1 else float(np.mean(arr))
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return number


def chunk_rows(metrics: Mapping[str, Any], start_update: int, batch_size: int,
               extra: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows for a chunk of metrics shaped ``(num_seeds, n, ...)``: one per update per seed.

    ``update`` is 1-based (updates completed when the row was recorded); ``global_step`` is env
    steps per seed, ``update * batch_size``, as a Python int.
    """
    arrays = {k: np.asarray(v) for k, v in metrics.items()}
    num_seeds, n = next(iter(arrays.values())).shape[:2]
    rows = []
    for i in range(n):
        update = int(start_update) + i + 1
        for seed in range(num_seeds):
            row: dict[str, Any] = {"update": update, "seed": seed,
                                   "global_step": update * int(batch_size)}
            row.update({k: _scalar(v[seed, i]) for k, v in arrays.items()})
            row.update(extra or {})
            rows.append(row)
    return rows


def read_metrics(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def mean_over_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per update: the mean over seeds of every numeric field (``None`` ignored)."""
    by_update: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_update.setdefault(row["update"], []).append(row)
    out = []
    for update in sorted(by_update):
        group = by_update[update]
        merged: dict[str, Any] = {"update": update, "global_step": group[0].get("global_step")}
        for key in group[0]:
            if key in ("update", "seed", "global_step"):
                continue
            values = [r[key] for r in group if isinstance(r.get(key), (int, float))]
            merged[key] = float(np.mean(values)) if values else None
        out.append(merged)
    return out


def eval_scalars(summary: Mapping[str, Any]) -> dict[str, float]:
    """``eval/<key>`` for every scalar number of an evaluation summary."""
    return {f"eval/{k}": float(v) for k, v in summary.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class MetricsFile:
    """``metrics.jsonl`` (append-only), ``evals.jsonl`` and ``eval.json`` in the run directory.

    On resume, rows beyond the checkpoint's update are dropped first (they were written after
    the last checkpoint and will be recomputed).
    """

    def __init__(self, run: RunDir, resume_update: int | None = None) -> None:
        self.run = run
        self.path = run.metrics
        if resume_update is None:
            self.path.write_text("")
        else:
            rows = [r for r in read_metrics(self.path) if r.get("update", 0) <= resume_update]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def log_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        with open(self.path, "a") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")

    def log_eval(self, summary: Mapping[str, Any], step: int, final: bool) -> None:
        if final:
            self.run.eval.write_text(json.dumps(dict(summary), indent=2) + "\n")
        else:
            with open(self.run.evals, "a") as fh:
                fh.write(json.dumps({"global_step": step, **summary}) + "\n")

    def log_media(self, curve: Path | None, gif: Path | None) -> None:
        pass  # the files are already in the run directory

    def close(self, exit_code: int = 0) -> None:
        pass


class WandbSink:
    """Weights & Biases; ``wandb`` is imported only when this is constructed.

    The run lives under ``<run dir>/wandb`` so that in ``WANDB_MODE=offline`` the offline run
    (``wandb/offline-run-*``) sits next to the other outputs, ready for ``wandb sync``. The run id
    is kept in ``<run dir>/wandb_id`` so ``--resume`` continues the same W&B run.
    """

    def __init__(self, run: RunDir, config: Mapping[str, Any], project: str,
                 entity: str | None) -> None:
        import wandb  # seconds to import: only for --wandb

        self._wandb = wandb
        run_id = run.wandb_id.read_text().strip() if run.wandb_id.is_file() else secrets.token_hex(4)
        run.wandb_id.write_text(run_id)
        try:
            self.run = wandb.init(project=project, entity=entity, name=run.path.name, id=run_id,
                                  resume="allow", dir=str(run.path), config=dict(config))
        except Exception as exc:  # no login, no network in online mode, bad entity...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SinkError(f"--wandb: {first} (try WANDB_MODE=offline)") from None

    def log_rows(self, rows: list[dict[str, Any]]) -> None:
        """Per update: the mean over seeds, at ``global_step``."""
        for row in mean_over_seeds(rows):
            data = {k: v for k, v in row.items() if v is not None}
            self.run.log(data, step=int(row["global_step"]))

    def log_eval(self, summary: Mapping[str, Any], step: int, final: bool) -> None:
        if final:
            for key, value in eval_scalars(summary).items():
                self.run.summary[key] = value
        else:
            self.run.log(eval_scalars(summary), step=int(step))

    def log_media(self, curve: Path | None, gif: Path | None) -> None:
        data: dict[str, Any] = {}
        if curve is not None and Path(curve).is_file():
            data["learning_curve"] = self._wandb.Image(str(curve))
        if gif is not None and Path(gif).is_file():
            try:
                data["agent"] = self._wandb.Video(str(gif), format="gif")
            except Exception:  # a wandb without gif video support: still an image
                data["agent"] = self._wandb.Image(str(gif))
        if data:
            self.run.log(data)

    def close(self, exit_code: int = 0) -> None:
        self.run.finish(exit_code=exit_code)


class TensorBoardSink:
    """TensorBoard event files in ``<run dir>/tensorboard`` (tensorboardX: no TensorFlow/torch).

    Scalars use CleanRL's names (``charts/episodic_return``, ``losses/value_loss``,
    ``charts/SPS``, ...) at ``global_step``, averaged over seeds; evaluations as ``eval/<key>``;
    the learning curve as an image.
    """

    def __init__(self, run: RunDir) -> None:
        from tensorboardX import SummaryWriter  # protobuf and more: only for --tensorboard

        self.writer = SummaryWriter(logdir=str(run.tensorboard))

    def log_rows(self, rows: list[dict[str, Any]]) -> None:
        for row in mean_over_seeds(rows):
            step = int(row["global_step"])
            for key, value in row.items():
                if "/" in key and value is not None:
                    self.writer.add_scalar(key, value, step)

    def log_eval(self, summary: Mapping[str, Any], step: int, final: bool) -> None:
        for key, value in eval_scalars(summary).items():
            self.writer.add_scalar(key, value, int(step))

    def log_media(self, curve: Path | None, gif: Path | None) -> None:
        if curve is not None and Path(curve).is_file():
            image = np.asarray(Image.open(curve).convert("RGB"))
            self.writer.add_image("learning_curve", image, dataformats="HWC")

    def close(self, exit_code: int = 0) -> None:
        self.writer.close()


def make_sinks(config: Any, run: RunDir, resume_update: int | None) -> list[Sink]:
    """The sinks a config asks for; the run-directory files always."""
    sinks: list[Sink] = [MetricsFile(run, resume_update)]
    if config.wandb:
        sinks.append(WandbSink(run, config.to_dict(), config.wandb_project, config.wandb_entity))
    if config.tensorboard:
        sinks.append(TensorBoardSink(run))
    return sinks
