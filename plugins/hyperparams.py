"""Hyperparameter declarations: what a plugin tells the CLI, and how values are checked.

jax-free, so ``--help`` can be built from declarations without importing an optimizer.
"""

from __future__ import annotations

import keyword
import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from plugins.errors import HyperParameterError

_TYPES = (float, int, bool, str)


def is_schedule(value: Any) -> bool:
    """A callable that is not a type: an optax schedule ``count -> value``."""
    return callable(value) and not isinstance(value, type)


@dataclass(frozen=True)
class HyperParam:
    """One declared hyperparameter of an optimizer; the CLI makes ``--<name-with-dashes>`` of it.

    Attributes:
      name: a Python identifier (``muon_lr``), the factory's keyword argument.
      type: ``float``, ``int``, ``bool`` or ``str`` (an argparse ``type``).
      default: the value used when the user gives none; ``None`` means "not set" and is allowed
        only as a default (the help text says what ``None`` means).
      help: one line for ``--help``.
      choices: allowed values, or ``None``.
      schedulable: ``True`` for a learning rate the trainer may turn into an ``optax`` schedule;
        such a parameter also accepts a callable ``schedule(count) -> value``.
      minimum / maximum: inclusive bounds (JSON-Schema names), or ``None``.
      exclusive_minimum / exclusive_maximum: strict bounds, or ``None``.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: Sequence[Any] | None = None
    schedulable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None

    def __post_init__(self) -> None:
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def flag(self) -> str:
        """The CLI flag, ``--`` plus the name with dashes."""
        return "--" + self.name.replace("_", "-")

    def check_declaration(self) -> None:
        """Raise ``ValueError`` if the declaration itself is malformed (a plugin bug)."""
        if not (isinstance(self.name, str) and self.name.isidentifier()) or keyword.iskeyword(
            self.name
        ):
            raise ValueError(f"hyperparameter name {self.name!r} is not a Python identifier")
        if self.type not in _TYPES:
            raise ValueError(
                f"hyperparameter {self.name!r} has type {self.type!r}; use float, int, bool or str"
            )
        if self.schedulable and self.type is not float:
            raise ValueError(f"schedulable hyperparameter {self.name!r} must have type float")
        if self.default is not None:
            self.validate(self.default, optimizer="<declaration>")

    def validate(self, value: Any, *, optimizer: str) -> Any:
        """Return ``value`` converted to the declared type, or raise :class:`HyperParameterError`.

        Accepted: an ``int`` for a ``float`` (converted), a callable schedule for a schedulable
        parameter, and ``None`` where the default is ``None``. ``bool`` is never a number.
        """
        where = f"optimizer {optimizer!r}: hyperparameter {self.name!r} ({self.flag})"
        tp = self.type
        if value is None:
            if self.default is None:
                return None
            raise HyperParameterError(f"{where} must be a {tp.__name__}, got None")
        if self.schedulable and is_schedule(value):
            return value

        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, tp) or (tp is not bool and isinstance(value, bool)):
            kind = f"{tp.__name__} or a schedule" if self.schedulable else tp.__name__
            raise HyperParameterError(
                f"{where} must be a {kind}, got {type(value).__name__} {value!r}"
            )
        if tp is float and not math.isfinite(value):
            raise HyperParameterError(f"{where} must be finite, got {value!r}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise HyperParameterError(f"{where} must be one of {allowed}; got {value!r}")
        for bound, holds, op in (
            (self.minimum, operator.ge, ">="),
            (self.exclusive_minimum, operator.gt, ">"),
            (self.maximum, operator.le, "<="),
            (self.exclusive_maximum, operator.lt, "<"),
        ):
            if bound is not None and not holds(value, bound):
                raise HyperParameterError(f"{where} must be {op} {bound}, got {value!r}")
        return value


def check_declarations(optimizer: str, hyperparams: Iterable[HyperParam]) -> tuple[HyperParam, ...]:
    """Check a plugin's declarations (``ValueError`` on a plugin bug); return them as a tuple."""
    hps = tuple(hyperparams)
    for i, hp in enumerate(hps):
        if not isinstance(hp, HyperParam):
            raise ValueError(f"optimizer {optimizer!r}: hyperparams must be HyperParam, got {hp!r}")
        hp.check_declaration()
        if hp.name in {h.name for h in hps[:i]}:
            raise ValueError(f"optimizer {optimizer!r} declares hyperparameter {hp.name!r} twice")
    return hps
