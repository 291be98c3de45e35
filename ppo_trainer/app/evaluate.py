"""Greedy evaluation of trained policies, and a GIF of one greedy episode, for any env.

The evaluation is one jitted program: ``num_episodes`` environments stepped together (``vmap``)
in a ``lax.while_loop`` that stops when every episode has ended, or at the env's own time limit
(``max_steps_in_episode``) plus one, or at ``max_steps`` if given. Each environment counts only
its first episode; one that has not ended when the loop stops is reported apart as unfinished
(its partial return is never averaged in with finished episodes). The action is ``pi.mode()`` on
the observation the trainer's policy sees (normalized with the run's frozen statistics).
Besides return and length, every scalar ``info`` value the env reports
(``ppo_trainer.envs.info_metrics``: Snake's ``apples``, ``length``, ``win``) is recorded at each
episode's last step, so a win rate is ``mean_win``.

The episode loop itself (:func:`play_episodes`) takes any action function: the suite's
random-policy baseline plays on it too. :func:`evaluate_run` is ``ppo-eval``: a run directory or
a policy file (``ppo_trainer.app.policy.load_playable``), evaluated and recorded.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np

from ppo_trainer.app.policy import load_playable
from ppo_trainer.errors import ConfigError

NO_LIMIT_CAP = 1_000_000  # step cap for envs without a time limit


OWN_KEYS = ("return", "episode_length", "finished")
Act = Callable[[Sequence[Any], Any, Any], Any]  # (keys, obs, state) -> a batch of env actions


def _envs() -> Any:
    """``ppo_trainer.envs``, imported on first use: it imports gymnax, which starts a jax
    backend, and the run loop imports this module before ``initialize_distributed``."""
    from ppo_trainer import envs  # gymnax starts a backend: not before initialize_distributed

    return envs


def eval_keys(env: Any, env_params: Any) -> tuple[str, ...]:
    """The env's scalar info values recorded per episode (not clashing with our own keys)."""
    return tuple(k for k in _envs().info_metrics(env, env_params) if k not in OWN_KEYS)


def eval_key(seed: int, update: int) -> Any:
    """The key of the greedy evaluation after ``update`` updates of a run seeded ``seed``: the
    run loop and ``ppo-eval`` share it, so ``ppo-eval`` reproduces ``eval.json`` exactly."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), 1_000_003 + update)


def step_cap(env_params: Any, max_steps: int | None = None) -> int:
    """The loop's step limit: ``max_steps`` if given, else the env's time limit + 1."""
    if max_steps:
        return int(max_steps)
    limit = int(getattr(env_params, "max_steps_in_episode", 0) or 0)
    return limit + 1 if limit > 0 else NO_LIMIT_CAP


class Evaluator:
    """A compiled greedy evaluation, kept so that periodic evaluations do not recompile.

    ``evaluator(params, norm, key)``: ``params``/``norm`` with a leading seed axis; returns the
    summary dict of :func:`summarize`. ``seeds``/``num_seeds``: which of a run's ``num_seeds``
    seeds the params are (a policy file may keep some), so that each plays the games it played
    in the run's own evaluation with the same ``key``.
    """

    def __init__(self, trainer: Any, env_params: Any, num_episodes: int,
                 max_steps: int | None = None) -> None:
        self.trainer = trainer
        self.num_episodes = num_episodes
        self.keys = eval_keys(trainer.eval_env, env_params)
        fn = make_greedy_eval(trainer, env_params, num_episodes, step_cap(env_params, max_steps))
        self._run = jax.jit(jax.vmap(fn))

    def __call__(self, params: Any, norm: Any, key: Any, seeds: Sequence[int] | None = None,
                 num_seeds: int | None = None) -> dict[str, Any]:
        held = jax.tree_util.tree_leaves(params)[0].shape[0]
        keys = jax.random.split(key, num_seeds or held)
        if seeds is not None:
            keys = keys[jnp.asarray(seeds, jnp.int32)]
        out = self._run(params, norm, keys)
        return summarize(jax.device_get(out), self.keys)


def play_episodes(env: Any, env_params: Any, num_episodes: int, cap: int, act: Act,
                  act_keys: int = 0, info_keys: Sequence[str] = (),
                  memory: Any = None) -> Callable[..., Any]:
    """``fn(key) -> {"return", "episode_length", "finished", <info_keys>}``, arrays of shape
    ``(num_episodes,)``: the first episode of each of ``num_episodes`` envs, stepped together
    until all have ended or ``cap`` steps. Each step splits the key into ``act_keys`` keys for
    ``act(keys, obs, state)`` and one for the env step. With a ``memory`` (a recurrent policy's
    initial carry for the batch) the call is ``act(keys, obs, state, memory) -> (actions,
    memory)``; it is never reset, as only each env's first episode counts."""
    vstep = _envs().batched_step(env)
    vreset = jax.vmap(env.reset, in_axes=(0, None))

    def run(key: Any) -> dict[str, Any]:
        key, k_reset = jax.random.split(key)
        obs, state = vreset(jax.random.split(k_reset, num_episodes), env_params)
        zeros = jnp.zeros(num_episodes, jnp.float32)
        ends = {k: zeros for k in info_keys}
        carry = (0, key, obs, state, jnp.ones(num_episodes, bool), zeros, zeros, ends, memory)

        def cond(c: tuple) -> Any:
            return (c[0] < cap) & c[4].any()

        def body(c: tuple) -> tuple:
            t, key, obs, state, alive, ret, length, ends, mem = c
            key, *k_act, k_step = jax.random.split(key, 2 + act_keys)
            if mem is None:
                action = act(k_act, obs, state)
            else:
                action, mem = act(k_act, obs, state, mem)
            obs, state, reward, terminated, truncated, info = vstep(
                jax.random.split(k_step, num_episodes), state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            ret = ret + jnp.where(alive, reward, 0.0)
            length = length + alive
            ends = {k: jnp.where(alive & done, info[k].astype(jnp.float32), v)
                    for k, v in ends.items()}
            return t + 1, key, obs, state, alive & ~done, ret, length, ends, mem

        _, _, _, _, alive, ret, length, ends, _ = jax.lax.while_loop(cond, body, carry)
        return {"return": ret, "episode_length": length, "finished": ~alive, **ends}

    return run


def make_greedy_eval(trainer: Any, env_params: Any, num_episodes: int,
                     cap: int) -> Callable[[Any, Any, Any], dict[str, Any]]:
    """``fn(params, norm, key) -> {"return", "episode_length", "finished", <info keys>}`` arrays
    of shape ``(num_episodes,)``."""
    env = trainer.eval_env  # LogWrapper'd; its info carries the env's own keys too
    to_env = _envs().make_action_fn(env, env_params)
    keys = eval_keys(env, env_params)

    def run(params: Any, norm: Any, key: Any) -> dict[str, Any]:
        def act(_keys: Sequence[Any], obs: Any, state: Any, memory: Any) -> tuple[Any, Any]:
            mask = trainer.masks(state.env_state)  # state is the LogWrapper's
            memory, pi, _ = trainer.act(params, memory, trainer.network_input(norm, obs), mask)
            return to_env(pi.mode()), memory

        return play_episodes(env, env_params, num_episodes, cap, act, info_keys=keys,
                             memory=trainer.initial_carry(num_episodes))(key)

    return run


def summarize(results: dict[str, Any], info_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Per-seed and overall means over FINISHED episodes (arrays ``(num_seeds, episodes)``);
    unfinished episodes are counted, and their partial returns averaged, separately."""
    arrays = {k: np.asarray(v, dtype=float) for k, v in results.items()}
    finished = np.asarray(results["finished"], dtype=bool)
    summary: dict[str, Any] = {"episodes_per_seed": int(finished.shape[-1]),
                               "finished_episodes": int(finished.sum()),
                               "unfinished_episodes": int((~finished).sum())}
    for key in ("return", "episode_length", *info_keys):
        values = arrays[key]
        done = np.where(finished, values, np.nan)
        with np.errstate(invalid="ignore"), _quiet():
            summary[f"mean_{key}"] = float(np.nanmean(done)) if finished.any() else None
            summary[f"std_{key}"] = float(np.nanstd(done)) if finished.any() else None
            summary[f"per_seed_mean_{key}"] = [None if not f.any() else float(np.nanmean(d))
                                               for d, f in zip(done, finished, strict=True)]
    if (~finished).any():
        summary["mean_return_unfinished"] = float(arrays["return"][~finished].mean())
    # A deterministic env (e.g. MinAtar SpaceInvaders: the same reset every time) and a greedy
    # policy play one game over and over: N episodes of a seed are then one sample, not N.
    # Games are told apart by (return, length) of the finished episodes: a lower bound.
    summary["distinct_episodes_per_seed"] = [
        len({(r, n) for r, n, f in zip(ret, length, fin, strict=True) if f})
        for ret, length, fin in zip(arrays["return"], arrays["episode_length"], finished,
                                    strict=True)]
    summary["episodes"] = {k: arrays[k].tolist()
                           for k in ("return", "episode_length", *info_keys)}
    summary["episodes"]["finished"] = finished.tolist()
    return summary


class _quiet:
    """Silence numpy's 'mean of empty slice' for seeds with no finished episode."""

    def __enter__(self) -> None:
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def format_summary(summary: dict[str, Any], info_keys: tuple[str, ...] = ()) -> str:
    """One line: return, each env metric, length, and unfinished episodes if any."""
    def part(key: str) -> str:
        mean, std = summary.get(f"mean_{key}"), summary.get(f"std_{key}")
        return f"{key} n/a" if mean is None else f"{key} {mean:.2f} +- {std:.2f}"

    keys = [k for k in info_keys if f"mean_{k}" in summary]
    text = (f"greedy eval over {summary['episodes_per_seed']} episodes/seed: "
            + ", ".join(part(k) for k in ("return", *keys, "episode_length")))
    if summary.get("unfinished_episodes"):
        text += (f"; {summary['unfinished_episodes']} episode(s) unfinished at the step cap "
                 f"(partial return {summary['mean_return_unfinished']:.2f}, not in the means)")
    distinct = summary.get("distinct_episodes_per_seed") or []
    if summary["episodes_per_seed"] > 1 and distinct and max(distinct) == 1:
        text += "; every seed played the same game in all its episodes (one game per seed)"
    return text


def can_render(env: Any) -> bool:
    """Envs that draw frames: a jittable ``render_frame(state, params) -> uint8 (H, W, 3)``."""
    return callable(getattr(env, "render_frame", None))


def record_gif(trainer: Any, env_params: Any, params: Any, norm: Any, key: Any, path: Path,
               max_steps: int = 5000, fps: int = 15, every: int = 1) -> dict[str, Any]:
    """Play one greedy episode (one seed's ``params``/``norm``), write it as a GIF, return stats.

    ``every``: keep every ``every``-th frame and the last one; a long game (a won Snake: ~1300
    steps) then makes a file ``every`` times smaller that plays ``every`` times faster.

    Rollout: one jitted ``lax.scan`` of un-reset steps (``step_env`` + ``is_truncated``, so the
    last frame is the terminal board, not an auto-reset), cut on the host at the first done;
    frames from the env's ``render_frame`` under ``vmap``; written with imageio.
    """
    env = trainer.eval_env._env  # the env inside the trainer's LogWrapper
    keys = _envs().info_metrics(env, env_params)
    to_env = _envs().make_action_fn(env, env_params)

    def rollout(key: Any) -> tuple:
        k_reset, key = jax.random.split(key)
        obs, state = env.reset_env(k_reset, env_params)

        def body(carry: tuple, k: Any) -> tuple:
            obs, state, over, memory = carry
            batch = jax.tree.map(lambda x: x[None], (obs, state))  # a batch of one
            memory, pi, _ = trainer.act(params, memory, trainer.network_input(norm, batch[0]),
                                        trainer.masks(batch[1]))
            action = to_env(pi.mode())[0]
            obs, state, reward, terminated, info = env.step_env(k, state, action, env_params)
            done = terminated | env.is_truncated(state, env_params)
            return ((obs, state, over | done, memory),
                    (state, reward, done, {k: info[k] for k in keys}))

        _, (states, rewards, dones, infos) = jax.lax.scan(
            body, (obs, state, jnp.bool_(False), trainer.initial_carry(1)),
            jax.random.split(key, max_steps))
        states = jax.tree.map(lambda s0, s: jnp.concatenate([s0[None], s]), state, states)
        return states, rewards, dones, infos

    states, rewards, dones, infos = jax.jit(rollout)(key)
    dones = np.asarray(dones)
    steps = int(np.argmax(dones)) + 1 if dones.any() else max_steps
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    index = np.unique(np.append(np.arange(0, steps + 1, every), steps))
    kept = jax.tree.map(lambda x: x[index], states)
    frames = jax.jit(jax.vmap(lambda s: env.render_frame(s, env_params)))(kept)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.asarray(frames, np.uint8), duration=round(1000 / fps), loop=0)
    stats = {"return": float(np.sum(np.asarray(rewards)[:steps])), "steps": steps,
             "ended": bool(dones.any()), "frames": len(index), "path": str(path)}
    stats.update({k: float(np.asarray(v)[steps - 1]) for k, v in infos.items()})
    return stats


def evaluate_run(run_dir: Path, episodes: int | None = None, seed: int | None = None,
                 gif: str | None = None, max_steps: int | None = None,
                 gif_every: int = 1, env_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a run's checkpoint or a policy file and evaluate it; returns the summary (and
    writes the GIF of the first seed it holds). ``env_params`` replaces fields of the env's
    parameters for this evaluation only (a policy trained under one starvation limit played
    under another); the summary then names them."""
    if episodes is not None and episodes <= 0:
        raise ConfigError(f"--episodes must be positive, got {episodes}")
    if max_steps is not None and max_steps <= 0:
        raise ConfigError(f"--max-steps must be positive, got {max_steps}")
    if gif_every < 1:
        raise ConfigError(f"--gif-every must be positive, got {gif_every}")
    policy = load_playable(Path(run_dir))
    setup, config = policy.setup, policy.config
    params = _envs().override_params(config.env, setup.env_params, env_params or {})
    k_eval = eval_key(config.seed if seed is None else seed, policy.update)
    k_gif = jax.random.fold_in(jax.random.PRNGKey(config.seed if seed is None else seed), 7)
    evaluator = Evaluator(setup.trainer, params, episodes or config.eval_episodes,
                          max_steps)
    summary = {"update": policy.update, "seed_indices": list(policy.seeds),
               **evaluator(policy.params, policy.norm, k_eval, policy.seeds, config.num_seeds)}
    if can_render(setup.env) and (gif or "").lower() != "none":
        path = Path(gif) if gif else policy.gif
        first = jax.tree_util.tree_map(lambda x: x[0], (policy.params, policy.norm))
        summary["gif_episode"] = record_gif(setup.trainer, params, *first, k_gif, path,
                                            every=gif_every)
        summary["gif"] = str(path)
    summary["source"] = policy.source
    if env_params:
        summary["env_params"] = dict(env_params)
    summary["info_keys"] = list(setup.trainer.info_keys)
    return summary
