"""From a config to the objects a run needs: env, optimizer, trainer, seed keys, devices.

One build step shared by ``ppo-train``, ``ppo-eval``, ``ppo-compare`` and the suite, so they all
train exactly what ``ppo-train`` would.

Validate once: :func:`check` is the one place a config is validated, most fundamental first:
the env id, then the optimizer and its hyperparameters, then values and sizes
(``TrainConfig.validate``); each failure is a one-line :class:`~ppo_trainer.errors.TrainerError`
(or the registry's ``plugins.OptimizerError``). It returns a *checked* config, and everything
below trusts one: :func:`build` and ``runner.train`` check a config only if it is not checked
yet, so a library user passing a plain ``TrainConfig`` still gets it checked, once. Any
``replace`` gives an unchecked copy again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import ConfigError
from ppo_trainer.registry import registry

if TYPE_CHECKING:  # optim imports jax; this module must stay light for the CLIs' parsing
    from ppo_trainer.optim import Knots

_CHECKED = "_checked_by_build"  # attribute set on a config that check() returned


def is_checked(config: TrainConfig) -> bool:
    """Whether ``config`` is one :func:`check` returned (not a ``replace``d copy of it)."""
    return getattr(config, _CHECKED, False)


def check(config: TrainConfig) -> TrainConfig:
    """Validate ``config`` without building anything, most fundamental first: the env id, the
    optimizer and its hyperparameters, then values and sizes. Returns it checked, with every
    declared hyperparameter filled in (validated); a checked config is returned as it is."""
    # envs imports gymnax (jax): loaded only when a config is checked, after the CLIs' parsing
    from ppo_trainer import envs

    if is_checked(config):
        return config
    envs.resolve_env_id(config.env)
    kwargs = registry().validate(config.optimizer, **config.optimizer_kwargs)
    config.validate()
    checked = config.replace(optimizer_kwargs=kwargs)
    object.__setattr__(checked, _CHECKED, True)  # frozen dataclass; not a field, never saved
    return checked


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
        import jax  # this module stays light for parsing; a Setup exists only after a build

        return jax.eval_shape(jax.vmap(self.trainer.init), self.keys)


def build(config: TrainConfig, progress_fn: Callable[..., None] | None = None, *,
          parallel: bool = False, knots: Knots | None = None, progress_every: int = 1) -> Setup:
    """Env, optimizer and trainer for ``config`` (checked first unless it is already).

    ``parallel``: split the environments over ``config.devices`` devices (all by default) with
    a device mesh (``ppo_trainer/parallel.py``); otherwise, and with one device, no mesh.
    ``knots``: the learning-rate schedule's corners (a resumed run's, from its checkpoint).
    """
    # the heavy core (jax, optax, gymnax): imported when something is built, not when parsing
    import jax

    from ppo_trainer import envs, optim, ppo
    from ppo_trainer import parallel as par  # the module; ``parallel`` is this function's flag

    config = check(config)
    devices, mesh = [], None
    if parallel:
        try:
            devices = par.select_devices(config.devices)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        config.check_devices(len(devices))  # the count --devices 0/None stands for
        mesh = par.make_mesh(devices) if len(devices) > 1 else None
    env, env_params = envs.make_env(config)
    tx, lr_schedule = optim.make_optimizer(config, knots, validated=True)  # check() ran above
    trainer = ppo.Trainer(config, env, env_params, tx, progress_fn=progress_fn,
                          lr_schedule=lr_schedule, mesh=mesh, progress_every=progress_every,
                          eval_env=envs.make_eval_env(config, env))
    keys = jax.random.split(jax.random.PRNGKey(config.seed), config.num_seeds)
    return Setup(config, env, env_params, trainer, keys, devices, mesh)
