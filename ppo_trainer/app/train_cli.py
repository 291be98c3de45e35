"""``ppo-train``: flags from ``TrainConfig``, a preset and the optimizer plugin; then the run loop.

Layering of values, lowest first: ``TrainConfig`` defaults < the preset (``--preset``, by default
the env id's own, see ``ppo_trainer/presets.py``) < its per-optimizer table < the command line.
On ``--resume`` the resumed run's ``config.json`` replaces the first three. ``--show-config``
prints the resolved config with the source of every value; ``config.json`` records them.

Parsing happens in two phases so that an optimizer's own hyperparameters become flags: phase 1
finds ``--optimizer`` (or its alias ``--use-muon``) / ``--resume`` / ``--env`` / ``--preset``;
phase 2 builds the full parser with that plugin's declared flags. Nothing heavy (jax, optax,
gymnax) is imported before parsing, so ``--help`` answers fast. Then the run loop's
``runner.start`` checks the config, once, and ``runner.train`` builds and runs it, once.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppo_trainer import presets
from ppo_trainer.app.flags import (
    OneLineParser,
    add_config_flags,
    add_plugin_flags,
    add_version_flag,
    normalize_argv,
    run_cli,
    split_plugin_values,
)
from ppo_trainer.app.rundir import RunDir
from ppo_trainer.config import TrainConfig, fields_where, flag
from ppo_trainer.errors import ConfigError
from ppo_trainer.registry import registry

PROG = "ppo-train"
PRESCAN = ("optimizer", "resume", "env", "preset")  # the flags that decide which others exist


def build_parser(optimizer: str, hyperparams: Sequence[Any]) -> OneLineParser:
    """The full parser: every TrainConfig field, grouped by its metadata, plus the plugin's flags."""
    parser = OneLineParser(
        prog=PROG,
        description="Train PPO on a gymnax environment (Snake by default). Writes a run directory "
        "with config.json, metrics.jsonl, checkpoints, a learning curve and, for envs that "
        "render frames, a GIF.",
        allow_abbrev=False,
        epilog="Underscore flag names (--num_envs) and --flag=value are accepted too.",
    )
    add_config_flags(parser)
    group = parser.add_argument_group("listing and inspection")
    group.add_argument("--list-optimizers", action="store_true", default=False,
                       help="list the registered optimizers and their flags, then exit")
    group.add_argument("--list-presets", action="store_true", default=False,
                       help="list the presets (tuned settings per env), then exit")
    group.add_argument("--show-config", action="store_true", default=False,
                       help="print the resolved config and where each value came from, then exit")
    add_version_flag(group, PROG, "print the version (also recorded in config.json), then exit")
    add_plugin_flags(parser, hyperparams,
                     f"{optimizer} optimizer (declared by its plugin; values go to optimizer_kwargs)")
    return parser


def _prescan(argv: list[str]) -> dict[str, Any]:
    """Phase 1: only the flags that decide which other flags and values exist (None: not given)."""
    pre = OneLineParser(prog=PROG, add_help=False, allow_abbrev=False)
    add_config_flags(pre, only=PRESCAN)
    known, _ = pre.parse_known_args(argv)
    return {name: getattr(known, name, None) for name in PRESCAN}


@dataclass
class Parsed:
    """What the command line asked for: the resolved config, each value's source, the flags."""

    config: TrainConfig
    sources: dict[str, str]
    given: dict[str, Any]
    base: TrainConfig  # the resumed run's config, or the defaults
    actions: dict[str, bool]
    preset: Any = None  # the preset layered under the flags (None: none, or a resumed run)


def parse_args(argv: Sequence[str] | None = None) -> Parsed:
    """Parse (both phases) and layer defaults < preset < preset[optimizer] < flags (or, with
    --resume, the resumed run's config < flags)."""
    args = normalize_argv(sys.argv[1:] if argv is None else argv)
    pre = _prescan(args)
    reg = registry(PROG)
    base, sources, preset = _starting_point(pre)
    optimizer = (pre["optimizer"] or (preset.settings.get("optimizer") if preset else None)
                 or base.optimizer)
    listing = any(a in args for a in ("--list-optimizers", "--list-presets"))
    hyperparams: Sequence[Any] = ()
    if optimizer in reg:
        hyperparams = reg.get(optimizer).hyperparams
    elif not listing:
        reg.get(optimizer)  # raises the registry's one-line error (available names, hint)
    namespace = vars(build_parser(optimizer, hyperparams).parse_args(args))
    actions = {k: namespace.pop(k) for k in ("list_optimizers", "list_presets", "show_config")}
    plugin_given = split_plugin_values(namespace)
    declared = {hp.name: hp.default for hp in hyperparams}

    known = frozenset(hp.name for n in reg.names() for hp in reg.get(n).hyperparams)
    config, sources = presets.resolve(base, sources, preset, optimizer, declared, namespace,
                                      plugin_given, known)
    given = {**namespace, **({"optimizer_kwargs": plugin_given} if plugin_given else {})}
    return Parsed(config, sources, given, base, actions, preset)


def _starting_point(pre: dict[str, Any]) -> tuple[TrainConfig, dict[str, str], Any]:
    """What the flags are layered over: (config, sources, preset). A new run: the defaults and
    its preset; a resumed run: its own config.json, but the per-invocation fields (devices,
    hosts) from this command line, and no preset."""
    if not pre["resume"]:
        base = TrainConfig()
        return base, presets.default_sources(), presets.find(pre["preset"] or base.preset,
                                                             pre["env"] or base.env)
    if pre["preset"] is not None:
        raise ConfigError("--preset applies to new runs; a resumed run keeps its config")
    base, sources = RunDir(Path(pre["resume"])).read_config("--resume ")
    per_invocation = fields_where("resume", "per_invocation")
    defaults = TrainConfig()
    base = base.replace(**{name: getattr(defaults, name) for name in per_invocation})
    sources.update(dict.fromkeys(per_invocation, "default"))
    return base, sources, None


def validate_resume(config: TrainConfig, given: dict[str, Any], base: TrainConfig) -> None:
    """Flags that change shapes (or keys) may not differ from the run being resumed."""
    for name in fields_where("resume", "locked"):
        if name in given and getattr(config, name) != getattr(base, name):
            raise ConfigError(
                f"{flag(name)} {getattr(config, name)} differs from the resumed run's "
                f"{getattr(base, name)!r}; it changes shapes, keys or what the policy sees, so it "
                "cannot change on --resume")


def format_config(config: TrainConfig, sources: dict[str, str]) -> str:
    """``--show-config``: one line per value, with where it came from."""
    rows = [(name, value, sources.get(name, "default")) for name, value in config.to_dict().items()
            if name != "optimizer_kwargs"]
    rows += [(f"optimizer_kwargs.{k}", v, sources.get(f"optimizer_kwargs.{k}", "default"))
             for k, v in config.optimizer_kwargs.items()]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value!r:<24}  {source}" for name, value, source in rows)


def format_presets() -> str:
    """``--list-presets``: name, origin and description of every preset."""
    lines = []
    for name, preset in sorted(presets.all_presets().items()):
        lines.append(f"{name}  [{preset.origin}]  {preset.notes.get('description', '')}".rstrip())
    return "\n".join(lines)


def _main(argv: Sequence[str] | None) -> int:
    parsed = parse_args(argv)
    if parsed.actions["list_optimizers"]:
        print(registry(PROG).format_table())
        return 0
    if parsed.actions["list_presets"]:
        print(format_presets())
        return 0
    # the run loop imports jax: only after parsing, so that --help stays fast
    from ppo_trainer.app import runner

    config = runner.start(parsed.config)  # joins --distributed first, then checks, once
    # one line, once per command: a step size no preset tuned for this env
    notice = None if config.resume else presets.untuned_notice(
        parsed.preset, config.optimizer, parsed.sources)
    if notice:
        print(f"{PROG}: {notice}", file=sys.stderr)
    if parsed.actions["show_config"]:
        print(format_config(config, parsed.sources))
        return 0
    if config.resume:
        validate_resume(config, parsed.given, parsed.base)
        RunDir(Path(config.resume)).require_checkpoint()
    runner.train(config, sources=parsed.sources)  # trusts the checked config: no second check
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ppo-train``; returns the exit code (2 for usage errors, 130 on Ctrl-C)."""
    return run_cli(PROG, lambda: _main(argv))


def __getattr__(name: str) -> Any:
    if name in ("RESUME_LOCKED", "PER_INVOCATION"):  # deprecated after 0.2.0: field metadata
        kind = "locked" if name == "RESUME_LOCKED" else "per_invocation"
        warnings.warn(f"ppo_trainer.app.train_cli.{name} is deprecated: use "
                      f"ppo_trainer.config.fields_where('resume', {kind!r})", FutureWarning,
                      stacklevel=2)
        return fields_where("resume", kind)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
