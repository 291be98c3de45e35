"""Errors a user can fix. Each ``str()`` is a complete one-line message.

Library modules raise these (or their own subclasses); only the command-line tools turn them
into exit codes (``ppo_trainer.app.flags``), so the library stays usable from a notebook.
"""

from __future__ import annotations


class TrainerError(Exception):
    """Base class: something in what the user asked for, not a bug."""


class ConfigError(TrainerError, ValueError):
    """A setting that cannot run: a bad value, an unknown env, a size that does not divide."""
