r"""Adam after a global-norm clip: the PureJaxRL PPO optimizer.

.. math::
  g \leftarrow g \min(1, c / \|g\|_2), \quad
  m_t = \beta_1 m_{t-1} + (1-\beta_1) g, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g^2, \quad
  \theta \leftarrow \theta - \eta_t \, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

``eps = 1e-5`` as in PureJaxRL (and the PPO implementation details of Huang et al. 2022), not
Adam's 1e-8: PPO gradients are small and noisy, and a larger eps damps steps on parameters
whose second moment is tiny.

References:
  Kingma and Ba, `Adam: A Method for Stochastic Optimization
  <https://arxiv.org/abs/1412.6980>`_, 2014.

  Lu et al., `PureJaxRL <https://github.com/luchris429/purejaxrl>`_, 2022.
"""

from __future__ import annotations

import optax


def adam(
    learning_rate: optax.ScalarOrSchedule,
    max_grad_norm: float | None = None,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-5,
) -> optax.GradientTransformation:
    """``clip_by_global_norm(max_grad_norm)`` (skipped if ``None``/0), then ``optax.adam``."""
    clip = optax.clip_by_global_norm(max_grad_norm) if max_grad_norm else optax.identity()
    return optax.chain(clip, optax.adam(learning_rate, b1=b1, b2=b2, eps=eps))
