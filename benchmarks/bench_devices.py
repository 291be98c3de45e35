"""Data-parallel scaling: whole-PPO-loop env steps/s on 1, 2, 4, ... devices (same global batch).

Each measurement runs in its own subprocess, because XLA fixes the device count when a backend
starts. On CPU the devices are forced host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``): they share the machine's cores, so this
measures the partitioned program's overhead and whatever core-level parallelism the host has, not
real multi-chip scaling. Where a GPU (or TPU) is present, the real devices are measured too
(1, 2, 4, ... up to all of them). The 1-device row uses the trainer exactly as ``ppo-train
--devices 1`` does (no mesh); the others shard ``--num-envs`` (the global count) over a mesh.
Prints a markdown table labelled with the device.

    python benchmarks/bench_devices.py                  # CartPole, 64 envs x 128 steps
    python benchmarks/bench_devices.py --quick          # smoke run
    python benchmarks/bench_devices.py --env Snake-v0 --num-envs 128 --optimizer muon
    python benchmarks/bench_devices.py --json devices.json   # + rows, command, date, hardware

``--json OUT`` writes the measured rows with the command, the date, the hardware and the package
versions (``benchmarks/make_tables.py`` makes docs/scaling.md's table from
docs/results/speed/devices.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def child(args: argparse.Namespace) -> None:
    """Time ``args.updates`` updates x ``args.num_seeds`` seeds on ``args.devices`` devices."""
    import jax

    from ppo_trainer import parallel
    from ppo_trainer.config import TrainConfig
    from ppo_trainer.envs import make_env
    from ppo_trainer.optim import make_optimizer
    from ppo_trainer.ppo import Trainer

    cfg = TrainConfig(env=args.env, optimizer=args.optimizer, num_envs=args.num_envs,
                      num_steps=args.num_steps, total_timesteps=args.num_envs * args.num_steps,
                      update_epochs=4, num_minibatches=4, network="auto", hidden_size=64,
                      lr=2.5e-4)
    devices = parallel.select_devices(args.devices)
    cfg.check_devices(len(devices))
    mesh = parallel.make_mesh(devices) if len(devices) > 1 else None
    env, env_params = make_env(cfg)
    tx, lr_schedule = make_optimizer(cfg)
    trainer = Trainer(cfg, env, env_params, tx, lr_schedule=lr_schedule, mesh=mesh)
    keys = jax.random.split(jax.random.PRNGKey(0), args.num_seeds)
    state, run = parallel.jit_trainer(trainer, keys, args.updates, mesh)
    t0 = time.perf_counter()
    compiled = run.lower(state).compile()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        state, _ = jax.block_until_ready(compiled(state))
        times.append(time.perf_counter() - t0)
    steps = args.num_seeds * args.updates * cfg.batch_size
    d = devices[0]
    print("RESULT " + json.dumps({
        "device": f"{d.platform} ({d.device_kind})",
        "devices": len(devices),
        "envs/device": cfg.num_envs // len(devices),
        "compile s": round(compile_s, 1),
        "run s": round(min(times), 3),
        "steps/s": steps / min(times),
    }))


def spawn(args: argparse.Namespace, n: int, platform: str, forced: int | None) -> dict | None:
    env = dict(os.environ)
    if forced:
        flags = [f for f in env.get("XLA_FLAGS", "").split()
                 if not f.startswith("--xla_force_host_platform_device_count")]
        env["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={forced}"])
    env["JAX_PLATFORMS"] = platform
    argv = [sys.executable, __file__, "--child", "--devices", str(n), "--env", args.env,
            "--optimizer", args.optimizer, "--num-envs", str(args.num_envs), "--num-steps",
            str(args.num_steps), "--num-seeds", str(args.num_seeds), "--updates",
            str(args.updates), "--repeats", str(args.repeats)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    print(f"{platform} x{n} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
    return None


def accelerator() -> tuple[str, int] | None:
    """(platform, device count) of a GPU/TPU backend, probed in a subprocess; None on CPU only."""
    probe = "import jax; print(jax.default_backend(), jax.device_count())"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if proc.returncode:
        return None
    platform, count = proc.stdout.split()[-2:]
    return (platform, int(count)) if platform != "cpu" else None


def markdown(rows: list[dict]) -> str:
    base = {}
    for r in rows:
        base.setdefault(r["device"], r["steps/s"])
    cols = ["device", "devices", "envs/device", "compile s", "run s", "steps/s", "vs 1 device"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        r = {**r, "vs 1 device": f"{r['steps/s'] / base[r['device']]:.2f}x",
             "steps/s": f"{r['steps/s']:,.0f}"}
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--num-envs", type=int, default=64, help="global env count")
    parser.add_argument("--num-steps", type=int, default=128)
    parser.add_argument("--num-seeds", type=int, default=1)
    parser.add_argument("--updates", type=int, default=10, help="updates per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the fastest counts")
    parser.add_argument("--cpu-devices", default="1,2,4", help="forced host device counts")
    parser.add_argument("--quick", action="store_true", help="2 updates, 1 repeat")
    parser.add_argument("--json", metavar="OUT", default=None,
                        help="also write the rows, command, date, hardware and versions")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.quick:
        args.updates, args.repeats = 2, 1

    rows = []
    for n in (int(x) for x in args.cpu_devices.split(",")):
        if (row := spawn(args, n, "cpu", forced=n)) is not None:
            rows.append(row)
    if (acc := accelerator()) is not None:
        platform, count = acc
        counts = sorted({c for c in (1, 2, 4, 8, 16) if c <= count} | {count})
        for n in counts:
            if args.num_envs % n == 0 and (row := spawn(args, n, platform, None)) is not None:
                rows.append(row)
    print(f"{args.env}, {args.optimizer}, {args.num_envs} envs x {args.num_steps} steps "
          f"(global batch), {args.num_seeds} seed(s), {args.updates} updates per timed run; "
          f"host: {os.cpu_count()} CPU cores")
    print(markdown(rows))
    if args.json:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from provenance import record

        settings = {k: getattr(args, k) for k in ("env", "optimizer", "num_envs", "num_steps",
                                                  "num_seeds", "updates", "repeats")}
        Path(args.json).write_text(json.dumps({**record(sorted({r["device"] for r in rows})),
                                               "settings": settings, "rows": rows},
                                              indent=1) + "\n")


if __name__ == "__main__":
    main()
