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
    """The step count :math:`k`, :math:`G_k` (weighted squared gradients), :math:`s_k`
    (weighted gradients) and :math:`x_0`."""

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
    """MADGRAD's update :math:`x_{k+1} - x_k` (``optax.contrib.scale_by_madgrad``; see
    ``ScaleByMadgrad``). ``learning_rate`` may be a schedule."""
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
    added to the gradient, as in optax); see ``ScaleByMadgrad``."""
    return chain(
        add_decayed_weights(weight_decay),
        scale_by_madgrad(learning_rate, momentum, eps),
    )
