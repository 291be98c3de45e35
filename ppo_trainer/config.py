"""The single source of truth for the trainer's settings.

Every field becomes a command-line flag (``--field-name``; booleans also get ``--no-field-name``):
its default is the flag's default, its ``help`` metadata the help text, and a ``Literal[...]``
type its choices. The rest of what is known about a field is metadata on the same line (see
:func:`_f`): its bound (checked by :meth:`TrainConfig.validate`), whether a resumed run may
change it, and its alias flags. ``ppo_trainer.app.flags`` builds the parsers from this class and
:data:`CLI_ONLY_FLAGS`, and nothing else. This module imports nothing heavy so that
``ppo-train --help`` answers fast.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_type_hints

from ppo_trainer.errors import ConfigError

Network = Literal["auto", "mlp", "cnn", "transformer"]
Activation = Literal["tanh", "relu"]
Rnn = Literal["none", "gru", "lstm"]
Bound = Literal["positive", "non_negative", "unit", "unit_open", "device_count"]
Resume = Literal["free", "locked", "per_invocation"]

BOUNDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "positive": (lambda v: v > 0 and math.isfinite(v), "must be positive"),
    "non_negative": (lambda v: v >= 0, "must be >= 0"),
    "unit": (lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]"),
    "unit_open": (lambda v: 0.0 <= v < 1.0, "must be in [0, 1)"),
    "device_count": (lambda v: v >= 0, "must be >= 0 (0: all devices)"),
}
"""A field's ``bound`` metadata -> (the test its value passes, the words of the error)."""

CLI_ONLY_FLAGS = ("help", "list_optimizers", "list_presets", "show_config", "optimizers", "out",
                  "only", "replot", "threshold", "threshold_frac", "final_window", "confidence",
                  "wall_clock", "seeds", "episodes", "gif", "json", "version")
"""Flags of the command-line tools (ppo-train, ppo-compare, ppo-suite, ppo-eval) that are not
fields: with the fields and their aliases, the names no optimizer hyperparameter may take."""


def _f(default: Any, help: str, group: str = "ppo", *, bound: Bound | None = None,
       resume: Resume = "free", aliases: dict[str, Any] | None = None) -> Any:
    """A field with everything known about it on one line.

    ``help``, ``group``: the flag's help text and group. ``bound``: a key of :data:`BOUNDS`
    (``None`` values always pass). ``resume``: ``"locked"`` if a resumed run must keep the value
    (it changes array shapes, the keys, the meaning of an update or what the network sees),
    ``"per_invocation"`` if a resumed run takes it from its own command line, not the resumed
    run's (where this invocation runs, not what the run is). ``aliases``: extra flags that set
    this field to a fixed value (``{"use_muon": "muon"}``: ``--use-muon``).
    """
    metadata = {"help": help, "group": group, "bound": bound, "resume": resume,
                "aliases": aliases or {}}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class TrainConfig:
    """PPO run configuration. The defaults are the raw settings (``--preset none``); per-env
    presets (``ppo_trainer/presets.toml``) are layered over them, command-line flags over both."""

    # --- environment ---
    env: str = _f("Snake-v0",
                  "gymnax env id, 'module:EnvId' to import a module that registers it, or "
                  "'SUITE/ID' for another suite's env (jumanji/Snake-v1; docs/envs.md)", "env",
                  resume="locked")
    env_kwargs: dict[str, Any] = _f(
        {}, "env constructor arguments, which may change shapes: KEY=VALUE[,KEY=VALUE] "
        "(e.g. width=12,height=12), also as --env-kwargs.KEY=VALUE", "env", resume="locked")
    env_params: dict[str, Any] = _f(
        {}, "EnvParams overrides: KEY=VALUE[,KEY=VALUE] (e.g. max_steps_in_episode=1000), also "
        "as --env-params.KEY=VALUE", "env")
    preset: str = _f("auto", "tuned settings to start from: a preset name, 'auto' (the env id's "
                     "preset, if any) or 'none' (see --list-presets)", "env")
    one_hot_obs: bool = _f(True, "one-hot encode Discrete observations (FrozenLake-style envs)",
                           "env", resume="locked")
    normalize_obs: bool = _f(False, "running mean/std observation normalization over all envs",
                             "env", resume="locked")
    normalize_reward: bool = _f(False, "scale rewards by the running std of the discounted return",
                                "env", resume="locked")
    clip_obs: float = _f(10.0, "clip normalized observations to +-this", "env", bound="positive")
    clip_reward: float = _f(10.0, "clip scaled rewards to +-this", "env", bound="positive")
    action_mask: bool = _f(False, "give the actions the env declares invalid "
                           "(env.valid_actions(state, params)) zero probability", "env")
    augment_symmetry: bool = _f(False, "train each minibatch sample under a random one of the "
                                "env's symmetries (env.symmetries(params))", "env")
    obs_drop: tuple[int, ...] = _f(
        (), "remove these entries of a flat observation, I[,I...] (e.g. 1,3: CartPole without "
        "its velocities, a partially observed task for --rnn)", "env", resume="locked")

    # --- optimizer ---
    optimizer: str = _f("muon", "registered optimizer name (see `ppo-train --list-optimizers`)",
                        "optimizer", resume="locked", aliases={"use_muon": "muon"})
    lr: float = _f(5e-4, "learning rate (Adam; also the default for Muon's auxiliary Adam)",
                   "optimizer", bound="positive")
    max_grad_norm: float = _f(0.5, "global-norm gradient clip applied before the optimizer",
                              "optimizer", bound="positive")
    anneal_lr: bool = _f(True,
                         "linearly anneal every learning rate to 0 at the last optimizer step",
                         "optimizer", resume="locked")

    # --- PPO ---
    num_envs: int = _f(128, "parallel environments (global count)", resume="locked",
                       bound="positive")
    num_steps: int = _f(128, "steps per environment per rollout", resume="locked", bound="positive")
    total_timesteps: int = _f(10_000_000, "total environment steps per seed", bound="positive")
    update_epochs: int = _f(4, "epochs over each rollout", bound="positive")
    num_minibatches: int = _f(4, "minibatches per epoch (must divide num_envs * num_steps)",
                              bound="positive")
    gamma: float = _f(0.99, "discount factor", bound="unit")
    gae_lambda: float = _f(0.95, "GAE lambda", bound="unit")
    clip_eps: float = _f(0.2, "PPO clip range of the policy ratio (and of the value, if clipped)",
                         bound="positive")
    clip_value_loss: bool = _f(True,
                               "clip the value update to +-clip_eps around the rollout's value")
    ent_coef: float = _f(0.01, "entropy bonus coefficient", bound="non_negative")
    uniform_kl_coef: float = _f(0.0, "weight of KL(uniform || policy) over the legal discrete "
                                "actions: keeps every move sampled now and then (its pull on a "
                                "move at probability p stays ~1/n where the entropy bonus's "
                                "fades as p log p)", bound="non_negative")
    weights_ema: float = _f(0.0, "keep an exponential moving average of the weights with this "
                            "decay per update (0.99: about the last 100 updates), and evaluate, "
                            "keep (--keep-best) and export it instead of the latest weights; "
                            "training is unchanged (0: off)", resume="locked", bound="unit_open")
    vf_coef: float = _f(0.5, "value loss coefficient", bound="non_negative")

    # --- network ---
    network: Network = _f("auto", "network architecture (auto: an MLP, the cheapest that learns)",
                          "network", resume="locked")
    hidden_size: int = _f(128, "MLP hidden width", "network", resume="locked", bound="positive")
    num_hidden_layers: int = _f(2, "MLP hidden layers", "network", resume="locked",
                                bound="non_negative")
    activation: Activation = _f("tanh", "hidden activation of the MLP", "network", resume="locked")
    shared_torso: bool = _f(False, "actor and critic share the MLP's hidden layers (half the "
                            "cost per sample)", "network", resume="locked")
    logit_cap: float = _f(0.0, "discrete actions: the policy's logits pass through "
                          "C*tanh(logits/C), so no move's probability falls below about "
                          "exp(-2C) and its gradient never vanishes (0: off)", "network",
                          resume="locked", bound="non_negative")
    state_dependent_std: bool = _f(False, "Box actions: the Gaussian's std is softplus of a "
                                   "policy-head output (gymnax-blines' Gaussian-MLP), not one "
                                   "learned parameter", "network")
    rnn: Rnn = _f("none", "recurrent cell between the torso and the heads, for partially "
                  "observed envs (one per torso: two with separate actor and critic torsos)",
                  "network", resume="locked")
    rnn_size: int = _f(128, "hidden size of the recurrent cell (--rnn gru/lstm)", "network",
                       resume="locked", bound="positive")
    d_model: int = _f(64, "transformer width", "network", resume="locked", bound="positive")
    num_layers: int = _f(2, "transformer blocks", "network", resume="locked", bound="positive")
    num_heads: int = _f(4, "transformer attention heads", "network", resume="locked",
                        bound="positive")
    dropout: float = _f(0.0, "transformer dropout rate", "network", bound="unit_open")

    # --- run ---
    seed: int = _f(0, "random seed", "run", resume="locked")
    num_seeds: int = _f(1, "independent seeds trained in one program (vmapped)", "run",
                        resume="locked", bound="positive")
    run_dir: str = _f("runs", "parent folder of run directories", "run")
    run_name: str | None = _f(None, "run directory name (default: env__optimizer__seed__time)",
                              "run")
    save_freq: int = _f(50, "checkpoint every N updates (and always at the end)", "run",
                        bound="positive")
    eval_freq: int = _f(0, "greedy evaluation every N updates (0: only at the end)", "run",
                        bound="non_negative")
    eval_episodes: int = _f(256, "episodes for each greedy evaluation", "run", bound="positive")
    keep_best: bool = _f(False, "with --eval-freq: after each periodic evaluation whose mean "
                         "greedy return (all episodes of all seeds) beats every earlier one, write "
                         "the policy to <run dir>/best_policy.msgpack (a policy file: ppo-eval "
                         "plays it); the last checkpoint is not always the best policy", "run")
    keep_best_by: str = _f("return", "with --keep-best: the per-episode number whose mean ranks "
                           "the evaluations: 'return', or one of the env's info keys that the "
                           "evaluation reports (Snake's 'win': the share of games won)", "run")
    wandb: bool = _f(False, "log metrics, config and the GIF to Weights & Biases", "run")
    wandb_project: str = _f("snake-ppo-jax", "W&B project", "run")
    wandb_entity: str | None = _f(None, "W&B entity", "run")
    tensorboard: bool = _f(False, "write TensorBoard event files to <run dir>/tensorboard", "run")
    resume: str | None = _f(None, "run directory to resume from its last checkpoint", "run")
    stages: tuple[dict[str, Any], ...] = _f(
        (), "after --total-timesteps, go on in stages, each resuming the run with a longer budget "
        "and other settings a resume may change: TOTAL[:KEY=VALUE,...][;TOTAL...] (e.g. "
        "'35000000:gamma=0.999;48000000') or a JSON list of objects", "run")

    # --- devices and hosts (ppo_trainer/parallel.py) ---
    devices: int | None = _f(
        None, "devices to split the environments over, data-parallel (None/0: every device JAX "
        "sees, on every host); --num-envs is the global count and must divide by it", "devices",
        bound="device_count", resume="per_invocation")
    distributed: bool = _f(
        False, "call jax.distributed.initialize() first, for multi-host runs (reads "
        "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID, or detects SLURM/Open MPI)",
        "devices", resume="per_invocation")

    # Optimizer-specific hyperparameters (declared by the optimizer plugin), e.g. muon_lr.
    optimizer_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "plugin hyperparameters", "group": "internal",
                                        "resume": "free", "aliases": {}})

    def __post_init__(self) -> None:
        # One spelling for every source: "1,3" from a flag, a list from TOML or config.json.
        object.__setattr__(self, "obs_drop", parse_indices(self.obs_drop))
        object.__setattr__(self, "stages", parse_stages(self.stages))

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
        resolved (``ppo_trainer.envs``, the optimizer registry), and ``app.build.check``, the
        one place that validates a run's config, checks those first.
        """
        for f in dataclasses.fields(self):
            value, bound = getattr(self, f.name), f.metadata.get("bound")
            if bound and value is not None and not BOUNDS[bound][0](value):
                raise ConfigError(f"{flag(f.name)} {BOUNDS[bound][1]}, got {value}")
        for name, choices in field_choices().items():
            if getattr(self, name) not in choices:
                raise ConfigError(f"{flag(name)} must be one of {', '.join(choices)}, "
                                  f"got {getattr(self, name)!r}")
        self.check_devices()
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
        if self.rnn != "none":
            self._check_recurrent()
        if self.obs_drop:
            self._check_obs_drop()
        if self.stages:
            self._check_stages()
        if self.keep_best and not self.eval_freq:
            raise ConfigError("--keep-best needs --eval-freq N (the best policy is picked among "
                              "the periodic evaluations)")

    def _check_recurrent(self) -> None:
        """A recurrent policy re-runs whole env sequences, so minibatches split the env axis."""
        if self.num_envs % self.num_minibatches:
            raise ConfigError(f"--rnn {self.rnn}: --num-minibatches {self.num_minibatches} must "
                              f"divide --num-envs {self.num_envs} (minibatches are whole env "
                              "sequences)")
        if self.augment_symmetry:
            raise ConfigError(f"--rnn {self.rnn} cannot be combined with --augment-symmetry "
                              "(a per-sample symmetry would mirror only some steps of a memory)")

    def _check_obs_drop(self) -> None:
        """Indices must be distinct and >= 0; their range is checked against the observation
        where the env is built (``envs.make_env``), the first place its size is known."""
        if min(self.obs_drop) < 0 or len(set(self.obs_drop)) < len(self.obs_drop):
            raise ConfigError(f"--obs-drop {format_indices(self.obs_drop)}: indices must be "
                              "distinct and >= 0")
        if self.augment_symmetry:
            raise ConfigError("--obs-drop cannot be combined with --augment-symmetry (the env's "
                              "symmetries transform the full observation)")

    def _check_stages(self) -> None:
        """Budgets that grow stage by stage (past this run's own, for a new run), keys a resumed
        run may change, and values each stage's config accepts."""
        totals = [stage["total_timesteps"] for stage in self.stages]
        if any(b <= a for a, b in zip(totals, totals[1:], strict=False)) or (
                not self.resume and totals[0] <= self.total_timesteps):
            raise ConfigError(f"--stages: each stage's total_timesteps must exceed the one before "
                              f"(--total-timesteps {self.total_timesteps}, then {totals}; "
                              "--stages '' for none)")
        config = self.replace(stages=())
        for number, stage in enumerate(self.stages, 1):
            config = config.after_stage(stage)  # what the run will be then: the stages add up
            try:
                config.validate()
            except ConfigError as exc:
                raise ConfigError(f"--stages, stage {number}: {exc}") from None

    def next_stage(self) -> dict[str, Any] | None:
        """The first stage whose budget this config has not reached (``None``: all are done)."""
        return next((s for s in self.stages if s["total_timesteps"] > self.total_timesteps), None)

    def after_stage(self, stage: dict[str, Any]) -> TrainConfig:
        """This config with a stage's settings (a dict setting, ``env_params``, is merged)."""
        changes = {k: {**getattr(self, k), **v} if isinstance(v, dict) else v
                   for k, v in stage.items()}
        return self.replace(**changes)

    def check_devices(self, visible: int | None = None) -> None:
        """``--num-envs`` is the global count: it must split evenly over the devices, the
        ``--devices`` count or, for None/0, all ``visible`` ones (known only once jax runs: the
        run's build passes it). The one device-divisibility rule of the trainer."""
        count = self.devices or visible
        if count and self.num_envs % count:
            hint = ("--devices" if self.devices else
                    f"use --devices to pick fewer devices, or a multiple of {count} envs")
            raise ConfigError(f"--num-envs {self.num_envs} must divide by the device count "
                              f"{count} ({hint})")


def parse_indices(value: Any) -> tuple[int, ...]:
    """``"1,3"``, ``[1, 3]`` or ``(1, 3)`` -> ``(1, 3)``; ``""``/``None`` -> ``()``. A one-line
    :class:`ConfigError` for anything else."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    try:
        items = list(items)
        if any(isinstance(i, (bool, float)) for i in items):
            raise ValueError
        return tuple(int(str(i).strip()) for i in items if str(i).strip())
    except (TypeError, ValueError):
        raise ConfigError(f"--obs-drop {value!r}: expected integer indices, e.g. 1,3") from None


def parse_value(text: str) -> Any:
    """A ``KEY=VALUE`` value: JSON (numbers, true/false, null, quoted strings), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lowered = text.strip().lower()
        return True if lowered == "true" else False if lowered == "false" else text


def split_pairs(text: str) -> dict[str, Any]:
    """``KEY=VALUE[,KEY=VALUE]`` -> dict (values by :func:`parse_value`); ``ValueError`` naming
    the item that is not one."""
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def stage_fields() -> tuple[str, ...]:
    """What a stage may set: the fields a resumed run may change, less the ones that say where
    the run is or what comes after it."""
    return tuple(name for name in fields_where("resume", "free")
                 if name not in ("resume", "run_dir", "run_name", "stages", "preset",
                                 "optimizer_kwargs"))


def parse_stages(value: Any) -> tuple[dict[str, Any], ...]:
    """``"35000000:gamma=0.999;48000000"``, its JSON list, or a list of dicts (TOML,
    config.json) -> a tuple of dicts, each with an int ``total_timesteps`` and only
    :func:`stage_fields` keys. A one-line :class:`ConfigError` for anything else."""
    if not value:
        return ()
    given = value
    try:
        if isinstance(value, str) and value.strip().startswith("["):
            value = json.loads(value)
        if isinstance(value, str):
            value = [{"total_timesteps": total, **split_pairs(rest)} for total, _, rest in
                     (part.strip().partition(":") for part in value.split(";") if part.strip())]
        stages = tuple({k.replace("-", "_"): v for k, v in dict(stage).items()} for stage in value)
        for stage in stages:
            if "total_timesteps" not in stage:
                raise ValueError("every stage needs a total_timesteps")
            if isinstance(stage["total_timesteps"], str):  # the flag's TOTAL
                stage["total_timesteps"] = parse_value(stage["total_timesteps"])
    except (TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ConfigError(f"--stages {given!r}: {exc} (expected TOTAL[:KEY=VALUE,...][;...], "
                          "e.g. 35000000:gamma=0.999;48000000)") from None
    allowed, names = stage_fields(), {f.name for f in dataclasses.fields(TrainConfig)}
    for stage in stages:
        for key in stage:
            if key not in allowed:
                why = "cannot change between stages" if key in names else "is not a setting"
                raise ConfigError(f"--stages: {flag(key)} {why} (a stage sets only what --resume "
                                  f"may change: {', '.join(allowed)})")
            stage[key] = _typed(key, stage[key])
    return stages


def without_none(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; any other type -> ``(it, False)``."""
    args = [a for a in get_args(tp) if a is not type(None)]
    optional = type(None) in get_args(tp)
    return (args[0] if optional and len(args) == 1 else tp), optional


def _typed(name: str, value: Any) -> Any:
    """A stage's value as its field's type (an int for a float field is a float), or a one-line
    :class:`ConfigError`: a flag's text is typed by argparse, a stage's by this."""
    base, optional = without_none(field_types()[name])
    if value is None and optional:
        return value
    base = getattr(base, "__origin__", base)  # dict[str, Any] -> dict
    if base is Literal:
        base = str  # its choices are checked with the rest of the config
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is float and number:
        return float(value)
    if base is int and number and float(value).is_integer():
        return int(value)
    if base is dict and isinstance(value, dict) or base in (bool, str) and type(value) is base:
        return value
    raise ConfigError(f"--stages: {flag(name)} {value!r} is not a valid "
                      f"{getattr(base, '__name__', base)}")


def format_indices(indices: tuple[int, ...]) -> str:
    """``(1, 3)`` -> ``"1,3"``, the flag's spelling."""
    return ",".join(map(str, indices))


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


def fields_where(key: str, value: Any) -> tuple[str, ...]:
    """The fields whose ``key`` metadata is ``value``, in field order:
    ``fields_where("resume", "locked")``."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get(key) == value)


def flag_aliases() -> dict[str, tuple[str, Any]]:
    """Alias flag name -> (the field it sets, its value): ``{"use_muon": ("optimizer", "muon")}``.
    """
    return {alias: (f.name, value) for f in dataclasses.fields(TrainConfig)
            for alias, value in f.metadata.get("aliases", {}).items()}
