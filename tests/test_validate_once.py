"""Validate once, build once: a ``ppo-train`` run checks its config exactly once and builds its
env, optimizer and trainer exactly once, a resume whose schedule corners change included (it
reads them from the checkpoint before the build instead of building twice)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flax import serialization

from ppo_trainer import optim
from ppo_trainer.app import build as build_module
from ppo_trainer.app import runner
from ppo_trainer.app import train_cli as cli
from ppo_trainer.app.sinks import read_metrics
from ppo_trainer.config import TrainConfig

BASE = ["--env", "CartPole-v1", "--optimizer", "adam", "--num-envs", "4", "--num-steps", "16",
        "--num-minibatches", "2", "--update-epochs", "1", "--hidden-size", "16",
        "--num-hidden-layers", "1", "--save-freq", "2", "--eval-episodes", "4", "--lr", "0.01"]


@pytest.fixture
def calls(monkeypatch) -> dict[str, int]:
    """Counts of config validations, builds and optimizer constructions in this test."""
    counts = {"validate": 0, "build": 0, "optimizer": 0}

    def counted(key: str, fn):
        def wrapper(*args, **kwargs):
            counts[key] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(TrainConfig, "validate", counted("validate", TrainConfig.validate))
    monkeypatch.setattr(runner, "build", counted("build", runner.build))
    monkeypatch.setattr(optim, "make_optimizer", counted("optimizer", optim.make_optimizer))
    return counts


def test_a_run_and_its_resume_with_a_new_budget_check_and_build_once(tmp_path: Path,
                                                                    calls) -> None:
    run = tmp_path / "run"
    argv = [*BASE, "--total-timesteps", "128", "--run-dir", str(tmp_path), "--run-name", "run"]
    assert cli.main(argv) == 0
    assert calls == {"validate": 1, "build": 1, "optimizer": 1}

    calls.update(validate=0, build=0, optimizer=0)
    assert cli.main(["--resume", str(run), "--total-timesteps", "256"]) == 0
    assert calls == {"validate": 1, "build": 1, "optimizer": 1}
    # the corners did change (the case that used to build a second time), and the one build
    # used them: the finished schedule (0 at step 3) restarts at step 4 from 1 - 4/7, down to 0
    # at the new last step 7
    payload = serialization.msgpack_restore((run / "checkpoint.msgpack").read_bytes())
    knots = tuple(tuple(k) for k in json.loads(payload["meta"])["knots"])
    config = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert knots != optim.schedule_knots(config) and knots[-1] == (7, 0.0)
    lrs = [r["charts/learning_rate"] for r in read_metrics(run / "metrics.jsonl")]
    assert lrs == pytest.approx([0.01, 0.01 / 3, 0.01 * 3 / 7, 0.01 / 7], rel=1e-5)


def test_train_checks_a_plain_config_once_and_trusts_a_checked_one(tmp_path: Path,
                                                                   calls) -> None:
    """The library entry ``runner.train`` checks what it is given, unless it is checked."""
    config = cli.parse_args([*BASE, "--total-timesteps", "64", "--run-dir", str(tmp_path),
                             "--run-name", "plain"]).config
    assert not build_module.is_checked(config)
    runner.train(config, progress=False, log=lambda line: None)
    assert calls["validate"] == 1 and calls["build"] == 1

    checked = runner.start(config.replace(run_name="checked"))
    assert build_module.is_checked(checked) and calls["validate"] == 2
    assert runner.start(checked) is checked and build_module.check(checked) is checked
    assert not build_module.is_checked(checked.replace(seed=1))  # a changed copy is not
    runner.train(checked, progress=False, log=lambda line: None)
    assert calls["validate"] == 2 and calls["build"] == 2


def test_a_bad_config_passed_to_train_is_refused_before_anything_is_built(tmp_path: Path,
                                                                         calls) -> None:
    from ppo_trainer.errors import ConfigError

    config = TrainConfig(env="CartPole-v1", optimizer="adam", num_envs=4, num_steps=4,
                         num_minibatches=3, run_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="--num-minibatches 3 must divide"):
        runner.train(config, progress=False)
    assert calls["build"] == 0 and not list(tmp_path.iterdir())


def test_build_selects_devices_only_for_a_parallel_run() -> None:
    """ppo-eval, ppo-compare and library users build without devices; the run loop with them."""
    import jax

    config = cli.parse_args([*BASE, "--total-timesteps", "64"]).config
    plain = build_module.build(config)
    assert plain.devices == [] and plain.mesh is None
    assert build_module.is_checked(plain.config)
    assert build_module.build(config, parallel=True).devices == jax.devices()
