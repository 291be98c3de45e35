"""ppo-train flag parsing, --help, and the one-line usage errors (no training here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ppo_trainer.app import flags
from ppo_trainer.app import train_cli as cli
from ppo_trainer.config import TrainConfig


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ppo_trainer.app.train_cli", *args],
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(stderr: str, *needles: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip() and "warning:" not in line]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("ppo-train: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["--num-envs", "8", "--anneal-lr=false"],
        ["--num_envs", "8", "--anneal_lr=False"],
        ["--num-envs=8", "--no-anneal-lr"],
        ["--num_envs=8", "--no_anneal_lr"],
    ],
)
def test_flag_forms(argv: list[str]) -> None:
    parsed = cli.parse_args(argv)
    assert parsed.config.num_envs == 8
    assert parsed.config.anneal_lr is False
    assert parsed.given == {"num_envs": 8, "anneal_lr": False}


def test_boolean_forms() -> None:
    assert cli.parse_args(["--anneal-lr"]).config.anneal_lr is True
    assert cli.parse_args(["--anneal-lr=1"]).config.anneal_lr is True
    assert cli.parse_args(["--wandb=true"]).config.wandb is True
    assert cli.parse_args(["--wandb", "--no-wandb"]).config.wandb is False


def test_env_settings_dicts_and_optional_fields() -> None:
    config = cli.parse_args(["--env-params", "apple_reward=2.5,step_penalty=-0.01",
                             "--env-kwargs.width=12", "--env_params.death_penalty=-2",
                             "--env-kwargs", '{"height": 7, "actions": "absolute"}',
                             "--run-name=none"]).config
    # both added to the Snake-v0 preset's dicts, the flags winning
    assert config.env_params == {"starvation_is_death": True, "apple_reward": 2.5,
                                 "step_penalty": -0.01, "death_penalty": -2}
    assert config.env_kwargs == {"width": 12, "height": 7, "actions": "absolute",
                                 "observation": "egocentric"}
    assert config.run_name is None


def test_preset_none_gives_the_raw_defaults() -> None:
    raw = cli.parse_args(["--preset", "none"]).config
    assert raw.preset == "none"
    assert raw.replace(optimizer_kwargs={}, preset="auto") == TrainConfig()


def test_preset_layers_under_flags_and_records_sources() -> None:
    parsed = cli.parse_args(["--env", "CartPole-v1", "--optimizer", "adam", "--num-envs", "8"])
    config, sources = parsed.config, parsed.sources
    assert config.preset == "CartPole-v1" and sources["preset"] == "auto (env id)"
    assert config.hidden_size == 64 and sources["hidden_size"] == "preset CartPole-v1"
    assert config.num_envs == 8 and sources["num_envs"] == "flag"
    assert config.clip_value_loss is True and sources["clip_value_loss"] == "default"
    assert sources["optimizer_kwargs.adam_eps"] == "default"
    assert cli.parse_args(["--env", "CartPole-v1", "--preset", "none"]).config.hidden_size == 128
    named = cli.parse_args(["--preset", "snake-wide"])
    assert named.config.preset == "snake-wide" and named.sources["preset"] == "flag"
    assert named.sources["hidden_size"] == "preset snake-wide"


def test_show_config_prints_every_value_with_its_source(capsys) -> None:
    assert cli.main(["--env", "CartPole-v1", "--optimizer", "adam", "--lr", "1e-3",
                     "--show-config"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["lr"].split()[1:] == ["0.001", "flag"]
    assert lines["num_steps"].endswith("preset CartPole-v1")
    assert "optimizer_kwargs.adam_eps" in lines


def test_optimizer_flags_from_plugin() -> None:
    parsed = cli.parse_args(["--optimizer", "muon", "--muon-lr", "0.05", "--no-muon-nesterov"])
    assert parsed.config.optimizer_kwargs["muon_lr"] == 0.05
    assert parsed.config.optimizer_kwargs["muon_nesterov"] is False
    assert parsed.given["optimizer_kwargs"] == {"muon_lr": 0.05, "muon_nesterov": False}
    # undeclared values take the plugin defaults; --use-muon selects muon
    assert cli.parse_args(["--use-muon"]).config.optimizer == "muon"
    assert cli.parse_args(["--optimizer", "adam"]).config.optimizer_kwargs.keys().isdisjoint(
        {"muon_lr"})


def test_help_lists_groups_and_plugin_flags() -> None:
    result = run_cli("--optimizer", "muon", "--help")
    assert result.returncode == 0
    for text in ("--muon-lr", "--aux-adam-lr", "--muon-momentum", "--muon-nesterov",
                 "--num-envs", "environment:", "PPO:", "network:", "muon optimizer"):
        assert text in result.stdout, text
    adam = run_cli("--optimizer", "adam", "--help")
    assert "--muon-lr" not in adam.stdout


def test_parsing_imports_nothing_heavy() -> None:
    """``--help`` speed is a benchmark (benchmarks/bench_cli.py); what keeps it fast is that
    parsing, presets included, imports no jax/optax/flax/gymnax."""
    probe = ("import sys, ppo_trainer.app.train_cli as c; c.parse_args(['--env', 'CartPole-v1']);"
             " print(sorted(m for m in ('jax','optax','flax','gymnax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_list_optimizers() -> None:
    result = run_cli("--list-optimizers")
    assert result.returncode == 0
    assert "muon" in result.stdout and "adam" in result.stdout and "--muon-lr" in result.stdout


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--bogus", "3"], ["unrecognized arguments: --bogus"]),
        (["--num-envs", "x"], ["--num-envs", "invalid int"]),
        (["--network", "foo"], ["--network", "invalid choice"]),
        (["--optimizer", "nope"], ["unknown optimizer 'nope'", "adam", "muon"]),
        (["--optimizer", "adam", "--muon-lr", "1"], ["unrecognized arguments: --muon-lr"]),
        (["--muon-lr", "-1"], ["--muon-lr"]),
        (["--anneal-lr=maybe"], ["--anneal-lr", "true or false"]),
        (["--num-envs", "4", "--num-steps", "4", "--num-minibatches", "3"],
         ["--num-minibatches 3 must divide", "16"]),
        (["--num-envs", "4", "--num-steps", "4", "--total-timesteps", "8"],
         ["--total-timesteps 8 is less than one batch"]),
        (["--lr", "0"], ["--lr must be positive"]),
        (["--num-envs", "-2"], ["--num-envs must be positive"]),
        (["--gamma", "1.5"], ["--gamma"]),
        (["--resume", "/nonexistent/run"], ["no such run directory"]),
        (["--env", "Nope-v0", "--total-timesteps", "1000"], ["unknown env 'Nope-v0'"]),
        (["--optimizer", "nope", "--num-minibatches", "3"], ["unknown optimizer 'nope'"]),
        (["--preset", "nope"], ["unknown preset 'nope'", "CartPole-v1"]),
        (["--env-params", "no_such_field=1"], ["no_such_field", "EnvParams has no field"]),
        (["--env-kwargs", "colour=3"], ["--env-kwargs", "colour"]),
        (["--env-params", "oops"], ["expected KEY=VALUE"]),
    ],
)
def test_usage_errors_one_line_exit_2(argv, needles, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        sys.exit(cli.main(argv))
    assert info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, *needles)


def test_out_of_memory_is_one_line_exit_1(capsys) -> None:
    """XLA's RESOURCE_EXHAUSTED (a chunk's buffers larger than the machine, as the GPU preset
    snake-20x20 with 2 seeds on a 24 GiB CPU) ends a CLI in one line that says how much was
    asked and which flags shrink it; any other RuntimeError is left to surface."""
    import jax
    import jax.numpy as jnp

    def too_big() -> int:
        # 281 TB: more than a 47-bit user address space, so it fails even where memory is
        # overcommitted
        jax.jit(lambda: jnp.ones((2**48,), jnp.uint8))().block_until_ready()
        return 0

    assert flags.run_cli("ppo-train", too_big) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err, "out of memory", "281475.0 GB", "--num-envs", "--num-seeds")

    def broken() -> int:
        raise RuntimeError("not a memory problem")

    with pytest.raises(RuntimeError, match="not a memory problem"):
        flags.run_cli("ppo-train", broken)


def test_resume_dir_without_checkpoint(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    assert cli.main(["--resume", str(tmp_path)]) == 2
    assert_one_line_error(capsys.readouterr().err, "no checkpoint")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["--resume", str(empty)]) == 2
    assert_one_line_error(capsys.readouterr().err, "no config.json")


def test_resume_rejects_shape_changing_flags(tmp_path: Path, capsys) -> None:
    config = TrainConfig(num_envs=4)
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "checkpoint.msgpack").write_bytes(b"")
    assert cli.main(["--resume", str(tmp_path), "--num-envs", "8"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--num-envs 8 differs", "cannot change on --resume")


def test_unknown_env_subprocess() -> None:
    result = run_cli("--env", "NoSuchEnv-v9", "--optimizer", "adam")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "unknown env 'NoSuchEnv-v9'", "CartPole-v1")


def test_unknown_flag_subprocess() -> None:
    result = run_cli("--num-env", "3")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "unrecognized arguments")


def test_plugin_hyperparameter_named_like_a_trainer_flag_is_refused_not_a_crash(tmp_path) -> None:
    """A third-party plugin declaring ``--seed``: its optimizer is not registered (a warning
    names the plugin), instead of argparse crashing on a duplicate flag."""
    info = tmp_path / "clash_dist-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: clash-dist\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ppo_trainer.optimizers]\nclash = clash_plugin\n")
    (tmp_path / "clash_plugin.py").write_text(
        "from plugins import HyperParam, hookimpl\n\n@hookimpl\ndef register_optimizers(register):\n"
        "    register('clash', lambda **kw: None, [HyperParam('seed', int, 0, 'a seed')])\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "ppo_trainer.app.train_cli", "--optimizer",
                          "clash", "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "clash-dist" in run.stderr and "'seed' is reserved" in run.stderr
    assert "unknown optimizer 'clash'" in run.stderr
    ok = subprocess.run([sys.executable, "-m", "ppo_trainer.app.train_cli", "--optimizer", "muon",
                         "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and "--muon-lr" in ok.stdout


def test_config_json_is_byte_stable_whatever_the_order_of_sources(tmp_path: Path) -> None:
    """Two runs of one config write the same config.json: the sources map is written sorted
    (its order used to follow set iteration, which changes between processes)."""
    from ppo_trainer.app.rundir import RunDir

    parsed = cli.parse_args(["--preset", "snake-wide", "--gamma", "0.999"])
    scrambled = dict(reversed(list(parsed.sources.items())))
    a, b = RunDir(tmp_path / "a"), RunDir(tmp_path / "b")
    for run, sources in ((a, parsed.sources), (b, scrambled)):
        run.path.mkdir()
        run.write_config(parsed.config, sources)
    assert a.config.read_bytes() == b.config.read_bytes()
    config, sources = a.read_config()
    assert config == parsed.config and sources == parsed.sources
    assert list(sources) == sorted(sources) and sources["gamma"] == "flag"


def test_each_fields_bound_resume_rule_and_alias_come_from_its_one_line() -> None:
    """The check, the resume rule and the alias flags are read from the field's metadata: every
    bounded field refuses a value outside its bound with a one-line message naming its flag."""
    import dataclasses

    from ppo_trainer.config import BOUNDS, fields_where, flag_aliases
    from ppo_trainer.errors import ConfigError
    from ppo_trainer.registry import reserved_names

    outside = {"positive": 0, "non_negative": -1, "unit": 1.5, "unit_open": 1.0,
               "device_count": -1}
    bounded = [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("bound")]
    assert {f.metadata["bound"] for f in bounded} == set(BOUNDS)
    for f in bounded:
        with pytest.raises(ConfigError, match=f"^--{f.name.replace('_', '-')} must be"):
            TrainConfig(**{f.name: outside[f.metadata["bound"]]}).validate()
    assert {"num_envs", "network", "seed", "optimizer"} <= set(fields_where("resume", "locked"))
    assert fields_where("resume", "per_invocation") == ("devices", "distributed")
    assert flag_aliases() == {"use_muon": ("optimizer", "muon")}
    assert "use_muon" in reserved_names() and "show_config" in reserved_names()
    # an alias is the flag it stands for, wherever it stands on the line
    assert cli.parse_args(["--use-muon", "--optimizer", "adam"]).config.optimizer == "adam"
    assert cli.parse_args(["--optimizer", "adam", "--use-muon"]).config.optimizer == "muon"


def test_deprecated_names_still_work_and_say_what_replaces_them() -> None:
    from ppo_trainer import registry
    from ppo_trainer.config import fields_where

    with pytest.warns(FutureWarning, match="fields_where"):
        assert cli.RESUME_LOCKED == fields_where("resume", "locked")
    with pytest.warns(FutureWarning, match="fields_where"):
        assert cli.PER_INVOCATION == ("devices", "distributed")
    with pytest.warns(FutureWarning, match="config.CLI_ONLY_FLAGS"):
        assert {"use_muon", "list_optimizers"} <= set(registry.CLI_ONLY_FLAGS)
