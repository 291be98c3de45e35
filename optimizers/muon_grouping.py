"""Which parameters Muon takes, and the ``(fan_in, fan_out)`` matrix it sees in each.

Muon only makes sense for weights that act as linear maps; everything else (biases, norm
scales, embeddings, 1-D and scalar leaves) goes to Adam. This module holds that rule
(:func:`param_labels`, the grouping of docs/optimizers.md) and the reshape of 3-D/4-D kernels
picked from the parameter path (attention query/key/value vs. out, conv:
:func:`default_dimension_numbers`), apart from the optimizer so that tests, benchmarks and
``optax.contrib.muon`` can use the same grouping.

The reshape convention is ``optax.contrib.MuonDimensionNumbers`` (reduction axes = fan-in,
output axes = fan-out), so :func:`muon_dimension_numbers` can configure ``optax.contrib.muon``
to orthogonalize exactly the same matrices (tests, benchmark).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
from optax.contrib import MuonDimensionNumbers

from optimizers.defaults import MUON_HEADS

HEAD_MODULES = ("policy_head", "value_head")
_NEVER_MUON = ("bias", "scale")
_FANOUT_FIRST_MODULES = ("query", "key", "value")

PathDimNums = Callable[[tuple[Any, ...], jax.Array], MuonDimensionNumbers]


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
    orthogonalize exactly the matrices our :func:`optimizers.muon.muon` does.
    """
    labels = label_fn(params) if label_fn else param_labels(params, muon_heads=muon_heads)
    return jax.tree_util.tree_map_with_path(
        lambda path, x, lab: default_dimension_numbers(path, x) if lab == "muon" else None,
        params,
        labels,
    )


def split_axes(dn: MuonDimensionNumbers, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``dn``'s fan-in and fan-out axes of an ``ndim``-D leaf, non-negative; every axis in one."""
    def norm(axes: int | Sequence[int]) -> tuple[int, ...]:
        return tuple(a % ndim for a in ((axes,) if isinstance(axes, int) else axes))

    red, out = norm(dn.reduction_axis), norm(dn.output_axis)
    if sorted(red + out) != list(range(ndim)):
        raise ValueError(
            f"Muon dimension numbers {dn} must split all {ndim} axes into fan-in and fan-out"
        )
    return red, out
