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
(:mod:`optimizers.newton_schulz`). Everything else (biases, norm scales, embeddings) uses Adam.

This module is the optax side: the ``GradientTransformation`` objects and the partition into
Muon and Adam. The Newton-Schulz maths and its batching live in :mod:`optimizers.newton_schulz`,
the rule for which parameters go to Muon and how kernels are viewed as matrices in
:mod:`optimizers.muon_grouping`; their public names are re-exported here. The plugin entry
point is :mod:`optimizers.muon_plugin`.

What we build on optax, and what we write by hand (and why):

* ``optax.partition``, ``chain``, ``clip_by_global_norm``, ``adamw``, ``add_decayed_weights``,
  ``scale_by_learning_rate`` and schedules are used as they are.
* :func:`scale_by_muon` is ours: ``optax.contrib.scale_by_muon`` orthogonalizes leaf by leaf
  (one ``vmap`` per leaf). Here the leaves are reshaped to their wide ``(m, n)`` matrices and
  orthogonalized in few batched calls (:func:`optimizers.newton_schulz.orthogonalize_batched`),
  with the ``(fan_in, fan_out)`` view of 3-D/4-D kernels picked from the parameter path
  (:func:`optimizers.muon_grouping.default_dimension_numbers`), and per-step presets.

References:
  Jordan et al., `Muon: An optimizer for hidden layers in neural networks
  <https://kellerjordan.github.io/posts/muon/>`_, 2024 (and github.com/KellerJordan/Muon).

  Liu et al., `Muon is Scalable for LLM Training <https://arxiv.org/abs/2502.16982>`_, 2025
  (the ``consistent_rms`` scaling).
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    NS_STEPS,
)
from optimizers.muon_grouping import (
    HEAD_MODULES,
    PathDimNums,
    default_dimension_numbers,
    muon_dimension_numbers,
    param_labels,
    path_names,
    split_axes,
)
from optimizers.newton_schulz import (
    NORM_SCALE,
    Coeffs,
    ns_coefficients,
    ns_flops,
    orthogonalize,
    orthogonalize_batched,
    plan_batches,
    resolve_dtype,
)

__all__ = [  # the public names, defined here or re-exported from the two modules above
    "HEAD_MODULES", "Coeffs", "MuonDimensionNumbers", "MuonState", "PathDimNums",
    "chain_with_muon", "default_dimension_numbers", "multi_transform_with_muon", "muon",
    "muon_dimension_numbers", "ns_coefficients", "ns_flops", "orthogonalize",
    "orthogonalize_batched", "param_labels", "path_names", "plan_batches", "resolve_dtype",
    "scale_by_muon", "split_axes",
]


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
    norm_scale = NORM_SCALE.get(ns_preset, 1.0) if ns_coeffs is None else 1.0
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
            resolve_dtype(ns_dtype),
            ns_form,
            ns_batching,
        )
        return ortho, MuonState(count, mu)

    return optax.GradientTransformation(init_fn, update_fn)


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
        red, out = split_axes(dim_fn(path, x), x.ndim)
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
    orthos = orthogonalize_batched(
        wide, coeffs, eps=eps, norm_scale=norm_scale, dtype=dtype, form=form, batching=batching
    )
    result: list[Any] = []
    for mat, (permuted_shape, inv, tall, scale) in zip(orthos, meta, strict=True):
        mat = mat.T if tall else mat
        result.append((scale * mat).reshape(permuted_shape).transpose(inv))
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
