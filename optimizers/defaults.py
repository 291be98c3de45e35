"""Default hyperparameters of the built-in optimizers, in one place that imports nothing.

The plugins' ``HyperParam`` declarations (what ``--help`` and ``config.json`` show) and the
defaults of ``optimizers.muon.MuonOptions`` (and of :mod:`optimizers.newton_schulz` and
:mod:`optimizers.muon_grouping`) / :mod:`optimizers.adam` both read these names, so a default
cannot drift between the command line and the library. jax-free on purpose: the plugin
modules import it while ``ppo-train --help`` is being built.
"""

NS_PRESETS = ("cubic", "quintic", "polar_express")
"""Newton-Schulz polynomial schedules (see ``optimizers.newton_schulz.ns_coefficients``)."""

MUON_LR = 0.02
MUON_MOMENTUM = 0.95
MUON_NESTEROV = True
MUON_WEIGHT_DECAY = 0.0
MUON_HEADS = True
NS_PRESET = "quintic"
NS_STEPS = 3
NS_EPS = 1e-8
"""Added to the Frobenius norm before Newton-Schulz divides by it."""

NS_DTYPES = ("auto", "float32", "bfloat16")
"""Newton-Schulz iteration dtypes; ``auto``: bfloat16 on accelerators, float32 on CPU."""

ADAM_B1 = 0.9
ADAM_B2 = 0.999
ADAM_EPS = 1e-5
"""1e-5 as PureJaxRL (and Huang et al. 2022), not Adam's 1e-8: PPO gradients are small and noisy."""
