"""Pinned metrics: short runs must give the numbers recorded in ``tests/data/ppo_pinned.json``.

A refactor of the PPO core (or of an env, a network, an optimizer) must not change what a seed
trains. Each case below is a few updates of one network type or one optional path (observation
and reward normalization, Box actions, action masks, symmetry augmentation, dropout, Muon,
vmapped seeds); every metric of every update and a fingerprint of the final parameters are
compared to 1e-6 relative.

The numbers are kept per jax/jaxlib version, backend and CPU vendor (one record each in the
JSON): XLA compiles for the host CPU, and the same jax on an Intel and an AMD CPU rounds a few
metrics differently (approx_kl by ~1% at 1e-7), so a run is compared with the record of its own
kind, and the test skips, with the reason, where none exists. After a change that is *meant* to
change the numbers, re-record them on each kind of machine with
``python tests/test_ppo_pinned.py --record`` (it replaces that machine's record, keeps the
others) and say why in the commit.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # conftest's helpers when run as a script
from conftest import tiny_config  # noqa: E402

from ppo_trainer.envs import make_env  # noqa: E402
from ppo_trainer.optim import make_optimizer  # noqa: E402
from ppo_trainer.ppo import make_train  # noqa: E402

DATA = Path(__file__).parent / "data" / "ppo_pinned.json"
SNAKE = dict(env="Snake-v0", env_kwargs={"width": 5, "height": 5}, num_envs=8, num_steps=16)

# name -> (config overrides, optimizer: "adam" (plain optax) or "registry", vmapped seeds)
CASES: dict[str, tuple[dict[str, Any], str, int]] = {
    "cartpole_mlp": (dict(total_timesteps=4 * 8 * 3), "adam", 1),
    "cartpole_mlp_muon_2seeds": (dict(optimizer="muon", total_timesteps=4 * 8 * 3), "registry", 2),
    "pendulum_mlp_normalized": (
        dict(env="Pendulum-v1", num_envs=8, total_timesteps=8 * 8 * 3, normalize_obs=True,
             normalize_reward=True, clip_value_loss=False, state_dependent_std=True), "adam", 1),
    "snake_mlp_mask_symmetry": (
        dict(**SNAKE, total_timesteps=8 * 16 * 2, action_mask=True, augment_symmetry=True),
        "adam", 1),
    "snake_cnn": (dict(**SNAKE, network="cnn", total_timesteps=8 * 16 * 2), "adam", 1),
    "snake_transformer_dropout": (
        dict(**SNAKE, network="transformer", d_model=16, num_layers=1, num_heads=2, dropout=0.1,
             total_timesteps=8 * 16 * 2), "adam", 1),
}


def run_case(name: str) -> dict[str, list[Any]]:
    """Metrics (per update, per seed) and a fingerprint of the final parameters of one case."""
    overrides, optimizer, seeds = CASES[name]
    cfg = tiny_config(**overrides)
    env, env_params = make_env(cfg)
    if optimizer == "registry":
        tx, lr_schedule = make_optimizer(cfg)
    else:
        tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.lr, eps=1e-5))
        lr_schedule = None
    train = make_train(cfg, env, env_params, tx, lr_schedule=lr_schedule)
    if seeds > 1:
        state, metrics = jax.jit(jax.vmap(train))(jax.random.split(jax.random.PRNGKey(0), seeds))
    else:
        state, metrics = jax.jit(train)(jax.random.PRNGKey(0))
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(state.params)]
    out = {k: np.asarray(v, np.float64).ravel().tolist() for k, v in sorted(metrics.items())}
    out["params/sum"] = [float(sum(x.sum() for x in leaves))]
    out["params/sum_sq"] = [float(sum(np.square(x).sum() for x in leaves))]
    return out


def _cpu_vendor() -> str:
    """The CPU's vendor (``GenuineIntel``, ``AuthenticAMD``), which XLA's CPU code depends on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    return {"jax": jax.__version__, "jaxlib": metadata.version("jaxlib"),
            "backend": jax.default_backend(), "cpu": _cpu_vendor()}


def _records() -> list[dict[str, Any]]:
    return json.loads(DATA.read_text())["records"]


def _recorded() -> dict[str, Any] | None:
    """This machine's record, if one was taken on its kind."""
    return next((r for r in _records() if r["versions"] == _versions()), None)


@pytest.mark.parametrize("name", sorted(CASES))
def test_short_run_gives_the_pinned_metrics(name: str) -> None:
    recorded = _recorded()
    if recorded is None:
        pytest.skip(f"metrics pinned on {[r['versions'] for r in _records()]}, this is "
                    f"{_versions()}: XLA's rounding may differ; re-record here to compare")
    expected, got = recorded["cases"][name], run_case(name)
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(np.asarray(got[key], np.float64),
                                   np.asarray(expected[key], np.float64),
                                   rtol=1e-6, atol=0.0, equal_nan=True, err_msg=f"{name}: {key}")


def test_every_case_has_pinned_numbers_that_vary() -> None:
    """Every record covers every case, and the runs it pins are not degenerate."""
    for record in _records():
        cases = record["cases"]
        assert sorted(cases) == sorted(CASES)
        for name, metrics in cases.items():
            assert len(set(metrics["losses/loss"])) > 1, name
            # Pendulum's 200-step episodes do not end within its 24 steps: NaN, pinned as such
            ended = np.isfinite(metrics["charts/episodic_return"]).any()
            assert ended != name.startswith("pendulum"), name


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_ppo_pinned.py --record  (replaces this machine's record "
                 f"in {DATA.name})")
    DATA.parent.mkdir(exist_ok=True)
    others = [r for r in _records() if r["versions"] != _versions()] if DATA.exists() else []
    record = {"versions": _versions(), "cases": {name: run_case(name) for name in sorted(CASES)}}
    DATA.write_text(json.dumps({"records": [*others, record]}, indent=1) + "\n")
    print(f"wrote {DATA}")
