"""The run loop behind ``ppo-train``: jitted chunks of updates, plain Python between them.

A run starts at :func:`start`, the boundary: it joins a multi-process run (``--distributed``,
before anything starts a jax backend) and checks the config, once (``app.build.check``);
:func:`train` calls it too, so a library user passing a plain config gets it checked, and the
CLI, which calls it first, is not checked twice. The run is then built once: a resumed run reads
its checkpoint's update, optimizer-step count and schedule corners before the build.

``trainer.run`` is jitted (and vmapped over seeds) once per chunk length: ``save_freq`` (or
``eval_freq`` if smaller) and possibly one shorter final chunk, so at most two compilations.
After each chunk, in order: NaN check (a diverged state is never saved), metrics rows to every
sink, checkpoint, periodic evaluation, Ctrl-C check. At the end: learning curve, greedy
evaluation, GIF (for envs that render frames), media to the sinks.

Learning-rate schedule on resume: the checkpoint stores the schedule's corners
(``ppo_trainer.optim``). Resuming with the same budget continues bit-identically; with another
``--total-timesteps`` (or another ``--update-epochs`` / ``--num-minibatches``) the rate goes on
from its current value to 0 at the new last optimizer step, without a jump; extending a finished
run (rate already 0) restarts from the rate a schedule planned for the longer run would have
there (``optim.extend_knots``).
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from ppo_trainer import parallel as par
from ppo_trainer.app.build import build, check
from ppo_trainer.app.checkpoint import load_checkpoint, save_checkpoint
from ppo_trainer.app.evaluate import Evaluator, can_render, eval_key, format_summary, record_gif
from ppo_trainer.app.plots import plot_learning_curve
from ppo_trainer.app.policy import PolicyFileError, read_meta, write_policy
from ppo_trainer.app.progress import ProgressBar
from ppo_trainer.app.rundir import RunDir, default_run_name, run_dir_for
from ppo_trainer.app.sinks import Sink, chunk_rows, make_sinks, read_metrics
from ppo_trainer.config import TrainConfig, flag
from ppo_trainer.errors import ConfigError, TrainerError
from ppo_trainer.optim import Knots, extend_knots, schedule_knots


class TrainingDiverged(TrainerError):
    """A loss became NaN/inf; the message names the flags most likely to blame."""


class PeerFailed(TrainerError):
    """Another process of a multi-process run failed; this one stopped with it."""


class TrainingInterrupted(TrainerError):
    """Ctrl-C: the last completed chunk was checkpointed; the message says how to resume."""


@dataclass
class RunResult:
    run_path: Path
    update: int
    eval: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)


def selection_metric(key: str) -> str:
    """How a ``--keep-best`` policy file names the score that picked it."""
    return f"mean greedy {key}"


def best_so_far(run: RunDir, key: str = "return") -> float | None:
    """The score of a resumed run's ``--keep-best`` policy file (``None``: none yet), so the
    resumed run replaces it only with a better one; a file picked by another
    ``--keep-best-by`` key counts as none."""
    if not run.best_policy.is_file():
        return None
    try:
        selection = read_meta(run.best_policy)["selection"]
        if selection.get("metric", selection_metric("return")) != selection_metric(key):
            return None
        return float(selection["score"])
    except (PolicyFileError, KeyError, TypeError, ValueError, AttributeError):
        return None  # unreadable: the next evaluation replaces it


def loss_is_finite(metrics: dict[str, Any]) -> bool:
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


def start(config: TrainConfig) -> TrainConfig:
    """The boundary of a run: join the multi-process run (``--distributed``) before anything
    starts a jax backend, give every process process 0's default run name, and check the
    config. Returns the checked config; calling it again with that config checks nothing."""
    if config.distributed:
        par.initialize_distributed()  # idempotent: a second start joins nothing
    if jax.process_count() > 1 and not (config.resume or config.run_name):
        # the default name holds the clock: every process must use process 0's
        config = config.replace(run_name=par.same_on_every_process(default_run_name(config)))
    return check(config)


@dataclass(frozen=True)
class ResumePoint:
    """What a resumed run needs from its checkpoint before it is built."""

    update: int
    opt_step: int  # optimizer steps taken: where the learning-rate schedule stands
    knots: Knots | None  # the schedule's stored corners (None: a checkpoint older than them)


def read_resume_point(path: Path) -> ResumePoint | None:
    """The update, optimizer-step count and schedule corners of a checkpoint file, read without
    building anything; ``None`` if it cannot be read (``load_checkpoint`` then says why)."""
    try:
        payload = serialization.msgpack_restore(Path(path).read_bytes())
        meta = json.loads(payload.get("meta") or payload.get("config") or "{}")
        opt_step = int(np.asarray(payload["runner_state"]["opt_step"]).reshape(-1)[0])
        stored = meta.get("knots")
        knots = tuple((int(x), float(y)) for x, y in stored) if stored else None
        return ResumePoint(int(payload["update"]), opt_step, knots)
    except Exception:  # a broken file: the one error message is load_checkpoint's
        return None


def plan_knots(config: TrainConfig, point: ResumePoint | None) -> tuple[Knots, str | None]:
    """The learning-rate schedule's corners for this run, and a line saying how a resume
    changed them (``None`` if it did not): a new run's plan, or the checkpoint's corners
    continued to 0 at the new last optimizer step (``optim.extend_knots``)."""
    if point is None:
        return schedule_knots(config), None
    stored = point.knots or schedule_knots(config)
    steps_per_update = config.update_epochs * config.num_minibatches
    new_last = point.opt_step + (config.num_updates - point.update) * steps_per_update - 1
    if not (config.anneal_lr and new_last != stored[-1][0] and point.update < config.num_updates):
        return stored, None
    knots = extend_knots(stored, point.opt_step, new_last)
    return knots, f"learning-rate schedule: {stored} -> {knots} (optimizer steps, fraction)"


class Session:
    """One run between its chunks: the built objects, the state, the counters and the sinks."""

    def __init__(self, config: TrainConfig, sources: dict[str, str] | None,
                 progress: bool | None, log: Callable[[str], None] | None) -> None:
        self.config = config
        self.run = run_dir_for(config)
        self.main = jax.process_index() == 0  # multi-host: only process 0 writes
        self.bar = ProgressBar(config.num_updates, 0, config.batch_size, config.num_seeds,
                               enabled=progress if self.main else False)
        self.say = log or self.bar.log
        point = read_resume_point(self.run.require_checkpoint()) if config.resume else None
        self.knots, schedule_note = plan_knots(config, point)
        self.setup = build(config, parallel=True, knots=self.knots,
                           progress_fn=self.bar.callback if self.bar.enabled else None,
                           progress_every=max(1, self.chunk_length() // 10))
        if config.keep_best and config.keep_best_by not in ("return",
                                                             *self.setup.trainer.info_keys):
            raise ConfigError(f"--keep-best-by {config.keep_best_by!r}: {config.env} reports "
                              "'return' and " + (", ".join(
                                  repr(k) for k in self.setup.trainer.info_keys) or "no info key"))
        self.say("training on " + par.describe(self.setup.devices, config.num_envs))
        if schedule_note:
            self.say(schedule_note)
        self.state, self.start = self._restore() if config.resume else self._fresh()
        self.bar.set_keys(tuple(f"charts/{k}" for k in self.setup.trainer.info_keys))
        self._place_state()
        if self.main:
            self.run.write_config(config, sources)
        self.update = self.saved = self.start
        self.bar.start_at(self.start)
        self.sinks: list[Sink] = (make_sinks(config, self.run, self.start if config.resume else None)
                                  if self.main else [])
        previous = read_metrics(self.run.metrics) if self.main else []
        self.time_offset = float(previous[-1].get("time") or 0.0) if previous else 0.0
        self._compiled: dict[int, Any] = {}
        self.evaluator: Evaluator | None = None
        self.failure: Exception | None = None  # held by on_main until every process knows
        self.best = best_so_far(self.run, config.keep_best_by) if config.resume else None

    def chunk_length(self) -> int:
        """Updates per compiled chunk: ``save_freq``, or ``eval_freq`` if smaller."""
        c = self.config
        return min(c.save_freq, c.eval_freq) if c.eval_freq else c.save_freq

    # ---------------------------------------------------------------- set-up steps
    def _fresh(self) -> tuple[Any, int]:
        """A new run: its directory (process 0) and the initial state of every seed."""
        if self.main:
            self.run.path.mkdir(parents=True, exist_ok=True)
        return jax.jit(jax.vmap(self.setup.trainer.init))(self.setup.keys), 0

    def _restore(self) -> tuple[Any, int]:
        """The checkpoint's state, in the structure of the run built for it."""
        ckpt = load_checkpoint(self.run.checkpoint, self.setup.state_template())
        done = " (already complete: pass a larger --total-timesteps to extend)" \
            if ckpt.update >= self.config.num_updates else ""
        self.say(f"resuming {self.run.path} from update {ckpt.update}/{self.config.num_updates}"
                 f"{done}")
        return ckpt.runner_state, ckpt.update

    def _place_state(self) -> None:
        """Strong-typed device arrays, so fresh and restored states hit the same compiled program;
        with a mesh, env axis sharded and the rest replicated (the device count may change)."""
        if self.setup.mesh is None:
            self.state = jax.tree_util.tree_map(lambda x: jax.numpy.asarray(np.asarray(x)),
                                                self.state)
            self.state_sh = self.metrics_sh = None
        else:
            self.state_sh = par.state_shardings(self.setup.mesh, self.state)
            self.metrics_sh = par.replicated(self.setup.mesh)
            self.state = par.shard(par.to_host(self.state), self.state_sh)

    def program(self, n: int) -> Any:
        """The compiled ``n``-update chunk (compiled once per distinct ``n``)."""
        if n not in self._compiled:
            t0 = time.perf_counter()
            fn = jax.vmap(lambda s: self.setup.trainer.run(s, n))
            if self.setup.mesh is None:
                fn = jax.jit(fn)
            else:
                fn = jax.jit(fn, in_shardings=(self.state_sh,),
                             out_shardings=(self.state_sh, self.metrics_sh))
            self._compiled[n] = fn.lower(self.state).compile()
            self.say(f"compiled a {n}-update chunk x {self.config.num_seeds} seed(s) in "
                     f"{time.perf_counter() - t0:.1f} s")
        return self._compiled[n]

    # ---------------------------------------------------------------- per-chunk steps
    def checkpoint(self) -> None:
        """Save the current state (a collective with several processes: all call it)."""
        host_state = self.host_state()
        self.on_main(save_checkpoint, self.run.checkpoint, host_state, self.update,
                     {"config": self.config.to_dict(), "knots": self.knots})
        self.saved = self.update

    def log_chunk(self, metrics: dict[str, Any], n: int, seconds: float, t_start: float) -> None:
        config = self.config
        sps = n * config.batch_size * config.num_seeds / seconds
        rows = chunk_rows(metrics, self.update - n, config.batch_size, {
            "charts/SPS": round(sps, 1),
            "time": round(self.time_offset + time.perf_counter() - t_start, 3)})
        for sink in self.sinks:
            sink.log_rows(rows)
        self.bar.set_completed(self.update)
        self.say(_chunk_line(rows, self.update, config.num_updates, sps))

    def host_state(self) -> Any:
        """The whole state as numpy on this host: a collective, every process calls it."""
        return par.to_host(self.state)

    def on_main(self, step: Callable[..., Any], *args: Any) -> Any:
        """Run process 0's own work (files, sinks, evaluation); the other processes skip it.

        With several processes an exception is held (``self.failure``) instead of raised: the
        others would otherwise wait forever in the next collective. :func:`train` shares it at
        the end of the chunk, so every process stops after the same chunk.
        """
        if not self.main or self.failure is not None:
            return None
        if jax.process_count() == 1:
            return step(*args)
        try:
            return step(*args)
        except Exception as exc:
            self.failure = exc
            self.say(f"process 0 failed: {type(exc).__name__}: {exc}; stopping every process")
            return None

    def evaluate(self, state: Any, final: bool = False) -> dict[str, Any]:
        """Greedy evaluation of every seed of a host ``state`` (:meth:`host_state`), compiled
        once and reused by later evaluations; process 0 only."""
        if self.evaluator is None:
            self.evaluator = Evaluator(self.setup.trainer, self.setup.env_params,
                                       self.config.eval_episodes)
        key = eval_key(self.config.seed, self.update)
        summary = {"update": self.update,
                   **self.evaluator(state.policy_params, state.norm, key)}
        step = self.update * self.config.batch_size
        for sink in self.sinks:
            sink.log_eval(summary, step, final)
        self.say(("final " if final else f"update {self.update}: ")
                 + format_summary(summary, self.setup.trainer.info_keys))
        if self.config.keep_best and not final:
            self.keep_if_best(state, summary)
        return summary

    def keep_if_best(self, state: Any, summary: dict[str, Any]) -> None:
        """``--keep-best``: the policy of an evaluation that beats every earlier one, as a
        policy file. Picked by the mean of ``--keep-best-by`` (the return by default) over every
        episode of every seed (unfinished ones with their partial return, or an info key's
        value 0), so one score ranks runs of any env; a tie keeps the earlier policy."""
        key = self.config.keep_best_by
        score = float(np.mean(summary["episodes"][key]))
        if self.best is not None and score <= self.best:
            return
        write_policy(self.run.best_policy, state.policy_params, state.norm.obs, self.config,
                     range(self.config.num_seeds), self.update,
                     {"selection": {"score": score, "metric": selection_metric(key),
                                    "episodes_per_seed": summary["episodes_per_seed"]}})
        self.best = score
        self.say(f"update {self.update}: best so far (mean {key} {score:.4g}), wrote "
                 f"{self.run.best_policy.name}")

    def sync_stop(self, wants_stop: bool) -> bool:
        """Whether every process stops after this chunk (a collective with several processes):
        a Ctrl-C or a scheduler's signal seen by one process, in whichever chunk, stops all of
        them after the same one; a failure held by :meth:`on_main` is raised on every process."""
        if jax.process_count() == 1:
            return wants_stop
        wants_stop, failed = par.any_process(wants_stop, self.failure is not None)
        if self.failure is not None:
            raise self.failure
        if failed:
            raise PeerFailed("process 0 failed (its output says why); every process stopped "
                             f"after update {self.update}")
        return wants_stop

    def due(self, freq: int, n: int) -> bool:
        """Whether a multiple of ``freq`` was crossed by the last ``n`` updates."""
        return bool(freq) and self.update // freq > (self.update - n) // freq

    def plot(self) -> Path | None:
        try:
            return plot_learning_curve(self.run.metrics, self.run.curve,
                                       f"{self.config.env} / {self.config.optimizer}")
        except Exception:  # a plot must never hide the real outcome
            return None

    def gif(self, state: Any) -> Path | None:
        """One greedy episode of the first seed of a host ``state``; process 0 only."""
        if not can_render(self.setup.env):
            return None
        state = jax.tree_util.tree_map(lambda x: x[0], state)
        key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed), 7)
        stats = record_gif(self.setup.trainer, self.setup.env_params, state.policy_params,
                           state.norm, key, self.run.gif)
        self.say(f"GIF of one greedy episode ({stats['steps']} steps, return "
                 f"{stats['return']:.2f}): {self.run.gif}")
        return self.run.gif

    def end(self, exit_code: int) -> None:
        """Close the sinks with the run's exit code (0 done, 1 failed, 130 interrupted); a run
        that did not finish still gets its learning curve."""
        if exit_code and self.main:
            self.plot()
        for sink in self.sinks:
            sink.close(exit_code)


def _chunk_line(rows: list[dict[str, Any]], update: int, total: int, sps: float) -> str:
    """One line per chunk. Episode metrics are the mean over seeds at the chunk's last update in
    which an episode ended: with episodes longer than one update (Freeway: 2,500 steps) the last
    update often has none, and "return nan" reads like a diverged run."""
    def latest(key: str) -> str:
        by_update: dict[int, list[float]] = {}
        for r in rows:
            value = r.get(key)
            if value is not None and math.isfinite(value):
                by_update.setdefault(r["update"], []).append(value)
        if not by_update:
            return "n/a"
        values = by_update[max(by_update)]
        return f"{sum(values) / len(values):.2f}"

    env_keys = sorted({k for r in rows for k in r if k.startswith("charts/")} - {
        "charts/episodic_return", "charts/episodic_length", "charts/learning_rate", "charts/SPS"})
    parts = [f"update {update}/{total}", f"step {rows[-1]['global_step']:,}",
             f"return {latest('charts/episodic_return')}"]
    parts += [f"{k.split('/', 1)[1]} {latest(k)}" for k in env_keys]
    return " | ".join(parts + [f"{sps:,.0f} steps/s"])


def train(
    config: TrainConfig,
    *,
    sources: dict[str, str] | None = None,
    progress: bool | None = None,
    should_stop: Callable[[int], bool] | None = None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Train (or resume) a run and write its directory.

    Args:
      sources: where each config value came from (default / preset / flag), for config.json.
      progress: live bar on/off (``None``: on when stderr is a terminal).
      should_stop: called after each chunk with the update count; ``True`` acts like Ctrl-C
        (tests use it to interrupt deterministically).
      log: where status lines go (default: above the bar / stderr).

    With several processes every one of them calls this and takes the same path out: the
    decisions come from replicated metrics or from flags shared after each chunk, and every step
    that gathers the sharded state (checkpoint, evaluation, GIF) runs on all of them, while
    process 0 alone writes files. Raises ``TrainingDiverged``, ``TrainingInterrupted`` and the
    other ``TrainerError``s.

    ``config`` is checked here (:func:`start`) unless it is already a checked one
    (``app.build.check``, or :func:`start`'s result, as ``ppo-train`` passes).

    With ``config.stages``, each stage not yet reached then resumes the run with its settings,
    exactly as ``--resume RUN --total-timesteps N ...`` would; the final evaluation, plot and GIF
    come once, after the last stage.
    """
    config, sources = start(config), dict(sources or {})
    while True:
        stage = config.next_stage()
        result = _train_one(config, sources, progress, should_stop, log, last=stage is None)
        if stage is None:
            return result
        number = config.stages.index(stage) + 1
        config = start(config.after_stage(stage).replace(resume=str(result.run_path)))
        sources.update(dict.fromkeys(stage, f"stage {number}"))
        if jax.process_index() == 0:
            (log or _stderr)(f"stage {number} of {len(config.stages)}: " + ", ".join(
                f"{flag(k)} {v}" for k, v in stage.items()))


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _train_one(config: TrainConfig, sources: dict[str, str], progress: bool | None,
               should_stop: Callable[[int], bool] | None, log: Callable[[str], None] | None,
               last: bool) -> RunResult:
    """One budget of a run: train (or resume) to ``config.total_timesteps``, then (``last``)
    the final evaluation, plot and GIF."""
    s = Session(config, sources, progress, log)
    try:
        with s.bar, _StopFlag(s.say) as stop:
            _run_chunks(s, stop, should_stop)
        if stop.requested and (s.update < s.config.num_updates or not last):
            _save_and_stop(s)  # a stop at a stage's end stops before the next stage
        result = _finish(s) if last else RunResult(s.run.path, s.update)
    except BaseException as exc:
        s.end(130 if isinstance(exc, TrainingInterrupted) else 1)
        raise
    s.end(0)
    return result


def _save_and_stop(s: Session) -> None:
    """After a Ctrl-C (or ``should_stop``): checkpoint the last completed chunk, then raise
    :class:`TrainingInterrupted` with the command that resumes the run."""
    if s.saved != s.update:
        s.checkpoint()
    s.sync_stop(False)  # a failed save on process 0 stops the others too
    raise TrainingInterrupted(
        f"interrupted at update {s.update}/{s.config.num_updates}; checkpoint saved. "
        f"Resume with: ppo-train --resume {s.run.path}")


def _run_chunks(s: Session, stop: _StopFlag, should_stop: Callable[[int], bool] | None) -> None:
    """Compiled chunks until the budget is spent, a stop is asked for or the loss diverges;
    after each: metrics to the sinks, checkpoint, periodic evaluation, the stop check."""
    config = s.config
    t_start = time.perf_counter()
    while s.update < config.num_updates:
        n = min(s.chunk_length(), config.num_updates - s.update)
        fn = s.program(n)
        if s.update == s.start:
            s.bar.restart_clock()  # steps/s without the compilation
        t0 = time.perf_counter()
        try:
            new_state, metrics = fn(s.state)
            metrics = par.to_host(metrics)
        except KeyboardInterrupt:
            stop.requested = True
            s.say("abandoned the running chunk")
            return
        seconds = time.perf_counter() - t0
        if not loss_is_finite(metrics):  # replicated metrics: every process agrees
            if s.saved != s.update:
                s.checkpoint()
            raise TrainingDiverged(divergence_message(config, s.update + n, s.saved, s.run.path))
        s.state, s.update = new_state, s.update + n
        s.on_main(s.log_chunk, metrics, n, seconds, t_start)
        if s.due(config.save_freq, n) or s.update == config.num_updates:
            s.checkpoint()
        if s.due(config.eval_freq, n) and s.update < config.num_updates:
            s.on_main(s.evaluate, s.host_state())
        if s.sync_stop(stop.requested or (should_stop is not None and should_stop(s.update))):
            stop.requested = True
            return


def _finish(s: Session) -> RunResult:
    """Learning curve, final greedy evaluation (eval.json), GIF, media to the sinks.

    The state is gathered on every process (a collective); then process 0 alone evaluates and
    writes, and the others return at once.
    """
    state = s.host_state()
    if not s.main:
        return RunResult(s.run.path, s.update)
    curve = s.plot()
    summary = s.evaluate(state, final=True)
    gif = s.gif(state)
    for sink in s.sinks:
        sink.log_media(curve, gif)
    s.say(f"run directory: {s.run.path}")
    return RunResult(s.run.path, s.update, summary, sorted(p.name for p in s.run.path.iterdir()))
