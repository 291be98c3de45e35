"""One adapter per foreign env suite, each turning the suite's env into a gymnax 1.0 env.

Each module is an env suite (see :mod:`ppo_trainer.suites`: ``make``, ``REQUIRES``, ``INSTALL``,
``IDS``), registered through the ``ppo_trainer.env_suites`` entry points in ``pyproject.toml``
exactly as a third party's suite is. A module imports its suite's package inside ``make`` only;
the PPO core imports none of these modules. :mod:`.base` holds what they share.
"""
