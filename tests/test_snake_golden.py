"""Snake-v0 stays bit-identical: hashes of random play under every option combination.

The hashes were recorded from the code before the env was refactored (issue 29), on jax 0.10.2
(CPU).  A refactor of the rules, placement or observations that changes any state, observation,
reward, flag or info value in these trajectories fails here; a deliberate change of the game
records new hashes (run this file with ``SNAKE_GOLDEN_PRINT=1`` to print them).
"""

from __future__ import annotations

import hashlib
import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snake_gymnax import EnvParams, Snake

STEPS = 300
ENVS = 4

# Every combination of the options that are EnvParams fields, vmapped (traced params).
TRACED = [
    EnvParams(
        step_penalty=-0.01 * penalty,
        max_steps_without_food=6 * starve_soon,  # 0: the board's own limit
        max_steps_in_episode=40,
        food_shaping=0.5 * shaping,
        food_shaping_decay=0.7 * shaping,
        random_start=random_start,
        starvation_is_death=death,
    )
    for penalty, starve_soon, shaping, random_start, death in itertools.product((0, 1), repeat=5)
]

EXPECTED = {
    # case id (board, actions, observation, static or traced params) -> sha256
    "5x4-absolute-planes-static": "5adc1bbf051afc48f9f1098942cc89f2f0f5f00c688e2183a58f311c34d9e76f",
    "5x4-relative-egocentric-static": "bee237b64fa1ff6c880ea96d4cfdda269e5ebf6b81706989d8f65561f00996a4",
    "5x4-absolute-planes-traced": "1b079912c45a032673c4e253c2af65eea1db5efba36a4096e584903ba0442b44",
    "5x4-absolute-egocentric-traced": "4d996d795b9c24cc4ff3f2dbb75ae0cdd2f59e7ca522d53bbb49f0907f2f8539",
    "5x4-relative-planes-traced": "b8495dc9e0639a3a72c58f0001711b8662d11c0f4bb7ed1b8291156631896d38",
    "5x4-relative-egocentric-traced": "108bf44307aa75eb454142943c4bfc6498cf127a1cbba161fd04a478d2c9ad9e",
    "3x2-absolute-planes-traced": "bc42b48017dbaefb3f2153ce5616c6d3798a46b5f16556865bc82feebff90ae2",
    "3x2-relative-egocentric-traced": "c27dc6b39865d0f9fae77e4fb55d49be9114021d7c0c9807f753b2ceb66c0294",
}


def trajectory_hash(board: tuple[int, int], actions: str, observation: str, traced: bool) -> str:
    """sha256 over obs, state, reward, flags and info of ``STEPS`` auto-reset steps."""
    env = Snake(*board, actions=actions, observation=observation)
    num_actions = env.num_actions

    def play(key: jax.Array, params: EnvParams):
        reset_key, key = jax.random.split(key)
        obs, state = env.reset(reset_key, params)

        def body(state, step_key):
            action_key, env_key = jax.random.split(step_key)
            # Out-of-range actions (-1, num_actions) included: they must keep going straight.
            action = jax.random.randint(action_key, (), -1, num_actions + 1)
            obs, state, reward, terminated, truncated, info = env.step(
                env_key, state, action, params
            )
            return state, (obs, state, reward, terminated, truncated, info)

        _, out = jax.lax.scan(body, state, jax.random.split(key, STEPS))
        return obs, out

    keys = jax.random.split(jax.random.key(29), ENVS)
    if traced:
        batched = jax.tree.map(lambda *xs: jnp.asarray(xs), *TRACED)
        run = jax.vmap(jax.vmap(play, in_axes=(0, None)), in_axes=(None, 0))
        result = jax.jit(run)(keys, batched)
    else:  # closed-over Python constants: the options that are off are not traced at all
        result = jax.jit(jax.vmap(lambda k: play(k, EnvParams())))(keys)
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(result):
        array = np.asarray(leaf)
        digest.update(jax.tree_util.keystr(path).encode())
        digest.update(str(array.dtype).encode() + array.tobytes())
    return digest.hexdigest()


# (width, height): 5 x 4 is not square and small enough that random play eats, starves and
# dies; on 3 x 2 it also fills the board (wins).  Each case compiles once.
CASES = [
    ((5, 4), "absolute", "planes", False),
    ((5, 4), "relative", "egocentric", False),
    *(((5, 4), a, o, True) for a in ("absolute", "relative") for o in ("planes", "egocentric")),
    ((3, 2), "absolute", "planes", True),
    ((3, 2), "relative", "egocentric", True),
]


def case_id(case: tuple) -> str:
    (width, height), actions, observation, traced = case
    return f"{width}x{height}-{actions}-{observation}-{'traced' if traced else 'static'}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_trajectories_match_the_recorded_hashes(case: tuple) -> None:
    got = trajectory_hash(*case)
    if os.environ.get("SNAKE_GOLDEN_PRINT"):
        print(f"    {case_id(case)!r}: {got!r},")
    assert got == EXPECTED[case_id(case)]
