"""benchmarks/snake_crashes.py: every lost game gets one cause, on the games ppo-eval plays."""

import json
from collections import Counter

import pytest
from conftest import load_benchmark

from ppo_trainer.app import train_cli
from ppo_trainer.app.evaluate import evaluate_run


@pytest.mark.parametrize("trained_shielded", [False, True])
def test_lost_games_are_classified_and_the_shield_removes_the_blunders(
        tmp_path, capsys, trained_shielded):
    """A barely trained policy (greedy: mostly straight into a wall while a turn was safe):
    the counts add up to the games played, its greedy wins are ppo-eval's, and with the shield
    no game ends in a blunder. Trained with the shield (``mask_fatal_moves`` + ``--action-mask``),
    its own games have no blunder either: the policy plays with its run's mask, as in ppo-eval.
    That policy is recurrent, so its games carry its memory, as ppo-eval's do (same wins).
    A starvation limit of 12 steps makes the shielded games starve, so each starved game keeps
    the probability of its greedy move (at least 1/3 of three moves) and a value estimate."""
    kwargs = "actions=relative,observation=egocentric"
    shield = ["--action-mask", "true", "--rnn", "gru", "--rnn-size", "8"] if trained_shielded else []
    run = tmp_path / "tiny"
    code = train_cli.main([
        "--env", "Snake-v0", "--optimizer", "adam", "--num-seeds", "2", "--seed", "3",
        "--num-envs", "4", "--num-steps", "32", "--total-timesteps", "256", *shield,
        "--env-kwargs", kwargs + (",mask_fatal_moves=true" if trained_shielded else ""),
        "--env-params", "max_steps_without_food=12",
        "--eval-episodes", "2", "--run-dir", str(tmp_path), "--run-name", "tiny"])
    assert code == 0
    out = tmp_path / "crashes.json"
    load_benchmark("snake_crashes").main([str(run), "--episodes", "24", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["seed_index"] for r in rows] == [0, 1]
    wins = evaluate_run(run, episodes=24, gif="none")["per_seed_mean_win"]
    for row, win in zip(rows, wins, strict=True):
        for mode in ("greedy", "shielded"):
            r = row[mode]
            lost = sum(r[k] for k in ("blunder", "cornered", "starved", "unfinished"))
            assert r["wins"] + lost == 24 and len(r["lost_apples"]) == lost
            assert len(r["starved_apples"]) == r["starved"]
            assert not Counter(r["starved_apples"]) - Counter(r["lost_apples"])  # a sub-multiset
            assert r["blunder_wall"] + r["blunder_next_to_tail"] <= r["blunder"]
            assert len(r["starved_move_prob"]) == len(r["starved_value"]) == r["starved"]
            assert all(1 / 3 - 1e-6 <= p <= 1 for p in r["starved_move_prob"])
            assert len(r["starved_food_reachable"]) == r["starved"]
            assert all(isinstance(b, bool) for b in r["starved_food_reachable"])
        assert row["greedy"]["wins"] == round(win * 24)
        assert row["shielded"]["blunder"] == 0
    assert sum(r["shielded"]["starved"] for r in rows) > 0  # the checks above are not vacuous
    blunders = sum(r["greedy"]["blunder"] for r in rows)
    assert blunders == 0 if trained_shielded else blunders > 0  # the latter: not vacuous
    if not trained_shielded:  # barely trained: it drives into walls, not into its short body
        assert sum(r["greedy"]["blunder_wall"] for r in rows) == blunders
    assert "tiny #1 shielded" in capsys.readouterr().out
    if not trained_shielded:  # --append keeps the rows of other labels, replaces its own
        bench = load_benchmark("snake_crashes")
        bench.main([f"again={run}", "--episodes", "24", "--out", str(out), "--append"])
        bench.main([f"again={run}", "--episodes", "24", "--out", str(out), "--append"])
        again = json.loads(out.read_text())["rows"]
        assert [r["label"] for r in again] == [r["label"] for r in rows] + ["again #0", "again #1"]
        assert [r["greedy"] for r in again[2:]] == [r["greedy"] for r in rows]
        bench.main([str(run), "--episodes", "24", "--out", str(out), "--append"])  # in place
        assert [r["label"] for r in json.loads(out.read_text())["rows"]] == [
            r["label"] for r in again]
        # --seed plays ppo-eval --seed's games (a kept-best policy's report is on other games)
        bench.main([f"seed9={run}", "--episodes", "24", "--seed", "9", "--out", str(out)])
        other = json.loads(out.read_text())["rows"]
        wins9 = evaluate_run(run, episodes=24, seed=9, gif="none")["per_seed_mean_win"]
        assert [r["greedy"]["wins"] for r in other] == [round(w * 24) for w in wins9]
        assert [r["eval_seed"] for r in other] == [9, 9] and rows[0]["eval_seed"] == 3
        assert [r["greedy"]["lost_apples"] for r in other] != [
            r["greedy"]["lost_apples"] for r in rows]  # other games, not the run's own


def test_judged_step_says_whether_the_apple_was_reachable_and_rows_dump_one_per_line() -> None:
    """A 5x5 board whose apple at (4, 4) is walled off by two body cells: not reachable from
    the head at (0, 0); the same board with the apple at (2, 2): reachable. The record's
    dump reads back as the record, one row per line."""
    import jax
    import jax.numpy as jnp
    from gymnax.wrappers.purerl import LogWrapper

    from snake_gymnax import Snake

    bench = load_benchmark("snake_crashes")
    env = LogWrapper(Snake(width=5, height=5))
    params = env._env.default_params
    _, state = env.reset(jax.random.PRNGKey(0), params)
    body = jnp.zeros((5, 5), jnp.int8).at[0, 0].set(4).at[3, 4].set(3).at[4, 3].set(2)
    body = body.at[1, 0].set(1)
    board = state.env_state.replace(body=body.astype(state.env_state.body.dtype),
                                    head_row=jnp.int32(0), head_col=jnp.int32(0),
                                    direction=jnp.int32(1), length=jnp.int32(4))
    judged = bench.Judged(env)
    seen = []
    for food in (4 * 5 + 4, 2 * 5 + 2):
        s = state.replace(env_state=board.replace(food=jnp.int32(food)))
        *_, info = judged.step(jax.random.PRNGKey(1), s, (1, 1.0, 0.0), params)
        seen.append(bool(info["food_reachable"]))
    assert seen == [False, True]
    record = {"rows": [{"label": "a #0", "greedy": {"lost_apples": [1, 2]}}, {"label": "b #0"}],
              "classes": ["starved"], "jax": "0"}
    text = bench.dump(record)
    assert json.loads(text) == record and text.count("\n") == 8
