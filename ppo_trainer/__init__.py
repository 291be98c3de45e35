"""A PureJaxRL-style PPO trainer for any gymnax environment (see ``ppo_trainer.ppo``)."""

from ppo_trainer.xla_cpu import configure_xla_cpu

configure_xla_cpu()
