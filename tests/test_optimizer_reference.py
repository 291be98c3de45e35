"""The built-in optimizers give the numbers they gave before issue 29 (recorded by
tests/optimizer_reference.py from that code): through the plugins (with the same optimizer-state
layout, so older checkpoints still resume), through the deprecated library names, and through
their replacements. Then the deprecations themselves: each old name still works, with a
``FutureWarning`` that names its replacement, and our own code uses none of them."""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np
import optax
import pytest
from optimizer_reference import (
    DATA,
    LIBRARY_CHAIN,
    LIBRARY_MULTI,
    LIBRARY_MUON,
    MATRICES,
    PLUGIN_CASES,
    inputs,
    library_cases,
    linear,
    pack,
    plugin_transformations,
    run,
    state_layout,
)

import optimizers.muon as muon_module
from optimizers import muon_grouping, newton_schulz
from optimizers.adam import adam
from optimizers.muon import MuonOptions, muon, scale_by_muon

REFERENCE = np.load(DATA)
on_cpu = pytest.mark.skipif(
    jax.default_backend() != "cpu",
    reason="recorded on CPU, where Newton-Schulz runs in float32 (bfloat16 on accelerators)",
)


def assert_reference(case: str, updates: dict[str, np.ndarray]) -> None:
    np.testing.assert_allclose(pack(updates), REFERENCE[case], rtol=1e-5, atol=1e-6, err_msg=case)


def _inputs(matrices_only: bool = False) -> tuple[dict, list[dict]]:
    params, grads = inputs()
    np.testing.assert_array_equal(pack({k: v[None] for k, v in params.items()}),
                                  REFERENCE["params"])
    keep = MATRICES if matrices_only else tuple(params)
    return {k: params[k] for k in keep}, [{k: g[k] for k in keep} for g in grads]


@on_cpu
@pytest.mark.parametrize("case", list(PLUGIN_CASES))
def test_plugins_give_the_recorded_updates_and_state_layout(case: str) -> None:
    tx = plugin_transformations()[case]
    params, grads = _inputs()
    assert_reference(case, run(tx, params, grads))
    assert state_layout(tx, params) == str(REFERENCE[f"state/{case}"])


@on_cpu
@pytest.mark.parametrize("case", ["library_multi_transform", "library_chain",
                                  "library_muon_alone", "library_adam_clip"])
def test_deprecated_library_calls_give_the_recorded_updates(case: str) -> None:
    tx, matrices_only = library_cases()[case]
    assert_reference(case, run(tx, *_inputs(matrices_only)))


REPLACEMENTS: dict[str, tuple[Any, bool]] = {
    "library_multi_transform": (
        lambda: muon(0.02, MuonOptions(**LIBRARY_MULTI), adam_learning_rate=1e-3), False),
    "library_chain": (
        lambda: optax.chain(
            optax.clip_by_global_norm(0.5),
            muon(linear(0.02), MuonOptions(**LIBRARY_CHAIN), adam_learning_rate=1e-3),
        ),
        False,
    ),
    # On a tree of weight matrices the partitioned muon() is Muon alone.
    "library_muon_alone": (
        lambda: muon(0.02, MuonOptions(**LIBRARY_MUON)), True),
    "library_adam_clip": (
        lambda: optax.chain(optax.clip_by_global_norm(0.5), adam(1e-3, b1=0.8)), False),
}


@on_cpu
@pytest.mark.parametrize("case", list(REPLACEMENTS))
def test_replacements_give_the_recorded_updates(case: str) -> None:
    make, matrices_only = REPLACEMENTS[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the replacements are not deprecated
        tx = make()
    assert_reference(case, run(tx, *_inputs(matrices_only)))


# --- the deprecations ---------------------------------------------------------------------------

MOVED = {
    "HEAD_MODULES": "optimizers.muon_grouping.HEAD_MODULES",
    "PathDimNums": "optimizers.muon_grouping.PathDimNums",
    "default_dimension_numbers": "optimizers.muon_grouping.default_dimension_numbers",
    "path_names": "optimizers.muon_grouping.path_names",
    "split_axes": "optimizers.muon_grouping.split_axes",
    "Coeffs": "optimizers.newton_schulz.Coeffs",
    "ns_coefficients": "optimizers.newton_schulz.ns_coefficients",
    "ns_flops": "optimizers.newton_schulz.ns_flops",
    "orthogonalize": "optimizers.newton_schulz.orthogonalize",
    "resolve_dtype": "optimizers.newton_schulz.resolve_dtype",
    "plan_batches": "optimizers.newton_schulz.plan_batches (internal",
    "orthogonalize_batched": "optimizers.newton_schulz.orthogonalize_batched (internal",
    "MuonDimensionNumbers": "optax.contrib.MuonDimensionNumbers",
}


@pytest.mark.parametrize("name", list(MOVED))
def test_names_re_exported_before_still_import_with_a_warning(name: str) -> None:
    with pytest.warns(FutureWarning) as record:
        value = getattr(muon_module, name)
    (message,) = [str(w.message) for w in record]
    assert message.startswith(f"optimizers.muon.{name} is deprecated and will be removed in the "
                              f"next release; use {MOVED[name]}"), message
    home = {"optimizers.muon_grouping": muon_grouping, "optimizers.newton_schulz": newton_schulz,
            "optax.contrib": optax.contrib}[MOVED[name].rsplit(".", 1)[0].split(" ")[0]]
    assert value is getattr(home, name)


def test_the_public_names_are_few_and_warn_nothing() -> None:
    assert sorted(muon_module.__all__) == [
        "MuonOptions", "MuonState", "muon", "muon_dimension_numbers", "param_labels",
        "scale_by_muon",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        namespace: dict[str, Any] = {}
        exec("from optimizers.muon import *", namespace)
    assert set(muon_module.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'orthogonalise'"):
        muon_module.orthogonalise  # noqa: B018


@pytest.mark.parametrize(("name", "use"), [
    ("multi_transform_with_muon",
     "use muon(muon_lr, MuonOptions(...), adam_learning_rate=aux_lr)"),
    ("chain_with_muon", "use optax.chain(optax.clip_by_global_norm(max_grad_norm), muon("),
])
def test_replaced_functions_warn_naming_the_replacement(name: str, use: str) -> None:
    with pytest.warns(FutureWarning, match=rf"optimizers\.muon\.{name} is deprecated") as record:
        exec(f"from optimizers.muon import {name}", {})
    assert use in str(record[0].message)


def test_old_keywords_of_muon_and_scale_by_muon_warn_and_still_work() -> None:
    params = {"w": np.ones((4, 8), np.float32)}
    with pytest.warns(FutureWarning, match=r"muon\(\.\.\., momentum=\.\.\., ns_form=\.\.\.\) is "
                      r"deprecated.*MuonOptions.*now partitions the tree"):
        old = muon(0.02, momentum=0.9, ns_form="standard")
    new = muon(0.02, MuonOptions(momentum=0.9))
    for tx in (old, new):
        tx.update(params, tx.init(params), params)
    with pytest.warns(FutureWarning, match=r"scale_by_muon\(\.\.\., ns_steps=\.\.\.\)"):
        scale_by_muon(ns_steps=5)
    with pytest.raises(TypeError, match="MuonOptions or the deprecated keywords, not both"):
        muon(0.02, MuonOptions(), momentum=0.9)


def test_our_own_code_uses_no_deprecated_name() -> None:
    """Building every built-in through the registry, and the plugin modules' imports, warn
    nothing: the plugins, the registry and the trainer are on the new API."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        params, grads = _inputs()
        for tx in plugin_transformations().values():
            run(tx, params, grads[:1])
