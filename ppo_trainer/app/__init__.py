"""The application shell around the jitted core: command-line tools, run loop, run directory,
sinks, progress, evaluation, comparisons and the suite. Imports point down only (see
docs/design.md): the CLIs import the run loop, which imports the run directory, sinks and
evaluation, which import the build step, which imports the core (``ppo_trainer.*``)."""
