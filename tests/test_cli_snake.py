"""End-to-end ppo-train on a tiny Snake board: apples, the agent GIF, and W&B offline logging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ppo_trainer.app import train_cli as cli
from ppo_trainer.app.sinks import read_metrics


def test_snake_run_writes_gif_eval_and_offline_wandb_run(tmp_path: Path, monkeypatch, capsys) -> None:
    for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    argv = ["--env", "Snake-v0", "--env-kwargs", "width=5,height=5", "--optimizer", "adam",
            "--num-envs", "4", "--num-steps", "16", "--total-timesteps", "128",
            "--num-minibatches", "2", "--update-epochs", "1", "--hidden-size", "16",
            "--num-hidden-layers", "1", "--save-freq", "2", "--eval-episodes", "4",
            "--env-params.max_steps_in_episode=50", "--no-anneal-lr", "--wandb", "--tensorboard",
            "--run-dir", str(tmp_path), "--run-name", "snake"]
    assert cli.main(argv) == 0
    run = tmp_path / "snake"
    for name in ("agent.gif", "eval.json", "learning_curve.png", "checkpoint.msgpack"):
        assert (run / name).is_file(), name
    assert (run / "agent.gif").read_bytes()[:3] == b"GIF"
    config = json.loads((run / "config.json").read_text())
    # the flags add to the Snake-v0 preset's constructor arguments and params
    assert config["env_kwargs"] == {"width": 5, "height": 5, "actions": "relative",
                                    "observation": "egocentric"}
    assert config["env_params"] == {"max_steps_in_episode": 50, "starvation_is_death": True}
    summary = json.loads((run / "eval.json").read_text())
    # Snake's info values reach the metrics, the eval and the log through the generic path
    assert {"mean_apples", "mean_win", "mean_length"} <= set(summary)
    assert summary["episodes_per_seed"] == 4
    assert "apples" in capsys.readouterr().err
    rows = read_metrics(run / "metrics.jsonl")
    assert all({"charts/apples", "charts/win", "charts/length"} <= set(row) for row in rows)
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    scalars = read_tensorboard_scalars(events[0])
    assert {"charts/episodic_return", "charts/apples", "losses/value_loss", "charts/SPS",
            "eval/mean_apples"} <= set(scalars)
    assert [step for step, _ in scalars["losses/value_loss"]] == [64, 128]  # 4 envs x 16 steps per update


def read_tensorboard_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars of an event file (TFRecord framing: length, crc, Event proto, crc)."""
    import struct

    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
        pos += 12 + length + 4
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_keep_best_by_an_info_key_ranks_by_its_mean(tmp_path: Path, capsys) -> None:
    """``--keep-best-by apples``: the kept policy is the first evaluation with the most apples
    per game (not the best return), its file names that metric, a resumed run ranks a file
    picked by another key as no pick at all, and an unknown key is a one-line error."""
    import numpy as np

    from ppo_trainer.app.policy import read_meta
    from ppo_trainer.app.rundir import RunDir
    from ppo_trainer.app.runner import best_so_far

    argv = ["--env", "Snake-v0", "--env-kwargs", "width=5,height=5", "--optimizer", "adam",
            "--num-envs", "4", "--num-steps", "16", "--total-timesteps", "256",
            "--num-minibatches", "2", "--update-epochs", "1", "--hidden-size", "16",
            "--num-hidden-layers", "1", "--eval-episodes", "8", "--eval-freq", "1",
            "--keep-best", "--env-params.max_steps_in_episode=50", "--no-anneal-lr",
            "--run-dir", str(tmp_path)]
    assert cli.main([*argv, "--keep-best-by", "apples", "--run-name", "apples"]) == 0
    run = tmp_path / "apples"
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    scores = [float(np.mean(e["episodes"]["apples"])) for e in evals]
    meta = read_meta(run / "best_policy.msgpack")
    assert meta["update"] == evals[int(np.argmax(scores))]["update"]
    assert meta["selection"] == {"score": pytest.approx(max(scores)),
                                 "metric": "mean greedy apples", "episodes_per_seed": 8}
    assert best_so_far(RunDir(run), "apples") == pytest.approx(max(scores))
    assert best_so_far(RunDir(run), "return") is None  # picked by another key: no pick yet

    capsys.readouterr()
    assert cli.main([*argv, "--keep-best-by", "score", "--run-name", "bad"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--keep-best-by 'score'" in err and "'apples'" in err
