"""Test-session settings shared by every test module and the subprocesses they start."""

import os
import tempfile
from pathlib import Path

# One persistent compilation cache for the whole suite and its subprocesses (they inherit the
# environment): the same small programs are compiled by many tests.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "snake_ppo_jax_xla_cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` as a module (benchmarks/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_seeds(config, num_seeds: int | None = None, eval_episodes: int = 0, eval_key: int = 1):
    """Train ``config`` (``num_seeds`` vmapped seeds) through the run loop's build step, in
    memory; returns ``(setup, final state, metrics, greedy-eval summary or None)``."""
    import jax

    from ppo_trainer.app.build import build
    from ppo_trainer.app.evaluate import Evaluator

    if num_seeds is not None:
        config = config.replace(num_seeds=num_seeds)
    setup = build(config)
    trainer = setup.trainer
    train = jax.jit(jax.vmap(lambda k: trainer.run(trainer.init(k), config.num_updates)))
    state, metrics = train(setup.keys)
    summary = None
    if eval_episodes:
        evaluator = Evaluator(trainer, setup.env_params, eval_episodes)
        summary = evaluator(state.params, state.norm, jax.random.PRNGKey(eval_key))
    return setup, state, metrics, summary


def build_state(env, cells: list[tuple[int, int]], food, direction: int):
    """A Snake state with the snake on ``cells`` (head first); ``food`` is (row, col) or None
    (a full board)."""
    import jax.numpy as jnp
    import numpy as np

    from snake_gymnax import EnvState

    body = np.zeros((env.height, env.width), np.int32)
    for i, (r, c) in enumerate(cells):
        body[r, c] = len(cells) - i
    food_flat = env.num_cells if food is None else food[0] * env.width + food[1]
    return EnvState(
        body=jnp.asarray(body, env.body_dtype),
        head_row=jnp.int32(cells[0][0]),
        head_col=jnp.int32(cells[0][1]),
        direction=jnp.int32(direction),
        food=jnp.int32(food_flat),
        length=jnp.int32(len(cells)),
        steps_without_food=jnp.int32(0),
        time=jnp.int32(0),
        dead=jnp.bool_(False),
    )


def tiny_config(**overrides):
    """A tiny CartPole config (MLP 16, 4 envs x 8 steps, 2 epochs x 2 minibatches, Adam) for
    tests of the trainer's mechanics, not of learning."""
    from ppo_trainer.config import TrainConfig

    base = dict(env="CartPole-v1", network="mlp", hidden_size=16, num_envs=4, num_steps=8,
                total_timesteps=64, update_epochs=2, num_minibatches=2, optimizer="adam")
    return TrainConfig(**{**base, **overrides})


def update_sequence(tx, params, grads: list) -> list:
    """The updates ``tx`` makes of ``grads``, one after the other, from a fresh state."""
    state, out = tx.init(params), []
    for g in grads:
        u, state = tx.update(g, state, params)
        out.append(u)
    return out
