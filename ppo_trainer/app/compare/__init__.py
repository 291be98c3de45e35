"""``ppo-compare``: cli (parsing) -> run (training one spec) -> analysis (numbers) -> report.

The names the CLI needs before it imports the heavy modules (jax, matplotlib) live here."""

JSON_NAME = "curves.json"
TABLE_NAME = "results.md"
STEPS_PLOT = "return_vs_steps.png"
TIME_PLOT = "return_vs_time.png"
# ppo-train flags that manage a single run's directory, checkpoints, evaluation or loggers.
RUN_ONLY_FIELDS = ("run_dir", "run_name", "save_freq", "eval_freq", "eval_episodes", "keep_best",
                   "wandb", "wandb_project", "wandb_entity", "tensorboard", "resume", "stages")
# Not compared settings: no flag in ppo-compare, left out of the report's "shared settings".
SKIPPED_FIELDS = ("optimizer", "optimizer_kwargs", *RUN_ONLY_FIELDS)
