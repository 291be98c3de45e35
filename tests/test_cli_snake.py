"""End-to-end ppo-train on a tiny Snake board: apples, the agent GIF, and W&B offline logging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("snake_gymnax.render")
pytest.importorskip("wandb")

from ppo_trainer import cli  # noqa: E402
from ppo_trainer.sinks import read_metrics  # noqa: E402


def test_snake_run_writes_gif_eval_and_offline_wandb_run(tmp_path: Path, monkeypatch, capsys) -> None:
    for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    argv = ["--env", "Snake-v0", "--width", "5", "--height", "5", "--optimizer", "adam",
            "--num-envs", "4", "--num-steps", "16", "--total-timesteps", "128",
            "--num-minibatches", "2", "--update-epochs", "1", "--hidden-size", "16",
            "--num-hidden-layers", "1", "--save-freq", "2", "--eval-episodes", "4",
            "--max-steps", "50", "--no-anneal-lr", "--wandb", "--run-dir", str(tmp_path),
            "--run-name", "snake"]
    assert cli.main(argv) == 0
    run = tmp_path / "snake"
    for name in ("agent.gif", "eval.json", "learning_curve.png", "checkpoint.msgpack"):
        assert (run / name).is_file(), name
    assert (run / "agent.gif").read_bytes()[:3] == b"GIF"
    summary = json.loads((run / "eval.json").read_text())
    assert "mean_apples" in summary and summary["episodes_per_seed"] == 4
    assert "apples" in capsys.readouterr().err
    assert all("charts/apples" in row for row in read_metrics(run / "metrics.jsonl"))
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
