"""Greedy evaluation of trained policies, and ``ppo-eval <run dir>``.

The rollout is one jitted program: ``num_episodes`` environments stepped together (``vmap``)
in a ``lax.while_loop`` that stops when every episode has ended or at a step cap. Each episode
counts only its first life (later auto-resets are masked out). The action is ``pi.mode()``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ppo_trainer.errors import CLIError

EVAL_NAME = "eval.json"
GIF_NAME = "agent.gif"
DEFAULT_STEP_CAP = 10_000


def is_snake(env: Any) -> bool:
    return type(env).__module__.startswith("snake_gymnax")


def step_cap(env_params: Any, cap: int | None = None) -> int:
    """The rollout's step limit: the env's own time limit (+1), bounded by ``cap``."""
    limit = int(getattr(env_params, "max_steps_in_episode", DEFAULT_STEP_CAP)) + 1
    return min(limit, cap or DEFAULT_STEP_CAP)


def make_greedy_eval(
    env: Any, env_params: Any, network: Any, num_episodes: int, max_steps: int | None = None
) -> Callable[[Any, Any], dict[str, Any]]:
    """``fn(params, key) -> {"return", "length", "apples"?}`` arrays of shape ``(num_episodes,)``."""
    import jax
    import jax.numpy as jnp

    from ppo_trainer.envs import make_action_fn

    to_env = make_action_fn(env, env_params)
    cap = step_cap(env_params, max_steps)
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    vreset = jax.vmap(env.reset, in_axes=(0, None))

    def run(params: Any, key: Any) -> dict[str, Any]:
        key, k_reset = jax.random.split(key)
        obs, state = vreset(jax.random.split(k_reset, num_episodes), env_params)
        action = to_env(network.apply(params, obs)[0].mode())
        _, _, _, _, _, info = jax.eval_shape(
            vstep, jax.random.split(key, num_episodes), state, action, env_params)
        has_apples = "apples" in info
        zeros = jnp.zeros(num_episodes, jnp.float32)
        carry = (0, key, obs, state, jnp.ones(num_episodes, bool), zeros, zeros, zeros)

        def cond(c: tuple) -> Any:
            return (c[0] < cap) & c[4].any()

        def body(c: tuple) -> tuple:
            t, key, obs, state, alive, ret, length, apples = c
            key, k_step = jax.random.split(key)
            pi, _ = network.apply(params, obs)
            obs, state, reward, terminated, truncated, info = vstep(
                jax.random.split(k_step, num_episodes), state, to_env(pi.mode()), env_params)
            done = jnp.logical_or(terminated, truncated)
            ret = ret + jnp.where(alive, reward, 0.0)
            length = length + alive
            if has_apples:
                apples = jnp.where(alive & done, info["apples"].astype(jnp.float32), apples)
            return t + 1, key, obs, state, alive & ~done, ret, length, apples

        _, _, _, _, alive, ret, length, apples = jax.lax.while_loop(cond, body, carry)
        out = {"return": ret, "length": length, "finished": ~alive}
        if has_apples:
            out["apples"] = apples
        return out

    return run


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Per-seed and overall mean/std of a vmapped eval (arrays shaped ``(num_seeds, episodes)``)."""
    import numpy as np

    arrays = {k: np.asarray(v, dtype=float) for k, v in results.items()}
    summary: dict[str, Any] = {"episodes_per_seed": int(arrays["return"].shape[-1])}
    for key in ("return", "apples", "length"):
        if key in arrays:
            summary[f"mean_{key}"] = float(arrays[key].mean())
            summary[f"std_{key}"] = float(arrays[key].std())
            summary[f"per_seed_mean_{key}"] = [float(x) for x in arrays[key].mean(axis=-1)]
    summary["unfinished_episodes"] = int((~arrays["finished"].astype(bool)).sum())
    return summary


def evaluate_seeds(env: Any, env_params: Any, network: Any, params: Any, key: Any,
                   num_episodes: int, max_steps: int | None = None) -> dict[str, Any]:
    """Greedy eval of every seed's params (leading seed axis) in one jitted, vmapped program."""
    import jax

    num_seeds = jax.tree_util.tree_leaves(params)[0].shape[0]
    fn = make_greedy_eval(env, env_params, network, num_episodes, max_steps)
    results = jax.jit(jax.vmap(fn))(params, jax.random.split(key, num_seeds))
    return summarize(jax.device_get(results))


def format_summary(summary: dict[str, Any]) -> str:
    text = (f"greedy eval over {summary['episodes_per_seed']} episodes/seed: "
            f"return {summary['mean_return']:.2f} +- {summary['std_return']:.2f}")
    if "mean_apples" in summary:
        text += f", apples {summary['mean_apples']:.2f} +- {summary['std_apples']:.2f}"
    return text + f", length {summary['mean_length']:.1f}"


def record_gif(env: Any, env_params: Any, network: Any, params: Any, key: Any, path: Path,
               max_steps: int = 1000) -> dict[str, Any] | None:
    """A GIF of one greedy episode (Snake only: uses ``snake_gymnax.render.record_episode``)."""
    import jax

    from snake_gymnax.render import record_episode

    def policy(_key: Any, obs: Any) -> Any:
        return network.apply(params, obs[None])[0].mode()[0]

    stats = record_episode(env, env_params, jax.jit(policy), key, str(path), max_steps=max_steps)
    return {k: (v if isinstance(v, str) else float(v)) for k, v in stats.items()}


# --- ppo-eval ------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ppo-eval", description="Greedy evaluation of a ppo-train run's checkpoint.",
                allow_abbrev=False)
    p.add_argument("run_dir", help="the run directory (holds config.json and checkpoint.msgpack)")
    p.add_argument("--episodes", type=int, default=None,
                   help="episodes per seed (default: the run's --eval-episodes)")
    p.add_argument("--gif", default=None,
                   help=f"GIF path for Snake (default: <run dir>/{GIF_NAME}; 'none' to skip)")
    p.add_argument("--seed", type=int, default=None, help="evaluation seed (default: the run's seed)")
    p.add_argument("--max-steps", type=int, default=None,
                   help=f"step cap per episode (default: the env's time limit, at most {DEFAULT_STEP_CAP})")
    p.add_argument("--json", dest="json_out", default=None, help="also write the summary to this file")
    return p


def evaluate_run(run_dir: Path, episodes: int | None = None, seed: int | None = None,
                 gif: str | None = None, max_steps: int | None = None) -> dict[str, Any]:
    """Load a run's checkpoint and evaluate it; returns the summary (and writes the GIF)."""
    from ppo_trainer.runner import load_run

    loaded = load_run(Path(run_dir))
    config = loaded.config
    episodes = episodes or config.eval_episodes
    if episodes <= 0:
        raise CLIError(f"--episodes must be positive, got {episodes}")
    import jax

    key = jax.random.PRNGKey(config.seed if seed is None else seed)
    k_eval, k_gif = jax.random.split(jax.random.fold_in(key, 1))
    summary = evaluate_seeds(loaded.env, loaded.env_params, loaded.network,
                             loaded.runner_state.params, k_eval, episodes, max_steps)
    summary["update"] = loaded.update
    if is_snake(loaded.env) and (gif or "").lower() != "none":
        path = Path(gif) if gif else Path(run_dir) / GIF_NAME
        first = jax.tree_util.tree_map(lambda x: x[0], loaded.runner_state.params)
        summary["gif"] = str(path)
        summary["gif_episode"] = record_gif(loaded.env, loaded.env_params, loaded.network, first,
                                            k_gif, path, max_steps or 1000)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.episodes is not None and args.episodes <= 0:
            raise CLIError(f"--episodes must be positive, got {args.episodes}")
        if args.max_steps is not None and args.max_steps <= 0:
            raise CLIError(f"--max-steps must be positive, got {args.max_steps}")
        summary = evaluate_run(Path(args.run_dir), args.episodes, args.seed, args.gif, args.max_steps)
    except CLIError as exc:
        print(f"ppo-eval: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(format_summary(summary) + f" (checkpoint at update {summary['update']})")
    if "gif" in summary:
        print(f"wrote {summary['gif']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
