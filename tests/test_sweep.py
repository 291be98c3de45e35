"""The W&B sweep file: every parameter is a ppo-train flag with a valid range, and one sampled
run, in the exact `--key=value` form a sweep agent produces, trains and exits 0."""

from __future__ import annotations

import itertools
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ppo_trainer.app import train_cli as cli
from ppo_trainer.app.build import check
from ppo_trainer.registry import registry as get_registry

SWEEP = Path(__file__).resolve().parents[1] / "sweeps" / "wandb_sweep_jax_ppo.yaml"
DISTRIBUTIONS = {"uniform", "log_uniform_values", "int_uniform"}


@pytest.fixture(scope="module")
def sweep() -> dict[str, Any]:
    return yaml.safe_load(SWEEP.read_text())


def agent_args(values: dict[str, Any]) -> list[str]:
    """What `${args}` expands to in the W&B agent (its own helper when importable)."""
    try:
        from wandb.sdk.launch.sweeps.utils import create_sweep_command_args
    except ImportError:  # pragma: no cover - older/newer wandb layout
        return [f"--{k}={v}" for k, v in values.items()]
    return create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})["args"]


def sample(spec: dict[str, Any], rng: random.Random) -> Any:
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        return rng.choice(spec["values"])
    dist, lo, hi = spec["distribution"], spec["min"], spec["max"]
    if dist == "int_uniform":
        return rng.randint(lo, hi)
    if dist == "log_uniform_values":
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return rng.uniform(lo, hi)


def test_top_level_keys(sweep: dict[str, Any]) -> None:
    assert sweep["method"] == "bayes"
    assert sweep["metric"]["goal"] == "maximize"
    # a name ppo-train logs to the run summary (runner: eval/<summary key> at the end)
    assert sweep["metric"]["name"] in {"eval/mean_apples", "eval/mean_return"}
    assert sweep["command"] == ["${env}", "ppo-train", "${args}"]


def test_distributions_are_valid(sweep: dict[str, Any]) -> None:
    for name, spec in sweep["parameters"].items():
        keys = set(spec)
        if keys in ({"value"}, {"values"}):
            assert keys != {"values"} or spec["values"], name
            continue
        assert keys == {"distribution", "min", "max"}, name
        dist, lo, hi = spec["distribution"], spec["min"], spec["max"]
        assert dist in DISTRIBUTIONS, name
        assert isinstance(lo, (int, float)) and isinstance(hi, (int, float)), name  # not '5e-5'
        assert lo < hi, name
        if dist == "int_uniform":
            assert isinstance(lo, int) and isinstance(hi, int), name
        if dist == "log_uniform_values":
            assert lo > 0, name


def test_every_parameter_is_a_ppo_train_flag_at_both_ends(sweep: dict[str, Any]) -> None:
    params = sweep["parameters"]
    optimizer = params["optimizer"]["value"]
    registry = get_registry()
    declared = {hp.name for hp in registry.get(optimizer).hyperparams}
    ends: list[dict[str, Any]] = [{}, {}]
    for name, spec in params.items():
        options = spec.get("values") or ([spec["value"]] if "value" in spec else
                                          [spec["min"], spec["max"]])
        ends[0][name], ends[1][name] = options[0], options[-1]
    for chosen in ends:
        parsed = cli.parse_args(agent_args(chosen))  # exits 2 on any unknown flag or bad value
        for name, value in chosen.items():
            if name in declared:
                assert parsed.config.optimizer_kwargs[name] == pytest.approx(value)
            else:
                field, _, key = name.partition(".")  # env_params.apple_reward: a dict entry
                got = getattr(parsed.config, field)
                got = got[key] if key else got
                assert got == pytest.approx(value) if isinstance(value, float) else got == value
        check(parsed.config)  # env, optimizer hyperparameters, values and sizes


def test_shape_constraints_hold_for_every_combination(sweep: dict[str, Any]) -> None:
    params = sweep["parameters"]
    base = cli.parse_args(agent_args({k: sample(v, random.Random(0)) for k, v in params.items()}))

    def options(name: str) -> list[Any]:
        return params[name].get("values") or [params[name]["value"]]

    names = ("num_envs", "num_steps", "num_minibatches", "d_model", "num_heads")
    for combo in itertools.product(*(options(n) for n in names)):
        base.config.replace(**dict(zip(names, combo, strict=True))).validate()


def test_one_sampled_run_exits_0(sweep: dict[str, Any], tmp_path: Path) -> None:
    values = {k: sample(v, random.Random(1)) for k, v in sweep["parameters"].items()}
    # tiny budget and network; the sampled heads (2/4/8) divide 16, minibatches (<=128) divide 8x16
    values.update(num_envs=8, num_steps=16, total_timesteps=256, d_model=16, num_layers=1,
                  update_epochs=1, eval_episodes=2, save_freq=2, run_dir=str(tmp_path / "runs"))
    bindir = str(Path(sys.executable).parent)
    command = []
    for token in sweep["command"]:
        if token == "${env}":
            command.append(shutil.which("env") or "/usr/bin/env")
        elif token == "${args}":
            command += agent_args(values)
        else:
            command.append(token)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb"),
           "WANDB_SILENT": "true", "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    (tmp_path / "wandb").mkdir()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "metrics.jsonl").is_file()
    assert list(runs[0].glob("wandb/offline-run-*")), "no offline W&B run was written"
