"""Muon: Newton-Schulz quality per step count, Gram form, batching and precision, grouping rule,
equivalence with optax.contrib.muon and with the per-leaf maths. (The numbers against the code
before issue 29, and the deprecated names: tests/test_optimizer_reference.py.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optimizers import defaults
from optimizers.muon import (
    MuonOptions,
    _scale_by_muon,
    muon,
    muon_dimension_numbers,
    param_labels,
    scale_by_muon,
)
from optimizers.muon_grouping import HEAD_MODULES, default_dimension_numbers
from optimizers.newton_schulz import ns_coefficients, ns_flops, orthogonalize, plan_batches

RNG = np.random.default_rng(0)


def _matrix(m: int, n: int, cond: float) -> np.ndarray:
    """A random (m, n) matrix with singular values log-spaced from 1 down to 1/cond."""
    k = min(m, n)
    u, _ = np.linalg.qr(RNG.normal(size=(m, k)))
    v, _ = np.linalg.qr(RNG.normal(size=(n, k)))
    return (u * np.geomspace(1.0, 1.0 / cond, k)) @ v.T


def _scalar_map(preset: str, sigma: np.ndarray, norm_scale: float = 1.0) -> np.ndarray:
    """What NS does to each singular value: the composed odd polynomials, after normalisation."""
    x = sigma / (np.sqrt(np.sum(sigma**2)) * norm_scale)
    for a, b, c in ns_coefficients(preset, 5):
        x = a * x + b * x**3 + c * x**5
    return x


def _singular_values(x: jax.Array) -> np.ndarray:
    return np.linalg.svd(np.asarray(x, np.float64), compute_uv=False)


# Bands measured for condition numbers 1..50 (and the 3-D / 4-D kernels below) with 5 steps.
BANDS = {"quintic": (0.5, 1.5), "polar_express": (0.85, 1.15)}


@pytest.mark.parametrize("preset", ["quintic", "polar_express", "cubic"])
def test_singular_values_in_band(preset: str) -> None:
    norm_scale = 1.01 if preset == "polar_express" else 1.0
    ortho = jax.jit(lambda x: orthogonalize(x, ns_coefficients(preset, 5), norm_scale=norm_scale))
    for shape in [(64, 64), (32, 96), (96, 32), (3, 64)]:  # square, wide, tall, very wide
        for cond in (1.0, 10.0, 50.0):
            x = jnp.asarray(_matrix(*shape, cond), jnp.float32)
            out = ortho(x)
            assert out.shape == x.shape
            s_in, s_out = _singular_values(x), _singular_values(out)
            # Singular vectors are kept; each singular value goes through the scalar map.
            expected = np.sort(_scalar_map(preset, s_in, norm_scale))[::-1]
            np.testing.assert_allclose(s_out, expected, rtol=2e-3, atol=2e-4)
            if preset == "cubic":
                # Cubic NS converges to 1 from below but only x1.5 per step from small values:
                # with 5 steps the top singular values reach ~1, the smallest of a cond-50
                # matrix only ~0.05 (measured: 0.05-0.15 at cond 50, 0.2-0.63 at cond 10).
                assert s_out.max() <= 1.0 + 1e-4
                assert np.all(s_out >= s_in / np.sqrt(np.sum(s_in**2)) - 1e-5)
                if cond >= 10:
                    assert s_out.max() >= 0.98
                assert s_out.min() >= {1.0: 0.7, 10.0: 0.15, 50.0: 0.04}[cond]
            else:
                lo, hi = BANDS[preset]
                assert lo <= s_out.min() and s_out.max() <= hi, (shape, cond)


@pytest.mark.parametrize(
    "path,shape,fan",
    [
        (("attn", "query", "kernel"), (32, 4, 8), (32, 32)),
        (("attn", "out", "kernel"), (4, 8, 32), (32, 32)),
        (("conv", "kernel"), (3, 3, 4, 16), (36, 16)),
    ],
)
def test_kernels_orthogonalized_as_fan_in_by_fan_out(path, shape, fan) -> None:
    keys = tuple(jax.tree_util.DictKey(k) for k in path)
    x = jnp.asarray(RNG.normal(size=shape), jnp.float32)
    tx = scale_by_muon(MuonOptions(nesterov=False, momentum=0.0, ns_steps=5))  # 5: cond ~100
    dims = default_dimension_numbers(keys, x)
    red, out = dims.reduction_axis, dims.output_axis
    # Run through the tree transform with the path preserved.
    params = {path[0]: {path[1]: {path[2]: x}}} if len(path) == 3 else {path[0]: {path[1]: x}}
    upd, _ = tx.update(params, tx.init(params))
    u = jax.tree.leaves(upd)[0]
    mat = np.transpose(np.asarray(u), red + out).reshape(fan)
    s = _singular_values(mat)
    scale = np.sqrt(max(1.0, fan[1] / fan[0]))
    assert 0.5 * scale <= s.min() and s.max() <= 1.5 * scale


def test_near_singular_inputs() -> None:
    """Documents the behaviour on (near-)singular momenta.

    NS maps each singular value through an odd polynomial, so exact zeros stay exactly zero
    (the update keeps the input's rank), tiny ones grow at most by the slope at 0 per step
    (3.4445^5 ~ 490 for quintic) and so stay far below the band, and a zero matrix gives a zero
    update (eps keeps the normalisation finite).
    """
    coeffs = ns_coefficients("quintic", 5)
    rank2 = jnp.asarray(_matrix(16, 2, 1.0) @ _matrix(2, 32, 1.0), jnp.float32)
    s = _singular_values(orthogonalize(rank2, coeffs))
    assert np.all((s[:2] > 0.5) & (s[:2] < 1.5))
    assert np.all(s[2:] < 1e-4)
    x = _matrix(16, 32, 1.0) * np.r_[np.ones(15), 1e-7][:, None]  # one singular value ~1e-7
    s = _singular_values(orthogonalize(jnp.asarray(x, jnp.float32), coeffs))
    assert s.min() < 1e-3 and s[0] > 0.5
    zero = orthogonalize(jnp.zeros((8, 8)), coeffs)
    assert np.all(np.isfinite(zero)) and np.all(zero == 0)


def test_presets_and_steps() -> None:
    assert ns_coefficients("quintic", 5) == ((3.4445, -4.7750, 2.0315),) * 5
    assert ns_coefficients("cubic", 2) == ((1.5, -0.5, 0.0),) * 2
    pe = ns_coefficients("polar_express", 10)
    assert len(pe) == 10 and pe[0][0] == pytest.approx(8.28721201814563 / 1.01)
    assert pe[-1] == (1.875, -1.25, 0.375)
    with pytest.raises(ValueError, match="unknown ns_preset"):
        ns_coefficients("septic", 5)
    with pytest.raises(ValueError, match="ns_steps"):
        ns_coefficients("quintic", 0)


# --- grouping --------------------------------------------------------------------------------


def _transformer_like_tree() -> dict:
    z = np.zeros
    return {
        "params": {
            "cell_embed": {"kernel": z((3, 16)), "bias": z(16)},
            "pos_embedding": z((100, 16)),
            "Embed_0": {"embedding": z((10, 16))},
            "block_0": {
                "ln_attn": {"scale": z(16), "bias": z(16)},
                "attn": {
                    "query": {"kernel": z((16, 4, 4)), "bias": z((4, 4))},
                    "key": {"kernel": z((16, 4, 4)), "bias": z((4, 4))},
                    "value": {"kernel": z((16, 4, 4)), "bias": z((4, 4))},
                    "out": {"kernel": z((4, 4, 16)), "bias": z(16)},
                },
                "mlp_in": {"kernel": z((16, 64)), "bias": z(64)},
            },
            "Conv_0": {"kernel": z((3, 3, 3, 8)), "bias": z(8)},
            "policy_head": {"kernel": z((16, 4)), "bias": z(4)},
            "value_head": {"kernel": z((16, 1)), "bias": z(1)},
            "log_std": z(()),
        }
    }


def test_param_labels_rule() -> None:
    tree = _transformer_like_tree()
    labels = param_labels(tree)["params"]
    attn = labels["block_0"]["attn"]
    assert {attn[m]["kernel"] for m in ("query", "key", "value", "out")} == {"muon"}
    # Attention biases are 2-D (heads, head_dim) but biases: leaves named "bias" go to Adam.
    assert {attn[m]["bias"] for m in ("query", "key", "value", "out")} == {"adam"}
    assert labels["block_0"]["mlp_in"] == {"kernel": "muon", "bias": "adam"}
    assert labels["Conv_0"] == {"kernel": "muon", "bias": "adam"}
    assert labels["cell_embed"]["kernel"] == "adam"  # "embed" in the path
    assert labels["pos_embedding"] == "adam"
    assert labels["Embed_0"]["embedding"] == "adam"
    assert labels["block_0"]["ln_attn"] == {"scale": "adam", "bias": "adam"}
    assert labels["policy_head"]["kernel"] == labels["value_head"]["kernel"] == "muon"
    assert labels["log_std"] == "adam"
    no_heads = param_labels(tree, muon_heads=False)["params"]
    for head in HEAD_MODULES:
        assert no_heads[head] == {"kernel": "adam", "bias": "adam"}
    assert no_heads["block_0"]["mlp_in"]["kernel"] == "muon"


def test_dimension_numbers_for_attention_and_conv() -> None:
    dims = muon_dimension_numbers(_transformer_like_tree())["params"]
    attn = dims["block_0"]["attn"]
    assert attn["query"]["kernel"] == optax.contrib.MuonDimensionNumbers((0,), (1, 2))
    assert attn["out"]["kernel"] == optax.contrib.MuonDimensionNumbers((0, 1), (2,))
    assert dims["Conv_0"]["kernel"] == optax.contrib.MuonDimensionNumbers((0, 1, 2), (3,))
    assert dims["pos_embedding"] is None and dims["Conv_0"]["bias"] is None


def test_label_fn_override() -> None:
    params = {"a": jnp.ones((4, 4)), "b": jnp.ones((4, 4))}
    tx = muon(0.1, label_fn=lambda p: {"a": "muon", "b": "adam"})
    state = tx.init(params)
    assert state.inner_states["adam"].inner_state[0].mu["b"].shape == (4, 4)


def test_scale_by_muon_rejects_vectors_and_muon_sends_them_to_adam() -> None:
    params = {"w": jnp.ones((4, 4)), "b": jnp.ones(4)}
    tx = scale_by_muon()
    with pytest.raises(ValueError, match=r"ndim >= 2; b has shape \(4,\).*optimizers.muon.muon"):
        tx.update(params, tx.init(params))
    tx = muon(0.1)
    state = tx.init(params)
    assert state.inner_states["adam"].inner_state[0].mu["b"].shape == (4,)
    tx.update(params, state, params)


# --- equivalence with optax.contrib.muon -------------------------------------------------------


def _mixed_tree() -> dict:
    f = lambda *s: jnp.asarray(RNG.normal(size=s), jnp.float32)  # noqa: E731
    return {
        "a": {"kernel": f(8, 16), "bias": f(16)},
        "attn": {"query": {"kernel": f(8, 2, 4)}, "out": {"kernel": f(2, 4, 8)}},
        "conv": {"kernel": f(3, 3, 2, 4)},
    }


def _run(tx: optax.GradientTransformation, params: dict, grads: list) -> list:
    state, outs = tx.init(params), []
    update = jax.jit(tx.update)
    for g in grads:
        u, state = update(g, state, params)
        outs.append(u)
    return outs


def _max_diff(a, b) -> float:
    return max(
        float(jnp.max(jnp.abs(x - y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_matches_optax_contrib_muon() -> None:
    """With optax's bias-corrected Nesterov and its NAdam aux (eps 1e-8), updates match to 1e-5
    on 2-D matrices, attention/conv kernels (same dimension numbers) and biases."""
    params = _mixed_tree()
    grads = [
        jax.tree.map(lambda p: jnp.asarray(RNG.normal(size=p.shape), p.dtype), params)
        for _ in range(4)
    ]
    ours = muon(  # optax.contrib.muon runs 5 quintic steps (ours: 3)
        0.02,
        MuonOptions(bias_correction=True, adam_eps=1e-8, adam_nesterov=True, weight_decay=0.01,
                    ns_steps=5),
        adam_learning_rate=1e-3,
    )
    ref = optax.contrib.muon(
        0.02,
        adam_learning_rate=1e-3,
        weight_decay=0.01,
        muon_weight_dimension_numbers=muon_dimension_numbers,
    )
    for u, r in zip(_run(ours, params, grads), _run(ref, params, grads), strict=True):
        assert _max_diff(u, r) < 1e-5


def test_plain_matrices_muon_matches_optax_and_pins_default_difference() -> None:
    """On plain 2-D matrices: ``bias_correction=True`` gives optax.contrib.muon. Our default
    (reference Muon: no bias correction) agrees at step 1, differs in the next few steps
    (different momentum/gradient mixing weights), and converges to optax as beta^t -> 0."""
    params = {"w1": jnp.ones((8, 16)), "w2": jnp.ones((16, 8))}
    grads = [
        jax.tree.map(lambda p: jnp.asarray(RNG.normal(size=p.shape), p.dtype), params)
        for _ in range(3)
    ]
    ref = _run(optax.contrib.muon(0.02), params, grads)
    exact = _run(muon(0.02, MuonOptions(bias_correction=True, ns_steps=5)), params, grads)
    default = _run(muon(0.02, MuonOptions(ns_steps=5)), params, grads)  # optax's 5 steps
    for e, r in zip(exact, ref, strict=True):
        assert _max_diff(e, r) < 1e-5
    assert _max_diff(default[0], ref[0]) < 1e-5
    assert _max_diff(default[1], ref[1]) > 1e-3


# --- step counts, Gram form, batching, precision ---------------------------------------------

# Singular values after k steps, over the shapes above plus the PPO MLP kernels' (CartPole's
# (4, 64) and (64, 2); Snake's (300, 128) and Breakout-MinAtar's (400, 256) at half or quarter
# size, same aspect: numpy's SVD of the full ones takes seconds here), condition numbers
# 1..10 and 1..50 (measured, then widened by ~0.02). Truncated Polar Express (designed for 8
# steps from sigma >= 1e-3) overshoots to ~2 before its 5th step; quintic stays in [0, 1.21].
STEP_BANDS = {
    # (preset, steps): ((lo, hi) for cond <= 10, (lo, hi) for cond <= 50)
    ("quintic", 1): ((0.08, 1.21), (0.02, 1.21)),
    ("quintic", 2): ((0.29, 1.21), (0.07, 1.21)),
    ("quintic", 3): ((0.66, 1.21), (0.25, 1.21)),
    ("quintic", 4): ((0.66, 1.15), (0.66, 1.21)),
    ("quintic", 5): ((0.66, 1.15), (0.66, 1.15)),
    ("polar_express", 2): ((0.18, 1.98), (0.18, 1.98)),
    ("polar_express", 3): ((0.17, 1.88), (0.17, 1.88)),
    ("polar_express", 4): ((0.42, 1.58), (0.42, 1.58)),
    ("polar_express", 5): ((0.85, 1.14), (0.85, 1.14)),
}
SHAPES = [(64, 64), (32, 96), (96, 32), (3, 64), (4, 64), (150, 64), (100, 64), (64, 2)]


@pytest.mark.parametrize("preset,steps", sorted(STEP_BANDS))
def test_singular_value_bands_per_step_count(preset: str, steps: int) -> None:
    norm_scale = 1.01 if preset == "polar_express" else 1.0
    coeffs = ns_coefficients(preset, steps)
    ortho = jax.jit(lambda x: orthogonalize(x, coeffs, norm_scale=norm_scale))
    for cond, (lo, hi) in zip((10.0, 50.0), STEP_BANDS[preset, steps], strict=True):
        s_all = []
        for shape in SHAPES:
            for c in (1.0, cond):
                s_all.append(_singular_values(ortho(jnp.asarray(_matrix(*shape, c), jnp.float32))))
        s = np.concatenate(s_all)
        assert lo <= s.min() and s.max() <= hi, (preset, steps, cond, s.min(), s.max())


def test_default_step_count_has_a_band() -> None:
    """The default preset/steps is one of the measured rows above (so its band is pinned)."""
    assert (defaults.NS_PRESET, defaults.NS_STEPS) in STEP_BANDS


def test_ns_flops_gram_cheaper_beyond_aspect_1_5() -> None:
    q5, q2 = ns_coefficients("quintic", 5), ns_coefficients("quintic", 2)
    for coeffs in (q5, q2):
        assert ns_flops(64, 64, coeffs, "gram") > ns_flops(64, 64, coeffs)
        assert ns_flops(128, 300, coeffs, "gram") < ns_flops(128, 300, coeffs)
        assert ns_flops(100, 140, coeffs, "gram") > ns_flops(100, 140, coeffs)  # aspect 1.4
    assert ns_flops(64, 64, q5) == 5 * 3 * 64**3
    assert ns_flops(4, 64, q5, "gram") == 2 * 16 * 64 + (5 + 4 + 2 * 4) * 64


@pytest.mark.parametrize("preset,steps", [("quintic", 5), ("quintic", 2), ("polar_express", 5),
                                          ("cubic", 4)])
def test_gram_form_matches_standard(preset: str, steps: int) -> None:
    coeffs = ns_coefficients(preset, steps)
    for shape in [(4, 64), (16, 96), (96, 16), (64, 150), (64, 64), (3, 5, 40)]:
        for cond in (1.0, 50.0):
            x = np.stack([_matrix(*shape[-2:], cond) for _ in range(shape[0])]) if len(
                shape) == 3 else _matrix(*shape, cond)
            x = jnp.asarray(x, jnp.float32)
            std = orthogonalize(x, coeffs, form="standard")
            gram = orthogonalize(x, coeffs, form="gram")
            np.testing.assert_allclose(gram, std, atol=5e-5, rtol=0)
    # Near-singular momenta (rank 2 plus a 1e-7 direction, as PPO's are): same result.
    x = _matrix(16, 48, 1.0) * np.r_[np.ones(2), 1e-7 * np.ones(14)][:, None]
    x = jnp.asarray(x, jnp.float32)
    np.testing.assert_allclose(orthogonalize(x, coeffs, form="gram"),
                               orthogonalize(x, coeffs, form="standard"), atol=2e-5, rtol=0)


def test_auto_form_picks_the_cheaper() -> None:
    coeffs = ns_coefficients("quintic", 5)
    wide = jnp.asarray(_matrix(64, 150, 10.0), jnp.float32)
    square = jnp.asarray(_matrix(64, 64, 10.0), jnp.float32)
    assert np.array_equal(orthogonalize(wide, coeffs, form="auto"),
                          orthogonalize(wide, coeffs, form="gram"))
    assert np.array_equal(orthogonalize(square, coeffs, form="auto"),
                          orthogonalize(square, coeffs, form="standard"))
    # bfloat16 never uses the Gram form.
    assert np.array_equal(orthogonalize(wide, coeffs, form="auto", dtype=jnp.bfloat16),
                          orthogonalize(wide, coeffs, form="standard", dtype=jnp.bfloat16))
    with pytest.raises(ValueError, match="form"):
        orthogonalize(wide, coeffs, form="cholesky")


def test_plan_batches() -> None:
    q5 = ns_coefficients("quintic", 5)
    # CartPole's Muon matrices, wide: actor_0, actor_1, critic_0, critic_1, policy/value heads.
    cartpole = [(4, 64), (64, 64), (4, 64), (64, 64), (2, 64), (1, 64)]
    # On CPU the heads join the (4, 64) first layers (padding is cheaper than their own calls);
    # the (64, 64) pair stays apart (padding the (4, 64)s to it would double the work).
    assert plan_batches(cartpole, q5, "auto", "cpu") == [((4, 64), [0, 2, 4, 5]),
                                                         ((64, 64), [1, 3])]
    assert plan_batches(cartpole, q5, "auto", "gpu") == [((64, 64), [0, 1, 2, 3, 4, 5])]
    assert plan_batches(cartpole, q5, "padded", "cpu") == [((64, 64), [0, 1, 2, 3, 4, 5])]
    assert plan_batches(cartpole, q5, "shape", "cpu") == [
        ((4, 64), [0, 2]), ((64, 64), [1, 3]), ((2, 64), [4]), ((1, 64), [5])]
    assert plan_batches(cartpole, q5, "leaf", "cpu") == [(s, [i]) for i, s in enumerate(cartpole)]
    # Large matrices are never stacked on CPU; groups of different dtypes never merge.
    big = [(128, 512)] * 8
    assert plan_batches(big, q5, "auto", "cpu") == [((128, 512), [i]) for i in range(8)]
    assert plan_batches(big, q5, "auto", "gpu") == [((128, 512), list(range(8)))]
    assert len(plan_batches(cartpole, q5, "auto", "gpu", keys=["f32"] * 3 + ["bf16"] * 3)) == 2
    with pytest.raises(ValueError, match="ns_batching"):
        plan_batches(cartpole, q5, "diagonal", "cpu")


def _reference_muon_update(tree: dict, coeffs, norm_scale: float = 1.0) -> dict:
    """The previous implementation's maths, leaf by leaf: (fan_in, fan_out) view, wide
    orientation, standard Newton-Schulz, shape scale (no momentum: ``momentum=0``; no
    learning rate)."""

    def one(path, x):
        dims = default_dimension_numbers(path, x)
        red, out = tuple(dims.reduction_axis), tuple(dims.output_axis)
        fan_in = int(np.prod([x.shape[a] for a in red]))
        fan_out = int(np.prod([x.shape[a] for a in out]))
        mat = jnp.transpose(x, red + out).reshape(fan_in, fan_out)
        o = orthogonalize(mat, coeffs, norm_scale=norm_scale, form="standard")
        o = o * np.sqrt(max(1.0, fan_out / fan_in))
        inv = np.argsort(red + out)
        return jnp.transpose(o.reshape([x.shape[a] for a in red + out]), inv)

    return jax.tree_util.tree_map_with_path(one, tree)


def _cartpole_like_tree() -> dict:
    f = lambda *s: jnp.asarray(RNG.normal(size=s), jnp.float32)  # noqa: E731
    return {
        "actor_0": {"kernel": f(4, 64)}, "actor_1": {"kernel": f(64, 64)},
        "critic_0": {"kernel": f(4, 64)}, "critic_1": {"kernel": f(64, 64)},
        "policy_head": {"kernel": f(64, 2)}, "value_head": {"kernel": f(64, 1)},
        "first": {"kernel": f(150, 64)}, "conv": {"kernel": f(3, 3, 4, 16)},
        "attn": {"query": {"kernel": f(16, 2, 8)}, "out": {"kernel": f(2, 8, 16)}},
    }


@pytest.mark.parametrize(
    "batching,form",
    [("auto", "auto"), ("shape", "auto"), ("padded", "auto"), ("leaf", "auto"),
     ("auto", "standard"), ("padded", "gram")],
)
def test_batched_and_padded_equal_per_leaf_reference(batching: str, form: str) -> None:
    tree = _cartpole_like_tree()
    for preset, steps in [("quintic", 5), ("quintic", 2), ("polar_express", 3)]:
        coeffs = ns_coefficients(preset, steps)
        norm_scale = 1.01 if preset == "polar_express" else 1.0
        options = MuonOptions(momentum=0.0, nesterov=False, ns_preset=preset, ns_steps=steps)
        tx = _scale_by_muon(options, form=form, batching=batching)  # the internal speed knobs
        upd, _ = jax.jit(tx.update)(tree, tx.init(tree))
        ref = jax.jit(lambda t, c=coeffs, n=norm_scale: _reference_muon_update(t, c, n))(tree)
        # Forcing the Gram form on square matrices (random ones have tiny singular values)
        # rounds differently: ~5e-5 on updates of size ~1; everything else agrees to 2e-5.
        tol = 1e-4 if form == "gram" else 2e-5
        assert _max_diff(upd, ref) < tol, (batching, form, preset, steps)


def test_bfloat16_newton_schulz_on_cpu() -> None:
    """The accelerator default (bfloat16 iteration) also runs on CPU: float32 in and out,
    singular values in a band ~0.05 wider than float32's, updates within ~8% (relative
    Frobenius norm) of float32's."""
    coeffs = ns_coefficients("quintic", 5)
    for shape in [(64, 64), (4, 64), (150, 64)]:
        x = jnp.asarray(_matrix(*shape, 10.0), jnp.float32)
        out = orthogonalize(x, coeffs, dtype=jnp.bfloat16)
        assert out.dtype == jnp.float32
        s = _singular_values(out)
        assert 0.6 <= s.min() and s.max() <= 1.26, (shape, s.min(), s.max())
        # elementwise: measured up to 0.04 over 8 random draws of these shapes (bfloat16 keeps
        # ~3 significant digits through 5 steps)
        np.testing.assert_allclose(out, orthogonalize(x, coeffs), atol=5e-2)
    tree = _cartpole_like_tree()
    grads = jax.tree.map(lambda p: 0.01 * p, tree)
    f32 = scale_by_muon(MuonOptions(ns_dtype="float32"))
    b16 = scale_by_muon(MuonOptions(ns_dtype="bfloat16"))
    auto = scale_by_muon()  # auto: float32 on CPU
    u32, _ = f32.update(grads, f32.init(tree))
    u16, _ = b16.update(grads, b16.init(tree))
    ua, _ = auto.update(grads, auto.init(tree))
    assert jax.default_backend() != "cpu" or _max_diff(ua, u32) == 0.0
    for a, b in zip(jax.tree.leaves(u16), jax.tree.leaves(u32), strict=True):
        rel = float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))
        assert 0.0 < rel < 0.15, rel  # measured up to ~0.08 (the smallest directions)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(u16))
    with pytest.raises(ValueError, match="ns_dtype"):
        MuonOptions(ns_dtype="float8")
