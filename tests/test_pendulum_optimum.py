"""benchmarks/pendulum_optimum.py: the DP reference that the Pendulum row is read against."""

import numpy as np
from conftest import load_benchmark


def test_coarse_dp_controller_swings_up_and_agrees_with_its_value_function(tmp_path):
    """A coarse grid already gives a controller near the optimum (about -137): a random
    policy scores about -1200 and one that never swings up far below -200.  The DP's value at
    the start states must predict the controller's own return, or the backup is wrong."""
    result = load_benchmark("pendulum_optimum").main(
        "--grid 61 61 --torques 11 --episodes 1000".split() + ["--json", str(tmp_path / "o.json")]
    )
    assert result["controller_mean_return"] > -150.0
    assert abs(result["dp_value_at_starts"] - result["controller_mean_return"]) < 6.0
    assert 0.0 <= result["chance_reference_sample_reaches_it"] < 0.5
    assert (tmp_path / "o.json").exists()


def test_chance_of_reaching_counts_resampled_means():
    module = load_benchmark("pendulum_optimum")
    returns = np.array([-100.0, -200.0])
    assert module.chance_of_reaching(returns, -50.0, 10, seed=0) == 0.0
    assert module.chance_of_reaching(returns, -250.0, 10, seed=0) == 1.0
    half = module.chance_of_reaching(returns, -150.0, 1, seed=0)
    assert 0.4 < half < 0.6
