"""Checkpoints: one msgpack file per run directory holding the latest RunnerState.

The file holds ``{"runner_state", "update", "config"}`` serialised with ``flax.serialization``.
It is written to a temporary file and renamed, so a crash mid-write never leaves a broken
checkpoint: the previous one stays until the new one is complete. Only the latest is kept.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppo_trainer.errors import CLIError

CHECKPOINT_NAME = "checkpoint.msgpack"


@dataclass
class Checkpoint:
    """A restored checkpoint: the state (shaped like the template), its update index, its config."""

    runner_state: Any
    update: int
    config: dict[str, Any]


def checkpoint_path(run_path: Path) -> Path:
    return Path(run_path) / CHECKPOINT_NAME


def require_checkpoint(run_path: Path) -> Path:
    """The checkpoint file of a run directory, or a CLIError saying what is missing."""
    run_path = Path(run_path)
    if not run_path.is_dir():
        raise CLIError(f"{run_path}: no such run directory")
    path = checkpoint_path(run_path)
    if not path.is_file():
        raise CLIError(f"{run_path}: no checkpoint ({CHECKPOINT_NAME}) in it yet")
    return path


def save_checkpoint(run_path: Path, runner_state: Any, update: int, config: dict[str, Any]) -> Path:
    """Write the state atomically (tmp file, fsync, rename) and return the checkpoint path."""
    import jax
    from flax import serialization

    payload = {
        "runner_state": serialization.to_state_dict(jax.device_get(runner_state)),
        "update": int(update),
        "config": json.dumps(config),
    }
    path = checkpoint_path(run_path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(serialization.msgpack_serialize(payload))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(run_path: Path, template: Any) -> Checkpoint:
    """Restore into the structure of ``template`` (e.g. a freshly initialised RunnerState)."""
    import jax.numpy as jnp
    from flax import serialization

    path = require_checkpoint(run_path)
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
        state = serialization.from_state_dict(template, payload["runner_state"])
    except Exception as exc:  # corrupt file or a state that does not fit the config
        raise CLIError(f"{path}: cannot restore checkpoint ({type(exc).__name__}: {exc})") from None
    _check_shapes(template, state, path)
    import jax

    state = jax.tree_util.tree_map(jnp.asarray, state)
    return Checkpoint(state, int(payload["update"]), json.loads(payload["config"]))


def _check_shapes(template: Any, state: Any, path: Path) -> None:
    import jax
    import numpy as np

    for (key, want), got in zip(
        jax.tree_util.tree_leaves_with_path(template), jax.tree_util.tree_leaves(state), strict=True
    ):
        if np.shape(want) != np.shape(got):
            raise CLIError(
                f"{path}: checkpoint leaf {jax.tree_util.keystr(key)} has shape {np.shape(got)}, "
                f"the config expects {np.shape(want)} (a shape-changing flag differs)")
