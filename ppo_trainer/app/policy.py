"""Policy files: what it takes to act, without what it takes to train.

A training checkpoint (``checkpoint.msgpack``) holds the whole ``RunnerState``: optimizer
moments, every environment's state, the random keys. A policy file (``ppo-export RUN_DIR OUT``)
keeps only the network parameters, the observation statistics the network was trained to see,
and the run's config (without its machine paths), so a trained agent can be shipped and played
(``ppo-eval``, its GIF) in a fraction of the size. Same serialization as the checkpoint
(``flax.serialization`` msgpack), written atomically, told apart by its ``format`` marker::

    {"format": "ppo-trainer/policy", "version": 1,
     "params": ..., "obs_norm": ...,      # leading axis: the seeds kept
     "meta": JSON {"config", "seeds", "update", "package", "package_version"}}

``ppo-export --dtype float16`` stores the network's weights at half precision (half the
file; ``meta["dtype"]`` says so; the observation statistics stay float32) and loading casts
them back to the network's own dtype, so the network computes as trained, with its weights
rounded once.

``seeds`` are the indices of the kept seeds among the run's ``num_seeds``, so an evaluation of
the file plays the same games as the run's own evaluation of those seeds. :func:`load_playable`
reads either kind (a policy file or a run directory's last checkpoint) into one :class:`Policy`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import serialization

from ppo_trainer.app.build import Setup, build
from ppo_trainer.app.checkpoint import first_misfit, load_checkpoint, write_atomic
from ppo_trainer.app.rundir import PATH_FIELDS, RunDir, RunDirError
from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import TrainerError
from ppo_trainer.version import DISTRIBUTION, package_version

FORMAT = "ppo-trainer/policy"
VERSION = 1
PACKAGE = DISTRIBUTION
DTYPES = ("float32", "float16")  # how a policy file may store its floating-point leaves


@dataclass
class LoadedRun:
    """A run read back from its directory: config, built objects, last checkpoint."""

    config: TrainConfig
    setup: Setup
    runner_state: Any
    update: int
    meta: dict[str, Any]


def load_run(path: Path, label: str = "") -> LoadedRun:
    """A finished or interrupted run's config and last checkpoint (``ppo-eval``)."""
    run = RunDir(Path(path))
    config, _ = run.read_config(label)
    run.require_checkpoint()
    setup = build(config.replace(resume=None))
    ckpt = load_checkpoint(run.checkpoint, setup.state_template())
    return LoadedRun(config, setup, ckpt.runner_state, ckpt.update, ckpt.meta)



class PolicyFileError(TrainerError):
    """A policy file is missing, not a policy file, or does not fit its own config."""


@dataclass
class Policy:
    """A policy read back, from a policy file or a run's last checkpoint: its config and built
    objects, and per kept seed its parameters and observation statistics (``norm``: a full
    ``NormState``; a policy file stores only ``norm.obs``, the return statistics, which acting
    never reads, are then zeros); which of the run's seeds they are, the update, the file's
    metadata, its ``source`` and where its GIF goes by default."""

    config: TrainConfig
    setup: Setup
    params: Any
    norm: Any
    seeds: tuple[int, ...]
    update: int
    meta: dict[str, Any]
    source: str = "policy file"  # or "checkpoint"
    gif: Path | None = None


def export_policy(run_dir: Path, out: Path, seeds: Sequence[int] | None = None,
                  dtype: str = "float32") -> Policy:
    """Write the policy of a run's last checkpoint to ``out`` (``seeds``: the seed indices to
    keep, default all; ``dtype``: one of ``DTYPES``, how its floats are stored) and return it
    as ``load_policy`` would read it back."""
    if dtype not in DTYPES:
        raise PolicyFileError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    loaded = load_run(Path(run_dir))
    num_seeds = loaded.config.num_seeds
    kept = tuple(range(num_seeds)) if seeds is None else tuple(int(s) for s in seeds)
    if not kept or len(set(kept)) != len(kept) or not all(0 <= s < num_seeds for s in kept):
        raise PolicyFileError(f"--seed-index must name distinct seeds in 0..{num_seeds - 1} "
                              f"(the run has {num_seeds}), got {list(kept)}")
    index = jnp.asarray(kept, jnp.int32)
    state = jax.device_get(jax.tree_util.tree_map(lambda x: x[index], loaded.runner_state))
    params, extra = state.policy_params, None
    if dtype != "float32":  # the weights only: the observation statistics' count overflows it
        params = jax.tree_util.tree_map(
            lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, params)
        extra = {"dtype": dtype}
    write_policy(Path(out), params, state.norm.obs, loaded.config, kept, loaded.update, extra)
    return load_policy(Path(out))


def write_policy(out: Path, params: Any, obs_norm: Any, config: TrainConfig,
                 seeds: Sequence[int], update: int, extra: dict[str, Any] | None = None) -> None:
    """Write a policy file: ``params``/``obs_norm`` with a leading axis over ``seeds`` (the
    kept seed indices), the config without its paths; ``extra`` joins the metadata (e.g. the
    evaluation that picked a ``--keep-best`` policy)."""
    config_dict = {k: v for k, v in config.to_dict().items() if k not in PATH_FIELDS}
    meta = {"config": config_dict, "seeds": [int(s) for s in seeds], "update": int(update),
            "package": PACKAGE, "package_version": package_version(), **(extra or {})}
    payload = {"format": FORMAT, "version": VERSION,
               "params": serialization.to_state_dict(jax.device_get(params)),
               "obs_norm": serialization.to_state_dict(jax.device_get(obs_norm)),
               "meta": json.dumps(meta)}
    write_atomic(out, serialization.msgpack_serialize(payload))


def read_meta(path: Path) -> dict[str, Any]:
    """A policy file's metadata alone, without building its network."""
    path = Path(path)
    try:
        return json.loads(read_payload(path)["meta"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyFileError(f"{path}: unreadable policy metadata ({type(exc).__name__})") from None


def read_payload(path: Path) -> dict[str, Any]:
    """The raw contents of a policy file, or a one-line error saying what the file is instead."""
    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"{path}: no such policy file")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except Exception:
        payload = None
    if isinstance(payload, dict) and "runner_state" in payload:
        raise PolicyFileError(f"{path}: a full training checkpoint, not a policy file (pass its "
                              "run directory, or make a policy file with ppo-export)")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PolicyFileError(f"{path}: not a policy file (no '{FORMAT}' marker)")
    if int(payload.get("version", 0)) > VERSION:
        raise PolicyFileError(f"{path}: policy file version {payload['version']} is newer than "
                              f"this ppo_trainer reads ({VERSION}); upgrade it")
    return payload


def load_policy(path: Path) -> Policy:
    """Read a policy file and build what playing it needs (env, network) from its config."""
    path = Path(path)
    payload = read_payload(path)
    try:
        meta = json.loads(payload["meta"])
        config = TrainConfig.from_dict(meta["config"])
        seeds = tuple(int(s) for s in meta["seeds"])
        update = int(meta["update"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyFileError(f"{path}: unreadable policy metadata ({type(exc).__name__})") from None
    setup = build(config)
    template = setup.state_template()
    try:
        params = serialization.from_state_dict(template.params, payload["params"])
        obs = serialization.from_state_dict(template.norm.obs, payload["obs_norm"])
    except Exception as exc:  # a tree that is not this config's network
        raise PolicyFileError(f"{path}: parameters do not fit the file's config "
                              f"({type(exc).__name__})") from None
    misfit = first_misfit((template.params, template.norm.obs), (params, obs),
                          lambda want: (len(seeds), *want.shape[1:]))
    if misfit:
        raise PolicyFileError(f"{path}: leaf {misfit[0]} has shape {misfit[1]}, the config "
                              f"expects {misfit[2]}")
    # as the network's own dtype: a half-precision file's leaves come back widened
    params, obs = jax.tree_util.tree_map(lambda want, got: jnp.asarray(got, want.dtype),
                                         (template.params, template.norm.obs), (params, obs))
    norm = jax.tree_util.tree_map(lambda t: jnp.zeros((len(seeds), *t.shape[1:]), t.dtype),
                                  template.norm)._replace(obs=obs)
    return Policy(config, setup, params, norm, seeds, update, meta, "policy file",
                  path.with_suffix(".gif"))


def load_playable(path: Path) -> Policy:
    """Read ``path`` as ``ppo-eval PATH`` does: a file -> a policy file; a directory holding
    ``checkpoint.msgpack`` -> a run directory; a directory holding ``policy.msgpack`` and no
    checkpoint -> that policy file; anything else -> the run directory's own errors."""
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path}: no such run directory or policy file")
    run = RunDir(path)
    policy_file = path if path.is_file() else (
        run.policy if path.is_dir() and not run.checkpoint.is_file() and run.policy.is_file()
        else None)
    if policy_file is not None:
        return load_policy(policy_file)
    loaded = load_run(path)
    state = loaded.runner_state
    return Policy(loaded.config, loaded.setup, state.policy_params, state.norm,
                  tuple(range(loaded.config.num_seeds)), loaded.update, loaded.meta, "checkpoint",
                  run.gif)
