"""Checkpoint files: an atomic round trip, and a state that does not fit its template named by
its first misfit leaf."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ppo_trainer.app.checkpoint import (
    CheckpointError,
    first_misfit,
    load_checkpoint,
    save_checkpoint,
)


def test_round_trip_keeps_values_update_and_meta(tmp_path: Path) -> None:
    state = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(2)}
    path = save_checkpoint(tmp_path / "c.msgpack", state, 7, {"knots": [[0, 1.0]]})
    assert not (tmp_path / "c.msgpack.tmp").exists()
    ckpt = load_checkpoint(path, jax.eval_shape(lambda: state))
    np.testing.assert_array_equal(ckpt.runner_state["w"], state["w"])
    assert (ckpt.update, ckpt.meta) == (7, {"knots": [[0, 1.0]]})


def test_a_shape_changing_flag_is_named_by_the_first_misfit_leaf(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.msgpack", {"w": jnp.zeros((2, 3))}, 1, {})
    template = {"w": jax.ShapeDtypeStruct((2, 4), jnp.float32)}
    with pytest.raises(CheckpointError, match=r"leaf \['w'\] has shape \(2, 3\), the config "
                       r"expects \(2, 4\) \(a shape-changing flag differs\)"):
        load_checkpoint(path, template)


def test_first_misfit_compares_against_the_expected_shape() -> None:
    template = ({"a": jnp.zeros((4, 3))}, jnp.zeros((4, 5)))
    kept_two = ({"a": jnp.zeros((2, 3))}, jnp.zeros((2, 5)))
    assert first_misfit(template, template) is None
    assert first_misfit(template, kept_two) == ("[0]['a']", (2, 3), (4, 3))
    assert first_misfit(template, kept_two, lambda want: (2, *want.shape[1:])) is None
