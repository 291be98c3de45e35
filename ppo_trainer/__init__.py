"""A PureJaxRL-style PPO trainer for any gymnax environment.

The jittable core lives here (``config``, ``presets``, ``envs``, ``normalize``, ``networks``,
``ppo``, ``optim``, ``parallel``); the application around it (CLIs, run loop, run directory,
sinks, evaluation, compare, suite) in ``ppo_trainer.app``. See docs/design.md.
"""
