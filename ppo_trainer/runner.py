"""The run loop behind ``ppo-train``: jitted chunks of updates, with everything else between them.

``trainer.run`` is jitted (and vmapped over seeds) once per chunk length: ``save_freq`` (or
``eval_freq`` if smaller) and possibly one shorter final chunk, so at most two compilations.
Between chunks, in plain Python: NaN check (a diverged state is never saved), metrics rows,
checkpoint, periodic evaluation, Ctrl-C handling. At the end: learning curve, greedy eval, GIF.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ppo_trainer.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import CLIError, TrainingDiverged, TrainingInterrupted
from ppo_trainer.evaluate import (
    EVAL_NAME,
    GIF_NAME,
    evaluate_seeds,
    format_summary,
    is_snake,
    record_gif,
)
from ppo_trainer.parallel import to_host
from ppo_trainer.plots import CURVE_NAME, plot_learning_curve
from ppo_trainer.progress import ProgressBar
from ppo_trainer.sinks import METRICS_NAME, MetricsFile, WandbSink, chunk_rows, read_metrics

CONFIG_NAME = "config.json"
EVALS_NAME = "evals.jsonl"


def default_run_name(config: TrainConfig) -> str:
    """``<env>__<optimizer>__s<seed>__<timestamp>`` (``module:Env`` becomes ``module_Env``)."""
    env = config.env.replace(":", "_").replace("/", "_")
    return f"{env}__{config.optimizer}__s{config.seed}__{datetime.now():%Y%m%d-%H%M%S}"


def resolve_run_path(config: TrainConfig) -> Path:
    """The run directory: ``--resume`` itself, else ``<run_dir>/<run_name>`` (must be new)."""
    if config.resume:
        return Path(config.resume)
    path = Path(config.run_dir) / (config.run_name or default_run_name(config))
    if (path / CHECKPOINT_NAME).exists():
        raise CLIError(f"run directory {path} already holds a run; use --resume {path} or another --run-name")
    return path


def write_config(path: Path, config: TrainConfig) -> None:
    data = config.to_dict()
    data.update(batch_size=config.batch_size, minibatch_size=config.minibatch_size,
                num_updates=config.num_updates)
    (path / CONFIG_NAME).write_text(json.dumps(data, indent=2) + "\n")


def _one_line(exc: Exception) -> CLIError:
    return CLIError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


@dataclass
class Setup:
    """Everything built from a config: env, optimizer, trainer, and a state template."""

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


def build(config: TrainConfig, progress_fn: Callable[..., None] | None = None, *,
          parallel: bool = False) -> Setup:
    """Env, optimizer and trainer for ``config``; user mistakes become one-line CLIErrors.

    ``parallel``: split the environments over ``config.devices`` devices (all by default) with
    a device mesh (``ppo_trainer/parallel.py``); otherwise, and with one device, no mesh.
    """
    import jax

    from ppo_trainer import parallel as par
    from ppo_trainer.envs import make_env
    from ppo_trainer.optim import make_optimizer
    from ppo_trainer.ppo import make_trainer

    devices, mesh = [], None
    if parallel:
        try:
            devices = par.select_devices(config.devices)
            par.check_divisible(config.num_envs, len(devices))
        except ValueError as exc:
            raise _one_line(exc) from None
        mesh = par.make_mesh(devices) if len(devices) > 1 else None
    try:
        env, env_params = make_env(config)
        tx, lr_schedule = make_optimizer(config)
        trainer = make_trainer(config, env, env_params, tx, progress_fn=progress_fn,
                               lr_schedule=lr_schedule, mesh=mesh)
    except ValueError as exc:  # unknown env, env params, plugin errors (OptimizerError)
        raise _one_line(exc) from None
    keys = jax.random.split(jax.random.PRNGKey(config.seed), config.num_seeds)
    return Setup(config, env, env_params, trainer, keys, devices, mesh)


def state_template(setup: Setup) -> Any:
    """The RunnerState structure (shapes/dtypes only, nothing computed) for restoring."""
    import jax

    return jax.eval_shape(jax.vmap(setup.trainer.init), setup.keys)


@dataclass
class LoadedRun:
    config: TrainConfig
    env: Any
    env_params: Any
    network: Any
    runner_state: Any
    update: int


def load_run(run_path: Path) -> LoadedRun:
    """A finished or interrupted run's config and last checkpoint (used by ``ppo-eval``)."""
    from ppo_trainer.cli import load_run_config

    config = load_run_config(run_path, label="")
    setup = build(config)
    ckpt = load_checkpoint(run_path, state_template(setup))
    return LoadedRun(config, setup.env, setup.env_params, setup.network, ckpt.runner_state, ckpt.update)


def loss_is_finite(metrics: dict[str, Any]) -> bool:
    import numpy as np

    return all(np.isfinite(np.asarray(v)).all() for k, v in metrics.items() if k.startswith("losses/"))


def divergence_message(config: TrainConfig, update: int, saved_update: int, run_path: Path) -> str:
    """Name the flags most likely to blame: ``--lr`` and the plugin's learning rates."""
    lr_flags = ["--lr"] + [
        "--" + name.replace("_", "-") for name in config.optimizer_kwargs if name.endswith("lr")
    ]
    return (f"loss became NaN/inf in the chunk ending at update {update}: {' / '.join(lr_flags)} "
            f"is probably too high (or --max-grad-norm too loose); last good checkpoint "
            f"(update {saved_update}) kept in {run_path}")


class _StopFlag:
    """SIGINT: the first finishes the running chunk, the second abandons it (KeyboardInterrupt)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.requested = False
        self._log = log
        self._previous: Any = None

    def __enter__(self) -> _StopFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self._previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._log("Ctrl-C: finishing the current chunk, then saving a checkpoint "
                  "(Ctrl-C again to abandon the chunk)")


@dataclass
class RunResult:
    run_path: Path
    update: int
    eval: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)


def train(
    config: TrainConfig,
    *,
    progress: bool | None = None,
    should_stop: Callable[[int], bool] | None = None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Train (or resume) a run and write its directory. Raises CLIError subclasses for the CLI.

    Args:
      progress: live bar on/off (``None``: on when stderr is a terminal).
      should_stop: called after each chunk with the update count; ``True`` acts like Ctrl-C
        (tests use it to interrupt deterministically).
      log: where status lines go (default: above the bar / stderr).
    """
    if config.distributed:  # before anything touches a jax backend
        from ppo_trainer.parallel import initialize_distributed

        initialize_distributed()
    import jax
    import numpy as np

    from ppo_trainer import parallel as par

    run_path = resolve_run_path(config)
    num_updates = config.num_updates
    # Multi-host: every process runs the same program; only process 0 writes the run directory.
    main = jax.process_index() == 0
    bar = ProgressBar(num_updates, 0, config.batch_size, config.num_seeds, show_apples=False,
                      enabled=progress if main else False)
    say = log or bar.log
    setup = build(config, progress_fn=bar.callback if bar.enabled else None, parallel=True)
    bar.show_apples = is_snake(setup.env)
    trainer = setup.trainer
    say("training on " + par.describe(setup.devices, config.num_envs))

    if config.resume:
        ckpt = load_checkpoint(run_path, state_template(setup))
        state, start = ckpt.runner_state, ckpt.update
        say(f"resuming {run_path} from update {start}/{num_updates}"
            + (" (already complete: pass a larger --total-timesteps to extend)"
               if start >= num_updates else ""))
    else:
        if main:
            run_path.mkdir(parents=True, exist_ok=True)
        state, start = jax.jit(jax.vmap(trainer.init))(setup.keys), 0
    # Strong-typed device arrays, so fresh and restored states hit the same compiled program;
    # with a mesh, env axis sharded and the rest replicated (a resume may change the device count).
    if setup.mesh is None:
        state = jax.tree_util.tree_map(lambda x: jax.numpy.asarray(np.asarray(x)), state)
        state_sh = metrics_sh = None
    else:
        state_sh = par.state_shardings(setup.mesh, state)
        metrics_sh = par.replicated(setup.mesh)
        state = par.shard(par.to_host(state), state_sh)
    if main:
        write_config(run_path, config)
    bar.completed = bar._start_update = start
    metrics_file = MetricsFile(run_path, resume_update=start if config.resume else None) if main else None
    previous = read_metrics(metrics_file.path) if main else []
    time_offset = float(previous[-1].get("time") or 0.0) if previous else 0.0
    wandb = None
    if config.wandb and main:
        wandb = WandbSink(run_path, config.to_dict(), config.wandb_project, config.wandb_entity,
                          run_path.name)

    chunk = min(config.save_freq, config.eval_freq) if config.eval_freq else config.save_freq
    compiled: dict[int, Any] = {}

    def program(n: int) -> Any:
        if n not in compiled:
            t0 = time.perf_counter()
            fn = jax.vmap(lambda s: trainer.run(s, n))
            if setup.mesh is None:
                fn = jax.jit(fn)
            else:
                fn = jax.jit(fn, in_shardings=(state_sh,), out_shardings=(state_sh, metrics_sh))
            compiled[n] = fn.lower(state).compile()
            say(f"compiled a {n}-update chunk x {config.num_seeds} seed(s) in "
                f"{time.perf_counter() - t0:.1f} s")
        return compiled[n]

    def checkpoint(st: Any, upd: int) -> None:
        host_state = par.to_host(st)  # a collective with several processes: all call it
        if main:
            save_checkpoint(run_path, host_state, upd, config.to_dict())

    update, saved = start, start
    t_start = time.perf_counter()
    exit_code = 0
    evals_path = run_path / EVALS_NAME
    try:
        with bar, _StopFlag(say) as stop:
            while update < num_updates:
                n = min(chunk, num_updates - update)
                fn = program(n)
                if update == start:
                    bar.restart_clock()  # steps/s without the compilation
                t0 = time.perf_counter()
                try:
                    new_state, metrics = fn(state)
                    metrics = par.to_host(metrics)
                except KeyboardInterrupt:
                    stop.requested = True
                    say("abandoned the running chunk")
                    break
                dt = time.perf_counter() - t0
                if not loss_is_finite(metrics):
                    if saved != update:
                        checkpoint(state, update)
                        saved = update
                    exit_code = 1
                    raise TrainingDiverged(divergence_message(config, update + n, saved, run_path))
                state, update = new_state, update + n
                sps = n * config.batch_size * config.num_seeds / dt
                rows = chunk_rows(metrics, update - n, {
                    "charts/SPS": round(sps, 1),
                    "time": round(time_offset + time.perf_counter() - t_start, 3)})
                if main:
                    metrics_file.write(rows)
                if wandb is not None:
                    wandb.log_rows(rows)
                bar.set_completed(update)
                if update % config.save_freq == 0 or update == num_updates:
                    checkpoint(state, update)
                    saved = update
                say(_chunk_line(rows[-config.num_seeds:], update, num_updates, sps))
                if config.eval_freq and update // config.eval_freq > (update - n) // config.eval_freq \
                        and update < num_updates and main:
                    summary = _evaluate(setup, state, update)
                    with open(evals_path, "a") as fh:
                        fh.write(json.dumps({"update": update, **summary}) + "\n")
                    say(f"update {update}: " + format_summary(summary))
                    if wandb is not None:
                        wandb.run.log({"eval/mean_return": summary["mean_return"],
                                       **({"eval/mean_apples": summary["mean_apples"]}
                                          if "mean_apples" in summary else {})},
                                      step=int(rows[-1]["global_step"]))
                wants_stop = stop.requested or (should_stop is not None and should_stop(update))
                if jax.process_count() > 1:  # every process stops after the same chunk
                    wants_stop = par.any_process(wants_stop)
                if wants_stop:
                    stop.requested = True
                    break
        if stop.requested and update < num_updates:
            if saved != update:
                checkpoint(state, update)
                saved = update
            exit_code = 130
            raise TrainingInterrupted(
                f"interrupted at update {update}/{num_updates}; checkpoint saved. "
                f"Resume with: ppo-train --resume {run_path}")
        if not main:
            return RunResult(run_path, update)
        return _finish(setup, state, update, run_path, wandb, say)
    finally:
        if main and (run_path / METRICS_NAME).is_file() and exit_code:
            _safe_plot(run_path, config)
        if wandb is not None and exit_code:
            wandb.finish(exit_code=exit_code)


def _chunk_line(rows: list[dict[str, Any]], update: int, total: int, sps: float) -> str:
    def mean(key: str) -> float:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return sum(vals) / len(vals) if vals else math.nan

    text = (f"update {update}/{total} | step {rows[-1]['global_step']:,} | "
            f"return {mean('charts/episodic_return'):.2f}")
    if any("charts/apples" in r for r in rows):
        text += f" | apples {mean('charts/apples'):.2f}"
    return text + f" | {sps:,.0f} steps/s"


def _evaluate(setup: Setup, state: Any, update: int) -> dict[str, Any]:
    import jax

    key = jax.random.fold_in(jax.random.PRNGKey(setup.config.seed), 1_000_003 + update)
    params = to_host(state.params)  # replicated: a local copy, evaluated on one device
    return evaluate_seeds(setup.env, setup.env_params, setup.network, params, key,
                          setup.config.eval_episodes)


def _safe_plot(run_path: Path, config: TrainConfig) -> Path | None:
    try:
        return plot_learning_curve(run_path / METRICS_NAME, run_path / CURVE_NAME,
                                   f"{config.env} / {config.optimizer}")
    except Exception:  # a plot must never hide the real outcome
        return None


def _finish(setup: Setup, state: Any, update: int, run_path: Path, wandb: WandbSink | None,
            say: Callable[[str], None]) -> RunResult:
    """Learning curve, final greedy eval (eval.json), Snake GIF, W&B media."""
    import jax

    config = setup.config
    curve = _safe_plot(run_path, config)
    summary = _evaluate(setup, state, update)
    summary["update"] = update
    (run_path / EVAL_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    say("final " + format_summary(summary))
    gif = None
    if is_snake(setup.env):
        try:
            first = jax.tree_util.tree_map(lambda x: x[0], to_host(state.params))
            key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 7)
            record_gif(setup.env, setup.env_params, setup.network, first, key, run_path / GIF_NAME)
            gif = run_path / GIF_NAME
        except ImportError as exc:
            say(f"GIF skipped: {exc}")
    if wandb is not None:
        wandb.log_summary({f"eval/{k}": v for k, v in summary.items() if not isinstance(v, list)})
        wandb.log_media(curve, gif)
        wandb.finish()
    say(f"run directory: {run_path}")
    files = sorted(p.name for p in run_path.iterdir())
    return RunResult(run_path, update, summary, files)


def train_from_cli(config: TrainConfig, given: dict[str, Any]) -> int:
    """``ppo-train`` after parsing: train, and turn outcomes into exit codes (errors raise)."""
    del given  # overrides are already in ``config``; kept for symmetry with the parser
    train(config)
    return 0
