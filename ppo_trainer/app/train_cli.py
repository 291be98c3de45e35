"""``ppo-train``: flags from ``TrainConfig``, a preset and the optimizer plugin; then the run loop.

Layering of values, lowest first: ``TrainConfig`` defaults < the preset (``--preset``, by default
the env id's own, see ``ppo_trainer/presets.py``) < its per-optimizer table < the command line.
On ``--resume`` the resumed run's ``config.json`` replaces the first three. ``--show-config``
prints the resolved config with the source of every value; ``config.json`` records them.

Parsing happens in two phases so that an optimizer's own hyperparameters become flags: phase 1
finds ``--optimizer`` / ``--use-muon`` / ``--resume`` / ``--env`` / ``--preset``; phase 2 builds
the full parser with that plugin's declared flags. Nothing heavy (jax, optax, gymnax) is imported
before parsing, so ``--help`` answers fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppo_trainer import presets
from ppo_trainer.app.flags import (
    OneLineParser,
    add_config_flags,
    add_plugin_flags,
    normalize_argv,
    registry,
    run_cli,
    split_plugin_values,
)
from ppo_trainer.config import TrainConfig, flag
from ppo_trainer.errors import ConfigError
from ppo_trainer.version import package_version

PROG = "ppo-train"
# Fields a resumed run must keep: they change array shapes, the meaning of an update, the keys,
# or what the network was trained to see.
RESUME_LOCKED = (
    "env", "env_kwargs", "num_envs", "num_steps", "num_seeds", "seed", "optimizer", "anneal_lr",
    "network", "hidden_size", "num_hidden_layers", "activation", "d_model", "num_layers",
    "num_heads", "one_hot_obs", "normalize_obs", "normalize_reward", "shared_torso",
)
# Fields that say where this invocation runs, not what the run is: a resumed run takes them from
# its own command line (a run trained by two processes resumes on one, or on other devices).
PER_INVOCATION = ("devices", "distributed")


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
    group.add_argument("--use-muon", action="store_true", default=False,
                       help="same as --optimizer muon")
    group.add_argument("--list-optimizers", action="store_true", default=False,
                       help="list the registered optimizers and their flags, then exit")
    group.add_argument("--list-presets", action="store_true", default=False,
                       help="list the presets (tuned settings per env), then exit")
    group.add_argument("--show-config", action="store_true", default=False,
                       help="print the resolved config and where each value came from, then exit")
    group.add_argument("--version", action="version", version=f"{PROG} {package_version()}",
                       help="print the version (also recorded in config.json), then exit")
    add_plugin_flags(parser, hyperparams,
                     f"{optimizer} optimizer (declared by its plugin; values go to optimizer_kwargs)")
    return parser


def _prescan(argv: list[str]) -> Any:
    """Phase 1: only the flags that decide which other flags and values exist."""
    pre = OneLineParser(prog=PROG, add_help=False, allow_abbrev=False)
    for name in ("--optimizer", "--resume", "--env", "--preset"):
        pre.add_argument(name, default=None)
    pre.add_argument("--use-muon", action="store_true")
    known, _ = pre.parse_known_args(argv)
    return known


@dataclass
class Parsed:
    """What the command line asked for: the resolved config, each value's source, the flags."""

    config: TrainConfig
    sources: dict[str, str]
    given: dict[str, Any]
    base: TrainConfig  # the resumed run's config, or the defaults
    actions: dict[str, bool]


def parse_args(argv: Sequence[str] | None = None) -> Parsed:
    """Parse (both phases) and layer defaults < preset < preset[optimizer] < flags (or, with
    --resume, the resumed run's config < flags)."""
    from ppo_trainer.app.rundir import RunDir

    args = normalize_argv(sys.argv[1:] if argv is None else argv)
    pre = _prescan(args)
    reg = registry(PROG)
    if pre.resume:
        if pre.preset is not None:
            raise ConfigError("--preset applies to new runs; a resumed run keeps its config")
        base, sources = RunDir(Path(pre.resume)).read_config("--resume ")
        defaults = TrainConfig()
        base = base.replace(**{name: getattr(defaults, name) for name in PER_INVOCATION})
        sources.update(dict.fromkeys(PER_INVOCATION, "default"))
        preset = None
    else:
        base = TrainConfig()
        sources = presets.default_sources()
        preset = presets.find(pre.preset or base.preset, pre.env or base.env)
    optimizer = ("muon" if pre.use_muon else pre.optimizer
                 or (preset.settings.get("optimizer") if preset else None) or base.optimizer)
    listing = any(a in args for a in ("--list-optimizers", "--list-presets"))
    hyperparams: Sequence[Any] = ()
    if optimizer in reg:
        hyperparams = reg.get(optimizer).hyperparams
    elif not listing:
        reg.get(optimizer)  # raises the registry's one-line error (available names, hint)
    namespace = vars(build_parser(optimizer, hyperparams).parse_args(args))
    actions = {k: namespace.pop(k) for k in ("list_optimizers", "list_presets", "show_config")}
    if namespace.pop("use_muon", False):
        namespace["optimizer"] = "muon"
    plugin_given = split_plugin_values(namespace)
    declared = {hp.name: hp.default for hp in hyperparams}

    known = frozenset(hp.name for n in reg.names() for hp in reg.get(n).hyperparams)
    config, sources = presets.resolve(base, sources, preset, optimizer, declared, namespace,
                                      plugin_given, known)
    given = {**namespace, **({"optimizer_kwargs": plugin_given} if plugin_given else {})}
    return Parsed(config, sources, given, base, actions)


def validate_resume(config: TrainConfig, given: dict[str, Any], base: TrainConfig) -> None:
    """Flags that change shapes (or keys) may not differ from the run being resumed."""
    for name in RESUME_LOCKED:
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
    parsed = parse_args(argv)  # before importing the run loop (jax): --help stays fast
    from ppo_trainer.app.build import check
    from ppo_trainer.app.rundir import RunDir
    from ppo_trainer.app.runner import train

    if parsed.actions["list_optimizers"]:
        print(registry(PROG).format_table())
        return 0
    if parsed.actions["list_presets"]:
        print(format_presets())
        return 0
    if parsed.config.distributed:  # before anything (importing gymnax) starts a jax backend
        from ppo_trainer.parallel import initialize_distributed

        initialize_distributed()
    config = check(parsed.config)  # env, then optimizer, then values and sizes
    if parsed.actions["show_config"]:
        print(format_config(config, parsed.sources))
        return 0
    if config.resume:
        validate_resume(config, parsed.given, parsed.base)
        RunDir(Path(config.resume)).require_checkpoint()
    train(config, sources=parsed.sources)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ppo-train``; returns the exit code (2 for usage errors, 130 on Ctrl-C)."""
    return run_cli(PROG, lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
