"""``--env SUITE/ID``: the registry of env suites (entry points, one loader), its one-line errors,
and the rule that the core imports no suite package."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import gymnax
import pytest

from ppo_trainer import envs, suites
from ppo_trainer.app import train_cli
from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SUITE_PACKAGES = ("jumanji", "navix", "craftax", "brax", "mujoco_playground", "mujoco",
                  "popgym_arcade")


def one_line_error(capsys, argv: list[str]) -> str:
    assert train_cli.main(argv) == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ppo-train: error: ")
    return lines[0]


@pytest.fixture
def fake_suites(monkeypatch):
    """Our built-in suites plus a third party's ``mine`` (CartPole under another name), a
    ``needy`` suite whose package is missing, and one trying to take the name ``jumanji``."""
    made = []

    def make(env_id, **kwargs):
        made.append((env_id, kwargs))
        return gymnax.make("CartPole-v1")

    mine = SimpleNamespace(make=make, REQUIRES=(), IDS=("cartpole",), __doc__="Mine.")
    needy = SimpleNamespace(make=make, REQUIRES=("no_such_package_4f2",),
                            INSTALL='pip install "needy-envs"')
    real = importlib.metadata.entry_points

    def entry(name, obj, dist):
        return SimpleNamespace(name=name, value=f"{dist}:{name}", load=lambda: obj,
                               dist=SimpleNamespace(name=dist, version="1.0"))

    extra = [entry("mine", mine, "mine-envs"), entry("needy", needy, "needy-envs"),
             entry("jumanji", mine, "impostor")]

    def entry_points(group):
        found = list(real(group=group))
        return found + extra if group == suites.ENTRY_POINT_GROUP else found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    suites._load.cache_clear()
    yield made
    suites._load.cache_clear()


def test_suite_ids_are_told_from_gymnax_ids_and_module_ids() -> None:
    assert suites.is_suite_id("jumanji/Snake-v1")
    assert not suites.is_suite_id("CartPole-v1")
    assert not suites.is_suite_id("my.pkg:Env-v0")
    assert envs.resolve_env_id("CartPole-v1") == "CartPole-v1"
    assert envs.resolve_env_id("snake_gymnax:Snake-v0") == "Snake-v0"


def test_builtin_suites_register_through_entry_points() -> None:
    declared = {ep.name: ep.value
                for ep in importlib.metadata.entry_points(group=suites.ENTRY_POINT_GROUP)}
    assert declared == dict(suites.BUILTIN_SUITES)
    found = suites.all_suites()
    assert set(suites.BUILTIN_SUITES) <= set(found)
    assert found["jumanji"].origin == "snake-ppo-jax:jumanji"
    assert found["jumanji"].install == 'pip install "snake-ppo-jax[jumanji]"'
    assert suites.load_problems() == ()


def test_third_party_suite_through_entry_point(fake_suites) -> None:
    env, params = envs.make_env(TrainConfig(env="mine/cartpole", env_kwargs={"a": 1}))
    assert fake_suites == [("cartpole", {"a": 1})]
    assert env.action_space(params).n == 2
    # a built-in name stays ours
    assert suites.all_suites()["jumanji"].origin == "snake-ppo-jax:jumanji"
    assert any("impostor:jumanji" in p and "ignored" in p for p in suites.load_problems())


def test_unknown_suite_lists_the_known_ones(capsys, fake_suites) -> None:
    with pytest.raises(ConfigError) as err:
        envs.resolve_env_id("nosuch/Thing-v0")
    assert "unknown env suite 'nosuch'" in str(err.value)
    assert "known suites: " in str(err.value) and "jumanji" in str(err.value)
    line = one_line_error(capsys, ["--env", "nosuch/Thing-v0"])
    assert "known suites: " in line and "mine" in line and "jumanji" in line


def test_missing_package_names_the_install_line(capsys, fake_suites, monkeypatch) -> None:
    line = one_line_error(capsys, ["--env", "needy/x"])
    assert "no_such_package_4f2" in line and 'pip install "needy-envs"' in line
    # a built-in suite's missing package names our extra
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jumanji" else real(name, *a))
    line = one_line_error(capsys, ["--env", "jumanji/Snake-v1"])
    assert 'pip install "snake-ppo-jax[jumanji]"' in line and "not installed" in line


def test_empty_id_is_one_line(capsys, fake_suites) -> None:
    assert "give an env id after 'mine/' (e.g. mine/cartpole)" in one_line_error(
        capsys, ["--env", "mine/"])


def test_core_imports_no_suite_package() -> None:
    # statically: only the adapters name a suite package
    for path in (ROOT / "ppo_trainer").rglob("*.py"):
        if "adapters" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in SUITE_PACKAGES, (path, name)
    # at run time: building a gymnax env and loading every suite imports no suite package
    code = ("import sys; from ppo_trainer import envs, ppo, presets, suites\n"
            "from ppo_trainer.app import build, runner\n"
            "from ppo_trainer.config import TrainConfig\n"
            "envs.make_env(TrainConfig(env='CartPole-v1')); suites.all_suites()\n"
            "envs.resolve_env_id('jumanji/Snake-v1')\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SUITE_PACKAGES!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout
