"""Keep XLA:CPU from deadlocking on the trainer's vmapped, nested-scan programs.

On this project's 2-core CPU machines (jax/jaxlib 0.10.2) the multi-threaded Eigen intra-op pool
of XLA:CPU intermittently wedges: every worker thread parks waiting for work while the caller
waits forever in ``BlockUntilReady`` (seen in a vmapped CartPole training run and in MinAtar
runs; gdb showed all pool threads idle in ``Eigen::EventCount::CommitWait``). Other projects
report the same wedge on vmap graphs and the same cure (PyAutoFit issues 1528/1530). Turning the
Eigen pool off costs nothing measurable here (``benchmarks/bench_train.py --quick``: 53.0k vs
53.5k steps/s for CartPole, 37k vs 41k for Snake). XLA reads ``XLA_FLAGS`` when its CPU backend
starts, so this must run before the first computation; importing ``ppo_trainer`` does it.
Set ``PPO_TRAINER_KEEP_XLA_FLAGS=1`` to leave ``XLA_FLAGS`` alone.
"""

from __future__ import annotations

import os

WORKAROUND_FLAG = "--xla_cpu_multi_thread_eigen=false"


def configure_xla_cpu() -> None:
    """Add the workaround flag to ``XLA_FLAGS`` unless the user decided that flag already."""
    if os.environ.get("PPO_TRAINER_KEEP_XLA_FLAGS"):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {WORKAROUND_FLAG}".strip()
