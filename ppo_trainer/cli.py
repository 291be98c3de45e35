"""``ppo-train``: flags from ``TrainConfig`` and the selected optimizer plugin, then the run loop.

Parsing happens in two phases so that an optimizer's own hyperparameters become flags:
phase 1 finds ``--optimizer`` / ``--use-muon`` / ``--resume``; phase 2 builds the full parser
with that plugin's declared ``HyperParam`` flags. Nothing heavy (jax, optax, flax, gymnax) is
imported before parsing, so ``--help`` answers in a fraction of a second.

Accepted forms, as typed by people and by W&B sweep agents: ``--num-envs 8``, ``--num_envs 8``,
``--num-envs=8``; booleans ``--anneal-lr``, ``--no-anneal-lr``, ``--anneal-lr=false``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from plugins import OptimizerError
from ppo_trainer.checkpoint import require_checkpoint
from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import CLIError, TrainingInterrupted

PROG = "ppo-train"
GROUP_TITLES = {
    "env": "environment",
    "optimizer": "optimizer",
    "ppo": "PPO",
    "network": "network",
    "run": "run, logging and checkpoints",
    "devices": "devices and hosts (data-parallel training)",
}
# Choices for string fields whose valid values are fixed (used unless the field declares its own).
FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "network": ("auto", "mlp", "cnn", "transformer"),
    "activation": ("tanh", "relu"),
}
# Fields a resumed run must keep: they change array shapes, the meaning of an update, or the keys.
RESUME_LOCKED = (
    "env", "width", "height", "num_envs", "num_steps", "num_seeds", "seed", "optimizer", "anneal_lr",
    "network", "hidden_size", "num_hidden_layers", "activation", "d_model", "num_layers",
    "num_heads",
)
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}
_NONE = {"none", "null"}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage dump), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_bool(text: str) -> bool:
    """Parse the values sweep agents pass for booleans (true/false, 1/0, yes/no)."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """``--num_envs=8`` -> ``--num-envs=8``: underscores in flag names become dashes."""
    out = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token.partition("=")
            token = name.replace("_", "-") + eq + value
        out.append(token)
    return out


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _converter(type_name: str) -> tuple[Any, bool]:
    """(argparse type callable, is_bool) for a dataclass field type written as a string."""
    base = type_name.replace(" ", "")
    optional = base.endswith("|None") or base.startswith("None|")
    base = base.replace("|None", "").replace("None|", "")
    if base == "bool":
        return parse_bool, True
    scalar = {"int": int, "float": float, "str": str}.get(base, str)

    def convert(text: str) -> Any:
        if optional and text.strip().lower() in _NONE:
            return None
        try:
            return scalar(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {base} value: {text!r}") from None

    convert.__name__ = base  # argparse names the type in its messages
    convert.metavar = base.upper()  # type: ignore[attr-defined]
    return convert, False


def _type_name(tp: Any) -> str:
    return tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))


def add_option(
    group: argparse._ArgumentGroup,
    dest: str,
    type_name: str,
    default: Any,
    help_text: str,
    choices: Sequence[Any] | None = None,
    flag_name: str | None = None,
) -> None:
    """One flag (``--x``), or for booleans the pair ``--x[=BOOL]`` / ``--no-x``; default unset."""
    convert, is_bool = _converter(type_name)
    name = flag(flag_name or dest)
    text = f"{help_text} (default: {default})"
    if is_bool:
        group.add_argument(
            name, dest=dest, nargs="?", const=True, type=parse_bool, default=argparse.SUPPRESS,
            metavar="BOOL", help=text,
        )
        group.add_argument(
            "--no-" + name[2:], dest=dest, action="store_false", default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
        return
    group.add_argument(
        name, dest=dest, type=convert, default=argparse.SUPPRESS, choices=choices,
        metavar=None if choices else convert.metavar, help=text,
    )


def _plugin_dest(name: str) -> str:
    return "opt__" + name


def build_parser(optimizer: str, hyperparams: Sequence[Any]) -> OneLineParser:
    """The full parser: every TrainConfig field, grouped by its metadata, plus the plugin's flags."""
    parser = OneLineParser(
        prog=PROG,
        description="Train PPO on a gymnax environment (Snake by default). Writes a run directory "
        "with config.json, metrics.jsonl, checkpoints, a learning curve and, for Snake, a GIF.",
        allow_abbrev=False,
        epilog="Underscore flag names (--num_envs) and --flag=value are accepted too.",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in dataclasses.fields(TrainConfig):
        group_name = field.metadata.get("group", "ppo")
        if group_name == "internal":
            continue
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(GROUP_TITLES.get(group_name, group_name))
        default = field.default if field.default is not dataclasses.MISSING else None
        choices = field.metadata.get("choices") or FIELD_CHOICES.get(field.name)
        add_option(groups[group_name], field.name, _type_name(field.type), default,
                   field.metadata.get("help", ""), choices)
    opt_group = groups.setdefault("optimizer", parser.add_argument_group("optimizer"))
    opt_group.add_argument("--use-muon", action="store_true", default=argparse.SUPPRESS,
                           help="same as --optimizer muon")
    opt_group.add_argument("--list-optimizers", action="store_true", default=False,
                           help="list the registered optimizers and their flags, then exit")
    if hyperparams:
        plugin_group = parser.add_argument_group(
            f"{optimizer} optimizer (declared by its plugin; values go to optimizer_kwargs)")
        for hp in hyperparams:
            type_name = _type_name(hp.type) + (" | None" if hp.default is None else "")
            add_option(plugin_group, _plugin_dest(hp.name), type_name, hp.default,
                       hp.help, getattr(hp, "choices", None), flag_name=hp.name)
    return parser


def _prescan(argv: list[str]) -> argparse.Namespace:
    """Phase 1: only the flags that decide which other flags exist."""
    pre = OneLineParser(prog=PROG, add_help=False, allow_abbrev=False)
    pre.add_argument("--optimizer", default=None)
    pre.add_argument("--use-muon", action="store_true")
    pre.add_argument("--resume", default=None)
    known, _ = pre.parse_known_args(argv)
    return known


def load_run_config(run_path: Path, label: str = "--resume ") -> TrainConfig:
    """The resolved config a run directory was started with."""
    where = f"{label}{run_path}"
    if not run_path.is_dir():
        raise CLIError(f"{where}: no such run directory")
    path = run_path / "config.json"
    if not path.is_file():
        raise CLIError(f"{where}: no config.json in it (not a run directory)")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CLIError(f"{where}: unreadable config.json ({exc})") from None
    return TrainConfig.from_dict(data)


def _registry() -> Any:
    import warnings

    from plugins import get_registry

    with warnings.catch_warnings():  # reported below as one line each
        warnings.simplefilter("ignore")
        registry = get_registry()
    for warning in getattr(registry, "warnings", ()):
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    return registry


@dataclasses.dataclass
class Parsed:
    """What the command line asked for: the resolved config and the fields given explicitly."""

    config: TrainConfig
    given: dict[str, Any]
    list_optimizers: bool = False


def parse_args(argv: Sequence[str] | None = None) -> Parsed:
    """Parse (both phases) and resolve against defaults, or against config.json on --resume."""
    args = normalize_argv(sys.argv[1:] if argv is None else argv)
    pre = _prescan(args)
    base = load_run_config(Path(pre.resume)) if pre.resume else TrainConfig()
    optimizer = "muon" if pre.use_muon else (pre.optimizer or base.optimizer)
    registry = _registry()
    wants_list = "--list-optimizers" in args
    hyperparams: Sequence[Any] = ()
    if optimizer in registry:
        hyperparams = registry.get(optimizer).hyperparams
    elif not wants_list:
        registry.get(optimizer)  # raises the registry's one-line error (available names, hint)
    namespace = vars(build_parser(optimizer, hyperparams).parse_args(args))
    list_optimizers = namespace.pop("list_optimizers", False)
    if namespace.pop("use_muon", False):
        namespace["optimizer"] = "muon"
    plugin_given = {k[len("opt__"):]: namespace.pop(k) for k in list(namespace) if k.startswith("opt__")}
    kwargs = {hp.name: hp.default for hp in hyperparams}
    if base.optimizer == optimizer:
        kwargs.update({k: v for k, v in base.optimizer_kwargs.items() if k in kwargs})
    kwargs.update(plugin_given)
    given = dict(namespace)
    if plugin_given:
        given["optimizer_kwargs"] = plugin_given
    config = base.replace(**namespace, optimizer_kwargs=kwargs)
    return Parsed(config=config, given=given, list_optimizers=list_optimizers)


def validate(config: TrainConfig) -> None:
    """Raise CLIError with one clear line for a config that cannot run (before anything heavy)."""
    positive = ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches",
                "hidden_size", "d_model", "num_layers", "num_heads", "num_seeds", "save_freq",
                "eval_episodes", "width", "height", "lr", "max_grad_norm", "clip_eps")
    for name in positive:
        if not getattr(config, name) > 0:
            raise CLIError(f"{flag(name)} must be positive, got {getattr(config, name)}")
    for name in ("num_hidden_layers", "eval_freq", "ent_coef", "vf_coef"):
        if getattr(config, name) < 0:
            raise CLIError(f"{flag(name)} must be >= 0, got {getattr(config, name)}")
    if config.devices is not None and config.devices < 0:
        raise CLIError(f"--devices must be >= 0 (0: all devices), got {config.devices}")
    if config.devices and config.num_envs % config.devices:
        raise CLIError(f"--num-envs {config.num_envs} must divide by the device count "
                       f"{config.devices} (--devices)")
    if config.max_steps is not None and config.max_steps <= 0:
        raise CLIError(f"--max-steps must be positive, got {config.max_steps}")
    for name in ("gamma", "gae_lambda"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise CLIError(f"{flag(name)} must be in [0, 1], got {getattr(config, name)}")
    if not 0.0 <= config.dropout < 1.0:
        raise CLIError(f"--dropout must be in [0, 1), got {config.dropout}")
    for name, choices in FIELD_CHOICES.items():
        if getattr(config, name) not in choices:
            raise CLIError(f"{flag(name)} must be one of {', '.join(choices)}, got {getattr(config, name)!r}")
    if config.batch_size % config.num_minibatches:
        raise CLIError(
            f"--num-minibatches {config.num_minibatches} must divide --num-envs x --num-steps = "
            f"{config.num_envs} x {config.num_steps} = {config.batch_size}")
    if config.total_timesteps < config.batch_size:
        raise CLIError(
            f"--total-timesteps {config.total_timesteps} is less than one batch "
            f"(--num-envs x --num-steps = {config.batch_size})")
    if config.network == "transformer" and config.d_model % config.num_heads:
        raise CLIError(f"--num-heads {config.num_heads} must divide --d-model {config.d_model}")


def validate_resume(config: TrainConfig, given: dict[str, Any], base: TrainConfig) -> None:
    """Flags that change shapes (or keys) may not differ from the run being resumed."""
    for name in RESUME_LOCKED:
        if name in given and getattr(config, name) != getattr(base, name):
            raise CLIError(
                f"{flag(name)} {getattr(config, name)} differs from the resumed run's "
                f"{getattr(base, name)!r}; it changes shapes or keys, so it cannot change on --resume")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ppo-train``; returns the exit code (2 for usage errors, 130 on Ctrl-C)."""
    try:
        parsed = parse_args(argv)
        if parsed.list_optimizers:
            print(_registry().format_table())
            return 0
        config = parsed.config
        validate(config)
        # Plugin hyperparameters: types, choices and bounds as declared (one-line errors).
        kwargs = _registry().validate(config.optimizer, **config.optimizer_kwargs)
        config = config.replace(optimizer_kwargs=kwargs)
        if config.resume:
            validate_resume(config, parsed.given, load_run_config(Path(config.resume)))
            require_checkpoint(Path(config.resume))
        from ppo_trainer.runner import train_from_cli

        return train_from_cli(config, parsed.given)
    except TrainingInterrupted as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OptimizerError as exc:  # the registry's errors carry one-line messages
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
