"""The versioned plugin contract (``plugins.PLUGIN_API``), the deprecation path of plugin API 1,
and the package version (``ppo-train --version``, ``config.json``, the changelog).

An "old" plugin below is written exactly as the README taught before the clip moved into the
registry: its factory takes ``max_grad_norm`` and clips itself.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from conftest import update_sequence

import plugins
from optimizers import adam_plugin, muon_plugin
from plugins import (
    PLUGIN_API,
    HyperParam,
    PluginAPIDeprecationWarning,
    PluginAPIError,
    hookimpl,
    make_registry,
)
from plugins import registry as registry_module
from plugins.api import CONTRACTS, OLDEST_PLUGIN_API
from ppo_trainer.app import train_cli as cli
from ppo_trainer.app.rundir import RunDir
from ppo_trainer.version import package_version, source_tree_version

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
MOMENTUM = [HyperParam("sgdm_momentum", float, 0.9, "momentum", minimum=0.0, maximum=1.0)]
PARAMS = {"w": jnp.zeros((3, 4)), "b": jnp.zeros(4)}
TINY = ["--env", "CartPole-v1", "--num-envs", "4", "--num-steps", "8", "--total-timesteps", "64",
        "--update-epochs", "1", "--num-minibatches", "2", "--hidden-size", "8",
        "--num-hidden-layers", "1", "--eval-episodes", "2", "--no-anneal-lr"]


def make_sgdm_old(*, learning_rate: Any, max_grad_norm: float | None, sgdm_momentum: float) -> Any:
    """Plugin API 1, as the earlier README's example: the factory clips itself."""
    clip = optax.clip_by_global_norm(max_grad_norm) if max_grad_norm else optax.identity()
    return optax.chain(clip, optax.sgd(learning_rate, momentum=sgdm_momentum))


def make_sgdm_new(*, learning_rate: Any, sgdm_momentum: float) -> Any:
    """Plugin API 2: no clip (the registry adds it)."""
    return optax.sgd(learning_rate, momentum=sgdm_momentum)


def install(
    monkeypatch: pytest.MonkeyPatch,
    dist: str,
    factories: dict[str, Callable[..., Any]],
    *,
    module_api: Any = None,
    register_api: dict[str, Any] | None = None,
) -> None:
    """A fake entry point of distribution ``dist`` whose module registers ``factories``.

    ``module_api``: the module's ``PLUGIN_API`` (absent if None); ``register_api``: per optimizer
    name, the ``register(..., plugin_api=)`` it passes (none passed for names not in it).
    """
    module = types.ModuleType(f"{dist.replace('-', '_')}_plugin")
    if module_api is not None:
        module.PLUGIN_API = module_api

    def register_optimizers(register: Any) -> None:
        for name, factory in factories.items():
            extra = {"plugin_api": register_api[name]} if name in (register_api or {}) else {}
            register(name, factory, MOMENTUM, f"{name} from {dist}", **extra)

    module.register_optimizers = hookimpl(register_optimizers)
    ep = types.SimpleNamespace(
        name=dist, dist=types.SimpleNamespace(name=dist, version="1.0"), load=lambda: module
    )
    current = importlib.metadata.entry_points
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: [*current(group=group), *([ep] if group == plugins.ENTRY_POINT_GROUP else [])],
    )


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts as a new process would: no plugin warned yet and no registry cached, so
    the first registry a test asks for sees its fake plugins; the process's own cache and warned
    set come back afterwards, so no fake plugin outlives its test."""
    monkeypatch.setattr(registry_module, "_DEPRECATION_WARNED", set())
    monkeypatch.setattr(registry_module, "_REGISTRIES", {})


def deprecations(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, PluginAPIDeprecationWarning)]


def build_quietly(**kwargs: Any) -> plugins.OptimizerRegistry:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        registry = make_registry(**kwargs)
    build_quietly.record = record  # type: ignore[attr-defined]
    return registry


# --- the version and its contracts ---------------------------------------------------------------


def test_plugin_api_is_the_newest_contract_and_docs_list_every_version() -> None:
    assert isinstance(PLUGIN_API, int) and PLUGIN_API == max(CONTRACTS) == 2
    assert sorted(CONTRACTS) == list(range(OLDEST_PLUGIN_API, PLUGIN_API + 1))
    doc = (ROOT / "docs" / "optimizers.md").read_text()
    section = doc.split("## Plugin API versions", 1)[1].split("\n## ", 1)[0]
    for version in CONTRACTS:
        assert re.search(rf"^\| {version} \|", section, re.M), f"no row for plugin API {version}"


def test_our_plugins_declare_the_current_version() -> None:
    """The built-ins and the example declare PLUGIN_API as a number, so bumping the contract
    without updating them fails here."""
    path = ROOT / "examples" / "ppo-optimizer-lion" / "ppo_optimizer_lion.py"
    spec = importlib.util.spec_from_file_location("_lion_example", path)
    lion = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lion)
    for module in (adam_plugin, muon_plugin, lion):
        assert module.PLUGIN_API == PLUGIN_API, module.__name__
    registry = build_quietly()
    assert {registry.get(n).api for n in ("adam", "muon")} == {PLUGIN_API}
    assert registry.warnings == [] and deprecations(build_quietly.record) == []


# --- recognising an old plugin and serving it -----------------------------------------------------


def test_old_plugin_is_recognised_by_its_signature_and_warned_once(monkeypatch) -> None:
    install(monkeypatch, "sgdm-dist", {"sgdm": make_sgdm_old, "sgdm2": make_sgdm_old})
    with pytest.warns(PluginAPIDeprecationWarning) as record:
        registry = make_registry()
    messages = deprecations(record.list)
    assert len(messages) == 1, messages  # one per plugin, naming both of its optimizers
    assert messages[0].startswith("optimizer plugin 'sgdm-dist' from sgdm-dist 1.0: ")
    assert "optimizers 'sgdm', 'sgdm2' are written for plugin API 1" in messages[0]
    assert f"plugin API {PLUGIN_API} (factory(*, learning_rate, **hyperparams)" in messages[0]
    assert registry.warnings == messages  # what the CLIs print as one line
    assert registry.get("sgdm").api == 1 and registry.get("sgdm").declared_api is None
    assert "(plugin API 1, deprecated)" in registry.format_table()
    # once per plugin per process: a second registry lists the line but does not warn again
    again = build_quietly()
    assert deprecations(build_quietly.record) == [] and again.warnings == messages


def test_new_plugin_undeclared_is_current_and_silent(monkeypatch) -> None:
    install(monkeypatch, "new-dist", {"sgdn": make_sgdm_new})
    registry = build_quietly()
    assert deprecations(build_quietly.record) == [] and registry.warnings == []
    assert registry.get("sgdn").api == PLUGIN_API
    assert "deprecated" not in registry.format_table()


def test_old_factory_gets_max_grad_norm_and_is_not_clipped_again(monkeypatch) -> None:
    """The old factory receives max_grad_norm and its own clip is the only one: its updates
    equal optax's clip + sgd, and the chain the registry returns is the factory's own."""
    seen: list[dict] = []

    def make(**kwargs: Any) -> Any:
        seen.append(dict(kwargs))
        return make_sgdm_old(**kwargs)

    install(monkeypatch, "sgdm-dist", {"sgdm": make}, register_api={"sgdm": 1})
    registry = build_quietly()
    tx = registry.build("sgdm", learning_rate=0.1, max_grad_norm=0.5)
    assert seen == [{"learning_rate": 0.1, "max_grad_norm": 0.5, "sgdm_momentum": 0.9}]
    grads = [jax.tree.map(lambda p, s=s: jnp.full(p.shape, s), PARAMS) for s in (10.0, 0.01)]
    want = update_sequence(make_sgdm_old(learning_rate=0.1, max_grad_norm=0.5, sgdm_momentum=0.9), PARAMS, grads)
    for got, ref in zip(update_sequence(tx, PARAMS, grads), want, strict=True):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    registry.build("sgdm", learning_rate=0.1)  # no clip asked for: None, as plugin API 1 said
    assert seen[-1]["max_grad_norm"] is None


# --- declarations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "module_api", "register_api", "api"),
    [
        (make_sgdm_new, 2, None, 2),
        (make_sgdm_new, None, 2, 2),
        (make_sgdm_old, 1, None, 1),
        (make_sgdm_old, None, 1, 1),
        (make_sgdm_old, 2, 1, 1),  # register's keyword wins over the module attribute
        (make_sgdm_old, 0, None, 1),  # older than any contract: recognised by the signature
        (make_sgdm_new, -1, None, 2),
        (lambda **kw: make_sgdm_old(**kw), 1, None, 1),  # **kwargs: can take max_grad_norm
    ],
)
def test_declared_versions_the_registry_can_serve(
    monkeypatch, factory, module_api, register_api, api
) -> None:
    install(monkeypatch, "decl-dist", {"sgdm": factory}, module_api=module_api,
            register_api=None if register_api is None else {"sgdm": register_api})
    registry = build_quietly()
    assert registry.get("sgdm").api == api
    assert bool(deprecations(build_quietly.record)) == (api < PLUGIN_API)
    assert registry.build("sgdm", learning_rate=0.1, max_grad_norm=0.5) is not None


@pytest.mark.parametrize(
    ("factory", "declared", "needles"),
    [
        (make_sgdm_new, 3, ["written for plugin API 3", "implements plugin API 2"]),
        (make_sgdm_old, 2, ["declares plugin API 2", "as in plugin API 1"]),
        (make_sgdm_new, 1, ["declares plugin API 1", "takes no max_grad_norm", "plugin_api=2"]),
        (make_sgdm_new, "2", ["plugin_api='2'", "expected an int"]),
        (make_sgdm_new, True, ["plugin_api=True", "expected an int"]),
    ],
)
def test_declarations_it_cannot_serve_are_refused_in_one_line(
    monkeypatch, factory, declared, needles
) -> None:
    install(monkeypatch, "decl-dist", {"sgdm": factory, "fine": make_sgdm_new},
            register_api={"sgdm": declared})
    registry = build_quietly()
    assert "sgdm" not in registry.names() and "fine" in registry.names()  # the rest still works
    (line,) = [w for w in registry.warnings if "'sgdm'" in w]
    assert "\n" not in line and line.startswith("optimizer plugin 'decl-dist' from decl-dist 1.0")
    for needle in needles:
        assert needle in line, line
    for name in ("sgdm", "decl-dist:sgdm"):  # installed, so not "unknown": the reason, one line
        with pytest.raises(PluginAPIError) as err:
            registry.get(name)
        assert str(err.value) == line


# --- the CLI: list, train, refuse -----------------------------------------------------------------


@pytest.fixture
def clip_calls(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every ``optax.clip_by_global_norm`` built from now on (the registry's and a plugin's own)
    records each update it runs, at run time (a host callback inside the jitted program), with
    the norm it clipped to: counting calls tells one clip per update from two, which comparing
    norms cannot (clipping twice to the same norm changes nothing)."""
    calls: list[float] = []
    real = optax.clip_by_global_norm

    def spy(max_norm: float) -> optax.GradientTransformation:
        inner = real(max_norm)

        def update(grads: Any, state: Any, params: Any = None) -> Any:
            jax.debug.callback(lambda: calls.append(float(max_norm)))
            return inner.update(grads, state, params)

        return optax.GradientTransformation(inner.init, update)

    monkeypatch.setattr(optax, "clip_by_global_norm", spy)
    return calls


@pytest.mark.parametrize("contract", ["old", "new"])
def test_both_contracts_list_and_train_clipping_once_per_update(
    contract: str, monkeypatch, tmp_path: Path, capsys, clip_calls: list[float]
) -> None:
    old = contract == "old"
    install(monkeypatch, "sgdm-dist", {"sgdm": make_sgdm_old if old else make_sgdm_new})
    assert cli.main(["--list-optimizers"]) == 0
    listed = capsys.readouterr()
    assert "sgdm  [sgdm-dist 1.0]  sgdm from sgdm-dist" in listed.out
    argv = [*TINY, "--optimizer", "sgdm", "--lr", "0.01", "--max-grad-norm", "0.5",
            "--run-dir", str(tmp_path), "--run-name", "run"]
    assert cli.main(argv) == 0
    trained = capsys.readouterr()
    jax.effects_barrier()
    stderr = listed.err + trained.err
    warned = [line for line in stderr.splitlines() if "written for plugin API 1" in line]
    assert len(warned) == (1 if old else 0), stderr  # once for listing and training together
    if old:
        assert warned[0].startswith("ppo-train: warning: optimizer plugin 'sgdm-dist' from ")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    steps = config["num_updates"] * config["update_epochs"] * config["num_minibatches"]
    assert steps == 4 and clip_calls == [0.5] * steps  # once per optimizer step, never twice
    assert config["optimizer"] == "sgdm" and config["version"] == VERSION


def test_newer_plugin_is_refused_at_the_cli_in_one_line(monkeypatch, capsys) -> None:
    install(monkeypatch, "future-dist", {"sgdm": make_sgdm_new}, module_api=PLUGIN_API + 1)
    assert cli.main(["--optimizer", "sgdm", "--show-config"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ppo-train: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert f"written for plugin API {PLUGIN_API + 1}" in errors[0]
    assert f"implements plugin API {PLUGIN_API} (" in errors[0]


# --- the package version --------------------------------------------------------------------------


def test_ppo_train_version() -> None:
    run = subprocess.run([sys.executable, "-m", "ppo_trainer.app.train_cli", "--version"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"ppo-train {VERSION}"


def test_version_is_read_from_pyproject(tmp_path: Path) -> None:
    assert package_version() == source_tree_version(ROOT) == VERSION
    assert source_tree_version(tmp_path) is None  # no pyproject.toml
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\nversion = "9.9"\n')
    assert source_tree_version(tmp_path) is None  # another project's


def test_config_json_records_the_version(tmp_path: Path) -> None:
    parsed = cli.parse_args(["--env", "CartPole-v1"])
    run = RunDir(tmp_path)
    run.write_config(parsed.config, parsed.sources)
    assert json.loads(run.config.read_text())["version"] == VERSION
    assert run.read_config()[0] == parsed.config  # the extra key does not disturb reading back


def test_changelog_has_an_entry_for_this_version() -> None:
    """Bumping the version without a changelog entry (or the reverse) fails here."""
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert releases[0] == "Unreleased" and releases[1] == VERSION, releases
