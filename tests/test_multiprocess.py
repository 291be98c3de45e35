"""Two real processes joined by ``jax.distributed`` (gloo CPU collectives on localhost).

Every process of a multi-process run must take the same path out of ``runner.train``: a step
that gathers the sharded state (checkpoint, final evaluation, GIF) is a collective, and one that
only process 0 enters hangs the run. These tests start two ``ppo-train`` processes, each with a
timeout so that a hang fails the test instead of stalling CI, and compare them with one process
driving two forced CPU devices: the same global batch, so the same losses up to rounding.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ppo_trainer.app.sinks import read_metrics

BASE = ["--env", "CartPole-v1", "--optimizer", "muon", "--num-envs", "8", "--num-steps", "16",
        "--num-minibatches", "2", "--update-epochs", "2", "--hidden-size", "16",
        "--total-timesteps", "2560", "--save-freq", "10", "--eval-episodes", "4"]
UPDATES, STOP_AT = 20, 10
TIMEOUT = 150  # seconds per launch: a hang fails the test

# ppo-train through its own entry point, with an interrupt after update STOP_AT (the run loop's
# should_stop hook, which acts exactly like a Ctrl-C reaching the process after that chunk)
INTERRUPTING = textwrap.dedent(
    f"""
    import sys
    from ppo_trainer.app import runner, train_cli
    train = runner.train
    runner.train = lambda config, **kw: train(config, should_stop=lambda u: u >= {STOP_AT}, **kw)
    sys.exit(train_cli.main(sys.argv[1:]))
    """
)
CLI = "import sys; from ppo_trainer.app import train_cli; sys.exit(train_cli.main(sys.argv[1:]))"
EVAL = "import sys; from ppo_trainer.app import eval_cli; sys.exit(eval_cli.main(sys.argv[1:]))"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    return {**env, **extra}


def _one_process(code: str, args: list[str], devices: int = 2) -> subprocess.CompletedProcess:
    env = _env(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)


def _two_processes(code: str, args: list[str]) -> list[tuple[int, str]]:
    """Start process 0 and 1 of one run; their exit codes and outputs. Kills both on a hang."""
    port = _free_port()
    procs = [
        subprocess.Popen([sys.executable, "-c", code, *args, "--distributed"],
                         env=_env(JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
                                  JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                                  JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i)),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in (0, 1)
    ]
    results = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=TIMEOUT)
            results.append((proc.returncode, out))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        tails = ["\n".join((proc.communicate()[0] or "").splitlines()[-8:]) for proc in procs]
        pytest.fail(f"two-process run hung (> {TIMEOUT} s):\n" + "\n---\n".join(tails))
    return results


def _losses(run: Path) -> dict[tuple[int, str], float]:
    return {(row["update"], k): v for row in read_metrics(run / "metrics.jsonl")
            for k, v in row.items() if k.startswith("losses/")}


def _assert_same_losses(run: Path, reference: Path) -> None:
    got, want = _losses(run), _losses(reference)
    assert len({update for update, _ in got}) == UPDATES
    assert got == pytest.approx(want, rel=1e-5, abs=1e-7)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One process, two forced CPU devices: the curve both processes together must give."""
    runs = tmp_path_factory.mktemp("one_process")
    done = _one_process(CLI, [*BASE, "--run-dir", str(runs), "--run-name", "ref"])
    assert done.returncode == 0, done.stderr[-2000:]
    return runs / "ref"


def test_two_processes_finish_evaluate_and_match_one_process(reference, tmp_path) -> None:
    results = _two_processes(CLI, [*BASE, "--run-dir", str(tmp_path), "--run-name", "r"])
    assert [code for code, _ in results] == [0, 0], [out[-2000:] for _, out in results]
    run = tmp_path / "r"
    assert {"eval.json", "checkpoint.msgpack", "config.json"} <= {p.name for p in run.iterdir()}
    _assert_same_losses(run, reference)
    # the final evaluation is process 0's, of the gathered state: the same as one process's
    summary = json.loads((run / "eval.json").read_text())
    assert summary == json.loads((reference / "eval.json").read_text())
    # ppo-eval on one process reproduces it from the host-gathered checkpoint
    out = tmp_path / "again.json"
    done = _one_process(EVAL, [str(run), "--json", str(out)], devices=1)
    assert done.returncode == 0, done.stderr[-2000:]
    again = json.loads(out.read_text())
    assert again["per_seed_mean_return"] == summary["per_seed_mean_return"]


def test_two_processes_interrupt_then_resume_on_two_and_on_one(reference, tmp_path) -> None:
    results = _two_processes(INTERRUPTING, [*BASE, "--run-dir", str(tmp_path), "--run-name", "r"])
    assert [code for code, _ in results] == [130, 130], [out[-2000:] for _, out in results]
    run = tmp_path / "r"
    assert len(read_metrics(run / "metrics.jsonl")) == STOP_AT
    assert not (run / "eval.json").exists()
    single = tmp_path / "single"
    shutil.copytree(run, single)

    results = _two_processes(CLI, ["--resume", str(run)])
    assert [code for code, _ in results] == [0, 0], [out[-2000:] for _, out in results]
    _assert_same_losses(run, reference)
    assert (run / "eval.json").exists()

    done = _one_process(CLI, ["--resume", str(single)])
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_same_losses(single, reference)
