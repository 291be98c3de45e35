"""``ppo-eval RUN_DIR``: greedy evaluation of a run's last checkpoint (and a GIF, where the env
renders frames), with the observation statistics the run was trained with."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ppo_trainer.app.flags import OneLineParser, run_cli
from ppo_trainer.errors import ConfigError

PROG = "ppo-eval"


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="Greedy evaluation of a ppo-train run's checkpoint.",
                      allow_abbrev=False)
    p.add_argument("run_dir", help="the run directory (holds config.json and checkpoint.msgpack)")
    p.add_argument("--episodes", type=int, default=None,
                   help="episodes per seed (default: the run's --eval-episodes)")
    p.add_argument("--gif", default=None,
                   help="GIF path (default: <run dir>/agent.gif; 'none' to skip); only for envs "
                   "that render frames")
    p.add_argument("--seed", type=int, default=None,
                   help="evaluation seed (default: the run's, which reproduces its eval.json)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="step cap per episode (default: the env's own time limit)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the summary to this file")
    return p


def evaluate_run(run_dir: Path, episodes: int | None = None, seed: int | None = None,
                 gif: str | None = None, max_steps: int | None = None) -> dict[str, Any]:
    """Load a run's checkpoint and evaluate it; returns the summary (and writes the GIF)."""
    import jax

    from ppo_trainer.app.evaluate import Evaluator, can_render, eval_key, record_gif
    from ppo_trainer.app.rundir import RunDir, load_run

    if episodes is not None and episodes <= 0:
        raise ConfigError(f"--episodes must be positive, got {episodes}")
    if max_steps is not None and max_steps <= 0:
        raise ConfigError(f"--max-steps must be positive, got {max_steps}")
    loaded = load_run(Path(run_dir))
    setup, state = loaded.setup, loaded.runner_state
    k_eval = eval_key(loaded.config.seed if seed is None else seed, loaded.update)
    k_gif = jax.random.fold_in(jax.random.PRNGKey(loaded.config.seed if seed is None else seed), 7)
    evaluator = Evaluator(setup.trainer, setup.env_params, episodes or loaded.config.eval_episodes,
                          max_steps)
    summary = {"update": loaded.update, **evaluator(state.params, state.norm, k_eval)}
    if can_render(setup.env) and (gif or "").lower() != "none":
        path = Path(gif) if gif else RunDir(Path(run_dir)).gif
        first = jax.tree_util.tree_map(lambda x: x[0], state)
        summary["gif_episode"] = record_gif(setup.trainer, setup.env_params, first.params,
                                            first.norm, k_gif, path)
        summary["gif"] = str(path)
    summary["info_keys"] = list(setup.trainer.info_keys)
    return summary


def _main(argv: Sequence[str] | None) -> int:
    from ppo_trainer.app.evaluate import format_summary

    args = build_parser().parse_args(argv)
    summary = evaluate_run(Path(args.run_dir), args.episodes, args.seed, args.gif, args.max_steps)
    print(format_summary(summary, tuple(summary["info_keys"]))
          + f" (checkpoint at update {summary['update']})")
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
