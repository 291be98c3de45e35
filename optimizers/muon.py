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

This module is the optax side, shaped as optax's own optimizers are:

* :class:`MuonOptions`: every setting, of Muon and of its auxiliary Adam, in one frozen value;
* :func:`scale_by_muon`: the transformation without a learning rate (momentum, Newton-Schulz,
  shape scaling), for leaves that are all weight matrices;
* :func:`muon`: the optimizer: ``optax.partition`` of the weights Muon takes
  (:func:`param_labels`) and the rest, which get Adam.

The Newton-Schulz maths and its batching live in :mod:`optimizers.newton_schulz`, the rule for
which parameters go to Muon and how kernels are viewed as matrices in
:mod:`optimizers.muon_grouping`. The plugin entry point is :mod:`optimizers.muon_plugin`. The
global-norm clip is not here: ``plugins`` ``registry.build`` applies it to every optimizer
(outside the registry: ``optax.chain(optax.clip_by_global_norm(c), muon(...))``).

What we build on optax, and what we write by hand (and why):

* ``optax.partition``, ``chain``, ``adamw``, ``add_decayed_weights``,
  ``scale_by_learning_rate`` and schedules are used as they are.
* :func:`scale_by_muon` is ours: ``optax.contrib.scale_by_muon`` orthogonalizes leaf by leaf
  (one ``vmap`` per leaf). Here the leaves are reshaped to their wide ``(m, n)`` matrices and
  orthogonalized in few batched calls, with the ``(fan_in, fan_out)`` view of 3-D/4-D kernels
  picked from the parameter path
  (:func:`optimizers.muon_grouping.default_dimension_numbers`), and per-step presets.

References:
  Jordan et al., `Muon: An optimizer for hidden layers in neural networks
  <https://kellerjordan.github.io/posts/muon/>`_, 2024 (and github.com/KellerJordan/Muon).

  Liu et al., `Muon is Scalable for LLM Training <https://arxiv.org/abs/2502.16982>`_, 2025
  (the ``consistent_rms`` scaling).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optimizers import muon_grouping, newton_schulz
from optimizers.defaults import (
    ADAM_B1,
    ADAM_B2,
    ADAM_EPS,
    MUON_HEADS,
    MUON_MOMENTUM,
    MUON_NESTEROV,
    MUON_WEIGHT_DECAY,
    NS_EPS,
    NS_PRESET,
    NS_STEPS,
)
from optimizers.muon_grouping import muon_dimension_numbers, param_labels

__all__ = [
    "MuonOptions", "MuonState", "muon", "muon_dimension_numbers", "param_labels", "scale_by_muon",
]


@dataclasses.dataclass(frozen=True)
class MuonOptions:
    r"""Every setting of :func:`muon` (and :func:`scale_by_muon`), defaults from
    :mod:`optimizers.defaults`; invalid values raise ``ValueError`` here, when it is made.

    Muon:
      momentum: :math:`\beta` of the gradient EMA.
      nesterov: orthogonalize :math:`\beta M_t + (1-\beta) G_t` instead of :math:`M_t`.
      ns_preset: ``cubic``, ``quintic`` or ``polar_express``
        (:func:`optimizers.newton_schulz.ns_coefficients`).
      ns_steps: Newton-Schulz steps.
      ns_coeffs: explicit per-step ``(a, b, c)``; overrides the preset and its steps.
      eps: added to the Frobenius norm before dividing.
      bias_correction: divide :math:`M_t` by :math:`1-\beta^{t+1}` and :math:`G_t` by
        :math:`1-\beta^t` in the Nesterov mix (optax.contrib's formula). Off by default as in
        the reference Muon; it only changes the first few steps' mixing weights.
      consistent_rms: ``None`` scales by :math:`\sqrt{\max(1, \text{fan\_out}/\text{fan\_in})}`
        (reference Muon, optax default); a float ``r`` by
        :math:`r \sqrt{\max(\text{fan\_in}, \text{fan\_out})}`, which makes the update RMS about
        ``r`` for every shape (Liu et al. 2025 use 0.2 to match AdamW).
      weight_decay: decoupled weight decay :math:`\lambda` of the Muon weights, times the
        learning rate (as the reference Muon and optax).
      ns_dtype: dtype of the Newton-Schulz iteration: ``None``/``"auto"`` is bfloat16 on
        accelerators (as the reference Muon) and float32 on CPU (XLA:CPU has no fast bfloat16
        matmul), or ``"float32"`` / ``"bfloat16"``. Momentum and updates stay in the
        parameters' dtype.

    Grouping (:func:`muon` only):
      muon_heads: ``False`` sends the ``policy_head``/``value_head`` kernels to Adam.

    The auxiliary Adam (:func:`muon` only; ``optax.adamw``):
      adam_b1, adam_b2, adam_eps, adam_eps_root, adam_nesterov, adam_weight_decay: plain Adam
      with ``eps=1e-5`` as PureJaxRL, not optax.contrib.muon's NAdam with ``eps=1e-8``; set
      ``adam_nesterov=True, adam_eps=1e-8`` to reproduce optax.
    """

    momentum: float = MUON_MOMENTUM
    nesterov: bool = MUON_NESTEROV
    ns_preset: str = NS_PRESET
    ns_steps: int = NS_STEPS
    ns_coeffs: newton_schulz.Coeffs | None = None
    eps: float = NS_EPS
    bias_correction: bool = False
    consistent_rms: float | None = None
    weight_decay: float = MUON_WEIGHT_DECAY
    ns_dtype: Any = None
    muon_heads: bool = MUON_HEADS
    adam_b1: float = ADAM_B1
    adam_b2: float = ADAM_B2
    adam_eps: float = ADAM_EPS
    adam_eps_root: float = 0.0
    adam_nesterov: bool = False
    adam_weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.ns_coeffs is None:  # ValueError for a bad preset or step count
            newton_schulz.ns_coefficients(self.ns_preset, self.ns_steps)
        else:
            object.__setattr__(self, "ns_coeffs", tuple(map(tuple, self.ns_coeffs)))
        newton_schulz.check_dtype(self.ns_dtype)

    @property
    def coeffs(self) -> newton_schulz.Coeffs:
        """The per-step ``(a, b, c)`` the iteration uses."""
        if self.ns_coeffs is not None:
            return self.ns_coeffs
        return newton_schulz.ns_coefficients(self.ns_preset, self.ns_steps)

    @property
    def norm_scale(self) -> float:
        """The preset's extra Frobenius-norm factor (1.01 for Polar Express; 1 for ``ns_coeffs``)."""
        if self.ns_coeffs is not None:
            return 1.0
        return newton_schulz.NORM_SCALE.get(self.ns_preset, 1.0)


class MuonState(NamedTuple):
    """State of :func:`scale_by_muon`."""

    count: jax.Array  # int32 scalar, steps taken
    mu: optax.Updates  # momentum, an EMA of the gradients


def scale_by_muon(
    options: MuonOptions | None = None,
    *,
    dimension_numbers: muon_grouping.PathDimNums | None = None,
    **deprecated: Any,
) -> optax.GradientTransformation:
    """Momentum, batched Newton-Schulz orthogonalization and shape scaling (no learning rate).

    Every leaf must have ndim >= 2 (``optax.MaskedNode`` leaves from ``partition`` are skipped).
    Leaves are viewed as ``(fan_in, fan_out)`` matrices via ``dimension_numbers(path, leaf)``
    (default :func:`optimizers.muon_grouping.default_dimension_numbers`), turned to the wide
    orientation, grouped by shape, and orthogonalized in few batched calls. Only ``options``'s
    Muon settings are used (not ``weight_decay``, ``muon_heads`` or the Adam ones).
    ``**deprecated``: the keywords it took before issue 29 (``ns_preset=...``; a ``FutureWarning``).
    """
    if deprecated:  # scale_by_muon(ns_preset=..., ...), as before issue 29
        _warn_keywords("scale_by_muon", options, deprecated)
        options, extras = _legacy_options(deprecated)
        return _scale_by_muon(options, dimension_numbers, **extras)
    return _scale_by_muon(options or MuonOptions(), dimension_numbers)


def muon(
    learning_rate: optax.ScalarOrSchedule,
    options: MuonOptions | None = None,
    *,
    adam_learning_rate: optax.ScalarOrSchedule | None = None,
    label_fn: Callable[[Any], Any] | None = None,
    **deprecated: Any,
) -> optax.GradientTransformation:
    r"""Muon (``learning_rate``) for the weight matrices, Adam for every other parameter.

    ``optax.partition`` by ``label_fn(params) -> tree of "muon" | "adam"`` (default
    :func:`param_labels` with ``options.muon_heads``). The Muon leaves get
    :func:`scale_by_muon`, then decoupled weight decay :math:`\lambda W` (times the learning
    rate), then :math:`-\eta`; the others get ``optax.adamw`` at ``adam_learning_rate``
    (default: ``learning_rate``, as ``optax.contrib.muon``). Learning rates are floats or optax
    schedules. No gradient clip: chain ``optax.clip_by_global_norm`` in front, or build through
    the registry, which does. ``**deprecated``: the keywords it took before issue 29
    (``momentum=...``; a ``FutureWarning``), which build Muon alone for all leaves, as then.
    """
    if deprecated:  # muon(learning_rate, momentum=..., ...): Muon alone, as before issue 29
        _warn_keywords("muon", options, deprecated)
        options, extras = _legacy_options(deprecated)
        return _muon_alone(learning_rate, options, **extras)
    return _partition(learning_rate, adam_learning_rate, options or MuonOptions(), label_fn)


# --- the pieces -----------------------------------------------------------------------------


def _scale_by_muon(
    options: MuonOptions,
    dimension_numbers: muon_grouping.PathDimNums | None = None,
    *,
    form: str = newton_schulz._FORM,
    batching: str = newton_schulz._BATCHING,
) -> optax.GradientTransformation:
    """:func:`scale_by_muon` with the internal speed knobs (``form``, ``batching``: see
    :func:`optimizers.newton_schulz.orthogonalize_batched`; tests and benchmarks set them)."""
    dim_fn = dimension_numbers or muon_grouping.default_dimension_numbers

    def init_fn(params: optax.Params) -> MuonState:
        return MuonState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params))

    def update_fn(
        updates: optax.Updates, state: MuonState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, MuonState]:
        del params
        mu = optax.tree.update_moment(updates, state.mu, options.momentum, 1)
        count = optax.safe_increment(state.count)
        look = _look_ahead(options, updates, mu, count)
        return _orthogonalize_tree(look, options, dim_fn, form, batching), MuonState(count, mu)

    return optax.GradientTransformation(init_fn, update_fn)


def _look_ahead(options: MuonOptions, grads: Any, mu: Any, count: jax.Array) -> Any:
    """What is orthogonalized: the Nesterov mix of momentum and gradient, or the momentum."""
    beta = options.momentum
    if options.bias_correction:
        mu_hat = optax.tree.bias_correction(mu, beta, optax.safe_increment(count))
        g_hat = optax.tree.bias_correction(grads, beta, count)
    else:
        mu_hat, g_hat = mu, grads
    if options.nesterov:
        return jax.tree.map(lambda m, g: beta * m + (1 - beta) * g, mu_hat, g_hat)
    return optax.tree.bias_correction(mu, beta, count) if options.bias_correction else mu


class _Wide(NamedTuple):
    """How a leaf became a wide matrix, to undo it: permuted shape, inverse permutation,
    transposed (it was tall), and the shape scale of its update."""

    shape: tuple[int, ...]
    inverse: tuple[int, ...]
    tall: bool
    scale: float


def _to_wide(
    path: Any, x: jax.Array, dim_fn: muon_grouping.PathDimNums, rms: float | None
) -> tuple[jax.Array, _Wide]:
    """The leaf as its wide ``(m, n)`` matrix (``(fan_in, fan_out)`` or its transpose)."""
    if x.ndim < 2:
        raise ValueError(
            f"Muon needs parameters with ndim >= 2; {'/'.join(muon_grouping.path_names(path))} "
            f"has shape {x.shape} (use optimizers.muon.muon, which sends it to Adam)"
        )
    red, out = muon_grouping.split_axes(dim_fn(path, x), x.ndim)
    fan_in = math.prod(x.shape[a] for a in red)
    fan_out = math.prod(x.shape[a] for a in out)
    perm = red + out
    mat = x.transpose(perm).reshape(fan_in, fan_out)
    if rms is None:
        scale = math.sqrt(max(1.0, fan_out / fan_in))
    else:
        scale = rms * math.sqrt(max(fan_in, fan_out))
    inverse = tuple(sorted(range(x.ndim), key=perm.__getitem__))
    tall = fan_in > fan_out
    return (mat.T if tall else mat), _Wide(tuple(x.shape[a] for a in perm), inverse, tall, scale)


def _from_wide(mat: jax.Array, wide: _Wide) -> jax.Array:
    """The orthogonalized wide matrix back in its leaf's shape, scaled."""
    mat = mat.T if wide.tall else mat
    return (wide.scale * mat).reshape(wide.shape).transpose(wide.inverse)


def _orthogonalize_tree(
    tree: Any, options: MuonOptions, dim_fn: muon_grouping.PathDimNums, form: str, batching: str
) -> Any:
    """Orthogonalize every leaf, in the batched calls ``plan_batches`` picks, and scale it."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    wide = [_to_wide(path, x, dim_fn, options.consistent_rms) for path, x in leaves]
    orthos = newton_schulz.orthogonalize_batched(
        [mat for mat, _ in wide],
        options.coeffs,
        eps=options.eps,
        norm_scale=options.norm_scale,
        dtype=newton_schulz.resolve_dtype(options.ns_dtype),
        form=form,
        batching=batching,
    )
    result = [_from_wide(o, w) for o, (_, w) in zip(orthos, wide, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, result)


def _muon_alone(
    learning_rate: optax.ScalarOrSchedule,
    options: MuonOptions,
    *,
    dimension_numbers: muon_grouping.PathDimNums | None = None,
    weight_decay_mask: Any = None,
    **knobs: str,
) -> optax.GradientTransformation:
    """The Muon leaves' chain: :func:`scale_by_muon`, weight decay, learning rate."""
    return optax.chain(
        _scale_by_muon(options, dimension_numbers, **knobs),
        optax.add_decayed_weights(options.weight_decay, weight_decay_mask)
        if options.weight_decay
        else optax.identity(),
        optax.scale_by_learning_rate(learning_rate),
    )


def _partition(
    learning_rate: optax.ScalarOrSchedule,
    adam_learning_rate: optax.ScalarOrSchedule | None,
    options: MuonOptions,
    label_fn: Callable[[Any], Any] | None,
    **knobs: str,
) -> optax.GradientTransformation:
    """:func:`muon`: Muon for the leaves labelled ``"muon"``, ``optax.adamw`` for the rest."""
    adam = optax.adamw(
        learning_rate if adam_learning_rate is None else adam_learning_rate,
        b1=options.adam_b1,
        b2=options.adam_b2,
        eps=options.adam_eps,
        eps_root=options.adam_eps_root,
        weight_decay=options.adam_weight_decay,
        nesterov=options.adam_nesterov,
    )
    labels = label_fn or functools.partial(param_labels, muon_heads=options.muon_heads)
    muon_leaves = _muon_alone(learning_rate, options, **knobs)
    return optax.partition({"muon": muon_leaves, "adam": adam}, labels)


# --- deprecated for one release (issue 29) ---------------------------------------------------

# Keywords of the functions before issue 29 that are not MuonOptions fields -> the internal name.
_LEGACY_EXTRAS = {
    "ns_form": "form",
    "ns_batching": "batching",
    "dimension_numbers": "dimension_numbers",
    "weight_decay_mask": "weight_decay_mask",
}


def _legacy_options(keywords: dict[str, Any]) -> tuple[MuonOptions, dict[str, Any]]:
    """The keyword arguments of a function before issue 29 as ``MuonOptions`` and the rest."""
    extras = {_LEGACY_EXTRAS[k]: keywords.pop(k) for k in list(keywords) if k in _LEGACY_EXTRAS}
    return MuonOptions(**keywords), extras


def _warn_keywords(where: str, options: MuonOptions | None, keywords: dict[str, Any]) -> None:
    """The ``FutureWarning`` for ``where(..., keyword=...)``, the call shape before issue 29."""
    if options is not None:
        raise TypeError(f"{where}() takes a MuonOptions or the deprecated keywords, not both")
    old = f"{where}(..., {', '.join(f'{k}=...' for k in keywords)})"
    note = _NOW_PARTITIONS if where == "muon" else ""
    warnings.warn(
        f"optimizers.muon.{old} is deprecated and will be removed in the next release; pass "
        f"{where}(..., MuonOptions(...)){note}",
        FutureWarning,
        stacklevel=3,
    )


_NOW_PARTITIONS = (
    " (muon now partitions the tree: Muon for the weight matrices, Adam for the rest; Muon alone "
    "on matrices is optax.chain(scale_by_muon(options), optax.scale_by_learning_rate(lr)))"
)


def _multi_transform_with_muon(
    muon_lr: optax.ScalarOrSchedule,
    aux_lr: optax.ScalarOrSchedule,
    *,
    label_fn: Callable[[Any], Any] | None = None,
    **keywords: Any,
) -> optax.GradientTransformation:
    """Deprecated: ``muon(muon_lr, MuonOptions(**keywords), adam_learning_rate=aux_lr)``."""
    options, extras = _legacy_options(keywords)
    return _partition(muon_lr, aux_lr, options, label_fn, **extras)


def _chain_with_muon(
    muon_lr: optax.ScalarOrSchedule,
    aux_lr: optax.ScalarOrSchedule,
    max_grad_norm: float | None,
    momentum: float = MUON_MOMENTUM,
    nesterov: bool = MUON_NESTEROV,
    **keywords: Any,
) -> optax.GradientTransformation:
    """Deprecated: the global-norm clip (``None``/0: none), then :func:`muon`."""
    return optax.chain(
        optax.clip_by_global_norm(max_grad_norm) if max_grad_norm else optax.identity(),
        _multi_transform_with_muon(muon_lr, aux_lr, momentum=momentum, nesterov=nesterov, **keywords),
    )


_REPLACED = {
    "multi_transform_with_muon": (
        _multi_transform_with_muon,
        "muon(muon_lr, MuonOptions(...), adam_learning_rate=aux_lr)",
    ),
    "chain_with_muon": (
        _chain_with_muon,
        "optax.chain(optax.clip_by_global_norm(max_grad_norm), muon(muon_lr, MuonOptions(...), "
        "adam_learning_rate=aux_lr)), or plugins.get_registry().build('muon', ...), which clips",
    ),
}
_MOVED = {  # re-exported before issue 29 -> the module that defines it
    **dict.fromkeys(
        ("HEAD_MODULES", "PathDimNums", "default_dimension_numbers", "path_names", "split_axes"),
        muon_grouping,
    ),
    **dict.fromkeys(
        ("Coeffs", "ns_coefficients", "ns_flops", "orthogonalize", "resolve_dtype",
         "plan_batches", "orthogonalize_batched"),
        newton_schulz,
    ),
    "MuonDimensionNumbers": optax.contrib,
}


def __getattr__(name: str) -> Any:
    """The names this module had before issue 29: they still work, with a ``FutureWarning``."""
    if name in _REPLACED:
        value, use = _REPLACED[name]
    elif name in _MOVED:
        module = _MOVED[name]
        value, use = getattr(module, name), f"{module.__name__}.{name}"
        if module is newton_schulz and name not in newton_schulz.__all__:
            use += " (internal: Muon plans its Newton-Schulz calls itself)"
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"optimizers.muon.{name} is deprecated and will be removed in the next release; "
        f"use {use}",
        FutureWarning,
        stacklevel=2,
    )
    return value
