"""``AdaptedEnv.reset_on_done = "cached"``: ``step`` never traces ``reset_env`` and restarts an
ended episode from the first reset's state; gymnax's own rule (``"every_step"``) is unchanged."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from ppo_trainer.adapters.base import AdaptedEnv, AdaptedParams, AdaptedState


class Counter(AdaptedEnv):
    """A toy suite: the observation is ``[start, position]``; a reset draws a random ``start``
    (a tag of the episode) and sets ``position`` to 0, each step adds the action to it; reaching ``end`` terminates, ``limit`` steps truncate."""

    suite_name = "toy"

    def __init__(self, reset_on_done: str, end: float = 3.0, limit: int = 5) -> None:
        super().__init__("Counter")
        self.reset_on_done = reset_on_done
        self.end, self.limit = end, limit
        self.reset_traces = 0

    @property
    def default_params(self) -> AdaptedParams:
        return AdaptedParams(max_steps_in_episode=self.limit)

    def suite_reset(self, key: jax.Array) -> Any:
        return {"start": jax.random.uniform(key, (), minval=-1.0, maxval=0.0)}

    def reset_env(self, key: jax.Array, params: AdaptedParams) -> tuple[jax.Array, AdaptedState]:
        self.reset_traces += 1  # Python side effect: runs once per trace, never per call
        start = self.suite_reset(key)["start"]
        zero = jnp.float32(0)
        state = AdaptedState((start, zero), jnp.int32(0), jnp.bool_(False),
                             jnp.zeros((0,), jnp.bool_), {"position": zero})
        return jnp.stack([start, zero]), state

    def step_env(self, key: jax.Array, state: AdaptedState, action: Any,
                 params: AdaptedParams) -> tuple:
        start, position = state.inner
        position = position + action
        metrics = {"position": position}
        state = state.replace(inner=(start, position), time=state.time + 1, metrics=metrics)
        return (jnp.stack([start, position]), state, jnp.float32(1), position >= self.end,
                dict(metrics))

    def action_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (), jnp.float32)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)


def play(env: Counter, actions: list[float], seed: int = 0) -> list[dict]:
    params = env.default_params
    key = jax.random.PRNGKey(seed)
    obs, state = env.reset(key, params)
    rows = [{"obs": np.asarray(obs)}]
    for action in actions:
        key, k = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = env.step(k, state, jnp.float32(action),
                                                                   params)
        rows.append({"obs": np.asarray(obs), "terminated": bool(terminated),
                     "truncated": bool(truncated), "time": int(state.time),
                     "final": np.asarray(info["final_observation"]),
                     "position": float(info["position"])})
    return rows


def test_cached_step_never_traces_reset_env() -> None:
    env = Counter("cached")
    params = env.default_params
    _, state = env.reset(jax.random.PRNGKey(0), params)
    assert env.reset_traces == 1
    jax.make_jaxpr(lambda k, s: env.step(k, s, jnp.float32(1), params))(jax.random.PRNGKey(1),
                                                                        state)
    assert env.reset_traces == 1
    every = Counter("every_step")
    _, state = every.reset(jax.random.PRNGKey(0), params)
    jax.make_jaxpr(lambda k, s: every.step(k, s, jnp.float32(1), params))(jax.random.PRNGKey(1),
                                                                          state)
    assert every.reset_traces == 2  # gymnax's rule: a reset is traced into step


def test_cached_episodes_restart_from_the_first_reset() -> None:
    # terminated at step 3 (1+1+1 >= 3), then 5 steps of 0.5 reach the time limit
    rows = play(Counter("cached"), [1, 1, 1] + [0.5] * 5)
    first = rows[0]["obs"]
    end = rows[3]
    assert (end["terminated"], end["truncated"], end["time"]) == (True, False, 0)
    np.testing.assert_allclose(end["final"], [first[0], 3])
    np.testing.assert_array_equal(end["obs"], first)  # restarted from the cached first state
    timeout = rows[8]
    assert (timeout["terminated"], timeout["truncated"], timeout["time"]) == (False, True, 0)
    np.testing.assert_allclose(timeout["final"], [first[0], 2.5])
    np.testing.assert_array_equal(timeout["obs"], first)
    assert [r["time"] for r in rows[1:]] == [1, 2, 0, 1, 2, 3, 4, 0]


def test_every_step_episodes_restart_from_a_new_reset() -> None:
    rows = play(Counter("every_step"), [1, 1, 1])
    assert rows[3]["terminated"] and rows[3]["time"] == 0
    assert rows[3]["obs"][0] != rows[0]["obs"][0]  # a fresh random start


@pytest.mark.parametrize("mode", ["cached", "every_step"])
def test_both_rules_keep_the_state_structure_under_scan(mode: str) -> None:
    """The trainer scans ``step`` over a vmapped batch: the state's pytree must not change."""
    env = Counter(mode)
    params = env.default_params
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.PRNGKey(0), 3),
                                                params)

    def body(state, key):
        out = jax.vmap(env.step, (0, 0, 0, None))(jax.random.split(key, 3), state,
                                                   jnp.ones(3), params)
        return out[1], out[3] | out[4]

    state, done = jax.lax.scan(body, state, jax.random.split(jax.random.PRNGKey(1), 7))
    assert np.asarray(done).any(axis=0).all()
    starts = np.asarray(state.inner[0])
    if mode == "cached":
        np.testing.assert_array_equal(starts, np.asarray(obs[:, 0]))


def test_an_unknown_reset_rule_is_refused() -> None:
    env = Counter("cahced")
    params = env.default_params
    _, state = env.reset(jax.random.PRNGKey(0), params)
    with pytest.raises(ValueError, match="reset_on_done='cahced'.*every_step, cached"):
        env.step(jax.random.PRNGKey(1), state, jnp.float32(1), params)
