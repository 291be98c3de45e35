"""The optimizer registry: entry-point loading, the example plugin, and every failure mode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

import plugins
from plugins import (
    DuplicateOptimizerError,
    HyperParam,
    HyperParameterError,
    OptimizerError,
    UnknownOptimizerError,
    make_registry,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ppo-optimizer-lion"


@pytest.fixture
def fake_dists(tmp_path, monkeypatch):
    """Install fake distributions: a dist-info (METADATA + entry_points.txt) and modules on
    sys.path, the way pip lays them out; undone after the test."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
        info = tmp_path / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        lines = [f"{name} = {target}" for name, target in entry_points.items()]
        (info / "entry_points.txt").write_text(
            f"[{plugins.ENTRY_POINT_GROUP}]\n" + "\n".join(lines) + "\n"
        )
        for module, source in modules.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))

    yield install
    for name in set(sys.modules) - before:
        del sys.modules[name]


GOOD = """
    from plugins import HyperParam, hookimpl

    def make(*, learning_rate, max_grad_norm, good_b=0.5):
        import optax
        return optax.sgd(learning_rate, momentum=good_b)

    @hookimpl
    def register_optimizers(register):
        register("good", make, [HyperParam("good_b", float, 0.5, "momentum")], "sgd")
"""


def test_builtins_listed_with_distribution_and_hyperparams() -> None:
    registry = plugins.get_registry()
    assert {"adam", "muon"} <= set(registry.names())
    muon = registry.get("muon")
    assert muon.distribution.startswith("snake-ppo-jax")  # loaded through its entry point
    assert muon.plugin == "muon"
    hp = {h.name: h for h in muon.hyperparams}
    assert set(hp) == {
        "muon_lr",
        "aux_adam_lr",
        "muon_momentum",
        "muon_nesterov",
        "ns_preset",
        "ns_steps",
        "muon_weight_decay",
        "muon_heads",
    }
    assert hp["muon_lr"].schedulable and hp["muon_lr"].default == 0.02
    assert hp["aux_adam_lr"].default is None and hp["aux_adam_lr"].schedulable
    assert hp["ns_preset"].choices == ("cubic", "quintic", "polar_express")
    assert hp["ns_preset"].flag == "--ns-preset"
    assert registry.get("adam").defaults() == {"adam_eps": 1e-5, "adam_b1": 0.9, "adam_b2": 0.999}
    assert registry.schedulable("muon") == ["muon_lr", "aux_adam_lr"]
    assert "--muon-lr float = 0.02 (schedulable)" in registry.format_table()


def test_source_tree_fallback_registers_builtins_once() -> None:
    no_eps = make_registry(entry_points=False)
    assert no_eps.names() == ["adam", "muon"]
    assert no_eps.get("muon").distribution == "<source tree>"
    # With the dist-info present, the entry points win and the fallback adds nothing.
    registry = make_registry()
    assert registry.names().count("muon") == 1 and not registry.warnings
    pm = plugins.registry.make_plugin_manager(plugins.OptimizerRegistry())
    assert [n for n, _ in pm.list_name_plugin() if n in ("adam", "muon")] == ["adam", "muon"]


def test_import_is_cheap() -> None:
    """Listing optimizers imports neither jax nor optax (the --help path)."""
    code = (
        "import sys, plugins; plugins.get_registry().names(); "
        "print(sorted(m for m in ('jax', 'optax', 'flax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_build_muon_and_adam() -> None:
    import jax.numpy as jnp
    import optax

    registry = plugins.get_registry()
    params = {"dense": {"kernel": jnp.ones((4, 8)), "bias": jnp.ones(8)}}
    for name in ("adam", "muon"):
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
    assert {"adam", "lion", "muon"} <= set(registry.names()), registry.warnings
    info = registry.get("lion")
    assert info.distribution == "ppo-optimizer-lion 0.1" and info.plugin == "lion"
    assert [h.name for h in info.hyperparams] == ["lion_b1", "lion_b2", "lion_weight_decay"]
    import jax.numpy as jnp

    tx = registry.build("lion", learning_rate=1e-4, max_grad_norm=0.5, lion_b2=0.98)
    params = {"w": jnp.ones((3, 3))}
    updates, _ = tx.update(params, tx.init(params), params)
    assert float(abs(updates["w"]).max()) == pytest.approx(1e-4)  # Lion: lr * sign


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
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    result = subprocess.run([*pip, str(src)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.skip(f"pip could not build the example (offline?): {result.stderr[-300:]}")
    code = (
        "import plugins; r = plugins.get_registry(); i = r.get('lion'); "
        "print(r.names(), i.distribution); r.build('lion', learning_rate=1e-3)"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    assert "'lion'" in out.stdout and "ppo-optimizer-lion 0.1.0" in out.stdout


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
    assert {"adam", "good", "muon"} <= set(registry.names())
    assert registry.warnings == [
        "optimizer plugin 'broken' from broken-dist 0.1 failed to import: "
        "ModuleNotFoundError: No module named 'no_such_mod'"
    ]


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
            register("bad", lambda **kw: None, [HyperParam("lr", float, "x", "not a float")])
    """
    fake_dists("bad-dist", {"bad": "bad_plugin"}, {"bad_plugin": bad})
    with pytest.warns(RuntimeWarning):
        registry = make_registry()
    assert "bad" not in registry
    assert registry.warnings == [
        "optimizer plugin 'bad' from bad-dist 0.1 failed in register_optimizers: "
        "HyperParameterError: optimizer '<declaration>': hyperparameter 'lr' (--lr) must be a "
        "float, got str 'x'"
    ]


def test_duplicate_name_names_both_plugins(fake_dists) -> None:
    fake_dists("first-dist", {"first": "first_plugin"}, {"first_plugin": GOOD})
    fake_dists("second-dist", {"second": "second_plugin"}, {"second_plugin": GOOD})
    with pytest.warns(RuntimeWarning, match="registered by both"):
        registry = make_registry()
    message = (
        "optimizer name 'good' is registered by both plugin 'first' from first-dist 0.1 and "
        "plugin 'second' from second-dist 0.1; neither is used"
    )
    assert registry.warnings == [message]
    assert "good" not in registry.names() and {"adam", "muon"} <= set(registry.names())
    with pytest.raises(DuplicateOptimizerError) as err:
        registry.build("good", learning_rate=1e-3)
    assert str(err.value) == message


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
    for bad in (-1e-3, 0.0, None, "1e-3", True):
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
