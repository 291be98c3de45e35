"""``--weights-ema D``: an average of the weights that is evaluated, kept and exported, while
training goes on with the latest weights exactly as without it."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import tiny_config
from flax import serialization

from ppo_trainer.app import export_cli
from ppo_trainer.app import train_cli as cli
from ppo_trainer.envs import make_env
from ppo_trainer.optim import make_optimizer
from ppo_trainer.ppo import Trainer

RUN = ["--env", "Snake-v0", "--env-kwargs", "width=5,height=5", "--optimizer", "adam",
       "--num-envs", "4", "--num-steps", "8", "--total-timesteps", "96", "--num-minibatches", "2",
       "--update-epochs", "1", "--hidden-size", "16", "--num-hidden-layers", "1",
       "--eval-episodes", "2", "--env-params.max_steps_in_episode=30", "--no-anneal-lr"]


def assert_trees(check, a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        check(np.asarray(x), np.asarray(y))


def differ(a, b) -> bool:
    """Whether two trees of arrays differ anywhere."""
    return not all(np.array_equal(x, y)
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_the_average_follows_its_recursion_and_training_is_unchanged() -> None:
    cfg = tiny_config(total_timesteps=4 * 8 * 3)
    env, env_params = make_env(cfg)
    tx = make_optimizer(cfg)[0]  # tiny_config's Adam
    plain = Trainer(cfg, env, env_params, tx)
    averaged = Trainer(cfg.replace(weights_ema=0.75), env, env_params, tx)
    key = jax.random.PRNGKey(3)
    s_plain, s_avg = plain.init(key), averaged.init(key)
    assert s_plain.ema == {} and s_plain.policy_params is s_plain.params
    assert_trees(np.testing.assert_array_equal, s_avg.ema, s_avg.params)  # starts at the init
    expected = s_avg.params
    for _ in range(3):
        s_plain, m_plain = jax.jit(plain.run, static_argnums=1)(s_plain, 1)
        s_avg, m_avg = jax.jit(averaged.run, static_argnums=1)(s_avg, 1)
        expected = jax.tree.map(lambda e, p: 0.75 * e + 0.25 * p, expected, s_avg.params)
        assert_trees(np.testing.assert_array_equal, s_avg.params, s_plain.params)
        for k in m_plain:
            np.testing.assert_array_equal(m_avg[k], m_plain[k])
        assert_trees(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6),
                     s_avg.ema, expected)
    assert s_avg.policy_params is s_avg.ema
    assert differ(s_avg.ema, s_avg.params)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    assert cli.main([*RUN, "--weights-ema", "0.5", "--eval-freq", "1", "--keep-best",
                     "--run-dir", str(runs), "--run-name", "ema"]) == 0
    return runs / "ema"


def test_the_checkpoint_keeps_both_and_the_policy_files_hold_the_average(run: Path) -> None:
    ckpt = serialization.msgpack_restore((run / "checkpoint.msgpack").read_bytes())["runner_state"]
    out = run.parent / "ema.msgpack"
    assert export_cli.main([str(run), str(out)]) == 0
    exported = serialization.msgpack_restore(out.read_bytes())["params"]
    assert_trees(np.testing.assert_array_equal, exported, ckpt["ema"])
    assert differ(ckpt["ema"], ckpt["params"])
    best = serialization.msgpack_restore((run / "best_policy.msgpack").read_bytes())["params"]
    assert jax.tree.structure(best) == jax.tree.structure(ckpt["ema"])


def test_a_resume_keeps_the_decay_and_a_bad_one_is_a_one_line_error(run: Path, capsys) -> None:
    assert cli.main(["--resume", str(run), "--weights-ema", "0.9"]) == 2
    assert "--weights-ema" in capsys.readouterr().err
    assert cli.main([*RUN, "--weights-ema", "1.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--weights-ema must be in [0, 1)" in err, err
