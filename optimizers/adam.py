r"""Adam with PureJaxRL's epsilon: the PPO optimizer.

.. math::
  m_t = \beta_1 m_{t-1} + (1-\beta_1) g, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g^2, \quad
  \theta \leftarrow \theta - \eta_t \, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

No gradient clip: the registry's ``build`` applies it to every optimizer (outside the registry:
``optax.chain(optax.clip_by_global_norm(c), adam(lr))``). ``eps = 1e-5`` as in PureJaxRL (and
the PPO implementation details of Huang et al. 2022), not Adam's 1e-8: PPO gradients are small
and noisy, and a larger eps damps steps on parameters whose second moment is tiny.

References:
  Kingma and Ba, `Adam: A Method for Stochastic Optimization
  <https://arxiv.org/abs/1412.6980>`_, 2014.

  Lu et al., `PureJaxRL <https://github.com/luchris429/purejaxrl>`_, 2022.
"""

from __future__ import annotations

import warnings

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
    """``optax.adam`` with PureJaxRL's ``eps``; the learning rate may be a schedule.

    ``max_grad_norm`` is deprecated (it will be removed in the next release): it chains
    ``clip_by_global_norm`` in front (skipped if 0), with a ``FutureWarning``.
    """
    # The first link is where the clip was before issue 29: an identity now, kept so that the
    # optimizer-state layout (what a checkpoint holds) is unchanged and older runs still resume.
    tx = optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)
    if max_grad_norm is None:
        return optax.chain(optax.identity(), tx)
    warnings.warn(
        "optimizers.adam.adam(learning_rate, max_grad_norm) is deprecated and will be removed "
        "in the next release; use optax.chain(optax.clip_by_global_norm(max_grad_norm), "
        "adam(learning_rate)), or plugins.get_registry().build('adam', ...), which clips",
        FutureWarning,
        stacklevel=2,
    )
    clip = optax.clip_by_global_norm(max_grad_norm) if max_grad_norm else optax.identity()
    return optax.chain(clip, tx)
