"""``ppo-eval PATH``: greedy evaluation of a run's last checkpoint or of a policy file (and a
GIF, where the env renders frames), with the observation statistics the policy was trained with.

``PATH`` is read as: a file -> a policy file (``ppo-export``); a directory holding
``checkpoint.msgpack`` -> a run directory; a directory holding ``policy.msgpack`` and no
checkpoint -> that policy file; anything else -> the run directory's own errors."""

from __future__ import annotations

import importlib
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ppo_trainer.app.flags import (
    MergePairs,
    OneLineParser,
    add_version_flag,
    parse_pairs,
    run_cli,
)

PROG = "ppo-eval"


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="Greedy evaluation of a ppo-train run's checkpoint "
                      "or of a policy file (ppo-export).", allow_abbrev=False)
    add_version_flag(p, PROG)
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
    p.add_argument("--env-params", action=MergePairs, type=parse_pairs, default={},
                   metavar="KEY=VALUE[,KEY=VALUE]",
                   help="play under these EnvParams fields instead of the run's (e.g. another "
                   "time or starvation limit; the observation's shape cannot change); "
                   "repeatable")
    p.add_argument("--json", dest="json_out", default=None, help="also write the summary to this file")
    return p


def __getattr__(name: str) -> Any:
    """The names that moved out of this module, so that it imports nothing heavy (jax) before
    parsing: a FutureWarning, for one release."""
    moved = {"Playable": ("policy", "Policy"), "load_playable": ("policy", "load_playable"),
             "evaluate_run": ("evaluate", "evaluate_run")}
    if name not in moved:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, new = moved[name]
    warnings.warn(f"ppo_trainer.app.eval_cli.{name} is deprecated; use "
                  f"ppo_trainer.app.{module}.{new}", FutureWarning, stacklevel=2)
    return getattr(importlib.import_module(f"ppo_trainer.app.{module}"), new)  # jax, when used


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from ppo_trainer.app.evaluate import evaluate_run, format_summary  # jax: --help stays fast

    summary = evaluate_run(Path(args.run_dir), args.episodes, args.seed, args.gif, args.max_steps,
                           args.gif_every, args.env_params)
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
