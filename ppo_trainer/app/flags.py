"""Command-line machinery shared by ``ppo-train``, ``ppo-eval``, ``ppo-compare`` and ``ppo-suite``.

- :class:`OneLineParser`: argparse whose errors are one line on stderr and exit code 2.
- :func:`add_config_flags`: ``TrainConfig`` fields -> flags (types, ``Literal`` choices, help,
  groups and alias flags such as ``--use-muon`` from the field metadata); :func:`add_plugin_flags`: an optimizer plugin's declared
  hyperparameters -> flags. Every flag is ``default=SUPPRESS`` so a parsed namespace holds only
  what was typed: the caller layers it over defaults / a preset / a resumed run's config.
- :func:`normalize_argv`: the spellings people and W&B sweep agents use (``--num_envs=8``,
  ``--env-params.max_steps_in_episode=100``).
- :func:`run_cli`: the error tail every CLI shares: library errors become ``prog: error: <one
  line>`` and an exit code (2 usage, 1 diverged, 130 interrupted), never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NoReturn, get_args

from plugins import OptimizerError
from ppo_trainer.config import (  # noqa: F401  (parse_value: re-exported)
    TrainConfig,
    field_types,
    flag,
    parse_value,
    split_pairs,
    without_none,
)
from ppo_trainer.errors import TrainerError
from ppo_trainer.registry import registry  # noqa: F401  (re-exported for ppo-compare)
from ppo_trainer.version import package_version

GROUP_TITLES = {
    "env": "environment",
    "optimizer": "optimizer",
    "ppo": "PPO",
    "network": "network",
    "run": "run, logging and checkpoints",
    "devices": "devices and hosts (data-parallel training)",
}
PLUGIN_PREFIX = "opt__"  # namespace dest of a plugin hyperparameter: opt__muon_lr
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}
_NONE = {"none", "null"}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage dump), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_version_flag(target: Any, prog: str, help: str = "print the version, then exit") -> None:
    """``--version`` on a parser or argument group: ``PROG VERSION``, the one version every
    command and every run's config.json report (jax-free, so it answers fast)."""
    target.add_argument("--version", action="version", version=f"{prog} {package_version()}",
                        help=help)


def parse_bool(text: str) -> bool:
    """Parse the values sweep agents pass for booleans (true/false, 1/0, yes/no)."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_pairs(text: str) -> dict[str, Any]:
    """``KEY=VALUE[,KEY=VALUE]`` (or a JSON object) -> dict."""
    if text.strip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"invalid JSON object {text!r}: {exc}") from None
        if not isinstance(data, dict):
            raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
        return data
    try:
        return split_pairs(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class MergePairs(argparse.Action):
    """Repeated ``--env-params a=1 --env-params b=2`` merge into one dict."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        merged = dict(getattr(namespace, self.dest, None) or {})
        merged.update(values)
        setattr(namespace, self.dest, merged)


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """``--num_envs=8`` -> ``--num-envs=8``; ``--env-params.k=v`` -> ``--env-params k=v``."""
    out: list[str] = []
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token.partition("=")
            name = name.replace("_", "-") if "." not in name else name
            head, dot, key = name.partition(".")
            if dot and head.replace("_", "-") in ("--env-params", "--env-kwargs"):
                out += [head.replace("_", "-"), f"{key}={value}"]
                continue
            token = name + eq + value
        out.append(token)
    return out


def _converter(tp: Any) -> tuple[Any, Sequence[Any] | None, bool]:
    """(argparse type callable, choices, is_bool) for a resolved field type."""
    base, optional = without_none(tp)
    if getattr(base, "__origin__", None) is Literal:
        return str, get_args(base), False
    if base is bool:
        return parse_bool, None, True
    if getattr(base, "__origin__", None) is dict or base is dict:
        return parse_pairs, None, False
    scalar = base if base in (int, float, str) else str
    name = getattr(scalar, "__name__", "str")

    def convert(text: str) -> Any:
        if optional and text.strip().lower() in _NONE:
            return None
        try:
            return scalar(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {name} value: {text!r}") from None

    convert.__name__ = name  # argparse names the type in its messages
    convert.metavar = name.upper()  # type: ignore[attr-defined]
    return convert, None, False


def add_option(group: Any, dest: str, tp: Any, default: Any, help_text: str,
               choices: Sequence[Any] | None = None, flag_name: str | None = None) -> None:
    """One flag (``--x``), or for booleans the pair ``--x[=BOOL]`` / ``--no-x``; default unset."""
    convert, type_choices, is_bool = _converter(tp)
    choices = choices or type_choices
    name = flag(flag_name or dest)
    text = f"{help_text} (default: {default})"
    if is_bool:
        group.add_argument(name, dest=dest, nargs="?", const=True, type=parse_bool,
                           default=argparse.SUPPRESS, metavar="BOOL", help=text)
        group.add_argument("--no-" + name[2:], dest=dest, action="store_false",
                           default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    elif convert is parse_pairs:
        group.add_argument(name, dest=dest, type=parse_pairs, action=MergePairs,
                           default=argparse.SUPPRESS, metavar="KEY=VALUE", help=text)
    else:
        group.add_argument(name, dest=dest, type=convert, default=argparse.SUPPRESS,
                           choices=choices, metavar=None if choices else convert.metavar,
                           help=text)


def config_fields(skip: Iterable[str] = (), only: Iterable[str] | None = None
                  ) -> list[dataclasses.Field]:
    """The ``TrainConfig`` fields that are flags (not ``internal``), minus ``skip`` (or just
    ``only``)."""
    skip, keep = set(skip), None if only is None else set(only)
    return [f for f in dataclasses.fields(TrainConfig)
            if f.name not in skip and f.metadata.get("group") != "internal"
            and (keep is None or f.name in keep)]


def add_config_flags(parser: argparse.ArgumentParser, skip: Iterable[str] = (),
                     defaults: dict[str, Any] | None = None,
                     only: Iterable[str] | None = None) -> None:
    """A flag per ``TrainConfig`` field (and its aliases), grouped by its metadata; ``defaults``
    for the help."""
    types = field_types()
    groups: dict[str, Any] = {}
    for field in config_fields(skip, only):
        group_name = field.metadata.get("group", "ppo")
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(GROUP_TITLES.get(group_name, group_name))
        default = (defaults or {}).get(field.name, field.default)
        if default is dataclasses.MISSING:
            default = field.default_factory()  # type: ignore[misc]
        add_option(groups[group_name], field.name, types[field.name], default,
                   field.metadata.get("help", ""))
        for alias, value in field.metadata.get("aliases", {}).items():
            groups[group_name].add_argument(
                flag(alias), dest=field.name, action="store_const", const=value,
                default=argparse.SUPPRESS, help=f"same as {flag(field.name)} {value}")


def add_plugin_flags(parser: argparse.ArgumentParser, hyperparams: Sequence[Any],
                     title: str) -> None:
    """A flag per declared plugin hyperparameter; parsed into ``opt__<name>``."""
    if not hyperparams:
        return
    group = parser.add_argument_group(title)
    for hp in hyperparams:
        tp = hp.type if hp.default is not None else (hp.type | None)
        add_option(group, PLUGIN_PREFIX + hp.name, tp, hp.default, hp.help,
                   getattr(hp, "choices", None), flag_name=hp.name)


def split_plugin_values(namespace: dict[str, Any]) -> dict[str, Any]:
    """Remove and return the plugin hyperparameters (``opt__x``) of a parsed namespace."""
    return {k[len(PLUGIN_PREFIX):]: namespace.pop(k) for k in list(namespace)
            if k.startswith(PLUGIN_PREFIX)}


def exit_code(exc: BaseException) -> int:
    """2 for usage errors, 1 for a diverged or failed run, 130 for an interrupted one."""
    name = type(exc).__name__
    return {"TrainingInterrupted": 130, "TrainingDiverged": 1, "PeerFailed": 1}.get(name, 2)


def out_of_memory(exc: BaseException) -> str | None:
    """The one-line message for XLA's ``RESOURCE_EXHAUSTED`` (a ``jax.errors.JaxRuntimeError``,
    raised where a jitted chunk's buffers do not fit), else ``None``."""
    text = str(exc)
    if not isinstance(exc, RuntimeError) or "RESOURCE_EXHAUSTED" not in text:
        return None
    asked = re.search(r"allocating (\d+) bytes", text)
    size = f" {int(asked.group(1)) / 1e9:.1f} GB" if asked else ""
    return (f"out of memory: XLA could not allocate{size}; use fewer envs, steps, seeds or "
            "episodes at once (--num-envs, --num-steps, --num-seeds, --episodes)")


def run_cli(prog: str, main: Callable[[], int]) -> int:
    """Run ``main``; turn the library's errors, and running out of memory, into one line on
    stderr and an exit code."""
    try:
        return main()
    except (TrainerError, OptimizerError) as exc:
        code = exit_code(exc)
        label = "" if code == 130 else "error: "
        print(f"{prog}: {label}{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return code
    except RuntimeError as exc:
        message = out_of_memory(exc)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1

