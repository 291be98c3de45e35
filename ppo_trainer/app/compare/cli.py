"""``ppo-compare``: several optimizers x several seeds on one env and network, with statistics.

Why: "does Muon help PPO?" needs the same env, network, budget and seed keys for every optimizer,
several seeds, and intervals rather than single curves. For each optimizer spec the config is
resolved exactly as ``ppo-train`` would (defaults < preset < preset[optimizer] < flags < the
spec's overrides), all seeds train in one program (the same keys for every optimizer, so network
initialisations and env resets match), and ``--out`` gets ``return_vs_steps.png``,
``return_vs_time.png``, ``results.md`` and ``curves.json`` (``--replot`` redraws the plots and
table from it without training).

Optimizer specs: ``NAME`` or ``NAME:key=value,key=value`` where a key is any ``ppo-train`` flag
(``adam:lr=2.5e-4``, ``muon:muon_lr=0.05``); ``NAME`` may be qualified, ``dist:name``. The spec
text is the label. Every other training flag applies to all specs; an optimizer's own flags
(``--muon-lr``) to the specs of the optimizers that declare them.

Wall clock: with ``--wall-clock callback`` (default) a ``jax.debug.callback`` stamps the time
after every update; ``linear`` spreads the measured run time evenly over the updates instead
(use it on GPU, where a host callback per update costs a device sync).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ppo_trainer import presets
from ppo_trainer.app import flags
from ppo_trainer.app.build import check
from ppo_trainer.app.compare import (
    JSON_NAME,
    RUN_ONLY_FIELDS,
    SKIPPED_FIELDS,
    STEPS_PLOT,
    TABLE_NAME,
    TIME_PLOT,
)
from ppo_trainer.app.flags import (
    OneLineParser,
    add_config_flags,
    add_plugin_flags,
    add_version_flag,
)
from ppo_trainer.config import TrainConfig, flag
from ppo_trainer.errors import ConfigError

PROG = "ppo-compare"
COMPARE_DEFAULTS: dict[str, Any] = {"num_seeds": 4}
# ppo-compare's own options (flag -> argparse keywords): the parser and the split of the parsed
# namespace into options and training flags both read this table.
OWN_FLAGS: dict[str, dict[str, Any]] = {
    "--optimizers": dict(nargs="+", default=["adam", "muon"], metavar="SPEC",
                         help="optimizer specs to compare; the first is the baseline (default: "
                         "adam muon)"),
    "--out": dict(required=True, help="output folder (created)"),
    "--threshold": dict(type=float, default=None,
                        help="return for 'steps to threshold' (default: see --threshold-frac)"),
    "--threshold-frac": dict(type=float, default=0.9, help="threshold = initial + FRAC x (best "
                             "final mean - initial) (default: 0.9)"),
    "--final-window": dict(type=float, default=0.05, help="final value = a seed's mean over this "
                           "last fraction of updates (default: 0.05)"),
    "--confidence": dict(type=float, default=0.95, help="interval level (default: 0.95)"),
    "--wall-clock": dict(choices=("callback", "linear"), default="callback",
                         help="per-update time stamps via jax.debug.callback, or the run time "
                         "spread linearly over updates (default: callback)"),
    "--replot": dict(action="store_true",
                     help="redraw plots and table from --out/curves.json without training"),
}
OWN_OPTIONS = tuple(name[2:].replace("-", "_") for name in OWN_FLAGS)


@dataclasses.dataclass(frozen=True)
class Spec:
    """One compared optimizer: its label (the spec text), registry name and overrides."""

    label: str
    name: str
    overrides: tuple[tuple[str, str], ...]


def parse_spec(text: str) -> Spec:
    """``NAME``, ``dist:NAME`` or either followed by ``:key=value,key=value``."""
    head, sep, tail = text.rpartition(":")
    name, rest = (head, tail) if sep and "=" in tail else (text, "")
    if not name:
        raise ConfigError(f"optimizer spec {text!r}: missing optimizer name")
    pairs = []
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"optimizer spec {text!r}: expected key=value, got {item!r}")
        pairs.append((key.strip().replace("-", "_"), value.strip()))
    return Spec(text, name, tuple(pairs))


def build_parser(hyperparams: Sequence[Any] = ()) -> OneLineParser:
    """The ppo-compare parser: its own options plus the training flags of ppo-train."""
    parser = OneLineParser(
        prog=PROG, allow_abbrev=False,
        description="Train the same env and network with several optimizers x seeds (seeds "
        "vmapped) and write plots with 95% bootstrap bands, a markdown table and the raw "
        "curves to --out.",
        epilog="Optimizer spec: NAME or NAME:key=value,... (e.g. adam:lr=2.5e-4 "
        "muon:muon_lr=0.05); the spec is the label. Other flags are ppo-train's.")
    add_version_flag(parser, PROG)
    own = parser.add_argument_group("comparison")
    for name, keywords in OWN_FLAGS.items():
        own.add_argument(name, **keywords)
    add_config_flags(parser, skip=SKIPPED_FIELDS, defaults=COMPARE_DEFAULTS)
    add_plugin_flags(parser, hyperparams, "optimizer hyperparameters (declared by their plugins; "
                     "each applies to the optimizers declaring it)")
    return parser


def _flag_names(argv: Sequence[str]) -> list[str]:
    names = []
    for token in argv:
        if token.startswith("--"):
            name = token[2:].partition("=")[0].replace("-", "_")
            names.append(name[3:] if name.startswith("no_") else name)
    return names


def _reject_run_flags(argv: Sequence[str]) -> None:
    for name in _flag_names(argv):
        if name in RUN_ONLY_FIELDS:
            raise ConfigError(f"{flag(name)} is a ppo-train run flag; ppo-compare trains in "
                              "memory and writes only to --out")
        if name in ("optimizer", "use_muon"):
            raise ConfigError(f"{flag(name)}: use --optimizers SPEC [SPEC ...] in ppo-compare")


def _reject_foreign_flags(argv: Sequence[str], reg: Any, union: dict[str, Any],
                          labels: list[str]) -> None:
    """A flag of a registered optimizer that is not compared: say whose flag it is."""
    owners: dict[str, list[str]] = {}
    for name in reg.names():
        for hp in reg.get(name).hyperparams:
            owners.setdefault(hp.name, []).append(name)
    for name in _flag_names(argv):
        if name in owners and name not in union:
            raise ConfigError(f"{flag(name)} is a hyperparameter of {', '.join(owners[name])}, "
                              f"which is not among --optimizers {' '.join(labels)}")


class _SpecParser(OneLineParser):
    """Parses one spec's ``key=value`` overrides; errors name the spec."""

    def __init__(self, label: str) -> None:
        super().__init__(prog=PROG, add_help=False, allow_abbrev=False)
        self.label = label

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"optimizer spec {self.label!r}: {message}")


@dataclasses.dataclass
class Request:
    """What the command line asked for: one config per spec, plus the comparison options."""

    specs: list[Spec]
    configs: dict[str, TrainConfig]
    options: argparse.Namespace
    argv: list[str]


def _prescan(args: Sequence[str]) -> tuple[argparse.Namespace, list[Spec]]:
    """``--optimizers``, ``--env`` and ``--preset``, read before the full parser exists (its
    plugin flags depend on the optimizers compared)."""
    pre = OneLineParser(prog=PROG, add_help=False, allow_abbrev=False)
    pre.add_argument("--optimizers", **OWN_FLAGS["--optimizers"])
    pre.add_argument("--env", default=TrainConfig.env)
    pre.add_argument("--preset", default=TrainConfig.preset)
    known, _ = pre.parse_known_args(args)
    specs = [parse_spec(s) for s in known.optimizers]
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"--optimizers lists a spec twice: {' '.join(labels)}")
    return known, specs


def _own_options(namespace: dict[str, Any]) -> argparse.Namespace:
    """Take ppo-compare's own options out of the parsed ``namespace`` and check them."""
    options = argparse.Namespace(**{k: namespace.pop(k) for k in OWN_OPTIONS})
    if not 0 < options.final_window <= 1:
        raise ConfigError(f"--final-window must be in (0, 1], got {options.final_window}")
    if not 0 < options.confidence < 1:
        raise ConfigError(f"--confidence must be in (0, 1), got {options.confidence}")
    return options


def _spec_config(spec: Spec, info: Any, namespace: dict[str, Any], plugin_given: dict[str, Any],
                 preset: Any, known_keys: frozenset[str]) -> TrainConfig:
    """One spec's config, layered as ppo-train layers it: defaults < preset <
    preset[optimizer] < flags < the spec's own overrides; checked."""
    spec_parser = _SpecParser(spec.label)
    add_config_flags(spec_parser, skip=SKIPPED_FIELDS)
    add_plugin_flags(spec_parser, info.hyperparams, "plugin")
    over = vars(spec_parser.parse_args([f"--{k.replace('_', '-')}={v}" for k, v in spec.overrides]))
    declared = {hp.name: hp.default for hp in info.hyperparams}
    kwargs = {k: v for k, v in plugin_given.items() if k in declared}
    kwargs.update(flags.split_plugin_values(over))
    config, _ = presets.resolve(TrainConfig(**COMPARE_DEFAULTS), presets.default_sources(),
                                preset, spec.name, declared, {**namespace, **over}, kwargs,
                                known_keys)
    if config.stages:  # ppo-compare trains each spec once, in one program, to one budget
        raise ConfigError(f"{spec.label}: --preset {config.preset} goes on in stages "
                          "(--stages), which ppo-compare does not run; train it with ppo-train")
    try:
        return check(config)
    except ConfigError as exc:
        raise ConfigError(f"{spec.label}: {exc}") from None


def parse_args(argv: Sequence[str] | None = None) -> Request:
    """Parse the command line into one validated ``TrainConfig`` per optimizer spec."""
    args = flags.normalize_argv(sys.argv[1:] if argv is None else argv)
    _reject_run_flags(args)
    known, specs = _prescan(args)
    reg = flags.registry(PROG)
    infos = {s.name: reg.get(s.name) for s in specs}  # unknown name: one-line registry error
    union: dict[str, Any] = {}
    for info in infos.values():
        for hp in info.hyperparams:
            union.setdefault(hp.name, hp)
    _reject_foreign_flags(args, reg, union, [s.label for s in specs])
    namespace = vars(build_parser(list(union.values())).parse_args(args))
    options = _own_options(namespace)
    plugin_given = flags.split_plugin_values(namespace)
    preset = presets.find(known.preset, known.env)
    known_keys = frozenset(hp.name for n in reg.names() for hp in reg.get(n).hyperparams)
    configs = {spec.label: _spec_config(spec, infos[spec.name], namespace, plugin_given, preset,
                                        known_keys) for spec in specs}
    shapes = {(c.env, c.network, c.num_envs, c.num_steps, c.total_timesteps)
              for c in configs.values()}
    if len(shapes) > 1:
        print(f"{PROG}: warning: the specs differ in env/network/budget; curves are still "
              "plotted against env steps", file=sys.stderr)
    return Request(specs, configs, options, list(args))


def compare(request: Request, log: Any = None) -> tuple[str, dict[str, Any]]:
    """Train every spec (or reload with --replot) and write the report to ``--out``."""
    from ppo_trainer.app.compare import report, run  # jax, matplotlib: --help stays fast

    opts = request.options
    out = Path(opts.out)
    analysis = {"confidence": opts.confidence, "threshold_given": opts.threshold,
                "threshold_frac": opts.threshold_frac, "final_window": opts.final_window}
    if opts.replot:
        path = out / JSON_NAME
        if not path.is_file():
            raise ConfigError(f"--replot: no {JSON_NAME} in {out}")
        return report.write_report({**json.loads(path.read_text()), **analysis}, out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for label, config in request.configs.items():
        if log:
            log(f"training {label}: {config.num_seeds} seeds x {config.total_timesteps:,} steps "
                f"on {config.env}")
        runs[label] = run.run_spec(config, opts.wall_clock, log)
    data = {"command": " ".join([PROG, *request.argv]), **analysis, "host": run.host(),
            "runs": runs}
    return report.write_report(data, out)


def _main(argv: Sequence[str] | None) -> int:
    request = parse_args(argv)
    table, _ = compare(request, log=lambda m: print(f"{PROG}: {m}", file=sys.stderr))
    print(table)
    print(f"{PROG}: wrote {request.options.out}/{{{STEPS_PLOT},{TIME_PLOT},{TABLE_NAME},"
          f"{JSON_NAME}}}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ppo-compare``; 2 and one line on stderr for bad input."""
    return flags.run_cli(PROG, lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
