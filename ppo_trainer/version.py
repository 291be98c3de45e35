"""The package version, read from one place: ``pyproject.toml``'s ``[project] version``.

Run from a source tree (a checkout, or an editable install of one), the tree's own
``pyproject.toml`` is read, since an editable install's metadata keeps the version it was
installed with; installed from a wheel, the distribution's metadata (written from the same
field) is. jax-free, so ``ppo-train --version`` answers fast.
"""

from __future__ import annotations

import importlib.metadata
import sys
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DISTRIBUTION = "snake-ppo-jax"
"""Our distribution's name, as in ``pyproject.toml``."""


def source_tree_version(root: Path | None = None) -> str | None:
    """``[project] version`` of ``root/pyproject.toml`` (default: the tree this package is in),
    or ``None`` if there is none or it belongs to another project."""
    path = (root or Path(__file__).resolve().parents[1]) / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (OSError, ValueError):
        return None
    if project.get("name") != DISTRIBUTION or not isinstance(project.get("version"), str):
        return None
    return project["version"]


@cache
def package_version() -> str:
    """The version of the running code: the source tree's, else the installed metadata's."""
    found = source_tree_version()
    if found is not None:
        return found
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
