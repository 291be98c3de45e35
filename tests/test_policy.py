"""Policy-only files (``ppo-export``), ``ppo-eval`` of them, and the committed Snake demo.

One tiny two-seed Snake run (5x5 board, observation normalization on so the exported statistics
matter) is trained once per module and exported several ways.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import serialization

from ppo_trainer.app import eval_cli, export_cli
from ppo_trainer.app import train_cli as cli
from ppo_trainer.app.evaluate import evaluate_run
from ppo_trainer.app.policy import load_policy, read_meta

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "docs" / "results" / "snake-wins"
BEST_10X10 = ROOT / "docs" / "results" / "snake-calm-holes-hunger" / "policy.msgpack"
RUN = ["--env", "Snake-v0", "--env-kwargs", "width=5,height=5", "--optimizer", "adam",
       "--num-envs", "4", "--num-steps", "8", "--total-timesteps", "128", "--num-minibatches", "2",
       "--update-epochs", "1", "--hidden-size", "16", "--num-hidden-layers", "1",
       "--normalize-obs", "--num-seeds", "2", "--eval-episodes", "4",
       "--env-params.max_steps_in_episode=50", "--no-anneal-lr"]
# keys only training needs: none of them may be in a policy file, at any depth
TRAINING_ONLY = {"runner_state", "opt_state", "env_state", "last_obs", "rng", "opt_step",
                 "update_step"}


def keys_of(tree: object) -> set[str]:
    if isinstance(tree, dict):
        return set(tree) | set().union(*(keys_of(v) for v in tree.values()))
    return set()


def one_line_error(err: str, *needles: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


def evaluate(path: Path, out: Path, *extra: str) -> dict:
    assert eval_cli.main([str(path), "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    assert cli.main([*RUN, "--run-dir", str(runs), "--run-name", "snake"]) == 0
    return runs / "snake"


@pytest.fixture(scope="module")
def exported(run: Path) -> Path:
    out = run.parent / "exported" / "snake.msgpack"
    out.parent.mkdir()
    assert export_cli.main([str(run), str(out)]) == 0
    return out


def test_export_holds_the_policy_and_nothing_of_training(run: Path, exported: Path) -> None:
    payload = serialization.msgpack_restore(exported.read_bytes())
    assert payload["format"] == "ppo-trainer/policy" and payload["version"] == 1
    assert {"params", "obs_norm", "meta"} <= set(payload)
    assert not keys_of(payload) & TRAINING_ONLY
    meta = json.loads(payload["meta"])
    assert meta["seeds"] == [0, 1] and meta["update"] == 4 and meta["config"]["env"] == "Snake-v0"
    assert "run_dir" not in meta["config"] and "resume" not in meta["config"]
    assert str(run.parent).encode() not in exported.read_bytes()  # no machine path
    # the observation statistics of both seeds, as training left them
    ckpt = serialization.msgpack_restore((run / "checkpoint.msgpack").read_bytes())
    np.testing.assert_array_equal(payload["obs_norm"]["mean"],
                                  ckpt["runner_state"]["norm"]["obs"]["mean"])
    assert float(np.asarray(payload["obs_norm"]["count"])[0]) > 128  # updated during training
    assert exported.stat().st_size < (run / "checkpoint.msgpack").stat().st_size / 2


def test_ppo_eval_of_the_export_equals_ppo_eval_of_the_run(run: Path, exported: Path,
                                                           tmp_path: Path) -> None:
    """The key equivalence: same seed, same summary (every episode), same GIF bytes."""
    of_run = evaluate(run, tmp_path / "run.json", "--gif", str(tmp_path / "run.gif"))
    of_file = evaluate(exported, tmp_path / "file.json", "--gif", str(tmp_path / "file.gif"))
    assert of_run.pop("source") == "checkpoint" and of_file.pop("source") == "policy file"
    for summary in (of_run, of_file):
        summary.pop("gif")
        summary["gif_episode"].pop("path")
    assert of_file == of_run
    assert of_run["episodes_per_seed"] == 4 and of_run["seed_indices"] == [0, 1]
    assert (tmp_path / "file.gif").read_bytes() == (tmp_path / "run.gif").read_bytes()


def test_one_seed_export_plays_that_seeds_games(run: Path, tmp_path: Path, capsys) -> None:
    small = tmp_path / "seed1.msgpack"
    assert export_cli.main([str(run), str(small), "--seed-index", "1"]) == 0
    assert "seed index 1 of 2" in capsys.readouterr().out
    of_run = evaluate(run, tmp_path / "run.json", "--gif", "none")
    of_seed = evaluate(small, tmp_path / "seed.json", "--gif", "none")
    assert of_seed["seed_indices"] == [1]
    for key, values in of_run["episodes"].items():
        assert of_seed["episodes"][key] == [values[1]], key
    # the statistics are used: shifted ones make the same parameters play other games
    payload = serialization.msgpack_restore(small.read_bytes())
    payload["obs_norm"]["mean"] = np.asarray(payload["obs_norm"]["mean"]) + 5.0
    small.write_bytes(serialization.msgpack_serialize(payload))
    shifted = evaluate(small, tmp_path / "shifted.json", "--gif", "none")
    assert shifted["episodes"] != of_seed["episodes"]


def test_half_precision_export_stores_rounded_weights_and_plays_them_widened(
        run: Path, exported: Path, tmp_path: Path, capsys) -> None:
    half = tmp_path / "half.msgpack"
    assert export_cli.main([str(run), str(half), "--dtype", "float16"]) == 0
    assert "KiB" in capsys.readouterr().out
    payload = serialization.msgpack_restore(half.read_bytes())
    full = serialization.msgpack_restore(exported.read_bytes())
    assert read_meta(half)["dtype"] == "float16" and "dtype" not in read_meta(exported)
    stored = jax.tree_util.tree_leaves(payload["params"])
    exact = jax.tree_util.tree_leaves(full["params"])
    assert {np.asarray(x).dtype for x in stored} == {np.dtype("float16")}
    for got, want in zip(stored, exact, strict=True):  # rounded once, to half precision
        np.testing.assert_array_equal(got, np.asarray(want).astype(np.float16))
    # the observation statistics stay exact (their count would overflow half precision)
    np.testing.assert_array_equal(payload["obs_norm"]["count"], full["obs_norm"]["count"])
    policy = load_policy(half)  # widened back to the network's dtype, so it computes as trained
    assert {x.dtype for x in jax.tree_util.tree_leaves(policy.params)} == {np.dtype("float32")}
    for got, want in zip(jax.tree_util.tree_leaves(policy.params), stored, strict=True):
        np.testing.assert_array_equal(got, np.asarray(want, np.float32))
    weights = sum(np.asarray(x).nbytes for x in exact)  # the file shrinks by half the weights
    assert half.stat().st_size < exported.stat().st_size - 0.45 * weights
    assert evaluate(half, tmp_path / "half.json", "--gif", "none")["episodes_per_seed"] == 4


def test_a_folder_holding_policy_msgpack_is_played_like_the_file(exported: Path,
                                                                 tmp_path: Path) -> None:
    folder = tmp_path / "agent"
    folder.mkdir()
    shutil.copy(exported, folder / "policy.msgpack")
    of_folder = evaluate(folder, tmp_path / "folder.json", "--gif", "none")
    of_file = evaluate(exported, tmp_path / "file.json", "--gif", "none")
    assert of_folder["source"] == "policy file" and of_folder == of_file
    # the default GIF goes beside the policy file, named like it
    assert eval_cli.main([str(folder), "--episodes", "1", "--gif-every", "3"]) == 0
    assert (folder / "policy.gif").read_bytes()[:3] == b"GIF"


def test_bad_paths_and_files_are_one_line_exit_2(run: Path, tmp_path: Path, capsys) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a policy")
    cases = [
        (eval_cli, [str(tmp_path / "missing.msgpack")], ("no such run directory or policy file",)),
        (eval_cli, [str(text)], ("not a policy file",)),
        (eval_cli, [str(run / "checkpoint.msgpack")], ("full training checkpoint", "ppo-export")),
        (eval_cli, [str(run), "--gif-every", "0"], ("--gif-every must be positive",)),
        (export_cli, [str(tmp_path / "nope"), str(tmp_path / "p.msgpack")],
         ("no such run directory",)),
        (export_cli, [str(run), str(tmp_path / "p.msgpack"), "--seed-index", "2"],
         ("--seed-index", "0..1")),
    ]
    for module, argv, needles in cases:
        assert module.main(argv) == 2, argv
        one_line_error(capsys.readouterr().err, *needles)
    with pytest.raises(SystemExit) as exited:  # argparse's own check, before any jax
        export_cli.main([str(run), str(tmp_path / "p.msgpack"), "--dtype", "int8"])
    assert exited.value.code == 2
    one_line_error(capsys.readouterr().err, "--dtype", "float16")
    assert not (tmp_path / "p.msgpack").exists()


def test_export_help_is_fast_no_jax() -> None:
    probe = ("import sys, ppo_trainer.app.export_cli as c\ntry: c.main(['--help'])\n"
             "except SystemExit: pass\n"
             "print(sorted(m for m in ('jax','optax','flax','gymnax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------------------------- the committed demo
@pytest.mark.parametrize("policy", [DEMO / "policy.msgpack", BEST_10X10], ids=["demo", "best"])
def test_committed_snake_policy_plays_and_eats(policy: Path, tmp_path: Path) -> None:
    """The 10x10 winners ship as policy files (the README's demo, and the preset
    ``snake-calm-holes-hunger``'s seed 48, 99.6% of 1024 greedy games, stored at half
    precision). Threshold: a uniformly random policy in this env eats 0.18 apples per episode
    (4096 episodes, none more than 3); the demo's 1024-episode evaluation eats 93.7 (4% of
    games under 50), so a mean under 50 over 8 greedy games has a bootstrap probability below
    1e-5, and no win in 8 games 0.065**8; the best one loses 4 of 1024."""
    assert policy.stat().st_size < 1_000_000
    gif = tmp_path / "demo.gif"  # not beside the committed file, ppo-eval's default
    summary = evaluate_run(policy, episodes=8, gif=str(gif), gif_every=8)
    assert summary["source"] == "policy file" and summary["unfinished_episodes"] == 0
    assert summary["mean_apples"] >= 50
    assert max(summary["episodes"]["win"][0]) == 1.0
    assert gif.read_bytes()[:3] == b"GIF" and not policy.with_suffix(".gif").exists()


def test_best_10x10_policy_carries_the_recipe_its_page_names() -> None:
    """Four hidden layers, the hole charge and the hunger channel, as
    docs/results/snake-calm-holes-hunger says, stored at half precision."""
    meta = read_meta(BEST_10X10)
    config = meta["config"]
    assert config["num_hidden_layers"] == 4 and config["env_params"]["hole_shaping"] == 1.0
    assert config["env_kwargs"]["hunger_channel"] is True and config["seed"] == 48
    assert meta["dtype"] == "float16"


def test_committed_demo_gif_is_small_and_ends_on_a_full_board() -> None:
    """The README's GIF: under 1 MB, and its last frame is a won game (no free cell left)."""
    from PIL import Image

    from snake_gymnax.frame import BACKGROUND, GRID

    gif = DEMO / "winning_game.gif"
    assert gif.stat().st_size < 1_000_000
    with Image.open(gif) as image:
        image.seek(image.n_frames - 1)
        last = np.asarray(image.convert("RGB")).reshape(-1, 3)
    free = (last == BACKGROUND).all(axis=1) | (last == GRID).all(axis=1)
    assert image.n_frames > 100 and not free.any()
