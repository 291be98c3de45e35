r"""Muon: momentum orthogonalized by Newton-Schulz, with Adam for the non-matrix parameters.

For a weight :math:`W` viewed as a ``(fan_in, fan_out)`` matrix, Muon keeps a momentum
:math:`M_t = \beta M_{t-1} + (1-\beta) G_t`, takes the Nesterov look-ahead
:math:`U_t = \beta M_t + (1-\beta) G_t` (or :math:`U_t = M_t`), and steps along an
approximation of its orthogonal polar factor:

.. math::
  W \leftarrow W - \eta \, s(W) \, \mathrm{NS}_k(U_t) - \eta \lambda W,
  \qquad s(W) = \sqrt{\max(1, \mathrm{fan\_out} / \mathrm{fan\_in})}

where :math:`\mathrm{NS}_k` is :math:`k` odd-polynomial Newton-Schulz steps
:math:`X \leftarrow a X + b (X X^\top) X + c (X X^\top)^2 X` after Frobenius normalisation
(see :func:`orthogonalize`). Everything else (biases, norm scales, embeddings) uses Adam.

What we build on optax, and what we write by hand (and why):

* ``optax.partition``, ``chain``, ``clip_by_global_norm``, ``adamw``, ``add_decayed_weights``,
  ``scale_by_learning_rate`` and schedules are used as they are.
* :func:`scale_by_muon` is ours: ``optax.contrib.scale_by_muon`` orthogonalizes leaf by leaf
  (one ``vmap`` per leaf). Here the wide ``(m, n)`` matrices are orthogonalized in few batched
  calls (:func:`plan_batches`: one per shape, merged by zero-padding where that saves work),
  through the Gram form where ``n > 1.5 m`` (:func:`ns_flops`), in bfloat16 on accelerators;
  docs/speed.md has the measurements. It also picks the ``(fan_in, fan_out)`` view of 3-D/4-D
  kernels from the parameter path (attention query/key/value vs. out, conv), and offers
  per-step presets.
* The reshape convention is ``optax.contrib.MuonDimensionNumbers`` (reduction axes = fan-in,
  output axes = fan-out), so :func:`muon_dimension_numbers` can configure
  ``optax.contrib.muon`` to orthogonalize exactly the same matrices (tests, benchmark).

References:
  Jordan et al., `Muon: An optimizer for hidden layers in neural networks
  <https://kellerjordan.github.io/posts/muon/>`_, 2024 (and github.com/KellerJordan/Muon).

  Amsel et al., `The Polar Express: Optimal Matrix Sign Methods and Their Application to the
  Muon Algorithm <https://arxiv.org/abs/2505.16932>`_, 2025.

  Liu et al., `Muon is Scalable for LLM Training <https://arxiv.org/abs/2502.16982>`_, 2025
  (the ``consistent_rms`` scaling).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax.contrib import MuonDimensionNumbers

from optimizers.defaults import (
    ADAM_B1,
    ADAM_B2,
    ADAM_EPS,
    MUON_HEADS,
    MUON_MOMENTUM,
    MUON_NESTEROV,
    MUON_WEIGHT_DECAY,
    NS_BATCHING,
    NS_BATCHINGS,
    NS_DTYPES,
    NS_EPS,
    NS_FORM,
    NS_FORMS,
    NS_PRESET,
    NS_PRESETS,
    NS_STEPS,
)

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
_NORM_SCALE = {"cubic": 1.0, "quintic": 1.0, "polar_express": 1.01}

HEAD_MODULES = ("policy_head", "value_head")
_NEVER_MUON = ("bias", "scale")
_FANOUT_FIRST_MODULES = ("query", "key", "value")

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

Coeffs = tuple[tuple[float, float, float], ...]
PathDimNums = Callable[[tuple[Any, ...], jax.Array], MuonDimensionNumbers]


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


def _resolve_dtype(ns_dtype: Any) -> Any:
    """``None``/``"auto"``: bfloat16 on accelerators (as the reference Muon), float32 on CPU
    (XLA:CPU has no fast bfloat16 matmul: measured 1.2-2x slower than float32 here)."""
    if ns_dtype is None or ns_dtype == "auto":
        return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
    if ns_dtype not in NS_DTYPES[1:] and not isinstance(ns_dtype, type | jnp.dtype):
        raise ValueError(f"ns_dtype must be one of {', '.join(NS_DTYPES)}, got {ns_dtype!r}")
    return jnp.dtype(ns_dtype)


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


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def path_names(path: Sequence[Any]) -> tuple[str, ...]:
    """The names along a ``jax.tree_util`` key path (``('params', 'Dense_0', 'kernel')``)."""
    return tuple(_key_name(k) for k in path)


def default_dimension_numbers(path: Sequence[Any], x: Any) -> MuonDimensionNumbers:
    """The ``(fan_in, fan_out)`` view of a kernel with ndim >= 2, from its path and shape.

    * 2-D ``(in, out)``: as is (Dense).
    * 3-D+ under a module named ``query``, ``key`` or ``value`` (flax attention
      ``DenseGeneral``, kernel ``(d, heads, head_dim)``): fan-in is axis 0, the rest fan-out.
    * otherwise all axes but the last are fan-in, the last is fan-out: attention ``out``
      ``(heads, head_dim, d)``, conv ``(kh, kw, cin, cout)``, ``DenseGeneral`` over trailing axes.
    """
    ndim = len(x.shape)
    names = path_names(path)
    module = names[-2].lower() if len(names) >= 2 else ""
    if ndim >= 3 and module in _FANOUT_FIRST_MODULES:
        return MuonDimensionNumbers(reduction_axis=(0,), output_axis=tuple(range(1, ndim)))
    return MuonDimensionNumbers(reduction_axis=tuple(range(ndim - 1)), output_axis=(ndim - 1,))


def param_labels(params: Any, *, muon_heads: bool = MUON_HEADS) -> Any:
    """Label each leaf ``"muon"`` or ``"adam"`` (the grouping rule of docs/optimizers.md).

    ndim >= 2 -> ``"muon"``, except leaves named ``bias`` or ``scale`` (flax attention biases
    are ``(heads, head_dim)``) and paths containing ``embed`` (case-insensitive: embeddings
    are lookups, not linear maps) -> ``"adam"``; with ``muon_heads=False``, leaves under a
    module named ``policy_head`` / ``value_head`` -> ``"adam"`` (as the reference Muon
    recommends for output layers). 1-D and scalar leaves -> ``"adam"``.
    """

    def label(path: Any, x: Any) -> str:
        names = path_names(path)
        if len(getattr(x, "shape", ())) < 2 or (names and names[-1] in _NEVER_MUON):
            return "adam"
        if any("embed" in n.lower() for n in names):
            return "adam"
        if not muon_heads and any(n in HEAD_MODULES for n in names):
            return "adam"
        return "muon"

    return jax.tree_util.tree_map_with_path(label, params)


def muon_dimension_numbers(
    params: Any,
    *,
    muon_heads: bool = MUON_HEADS,
    label_fn: Callable[[Any], Any] | None = None,
) -> Any:
    """A tree of ``MuonDimensionNumbers`` (Muon leaves) or ``None`` (Adam leaves).

    Pass it as ``optax.contrib.muon(muon_weight_dimension_numbers=...)`` to make optax
    orthogonalize exactly the matrices our :func:`multi_transform_with_muon` does.
    """
    labels = label_fn(params) if label_fn else param_labels(params, muon_heads=muon_heads)
    return jax.tree_util.tree_map_with_path(
        lambda path, x, lab: default_dimension_numbers(path, x) if lab == "muon" else None,
        params,
        labels,
    )


def _axes(dn: MuonDimensionNumbers, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    def norm(axes: int | Sequence[int]) -> tuple[int, ...]:
        return tuple(a % ndim for a in ((axes,) if isinstance(axes, int) else axes))

    red, out = norm(dn.reduction_axis), norm(dn.output_axis)
    if sorted(red + out) != list(range(ndim)):
        raise ValueError(
            f"Muon dimension numbers {dn} must split all {ndim} axes into fan-in and fan-out"
        )
    return red, out


class MuonState(NamedTuple):
    """State of :func:`scale_by_muon`."""

    count: jax.Array  # int32 scalar, steps taken
    mu: optax.Updates  # momentum, an EMA of the gradients


def scale_by_muon(
    *,
    ns_preset: str = NS_PRESET,
    ns_steps: int = NS_STEPS,
    ns_coeffs: Coeffs | None = None,
    momentum: float = MUON_MOMENTUM,
    nesterov: bool = MUON_NESTEROV,
    bias_correction: bool = False,
    eps: float = NS_EPS,
    consistent_rms: float | None = None,
    dimension_numbers: PathDimNums | None = None,
    ns_dtype: Any = None,
    ns_form: str = NS_FORM,
    ns_batching: str = NS_BATCHING,
) -> optax.GradientTransformation:
    r"""Momentum, batched Newton-Schulz orthogonalization and shape scaling (no learning rate).

    Every leaf must have ndim >= 2 (``optax.MaskedNode`` leaves from ``partition`` are skipped).
    Leaves are viewed as ``(fan_in, fan_out)`` matrices via ``dimension_numbers(path, leaf)``
    (default :func:`default_dimension_numbers`), turned to the wide orientation, grouped by
    shape, and each group is orthogonalized in one batched call.

    Args:
      ns_preset: ``cubic``, ``quintic`` or ``polar_express`` (see :func:`ns_coefficients`).
      ns_steps: Newton-Schulz steps.
      ns_coeffs: explicit per-step ``(a, b, c)``; overrides the preset.
      momentum: :math:`\beta` of the gradient EMA.
      nesterov: orthogonalize :math:`\beta M_t + (1-\beta) G_t` instead of :math:`M_t`.
      bias_correction: divide :math:`M_t` by :math:`1-\beta^{t+1}` and :math:`G_t` by
        :math:`1-\beta^t` in the Nesterov mix (optax.contrib's formula). Off by default as in
        the reference Muon; it only changes the first few steps' mixing weights, since NS is
        scale-invariant.
      eps: added to the Frobenius norm before dividing.
      consistent_rms: ``None`` scales by :math:`\sqrt{\max(1, \text{fan\_out}/\text{fan\_in})}`
        (reference Muon, optax default); a float ``r`` scales by
        :math:`r \sqrt{\max(\text{fan\_in}, \text{fan\_out})}`, which makes the update RMS
        about ``r`` for every shape (Liu et al. 2025 use 0.2 to match AdamW).
      dimension_numbers: ``(path, leaf) -> MuonDimensionNumbers``.
      ns_dtype: dtype of the Newton-Schulz iteration: ``None``/``"auto"`` is bfloat16 on
        accelerators (as the reference Muon) and float32 on CPU (XLA:CPU has no fast bfloat16
        matmul), or ``"float32"`` / ``"bfloat16"``. Momentum and updates stay in the
        parameters' dtype.
      ns_form: ``standard``, ``gram`` or ``auto`` (see :func:`orthogonalize`).
      ns_batching: ``auto``, ``shape``, ``padded`` or ``leaf`` (see :func:`plan_batches`);
        every choice gives the same result up to float rounding.
    """
    coeffs = (
        tuple(map(tuple, ns_coeffs))
        if ns_coeffs is not None
        else ns_coefficients(ns_preset, ns_steps)
    )
    norm_scale = _NORM_SCALE.get(ns_preset, 1.0) if ns_coeffs is None else 1.0
    dim_fn = dimension_numbers or default_dimension_numbers
    beta = momentum
    if ns_form not in NS_FORMS:
        raise ValueError(f"ns_form must be one of {', '.join(NS_FORMS)}, got {ns_form!r}")
    if ns_batching not in NS_BATCHINGS:
        raise ValueError(
            f"ns_batching must be one of {', '.join(NS_BATCHINGS)}, got {ns_batching!r}"
        )
    if ns_dtype not in (None, *NS_DTYPES):
        raise ValueError(f"ns_dtype must be one of {', '.join(NS_DTYPES)}, got {ns_dtype!r}")

    def init_fn(params: optax.Params) -> MuonState:
        return MuonState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params))

    def update_fn(
        updates: optax.Updates, state: MuonState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, MuonState]:
        del params
        mu = optax.tree.update_moment(updates, state.mu, beta, 1)
        count = optax.safe_increment(state.count)
        if bias_correction:
            mu_hat = optax.tree.bias_correction(mu, beta, optax.safe_increment(count))
            g_hat = optax.tree.bias_correction(updates, beta, count)
        else:
            mu_hat, g_hat = mu, updates
        if nesterov:
            look = jax.tree.map(lambda m, g: beta * m + (1 - beta) * g, mu_hat, g_hat)
        else:
            look = optax.tree.bias_correction(mu, beta, count) if bias_correction else mu
        ortho = _orthogonalize_tree(
            look,
            coeffs,
            eps,
            norm_scale,
            dim_fn,
            consistent_rms,
            _resolve_dtype(ns_dtype),
            ns_form,
            ns_batching,
        )
        return ortho, MuonState(count, mu)

    return optax.GradientTransformation(init_fn, update_fn)


def _pad_to(x: jax.Array, rows: int, cols: int) -> jax.Array:
    if x.shape == (rows, cols):
        return x
    return jnp.pad(x, ((0, rows - x.shape[0]), (0, cols - x.shape[1])))


def _call_overhead(backend: str) -> float:
    """Fixed cost of one batched Newton-Schulz step, in multiply-adds (see :func:`plan_batches`)."""
    return _CALL_OVERHEAD_MACS["cpu" if backend == "cpu" else "accelerator"]


def plan_batches(
    shapes: Sequence[tuple[int, int]],
    coeffs: Coeffs,
    batching: str = NS_BATCHING,
    backend: str | None = None,
    keys: Sequence[Any] | None = None,
) -> list[tuple[tuple[int, int], list[int]]]:
    """Which wide ``(m, n)`` matrices are orthogonalized together: ``[(padded shape, indices)]``.

    ``leaf``: one call each. ``shape``: one call per distinct shape. ``padded``: one call for
    all (per ``keys`` value, e.g. dtype), each matrix zero-padded to the largest ``m`` and ``n``
    (zero rows and columns stay zero and leave the other singular values unchanged, so the
    result is the same). ``auto``: start from ``shape`` and merge two groups by padding while
    that saves work: a call costs its multiply-adds plus a fixed overhead per step
    (``_CALL_OVERHEAD_MACS``: about one thunk dispatch on XLA:CPU, a few kernel launches on an
    accelerator). On CPU, groups of large matrices are not stacked at all (XLA:CPU ran them
    slower batched than one by one).
    """
    backend = backend or jax.default_backend()
    keys = list(keys) if keys is not None else [None] * len(shapes)
    if batching not in NS_BATCHINGS:
        raise ValueError(f"ns_batching must be one of {', '.join(NS_BATCHINGS)}, got {batching!r}")
    if batching == "leaf":
        return [(tuple(s), [i]) for i, s in enumerate(shapes)]
    groups: dict[Any, list[int]] = {}
    for i, (s, k) in enumerate(zip(shapes, keys, strict=True)):
        groups.setdefault((k, tuple(s)) if batching != "padded" else (k,), []).append(i)
    plan = [
        (tuple(max(shapes[i][d] for i in idxs) for d in (0, 1)), idxs, key[0])
        for key, idxs in groups.items()
    ]
    if batching == "auto":
        cpu = backend == "cpu"
        if cpu:  # large same-shape matrices: one call each (measured faster on XLA:CPU)
            plan = [
                p
                for shape, idxs, k in plan
                for p in (
                    [(shape, [i], k) for i in idxs]
                    if math.prod(shape) > _CPU_MAX_STACK_ELEMENTS
                    else [(shape, idxs, k)]
                )
            ]
        overhead = _call_overhead(backend) * len(coeffs)

        def cost(shape: tuple[int, int], n: int) -> float:
            return n * ns_flops(*shape, coeffs) + overhead

        while True:
            best, best_saving = None, 0.0
            for a in range(len(plan)):
                for b in range(a + 1, len(plan)):
                    (sa, ia, ka), (sb, ib, kb) = plan[a], plan[b]
                    if ka != kb:
                        continue
                    merged = (max(sa[0], sb[0]), max(sa[1], sb[1]))
                    if cpu and math.prod(merged) > _CPU_MAX_STACK_ELEMENTS:
                        continue
                    saving = cost(sa, len(ia)) + cost(sb, len(ib)) - cost(merged, len(ia) + len(ib))
                    if saving > best_saving:
                        best, best_saving = (a, b, merged), saving
            if best is None:
                break
            a, b, merged = best
            plan[a] = (merged, sorted(plan[a][1] + plan[b][1]), plan[a][2])
            del plan[b]
    return [(shape, idxs) for shape, idxs, _ in plan]


def _orthogonalize_tree(
    tree: Any,
    coeffs: Coeffs,
    eps: float,
    norm_scale: float,
    dim_fn: PathDimNums,
    consistent_rms: float | None,
    dtype: Any = None,
    form: str = NS_FORM,
    batching: str = NS_BATCHING,
) -> Any:
    """Orthogonalize every leaf, in the batched calls :func:`plan_batches` picks."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    wide: list[jax.Array] = []
    meta = []  # (permuted shape, inverse permutation, tall?, scale)
    for path, x in leaves:
        if x.ndim < 2:
            raise ValueError(
                f"Muon needs parameters with ndim >= 2; {'/'.join(path_names(path))} has shape "
                f"{x.shape} (use multi_transform_with_muon to send it to Adam)"
            )
        red, out = _axes(dim_fn(path, x), x.ndim)
        fan_in = math.prod(x.shape[a] for a in red)
        fan_out = math.prod(x.shape[a] for a in out)
        perm = red + out
        mat = x.transpose(perm).reshape(fan_in, fan_out)
        tall = fan_in > fan_out
        if tall:
            mat = mat.T
        if consistent_rms is None:
            scale = math.sqrt(max(1.0, fan_out / fan_in))
        else:
            scale = consistent_rms * math.sqrt(max(fan_in, fan_out))
        inv = tuple(sorted(range(x.ndim), key=perm.__getitem__))
        meta.append((tuple(x.shape[a] for a in perm), inv, tall, scale))
        wide.append(mat)
    plan = plan_batches(
        [m.shape for m in wide], coeffs, batching, keys=[m.dtype for m in wide]
    )
    result: list[Any] = [None] * len(leaves)
    for (rows, cols), idxs in plan:
        stacked = jnp.stack([_pad_to(wide[i], rows, cols) for i in idxs])
        ortho = orthogonalize(
            stacked, coeffs, eps=eps, norm_scale=norm_scale, dtype=dtype, form=form
        )
        for j, i in enumerate(idxs):
            permuted_shape, inv, tall, scale = meta[i]
            mat = ortho[j, : wide[i].shape[0], : wide[i].shape[1]]
            mat = mat.T if tall else mat
            result[i] = (scale * mat).reshape(permuted_shape).transpose(inv)
    return jax.tree_util.tree_unflatten(treedef, result)


def _clip(max_grad_norm: float | None) -> optax.GradientTransformation:
    return optax.clip_by_global_norm(max_grad_norm) if max_grad_norm else optax.identity()


def muon(
    learning_rate: optax.ScalarOrSchedule,
    *,
    momentum: float = MUON_MOMENTUM,
    nesterov: bool = MUON_NESTEROV,
    ns_preset: str = NS_PRESET,
    ns_steps: int = NS_STEPS,
    ns_coeffs: Coeffs | None = None,
    weight_decay: float = MUON_WEIGHT_DECAY,
    weight_decay_mask: Any = None,
    bias_correction: bool = False,
    eps: float = NS_EPS,
    consistent_rms: float | None = None,
    dimension_numbers: PathDimNums | None = None,
    ns_dtype: Any = None,
    ns_form: str = NS_FORM,
    ns_batching: str = NS_BATCHING,
) -> optax.GradientTransformation:
    r"""Muon for a tree whose every leaf is a weight of ndim >= 2.

    :func:`scale_by_muon`, then decoupled weight decay :math:`\lambda W` (multiplied by the
    learning rate, as in the reference Muon and optax), then :math:`-\eta` (float or schedule).
    Use :func:`multi_transform_with_muon` for a whole network.
    """
    return optax.chain(
        scale_by_muon(
            ns_preset=ns_preset,
            ns_steps=ns_steps,
            ns_coeffs=ns_coeffs,
            momentum=momentum,
            nesterov=nesterov,
            bias_correction=bias_correction,
            eps=eps,
            consistent_rms=consistent_rms,
            dimension_numbers=dimension_numbers,
            ns_dtype=ns_dtype,
            ns_form=ns_form,
            ns_batching=ns_batching,
        ),
        optax.add_decayed_weights(weight_decay, weight_decay_mask)
        if weight_decay
        else optax.identity(),
        optax.scale_by_learning_rate(learning_rate),
    )


def multi_transform_with_muon(
    muon_lr: optax.ScalarOrSchedule,
    aux_lr: optax.ScalarOrSchedule,
    *,
    momentum: float = MUON_MOMENTUM,
    nesterov: bool = MUON_NESTEROV,
    ns_preset: str = NS_PRESET,
    ns_steps: int = NS_STEPS,
    ns_coeffs: Coeffs | None = None,
    weight_decay: float = MUON_WEIGHT_DECAY,
    muon_heads: bool = MUON_HEADS,
    label_fn: Callable[[Any], Any] | None = None,
    bias_correction: bool = False,
    eps: float = NS_EPS,
    consistent_rms: float | None = None,
    adam_b1: float = ADAM_B1,
    adam_b2: float = ADAM_B2,
    adam_eps: float = ADAM_EPS,
    adam_eps_root: float = 0.0,
    adam_nesterov: bool = False,
    adam_weight_decay: float = 0.0,
    ns_dtype: Any = None,
    ns_form: str = NS_FORM,
    ns_batching: str = NS_BATCHING,
) -> optax.GradientTransformation:
    """Muon (``muon_lr``) for the weights :func:`param_labels` marks, Adam (``aux_lr``) for the rest.

    ``label_fn(params) -> tree of "muon" | "adam"`` overrides the rule. The auxiliary optimizer
    is plain Adam (``adam_nesterov=False``) with ``eps=1e-5`` as PureJaxRL uses, not
    optax.contrib.muon's NAdam with ``eps=1e-8``; set ``adam_nesterov=True, adam_eps=1e-8`` to
    reproduce optax.
    """
    labels = label_fn or (lambda params: param_labels(params, muon_heads=muon_heads))
    return optax.partition(
        {
            "muon": muon(
                muon_lr,
                momentum=momentum,
                nesterov=nesterov,
                ns_preset=ns_preset,
                ns_steps=ns_steps,
                ns_coeffs=ns_coeffs,
                weight_decay=weight_decay,
                bias_correction=bias_correction,
                eps=eps,
                consistent_rms=consistent_rms,
                ns_dtype=ns_dtype,
                ns_form=ns_form,
                ns_batching=ns_batching,
            ),
            "adam": optax.adamw(
                aux_lr,
                b1=adam_b1,
                b2=adam_b2,
                eps=adam_eps,
                eps_root=adam_eps_root,
                weight_decay=adam_weight_decay,
                nesterov=adam_nesterov,
            ),
        },
        labels,
    )


def chain_with_muon(
    muon_lr: optax.ScalarOrSchedule,
    aux_lr: optax.ScalarOrSchedule,
    max_grad_norm: float | None,
    momentum: float = MUON_MOMENTUM,
    nesterov: bool = MUON_NESTEROV,
    **kwargs: Any,
) -> optax.GradientTransformation:
    """Global-norm clip of the whole gradient (``None``/0: none), then
    :func:`multi_transform_with_muon` (``kwargs`` are passed on).

    For use outside the registry (benchmarks, notebooks): the ``muon`` plugin builds
    :func:`multi_transform_with_muon` and the registry's ``build`` adds the clip.
    """
    return optax.chain(
        _clip(max_grad_norm),
        multi_transform_with_muon(muon_lr, aux_lr, momentum=momentum, nesterov=nesterov, **kwargs),
    )
