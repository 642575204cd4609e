"""ACProp (Zhuang et al., 2021): AdaBelief's centred second moment, used one step late."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from optim._hyper import decay, nonnegative
from optim._keywords import suggest_keywords
from optim._numerics import (
    adaptive_step,
    cast_like_grads,
    debias_tree,
    ema_update,
    ema_update_sq,
    square_safe,
    store_like,
)
from optim._pytree import pytree_dataclass
from optim._tree import PyTree, full_like, map_arrays, safe_increment, upcast, zero_count
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, chain, check_updates
from optim.optimizers._adam_variants import ScaleByBeliefState
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate

__all__ = ["acprop", "scale_by_acprop"]


@pytree_dataclass
class ScaleByAcprop(Transformation):
    r"""ACProp (Zhuang et al., 2021, "Momentum Centering and
    Asynchronous Update for Adaptive Gradient Methods").

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2) |g_t - m_{t-1}|^2 + \epsilon_{root},\\
        u_t = \frac{g_t}{\sqrt{s_{t-1} / (1 - \beta_2^{t-1})} + \epsilon}
        \quad (u_1 = g_1 / (1 + \epsilon)).

    The denominator uses only past gradients (asynchronous), the numerator is the raw
    gradient; the state is AdaBelief's (``ScaleByBeliefState``). Complex parameters are
    supported (:math:`|\cdot|^2`), as in optax.
    """

    b1: Any = decay()
    b2: Any = decay()
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()

    def init(self, params: PyTree) -> ScaleByBeliefState:
        return ScaleByBeliefState(count=zero_count(), mu=full_like(params), nu=full_like(params))

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        b1, b2 = self.b1, self.b2
        # Bounded so that |g - m|^2 stays finite (see optim._numerics.square_safe).
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        mu = map_arrays(lambda g, m: ema_update(g, m, b1), grads, state.mu)
        nu = map_arrays(
            lambda g, m, s: ema_update_sq(g - upcast(m), s, b2) + self.eps_root,
            grads,
            state.mu,
            state.nu,
        )
        count = safe_increment(state.count)
        initial = state.count == 0
        # First step: no past second moment yet, the denominator is 1 + eps.
        previous = jnp.where(initial, count, state.count)
        nu_hat = debias_tree(map_arrays(upcast, state.nu), b2, previous)
        out = map_arrays(
            lambda g, s: adaptive_step(g, jnp.where(initial, 1.0, s), self.eps), grads, nu_hat
        )
        new_state = ScaleByBeliefState(
            count=count, mu=store_like(mu, state.mu), nu=store_like(nu, state.nu)
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_acprop(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-16, eps_root: Any = 1e-16
) -> ScaleByAcprop:
    r"""Rescale updates by ACProp's lagged centred second moment
    (``optax.contrib.scale_by_acprop``).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2) |g_t - m_{t-1}|^2 + \epsilon_{root},\\
        u_t = \frac{g_t}{\sqrt{s_{t-1} / (1 - \beta_2^{t-1})} + \epsilon}
        \quad (u_1 = g_1 / (1 + \epsilon)).

    The denominator uses only past gradients (asynchronous), the numerator is the raw gradient.

    Args:
      b1: :math:`\beta_1`, decay rate of the gradient's mean :math:`m_t`, in ``[0, 1)``.
      b2: :math:`\beta_2`, decay rate of the centred second moment :math:`s_t`, in ``[0, 1)``.
      eps: :math:`\epsilon \ge 0`, added to the root of the second moment in the denominator.
      eps_root: :math:`\epsilon_{root} \ge 0`, added to the second moment at every step.

    Returns:
      A :class:`optim.GradientTransformation` whose state is AdaBelief's
      (``ScaleByBeliefState``: ``count``, ``mu``, ``nu``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.scale_by_acprop()
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([0.5, -0.5]), state)
      >>> print(updates)  # the first step: g / (1 + eps)
      [ 0.5 -0.5]

    References:
      Zhuang et al., 2021, `Momentum Centering and Asynchronous Update for Adaptive Gradient
      Methods <https://arxiv.org/abs/2110.05454>`_.
    """
    return ScaleByAcprop(
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
    )


@suggest_keywords
def acprop(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""ACProp with weight decay (Zhuang et al., 2021):
    :math:`\theta_{t+1} = \theta_t - \eta_t (u_t + \lambda\theta_t)`, :math:`u_t` from
    ``scale_by_acprop``, the decay where ``mask`` is True.

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule ``count -> float``.
      b1: :math:`\beta_1`, decay rate of the gradient's mean, in ``[0, 1)``.
      b2: :math:`\beta_2`, decay rate of the centred second moment, in ``[0, 1)``.
      eps: :math:`\epsilon \ge 0`, added to the root of the second moment in the denominator.
      eps_root: :math:`\epsilon_{root} \ge 0`, added to the second moment at every step.
      weight_decay: :math:`\lambda`, the decoupled weight decay rate (0: none).
      mask: a pytree of booleans with the structure of the params (or a prefix of it), or a
        function ``params -> such a pytree``: where True, weight decay applies (``None``: on
        every leaf).

    Returns:
      The :class:`optim.GradientTransformation` chain ``(scale_by_acprop,
      add_decayed_weights, scale_by_learning_rate)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.acprop(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.95 -1.95]

    References:
      Zhuang et al., 2021, `Momentum Centering and Asynchronous Update for Adaptive Gradient
      Methods <https://arxiv.org/abs/2110.05454>`_.
    """
    return chain(
        scale_by_acprop(b1, b2, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
