"""The circuit of each greedy Snake game that starves: where a looping policy goes, and why the
apple is not on its way.

``snake_crashes.py`` shows that most games a strong 10x10 policy loses starve, with the looping
move at probability 1.000. This replays ``ppo-eval``'s greedy games (the same keys, so the same
games and the same starved ones), keeping the last boards of each, and for every game that
starves finds

* its **lap**: the fewest steps ``P`` after which the board (body, head, food) comes back, the
  board ``P`` steps before the last equal to the last (none within the starvation limit: the
  game did not cycle);
* its **circuit**: the cells the head enters over that lap (for a snake that follows its own
  tail, its body plus the free cells ahead of its head);
* where the **food** lies against it: never on the circuit (the head would eat it), so the food
  is in one of the free cells the circuit leaves out, and the greedy move stays off it every lap.

The record keeps, per starved game, the apples, length, lap, circuit size, free cells on and off
the circuit, and the final board as text (``H`` head, ``T`` tail, ``*`` food, ``.`` free, a
number: the body counter, the steps until that cell frees).

    python benchmarks/snake_circuits.py [LABEL=]RUN ... --episodes 1024 --out circuits.json \
        --markdown circuits.md       # --replot: the page again from --out alone

The step loop runs in Python around one jitted batched step (the boards have to come back to the
host every step to be kept), so it is slower than ``ppo-eval``: about a minute for 1024 games of
a 10x10 policy on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ppo_trainer.app.evaluate import eval_key, step_cap
from ppo_trainer.app.policy import load_playable
from ppo_trainer.envs import batched_step
from snake_gymnax.rules import hole_cells

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance  # noqa: E402
from snake_crashes import unwrapped  # noqa: E402  (the Snake inside the evaluation wrappers)

SNAKE_INFO = ("starved", "win", "apples")


def lap(boards: np.ndarray) -> int | None:
    """The fewest steps ``P >= 1`` with ``boards[-1 - P]`` equal to ``boards[-1]`` (one board per
    step along the first axis), or None if no earlier board equals the last."""
    last = boards[-1]
    for period in range(1, len(boards)):
        if np.array_equal(boards[-1 - period], last):
            return period
    return None


def board_text(body: np.ndarray, head: tuple[int, int], food: int) -> list[str]:
    """One string per row: ``H`` head, ``T`` tail (counter 1), ``*`` food, ``.`` free, else the
    body counter."""
    width = body.shape[1]
    rows = []
    for r in range(body.shape[0]):
        cells = []
        for c in range(width):
            value = int(body[r, c])
            cells.append("H" if (r, c) == tuple(head) else "*" if r * width + c == food
                         else "." if value == 0 else "T" if value == 1 else str(value))
        rows.append(" ".join(f"{cell:>2}" for cell in cells))
    return rows


def describe(bodies: np.ndarray, heads: np.ndarray, foods: np.ndarray) -> dict[str, Any]:
    """One starved game from its last boards (oldest first; ``heads`` ``(steps, 2)``, ``foods``
    flat cell indices): its lap, circuit and where the food is."""
    height, width = bodies.shape[1:]
    food_planes = np.zeros(bodies.shape, np.uint8)
    food_planes.reshape(len(foods), -1)[np.arange(len(foods)), foods] = 1
    period = lap(np.stack([bodies, food_planes], axis=1))
    body, food = bodies[-1], int(foods[-1])
    free = body == 0
    walled_in = np.asarray(hole_cells(body))  # the food cell is free, so it can be one
    out: dict[str, Any] = {"length": int(body.max()), "lap": period, "free": int(free.sum()),
                           "holes": int(walled_in.sum()),
                           "food_walled_in": bool(walled_in[divmod(food, width)])}
    if period is not None:
        circuit = np.zeros((height, width), bool)
        circuit[heads[-period:, 0], heads[-period:, 1]] = True
        out |= {"circuit": int(circuit.sum()),
                "free_on_circuit": int((free & circuit).sum()),
                "free_off_circuit": int((free & ~circuit).sum()),
                "free_off_cells": np.argwhere(free & ~circuit).tolist(),
                "food_on_circuit": bool(circuit[divmod(food, width)])}
    return out | {"board": board_text(body, tuple(heads[-1]), food)}


def circuits(path: Path, episodes: int, seed: int | None = None) -> list[dict[str, Any]]:
    """Per seed the policy holds: its greedy games (``ppo-eval``'s keys) and, for each one that
    starved, :func:`describe` of its last boards."""
    policy = load_playable(path)
    trainer, env_params, config = policy.setup.trainer, policy.setup.env_params, policy.config
    env, snake = trainer.eval_env, unwrapped(trainer.eval_env)
    window = int(snake.resolve_params(env_params).max_steps_without_food) + 2
    seed = config.seed if seed is None else seed
    keys = jax.random.split(eval_key(seed, policy.update), config.num_seeds)
    vstep = batched_step(env)
    vreset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    rows = []
    for index, seed_index in enumerate(policy.seeds):
        params = jax.tree.map(lambda x, i=index: x[i], policy.params)
        norm = jax.tree.map(lambda x, i=index: x[i], policy.norm)

        @jax.jit
        def step(key: Any, obs: Any, state: Any, memory: Any,
                 params: Any = params, norm: Any = norm) -> tuple:
            # the key use of ``play_episodes`` (greedy: no key for the policy), so the games are
            # ``ppo-eval``'s
            key, k_step = jax.random.split(key)
            mask = trainer.masks(state.env_state)
            memory, pi, _ = trainer.act(params, memory, trainer.network_input(norm, obs), mask)
            obs, state, _, terminated, truncated, info = vstep(
                jax.random.split(k_step, episodes), state, pi.mode(), env_params)
            return key, obs, state, memory, terminated | truncated, {k: info[k] for k in SNAKE_INFO}

        key, k_reset = jax.random.split(keys[seed_index])
        obs, state = vreset(jax.random.split(k_reset, episodes), env_params)
        memory = trainer.initial_carry(episodes)
        height, width = snake.height, snake.width
        bodies = np.zeros((window, episodes, height, width), np.uint8)
        heads = np.zeros((window, episodes, 2), np.int32)
        foods = np.zeros((window, episodes), np.int32)
        alive = np.ones(episodes, bool)
        games = []
        for t in range(step_cap(env_params)):
            game = state.env_state
            slot = t % window
            bodies[slot] = np.asarray(game.body)
            heads[slot] = np.stack([np.asarray(game.head_row), np.asarray(game.head_col)], -1)
            foods[slot] = np.asarray(game.food)
            key, obs, state, memory, done, info = step(key, obs, state, memory)
            done, info = np.asarray(done) & alive, jax.device_get(info)
            starved = np.nonzero(done & np.asarray(info["starved"]) & ~np.asarray(info["win"]))[0]
            order = [(t - k) % window for k in range(min(t + 1, window) - 1, -1, -1)
                     ] if starved.size else []  # the kept boards, oldest first
            for i in starved:
                games.append({"game": int(i), "apples": int(info["apples"][i]), "steps": t + 1,
                              **describe(bodies[order, i], heads[order, i], foods[order, i])})
            alive &= ~done
            if not alive.any():
                break
        rows.append({"policy": str(path), "seed_index": seed_index, "run_seed": config.seed,
                     "eval_seed": seed, "episodes": episodes, "starved": games})
    return rows


def medians(games: list[dict[str, Any]], key: str) -> str:
    """The median of ``key`` over ``games``, or n/a."""
    return f"{float(np.median([g[key] for g in games])):g}" if games else "n/a"


def table(rows: list[dict[str, Any]]) -> str:
    """The page: per policy its starved games, those in an exact cycle and their circuits, then
    the last board of each policy's longest cycling game."""
    head = ["policy", "games starved (of those played)", "in an exact cycle",
            "following its tail (lap = length)", "median apples (cycling)",
            "median circuit, cells (cycling)", "median free cells off the circuit (cycling)",
            "food walled in on all four sides", "median walled-in free cells"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    boards = []
    for row in rows:
        games = row["starved"]
        cycled = [g for g in games if g["lap"] is not None]
        lines.append("| " + " | ".join([
            row["label"], f"{len(games)} ({row['episodes']})", str(len(cycled)),
            str(sum(g["lap"] == g["length"] for g in cycled)), medians(cycled, "apples"),
            medians(cycled, "circuit"), medians(cycled, "free_off_circuit"),
            str(sum(g["food_walled_in"] for g in games)), medians(games, "holes")]) + " |")
        if cycled:
            game = max(cycled, key=lambda g: g["apples"])
            boards += [f"{row['label']}, game {game['game']}: {game['apples']} apples, a lap of "
                       f"{game['lap']} steps over {game['circuit']} cells, free cells off it "
                       f"{game['free_off_cells']}:", "", "```", *game["board"], "```", ""]
    intro = ("Greedy games of each policy with the keys of `ppo-eval POLICY --episodes N`; for "
             "each game that starved, the lap after which its board came back and the cells "
             "its head entered over that lap (its circuit). Boards: `H` head, `T` tail, `*` "
             "food, `.` free, a number: the steps until that body cell frees.")
    return "\n".join(["# Where the looping games go", "", intro, "", *lines, "", *boards])


def parse_run(text: str) -> tuple[str, Path]:
    """``LABEL=PATH`` or ``PATH`` (labelled by itself)."""
    label, sep, path = text.partition("=")
    return (label, Path(path)) if sep else (text, Path(text))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=parse_run,
                        help="LABEL=PATH or PATH: a run directory or policy file, as for ppo-eval")
    parser.add_argument("--episodes", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=None,
                        help="evaluation seed (default: each run's own, as ppo-eval)")
    parser.add_argument("--out", type=Path, default=Path("snake_circuits.json"))
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the page (table and boards) here")
    parser.add_argument("--replot", action="store_true",
                        help="only write --markdown from the rows already in --out")
    args = parser.parse_args(argv)
    if args.replot:
        rows = json.loads(args.out.read_text())["rows"]
    else:
        if not args.runs:
            parser.error("name at least one run or policy file (or --replot)")
        start = time.time()
        rows = [{"label": f"{label} #{row['seed_index']}", **row}
                for label, path in args.runs for row in circuits(path, args.episodes, args.seed)]
        for row in rows:
            print(summary(row))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {**provenance.record(), "seconds": round(time.time() - start, 1), "rows": rows}
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(table(rows))


def summary(row: dict[str, Any]) -> str:
    """One line: how many games starved, how many cycled, and their circuits."""
    games = row["starved"]
    cycled = [g for g in games if g["lap"] is not None]
    line = f"{row['label']}: {len(games)} of {row['episodes']} starved"
    if not cycled:
        return line
    return (line + f", {len(cycled)} in an exact cycle (median: {medians(cycled, 'apples')} "
            f"apples, a lap of {medians(cycled, 'lap')} steps over {medians(cycled, 'circuit')} "
            f"cells, {medians(cycled, 'free_off_circuit')} free cells off it)")


if __name__ == "__main__":
    main()
