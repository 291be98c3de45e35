"""The run directory: every file name in it, its config, and loading a run back.

One place knows the layout, so ``ppo-train``, ``ppo-eval``, the run loop and the sinks agree::

    <run dir>/config.json         resolved config + where each value came from (no paths)
    <run dir>/checkpoint.msgpack  latest RunnerState (+ update index, schedule corners)
    <run dir>/metrics.jsonl       one row per update per seed
    <run dir>/evals.jsonl         periodic greedy evaluations (--eval-freq)
    <run dir>/eval.json           final greedy evaluation
    <run dir>/best_policy.msgpack the best periodic evaluation's policy (--keep-best)
    <run dir>/learning_curve.png  return (and env metrics) vs env steps
    <run dir>/agent.gif           one greedy episode, for envs that render frames
    <run dir>/tensorboard/        event files (--tensorboard)
    <run dir>/wandb/, wandb_id    the W&B run (--wandb) and its id, for --resume

A folder holding ``policy.msgpack`` (``ppo-export``) instead of a checkpoint is a policy
folder: ``ppo-eval`` plays the policy (``ppo_trainer.app.policy``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import TrainerError
from ppo_trainer.version import package_version

# Config fields that hold machine paths: never written to config.json or a policy file.
PATH_FIELDS = ("run_dir", "resume")


class RunDirError(TrainerError):
    """A run directory is missing, incomplete, or already used."""


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory's files (nothing is read or created by constructing it)."""

    path: Path

    config = property(lambda self: self.path / "config.json")
    checkpoint = property(lambda self: self.path / "checkpoint.msgpack")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    evals = property(lambda self: self.path / "evals.jsonl")
    eval = property(lambda self: self.path / "eval.json")
    curve = property(lambda self: self.path / "learning_curve.png")
    gif = property(lambda self: self.path / "agent.gif")
    tensorboard = property(lambda self: self.path / "tensorboard")
    wandb_id = property(lambda self: self.path / "wandb_id")
    policy = property(lambda self: self.path / "policy.msgpack")
    best_policy = property(lambda self: self.path / "best_policy.msgpack")

    def write_config(self, config: TrainConfig, sources: dict[str, str] | None = None) -> None:
        """``config.json``: every field but the paths, the derived sizes, the source of each
        value, and the package version that wrote it (defaults and presets change between
        versions). The paths (``run_dir``, ``resume``) are left out, so a committed record
        carries no machine path: the run directory is wherever the file is, and ``--resume``
        names it anew."""
        data = {k: v for k, v in config.to_dict().items() if k not in PATH_FIELDS}
        sources = {k: v for k, v in sorted((sources or {}).items()) if k not in PATH_FIELDS}
        data.update(batch_size=config.batch_size, minibatch_size=config.minibatch_size,
                    num_updates=config.num_updates, sources=sources, version=package_version())
        self.config.write_text(json.dumps(data, indent=2) + "\n")

    def read_config(self, label: str = "") -> tuple[TrainConfig, dict[str, str]]:
        """The resolved config the run was started with, and where each value came from."""
        where = f"{label}{self.path}"
        if not self.path.is_dir():
            raise RunDirError(f"{where}: no such run directory")
        if not self.config.is_file():
            raise RunDirError(f"{where}: no {self.config.name} in it (not a run directory)")
        try:
            data = json.loads(self.config.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{where}: unreadable {self.config.name} ({exc})") from None
        sources = dict(data.get("sources") or {})
        if sources:  # the file holds no path: the config read back has their defaults
            sources = dict(sorted({**sources, **dict.fromkeys(PATH_FIELDS, "default")}.items()))
        return TrainConfig.from_dict(data), sources

    def require_checkpoint(self) -> Path:
        """The checkpoint file, or a RunDirError saying what is missing."""
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: no such run directory")
        if not self.checkpoint.is_file():
            raise RunDirError(f"{self.path}: no checkpoint ({self.checkpoint.name}) in it yet")
        return self.checkpoint


def default_run_name(config: TrainConfig) -> str:
    """``<env>__<optimizer>__s<seed>__<timestamp>`` (``module:Env`` becomes ``module_Env``)."""
    env = config.env.replace(":", "_").replace("/", "_")
    return f"{env}__{config.optimizer}__s{config.seed}__{datetime.now():%Y%m%d-%H%M%S}"


def run_dir_for(config: TrainConfig) -> RunDir:
    """``--resume`` itself, else ``<run_dir>/<run_name>``, which must not hold a run yet."""
    if config.resume:
        return RunDir(Path(config.resume))
    run = RunDir(Path(config.run_dir) / (config.run_name or default_run_name(config)))
    if run.checkpoint.exists():
        raise RunDirError(f"run directory {run.path} already holds a run; use --resume "
                          f"{run.path} or another --run-name")
    return run
