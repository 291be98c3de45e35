"""Adam plugin optimizer: global-norm clip, eps 1e-5, schedulable learning rate."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

from optimizers.adam import adam


def test_adam_clips_then_steps_with_eps_1e5() -> None:
    params = {"w": jnp.zeros(4)}
    grads = {"w": jnp.array([3.0, 4.0, 0.0, 0.0])}  # norm 5, clipped to 0.5
    tx = adam(optax.linear_schedule(1e-2, 0.0, 10), max_grad_norm=0.5)
    updates, _ = tx.update(grads, tx.init(params))
    clipped = np.array([0.3, 0.4, 0.0, 0.0])
    np.testing.assert_allclose(updates["w"], -1e-2 * clipped / (np.abs(clipped) + 1e-5), rtol=1e-5)
    ref = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-2, eps=1e-5))
    r, _ = ref.update(grads, ref.init(params))
    np.testing.assert_allclose(updates["w"], r["w"], rtol=1e-6)


def test_adam_without_clip() -> None:
    tx = adam(1e-3, None)
    u, _ = tx.update({"w": jnp.array([100.0])}, tx.init({"w": jnp.zeros(1)}))
    np.testing.assert_allclose(u["w"], [-1e-3], rtol=1e-4)
