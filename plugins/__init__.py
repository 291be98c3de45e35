"""The optimizer registry: pluggy hook specs, markers and a plugin manager.

Third-party packages declare a module in the ``ppo_trainer.optimizers`` entry-point group; the
module implements ``register_optimizers(register)`` with :data:`hookimpl`. Our own built-ins
(``optimizers.adam_plugin``, ``optimizers.muon_plugin``) come in the same way. This package
imports neither jax nor optax, so listing optimizers stays fast.
"""

from plugins.hookspecs import PROJECT_NAME, hookimpl, hookspec
from plugins.registry import (
    BUILTIN_PLUGINS,
    ENTRY_POINT_GROUP,
    DuplicateOptimizerError,
    HyperParam,
    HyperParameterError,
    OptimizerError,
    OptimizerInfo,
    OptimizerRegistry,
    PluginLoadError,
    UnknownOptimizerError,
    get_registry,
    make_registry,
)

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "DuplicateOptimizerError",
    "HyperParam",
    "HyperParameterError",
    "OptimizerError",
    "OptimizerInfo",
    "OptimizerRegistry",
    "PluginLoadError",
    "UnknownOptimizerError",
    "get_registry",
    "hookimpl",
    "hookspec",
    "make_registry",
]
