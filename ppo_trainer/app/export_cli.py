"""``ppo-export RUN_DIR OUT``: a run's last checkpoint as a policy-only file.

The file keeps what acting needs (network parameters, observation statistics, the run's config
without machine paths, the update count) and drops what only training needs (optimizer state,
env state, random keys): a trained agent small enough to ship, that ``ppo-eval OUT`` plays and
records exactly as ``ppo-eval RUN_DIR`` does (``ppo_trainer.app.policy``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ppo_trainer.app.flags import OneLineParser, add_version_flag, run_cli

PROG = "ppo-export"


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="Write a run's policy (network parameters, "
                      "observation statistics, config) without optimizer or env state.",
                      allow_abbrev=False)
    add_version_flag(p, PROG)
    p.add_argument("run_dir", help="the run directory (holds config.json and checkpoint.msgpack)")
    p.add_argument("out", help="the policy file to write (e.g. policy.msgpack)")
    p.add_argument("--seed-index", type=int, action="append", default=None, dest="seeds",
                   metavar="I", help="keep only the run's seed I (0-based; repeat to keep "
                   "several; default: every seed)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16"),
                   help="how the file stores the weights: float16 halves it, and ppo-eval "
                   "plays the weights rounded to half precision (default: float32, exact)")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from ppo_trainer.app.policy import export_policy  # jax: after parsing, --help stays fast

    policy = export_policy(Path(args.run_dir), Path(args.out), args.seeds, args.dtype)
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out} ({size / 1024:.1f} KiB): {policy.config.env}, update "
          f"{policy.update}, seed index{'es' if len(policy.seeds) > 1 else ''} "
          f"{','.join(map(str, policy.seeds))} of {policy.config.num_seeds}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ppo-export``; 2 and one line on stderr for bad input."""
    return run_cli(PROG, lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
