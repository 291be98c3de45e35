"""``ppo-compare``: cli (parsing) -> run (training one spec) -> analysis (numbers) -> report."""
