"""Test-session settings shared by every test module and the subprocesses they start."""

import os
import tempfile
from pathlib import Path

# One persistent compilation cache for the whole suite and its subprocesses (they inherit the
# environment): the same small programs are compiled by many tests.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "snake_ppo_jax_xla_cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
