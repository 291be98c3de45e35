"""benchmarks/snake_circuits.py: the lap and circuit of each greedy game that starves, on the
games ppo-eval plays."""

import json
from pathlib import Path

import jax
import numpy as np
from conftest import load_benchmark

from ppo_trainer.app import train_cli
from snake_gymnax import Snake

circuits = load_benchmark("snake_circuits")
TURN_LEFT = 0  # relative actions: 0 left, 1 straight, 2 right


def test_lap_is_the_fewest_steps_after_which_the_board_comes_back():
    a, b, c = (np.full((2, 2), v, np.uint8) for v in (1, 2, 3))
    assert circuits.lap(np.stack([a, b, c, a, b, c, a])) == 3
    assert circuits.lap(np.stack([b, a, a])) == 1
    assert circuits.lap(np.stack([a, b, c])) is None


def test_a_snake_that_turns_left_forever_circles_a_square_with_the_food_off_it():
    """A 3-cell snake turning left every step runs round a 2x2 square: a lap of 4 steps over 4
    cells, one of them free (ahead of the head), the food and the rest of the board off it."""
    env = Snake(5, 5, actions="relative")
    params = env.default_params
    _, state = env.reset(jax.random.key(1), params)
    bodies, heads, foods = [], [], []
    for _ in range(12):
        bodies.append(np.asarray(state.body))
        heads.append([int(state.head_row), int(state.head_col)])
        foods.append(int(state.food))
        _, state, _, done, _ = env.step_env(jax.random.key(0), state, TURN_LEFT, params)
        assert not bool(done)
    game = circuits.describe(np.stack(bodies), np.asarray(heads), np.asarray(foods))
    assert (game["length"], game["lap"], game["circuit"]) == (3, 4, 4)
    assert (game["free"], game["free_on_circuit"], game["free_off_circuit"]) == (22, 1, 21)
    assert game["food_on_circuit"] is False
    assert len(game["board"]) == 5 and "H" in "".join(game["board"])


def test_the_starved_games_are_the_crash_records_and_never_cycle_over_their_food(tmp_path):
    """A barely trained policy with the shield in its own games (so it cannot crash) and a
    starvation limit of 12 steps: the games it starves are those ``snake_crashes.py`` counts as
    starved on the same keys, and no game that cycles has the food on its circuit."""
    code = train_cli.main([
        "--env", "Snake-v0", "--optimizer", "adam", "--num-seeds", "2", "--seed", "3",
        "--num-envs", "4", "--num-steps", "32", "--total-timesteps", "256",
        "--action-mask", "true", "--rnn", "gru", "--rnn-size", "8",
        "--env-kwargs", "actions=relative,observation=egocentric,mask_fatal_moves=true",
        "--env-params", "max_steps_without_food=12",
        "--eval-episodes", "2", "--run-dir", str(tmp_path), "--run-name", "tiny"])
    assert code == 0
    run, out, page = tmp_path / "tiny", tmp_path / "circuits.json", tmp_path / "circuits.md"
    circuits.main([f"tiny={run}", "--episodes", "24", "--out", str(out), "--markdown", str(page)])
    record = json.loads(out.read_text())
    rows = record["rows"]
    assert [r["label"] for r in rows] == ["tiny #0", "tiny #1"]
    assert record["command"].startswith("python benchmarks/") and record["versions"]["jax"]
    assert page.read_text() == circuits.table(rows) and "| tiny #1 | " in page.read_text()
    load_benchmark("snake_crashes").main([str(run), "--episodes", "24",
                                          "--out", str(tmp_path / "crashes.json")])
    crashes = json.loads((tmp_path / "crashes.json").read_text())["rows"]
    assert [r["seed_index"] for r in rows] == [0, 1]
    for row, crash in zip(rows, crashes, strict=True):
        games = row["starved"]
        assert len(games) == crash["greedy"]["starved"]
        assert sorted(g["apples"] for g in games) == sorted(crash["greedy"]["starved_apples"])
        for game in games:
            assert game["steps"] >= 12
            if game["lap"] is not None:
                assert 1 <= game["lap"] <= 13 and not game["food_on_circuit"]
                assert game["free_on_circuit"] + game["free_off_circuit"] == game["free"]
    cycled = [g for r in rows for g in r["starved"] if g["lap"] is not None]
    assert cycled  # the checks above are not vacuous (this policy circles a 2x2 square)


def test_the_committed_page_follows_from_its_record(tmp_path):
    study = Path(__file__).resolve().parents[1] / "docs" / "results" / "snake-circuits"
    page = tmp_path / "results.md"
    circuits.main(["--replot", "--out", str(study / "results.json"), "--markdown", str(page)])
    assert page.read_text() == (study / "results.md").read_text()
