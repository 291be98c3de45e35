"""A PureJaxRL-style PPO trainer for any gymnax environment (see ``ppo_trainer.ppo``)."""
