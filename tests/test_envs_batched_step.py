"""The ``step_batch`` hook (``envs.batched_step``, ``envs.step_with_batch_rule``): an env whose
``step`` is built with the rule runs its own batch step under every ``vmap`` of ``step``, through
gymnax's LogWrapper and under an outer vmap over seeds, and its outputs keep the contract."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces
from gymnax.wrappers.purerl import LogWrapper

from ppo_trainer import envs

NUM_ENVS = 8


@struct.dataclass
class State(environment.EnvState):
    pos: jax.Array


@struct.dataclass
class Params(environment.EnvParams):
    max_steps_in_episode: int = 5


class Walk(environment.Environment):
    """Walks right by the action; terminated at 3, truncated at 5 steps. Its reset holds a
    ``cummax``, a primitive nothing else uses, so a jaxpr shows how many resets a step costs."""

    @property
    def default_params(self) -> Params:
        return Params()

    def reset_env(self, key, params):
        start = jax.lax.cummax(jax.random.randint(key, (3,), 0, 1))[-1]
        state = State(time=jnp.int32(0), pos=start.astype(jnp.int32))
        return self.obs(state), state

    def obs(self, state):
        return jnp.stack([state.pos, state.time]).astype(jnp.float32)

    def step_env(self, key, state, action, params):
        state = State(time=state.time + 1, pos=state.pos + action)
        return self.obs(state), state, jnp.float32(1.0), state.pos >= 3, {"pos": state.pos}

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(0, 10, (2,), jnp.float32)


class BatchedWalk(Walk):
    """Walk with a batch step that generates one fresh state per batch step, whatever the size."""

    def __init__(self):
        super().__init__()
        self.batch_calls = 0
        self._step = envs.step_with_batch_rule(super().step, self.step_batch)

    def step(self, key, state, action, params=None):
        return self._step(key, state, action, self.default_params if params is None else params)

    def step_batch(self, keys, states, actions, params):
        self.batch_calls += 1
        obs_st, st, reward, terminated, info = jax.vmap(
            self.step_env, in_axes=(0, 0, 0, None))(keys, states, actions, params)
        truncated = jax.vmap(self.is_truncated, in_axes=(0, None))(st, params)
        done = terminated | truncated
        obs_re, fresh = self.reset_env(keys[0], params)
        state = jax.tree.map(lambda f, s: jnp.where(done, f, s), fresh, st)
        obs = jnp.where(done[:, None], obs_re, obs_st)
        return obs, state, reward, terminated, truncated, {
            **info, "terminated": terminated, "truncated": truncated,
            "final_observation": obs_st}


def reset_rows(fn, *args) -> list[int]:
    """The batch sizes the env's reset (its ``cummax``) runs at, in ``fn``'s jaxpr."""
    rows = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "cummax":
                shape = eqn.invars[0].aval.shape
                rows.append(shape[0] if len(shape) > 1 else 1)
            for sub in jax.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return rows


def batch(env, params):
    keys = jax.random.split(jax.random.PRNGKey(0), NUM_ENVS)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    actions = jnp.ones(NUM_ENVS, jnp.int32)
    return keys, state, actions


def test_vmap_of_step_runs_step_batch_through_the_log_wrapper() -> None:
    for env, expected in ((Walk(), NUM_ENVS), (BatchedWalk(), 1)):
        wrapped = LogWrapper(env)
        params = env.default_params
        keys, state, actions = batch(wrapped, params)
        # gymnax's step resets every env on every step; the batch step resets once
        assert reset_rows(envs.batched_step(wrapped), keys, state, actions, params) == [expected]


def test_step_batch_keeps_the_contract_of_vmap_step() -> None:
    plain, fast = Walk(), BatchedWalk()
    params = plain.default_params
    keys, state, actions = batch(plain, params)
    outs = []
    for env in (plain, fast):
        step = jax.jit(envs.batched_step(env))
        s, rows = state, []
        for _ in range(6):
            obs, s, reward, terminated, truncated, info = step(keys, s, actions, params)
            rows.append((obs, s, reward, terminated, truncated, info))
        outs.append(rows)
    for a, b in zip(*outs, strict=True):
        # same structure, shapes and dtypes; same values (Walk's resets do not depend on keys)
        assert jax.tree.structure(a) == jax.tree.structure(b)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            assert x.shape == y.shape and x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
    terminated = [bool(r[3][0]) for r in outs[1]]
    assert terminated == [False, False, True, False, False, True]  # pos 1, 2, 3: ends, again
    final = outs[1][2][5]["final_observation"]
    np.testing.assert_array_equal(final[0], [3.0, 3.0])  # the pre-reset observation
    np.testing.assert_array_equal(outs[1][2][0][0], [0.0, 0.0])  # the reset one


def test_truncation_through_step_batch() -> None:
    env = BatchedWalk()
    params = Params(max_steps_in_episode=2)
    keys, state, actions = batch(env, params)
    step = jax.jit(envs.batched_step(env))
    _, state, *_ = step(keys, state, actions * 0, params)
    obs, state, _, terminated, truncated, info = step(keys, state, actions * 0, params)
    assert bool(truncated.all()) and not bool(terminated.any())
    np.testing.assert_array_equal(info["final_observation"][:, 1], 2.0)
    np.testing.assert_array_equal(state.time, 0)


def test_one_env_outer_vmap_and_batched_params() -> None:
    env = BatchedWalk()
    params = env.default_params
    key = jax.random.PRNGKey(1)
    _, one = env.reset(key, params)
    # one env, no vmap: gymnax's step
    out = env.step(key, one, jnp.int32(1), params)
    assert float(out[0][0]) == 1.0 and env.batch_calls == 0
    # an outer vmap (over seeds) around the env vmap, inside a scan: the batch step still runs
    keys, state, actions = batch(env, params)
    seeds = jax.tree.map(lambda x: jnp.stack([x, x]), (keys, state))

    def run(k, s):
        def body(s, _):
            out = envs.batched_step(env)(k, s, actions, params)
            return out[1], out[3]
        return jax.lax.scan(body, s, None, length=3)[1]

    terminated = jax.jit(jax.vmap(run))(*seeds)
    assert env.batch_calls == 1 and terminated.shape == (2, 3, NUM_ENVS)
    np.testing.assert_array_equal(terminated[:, 2], True)
    assert reset_rows(jax.vmap(run), *seeds) == [2]  # one per seed, not one per env
    # params batched per env: vmap(step), one reset per env
    per_env = Params(max_steps_in_episode=jnp.full(NUM_ENVS, 5))
    vstep = jax.vmap(env.step)
    assert reset_rows(vstep, keys, state, actions, per_env) == [NUM_ENVS]
    out = jax.jit(vstep)(keys, state, actions, per_env)
    assert out[0].shape == (NUM_ENVS, 2)
