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
