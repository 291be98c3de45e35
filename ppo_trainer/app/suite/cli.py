"""``ppo-suite``: PPO with several optimizers on every env of the benchmark list, at each preset's
budget, with a report against gymnax-blines' published returns.

    ppo-suite --out docs/results/suite                      # every env (slow: see docs/results.md)
    ppo-suite --group classic --group bsuite --out docs/results/suite
    ppo-suite --only Pendulum-v1 --out docs/results/suite   # (re)run one env, keep the others
    ppo-suite --only Pendulum-v1 --optimizers muon --out docs/results/suite  # one row, keep adam's
    ppo-suite --replot --out docs/results/suite             # report from raw/*.json only
    ppo-suite --group memory --out docs/results/memory      # rnn none vs gru, memory tasks
    ppo-suite --group ecosystem --out docs/results/ecosystem  # --env SUITE/ID envs
    ppo-suite --tune --only Acrobot-v1                      # learning-rate grid, other seeds
    ppo-suite --add-runs RUN [RUN ...] --out docs/results/suite-cpu-10m  # ppo-train runs, evaluated

Writes ``<out>/raw/<env>.json`` (``raw/<suite>/<id>.json`` for a ``SUITE/ID`` env) after each
env (so a long suite can be resumed env by env), then ``<out>/results.md``,
``<out>/summary.json`` and ``<out>/plots/<env>.png``; with ``--tune``, ``<out>/tuning/<env>.json``
and the preset lines to paste into ``ppo_trainer/presets.toml``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from ppo_trainer.app.flags import OneLineParser, add_version_flag, run_cli
from ppo_trainer.config import Rnn
from ppo_trainer.errors import ConfigError
from ppo_trainer.presets import tomllib

PROG = "ppo-suite"
DEFAULT_OPTIMIZERS = ("adam", "muon")  # the report lists them in this order, then any others
SUITE_FILE = Path(__file__).with_name("suite.toml")


def load_suite() -> dict[str, dict[str, Any]]:
    """The env list (in report order) and each env's reference scores."""
    return tomllib.loads(SUITE_FILE.read_text())


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="PPO on the gymnax benchmark list: several "
                      "optimizers x seeds per env at each preset's budget, against gymnax-blines.",
                      allow_abbrev=False)
    add_version_flag(p, PROG)
    p.add_argument("--out", default="docs/results/suite", help="output folder")
    p.add_argument("--only", action="append", default=[], metavar="ENV",
                   help="run only this env (repeatable); the others' raw results are kept")
    p.add_argument("--group", action="append", default=[],
                   help="run only this group: classic, bsuite, minatar, snake, memory, "
                        "ecosystem (repeatable)")
    p.add_argument("--optimizers", nargs="+", default=list(DEFAULT_OPTIMIZERS))
    p.add_argument("--num-seeds", type=int, default=4, help="seeds per env and optimizer")
    p.add_argument("--seed", type=int, default=0, help="base seed of the reported runs")
    p.add_argument("--eval-episodes", type=int, default=64, help="greedy episodes per seed")
    p.add_argument("--rnn", choices=get_args(Rnn), default=None,
                   help="recurrent cell for every env run (default: each env's own setting, "
                        "or its variants); a recurrent row is keyed OPTIMIZER+CELL, beside the "
                        "feed-forward one")
    p.add_argument("--rnn-size", type=int, default=None,
                   help="hidden size of the recurrent cell (default: each env's own setting)")
    p.add_argument("--replot", action="store_true", help="report from <out>/raw only")
    p.add_argument("--add-runs", nargs="+", type=Path, default=[], metavar="RUN",
                   help="add ppo-train run directories (evaluated with ppo-eval --json) to "
                        "<out>/raw instead of training, then report")
    p.add_argument("--tune", action="store_true",
                   help="learning-rate grid per optimizer on seeds that are not reported")
    p.add_argument("--tune-seeds", type=int, default=2,
                   help="with --tune: seeds per grid point")
    p.add_argument("--tune-episodes", type=int, default=32,
                   help="with --tune: greedy episodes per seed (more for noisy envs, e.g. "
                        "Pendulum, whose episode returns spread by ~100)")
    return p


def select(suite: dict[str, Any], only: list[str], groups: list[str]) -> list[str]:
    unknown = [e for e in only if e not in suite]
    if unknown:
        raise ConfigError(f"--only {unknown[0]}: not in the suite ({', '.join(suite)})")
    known_groups = {v["group"] for v in suite.values()}
    bad = [g for g in groups if g not in known_groups]
    if bad:
        raise ConfigError(f"--group {bad[0]}: choose from {', '.join(sorted(known_groups))}")
    return [e for e in suite if (not only or e in only) and (not groups or suite[e]["group"]
                                                              in groups)]


def env_overrides(suite: dict[str, Any], env: str, args: Any) -> dict[str, Any]:
    """The env's own overrides (suite.toml), then the command line's --rnn / --rnn-size."""
    flags = {k: v for k, v in (("rnn", args.rnn), ("rnn_size", args.rnn_size)) if v is not None}
    return {**suite[env].get("overrides", {}), **flags}


def env_variants(suite: dict[str, Any], env: str, args: Any) -> list[str | None]:
    """The networks to train on ``env``: the command line's ``--rnn``, else the env's
    ``variants`` (suite.toml: the memory tasks train ``none`` and ``gru``), else its preset's."""
    if args.rnn is not None:
        return [args.rnn]
    return list(suite[env].get("variants", [None]))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.num_seeds, args.eval_episodes, args.tune_seeds, args.tune_episodes) < 1:
        raise ConfigError("--num-seeds, --eval-episodes, --tune-seeds and --tune-episodes "
                          "must be positive")
    suite = load_suite()
    envs = select(suite, args.only, args.group)
    from ppo_trainer.app.suite import from_runs, raw, report, run, tune  # jax: --help stays fast

    out = Path(args.out)
    raw_dir = out / "raw"

    def log(message: str) -> None:
        print(f"{PROG}: {message}", file=sys.stderr, flush=True)

    if args.tune:
        for env in envs:
            tuned = tune.tune_env(env, args.optimizers, num_seeds=args.tune_seeds,
                                  eval_episodes=args.tune_episodes, log=log,
                                  overrides=env_overrides(suite, env, args))
            raw.merge_tuning(out / "tuning", env, tuned)
            print(tune.toml_snippet(env, tuned), flush=True)
        return 0
    command = " ".join([PROG, *(sys.argv[1:] if argv is None else argv)])
    if args.add_runs:
        from_runs.add_runs(raw_dir, args.add_runs, command)
    elif not args.replot:
        raw_dir.mkdir(parents=True, exist_ok=True)
        for env in envs:
            data = run.run_env(env, args.optimizers, num_seeds=args.num_seeds, seed=args.seed,
                               eval_episodes=args.eval_episodes, log=log,
                               overrides=env_overrides(suite, env, args),
                               variants=env_variants(suite, env, args))
            raw.merge_runs(raw_dir, env, data["runs"], command, lambda data=data: data["random"])
    text = report.write_report(out, suite, [*DEFAULT_OPTIMIZERS, *args.optimizers])
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ppo-suite``; 2 and one line on stderr for bad input."""
    return run_cli(PROG, lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
