"""Checkpoint files: the latest ``RunnerState`` of a run, written atomically.

A file holds ``{"runner_state", "update", "meta"}`` serialized with ``flax.serialization``
(``meta``: JSON, e.g. the config and the learning-rate schedule's corners). It is written to a
temporary file, fsynced and renamed, so a crash mid-write never leaves a broken checkpoint: the
previous one stays until the new one is complete. Where the file lives is the run directory's
business (``ppo_trainer.app.rundir``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from ppo_trainer.errors import TrainerError


class CheckpointError(TrainerError):
    """A checkpoint file is missing, unreadable, or does not fit the run's config."""


@dataclass
class Checkpoint:
    """A restored checkpoint: the state (shaped like the template), its update index, its meta."""

    runner_state: Any
    update: int
    meta: dict[str, Any]


def save_checkpoint(path: Path, runner_state: Any, update: int, meta: dict[str, Any]) -> Path:
    """Write the state atomically (tmp file, fsync, rename) and return ``path``."""
    payload = {
        "runner_state": serialization.to_state_dict(jax.device_get(runner_state)),
        "update": int(update),
        "meta": json.dumps(meta),
    }
    return write_atomic(path, serialization.msgpack_serialize(payload))


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to a tmp file beside ``path``, fsync, rename: a crash mid-write never
    leaves a broken file (the previous one stays until the new one is complete)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path, template: Any) -> Checkpoint:
    """Restore into the structure of ``template`` (e.g. ``jax.eval_shape`` of the init)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
        state = serialization.from_state_dict(
            template, _with_empty_fields(template, payload["runner_state"]))
    except Exception as exc:  # corrupt file or a state that does not fit the config
        raise CheckpointError(f"{path}: cannot restore checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    misfit = first_misfit(template, state)
    if misfit:
        raise CheckpointError(f"{path}: checkpoint leaf {misfit[0]} has shape {misfit[1]}, the "
                              f"config expects {misfit[2]} (a shape-changing flag differs)")
    state = jax.tree_util.tree_map(jnp.asarray, state)
    meta = json.loads(payload.get("meta") or payload.get("config") or "{}")
    return Checkpoint(state, int(payload["update"]), meta)


def _with_empty_fields(template: Any, state_dict: Any) -> Any:
    """``state_dict`` with the template's leafless fields it lacks filled in: a checkpoint
    written before a field existed (a feed-forward run's ``carry``, ``{}``) still loads."""
    if not (isinstance(template, tuple) and hasattr(template, "_fields")
            and isinstance(state_dict, dict)):
        return state_dict
    missing = {name: serialization.to_state_dict(getattr(template, name))
               for name in template._fields
               if name not in state_dict and not jax.tree_util.tree_leaves(getattr(template, name))}
    return {**state_dict, **missing}


def first_misfit(template: Any, tree: Any, expected: Callable[[Any], tuple[int, ...]] = np.shape
                 ) -> tuple[str, tuple[int, ...], tuple[int, ...]] | None:
    """The first leaf of ``tree`` whose shape is not ``expected(template's leaf)``, as ``(path,
    shape, expected shape)``; None when every leaf fits. A restored tree takes its structure from
    the template, but not its shapes: this check is what says which flag changed them."""
    for (key, want), got in zip(jax.tree_util.tree_leaves_with_path(template),
                                jax.tree_util.tree_leaves(tree), strict=True):
        if np.shape(got) != tuple(expected(want)):
            return jax.tree_util.keystr(key), np.shape(got), tuple(expected(want))
    return None
