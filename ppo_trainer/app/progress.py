"""A live progress bar fed from inside the jitted training loop.

``ProgressBar.callback`` is the trainer's ``progress_fn``: it is called through
``jax.debug.callback`` once per update, and once per seed under ``vmap``. It only records the
values (cheap); the bar is redrawn at most every ``min_interval`` seconds, so a fast loop does not
spend its time drawing. Values from several seeds are aggregated by update index.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


class ProgressBar:
    """Steps/s, mean episodic return and the env's own metrics (``charts/<info key>``, e.g.
    Snake's apples); off when stderr is not a terminal."""

    def __init__(
        self,
        total_updates: int,
        start_update: int,
        batch_size: int,
        num_seeds: int,
        extra_keys: tuple[str, ...] = (),
        enabled: bool | None = None,
        min_interval: float = 0.2,
    ) -> None:
        self.total_updates = total_updates
        self.batch_size = batch_size
        self.num_seeds = num_seeds
        self.keys = ("charts/episodic_return", *extra_keys)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.min_interval = min_interval
        self.completed = start_update
        self.calls = 0
        self.redraws = 0
        self._start_update = start_update
        self._t0 = time.perf_counter()
        self._last_draw = 0.0
        self._pending: dict[int, list[tuple[float, ...]]] = {}
        self._latest: tuple[float, ...] = (math.nan,) * len(self.keys)
        self._lock = threading.Lock()
        self._progress: Any = None
        self._task: Any = None

    # --- context manager ---------------------------------------------------------------------
    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]updates"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}"),
                console=Console(stderr=True), auto_refresh=False, transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "train", total=self.total_updates, completed=self.completed, stats="compiling...")
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._draw(force=True)
            self._progress.stop()
            self._progress = None

    def set_keys(self, extra_keys: tuple[str, ...]) -> None:
        """The env metrics to show besides the return (known once the env is built)."""
        with self._lock:
            self.keys = ("charts/episodic_return", *extra_keys)
            self._pending.clear()
            self._latest = (math.nan,) * len(self.keys)

    # --- feeding -----------------------------------------------------------------------------
    def start_at(self, update: int) -> None:
        """The run starts at ``update`` (a resumed run's checkpoint): the bar counts from there,
        and steps/s only the updates done in this process."""
        with self._lock:
            self.completed = self._start_update = update

    def restart_clock(self) -> None:
        """Measure steps/s from now (e.g. after compilation)."""
        with self._lock:
            self._t0 = time.perf_counter()
            self._start_update = self.completed

    def callback(self, update_step: Any, metrics: dict[str, Any]) -> None:
        """``progress_fn(update_step, metrics)``: record, and redraw if enough time has passed."""
        update = int(np.asarray(update_step))  # updates completed (global, from RunnerState)
        values = tuple(float(np.mean(metrics.get(k, math.nan))) for k in self.keys)
        with self._lock:
            self.calls += 1
            seen = self._pending.setdefault(update, [])
            seen.append(values)
            if len(seen) >= self.num_seeds:  # every seed reported this update
                del self._pending[update]
                # an update in which no episode ended keeps the last value (not "nan")
                fresh = (_finite_mean(list(col)) for col in zip(*seen, strict=True))
                self._latest = tuple(new if math.isfinite(new) else old
                                     for new, old in zip(fresh, self._latest, strict=True))
                self.completed = max(self.completed, update)
                for old in [u for u in self._pending if u < update]:
                    del self._pending[old]
        now = time.perf_counter()
        if now - self._last_draw >= self.min_interval:
            self._draw()

    def set_completed(self, update: int) -> None:
        """After a chunk: the authoritative count (also when no callback is installed)."""
        with self._lock:
            self.completed = update
        self._draw(force=True)

    def log(self, message: str) -> None:
        """A line above the bar (or on stderr when there is no bar)."""
        if self._progress is not None:
            self._progress.console.print(message, highlight=False)
        else:
            print(message, file=sys.stderr, flush=True)

    # --- drawing -----------------------------------------------------------------------------
    def stats(self) -> str:
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        sps = (self.completed - self._start_update) * self.batch_size * self.num_seeds / elapsed
        names = ["return"] + [k.split("/", 1)[1] for k in self.keys[1:]]
        return " | ".join([f"{sps:,.0f} steps/s"] + [
            f"{name} {value:.2f}" if math.isfinite(value) else f"{name} n/a"
            for name, value in zip(names, self._latest, strict=True)])

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        if self._progress is not None:
            self.redraws += 1
            self._progress.update(self._task, completed=self.completed, stats=self.stats())
            self._progress.refresh()  # no refresh thread: draw only here, throttled
