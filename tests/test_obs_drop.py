"""--obs-drop: removes entries of a flat observation (a partially observed task from a fully
observed one), everywhere the policy looks: reset, step, final_observation, the observation
space; one spelling from flags, presets and config.json; one-line errors; locked on resume."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppo_trainer import presets
from ppo_trainer.app import runner
from ppo_trainer.app.train_cli import main as train_main
from ppo_trainer.app.train_cli import parse_args, validate_resume
from ppo_trainer.config import TrainConfig, fields_where
from ppo_trainer.envs import DropObservation, make_env
from ppo_trainer.errors import ConfigError

TINY = ["--env", "CartPole-v1", "--preset", "none", "--optimizer", "adam", "--num-envs", "4",
        "--num-steps", "8", "--num-minibatches", "2", "--update-epochs", "1", "--hidden-size",
        "8", "--num-hidden-layers", "1", "--rnn-size", "8", "--total-timesteps", "64",
        "--eval-episodes", "2"]


def test_cartpole_without_velocities_sees_position_and_angle_only() -> None:
    full_env, params = make_env(TrainConfig(env="CartPole-v1"))
    env, params2 = make_env(TrainConfig(env="CartPole-v1", obs_drop=(1, 3)))
    assert isinstance(env, DropObservation) and params2 == params
    space = env.observation_space(params)
    assert space.shape == (2,)
    full_space = full_env.observation_space(params)
    np.testing.assert_array_equal(space.low, np.broadcast_to(full_space.low, (4,))[[0, 2]])
    key = jax.random.PRNGKey(3)
    obs, state = env.reset(key, params)
    full_obs, full_state = full_env.reset(key, params)
    np.testing.assert_array_equal(obs, full_obs[jnp.array([0, 2])])
    ended = False
    for t in range(30):  # through a termination: final_observation loses the same entries
        k = jax.random.fold_in(key, t)
        obs, state, _, term, trunc, info = env.step(k, state, 1, params)
        ended |= bool(term | trunc)
        full_obs, full_state, _, *_, full_info = full_env.step(k, full_state, 1, params)
        np.testing.assert_array_equal(obs, full_obs[jnp.array([0, 2])])
        np.testing.assert_array_equal(info["final_observation"],
                                      full_info["final_observation"][jnp.array([0, 2])])
    assert ended  # pushing right ends CartPole within 30 steps


@pytest.mark.parametrize("value", ["1,3", [1, 3], (1, 3), " 1, 3 "])
def test_one_spelling_from_flags_presets_and_config_json(value) -> None:
    assert TrainConfig(obs_drop=value).obs_drop == (1, 3)
    assert TrainConfig().obs_drop == () and TrainConfig(obs_drop="").obs_drop == ()


def test_the_flag_config_json_and_a_preset_agree(tmp_path: Path) -> None:
    config = parse_args([*TINY, "--obs-drop", "1,3"]).config
    assert config.obs_drop == (1, 3)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.obs_drop == (1, 3) and again == config
    preset = presets.parse_table("stateless", {"env": "CartPole-v1", "obs_drop": [1, 3]}, "test")
    assert presets.resolve(TrainConfig(), presets.default_sources(), preset, "adam", {}, {},
                           {})[0].obs_drop == (1, 3)


@pytest.mark.parametrize(("changes", "message"), [
    ({"obs_drop": (1, 1)}, "distinct"),
    ({"obs_drop": (-1,)}, ">= 0"),
    ({"obs_drop": (1,), "augment_symmetry": True}, "--augment-symmetry"),
])
def test_invalid_indices_are_refused_by_validate(changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(env="CartPole-v1", **changes).validate()


@pytest.mark.parametrize(("env", "drop", "message"), [
    ("CartPole-v1", (4,), "has 4 entries"),
    ("CartPole-v1", (0, 1, 2, 3), "at least one must stay"),
    ("Breakout-MinAtar", (0,), "flat"),
])
def test_indices_outside_the_observation_are_refused_where_it_is_built(env, drop,
                                                                       message) -> None:
    with pytest.raises(ConfigError, match=message):
        make_env(TrainConfig(env=env, obs_drop=drop))


@pytest.mark.parametrize(("value", "message"), [("1,x", "integer"), ("9", "has 4 entries")])
def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path, capsys, value, message) -> None:
    code = train_main([*TINY, "--run-dir", str(tmp_path), "--obs-drop", value])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and message in err, err


def test_it_is_locked_on_resume() -> None:
    assert "obs_drop" in fields_where("resume", "locked")
    base = TrainConfig(env="CartPole-v1", obs_drop=(1, 3))
    validate_resume(base, {"obs_drop": (1, 3)}, base)  # same value: fine
    with pytest.raises(ConfigError, match="--obs-drop"):
        validate_resume(base.replace(obs_drop=(1,)), {"obs_drop": (1,)}, base)


def test_a_recurrent_run_trains_on_the_dropped_observation(tmp_path: Path) -> None:
    """The network's first layer takes the 2 kept entries, and the run records them."""
    config = parse_args([*TINY, "--obs-drop", "1,3", "--rnn", "gru", "--run-dir", str(tmp_path),
                         "--run-name", "r"]).config
    runner.train(config, progress=False, log=lambda line: None)
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["obs_drop"] == [1, 3]
    from ppo_trainer.app import build

    setup = build.build(TrainConfig.from_dict(saved))
    params = setup.state_template().params
    kernels = [leaf.shape for path, leaf in jax.tree_util.tree_leaves_with_path(params)
               if "kernel" in jax.tree_util.keystr(path)]
    assert any(shape[-2] == 2 for shape in kernels), kernels  # (seeds, 2, hidden)
    assert not any(shape[-2] == 4 for shape in kernels), kernels
