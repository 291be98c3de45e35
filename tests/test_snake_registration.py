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
