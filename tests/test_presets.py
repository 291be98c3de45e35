"""Presets: the data parses, every key is a real flag, layering order, third-party presets."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from types import SimpleNamespace

import gymnax
import pytest

from ppo_trainer import presets, suites
from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import ConfigError
from ppo_trainer.registry import registry


def test_every_preset_key_is_a_real_flag_and_every_env_exists() -> None:
    reg = registry()
    declared = {name: {hp.name for hp in reg.get(name).hyperparams} for name in reg.names()}
    any_plugin = set().union(*declared.values())
    all_presets = presets.all_presets()
    assert {"CartPole-v1", "Snake-v0"} <= set(all_presets)
    for name, preset in all_presets.items():
        env = preset.settings["env"]
        if suites.is_suite_id(env):  # SUITE/ID: a registered suite with its package installed
            suites.split(env)
        else:
            assert env.split(":")[-1] in gymnax.registered_envs, name
        for key in preset.settings:
            assert key in presets.FIELDS or key in any_plugin, (name, key)
        for optimizer, table in preset.by_optimizer.items():
            assert optimizer in declared, (name, optimizer)
            for key in table:
                assert key in presets.FIELDS or key in declared[optimizer], (name, optimizer, key)
        # and the whole thing resolves to a valid config for every optimizer
        for optimizer in declared:
            config = presets.preset_config(name, optimizer=optimizer)
            config.validate()
            reg.validate(optimizer, **config.optimizer_kwargs)


def test_layering_default_preset_optimizer_table_overrides() -> None:
    preset = presets.parse_table("Demo", {
        "env": "CartPole-v1", "lr": 1e-3, "num_envs": 8, "muon_lr": 0.05,
        "description": "a note", "muon": {"lr": 2e-3, "muon_momentum": 0.9}}, "test")
    assert preset.notes == {"description": "a note"}
    reg = registry()
    for optimizer in ("adam", "muon"):
        declared = {hp.name: hp.default for hp in reg.get(optimizer).hyperparams}
        known = frozenset(hp.name for n in reg.names() for hp in reg.get(n).hyperparams)
        config, sources = presets.resolve(TrainConfig(), presets.default_sources(), preset,
                                          optimizer, declared, {"num_envs": 16}, {}, known)
        assert config.num_envs == 16 and sources["num_envs"] == "flag"  # flag over preset
        assert config.num_steps == TrainConfig().num_steps and sources["num_steps"] == "default"
        if optimizer == "adam":
            assert config.lr == 1e-3 and sources["lr"] == "preset Demo"
            assert "muon_lr" not in config.optimizer_kwargs  # another optimizer's key: ignored
        else:
            assert config.lr == 2e-3 and sources["lr"] == "preset Demo [muon]"
            assert config.optimizer_kwargs["muon_lr"] == 0.05
            assert config.optimizer_kwargs["muon_momentum"] == 0.9
            assert sources["optimizer_kwargs.muon_momentum"] == "preset Demo [muon]"
    with_env = presets.parse_table("Env", {"env_kwargs": {"width": 6, "actions": "relative"}},
                                   "test")
    config, _ = presets.resolve(TrainConfig(), {}, with_env, "adam", {},
                                {"env_kwargs": {"width": 8}}, {}, frozenset())
    assert config.env_kwargs == {"width": 8, "actions": "relative"}  # merged, the flag wins
    bad = presets.parse_table("Bad", {"lrr": 1.0}, "test")
    with pytest.raises(ConfigError, match="'lrr' is not a ppo-train flag"):
        presets.resolve(TrainConfig(), {}, bad, "adam", {}, {}, {}, frozenset())


def test_a_preset_named_like_an_env_trains_that_env() -> None:
    assert presets.preset_config("CartPole-v1", optimizer="adam").env == "CartPole-v1"
    assert presets.find("auto", "mypkg:CartPole-v1").name == "CartPole-v1"
    assert presets.find("none", "CartPole-v1") is None
    assert presets.find("auto", "Pong-misc") is None  # no preset: the raw defaults
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        presets.find("nope", "CartPole-v1")


def test_third_party_presets_through_entry_points(tmp_path: Path, monkeypatch) -> None:
    toml = tmp_path / "mine.toml"
    toml.write_text('["Acrobot-v1"]\nlr = 0.123\n["my-acrobot"]\nenv = "Acrobot-v1"\nnum_envs = 2\n')

    def entry(name: str, obj: object) -> SimpleNamespace:
        return SimpleNamespace(name=name, value=f"pkg:{name}", load=lambda: obj,
                               dist=SimpleNamespace(name="my-presets"))

    def broken() -> None:
        raise ImportError("missing dependency")

    eps = [entry("file", str(toml)), entry("table", {"my-cartpole": {"env": "CartPole-v1"}}),
           SimpleNamespace(name="broken", value="pkg:broken", load=broken,
                           dist=SimpleNamespace(name="bad-presets")),
           entry("clash", {"CartPole-v1": {"lr": 9.0}})]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps)
    presets.all_presets.cache_clear()
    try:
        with pytest.warns(RuntimeWarning) as record:
            found = presets.all_presets()
        messages = " ".join(str(w.message) for w in record)
        assert "'broken'" in messages and "missing dependency" in messages
        assert "preset 'CartPole-v1' from my-presets:clash is ignored" in messages
        assert found["my-acrobot"].settings == {"env": "Acrobot-v1", "num_envs": 2}
        assert found["my-cartpole"].origin == "my-presets:table"
        assert found["CartPole-v1"].origin == "built-in"  # a third party cannot replace it
        # Acrobot-v1 is a built-in preset too: the file's table for it is ignored, with a warning
        assert found["Acrobot-v1"].origin == "built-in"
        assert found["Acrobot-v1"].settings.get("lr") != 0.123
        assert "preset 'Acrobot-v1' from my-presets:file is ignored" in messages
    finally:
        presets.all_presets.cache_clear()


def test_untuned_notice_names_an_optimizer_no_preset_tuned() -> None:
    tuned = presets.parse_table("Tuned", {"env": "CartPole-v1", "muon": {"muon_lr": 0.01}},
                                "test")
    noted = presets.parse_table("Noted", {"env": "CartPole-v1",
                                          "tuning": "muon muon_lr {0.01: 1, 0.02: 2}"}, "test")
    bare = presets.parse_table("Bare", {"env": "CartPole-v1"}, "test")
    assert presets.untuned_notice(tuned, "muon", {}) is None
    assert presets.untuned_notice(noted, "muon", {}) is None
    assert presets.untuned_notice(bare, "adam", {}) is None
    assert presets.untuned_notice(None, "adam", {}) is None
    assert "muon is untuned" in presets.untuned_notice(bare, "muon", {})
    assert "no preset" in presets.untuned_notice(None, "muon", {})
    # a step size from the command line is the user's own tuning
    assert presets.untuned_notice(None, "muon", {"optimizer_kwargs.muon_lr": "flag"}) is None


def test_ppo_train_warns_once_on_one_line_when_muon_is_untuned(capsys) -> None:
    from ppo_trainer.app import train_cli

    def stderr(*argv: str) -> list[str]:
        assert train_cli.main([*argv, "--show-config"]) == 0
        return capsys.readouterr().err.splitlines()

    lines = stderr("--env", "Pong-misc", "--optimizer", "muon")
    assert len(lines) == 1 and lines[0].startswith("ppo-train: warning: muon is untuned")
    assert "Traceback" not in lines[0]
    assert stderr("--env", "Pong-misc", "--optimizer", "muon", "--muon-lr", "0.01") == []
    assert stderr("--env", "Pong-misc", "--optimizer", "adam") == []
    assert stderr("--env", "CartPole-v1", "--optimizer", "muon") == []
    # every built-in gymnax env preset has Muon settings or a Muon grid in its notes; an env
    # suite's preset (SUITE/ID) may be untuned, and then warns as an unknown env does
    for name, preset in presets.all_presets().items():
        if name == preset.settings["env"] and not suites.is_suite_id(name):
            assert presets.untuned_notice(preset, "muon", {}) is None, name


def test_preset_config_takes_the_optimizers_hyperparameters_as_keywords() -> None:
    config = presets.preset_config("DeepSea-bsuite", optimizer="muon", muon_lr=0.005,
                                   muon_heads=False, optimizer_kwargs={"ns_steps": 5})
    assert config.optimizer_kwargs["muon_lr"] == 0.005
    assert config.optimizer_kwargs["muon_heads"] is False
    assert config.optimizer_kwargs["ns_steps"] == 5


RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def assert_preset_is_recorded_run(preset: str, recorded_config: Path) -> TrainConfig:
    """The preset resolves to a committed run's config (its seed given), so the record's
    numbers are the preset's; settings added since the record ran (e.g. keep_best) must be at
    their defaults there."""
    recorded = json.loads(recorded_config.read_text())
    config = presets.preset_config(preset, optimizer="muon", seed=recorded["seed"])
    ignored = {"preset", "stages", "run_dir", "run_name", "resume", "obs_drop"}
    mine = {k: v for k, v in config.to_dict().items() if k not in ignored}
    assert {k: v for k, v in mine.items() if k in recorded} == {k: recorded[k] for k in mine
                                                                if k in recorded}
    defaults = TrainConfig().to_dict()
    assert {k: mine[k] for k in mine if k not in recorded} == \
        {k: defaults[k] for k in mine if k not in recorded}
    return config


@pytest.mark.parametrize("seed", [22, 23, 24, 25, 26])
def test_snake_calm_charge_preset_is_the_recorded_runs(seed: int) -> None:
    """``snake-calm-charge`` is the command of the held-out 30M runs its table reports."""
    record = RESULTS / "snake-tail-calm-foodreach-30M"
    assert_preset_is_recorded_run("snake-calm-charge", record / f"seed{seed}" / "config.json")


@pytest.mark.parametrize("seed", [43, 44, 45])
def test_snake_calm_holes_preset_is_the_recorded_runs(seed: int) -> None:
    """``snake-calm-holes`` is the command of the held-out 30M runs its table reports (recorded
    as ``snake-calm-charge`` with the hole charge and four layers as flags)."""
    record = RESULTS / "snake-calm-holes-deep"
    assert_preset_is_recorded_run("snake-calm-holes", record / f"seed{seed}" / "config.json")


@pytest.mark.parametrize("seed", [46, 47, 48])
def test_snake_calm_holes_hunger_preset_is_the_recorded_runs(seed: int) -> None:
    """``snake-calm-holes-hunger`` is the command of the held-out 30M runs its table reports."""
    record = RESULTS / "snake-calm-holes-hunger"
    assert_preset_is_recorded_run("snake-calm-holes-hunger",
                                  record / f"seed{seed}" / "config.json")


def test_staged_20x20_preset_is_the_recorded_run() -> None:
    """``snake-20x20-tail`` is the committed 25M run's command as data, then its two recorded
    continuations as stages."""
    config = assert_preset_is_recorded_run("snake-20x20-tail",
                                           RESULTS / "snake-20x20-tail" / "config.json")
    # and the stages are the continuations' recorded budgets and gamma, in order
    horizon = RESULTS / "snake-20x20-horizon"
    for folder in ("gamma0.999", "gamma0.999-48M"):
        config = config.after_stage(config.next_stage())  # as the runner goes on, stage by stage
        continued = json.loads((horizon / folder / "config.json").read_text())
        assert (config.total_timesteps, config.gamma) == (continued["total_timesteps"], 0.999)
        assert continued["gamma"] == 0.999
    assert config.next_stage() is None
