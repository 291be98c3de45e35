"""``ppo-eval PATH``: greedy evaluation of a run's last checkpoint or of a policy file (and a
GIF, where the env renders frames), with the observation statistics the policy was trained with.

``PATH`` is read as: a file -> a policy file (``ppo-export``); a directory holding
``checkpoint.msgpack`` -> a run directory; a directory holding ``policy.msgpack`` and no
checkpoint -> that policy file; anything else -> the run directory's own errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppo_trainer.app.flags import OneLineParser, run_cli
from ppo_trainer.errors import ConfigError

PROG = "ppo-eval"


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="Greedy evaluation of a ppo-train run's checkpoint "
                      "or of a policy file (ppo-export).", allow_abbrev=False)
    p.add_argument("run_dir", metavar="PATH",
                   help="a run directory (config.json + checkpoint.msgpack), a policy file, or a "
                   "directory holding policy.msgpack")
    p.add_argument("--episodes", type=int, default=None,
                   help="episodes per seed (default: the run's --eval-episodes)")
    p.add_argument("--gif", default=None,
                   help="GIF path (default: <run dir>/agent.gif, or the policy file's path with "
                   ".gif; 'none' to skip); only for envs that render frames")
    p.add_argument("--gif-every", type=int, default=1,
                   help="keep every Nth frame of the GIF: an N times smaller file that plays N "
                   "times faster")
    p.add_argument("--seed", type=int, default=None,
                   help="evaluation seed (default: the run's, which reproduces its eval.json)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="step cap per episode (default: the env's own time limit)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the summary to this file")
    return p


@dataclass
class Playable:
    """A policy to evaluate, from a run directory or a policy file: per kept seed its
    parameters and normalization state, which of the run's seeds they are, and where its GIF
    goes by default."""

    config: Any
    setup: Any
    params: Any
    norm: Any
    seeds: tuple[int, ...]
    update: int
    source: str  # "checkpoint" or "policy file"
    gif: Path


def load_playable(path: Path) -> Playable:
    """Read ``path`` by the rule in this module's docstring."""
    from ppo_trainer.app.policy import load_policy
    from ppo_trainer.app.rundir import RunDir, RunDirError, load_run

    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path}: no such run directory or policy file")
    run = RunDir(path)
    policy_file = path if path.is_file() else (
        run.policy if path.is_dir() and not run.checkpoint.is_file() and run.policy.is_file()
        else None)
    if policy_file is not None:
        p = load_policy(policy_file)
        return Playable(p.config, p.setup, p.params, p.norm, p.seeds, p.update, "policy file",
                        policy_file.with_suffix(".gif"))
    loaded = load_run(path)
    state = loaded.runner_state
    return Playable(loaded.config, loaded.setup, state.params, state.norm,
                    tuple(range(loaded.config.num_seeds)), loaded.update, "checkpoint", run.gif)


def evaluate_run(run_dir: Path, episodes: int | None = None, seed: int | None = None,
                 gif: str | None = None, max_steps: int | None = None,
                 gif_every: int = 1) -> dict[str, Any]:
    """Load a run's checkpoint or a policy file and evaluate it; returns the summary (and
    writes the GIF of the first seed it holds)."""
    import jax

    from ppo_trainer.app.evaluate import Evaluator, can_render, eval_key, record_gif

    if episodes is not None and episodes <= 0:
        raise ConfigError(f"--episodes must be positive, got {episodes}")
    if max_steps is not None and max_steps <= 0:
        raise ConfigError(f"--max-steps must be positive, got {max_steps}")
    if gif_every < 1:
        raise ConfigError(f"--gif-every must be positive, got {gif_every}")
    p = load_playable(Path(run_dir))
    setup, config = p.setup, p.config
    k_eval = eval_key(config.seed if seed is None else seed, p.update)
    k_gif = jax.random.fold_in(jax.random.PRNGKey(config.seed if seed is None else seed), 7)
    evaluator = Evaluator(setup.trainer, setup.env_params, episodes or config.eval_episodes,
                          max_steps)
    summary = {"update": p.update, "seed_indices": list(p.seeds),
               **evaluator(p.params, p.norm, k_eval, p.seeds, config.num_seeds)}
    if can_render(setup.env) and (gif or "").lower() != "none":
        path = Path(gif) if gif else p.gif
        first = jax.tree_util.tree_map(lambda x: x[0], (p.params, p.norm))
        summary["gif_episode"] = record_gif(setup.trainer, setup.env_params, *first, k_gif, path,
                                            every=gif_every)
        summary["gif"] = str(path)
    summary["source"] = p.source
    summary["info_keys"] = list(setup.trainer.info_keys)
    return summary


def _main(argv: Sequence[str] | None) -> int:
    from ppo_trainer.app.evaluate import format_summary

    args = build_parser().parse_args(argv)
    summary = evaluate_run(Path(args.run_dir), args.episodes, args.seed, args.gif, args.max_steps,
                           args.gif_every)
    kept = summary["seed_indices"]
    seeds = ("" if summary["source"] == "checkpoint" else
             f", seed ind{'ices' if len(kept) > 1 else 'ex'} {','.join(map(str, kept))}")
    print(format_summary(summary, tuple(summary["info_keys"]))
          + f" ({summary['source']} at update {summary['update']}{seeds})")
    if "gif" in summary:
        print(f"wrote {summary['gif']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ppo-eval``; 2 and one line on stderr for bad input."""
    return run_cli(PROG, lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
