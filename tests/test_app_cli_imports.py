"""The application CLIs answer --help without importing their heavy dependencies, and the
names that left ``eval_cli`` for that still work for one release, with a FutureWarning."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("jax", "optax", "flax", "gymnax", "matplotlib", "scipy")


@pytest.mark.parametrize("module", ["ppo_trainer.app.eval_cli", "ppo_trainer.app.export_cli",
                                    "ppo_trainer.app.compare.cli", "ppo_trainer.app.suite.cli"])
def test_help_imports_nothing_heavy(module: str) -> None:
    probe = (f"import sys, {module} as c\ntry: c.main(['--help'])\nexcept SystemExit: pass\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "usage:" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(("module", "prog"), [
    ("ppo_trainer.app.train_cli", "ppo-train"), ("ppo_trainer.app.eval_cli", "ppo-eval"),
    ("ppo_trainer.app.export_cli", "ppo-export"), ("ppo_trainer.app.compare.cli", "ppo-compare"),
    ("ppo_trainer.app.suite.cli", "ppo-suite")])
def test_every_cli_prints_the_one_version(module: str, prog: str) -> None:
    """``--version`` answers ``PROG VERSION`` with the version run directories record."""
    from ppo_trainer.version import package_version

    probe = (f"import sys, {module} as c\ntry: c.main(['--version'])\nexcept SystemExit as e: "
             f"print('exit', e.code)\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines == [f"{prog} {package_version()}", "exit 0", "[]"]


def test_moved_eval_cli_names_warn_and_forward() -> None:
    from ppo_trainer.app import eval_cli, evaluate, policy

    with pytest.warns(FutureWarning, match="ppo_trainer.app.policy.load_playable"):
        assert eval_cli.load_playable is policy.load_playable
    with pytest.warns(FutureWarning, match="ppo_trainer.app.evaluate.evaluate_run"):
        assert eval_cli.evaluate_run is evaluate.evaluate_run
    with pytest.warns(FutureWarning, match="ppo_trainer.app.policy.Policy"):
        assert eval_cli.Playable is policy.Policy
    with pytest.raises(AttributeError):
        eval_cli.no_such_name  # noqa: B018
