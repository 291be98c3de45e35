"""``ppo-suite``: every env of the benchmark list, Adam and Muon, several seeds, at each preset's
budget: cli (parsing) -> run (one env, every optimizer) -> report (table, plots, aggregates);
``tune`` picks each optimizer's learning rate on seeds that are not reported."""
