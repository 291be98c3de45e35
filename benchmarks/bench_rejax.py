"""Our PPO loop vs rejax's, side by side: same settings, interleaved, env steps/s and ratio per pair.

Ours runs in this process (``ppo_trainer.app.build``, as ``ppo-train`` builds it); rejax runs in
its own virtualenv (rejax 0.1.3 pins its own gymnax/flax), as a worker subprocess that compiles
once and then times a run each time it is asked. The two alternate -- ours, rejax, ours,
rejax, ... -- so machine load affects both alike; each pair gives one ratio.

    python3 -m venv /tmp/rejax-venv && /tmp/rejax-venv/bin/pip install rejax==0.1.3
    python benchmarks/bench_rejax.py                       # 1 seed and 8 vmapped seeds, 5 pairs
    python benchmarks/bench_rejax.py --seeds 1 --pairs 3 --timesteps 100000

Settings: PureJaxRL's CartPole (our ``CartPole-v1`` preset): 4 envs x 128 steps, 4 epochs x 4
minibatches, tanh MLP 64x2 (separate actor and critic), Adam 2.5e-4, clip 0.5, gamma 0.99,
lambda 0.95. Both time ``timesteps / 512`` PPO updates compiled as one program (our
``trainer.run``; rejax's ``train_iteration`` in a ``fori_loop``, without its evaluations), with
``--seeds`` seeds vmapped. Differences that remain, by design: we bootstrap truncated steps
from ``V(final_observation)`` (one extra critic pass over the rollout) and clip the global
gradient norm; rejax bootstraps nothing at truncations, clips each gradient element
(``optax.clip``), and takes separate actor and critic gradient/Adam steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

import jax
from bench_loop import timed_run  # this folder is on sys.path when run as a script

from ppo_trainer.presets import preset_config

WORKER = r'''
import json, sys, time
import jax
from rejax import PPO

args = json.loads(sys.argv[1])
algo = PPO.create(
    env="CartPole-v1", num_envs=4, num_steps=128, num_epochs=4, num_minibatches=4,
    learning_rate=2.5e-4, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, clip_eps=0.2,
    ent_coef=0.01, vf_coef=0.5, total_timesteps=args["timesteps"],
    eval_freq=args["timesteps"], skip_initial_evaluation=True,
    agent_kwargs={"activation": "tanh", "hidden_layer_sizes": [64, 64]},
)
updates = args["updates"]
keys = jax.random.split(jax.random.PRNGKey(0), args["seeds"])
state = jax.jit(jax.vmap(algo.init_state))(keys)
run = jax.jit(jax.vmap(
    lambda ts: jax.lax.fori_loop(0, updates, lambda _, t: algo.train_iteration(t), ts)))
t0 = time.perf_counter()
compiled = run.lower(state).compile()
print(json.dumps({"ready": time.perf_counter() - t0, "jax": jax.__version__}), flush=True)
for line in sys.stdin:
    if line.strip() != "run":
        break
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(state))
    print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
'''


class RejaxWorker:
    """The rejax program, compiled once in its own venv; ``run()`` times one execution."""

    def __init__(self, python: str, seeds: int, updates: int, timesteps: int) -> None:
        fd, self.script = tempfile.mkstemp(suffix="_rejax_worker.py")
        with os.fdopen(fd, "w") as f:
            f.write(WORKER)
        arg = json.dumps({"seeds": seeds, "updates": updates, "timesteps": timesteps})
        self.proc = subprocess.Popen(
            [python, self.script, arg], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"rejax worker exited with {self.proc.wait()}")
        return json.loads(line)

    def run(self) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read()["seconds"]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()
        os.unlink(self.script)


def ours(seeds: int, updates: int, optimizer: str) -> Any:
    """Our compiled program for the same settings; returns a function timing one run."""
    cfg = preset_config("CartPole-v1", optimizer=optimizer, num_seeds=seeds)
    return timed_run(cfg, updates)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rejax-python", default="rejax-venv/bin/python",
                        help="the python of a venv with rejax 0.1.3 and gymnax 0.0.9")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--timesteps", type=int, default=200_000, help="env steps per seed")
    parser.add_argument("--optimizer", default="adam", help="ours (rejax always uses Adam)")
    args = parser.parse_args()
    batch = 4 * 128
    updates = args.timesteps // batch
    rows = []
    for seeds in args.seeds:
        mine = ours(seeds, updates, args.optimizer)
        worker = RejaxWorker(args.rejax_python, seeds, updates, args.timesteps)
        try:
            mine(), worker.run()  # warm-up
            steps = seeds * updates * batch
            for pair in range(args.pairs):
                t_ours, t_rejax = mine(), worker.run()
                rows.append((seeds, pair, steps / t_ours, steps / t_rejax))
                print(f"seeds {seeds} pair {pair}: ours {steps / t_ours:,.0f} "
                      f"rejax {steps / t_rejax:,.0f} env steps/s", flush=True)
        finally:
            worker.close()
    print(f"\nours: jax {jax.__version__}, {args.optimizer}; rejax 0.1.3: jax "
          f"{worker.info['jax']}; {jax.devices()[0].device_kind}; {updates} updates x {batch} "
          f"env steps per seed, interleaved (ours, rejax) x {args.pairs} pairs\n")
    print("| seeds | pair | ours env steps/s | rejax env steps/s | ours / rejax |")
    print("|---|---|---|---|---|")
    for seeds, pair, a, b in rows:
        print(f"| {seeds} | {pair} | {a:,.0f} | {b:,.0f} | {a / b:.2f}x |")
    for seeds in args.seeds:
        r = [a / b for s, _, a, b in rows if s == seeds]
        print(f"| {seeds} | median | | | {statistics.median(r):.2f}x |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
