"""Where and when a benchmark ran, for its ``--json`` record: the command line, the date, the
hardware (CPU model and core count from ``lscpu``, and the JAX devices) and package versions.
Nothing here names a path on the machine."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("jax", "jaxlib", "flax", "optax", "gymnax", "snake-ppo-jax")


def cpu() -> dict[str, Any]:
    """The CPU's model name and core count (``lscpu``; ``platform`` where it is missing)."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                      if line.startswith("Model name:")), model)
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"cpu": model, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count()}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def command(argv: list[str] | None = None) -> str:
    """The command as a user would type it: ``python benchmarks/NAME.py ARGS``."""
    argv = sys.argv if argv is None else argv
    return "python " + shlex.join([f"benchmarks/{Path(argv[0]).name}", *argv[1:]])


def record(devices: list[str] | None = None) -> dict[str, Any]:
    """The provenance fields every ``--json`` record starts with."""
    return {"command": command(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "hardware": {**cpu(), **({"devices": devices} if devices else {})},
            "versions": versions()}
