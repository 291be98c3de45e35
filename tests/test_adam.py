"""Adam: PureJaxRL's eps 1e-5, schedules, the deprecated clip of the library function, the plugin."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import plugins
from optimizers.adam import adam


def test_eps_is_1e5() -> None:
    """At |g| = 1e-5 the first step is lr * g / (|g| + eps) = lr / 2 with eps 1e-5 (it would be
    ~lr with Adam's usual 1e-8)."""
    params = {"w": jnp.zeros(2)}
    tx = adam(optax.linear_schedule(1e-2, 0.0, 10))
    updates, _ = tx.update({"w": jnp.array([1e-5, -1e-5])}, tx.init(params))
    np.testing.assert_allclose(updates["w"], [-5e-3, 5e-3], rtol=1e-3)


def test_deprecated_clip_scales_what_the_moments_remember() -> None:
    """``adam(lr, c)`` (deprecated: the registry clips) == Adam fed clipped gradients: visible at
    the second step, after a gradient of norm 5 (clipped to 0.5) and one of norm 0.3 in another
    direction."""
    params = {"w": jnp.zeros(2)}
    grads = [{"w": jnp.array([3.0, 4.0])}, {"w": jnp.array([0.3, 0.0])}]

    def second_update(tx: optax.GradientTransformation, gs: list) -> np.ndarray:
        state = tx.init(params)
        for g in gs:
            u, state = tx.update(g, state)
        return np.asarray(u["w"])

    with pytest.warns(FutureWarning, match=r"adam\(learning_rate, max_grad_norm\) is deprecated"):
        clipped = second_update(adam(1e-2, max_grad_norm=0.5), grads)
    reference = second_update(adam(1e-2), [{"w": jnp.array([0.3, 0.4])}, grads[1]])
    raw = second_update(adam(1e-2), grads)
    np.testing.assert_allclose(clipped, reference, rtol=1e-6)
    assert np.max(np.abs(clipped - raw)) > 0.1 * np.max(np.abs(raw))


def test_plugin_is_optax_adam_with_eps_1e5() -> None:
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([1e-5, 0.5, -2.0])}
    tx = plugins.get_registry().build("adam", learning_rate=1e-3)
    ref = optax.adam(1e-3, eps=1e-5)
    u, _ = tx.update(grads, tx.init(params))
    r, _ = ref.update(grads, ref.init(params))
    np.testing.assert_allclose(u["w"], r["w"], rtol=1e-6)
