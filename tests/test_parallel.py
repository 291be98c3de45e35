"""Data-parallel training (ppo_trainer/parallel.py): 4 forced CPU devices vs 1, sharding, CLI.

The device count is fixed when XLA's CPU backend starts, so the multi-device checks run in two
subprocesses started with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``. Each child prints one JSON line of results;
the tests below assert on them. Small CartPole configs keep both children to ~10-20 s each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from ppo_trainer import parallel
from ppo_trainer.app import train_cli as cli

LIBRARY_CHILD = textwrap.dedent(
    """
    import json
    import jax, numpy as np
    from ppo_trainer import parallel
    from ppo_trainer.config import TrainConfig
    from ppo_trainer.envs import make_env
    from ppo_trainer.optim import make_optimizer
    from ppo_trainer.ppo import Trainer

    # normalization on: its statistics must be those of the global batch on any device count;
    # the average of the weights (--weights-ema) replicated and equal, as the weights are
    cfg = TrainConfig(env="CartPole-v1", network="mlp", hidden_size=16, num_envs=8, num_steps=8,
                      total_timesteps=256, update_epochs=2, num_minibatches=2, optimizer="muon",
                      normalize_obs=True, normalize_reward=True, weights_ema=0.9)
    env, env_params = make_env(cfg)
    tx, lr_schedule = make_optimizer(cfg)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)  # 2 seeds x 4 devices in one program
    out = {"device_count": jax.device_count(), "xla_flags": __import__("os").environ["XLA_FLAGS"]}
    runs = {}
    replicated_parts = lambda state: (state.params, state.opt_state, state.ema)
    for n in (1, 2, 4):
        calls = []
        mesh = parallel.make_mesh(jax.devices()[:n]) if n > 1 else None
        trainer = Trainer(cfg, env, env_params, tx, lr_schedule=lr_schedule, mesh=mesh,
                               progress_fn=lambda u, m, calls=calls: calls.append(int(u)))
        state, run = parallel.jit_trainer(trainer, keys, 4, mesh)
        state, metrics = run(state)
        state, metrics = jax.block_until_ready((state, metrics))
        runs[n] = (state, metrics)
        env_leaves = jax.tree.leaves(state.env_state) + [state.last_obs]
        out[n] = {
            "callbacks": len(calls),
            "env_devices": sorted({len(x.sharding.device_set) for x in env_leaves}),
            "env_shard_rows": sorted({s.data.shape[1] for x in env_leaves
                                      for s in x.addressable_shards}),
            "params_replicated": all(x.sharding.is_fully_replicated
                                     for x in jax.tree.leaves(replicated_parts(state))),
            "params_devices": sorted({len(x.sharding.device_set)
                                      for x in jax.tree.leaves(replicated_parts(state))}),
            "shards_identical": all(
                all(np.array_equal(np.asarray(s.data), np.asarray(x.addressable_shards[0].data))
                    for s in x.addressable_shards)
                for x in jax.tree.leaves(replicated_parts(state))),
        }
    for n in (2, 4):
        m1, mn = runs[1][1], runs[n][1]
        out[n]["metric_diff"] = {k: float(np.nanmax(np.abs(np.asarray(m1[k], np.float64)
                                                           - np.asarray(mn[k], np.float64))))
                                 for k in m1}
        out[n]["param_diff"] = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                                   for a, b in zip(jax.tree.leaves(replicated_parts(runs[1][0])),
                                                   jax.tree.leaves(replicated_parts(runs[n][0]))))
        out[n]["env_equal_obs_diff"] = float(np.max(np.abs(np.asarray(runs[1][0].last_obs)
                                                           - np.asarray(runs[n][0].last_obs))))
        out[n]["norm_diff"] = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                                  for a, b in zip(jax.tree.leaves(runs[1][0].norm),
                                                  jax.tree.leaves(runs[n][0].norm)))
        out[n]["norm_count"] = float(np.asarray(runs[n][0].norm.obs.count).reshape(-1)[0])
    print("RESULT " + json.dumps(out))
    """
)

CLI_CHILD = textwrap.dedent(
    """
    import json, sys
    import jax
    from jax._src import xla_bridge
    from ppo_trainer.app import runner
    from ppo_trainer.app import train_cli as cli
    from ppo_trainer.app.sinks import read_metrics

    runs = sys.argv[1]
    base = ["--env", "CartPole-v1", "--optimizer", "muon", "--num-envs", "8", "--num-steps", "8",
            "--total-timesteps", "256", "--num-minibatches", "2", "--update-epochs", "1",
            "--hidden-size", "16", "--num-hidden-layers", "1", "--save-freq", "2",
            "--eval-episodes", "4", "--num-seeds", "2", "--run-dir", runs]
    out = {}

    # --distributed: jax.distributed.initialize is called before any computation, with the
    # process count / id from the environment (monkeypatched: no coordinator here).
    calls = []
    def fake_initialize(**kwargs):
        calls.append({"kwargs": kwargs, "backends_up": xla_bridge.backends_are_initialized()})
    jax.distributed.initialize = fake_initialize
    out["rc_distributed"] = cli.main(base + ["--run-name", "d4", "--distributed"])
    out["initialize_calls"] = calls

    out["rc_d1"] = cli.main(base + ["--run-name", "d1", "--devices", "1"])
    # interrupted on 4 devices after 2 updates, resumed on 2 devices
    cfg = cli.parse_args(base + ["--run-name", "r"]).config
    try:
        runner.train(cfg, progress=False, should_stop=lambda u: u >= 2)
    except Exception as exc:
        out["interrupt"] = type(exc).__name__
    out["rc_resume"] = cli.main(["--resume", f"{runs}/r", "--devices", "2"])
    out["rc_indivisible"] = cli.main(base + ["--run-name", "bad", "--num-envs", "6"])
    out["rc_too_many"] = cli.main(base + ["--run-name", "bad2", "--devices", "8"])
    for name in ("d4", "d1", "r"):
        out[name] = read_metrics(f"{runs}/{name}/metrics.jsonl")
    print("RESULT " + json.dumps(out))
    """
)


def _run_child(code: str, *args: str) -> tuple[dict, str]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), proc.stderr


@pytest.fixture(scope="module")
def library() -> dict:
    return _run_child(LIBRARY_CHILD)[0]


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    return _run_child(CLI_CHILD, str(tmp_path_factory.mktemp("runs")))


# --------------------------------------------------------------------------- library, 4 devices


def test_child_sees_four_devices(library: dict) -> None:
    assert library["device_count"] == 4


@pytest.mark.parametrize("n", [2, 4])
def test_env_state_is_split_and_params_replicated(library: dict, n: int) -> None:
    run = library[str(n)]
    assert run["env_devices"] == [n]  # every env_state leaf and last_obs spans n devices
    assert run["env_shard_rows"] == [8 // n]  # each device holds num_envs / n envs (per seed)
    assert run["params_replicated"] and run["params_devices"] == [n]
    assert run["shards_identical"]  # params and Muon/Adam state equal on every device


@pytest.mark.parametrize("n", [2, 4])
def test_same_learning_curve_as_one_device(library: dict, n: int) -> None:
    """Same global batch and seed: equal up to float reassociation of the gradient all-reduce."""
    run = library[str(n)]
    for name, diff in run["metric_diff"].items():
        assert diff <= 1e-4, (name, diff)
    assert run["metric_diff"]["charts/episodic_return"] == 0.0  # same env trajectories
    assert run["param_diff"] <= 1e-4
    assert run["env_equal_obs_diff"] <= 1e-5
    # normalization statistics over the global batch: 8 envs x (1 reset + 4 x 8 steps) samples
    assert run["norm_diff"] <= 1e-4 and run["norm_count"] == pytest.approx(8 * 33 + 1e-4)


def test_progress_callback_once_per_update_and_seed(library: dict) -> None:
    assert library["1"]["callbacks"] == library["4"]["callbacks"] == 2 * 4


# --------------------------------------------------------------------------- CLI, 4 devices


def test_distributed_flag_initializes_before_any_computation(cli_runs: tuple[dict, str]) -> None:
    out, stderr = cli_runs
    assert out["rc_distributed"] == 0
    assert len(out["initialize_calls"]) == 1
    assert out["initialize_calls"][0]["backends_up"] is False
    assert "training on 4 device(s): cpu" in stderr  # all (global) devices by default


def test_cli_devices_match_and_resume_on_other_device_count(cli_runs: tuple[dict, str]) -> None:
    out, stderr = cli_runs
    assert out["rc_d1"] == 0 and out["rc_resume"] == 0
    assert out["interrupt"] == "TrainingInterrupted"
    assert "training on 1 device(s)" in stderr and "training on 2 device(s)" in stderr
    d4, d1, resumed = out["d4"], out["d1"], out["r"]
    assert len(d4) == len(d1) == len(resumed) == 2 * 4  # 2 seeds x 4 updates
    for a, b, c in zip(d4, d1, resumed, strict=True):
        assert a["global_step"] == b["global_step"] == c["global_step"]
        for key in ("losses/loss", "losses/value_loss", "charts/learning_rate"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5)
            assert a[key] == pytest.approx(c[key], rel=1e-4, abs=1e-5)


def test_cli_device_errors_are_one_line_exit_2(cli_runs: tuple[dict, str]) -> None:
    out, stderr = cli_runs
    assert out["rc_indivisible"] == 2 and out["rc_too_many"] == 2
    assert "ppo-train: error: --num-envs 6 must divide by the device count 4" in stderr
    assert "ppo-train: error: --devices 8 but only 4 device(s) are visible" in stderr


# --------------------------------------------------------------------------- in-process


def test_explicit_device_count_must_divide_num_envs(capsys) -> None:
    assert cli.main(["--env", "CartPole-v1", "--num-envs", "6", "--devices", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ppo-train: error: --num-envs 6 must divide by the device count 4 (--devices)"
    assert cli.main(["--env", "CartPole-v1", "--devices", "-1"]) == 2


def _fake_devices(per_process: int, processes: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=p * per_process + i, process_index=p, platform="gpu")
            for p in range(processes) for i in range(per_process)]


def test_select_devices_is_global_and_balanced_across_processes() -> None:
    devices = _fake_devices(4, 2)  # what jax.devices() lists on 2 hosts x 4 GPUs
    assert parallel.select_devices(None, devices) == devices  # default: every global device
    assert parallel.select_devices(0, devices) == devices
    picked = parallel.select_devices(4, devices)
    assert [(d.process_index, d.id) for d in picked] == [(0, 0), (0, 1), (1, 4), (1, 5)]
    with pytest.raises(ValueError, match="must divide by the process count 2"):
        parallel.select_devices(3, devices)
    with pytest.raises(ValueError, match="only 8 device"):
        parallel.select_devices(16, devices)
    assert parallel.select_devices(2, _fake_devices(4, 1)) == _fake_devices(4, 1)[:2]


def test_initialize_distributed_passes_process_env_vars(monkeypatch) -> None:
    import jax

    seen = {}
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: seen.update(kw))
    monkeypatch.setattr(parallel, "_INITIALIZED", False)
    monkeypatch.setenv("JAX_NUM_PROCESSES", "1")
    monkeypatch.setenv("JAX_PROCESS_ID", "0")
    info = parallel.initialize_distributed()
    assert seen == {"num_processes": 1, "process_id": 0}
    assert info == {"process_index": 0, "process_count": 1}


def test_devices_flags_in_help(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert "--devices" in text and "--distributed" in text
