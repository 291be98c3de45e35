"""Snake-v0 registration: idempotent on import, and automatic in any process via the .pth hook."""

from __future__ import annotations

import importlib
import os
import site
import subprocess
import sys
from pathlib import Path

import gymnax
import pytest

import snake_gymnax


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (same venv), outside the repo so only installs count."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "JAX_PLATFORMS": "cpu", **env},
    )


REPO = Path(__file__).resolve().parents[1]
HOOK_SOURCE = REPO / "snake_gymnax_autoload.py"


def run_with_source_hook(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` after arming the repository's hook module (not the installed copy).

    The installed ``.pth`` copy is switched off with the opt-out variable, the source file is
    loaded under a private name and armed, then the variable is cleared so ``code`` sees a
    process whose only hook is the one under test.
    """
    preamble = (
        "import importlib.util, os, sys\n"
        f"spec = importlib.util.spec_from_file_location('hook_under_test', {str(HOOK_SOURCE)!r})\n"
        "hook = importlib.util.module_from_spec(spec)\n"
        "del os.environ['SNAKE_GYMNAX_NO_AUTOLOAD']\n"
        "spec.loader.exec_module(hook)\n"
        "assert 'gymnax' not in sys.modules\n"
    )
    return run_python(preamble + code, SNAKE_GYMNAX_NO_AUTOLOAD="1")


def hook_installed() -> bool:
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return any((Path(d) / "snake_gymnax_autoload.pth").exists() for d in dirs)


needs_install = pytest.mark.skipif(
    not hook_installed(),
    reason="package not installed (pip install -e .): the auto-registration .pth is absent",
)


def test_import_registers_once_and_reload_is_harmless():
    assert gymnax.registered_envs.count("Snake-v0") == 1
    importlib.reload(snake_gymnax)
    importlib.import_module("snake_gymnax")
    snake_gymnax._register()
    assert gymnax.registered_envs.count("Snake-v0") == 1


def test_make_with_board_size():
    env, params = gymnax.make("Snake-v0", width=12, height=9)
    assert isinstance(env, snake_gymnax.Snake)
    assert (env.width, env.height, env.obs_shape) == (12, 9, (9, 12, 3))
    assert params == env.default_params
    env, _ = gymnax.make("Snake-v0")
    assert (env.width, env.height) == (10, 10)


@needs_install
def test_fresh_process_make_without_importing_snake_gymnax():
    result = run_python(
        "import sys, gymnax, jax\n"
        "env, p = gymnax.make('Snake-v0', width=12, height=12)\n"
        "obs, state = env.reset(jax.random.key(0), p)\n"
        "print(type(env).__module__, obs.shape, gymnax.registered_envs.count('Snake-v0'))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["snake_gymnax.env", "(12,", "12,", "3)", "1"]


@needs_install
def test_start_up_does_not_import_jax():
    result = run_python("import sys; print('jax' in sys.modules, 'gymnax' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False"


@needs_install
def test_explicit_import_first_then_gymnax_and_hook_failure_is_only_a_warning():
    # Importing snake_gymnax first (it imports gymnax, which fires the hook mid-import) works.
    result = run_python(
        "import snake_gymnax, gymnax; print(gymnax.registered_envs.count('Snake-v0'))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    # If snake_gymnax cannot be imported, `import gymnax` still works and only warns.
    result = run_python(
        "import sys; sys.modules['snake_gymnax'] = None\n"
        "import gymnax; print('Snake-v0' in gymnax.registered_envs)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert "could not register Snake-v0" in result.stderr


@needs_install
def test_opt_out_environment_variable():
    result = run_python(
        "import gymnax; print('Snake-v0' in gymnax.registered_envs)",
        SNAKE_GYMNAX_NO_AUTOLOAD="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


FIND_SPEC_FIRST = (
    "import importlib.util, sys\n"
    "assert importlib.util.find_spec('gymnax') is not None  # the optional-dependency probe\n"
    "assert importlib.util.find_spec('gymnax') is not None  # twice, for good measure\n"
    "import gymnax\n"
    "armed = [f for f in sys.meta_path if type(f).__name__ == '_GymnaxImportHook']\n"
    "print('Snake-v0' in gymnax.registered_envs, len(armed))\n"
)


def test_find_spec_probe_before_import_still_registers():
    """``find_spec("gymnax")`` must not disarm the hook; it disarms once gymnax has executed."""
    result = run_with_source_hook(FIND_SPEC_FIRST)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "0"]


def test_source_hook_plain_import_registers_and_skips_other_modules():
    result = run_with_source_hook(
        "import json, gymnax\n"
        "armed = [f for f in sys.meta_path if type(f).__name__ == '_GymnaxImportHook']\n"
        "print(gymnax.registered_envs.count('Snake-v0'), len(armed))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "0"]


@needs_install
def test_installed_hook_find_spec_probe_then_import():
    result = run_python(FIND_SPEC_FIRST)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "0"]


@needs_install
def test_installed_hook_is_the_source_hook():
    """An editable install copies the hook: a stale copy means re-running ``pip install -e .``."""
    result = run_python("import snake_gymnax_autoload as m; print(m.__file__)")
    assert result.returncode == 0, result.stderr
    installed = Path(result.stdout.strip())
    assert installed.read_text() == HOOK_SOURCE.read_text(), (
        f"{installed} differs from {HOOK_SOURCE}: re-run `pip install -e .`"
    )
