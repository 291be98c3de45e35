"""The single source of truth for the trainer's settings.

Every field becomes a command-line flag (``--field-name``; booleans also get ``--no-field-name``):
its default is the flag's default, its ``help`` metadata the help text, and a ``Literal[...]``
type its choices. ``ppo_trainer.app.flags`` builds the parsers from this class and nothing else.
This module imports nothing heavy so that ``ppo-train --help`` answers fast.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_type_hints

from ppo_trainer.errors import ConfigError

Network = Literal["auto", "mlp", "cnn", "transformer"]
Activation = Literal["tanh", "relu"]


def _f(default: Any, help: str, group: str = "ppo") -> Any:
    """A dataclass field carrying its CLI help text and flag group."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help, "group": group})
    return field(default=default, metadata={"help": help, "group": group})


@dataclass(frozen=True)
class TrainConfig:
    """PPO run configuration. The defaults are the raw settings (``--preset none``); per-env
    presets (``ppo_trainer/presets.toml``) are layered over them, command-line flags over both."""

    # --- environment ---
    env: str = _f("Snake-v0", "gymnax env id, or 'module:EnvId' to import a module that registers it", "env")
    env_kwargs: dict[str, Any] = _f(
        {}, "env constructor arguments, which may change shapes: KEY=VALUE[,KEY=VALUE] "
        "(e.g. width=12,height=12), also as --env-kwargs.KEY=VALUE", "env")
    env_params: dict[str, Any] = _f(
        {}, "EnvParams overrides: KEY=VALUE[,KEY=VALUE] (e.g. max_steps_in_episode=1000), also "
        "as --env-params.KEY=VALUE", "env")
    preset: str = _f("auto", "tuned settings to start from: a preset name, 'auto' (the env id's "
                     "preset, if any) or 'none' (see --list-presets)", "env")
    one_hot_obs: bool = _f(True, "one-hot encode Discrete observations (FrozenLake-style envs)", "env")
    normalize_obs: bool = _f(False, "running mean/std observation normalization over all envs", "env")
    normalize_reward: bool = _f(False, "scale rewards by the running std of the discounted return", "env")
    clip_obs: float = _f(10.0, "clip normalized observations to +-this", "env")
    clip_reward: float = _f(10.0, "clip scaled rewards to +-this", "env")
    action_mask: bool = _f(False, "give the actions the env declares invalid "
                           "(env.valid_actions(state, params)) zero probability", "env")
    augment_symmetry: bool = _f(False, "train each minibatch sample under a random one of the "
                                "env's symmetries (env.symmetries(params))", "env")

    # --- optimizer ---
    optimizer: str = _f("muon", "registered optimizer name (see `ppo-train --list-optimizers`)", "optimizer")
    lr: float = _f(5e-4, "learning rate (Adam; also the default for Muon's auxiliary Adam)", "optimizer")
    max_grad_norm: float = _f(0.5, "global-norm gradient clip applied before the optimizer", "optimizer")
    anneal_lr: bool = _f(True, "linearly anneal every learning rate to 0 at the last optimizer step", "optimizer")

    # --- PPO ---
    num_envs: int = _f(128, "parallel environments (global count)")
    num_steps: int = _f(128, "steps per environment per rollout")
    total_timesteps: int = _f(10_000_000, "total environment steps per seed")
    update_epochs: int = _f(4, "epochs over each rollout")
    num_minibatches: int = _f(4, "minibatches per epoch (must divide num_envs * num_steps)")
    gamma: float = _f(0.99, "discount factor")
    gae_lambda: float = _f(0.95, "GAE lambda")
    clip_eps: float = _f(0.2, "PPO clip range of the policy ratio (and of the value, if clipped)")
    clip_value_loss: bool = _f(True, "clip the value update to +-clip_eps around the rollout's value")
    ent_coef: float = _f(0.01, "entropy bonus coefficient")
    vf_coef: float = _f(0.5, "value loss coefficient")

    # --- network ---
    network: Network = _f("auto", "network architecture (auto: an MLP, the cheapest that learns)", "network")
    hidden_size: int = _f(128, "MLP hidden width", "network")
    num_hidden_layers: int = _f(2, "MLP hidden layers", "network")
    activation: Activation = _f("tanh", "hidden activation of the MLP", "network")
    shared_torso: bool = _f(False, "actor and critic share the MLP's hidden layers (half the "
                            "cost per sample)", "network")
    state_dependent_std: bool = _f(False, "Box actions: the Gaussian's std is softplus of a "
                                   "policy-head output (gymnax-blines' Gaussian-MLP), not one "
                                   "learned parameter", "network")
    d_model: int = _f(64, "transformer width", "network")
    num_layers: int = _f(2, "transformer blocks", "network")
    num_heads: int = _f(4, "transformer attention heads", "network")
    dropout: float = _f(0.0, "transformer dropout rate", "network")

    # --- run ---
    seed: int = _f(0, "random seed", "run")
    num_seeds: int = _f(1, "independent seeds trained in one program (vmapped)", "run")
    run_dir: str = _f("runs", "parent folder of run directories", "run")
    run_name: str | None = _f(None, "run directory name (default: env__optimizer__seed__time)", "run")
    save_freq: int = _f(50, "checkpoint every N updates (and always at the end)", "run")
    eval_freq: int = _f(0, "greedy evaluation every N updates (0: only at the end)", "run")
    eval_episodes: int = _f(256, "episodes for each greedy evaluation", "run")
    wandb: bool = _f(False, "log metrics, config and the GIF to Weights & Biases", "run")
    wandb_project: str = _f("snake-ppo-jax", "W&B project", "run")
    wandb_entity: str | None = _f(None, "W&B entity", "run")
    tensorboard: bool = _f(False, "write TensorBoard event files to <run dir>/tensorboard", "run")
    resume: str | None = _f(None, "run directory to resume from its last checkpoint", "run")

    # --- devices and hosts (ppo_trainer/parallel.py) ---
    devices: int | None = _f(
        None, "devices to split the environments over, data-parallel (None/0: every device JAX "
        "sees, on every host); --num-envs is the global count and must divide by it", "devices")
    distributed: bool = _f(
        False, "call jax.distributed.initialize() first, for multi-host runs (reads "
        "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID, or detects SLURM/Open MPI)",
        "devices")

    # Optimizer-specific hyperparameters (declared by the optimizer plugin), e.g. muon_lr.
    optimizer_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "plugin hyperparameters", "group": "internal"}
    )

    # --- derived quantities (not flags) ---
    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def num_optimizer_steps(self) -> int:
        """Optimizer steps in the whole run: the horizon of the learning-rate schedule."""
        return self.num_updates * self.update_epochs * self.num_minibatches

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def validate(self) -> None:
        """Raise :class:`ConfigError` (one line) for settings that cannot run. Cheap: no jax.

        Checks values and sizes only; the env id and the optimizer are checked where they are
        resolved (``ppo_trainer.envs``, the optimizer registry), and callers check those first.
        """
        positive = ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches",
                    "hidden_size", "d_model", "num_layers", "num_heads", "num_seeds", "save_freq",
                    "eval_episodes", "lr", "max_grad_norm", "clip_eps", "clip_obs", "clip_reward")
        for name in positive:
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{flag(name)} must be positive, got {value}")
        for name in ("num_hidden_layers", "eval_freq", "ent_coef", "vf_coef"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{flag(name)} must be >= 0, got {getattr(self, name)}")
        if self.devices is not None and self.devices < 0:
            raise ConfigError(f"--devices must be >= 0 (0: all devices), got {self.devices}")
        if self.devices and self.num_envs % self.devices:
            raise ConfigError(f"--num-envs {self.num_envs} must divide by the device count "
                              f"{self.devices} (--devices)")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{flag(name)} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        for name, choices in field_choices().items():
            if getattr(self, name) not in choices:
                raise ConfigError(f"{flag(name)} must be one of {', '.join(choices)}, "
                                  f"got {getattr(self, name)!r}")
        if self.batch_size % self.num_minibatches:
            raise ConfigError(
                f"--num-minibatches {self.num_minibatches} must divide --num-envs x --num-steps = "
                f"{self.num_envs} x {self.num_steps} = {self.batch_size}")
        if self.total_timesteps < self.batch_size:
            raise ConfigError(
                f"--total-timesteps {self.total_timesteps} is less than one batch "
                f"(--num-envs x --num-steps = {self.batch_size})")
        if self.network == "transformer" and self.d_model % self.num_heads:
            raise ConfigError(f"--num-heads {self.num_heads} must divide --d-model {self.d_model}")


def flag(name: str) -> str:
    """``num_envs`` -> ``--num-envs``."""
    return "--" + name.replace("_", "-")


def field_types() -> dict[str, Any]:
    """Resolved type of every TrainConfig field (``Literal[...]`` included)."""
    return get_type_hints(TrainConfig)


def field_choices() -> dict[str, tuple[Any, ...]]:
    """Fields whose type is a ``Literal``: their allowed values, the one source of choices."""
    return {name: get_args(tp) for name, tp in field_types().items()
            if getattr(tp, "__origin__", None) is Literal}
