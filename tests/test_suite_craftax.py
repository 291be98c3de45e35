"""The Craftax adapter (``--env craftax/ID``) on the real package: the gymnax 1.0 contract,
death as a termination and the time limit as a truncation, achievement metrics, the batch step
that generates a few fresh worlds per step instead of one per env, and ppo-train/ppo-eval end
to end (slow: Craftax compiles for minutes on a CPU)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("craftax")  # the suite's package (the test extra installs it)

from gymnax.environments.environment import Environment  # noqa: E402
from gymnax.wrappers.purerl import LogWrapper  # noqa: E402
from suite_contract import make, train_and_eval  # noqa: E402

from ppo_trainer import envs  # noqa: E402
from ppo_trainer.errors import ConfigError  # noqa: E402

ENV_ID = "craftax/Craftax-Classic-Symbolic-v1"
NUM_ENVS = 4
LIMIT = 4  # Craftax's own max_timesteps, through --env-kwargs


@pytest.fixture(scope="module")
def setup():
    """One env (time limit 4), a batch of NUM_ENVS, and the trainer's jitted batch step."""
    env, params = make(ENV_ID, env_kwargs={"max_timesteps": LIMIT, "reset_ratio": 0.5})
    wrapped = LogWrapper(env)
    keys = jax.random.split(jax.random.PRNGKey(0), NUM_ENVS)
    obs, state = jax.jit(jax.vmap(wrapped.reset, in_axes=(0, None)))(keys, params)
    return env, params, wrapped, obs, state, jax.jit(envs.batched_step(wrapped))


def kill(env, state, which):
    """``state`` (LogWrapper's) with the player's health set to 0 in the envs ``which``."""
    inner = env.unpack(state.env_state.inner)
    health = jnp.where(which, 0, inner.player_health).astype(inner.player_health.dtype)
    inner = inner.replace(player_health=health)
    return state.replace(env_state=state.env_state.replace(inner=env.pack(inner)))


def test_ids_spaces_settings_and_metrics(setup) -> None:
    env, params, wrapped, obs, state, _ = setup
    assert obs.shape == (NUM_ENVS, 1345) and obs.dtype == jnp.float32
    assert env.action_space(params).n == 17
    assert params.max_steps_in_episode == LIMIT  # the default: Craftax's max_timesteps
    assert env.craftax_params.max_timesteps == LIMIT
    metrics = envs.info_metrics(wrapped, params)
    assert "achievements" in metrics and "achievement_collect_wood" in metrics
    assert len(metrics) == 1 + len(env.achievement_names) == 23
    with pytest.raises(ConfigError, match="has no setting 'nope'"):
        make(ENV_ID, env_kwargs={"nope": 1})
    with pytest.raises(ConfigError, match="unknown Craftax env 'Nope-v1'"):
        make("craftax/Nope-v1")


def test_death_terminates_and_the_time_limit_truncates(setup) -> None:
    env, params, _, obs, state, step = setup
    actions = jnp.zeros(NUM_ENVS, jnp.int32)
    dead = jnp.arange(NUM_ENVS) == 1
    rows = []
    s = kill(env, state, dead)
    for t in range(LIMIT + 1):
        keys = jax.random.split(jax.random.PRNGKey(t + 1), NUM_ENVS)
        prev = s
        obs, s, reward, terminated, truncated, info = step(keys, s, actions, params)
        rows.append((prev, obs, s, terminated, truncated, info))
    _, obs, s, terminated, truncated, info = rows[0]
    # env 1 died on the first step: a termination, reset (time 0), with its final observation
    np.testing.assert_array_equal(terminated, dead)
    assert not bool(truncated.any())
    assert int(s.env_state.time[1]) == 0 and int(s.env_state.time[0]) == 1
    assert not np.array_equal(info["final_observation"][1], obs[1])
    np.testing.assert_array_equal(info["final_observation"][0], obs[0])
    assert info["achievements"].dtype == jnp.float32 and info["achievements"].shape == (NUM_ENVS,)
    # the others reach Craftax's time limit at their 4th step: truncations, not terminations
    _, obs, s, terminated, truncated, info = rows[LIMIT - 1]
    np.testing.assert_array_equal(truncated, ~dead)
    assert not bool(terminated.any())
    np.testing.assert_array_equal(s.env_state.time, np.where(dead, LIMIT - 1, 0))
    assert bool(info["returned_episode"][0]) and int(info["returned_episode_lengths"][0]) == LIMIT
    # a fresh world after the reset: the stepped-into observation is not the final one
    assert not np.array_equal(info["final_observation"][0], obs[0])


def test_step_batch_generates_a_few_worlds_not_one_per_env(setup, monkeypatch) -> None:
    _, params, _, _, state, _ = setup
    generate = setup[0].env.reset_env

    def craftax_world_generation(key, craftax_params):
        return generate(key, craftax_params)

    spy = jax.jit(craftax_world_generation)
    # on the class, before a fresh env is made: gymnax's jitted step caches its trace per env
    monkeypatch.setattr(type(setup[0].env), "reset_env", lambda self, key, p: spy(key, p))
    env, _ = make(ENV_ID, env_kwargs={"max_timesteps": LIMIT, "reset_ratio": 0.5})
    wrapped = LogWrapper(env)

    def worlds(fn, *args):
        """The batch size of every world generation in ``fn``'s jaxpr."""
        found = []

        def walk(jaxpr):
            for eqn in jaxpr.eqns:
                if eqn.params.get("name") == "craftax_world_generation":
                    found.append(eqn.invars[0].aval.shape[0])
                for sub in jax.core.jaxprs_in_params(eqn.params):
                    walk(sub)

        walk(jax.make_jaxpr(fn)(*args).jaxpr)
        return found

    keys = jax.random.split(jax.random.PRNGKey(3), NUM_ENVS)
    actions = jnp.zeros(NUM_ENVS, jnp.int32)
    assert env.num_resets(NUM_ENVS) == math.ceil(0.5 * NUM_ENVS) == 2
    # the trainer's batch step (through the LogWrapper): 2 worlds for 4 envs
    assert worlds(envs.batched_step(wrapped), keys, state, actions, params) == [2]
    # gymnax's own step under vmap: one world per env per step
    gymnax_step = jax.vmap(lambda k, s, a, p: Environment.step(env, k, s, a, p),
                           in_axes=(0, 0, 0, None))
    assert worlds(gymnax_step, keys, state.env_state, actions, params) == [NUM_ENVS]
    # same outputs (structure, shapes, dtypes) as vmap(step)
    ours = jax.eval_shape(env.step_batch, keys, state.env_state, actions, params)
    theirs = jax.eval_shape(gymnax_step, keys, state.env_state, actions, params)
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    assert all((a.shape, a.dtype) == (b.shape, b.dtype)
               for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs),
                                   strict=True))


def test_more_ends_than_fresh_worlds_share_them(setup) -> None:
    env, params, _, _, state, step = setup
    everyone = jnp.ones(NUM_ENVS, bool)
    keys = jax.random.split(jax.random.PRNGKey(4), NUM_ENVS)
    obs, s, _, terminated, *_ = step(keys, kill(env, state, everyone), jnp.zeros(NUM_ENVS, int),
                                     params)
    assert bool(terminated.all())
    # 4 ends, 2 fresh worlds: the j-th ended env takes world j mod 2
    np.testing.assert_array_equal(obs[0], obs[2])
    np.testing.assert_array_equal(obs[1], obs[3])
    assert not np.array_equal(obs[0], obs[1])
    np.testing.assert_array_equal(s.env_state.time, 0)


def test_render_frame_is_an_image(setup) -> None:
    env, params, _, _, state, _ = setup
    one = jax.tree.map(lambda x: x[0], state.env_state)
    frame = jax.jit(env.render_frame)(one, params)
    assert frame.dtype == jnp.uint8 and frame.ndim == 3 and frame.shape[-1] == 3
    assert int(frame.max()) > int(frame.min())


@pytest.mark.slow
def test_train_checkpoint_eval(tmp_path) -> None:
    train_and_eval(tmp_path, ENV_ID, "--env-kwargs", "max_timesteps=20")
