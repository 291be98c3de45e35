r"""Adam with PureJaxRL's epsilon, optionally after a global-norm clip: the PPO optimizer.

.. math::
  g \leftarrow g \min(1, c / \|g\|_2), \quad
  m_t = \beta_1 m_{t-1} + (1-\beta_1) g, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g^2, \quad
  \theta \leftarrow \theta - \eta_t \, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

The ``adam`` plugin passes no clip: the registry's ``build`` applies it to every optimizer.
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

from optimizers.defaults import ADAM_B1, ADAM_B2, ADAM_EPS


def adam(
    learning_rate: optax.ScalarOrSchedule,
    max_grad_norm: float | None = None,
    *,
    b1: float = ADAM_B1,
    b2: float = ADAM_B2,
    eps: float = ADAM_EPS,
) -> optax.GradientTransformation:
    """``clip_by_global_norm(max_grad_norm)`` (skipped if ``None``/0), then ``optax.adam``."""
    clip = optax.clip_by_global_norm(max_grad_norm) if max_grad_norm else optax.identity()
    return optax.chain(clip, optax.adam(learning_rate, b1=b1, b2=b2, eps=eps))
