"""What kills a Snake policy: each lost greedy game by its cause, with and without a one-step
safety shield at evaluation.

    python benchmarks/snake_crashes.py snake-perfect=docs/results/snake-perfect/policy.msgpack \\
        --episodes 1024 --out docs/results/snake-crashes/results.json

Each policy (``[LABEL=]PATH``: a policy file or a run directory; every seed it holds) plays the games
``ppo-eval POLICY --episodes N`` plays (same keys), greedily, and each game that is not won is
put in one class by its last step:

- ``blunder``: a move that did not die at once existed, and the policy chose one that did
  (a wall or its body; ``blunder_wall`` and ``blunder_next_to_tail`` count the ones into a wall
  and into the body cell next to the tail, which frees one step too late);
- ``cornered``: every move died at once (the snake had closed itself in earlier);
- ``starved``: the starvation limit ended it (the policy circled);
- ``unfinished``: still running at the step cap.

Each starved game also keeps what the policy thought at its last step: the probability of the
move it chose and its value estimate (``starved_move_prob``, ``starved_value``), which tells a
loop the policy is sure of from a near tie that greedy play breaks badly, and whether the apple
was reachable from the head then (``starved_food_reachable``: the apple's cell in the
reachability flood fill of ``snake_gymnax.reach``, the board as a snapshot), which tells a loop
with a way to the apple from one around an apple walled off by the body.

The policy plays with its own action mask, if it was trained with one, and a recurrent policy
with its memory carried from step to step (as ``ppo-eval`` does).
Then the same games again with the shield: the moves that die at once get probability 0
(``Snake.shielded_actions``: ``Snake(mask_fatal_moves=True)`` with ``--action-mask``, applied
here at evaluation only), so a
policy trained without it shows what the shield alone would save. The record keeps the counts,
the apples eaten in each lost game and those of each starved one.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ppo_trainer.app.evaluate import eval_key, play_episodes, step_cap
from ppo_trainer.app.policy import load_playable
from snake_gymnax import reach, rules
from snake_gymnax.state import flat_index

CLASSES = ("blunder", "cornered", "starved", "unfinished")
JUDGED = ("win", "starved", "apples", "had_safe_move", "chose_fatal", "entered",
          "move_prob", "value", "food_reachable")


def unwrapped(env: Any) -> Any:
    """The Snake inside gymnax's wrappers (they keep the inner env as ``_env``)."""
    while hasattr(env, "_env"):
        env = env._env
    return env


class Judged:
    """The evaluation env, with ``info`` saying whether a safe move existed before each step,
    whether the chosen one died at once, and the body counter of the cell it entered (-1 off the
    board; 2 is the cell next to the tail), so ``play_episodes`` keeps them at each game's end.
    Its action is ``(move, move_prob, value)``: the policy's probability of the move and its
    value estimate pass into ``info`` as well."""

    def __init__(self, env: Any) -> None:
        self.env, self.snake = env, unwrapped(env)
        self.reset = env.reset

    def step(self, key: Any, state: Any, judged_action: tuple, params: Any) -> tuple:
        action, move_prob, value = judged_action
        before = state.env_state
        safe = self.snake.safe_actions(before)
        row, col, flat, *_ = rules.head_move(before, self.snake.next_direction(before.direction, action))
        inside = (row >= 0) & (row < before.body.shape[0]) & (col >= 0) & (col < before.body.shape[1])
        entered = jnp.where(inside, before.body.reshape(-1)[flat].astype(jnp.int32), -1)
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        board = reach.reachable(before.body, before.head_row, before.head_col)
        # no cell matches the food index once the board is full, as in the food channel
        food_reachable = (board & (flat_index(*board.shape) == before.food)).any()
        info = {**info, "had_safe_move": safe.any(), "chose_fatal": ~safe[action],
                "entered": entered, "move_prob": move_prob, "value": value,
                "food_reachable": food_reachable}
        return obs, state, reward, terminated, truncated, info


def judge(path: Path, episodes: int, label: str = "",
          seed: int | None = None) -> list[dict[str, Any]]:
    """Per seed the policy holds: counts of wins and of each loss class, without and with the
    shield, and the apples of each lost game. The seeds play vmapped, with the keys of
    ``ppo-eval``'s ``Evaluator``, so the unshielded games are exactly ``ppo-eval``'s (with the
    same ``seed``; default the run's own)."""
    policy = load_playable(path)
    trainer, env_params, config = policy.setup.trainer, policy.setup.env_params, policy.config
    env = Judged(trainer.eval_env)
    seed = config.seed if seed is None else seed
    keys = jax.random.split(eval_key(seed, policy.update), config.num_seeds)
    keys = keys[jnp.asarray(policy.seeds, jnp.int32)]
    modes = {}
    for shield in (False, True):
        def games(params: Any, norm: Any, key: Any, shield: bool = shield) -> dict[str, Any]:
            def act(_keys: Any, obs: Any, state: Any, memory: Any) -> tuple[Any, Any]:
                mask = trainer.masks(state.env_state)  # the run's own (--action-mask), if any
                if shield:
                    mask = jax.vmap(env.snake.shielded_actions)(state.env_state)
                memory, pi, value = trainer.act(params, memory, trainer.network_input(norm, obs),
                                                mask)
                move = pi.mode()
                return (move, pi.prob(move), value), memory

            return play_episodes(env, env_params, episodes, step_cap(env_params), act,
                                 info_keys=JUDGED, memory=trainer.initial_carry(episodes))(key)

        out = jax.device_get(jax.jit(jax.vmap(games))(policy.params, policy.norm, keys))
        modes["shielded" if shield else "greedy"] = out
    return [{"policy": str(path), "label": f"{label or path} #{seed_index}",
             "seed_index": seed_index, "run_seed": config.seed, "eval_seed": seed,
             "episodes": episodes,
             **{mode: classify({k: v[i] for k, v in out.items()}) for mode, out in modes.items()}}
            for i, seed_index in enumerate(policy.seeds)]


def classify(games: dict[str, Any]) -> dict[str, Any]:
    """Win and loss-class counts of one set of games, and the apples of the lost ones."""
    won = np.asarray(games["win"]) > 0
    finished = np.asarray(games["finished"], bool)
    starved = finished & ~won & (np.asarray(games["starved"]) > 0)
    crashed = finished & ~won & ~starved
    had_safe = np.asarray(games["had_safe_move"]) > 0
    classes = {"blunder": crashed & had_safe & (np.asarray(games["chose_fatal"]) > 0),
               "cornered": crashed & ~had_safe, "starved": starved, "unfinished": ~finished}
    lost = ~won
    apples = np.asarray(games["apples"])
    entered = np.asarray(games["entered"])
    move_prob, value = np.asarray(games["move_prob"]), np.asarray(games["value"])
    return {"wins": int(won.sum()), **{k: int(v.sum()) for k, v in classes.items()},
            "blunder_wall": int((classes["blunder"] & (entered < 0)).sum()),
            "blunder_next_to_tail": int((classes["blunder"] & (entered == 2)).sum()),
            "lost_apples": apples[lost].astype(int).tolist(),
            "starved_apples": apples[starved].astype(int).tolist(),
            "starved_move_prob": np.round(move_prob[starved].astype(float), 4).tolist(),
            "starved_value": np.round(value[starved].astype(float), 2).tolist(),
            "starved_food_reachable": (np.asarray(games["food_reachable"])[starved] > 0).tolist()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policies", nargs="+", metavar="[LABEL=]PATH",
                        help="policy files or run directories, each optionally named")
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--out", type=Path, required=True, help="results JSON to write")
    parser.add_argument("--seed", type=int, default=None,
                        help="evaluation seed, as ppo-eval's --seed (default: each run's own, "
                        "which replays its evaluation; a --keep-best policy is reported on "
                        "other games: give the seed its report used)")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows already in --out (a row of the same label is replaced "
                        "where it stands)")
    args = parser.parse_args(argv)
    start = time.time()
    named = [arg.split("=", 1) if "=" in arg else ("", arg) for arg in args.policies]
    rows = [row for label, path in named
            for row in judge(Path(path), args.episodes, label, args.seed)]
    for row in rows:
        for mode in ("greedy", "shielded"):
            r = row[mode]
            print(f"{row['label']} {mode}: {r['wins']}/{row['episodes']} "
                  "won; lost: " + ", ".join(f"{k} {r[k]}" for k in CLASSES))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and args.out.exists():  # a row of the same label is replaced in its place
        new = {row["label"]: row for row in rows}
        kept = [new.pop(row["label"], row) for row in json.loads(args.out.read_text())["rows"]]
        rows = kept + list(new.values())
    record = {"rows": rows, "classes": list(CLASSES), "seconds": round(time.time() - start, 1),
              "machine": platform.machine(), "jax": jax.__version__}
    args.out.write_text(dump(record))


def dump(record: dict[str, Any]) -> str:
    """The record as JSON with one row per line and no spaces after separators: diffable, and
    less than half the size of an indented dump (a row keeps the apples, move probability and
    value of every lost game, a thousand of each for a policy that collapsed)."""
    rows = ",\n  ".join(json.dumps(row, separators=(",", ":")) for row in record["rows"])
    rest = "".join(f",\n {json.dumps(k)}: {json.dumps(v)}" for k, v in record.items()
                   if k != "rows")
    return f'{{\n "rows": [\n  {rows}\n ]{rest}\n}}\n'


if __name__ == "__main__":
    main()
