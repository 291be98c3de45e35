"""From a config to the objects a run needs: env, optimizer, trainer, seed keys, devices.

One build step shared by ``ppo-train``, ``ppo-eval``, ``ppo-compare`` and the suite, so they all
train exactly what ``ppo-train`` would. Checks run most fundamental first: the env id, then the
optimizer and its hyperparameters, then values and sizes (``TrainConfig.validate``), then the
devices; each failure is a one-line :class:`~ppo_trainer.errors.TrainerError` (or the
registry's ``plugins.OptimizerError``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import ConfigError

if TYPE_CHECKING:  # optim imports jax; this module must stay light for the CLIs' parsing
    from ppo_trainer.optim import Knots


def check(config: TrainConfig) -> TrainConfig:
    """Validate ``config`` without building anything, most fundamental first: the env id, the
    optimizer and its hyperparameters, then values and sizes. Returns it with every declared
    hyperparameter filled in (validated)."""
    from ppo_trainer.envs import resolve_env_id
    from ppo_trainer.registry import registry

    resolve_env_id(config.env)
    kwargs = registry().validate(config.optimizer, **config.optimizer_kwargs)
    config.validate()
    return config.replace(optimizer_kwargs=kwargs)


@dataclass
class Setup:
    """Everything built from a config: env, optimizer, trainer, and the seed keys."""

    config: TrainConfig
    env: Any
    env_params: Any
    trainer: Any
    keys: Any
    devices: list[Any] = field(default_factory=list)
    mesh: Any = None  # a jax Mesh when the run is split over several devices, else None

    @property
    def network(self) -> Any:
        return self.trainer.network

    def state_template(self) -> Any:
        """The vmapped RunnerState structure (shapes/dtypes only, nothing computed)."""
        import jax

        return jax.eval_shape(jax.vmap(self.trainer.init), self.keys)


def build(config: TrainConfig, progress_fn: Callable[..., None] | None = None, *,
          parallel: bool = False, knots: Knots | None = None, progress_every: int = 1) -> Setup:
    """Env, optimizer and trainer for ``config``.

    ``parallel``: split the environments over ``config.devices`` devices (all by default) with
    a device mesh (``ppo_trainer/parallel.py``); otherwise, and with one device, no mesh.
    ``knots``: the learning-rate schedule's corners (a resumed run's, from its checkpoint).
    """
    import jax

    from ppo_trainer import parallel as par
    from ppo_trainer.envs import make_env
    from ppo_trainer.optim import make_optimizer
    from ppo_trainer.ppo import make_trainer

    config = check(config)
    devices, mesh = [], None
    if parallel:
        try:
            devices = par.select_devices(config.devices)
            par.check_divisible(config.num_envs, len(devices))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        mesh = par.make_mesh(devices) if len(devices) > 1 else None
    env, env_params = make_env(config)
    tx, lr_schedule = make_optimizer(config, knots)
    trainer = make_trainer(config, env, env_params, tx, progress_fn=progress_fn,
                           lr_schedule=lr_schedule, mesh=mesh, progress_every=progress_every)
    keys = jax.random.split(jax.random.PRNGKey(config.seed), config.num_seeds)
    return Setup(config, env, env_params, trainer, keys, devices, mesh)
