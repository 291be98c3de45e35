"""``registry.build``: the one global-norm clip, what factories receive, defaults, validation order,
and each setting checked once on each path (``build`` / ``build_validated``)."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import tiny_config, update_sequence

import plugins
from optimizers import adam_plugin, defaults, muon_plugin
from optimizers.adam import adam
from optimizers.muon import MuonOptions
from plugins import HyperParam, HyperParameterError, OptimizerError, hookimpl, make_registry
from ppo_trainer.app.build import check
from ppo_trainer.optim import make_optimizer
from ppo_trainer.registry import registry as trainer_registry

RNG = np.random.default_rng(0)
OURS = f"snake-ppo-jax {importlib.metadata.version('snake-ppo-jax')}"  # as installed
PARAMS = {"dense": {"kernel": jnp.zeros((4, 6)), "bias": jnp.zeros(6)}}


def _grads(scale: float) -> dict:
    return jax.tree.map(lambda p: jnp.asarray(scale * RNG.normal(size=p.shape), p.dtype), PARAMS)


def _global_clip(grads: dict, c: float) -> dict:
    norm = float(optax.global_norm(grads))
    return jax.tree.map(lambda g: g * min(1.0, c / norm), grads)


def _run(tx: optax.GradientTransformation, grads: list[dict]) -> list[dict]:
    return update_sequence(tx, PARAMS, grads)


def _max_diff(a: dict, b: dict) -> float:
    return max(
        float(jnp.max(jnp.abs(x - y))) for x, y in zip(*map(jax.tree.leaves, (a, b)), strict=True)
    )


def _foreign_sgd_plugin(monkeypatch: pytest.MonkeyPatch, seen: list[dict]) -> None:
    """A third-party plugin (a fake entry point of ``sgd-dist``) whose factory does no clipping
    and records the keyword arguments it is called with."""

    def make(**kwargs: Any) -> optax.GradientTransformation:
        seen.append(kwargs)
        return optax.sgd(kwargs["learning_rate"], momentum=kwargs["sgd_momentum"])

    module = types.ModuleType("sgd_plugin")
    module.register_optimizers = hookimpl(
        lambda register: register(
            "sgd", make, [HyperParam("sgd_momentum", float, 0.0, "momentum", minimum=0.0)]
        )
    )
    ep = types.SimpleNamespace(
        name="sgd", dist=types.SimpleNamespace(name="sgd-dist", version="1.0"), load=lambda: module
    )
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [*real(group=group), ep])


@pytest.mark.parametrize("name", ["adam", "muon", "sgd"])
def test_build_applies_the_global_norm_clip(name: str, monkeypatch) -> None:
    """``build(max_grad_norm=c)`` == the optimizer fed clipped gradients, for the built-ins and
    for a plugin that does not clip; and clearly not the optimizer fed raw gradients. Two steps,
    a huge gradient then a small one: Adam's and Muon's first steps are nearly scale-invariant,
    the second shows how much of the first gradient the moments kept."""
    _foreign_sgd_plugin(monkeypatch, [])
    registry = make_registry()
    grads = [_grads(100.0), _grads(0.1)]
    assert float(optax.global_norm(grads[0])) > 100 and float(optax.global_norm(grads[1])) < 1
    clipped = _run(registry.build(name, learning_rate=1e-2, max_grad_norm=1.0), grads)
    plain = registry.build(name, learning_rate=1e-2, max_grad_norm=None)
    reference = _run(plain, [_global_clip(grads[0], 1.0), grads[1]])
    unclipped = _run(plain, grads)
    for got, want in zip(clipped, reference, strict=True):
        assert _max_diff(got, want) < 1e-6
    relative = [
        _max_diff(c, u) / max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(u))
        for c, u in zip(clipped, unclipped, strict=True)
    ]
    assert max(relative) > 0.1, relative  # a clear margin, not round-off
    zero = _run(registry.build(name, learning_rate=1e-2, max_grad_norm=0), grads)
    assert _max_diff(zero[1], unclipped[1]) == 0.0  # 0 disables the clip


def test_factory_gets_learning_rate_and_every_declared_hyperparameter(monkeypatch) -> None:
    seen: list[dict] = []
    _foreign_sgd_plugin(monkeypatch, seen)
    registry = make_registry()
    assert registry.get("sgd").plugin.key == "sgd-dist:sgd" and registry.warnings == []
    registry.build("sgd", learning_rate=0.1, max_grad_norm=0.5)
    assert seen == [{"learning_rate": 0.1, "sgd_momentum": 0.0}]  # no max_grad_norm


def test_builtin_factories_have_no_defaults_of_their_own() -> None:
    """One source per default: the declarations, read from ``optimizers.defaults`` as are the
    library's defaults (``MuonOptions``, ``adam``); the factories get every value from the
    registry."""
    for factory in (adam_plugin.make_adam, muon_plugin.make_muon):
        params = inspect.signature(factory).parameters.values()
        assert all(p.default is inspect.Parameter.empty for p in params), factory
    declared = {h.name: h.default for h in muon_plugin.HYPERPARAMS + adam_plugin.HYPERPARAMS}
    library = {f.name: f.default for f in dataclasses.fields(MuonOptions)}
    pairs = {
        "muon_momentum": ("momentum", defaults.MUON_MOMENTUM),
        "muon_nesterov": ("nesterov", defaults.MUON_NESTEROV),
        "ns_preset": ("ns_preset", defaults.NS_PRESET),
        "ns_steps": ("ns_steps", defaults.NS_STEPS),
        "muon_weight_decay": ("weight_decay", defaults.MUON_WEIGHT_DECAY),
        "muon_heads": ("muon_heads", defaults.MUON_HEADS),
        "adam_eps": ("adam_eps", defaults.ADAM_EPS),
        "adam_b1": ("adam_b1", defaults.ADAM_B1),
        "adam_b2": ("adam_b2", defaults.ADAM_B2),
    }
    for hp_name, (lib_name, value) in pairs.items():
        assert declared[hp_name] == library[lib_name] == value, hp_name
    assert inspect.signature(adam).parameters["eps"].default == defaults.ADAM_EPS


def test_build_validates_before_any_schedule() -> None:
    """A negative Muon learning rate is rejected before ``schedule`` could hide it in a callable
    (item 9); valid floats, and only floats, are then scheduled."""
    registry = plugins.get_registry()
    calls: list[float] = []

    def schedule(value: float) -> Any:
        calls.append(value)
        return optax.constant_schedule(value)

    with pytest.raises(HyperParameterError, match="'muon_lr' .* must be > 0.0, got -0.02"):
        registry.build("muon", learning_rate=1e-3, schedule=schedule, muon_lr=-0.02)
    with pytest.raises(HyperParameterError, match="learning rate"):
        registry.build("muon", learning_rate=-1e-3, schedule=schedule)
    assert calls == []
    registry.build("muon", learning_rate=1e-3, schedule=schedule, muon_lr=0.05)
    assert calls == [1e-3, 0.05]  # lr and muon_lr; aux_adam_lr is None (follows lr)


def test_factory_errors_are_one_line_optimizer_errors() -> None:
    registry = make_registry()  # a fresh one: its adam gets a broken factory below
    info = registry.get("adam")

    def returns_junk(**kwargs: Any) -> str:
        return "not a transformation"

    def rejects(**kwargs: Any) -> None:
        raise ValueError("b1 too big")

    for factory, message in (
        (
            returns_junk,
            f"optimizer 'adam' (optimizer plugin 'adam' from {OURS}): the factory returned a "
            "str, not an optax.GradientTransformation",
        ),
        (
            rejects,
            f"optimizer 'adam' (optimizer plugin 'adam' from {OURS}) rejected its "
            "hyperparameters: ValueError: b1 too big",
        ),
    ):
        object.__setattr__(info, "factory", factory)
        with pytest.raises(OptimizerError) as err:
            registry.build("adam", learning_rate=1e-3)
        assert str(err.value) == message


# --- each value is checked once on each path (item 5) -------------------------------------------


@pytest.fixture
def validate_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every hyperparameter ``HyperParam.validate`` checks from now on."""
    calls: list[str] = []
    real = HyperParam.validate

    def spy(self: HyperParam, value: Any, *, optimizer: str) -> Any:
        calls.append(self.name)
        return real(self, value, optimizer=optimizer)

    monkeypatch.setattr(HyperParam, "validate", spy)
    return calls


def test_build_checks_once_and_build_validated_not_again(validate_calls: list[str]) -> None:
    """``build`` checks every declared hyperparameter exactly once; ``build_validated`` takes
    what ``validate`` returned and checks nothing again (not even the learning rate: a caller
    that passes it has checked it), with the same result."""
    registry = make_registry()
    declared = [hp.name for hp in registry.get("muon").hyperparams]
    validate_calls.clear()  # the plugins' declarations, checked when they registered
    built = registry.build("muon", learning_rate=1e-3, max_grad_norm=0.5, muon_lr=0.01)
    assert validate_calls == declared
    values = registry.validate("muon", muon_lr=0.01)
    validate_calls.clear()
    again = registry.build_validated("muon", values, learning_rate=1e-3, max_grad_norm=0.5)
    assert validate_calls == []
    grads = [_grads(100.0), _grads(0.1)]
    for a, b in zip(_run(built, grads), _run(again, grads), strict=True):
        assert _max_diff(a, b) == 0.0
    # No check on this path: whatever the caller passes goes to the factory as it is.
    unchecked = registry.build_validated("adam", {"adam_eps": 1e-5, "adam_b1": 0.9,
                                                  "adam_b2": 0.999}, learning_rate=1)
    assert isinstance(unchecked, optax.GradientTransformation)


def test_the_trainer_checks_each_setting_once(validate_calls: list[str]) -> None:
    """The trainer's two paths: a config checked by ``app.build.check`` (registry.validate and
    TrainConfig.validate) is built with ``make_optimizer(validated=True)`` and not checked again;
    ``make_optimizer(config)`` alone checks it once, through ``build``."""
    config = tiny_config(optimizer="muon", optimizer_kwargs={"muon_lr": 0.01})
    declared = [hp.name for hp in trainer_registry().get("muon").hyperparams]
    validate_calls.clear()  # the plugins' declarations, if the registry was built just now
    checked = check(config)
    assert validate_calls == declared
    validate_calls.clear()
    make_optimizer(checked, validated=True)
    assert validate_calls == []
    make_optimizer(config)
    assert validate_calls == declared
