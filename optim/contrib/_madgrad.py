"""MADGRAD (Defazio & Jelassi, 2021): momentumized, adaptive, dual-averaged gradient method."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import decay, nonnegative, value_at
from optim._keywords import suggest_keywords
from optim._numerics import (
    cast_like_grads,
    decay_complement,
    decay_rate,
    square_safe,
    store_like,
)
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_same_structure,
    float_copy,
    full_like,
    map_arrays,
    reject_complex,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, chain, check_updates, require_params
from optim.transforms._adding import add_decayed_weights

__all__ = ["MadgradState", "madgrad", "scale_by_madgrad"]


class MadgradState(NamedTuple):
    """The state of :func:`optim.contrib.scale_by_madgrad`.

    Attributes:
      count: :math:`k`, the number of updates so far (int32).
      grad_sum_sq: :math:`G_k`, the weighted sum of the squared gradients, a pytree like the
        params.
      s: :math:`s_k`, the weighted sum of the gradients, a pytree like the params.
      x0: :math:`x_0`, the parameters at ``init``.
    """

    count: jax.Array
    grad_sum_sq: PyTree
    s: PyTree
    x0: PyTree


@pytree_dataclass
class ScaleByMadgrad(Transformation):
    r"""MADGRAD (Defazio & Jelassi, 2021, "Adaptivity without Compromise: A Momentumized,
    Adaptive, Dual Averaged Gradient Method for Stochastic Optimization"), as in optax and
    the authors' PyTorch code (step :math:`k` from 0, :math:`\eta_k` the learning rate).

    .. math::
        \lambda_k = (\eta_k + \epsilon)\sqrt{k + 1},\quad
        G_{k+1} = G_k + \lambda_k g_k^2,\quad s_{k+1} = s_k + \lambda_k g_k,\\
        z_{k+1} = x_0 - \frac{s_{k+1}}{G_{k+1}^{1/3} + \epsilon},\quad
        x_{k+1} = (1 - c)\, z_{k+1} + c\, x_k,\quad u_k = x_{k+1} - x_k,

    :math:`c` = ``momentum``. The update is the new iterate minus the current one (not a
    descent direction to scale), so the learning rate lives here. Real parameters only
    (the cube root of :math:`G`).
    """

    learning_rate: Any = nonnegative(schedule=True)
    momentum: Any = decay(closed=True)
    eps: Any = nonnegative()

    def init(self, params: PyTree) -> MadgradState:
        reject_complex(params, "madgrad", "its denominator is a cube root of squared gradients")
        return MadgradState(
            count=zero_count(),
            grad_sum_sq=full_like(params),
            s=full_like(params),
            x0=float_copy(params),
        )

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "madgrad")
        check_updates(updates, state.s)
        check_same_structure(params, state.x0, "params", "the optimizer state")
        learning_rate = value_at(self.learning_rate, state.count)
        weight = (learning_rate + self.eps) * jnp.sqrt(state.count + 1.0)
        # Bounded so that g^2 stays finite (see optim._numerics.square_safe).
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        grad_sum_sq = map_arrays(lambda g, v: upcast(v) + weight * g**2, grads, state.grad_sum_sq)
        s = map_arrays(lambda g, s: upcast(s) + weight * g, grads, state.s)
        c = self.momentum

        def step(x0: jax.Array, s: jax.Array, v: jax.Array, x: jax.Array) -> jax.Array:
            z = x0 - s / (jnp.cbrt(v) + self.eps)
            x = upcast(x)
            # x_{k+1} - x_k as optax computes it, so that trajectories agree to rounding.
            return (decay_complement(c) * z + decay_rate(c) * x) - x

        out = map_arrays(step, state.x0, s, grad_sum_sq, params)
        new_state = MadgradState(
            count=safe_increment(state.count),
            grad_sum_sq=store_like(grad_sum_sq, state.grad_sum_sq),
            s=store_like(s, state.s),
            x0=state.x0,
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_madgrad(
    learning_rate: ScalarOrSchedule, momentum: Any = 0.9, eps: Any = 1e-6
) -> ScaleByMadgrad:
    r"""MADGRAD's update :math:`x_{k+1} - x_k` (``optax.contrib.scale_by_madgrad``).

    With step :math:`k` from 0 and :math:`\eta_k` the learning rate:

    .. math::
        \lambda_k = (\eta_k + \epsilon)\sqrt{k + 1},\quad
        G_{k+1} = G_k + \lambda_k g_k^2,\quad s_{k+1} = s_k + \lambda_k g_k,\\
        z_{k+1} = x_0 - \frac{s_{k+1}}{G_{k+1}^{1/3} + \epsilon},\quad
        x_{k+1} = (1 - c)\, z_{k+1} + c\, x_k,\quad u_k = x_{k+1} - x_k.

    The update is the new iterate minus the current one (not a descent direction to scale),
    so the learning rate lives here; ``update`` needs the params. Real parameters only.

    Args:
      learning_rate: :math:`\eta_k \ge 0`, a number or a schedule ``count -> float``.
      momentum: :math:`c`, the weight of the current iterate in the averaging, in ``[0, 1]``.
      eps: :math:`\epsilon \ge 0`, added to the learning rate in :math:`\lambda_k` and to the
        cube root of :math:`G`.

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.MadgradState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.scale_by_madgrad(learning_rate=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([0.5, -0.5]), state, params)
      >>> print([round(float(u), 4) for u in updates])
      [-0.0171, 0.0171]

    References:
      Defazio & Jelassi, 2021, `Adaptivity without Compromise: A Momentumized, Adaptive, Dual
      Averaged Gradient Method for Stochastic Optimization
      <https://arxiv.org/abs/2101.11075>`_.
    """
    return ScaleByMadgrad(
        learning_rate=learning_rate,
        momentum=momentum,
        eps=eps,
    )


@suggest_keywords
def madgrad(
    learning_rate: ScalarOrSchedule, momentum: Any = 0.9, weight_decay: Any = 0.0, eps: Any = 1e-6
) -> Chain:
    r"""MADGRAD (Defazio & Jelassi, 2021) on :math:`g_k + w\,x_k` (L2 weight decay :math:`w`
    added to the gradient, as in optax), with the update of
    :func:`optim.contrib.scale_by_madgrad`.

    Args:
      learning_rate: :math:`\eta_k \ge 0`, a number or a schedule ``count -> float``.
      momentum: :math:`c`, the weight of the current iterate in the averaging, in ``[0, 1]``.
      weight_decay: :math:`w`, the L2 penalty's coefficient added to the gradient (0: none).
      eps: :math:`\epsilon \ge 0`, added to the learning rate and to the cube root of the
        squared-gradient sum.

    Returns:
      The :class:`optim.GradientTransformation` chain ``(add_decayed_weights,
      scale_by_madgrad)``; ``update`` needs the params.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.madgrad(learning_rate=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4))  # from 29.0
      26.0823

    References:
      Defazio & Jelassi, 2021, `Adaptivity without Compromise: A Momentumized, Adaptive, Dual
      Averaged Gradient Method for Stochastic Optimization
      <https://arxiv.org/abs/2101.11075>`_.
    """
    return chain(
        add_decayed_weights(weight_decay),
        scale_by_madgrad(learning_rate, momentum, eps),
    )
