"""User-facing errors of the command-line tools.

Each carries a complete one-line message and the process exit code, so that ``main`` can print
``ppo-train: error: <message>`` and exit without a traceback.
"""

from __future__ import annotations


class CLIError(Exception):
    """A mistake in what the user asked for (bad flag, missing run directory): exit code 2."""

    exit_code = 2


class TrainingDiverged(CLIError):
    """A loss became NaN/inf; the message names the flag most likely to blame. Exit code 1."""

    exit_code = 1


class TrainingInterrupted(CLIError):
    """Ctrl-C: the last completed chunk was checkpointed; the message says how to resume. Exit 130."""

    exit_code = 130
