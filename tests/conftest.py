"""Test-session settings shared by every test module and the subprocesses they start."""

import os
import tempfile
from pathlib import Path

from ppo_trainer.xla_cpu import configure_xla_cpu

# Before any test initialises the XLA CPU backend (see ppo_trainer/xla_cpu.py); subprocesses
# inherit the environment.
configure_xla_cpu()
# One persistent compilation cache for the whole suite and its subprocesses: the same small
# programs are compiled by many tests.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "snake_ppo_jax_xla_cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
