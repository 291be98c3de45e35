"""The single source of truth for the trainer's settings.

Every field becomes a `ppo-train` flag (``--field-name``; booleans also get ``--no-field-name``),
its default is the flag's default and its ``help`` metadata is the flag's help text. This module
imports nothing heavy so that ``ppo-train --help`` answers fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def _f(default: Any, help: str, group: str = "ppo", **extra: Any) -> Any:
    """A dataclass field carrying its CLI help text and flag group."""
    return field(default=default, metadata={"help": help, "group": group, **extra})


@dataclass(frozen=True)
class TrainConfig:
    """PPO run configuration. Defaults are the CPU-friendly Snake setting."""

    # --- environment ---
    env: str = _f("Snake-v0", "gymnax env id, or 'module:EnvId' to import a module that registers it", "env")
    width: int = _f(10, "Snake board width (changes shapes, so it is an env constructor argument)", "env")
    height: int = _f(10, "Snake board height", "env")
    apple_reward: float | None = _f(None, "Snake reward for eating an apple (None: env default)", "env")
    death_penalty: float | None = _f(None, "Snake reward on death (None: env default)", "env")
    step_penalty: float | None = _f(None, "Snake reward added every step (None: env default)", "env")
    max_steps: int | None = _f(None, "episode time limit, a truncation (None: env default)", "env")

    # --- optimizer ---
    optimizer: str = _f("muon", "registered optimizer name (see `ppo-train --list-optimizers`)", "optimizer")
    lr: float = _f(5e-4, "learning rate (Adam; also the default for Muon's auxiliary Adam)", "optimizer")
    max_grad_norm: float = _f(0.5, "global-norm gradient clip applied before the optimizer", "optimizer")
    anneal_lr: bool = _f(True, "linearly anneal every learning rate to 0 at the last optimizer step", "optimizer")

    # --- PPO ---
    num_envs: int = _f(128, "parallel environments (global count)")
    num_steps: int = _f(128, "steps per environment per rollout")
    total_timesteps: int = _f(
        10_000_000, "total environment steps per seed (Snake default: ~4 min on 2 CPU cores)"
    )
    update_epochs: int = _f(4, "epochs over each rollout")
    num_minibatches: int = _f(4, "minibatches per epoch (must divide num_envs * num_steps)")
    gamma: float = _f(0.99, "discount factor")
    gae_lambda: float = _f(0.95, "GAE lambda")
    clip_eps: float = _f(0.2, "PPO clip range for the policy ratio and the value function")
    ent_coef: float = _f(0.01, "entropy bonus coefficient")
    vf_coef: float = _f(0.5, "value loss coefficient")

    # --- network ---
    network: str = _f("auto", "auto|mlp|cnn|transformer (auto: cheap default for the observation)", "network")
    hidden_size: int = _f(128, "MLP hidden width", "network")
    num_hidden_layers: int = _f(2, "MLP hidden layers", "network")
    activation: str = _f("tanh", "tanh|relu", "network")
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


def purejaxrl_cartpole(**overrides: Any) -> TrainConfig:
    """PureJaxRL's CartPole PPO (4 envs x 128 steps, 4 epochs x 4 minibatches, tanh MLP 64x2,
    Adam 2.5e-4, 500k steps): the reference setting of the benchmarks and learning tests."""
    settings: dict[str, Any] = dict(
        env="CartPole-v1",
        network="mlp",
        hidden_size=64,
        num_hidden_layers=2,
        activation="tanh",
        num_envs=4,
        num_steps=128,
        total_timesteps=500_000,
        update_epochs=4,
        num_minibatches=4,
        lr=2.5e-4,
        anneal_lr=True,
        gamma=0.99,
        gae_lambda=0.95,
        clip_eps=0.2,
        ent_coef=0.01,
        vf_coef=0.5,
        max_grad_norm=0.5,
        optimizer="adam",
    )
    return TrainConfig(**{**settings, **overrides})
