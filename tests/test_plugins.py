"""The optimizer registry: entry-point loading, names, the example plugin, every failure mode."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import types
import venv
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import optax
import pytest

import plugins
from optimizers import defaults
from plugins import (
    AmbiguousOptimizerError,
    HyperParam,
    HyperParameterError,
    OptimizerError,
    UnknownOptimizerError,
    make_registry,
)
from ppo_trainer.config import TrainConfig
from ppo_trainer.presets import tomllib

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ppo-optimizer-lion"
OURS = f"snake-ppo-jax {importlib.metadata.version('snake-ppo-jax')}"  # as installed


@pytest.fixture
def fake_dists(tmp_path, monkeypatch):
    """Install fake distributions the way pip lays them out: a dist-info (METADATA and
    entry_points.txt) and modules, in a directory of their own on sys.path (appended, or
    prepended with ``first=True``); undone after the test."""
    before = set(sys.modules)

    def install(
        dist: str, entry_points: dict[str, str], modules: dict[str, str], first: bool = False
    ) -> None:
        root = tmp_path / dist
        info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        lines = [f"{name} = {target}" for name, target in entry_points.items()]
        (info / "entry_points.txt").write_text(
            f"[{plugins.ENTRY_POINT_GROUP}]\n" + "\n".join(lines) + "\n"
        )
        for module, source in modules.items():
            (root / f"{module}.py").write_text(textwrap.dedent(source))
        path = [str(root), *sys.path] if first else [*sys.path, str(root)]
        monkeypatch.setattr(sys, "path", path)

    yield install
    for name in set(sys.modules) - before:
        del sys.modules[name]


def plugin_source(name: str, hyperparam: str = "good_b") -> str:
    """A working plugin module registering an SGD optimizer called ``name``."""
    return f"""
        from plugins import HyperParam, hookimpl

        def make(*, learning_rate, {hyperparam}):
            import optax
            return optax.sgd(learning_rate, momentum={hyperparam})

        @hookimpl
        def register_optimizers(register):
            register({name!r}, make, [HyperParam({hyperparam!r}, float, 0.5, "momentum")], "sgd")
    """


GOOD = plugin_source("good")


def test_builtins_listed_with_distribution_and_hyperparams() -> None:
    registry = plugins.get_registry()
    assert registry.names() == ["adam", "muon"] and registry.warnings == []
    muon = registry.get("muon")
    assert muon.distribution == OURS  # loaded through its entry point
    assert muon.plugin.key == "snake-ppo-jax:muon" and muon.plugin.builtin
    assert registry.get("snake-ppo-jax:muon") is muon is registry.get("Snake_PPO_jax:muon")
    hp = {h.name: h for h in muon.hyperparams}
    assert list(hp) == [
        "muon_lr",
        "aux_adam_lr",
        "muon_momentum",
        "muon_nesterov",
        "ns_preset",
        "ns_steps",
        "muon_weight_decay",
        "muon_heads",
    ]
    assert hp["muon_lr"].schedulable and hp["muon_lr"].default == defaults.MUON_LR == 0.02
    assert hp["aux_adam_lr"].default is None and hp["aux_adam_lr"].schedulable
    assert hp["ns_preset"].choices == ("cubic", "quintic", "polar_express")
    assert hp["ns_preset"].flag == "--ns-preset"
    assert {h.name: h.default for h in registry.get("adam").hyperparams} == {
        "adam_eps": 1e-5,
        "adam_b1": 0.9,
        "adam_b2": 0.999,
    }
    assert "--muon-lr float = 0.02 (schedulable)" in registry.format_table()


def test_source_tree_fallback_registers_builtins_once() -> None:
    no_eps = make_registry(entry_points=False)
    assert no_eps.names() == ["adam", "muon"] and no_eps.warnings == []
    assert no_eps.get("muon").distribution == "snake-ppo-jax (source tree)"
    # With the dist-info present, the entry points win and the fallback adds nothing.
    registry = make_registry()
    assert registry.names() == ["adam", "muon"] and registry.warnings == []
    assert registry.get("adam").distribution == OURS


def test_import_is_cheap() -> None:
    """Listing optimizers imports neither jax nor optax (the --help path)."""
    code = (
        "import sys, plugins; plugins.get_registry().names(); "
        "print(sorted(m for m in ('jax', 'optax', 'flax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_build_muon_and_adam() -> None:
    registry = plugins.get_registry()
    params = {"dense": {"kernel": jnp.ones((4, 8)), "bias": jnp.ones(8)}}
    for name in ("adam", "muon", "snake-ppo-jax:muon"):
        tx = registry.build(
            name,
            learning_rate=1e-3,
            max_grad_norm=0.5,
            schedule=lambda v: optax.linear_schedule(v, 0.0, 10),
        )
        assert isinstance(tx, optax.GradientTransformation)
        updates, _ = tx.update(params, tx.init(params), params)
        assert updates["dense"]["kernel"].shape == (4, 8)
    tx = registry.build("muon", learning_rate=1e-3, ns_preset="polar_express", muon_lr=0.01)
    tx.init(params)


def test_example_plugin_via_generated_dist_info(fake_dists) -> None:
    """The example package, exposed by a generated dist-info as pip would install it."""
    fake_dists(
        "ppo-optimizer-lion",
        {"lion": "ppo_optimizer_lion"},
        {"ppo_optimizer_lion": (EXAMPLE / "ppo_optimizer_lion.py").read_text()},
    )
    registry = make_registry()
    assert registry.names() == ["adam", "lion", "muon"] and registry.warnings == []
    info = registry.get("lion")
    assert info.distribution == "ppo-optimizer-lion 0.1" and info.plugin.entry_point == "lion"
    assert registry.get("ppo-optimizer-lion:lion") is info
    assert [h.name for h in info.hyperparams] == ["lion_b1", "lion_b2", "lion_weight_decay"]
    tx = registry.build("lion", learning_rate=1e-4, max_grad_norm=0.5, lion_b2=0.98)
    params = {"w": jnp.ones((3, 3))}
    updates, _ = tx.update(params, tx.init(params), params)
    assert float(abs(updates["w"]).max()) == pytest.approx(1e-4)  # Lion: lr * sign


@pytest.mark.skipif(not (ROOT / "docs" / "optimizers.md").is_file(),
                    reason="docs/ is not in the sdist")
def test_docs_show_the_example_verbatim() -> None:
    """docs/optimizers.md shows the tested example package as it is, file by file."""
    doc = (ROOT / "docs" / "optimizers.md").read_text()
    for name, lang in (("pyproject.toml", "toml"), ("ppo_optimizer_lion.py", "python")):
        text = (EXAMPLE / name).read_text().rstrip("\n")
        assert f"`examples/ppo-optimizer-lion/{name}`\n\n```{lang}\n{text}\n```" in doc, name


def _installed(requirement: str) -> bool:
    """Whether this environment has the distribution a requirement string names."""
    try:
        importlib.metadata.distribution(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0])
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_example_plugin_pip_install(tmp_path) -> None:
    """pip-installs the example into a fresh venv that reuses this environment's packages."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # --system-site-packages-like reuse: our site-packages and the source tree on sys.path.
    Path(site, "_reuse.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n{ROOT}\n")
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    # The example builds with the backend its pyproject names, taken from this environment
    # (--no-build-isolation: no download, so offline is no excuse). The environment "has no
    # build backend" when that backend does not import, or when what the backend itself asks
    # for to build a wheel (get_requires_for_build_wheel, e.g. `wheel` for older setuptools) is
    # not installed: only then does this skip. Otherwise a build failure is the example's.
    backend = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["build-system"]["build-backend"]
    asks = subprocess.run([sys.executable, "-c", f"import {backend} as b, json; r = "
                           "b.get_requires_for_build_wheel(); print('\\nREQUIRES', json.dumps(r))"],
                          cwd=src, capture_output=True, text=True)
    if asks.returncode != 0:
        pytest.skip(f"no build backend here: {backend} does not import")
    line = asks.stdout.rsplit("\nREQUIRES ", 1)[-1]
    missing = [r for r in json.loads(line) if not _installed(r)]
    if missing:
        pytest.skip(f"no complete build backend here: {backend} needs {missing} to build a wheel")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
           "--no-build-isolation"]
    result = subprocess.run([*pip, str(src)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"pip could not build the example: {result.stderr[-600:]}"
    code = (
        "import plugins; r = plugins.get_registry(); i = r.get('lion'); "
        "print(r.names(), i.distribution, r.warnings); r.build('lion', learning_rate=1e-3)"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['adam', 'lion', 'muon'] ppo-optimizer-lion 0.1.0 []"


# --- failure modes ---------------------------------------------------------------------------


def test_unknown_optimizer_lists_available() -> None:
    registry = plugins.get_registry()
    with pytest.raises(UnknownOptimizerError) as err:
        registry.get("mouns")
    assert (
        str(err.value) == "unknown optimizer 'mouns' (did you mean 'muon'?); available: adam, muon"
    )
    with pytest.raises(UnknownOptimizerError, match="available: adam, muon"):
        registry.build("lamb", learning_rate=1e-3)
    with pytest.raises(UnknownOptimizerError):
        registry.get("other-dist:muon")
    assert "lamb" not in registry and "other-dist:muon" not in registry
    assert issubclass(UnknownOptimizerError, OptimizerError) and issubclass(
        OptimizerError, ValueError
    )


def test_plugin_import_error_is_reported_and_others_work(fake_dists) -> None:
    fake_dists(
        "broken-dist", {"broken": "broken_plugin"}, {"broken_plugin": "import no_such_mod\n"}
    )
    fake_dists("good-dist", {"good": "good_plugin"}, {"good_plugin": GOOD})
    with pytest.warns(RuntimeWarning, match="broken"):
        registry = make_registry()
    assert registry.names() == ["adam", "good", "muon"]
    assert registry.warnings == [
        "optimizer plugin 'broken' from broken-dist 0.1 failed to import: "
        "ModuleNotFoundError: No module named 'no_such_mod'"
    ]


@pytest.mark.parametrize("first", [True, False], ids=["broken-first", "broken-last"])
def test_broken_third_party_muon_cannot_remove_the_builtin(fake_dists, first: bool) -> None:
    """A broken entry point named ``muon`` in another distribution (item 7): pluggy keyed
    plugins by entry-point name, so blocking it blocked ours (or it was skipped silently)."""
    fake_dists(
        "evil-dist", {"muon": "evil_muon"}, {"evil_muon": "raise ImportError('nope')\n"}, first
    )
    with pytest.warns(RuntimeWarning):
        registry = make_registry()
    assert registry.warnings == [
        "optimizer plugin 'muon' from evil-dist 0.1 failed to import: ImportError: nope"
    ]
    assert registry.names() == ["adam", "muon"]
    assert registry.get("muon").plugin.key == "snake-ppo-jax:muon"
    registry.build("muon", learning_rate=1e-3)


def test_third_party_cannot_take_over_a_builtin_module(fake_dists) -> None:
    """An entry point of another distribution (sorting before ours) naming our module: ours is
    registered first, the other is reported."""
    fake_dists("aaa-dist", {"muon": "optimizers.muon_plugin"}, {}, first=True)
    with pytest.warns(RuntimeWarning, match="cannot be registered"):
        registry = make_registry()
    assert registry.names() == ["adam", "muon"] and registry.get("muon").plugin.builtin
    assert registry.warnings[0].startswith(
        "optimizer plugin 'muon' from aaa-dist 0.1 cannot be registered: ValueError:"
    )


@pytest.mark.parametrize("first", [True, False], ids=["prepended", "appended"])
def test_working_third_party_muon_is_reachable_only_qualified(fake_dists, first: bool) -> None:
    """Same result in both sys.path orders; the built-in keeps the plain name."""
    fake_dists("other-dist", {"muon": "other_muon"}, {"other_muon": plugin_source("muon")}, first)
    with pytest.warns(RuntimeWarning, match="built-in"):
        registry = make_registry()
    assert registry.warnings == [
        "optimizer plugin 'muon' from other-dist 0.1: optimizer 'muon' is a built-in name; this "
        "one is available only as --optimizer other-dist:muon"
    ]
    assert registry.names() == ["adam", "muon", "other-dist:muon"]
    assert registry.get("muon").plugin.builtin
    assert registry.get("other-dist:muon").plugin.key == "other-dist:muon"
    assert [h.name for h in registry.get("other-dist:muon").hyperparams] == ["good_b"]


@pytest.mark.parametrize("first", [True, False], ids=["second-dist-first", "first-dist-first"])
def test_two_third_parties_one_name_is_ambiguous_in_any_order(fake_dists, first: bool) -> None:
    """Two working plugins registering ``good``: the same result whichever is first on sys.path
    (both prepended: second-dist ends up first); the plain name is an error listing both
    qualified names, each of which builds."""
    fake_dists("first-dist", {"plug": "p1"}, {"p1": GOOD}, first)
    fake_dists("second-dist", {"plug": "p2"}, {"p2": GOOD}, first)
    with pytest.warns(RuntimeWarning, match="registered by 2 plugins"):
        registry = make_registry()
    message = (
        "optimizer name 'good' is registered by 2 plugins; use --optimizer first-dist:good "
        "or --optimizer second-dist:good"
    )
    assert registry.warnings == [message]
    assert registry.names() == ["adam", "first-dist:good", "muon", "second-dist:good"]
    assert "good" not in registry
    with pytest.raises(AmbiguousOptimizerError) as err:
        registry.build("good", learning_rate=1e-3)
    assert str(err.value) == message
    assert registry.get("first-dist:good").plugin.key == "first-dist:plug"
    for name in ("first-dist:good", "second-dist:good"):
        registry.build(name, learning_rate=1e-3)


def test_raising_hook_is_reported_and_others_work(fake_dists) -> None:
    raising = """
        from plugins import hookimpl

        @hookimpl
        def register_optimizers(register):
            register("half", lambda **kw: None)
            raise RuntimeError("boom")
    """
    fake_dists("raising-dist", {"raising": "raising_plugin"}, {"raising_plugin": raising})
    fake_dists("good-dist", {"good": "good_plugin"}, {"good_plugin": GOOD})
    with pytest.warns(RuntimeWarning):
        registry = make_registry()
    assert "good" in registry and "half" not in registry  # a failing plugin registers nothing
    assert registry.warnings == [
        "optimizer plugin 'raising' from raising-dist 0.1 failed in register_optimizers: "
        "RuntimeError: boom"
    ]


def test_malformed_registration_is_reported(fake_dists) -> None:
    bad = """
        from plugins import HyperParam, hookimpl

        @hookimpl
        def register_optimizers(register):
            register("bad", lambda **kw: None, [HyperParam("beta", float, "x", "not a float")])
    """
    fake_dists("bad-dist", {"bad": "bad_plugin"}, {"bad_plugin": bad})
    with pytest.warns(RuntimeWarning):
        registry = make_registry()
    assert "bad" not in registry
    assert registry.warnings == [
        "optimizer plugin 'bad' from bad-dist 0.1 failed in register_optimizers: "
        "HyperParameterError: optimizer '<declaration>': hyperparameter 'beta' (--beta) must be "
        "a float, got str 'x'"
    ]


# --- hooks that silently registered nothing (item 10) ------------------------------------------

SILENT = {
    "misspelt": (
        """
        from plugins import hookimpl

        @hookimpl
        def register_optimizer(register):
            register("x", lambda **kw: None)
        """,
        "optimizer plugin 'plug' from misspelt-dist 0.1: hook 'register_optimizer' matches no "
        "hook spec (expected 'register_optimizers'); it registers nothing",
    ),
    "unmarked": (
        """
        def register_optimizers(register):
            register("x", lambda **kw: None)
        """,
        "optimizer plugin 'plug' from unmarked-dist 0.1: its register_optimizers is not marked "
        "with @plugins.hookimpl; it registers nothing",
    ),
    "empty": (
        """
        from plugins import hookimpl

        @hookimpl
        def register_optimizers(register):
            pass
        """,
        "optimizer plugin 'plug' from empty-dist 0.1: register_optimizers registered no optimizer",
    ),
    "nohook": (
        "X = 1\n",
        "optimizer plugin 'plug' from nohook-dist 0.1: it has no register_optimizers hook",
    ),
    "wrongarg": (
        """
        from plugins import hookimpl

        @hookimpl
        def register_optimizers(reg):
            reg("x", lambda **kw: None)
        """,
        "optimizer plugin 'plug' from wrongarg-dist 0.1 cannot be registered: "
        "PluginValidationError: Plugin 'wrongarg-dist:plug' for hook 'register_optimizers' "
        "hookimpl definition: register_optimizers(reg) Argument(s) {'reg'} are declared in the "
        "hookimpl but can not be found in the hookspec",
    ),
}


@pytest.mark.parametrize("kind", list(SILENT))
def test_plugin_that_registers_nothing_says_why(fake_dists, kind: str) -> None:
    source, message = SILENT[kind]
    fake_dists(f"{kind}-dist", {"plug": f"{kind}_plugin"}, {f"{kind}_plugin": source})
    with pytest.warns(RuntimeWarning):
        registry = make_registry()
    assert registry.warnings == [message]
    assert registry.names() == ["adam", "muon"]


def test_extra_unknown_hook_is_reported_but_the_plugin_works(fake_dists) -> None:
    source = textwrap.dedent(GOOD) + "\n@hookimpl\ndef configure_optimizers():\n    pass\n"
    fake_dists("extra-dist", {"plug": "extra_plugin"}, {"extra_plugin": source})
    with pytest.warns(RuntimeWarning):
        registry = make_registry()
    assert registry.warnings == [
        "optimizer plugin 'plug' from extra-dist 0.1: hook 'configure_optimizers' matches no "
        "hook spec (expected 'register_optimizers')"
    ]
    assert "good" in registry


# --- hyperparameters named like the application's flags (item 8) ------------------------------


def test_reserved_hyperparameter_names_reject_that_optimizer(fake_dists) -> None:
    two = """
        from plugins import HyperParam, hookimpl

        @hookimpl
        def register_optimizers(register):
            register("clash", lambda **kw: None, [HyperParam("seed", int, 0, "a seed")])
            register("fine", lambda **kw: None, [HyperParam("fine_b", float, 0.5, "b")])
    """
    fake_dists("clash-dist", {"plug": "clash_plugin"}, {"clash_plugin": two})
    with pytest.warns(RuntimeWarning, match="'seed' is reserved"):
        registry = make_registry(reserved={"seed", "lr", "use_muon"})
    assert registry.warnings == [
        "optimizer plugin 'plug' from clash-dist 0.1: optimizer 'clash' is not registered: its "
        "hyperparameter 'seed' is reserved by the application"
    ]
    assert registry.names() == ["adam", "fine", "muon"]
    # Without the application's names only the always-reserved ones count.
    assert {"clash", "fine"} <= set(make_registry().names())


def test_learning_rate_is_always_reserved(fake_dists) -> None:
    source = """
        from plugins import HyperParam, hookimpl

        @hookimpl
        def register_optimizers(register):
            register("lr", lambda **kw: None, [HyperParam("learning_rate", float, 0.1, "lr")])
    """
    fake_dists("lr-dist", {"plug": "lr_plugin"}, {"lr_plugin": source})
    with pytest.warns(RuntimeWarning, match="'learning_rate' is reserved"):
        registry = make_registry()
    assert "lr" not in registry and registry.names() == ["adam", "muon"]


def test_get_registry_is_cached_per_reserved_set() -> None:
    a = plugins.get_registry(reserved=frozenset({"seed"}))
    assert plugins.get_registry(reserved={"seed"}) is a
    assert plugins.get_registry() is not a and plugins.get_registry() is plugins.get_registry()


def test_builtins_declare_no_trainer_flag() -> None:
    """What ppo-train reserves: every TrainConfig field and its CLI-only flags."""
    reserved = {f.name for f in dataclasses.fields(TrainConfig)}
    reserved |= {"use_muon", "list_optimizers", "help", "show_config", "preset"}
    registry = make_registry(reserved=reserved)
    assert registry.names() == ["adam", "muon"] and registry.warnings == []


# --- hyperparameter values --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"muon_lrr": 0.1},
            "optimizer 'muon' has no hyperparameter 'muon_lrr'; it accepts: muon_lr, aux_adam_lr, "
            "muon_momentum, muon_nesterov, ns_preset, ns_steps, muon_weight_decay, muon_heads",
        ),
        (
            {"muon_lr": "0.1"},
            "optimizer 'muon': hyperparameter 'muon_lr' (--muon-lr) must be a float or a "
            "schedule, got str '0.1'",
        ),
        (
            {"muon_lr": 0.0},
            "optimizer 'muon': hyperparameter 'muon_lr' (--muon-lr) must be > 0.0, got 0.0",
        ),
        (
            {"muon_lr": -0.02},
            "optimizer 'muon': hyperparameter 'muon_lr' (--muon-lr) must be > 0.0, got -0.02",
        ),
        (
            {"ns_preset": "septic"},
            "optimizer 'muon': hyperparameter 'ns_preset' (--ns-preset) must be one of cubic, "
            "quintic, polar_express; got 'septic'",
        ),
        (
            {"ns_steps": 2.5},
            "optimizer 'muon': hyperparameter 'ns_steps' (--ns-steps) must be a int, got float 2.5",
        ),
        (
            {"muon_nesterov": 1},
            "optimizer 'muon': hyperparameter 'muon_nesterov' (--muon-nesterov) must be a bool, "
            "got int 1",
        ),
        (
            {"muon_momentum": 1.0},
            "optimizer 'muon': hyperparameter 'muon_momentum' (--muon-momentum) must be < 1.0, "
            "got 1.0",
        ),
        (
            {"muon_lr": None},
            "optimizer 'muon': hyperparameter 'muon_lr' (--muon-lr) must be a float, got None",
        ),
        (
            {"muon_lr": float("nan")},
            "optimizer 'muon': hyperparameter 'muon_lr' (--muon-lr) must be finite, got nan",
        ),
    ],
)
def test_bad_hyperparameter(kwargs: dict, message: str) -> None:
    registry = plugins.get_registry()
    with pytest.raises(HyperParameterError) as err:
        registry.validate("muon", **kwargs)
    assert str(err.value) == message
    with pytest.raises(HyperParameterError):
        registry.build("muon", learning_rate=1e-3, **kwargs)


def test_bad_learning_rate_and_clip() -> None:
    registry = plugins.get_registry()
    for bad in (-1e-3, 0.0, None, "1e-3", True, float("inf")):
        with pytest.raises(HyperParameterError) as err:
            registry.build("adam", learning_rate=bad)
        assert str(err.value) == (
            f"optimizer 'adam': the learning rate (--lr) must be a float > 0 or a schedule, "
            f"got {bad!r}"
        )
    with pytest.raises(HyperParameterError) as err:
        registry.build("adam", learning_rate=1e-3, max_grad_norm=-1.0)
    assert str(err.value) == (
        "optimizer 'adam': max_grad_norm (--max-grad-norm) must be >= 0 (0 or None: no "
        "clipping), got -1.0"
    )


def test_validate_fills_defaults_and_coerces() -> None:
    values = plugins.get_registry().validate("muon", muon_lr=1, ns_steps=3)
    assert values["muon_lr"] == 1.0 and isinstance(values["muon_lr"], float)
    assert values["ns_steps"] == 3 and values["aux_adam_lr"] is None
    assert values["ns_preset"] == "quintic"
    assert HyperParam("x", float, 1.0, "h", schedulable=True).validate(abs, optimizer="o") is abs


# --- the entry-point loader, for any group --------------------------------------------------------


def _entry_point(dist: str | None, name: str, load: Any, version: str = "1.0") -> Any:
    return types.SimpleNamespace(
        name=name, value=f"{name}_module", load=load,
        dist=None if dist is None else types.SimpleNamespace(name=dist, version=version),
    )


def test_load_entry_points_order_isolation_keys_and_conversion(monkeypatch) -> None:
    """Any group: sorted by normalized distribution then entry-point name (the ``first``
    distribution before all), each load and conversion isolated, keyed ``dist:entry point``."""

    def broken() -> None:
        raise ImportError("missing dependency")

    found = [
        _entry_point("Zed_Dist", "a", lambda: {"x": 1}),
        _entry_point("alpha-dist", "b", broken),
        _entry_point("alpha-dist", "a", lambda: "not a mapping"),
        _entry_point("ours", "z", lambda: {"o": 0}),
        _entry_point(None, "loose", lambda: {"l": 2}),
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: found if group == "some.group" else [])

    def convert(ep: plugins.Loaded) -> dict:
        if not isinstance(ep.obj, dict):
            raise TypeError(f"{ep.key} gave a {type(ep.obj).__name__}")
        return {k: v + 1 for k, v in ep.obj.items()}

    loaded = plugins.load_entry_points("some.group", first="ours", convert=convert)
    assert [ep.key for ep in loaded] == [
        "ours:z", "alpha-dist:a", "alpha-dist:b", "unknown:loose", "zed-dist:a"
    ]
    assert [ep.dist_name for ep in loaded] == ["ours", "alpha-dist", "alpha-dist", None, "Zed_Dist"]
    errors = {ep.key: f"{type(ep.error).__name__}: {ep.error}" for ep in loaded if ep.error}
    assert errors == {
        "alpha-dist:a": "TypeError: alpha-dist:a gave a str",
        "alpha-dist:b": "ImportError: missing dependency",
    }
    assert loaded[0].obj == {"o": 1} and loaded[-1].obj == {"x": 2}
    assert loaded[-1].value == "a_module" and loaded[-1].version == "1.0"


def test_load_entry_points_builtins_fill_in_for_missing_metadata(monkeypatch) -> None:
    """``builtins`` are imported by name (``module`` or ``module:attr``) where the ``first``
    distribution does not declare them, and never twice."""
    declared = [_entry_point("ours", "declared", lambda: "from metadata")]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: declared)
    builtins = {"declared": "json", "extra": "json:dumps", "module": "textwrap"}
    loaded = plugins.load_entry_points("g", first="ours", builtins=builtins)
    assert [(ep.key, ep.version) for ep in loaded] == [
        ("ours:declared", "1.0"), ("ours:extra", None), ("ours:module", None)
    ]
    assert loaded[0].obj == "from metadata" and loaded[1].obj is json.dumps
    assert loaded[2].obj is textwrap
    only_builtins = plugins.load_entry_points("g", first="ours", builtins=builtins, discover=False)
    assert [ep.obj for ep in only_builtins] == [json, json.dumps, textwrap]
