r"""Newton-Schulz orthogonalization: the polynomial presets, the iteration and its batching.

Muon (:mod:`optimizers.muon`) steps along an approximation of the orthogonal polar factor of
each weight's momentum. This module computes that approximation for plain ``(m, n)`` matrices,
knowing nothing about parameter trees or optax: :math:`\mathrm{NS}_k` is :math:`k` odd-polynomial
steps :math:`X \leftarrow a X + b (X X^\top) X + c (X X^\top)^2 X` after Frobenius normalisation
(:func:`orthogonalize`), with per-step ``(a, b, c)`` from a preset (:func:`ns_coefficients`).

Where it departs from ``optax.contrib`` (which orthogonalizes leaf by leaf, one ``vmap`` per
leaf), and why: the wide ``(m, n)`` matrices are orthogonalized in few batched calls
(:func:`plan_batches`: one per shape, merged by zero-padding where that saves work), through the
Gram form where ``n > 1.5 m`` (:func:`ns_flops`), in bfloat16 on accelerators
(:func:`resolve_dtype`); docs/speed.md has the measurements.

The public maths is in ``__all__``. How the work is split into calls (``form``/``batching``:
``plan_batches``, ``orthogonalize_batched``) is internal: every choice computes the same
polynomials, only the cost and the rounding differ, and the defaults are the measured best.

References:
  Jordan et al., `Muon: An optimizer for hidden layers in neural networks
  <https://kellerjordan.github.io/posts/muon/>`_, 2024 (and github.com/KellerJordan/Muon).

  Amsel et al., `The Polar Express: Optimal Matrix Sign Methods and Their Application to the
  Muon Algorithm <https://arxiv.org/abs/2505.16932>`_, 2025.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from optimizers.defaults import NS_DTYPES, NS_EPS, NS_PRESET, NS_PRESETS, NS_STEPS

__all__ = ["NORM_SCALE", "Coeffs", "ns_coefficients", "ns_flops", "orthogonalize", "resolve_dtype"]

_CUBIC = (1.5, -0.5, 0.0)
# Reference Muon (KellerJordan/Muon, modded-nanogpt): slope 3.4445 at 0, converges to a band
# around 1 (about [0.7, 1.2]) rather than to 1 itself.
_QUINTIC = (3.4445, -4.7750, 2.0315)
# Polar Express, degree 5, lower bound l = 1e-3: Amsel et al. 2025 (arXiv:2505.16932),
# Algorithm 1. The first seven polynomials are divided by the safety factor 1.01 (a / 1.01,
# b / 1.01^3, c / 1.01^5) as in the paper; steps beyond eight repeat the last polynomial.
_POLAR_EXPRESS_RAW = (
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
    (1.875, -1.25, 0.375),
)
_POLAR_EXPRESS = tuple(
    (a / 1.01, b / 1.01**3, c / 1.01**5) for a, b, c in _POLAR_EXPRESS_RAW[:-1]
) + (_POLAR_EXPRESS_RAW[-1],)
# The paper also normalises by 1.01 * ||X||_F so that round-off cannot push a singular value
# above 1, where its polynomials are not designed to work.
NORM_SCALE = {"cubic": 1.0, "quintic": 1.0, "polar_express": 1.01}

_CPU_MAX_STACK_ELEMENTS = 32768
# Fixed cost of one batched Newton-Schulz step (about 4 thunks / kernels), in multiply-adds:
# XLA:CPU dispatches a thunk in ~1.3 us (measured here: 5 quintic steps on a (2, 4, 64) batch,
# ~40 kernels' worth of work, take ~38 us) and runs small matmuls at ~37 G multiply-adds/s;
# the accelerator value (a few kernel launches of ~5 us at tens of T multiply-adds/s) is an
# estimate, not measured.
_CALL_OVERHEAD_MACS = {"cpu": 2e5, "accelerator": 1e9}
# The Gram form is used when it needs fewer multiply-adds: its m x m products also run faster
# per multiply-add on XLA:CPU than the (m, n) ones (measured: (256, 400), equal counts, 0.82x
# the time; (128, 300) 0.71x; (128, 512) 0.38x), which covers its extra thunk per step.
_GRAM_MARGIN = 1.0
# Internal speed knobs and their measured defaults (docs/speed.md): ``auto`` uses the Gram form
# where it needs fewer multiply-adds (float32 only), and merges calls of different shapes by
# zero-padding where that saves work.
_FORM = "auto"
_BATCHINGS = ("auto", "shape", "padded", "leaf")
_BATCHING = "auto"

Coeffs = tuple[tuple[float, float, float], ...]


def ns_coefficients(preset: str = NS_PRESET, steps: int = NS_STEPS) -> Coeffs:
    """Per-step ``(a, b, c)`` of ``X <- a X + b (X X^T) X + c (X X^T)^2 X`` for a preset.

    ``cubic``: ``(1.5, -0.5, 0)``, the classical Newton-Schulz step; converges to 1 but slowly
    from small singular values (x1.5 per step). ``quintic``: the reference Muon polynomial
    ``(3.4445, -4.7750, 2.0315)``. ``polar_express``: the per-step optimal polynomials of
    Amsel et al. 2025.
    """
    if preset not in NS_PRESETS:
        raise ValueError(f"unknown ns_preset {preset!r}; choose one of {', '.join(NS_PRESETS)}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"ns_steps must be a positive int, got {steps!r}")
    if preset == "cubic":
        return (_CUBIC,) * steps
    if preset == "quintic":
        return (_QUINTIC,) * steps
    return _POLAR_EXPRESS[:steps] + (_POLAR_EXPRESS[-1],) * max(0, steps - len(_POLAR_EXPRESS))


def resolve_dtype(ns_dtype: Any) -> Any:
    """``None``/``"auto"``: bfloat16 on accelerators (as the reference Muon), float32 on CPU
    (XLA:CPU has no fast bfloat16 matmul: measured 1.2-2x slower than float32 here)."""
    check_dtype(ns_dtype)
    if ns_dtype is None or ns_dtype == "auto":
        return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
    return jnp.dtype(ns_dtype)


def check_dtype(ns_dtype: Any) -> None:
    """``ValueError`` unless ``ns_dtype`` is ``None``, one of ``NS_DTYPES`` or a dtype."""
    if ns_dtype is not None and ns_dtype not in NS_DTYPES:
        if not isinstance(ns_dtype, type | jnp.dtype):
            raise ValueError(f"ns_dtype must be one of {', '.join(NS_DTYPES)}, got {ns_dtype!r}")


def ns_flops(m: int, n: int, coeffs: Coeffs, form: str = "standard") -> int:
    """Multiply-adds of one Newton-Schulz call on a wide ``(m, n)`` matrix (``m <= n``).

    ``standard``: per step ``X X^T`` (m^2 n), ``(X X^T)^2`` (m^3, skipped when ``c == 0``) and the
    product with ``X`` (m^2 n). ``gram``: ``A = X X^T`` and the final ``Q X`` (m^2 n each), and per
    step only ``m x m`` products (see :func:`orthogonalize`).
    """
    m, n = min(m, n), max(m, n)
    if form == "standard":
        return sum(2 * m * m * n + (m**3 if c else 0) for _, _, c in coeffs)
    total = 2 * m * m * n
    for i, (_, _, c) in enumerate(coeffs):
        total += (m**3 if c else 0) + (m**3 if i else 0)  # G^2, then Q <- P Q (not at step 1)
        if i < len(coeffs) - 1:
            total += 2 * m**3  # G <- P (P G)
    return total


def _ns_standard(x: jax.Array, coeffs: Coeffs) -> jax.Array:
    for a, b, c in coeffs:
        gram = x @ jnp.swapaxes(x, -1, -2)
        poly = b * gram + c * (gram @ gram) if c != 0.0 else b * gram
        x = a * x + poly @ x
    return x


def _ns_gram(x: jax.Array, coeffs: Coeffs) -> jax.Array:
    r"""The same polynomials applied through the small Gram matrix only.

    With :math:`X_k = Q_k X_0` and every matrix a polynomial in :math:`A = X_0 X_0^\top`
    (so they commute): :math:`G_k = X_k X_k^\top = Q_k^2 A`, :math:`P_k = aI + bG_k + cG_k^2`,
    :math:`Q_{k+1} = P_k Q_k`, :math:`G_{k+1} = P_k^2 G_k`; the result is :math:`Q_K X_0`. Every
    step costs ``m x m`` products only, which is cheaper than the standard step when
    ``n > 1.5 m`` (:func:`ns_flops`). Float32 only: in bfloat16 the commuting identities drift.
    """
    eye = jnp.eye(x.shape[-2], dtype=x.dtype)
    g = x @ jnp.swapaxes(x, -1, -2)
    q = None
    for i, (a, b, c) in enumerate(coeffs):
        p = a * eye + b * g + (c * (g @ g) if c != 0.0 else 0.0)
        q = p if q is None else p @ q
        if i < len(coeffs) - 1:
            g = p @ (p @ g)
    return x if q is None else q @ x


def orthogonalize(
    x: jax.Array,
    coeffs: Coeffs,
    *,
    eps: float = NS_EPS,
    norm_scale: float = 1.0,
    dtype: Any = None,
    form: str = "standard",
) -> jax.Array:
    r"""Approximate the orthogonal polar factor of each matrix in ``x`` (shape ``(..., m, n)``).

    Works on the wide orientation (tall matrices are transposed so that :math:`X X^\top` is the
    small Gram matrix), normalises :math:`X / (s \|X\|_F + \epsilon)` so that every singular
    value lies in [0, 1], then applies the odd polynomials in ``coeffs``; leading axes are a
    batch. The singular vectors are kept; each singular value :math:`\sigma` becomes
    :math:`p_k(\dots p_1(\sigma))`. ``dtype``: the iteration's dtype (``None``: ``x``'s; the
    norm is taken in ``x``'s dtype and the result is cast back). ``form``: ``standard``,
    ``gram`` (:func:`_ns_gram`, the same maths through ``m x m`` products) or ``auto`` (the one
    with fewer multiply-adds, :func:`ns_flops`; ``gram`` only in float32).
    """
    out_dtype = x.dtype
    transposed = x.shape[-2] > x.shape[-1]
    if transposed:
        x = jnp.swapaxes(x, -1, -2)
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=(-2, -1), keepdims=True))
    x = x / (norm * norm_scale + eps)
    if dtype is not None:
        x = x.astype(dtype)
    if form == "auto":
        m, n = x.shape[-2:]
        cheaper = ns_flops(m, n, coeffs, "gram") < _GRAM_MARGIN * ns_flops(m, n, coeffs)
        form = "gram" if cheaper and x.dtype == jnp.float32 else "standard"
    if form == "gram":
        x = _ns_gram(x, coeffs)
    elif form == "standard":
        x = _ns_standard(x, coeffs)
    else:
        raise ValueError(f"form must be 'standard', 'gram' or 'auto', got {form!r}")
    if transposed:
        x = jnp.swapaxes(x, -1, -2)
    return x.astype(out_dtype)


def _pad_to(x: jax.Array, rows: int, cols: int) -> jax.Array:
    if x.shape == (rows, cols):
        return x
    return jnp.pad(x, ((0, rows - x.shape[0]), (0, cols - x.shape[1])))


_Group = tuple[tuple[int, int], list[int], Any]  # (padded shape, indices, key)


def plan_batches(
    shapes: Sequence[tuple[int, int]],
    coeffs: Coeffs,
    batching: str = _BATCHING,
    backend: str | None = None,
    keys: Sequence[Any] | None = None,
) -> list[tuple[tuple[int, int], list[int]]]:
    """Which wide ``(m, n)`` matrices are orthogonalized together: ``[(padded shape, indices)]``.

    ``leaf``: one call each. ``shape``: one call per distinct shape. ``padded``: one call for
    all (per ``keys`` value, e.g. dtype), each matrix zero-padded to the largest ``m`` and ``n``
    (zero rows and columns stay zero and leave the other singular values unchanged, so the
    result is the same). ``auto``: start from ``shape`` and merge two groups by padding while
    that saves work (:func:`_merge_while_cheaper`). On CPU, groups of large matrices are not
    stacked at all (XLA:CPU ran them slower batched than one by one).
    """
    if batching not in _BATCHINGS:
        raise ValueError(f"ns_batching must be one of {', '.join(_BATCHINGS)}, got {batching!r}")
    if batching == "leaf":
        return [(tuple(s), [i]) for i, s in enumerate(shapes)]
    backend = backend or jax.default_backend()
    plan = _group(shapes, [None] * len(shapes) if keys is None else keys, batching != "padded")
    if batching == "auto":
        plan = _merge_while_cheaper(
            _unstack_large(plan) if backend == "cpu" else plan, coeffs, backend == "cpu"
        )
    return [(shape, idxs) for shape, idxs, _ in plan]


def _group(shapes: Sequence[tuple[int, int]], keys: Sequence[Any], by_shape: bool) -> list[_Group]:
    """One group per key (and per shape if ``by_shape``), padded to its largest ``m`` and ``n``."""
    groups: dict[Any, list[int]] = {}
    for i, (s, k) in enumerate(zip(shapes, keys, strict=True)):
        groups.setdefault((k, tuple(s)) if by_shape else (k,), []).append(i)
    return [
        (tuple(max(shapes[i][d] for i in idxs) for d in (0, 1)), idxs, key[0])
        for key, idxs in groups.items()
    ]


def _unstack_large(plan: list[_Group]) -> list[_Group]:
    """Large same-shape matrices one call each (measured faster on XLA:CPU)."""
    return [
        p
        for shape, idxs, k in plan
        for p in (
            [(shape, [i], k) for i in idxs]
            if math.prod(shape) > _CPU_MAX_STACK_ELEMENTS
            else [(shape, idxs, k)]
        )
    ]


def _merge_while_cheaper(plan: list[_Group], coeffs: Coeffs, cpu: bool) -> list[_Group]:
    """Merge the two groups whose merge saves the most while one saves anything.

    A call costs its multiply-adds plus a fixed overhead per Newton-Schulz step
    (``_CALL_OVERHEAD_MACS``: about one thunk dispatch on XLA:CPU, a few kernel launches on an
    accelerator); groups of different keys never merge, nor on CPU into a large matrix.
    """
    overhead = _CALL_OVERHEAD_MACS["cpu" if cpu else "accelerator"] * len(coeffs)

    def cost(shape: tuple[int, int], n: int) -> float:
        return n * ns_flops(*shape, coeffs) + overhead

    def saving(a: _Group, b: _Group) -> tuple[float, tuple[int, int]]:
        (shape_a, idx_a, key_a), (shape_b, idx_b, key_b) = a, b
        merged = (max(shape_a[0], shape_b[0]), max(shape_a[1], shape_b[1]))
        if key_a != key_b or (cpu and math.prod(merged) > _CPU_MAX_STACK_ELEMENTS):
            return 0.0, merged
        apart = cost(shape_a, len(idx_a)) + cost(shape_b, len(idx_b))
        return apart - cost(merged, len(idx_a) + len(idx_b)), merged

    while True:
        best, best_saving = None, 0.0
        for a in range(len(plan)):
            for b in range(a + 1, len(plan)):
                value, merged = saving(plan[a], plan[b])
                if value > best_saving:
                    best, best_saving = (a, b, merged), value
        if best is None:
            return plan
        a, b, merged = best
        plan[a] = (merged, sorted(plan[a][1] + plan[b][1]), plan[a][2])
        del plan[b]


def orthogonalize_batched(
    mats: Sequence[jax.Array],
    coeffs: Coeffs,
    *,
    eps: float = NS_EPS,
    norm_scale: float = 1.0,
    dtype: Any = None,
    form: str = _FORM,
    batching: str = _BATCHING,
) -> list[jax.Array]:
    """:func:`orthogonalize` each wide 2-D matrix, in the batched calls :func:`plan_batches` picks.

    Matrices of one call are zero-padded to a common shape and stacked; the results are cut
    back to each input's shape, in the input order.
    """
    plan = plan_batches(
        [m.shape for m in mats], coeffs, batching, keys=[m.dtype for m in mats]
    )
    result: list[Any] = [None] * len(mats)
    for (rows, cols), idxs in plan:
        stacked = jnp.stack([_pad_to(mats[i], rows, cols) for i in idxs])
        ortho = orthogonalize(
            stacked, coeffs, eps=eps, norm_scale=norm_scale, dtype=dtype, form=form
        )
        for j, i in enumerate(idxs):
            result[i] = ortho[j, : mats[i].shape[0], : mats[i].shape[1]]
    return result
