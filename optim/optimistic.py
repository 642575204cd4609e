"""Optimistic gradient methods for saddle-point (min-max) problems: OGD and optimistic Adam.

They extrapolate with the previous gradient, :math:`g_t + \\beta (g_t - g_{t-1})`, which damps
the cycling of plain gradient descent-ascent on games such as GANs.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import hyper
from optim._numerics import cast_like_grads, store_like
from optim._pytree import pytree_dataclass
from optim._tree import PyTree, full_like, map_arrays, upcast
from optim.base import Chain, Transformation, chain, check_updates
from optim.transforms._building_blocks import scale_by_adam, scale_by_learning_rate

__all__ = [
    "ScaleByOptimisticGradientState",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "scale_by_optimistic_gradient",
]


class ScaleByOptimisticGradientState(NamedTuple):
    """Whether no step was taken yet, and the previous incoming update."""

    is_initial_step: jax.Array
    previous_gradient: PyTree


@pytree_dataclass
class ScaleByOptimisticGradient(Transformation):
    r"""Generalized optimistic gradient (Mokhtari, Ozdaglar & Pattathil, 2020, "A Unified
    Analysis of Extra-gradient and Optimistic Gradient Methods for Saddle Point Problems:
    Proximal Point Approach").

    .. math:: u_t = (\alpha + \beta)\, g_t - \beta\, g_{t-1},

    with :math:`g_0 = g_1` (the first step is :math:`\alpha g_1`, as in optax).
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    alpha: Any
    beta: Any

    def init(self, params: PyTree) -> ScaleByOptimisticGradientState:
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.array(True), previous_gradient=full_like(params)
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.previous_gradient)

        def extrapolate(g: jax.Array, previous: jax.Array) -> jax.Array:
            g = upcast(g)
            previous = jnp.where(state.is_initial_step, g, upcast(previous))
            return (self.alpha + self.beta) * g - self.beta * previous

        out = map_arrays(extrapolate, updates, state.previous_gradient)
        new_state = ScaleByOptimisticGradientState(
            is_initial_step=jnp.array(False),
            previous_gradient=store_like(updates, state.previous_gradient),
        )
        return cast_like_grads(out, updates), new_state


def scale_by_optimistic_gradient(alpha: Any = 1.0, beta: Any = 1.0) -> ScaleByOptimisticGradient:
    """Extrapolate with the previous update (``optax.scale_by_optimistic_gradient``)."""
    return ScaleByOptimisticGradient(
        alpha=hyper(alpha, "alpha", schedule=False), beta=hyper(beta, "beta", schedule=False)
    )


def optimistic_gradient_descent(learning_rate: Any, alpha: Any = 1.0, beta: Any = 1.0) -> Chain:
    r"""Optimistic gradient descent (Mokhtari et al., 2020):
    :math:`\theta_{t+1} = \theta_t - \eta_t\big((\alpha+\beta) g_t - \beta g_{t-1}\big)`."""
    return chain(
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )


def optimistic_adam_v2(
    learning_rate: Any,
    *,
    alpha: Any = 1.0,
    beta: Any = 1.0,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-08,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
) -> Chain:
    r"""Optimistic Adam (Daskalakis et al., 2018, "Training GANs with Optimism").

    .. math:: r_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon),\quad
        \theta_{t+1} = \theta_t - \eta_t\big((\alpha+\beta) r_t - \beta r_{t-1}\big)

    with Nesterov momentum in :math:`\hat m_t` by default; see ``scale_by_adam``. optax's
    deprecated ``optimistic_adam`` (optimism as a second learning rate) is not provided:
    ``optimistic_adam(lr, o)`` is ``optimistic_adam_v2(1.0, alpha=lr, beta=o)``.
    """
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov
        ),
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )
