"""Data-parallel training over many devices (and hosts) with JAX's own SPMD machinery (GSPMD).

Design. One run is one jitted program over a 1-D device mesh whose only axis, ``"envs"``,
splits the environments: each device steps ``num_envs / D`` environments and runs the network
on them. Nothing else in ``ppo.py`` changes; the sharding is declared, and XLA's SPMD partitioner
(GSPMD) writes the communication:

- ``RunnerState`` is placed with :func:`state_shardings`: ``env_state``, ``last_obs``, a
  recurrent policy's ``carry`` and each env's running return (reward scaling) are sharded on their env axis (the axis after the seed
  axis, ``P(None, "envs")``); ``params``, ``opt_state`` (Muon momentum included), the
  normalization statistics, ``rng`` and the step counters are replicated (``P()``). Means over
  the env axis (normalization statistics, advantage normalization) are global-batch means.
  ``jit(vmap(run))`` gets the same in/out shardings, so a chunk's output feeds the next chunk's
  compiled program unchanged, and a replicated update keeps parameters identical everywhere.
- Inside an update, ``Trainer`` puts ``with_sharding_constraint`` on the env-batched arrays
  (observations, env states, step keys, the trajectory ``(num_steps, num_envs, ...)``) so env
  stepping, the rollout's forward passes and GAE stay local to each device, and on each minibatch
  ``(num_minibatches, minibatch_size, ...)`` so the loss's forward/backward pass is split over
  the devices too. The loss is a mean over the global minibatch (so are the advantage
  normalisation statistics), so its gradient becomes an all-reduce: every device applies the same
  averaged gradient, exactly as one device would.
- Under ``vmap`` over seeds the constraints' seed axis is left unconstrained by JAX's batching
  rule and pinned to ``None`` (replicated) by the jit boundary: seeds and devices compose, each
  device holds ``num_envs / D`` environments of every seed.

Why GSPMD and not ``shard_map`` with hand-written ``pmean``: the program stays the 1-device
program, so training on D devices gives the same learning curve as 1 device with the same global
batch and seed, up to floating-point reassociation in the reductions (tested). The price is the
minibatch shuffle: one *global* permutation of the whole batch per epoch, as on one device, so
XLA all-gathers the flattened ``num_envs x num_steps`` batch once per update (seen in the
compiled HLO: the rollout itself has no collectives; each update has these all-gathers, and
each minibatch step one fused all-reduce of the gradients plus small ones for the loss
statistics). A device-local shuffle would avoid the gather but change the sampled minibatches,
and so the results, with the device count; for PPO's small observations the gather is cheap
next to the environment steps. With one device no mesh is
built and nothing is constrained: the single-device program is exactly the old one.

Multi-host: :func:`initialize_distributed` (``ppo-train --distributed``) calls
``jax.distributed.initialize`` before any computation; afterwards ``jax.devices()`` lists every
device of every process, the mesh spans them all, and each process feeds and steps only its own
shard. :func:`to_host` gathers a (sharded) state to every host before a checkpoint is written.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ppo_trainer.errors import ConfigError

AXIS = "envs"
_INITIALIZED = False


def initialize_distributed() -> dict[str, int]:
    """``jax.distributed.initialize()`` with the settings from the environment; call it first.

    JAX itself reads ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0) and
    ``JAX_LOCAL_DEVICE_IDS``, and auto-detects SLURM, Open MPI and Cloud TPU; this adds
    ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` for plain launchers (ssh, torchrun-style scripts).
    Returns ``{"process_index", "process_count"}``.
    """
    global _INITIALIZED
    if not _INITIALIZED:  # idempotent: the CLI calls it before validating, the run loop again
        kwargs: dict[str, Any] = {}
        for env_name, arg in (("JAX_NUM_PROCESSES", "num_processes"),
                              ("JAX_PROCESS_ID", "process_id")):
            if os.environ.get(env_name):
                kwargs[arg] = int(os.environ[env_name])
        try:
            jax.distributed.initialize(**kwargs)
        except (ValueError, RuntimeError) as exc:  # no coordinator given or reachable
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--distributed: jax.distributed.initialize failed ({first}); set "
                              "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID, "
                              "or start under SLURM / Open MPI") from None
        _INITIALIZED = True
    return {"process_index": jax.process_index(), "process_count": jax.process_count()}


def select_devices(requested: int | None, devices: Sequence[Any] | None = None,
                   process_count: int | None = None) -> list[Any]:
    """The devices a run uses: all of them for ``None``/0, else ``requested`` of them.

    ``devices`` defaults to ``jax.devices()``: the GLOBAL list (every process's devices after
    ``jax.distributed.initialize``). With several processes, ``requested`` must divide by the
    process count and takes the same number of devices from each process (every process must
    own a shard). Raises ``ValueError`` with a one-line message.
    """
    devices = list(jax.devices() if devices is None else devices)
    if process_count is None:
        process_count = len({d.process_index for d in devices})
    if not requested:
        return devices
    if requested < 0:
        raise ValueError(f"--devices must be >= 0 (0: all), got {requested}")
    if requested > len(devices):
        raise ValueError(f"--devices {requested} but only {len(devices)} device(s) are visible "
                         f"({devices[0].platform})")
    if process_count == 1:
        return devices[:requested]
    if requested % process_count:
        raise ValueError(f"--devices {requested} must divide by the process count {process_count} "
                         "(each process needs the same number of devices)")
    per = requested // process_count
    chosen: list[Any] = []
    for p in sorted({d.process_index for d in devices}):
        local = [d for d in devices if d.process_index == p]
        if len(local) < per:
            raise ValueError(f"--devices {requested} needs {per} devices on each process; "
                             f"process {p} has {len(local)}")
        chosen += local[:per]
    return chosen


def make_mesh(devices: Sequence[Any]) -> Mesh:
    """A 1-D mesh over ``devices`` with the single axis ``"envs"``."""
    return Mesh(np.asarray(list(devices)), (AXIS,))


def check_divisible(num_envs: int, num_devices: int) -> None:
    """Deprecated (goes in the next release): ``TrainConfig.check_devices`` is the one
    device-divisibility rule. One-line ValueError when ``num_envs`` does not split evenly."""
    warnings.warn("ppo_trainer.parallel.check_divisible is deprecated; use "
                  "TrainConfig.check_devices(device_count)", FutureWarning, stacklevel=2)
    if num_envs % num_devices:
        raise ValueError(f"--num-envs {num_envs} must divide by the device count {num_devices} "
                         f"(use --devices to pick fewer devices, or a multiple of {num_devices} envs)")


def state_shardings(mesh: Mesh, state: Any, *, seed_axis: bool = True) -> Any:
    """NamedShardings for a RunnerState (or its shape template): env axis sharded, rest replicated.

    ``seed_axis``: the state has a leading vmapped seed axis (as in the CLI), so the env axis is
    axis 1; otherwise axis 0.
    """
    whole = replicated(mesh)
    env = NamedSharding(mesh, P(None, AXIS) if seed_axis else P(AXIS))
    return type(state)(
        params=jax.tree.map(lambda _: whole, state.params),
        opt_state=jax.tree.map(lambda _: whole, state.opt_state),
        env_state=jax.tree.map(lambda _: env, state.env_state),
        last_obs=env,
        norm=type(state.norm)(  # statistics replicated, each env's running return sharded
            obs=jax.tree.map(lambda _: whole, state.norm.obs),
            ret=jax.tree.map(lambda _: whole, state.norm.ret),
            returns=env,
        ),
        rng=whole,
        update_step=whole,
        opt_step=whole,
        carry=jax.tree.map(lambda _: env, state.carry),  # a recurrent policy's, per env
        ema=jax.tree.map(lambda _: whole, state.ema),
    )


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of a value every device holds whole (metrics, parameters)."""
    return NamedSharding(mesh, P())


def jit_trainer(trainer: Any, keys: jax.Array, num_updates: int,
                mesh: Mesh | None = None) -> tuple[Any, Any]:
    """``(state, run)`` for a ``Trainer`` outside the CLI: ``vmap(trainer.init)(keys)`` placed
    for ``mesh`` (env axis split, the rest replicated) and the jitted, seed-vmapped
    ``run(state) -> (state, metrics)`` of ``num_updates`` updates with the same shardings in
    and out, so its output feeds it again. Without a mesh: plain ``jit``, one device."""
    init = jax.vmap(trainer.init)
    run = jax.vmap(lambda state: trainer.run(state, num_updates))
    if mesh is None:
        return jax.jit(init)(keys), jax.jit(run)
    sh = state_shardings(mesh, jax.eval_shape(init, keys))
    return (jax.jit(init, out_shardings=sh)(keys),
            jax.jit(run, in_shardings=(sh,), out_shardings=(sh, replicated(mesh))))


def shard(tree: Any, shardings: Any) -> Any:
    """Place host arrays (identical on every process) with ``shardings``; works multi-host."""
    def put(x: Any, sharding: Any) -> Any:
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree, shardings)


def to_host(tree: Any) -> Any:
    """Numpy copies of (possibly sharded, possibly multi-host) arrays, complete on every host.

    Single process: ``jax.device_get``. Several processes: replicated arrays are read from a
    local shard; sharded ones are gathered with ``multihost_utils.process_allgather`` (a
    collective: every process must call this at the same point).
    """

    def get(x: Any) -> Any:
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return np.asarray(jax.device_get(x))
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(get, tree)


def any_process(*flags: bool) -> tuple[bool, ...]:
    """Each flag true on every process if it is true on any (a collective: all processes call
    it, with the same number of flags).

    The run loop uses it after each chunk so that a Ctrl-C (or a scheduler's signal) reaching the
    processes in different chunks, or a failure on process 0, stops all of them after the same
    chunk.
    """
    if jax.process_count() == 1:
        return tuple(bool(f) for f in flags)
    gathered = np.asarray(multihost_utils.process_allgather(np.asarray(flags, dtype=bool)))
    return tuple(bool(x) for x in gathered.reshape(-1, len(flags)).any(axis=0))


def same_on_every_process(text: str, size: int = 256) -> str:
    """Process 0's ``text`` (at most ``size`` UTF-8 bytes) on every process; a collective.

    For values each process would otherwise compute for itself, such as a run name made from
    the clock.
    """
    if jax.process_count() == 1:
        return text
    data = np.frombuffer(text.encode().ljust(size, b"\0")[:size], np.uint8)
    return bytes(np.asarray(multihost_utils.broadcast_one_to_all(data))).rstrip(b"\0").decode()


def describe(devices: Sequence[Any], num_envs: int) -> str:
    """One status line: device count, kind, processes, envs per device."""
    d = devices[0]
    procs = jax.process_count()
    text = f"{len(devices)} device(s): {d.platform} ({d.device_kind})"
    if procs > 1:
        text += f" across {procs} processes (this is process {jax.process_index()})"
    return text + f"; {num_envs // len(devices)} env(s) per device"
