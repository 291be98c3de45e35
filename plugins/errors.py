"""Registry errors: each ``str()`` is a complete one-line message a CLI can print as is."""


class OptimizerError(ValueError):
    """Base class of the registry's errors."""


class UnknownOptimizerError(OptimizerError):
    """No optimizer is registered under the requested name."""


class AmbiguousOptimizerError(OptimizerError):
    """Two third-party plugins registered the same plain name; use a qualified ``dist:name``."""


class HyperParameterError(OptimizerError):
    """A hyperparameter, the learning rate or the clip is unknown, mistyped or out of range."""


class PluginAPIError(OptimizerError):
    """A plugin is written for a plugin API this registry cannot serve (see ``plugins.api``)."""
