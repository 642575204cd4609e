"""ADOPT (Taniguchi et al., 2024): Adam with the current gradient left out of its own scaling."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optim._hyper import dtype_option, flag, hyper_field, nonnegative, value_at
from optim._keywords import suggest_keywords
from optim._numerics import (
    cast_like_grads,
    ema_update,
    ema_update_sq,
    safe_sqrt,
    square_safe,
    store_like,
)
from optim._pytree import pytree_dataclass
from optim._tree import PyTree, map_arrays, reject_complex, safe_increment, upcast
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, chain, check_updates
from optim.optimizers._adam import ScaleByAdamState
from optim.transforms._scaling import scale_by_learning_rate


def _quarter_power(count: jax.Array) -> jax.Array:
    """The paper's default clipping bound :math:`c_t = t^{1/4}`."""
    return count**0.25


@pytree_dataclass
class ScaleByAdopt(Transformation):
    r"""ADOPT (Taniguchi et al., 2024, "ADOPT: Modified Adam Can Converge with Any
    :math:`\beta_2` with the Optimal Rate", with clipping; step counter :math:`t` from 0).

    .. math::
        v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2 \ (v_0 = |g_0|^2),\quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\,
            \mathrm{clip}\big(g_t / \max(\sqrt{v_{t-1}}, \epsilon), c_t\big)
        \ (m_0 = 0),\quad u_t = m_t.

    The normaliser :math:`v_{t-1}` does not contain :math:`g_t`, which makes the update
    unbiased for any :math:`\beta_2`. :math:`c_t` = ``clip_value_fn(t)`` bounds the normalised
    gradient element-wise when ``use_clipping`` (:math:`t^{1/4}` by default; the first step,
    where :math:`v_{-1} = 0`, moves nothing). ``nesterov=True`` returns
    :math:`\beta_1 m_t + (1-\beta_1)\,\mathrm{clip}(\cdot)` instead of :math:`m_t`.
    """

    b1: Any = hyper_field(low=0.0, high=1.0, high_open=True)
    b2: Any = hyper_field(low=0.0, high=1.0, high_open=True)
    eps: Any = nonnegative()
    clip_value_fn: Any = nonnegative(schedule=True)
    mu_dtype: Any = dtype_option()
    nesterov: bool = flag(False)
    use_clipping: bool = flag(True)

    def init(self, params: PyTree) -> ScaleByAdamState:
        if self.use_clipping:
            reject_complex(
                params, "adopt with use_clipping=True", "complex values cannot be clipped"
            )
        return ScaleByAdamState.zeros(params, self.mu_dtype)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        started = state.count > 0
        b1 = jnp.where(started, self.b1, 1.0)  # m_0 = 0
        b2 = jnp.where(started, self.b2, 0.0)  # v_0 = |g_0|^2
        # Numerical edges as in scale_by_adam: bounded gradients, 0 for 0/0, finite gradients.
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        nu = map_arrays(lambda g, v: ema_update_sq(g, v, b2), grads, state.nu)
        limit = value_at(self.clip_value_fn, state.count) if self.use_clipping else None

        def normalised(g: jax.Array, v: jax.Array) -> jax.Array:
            denominator = jnp.maximum(safe_sqrt(upcast(v)), self.eps)
            # 0 where the denominator is 0 (g / inf), selecting the divisor only (as adaptive_step).
            scaled = g / jnp.where(denominator > 0, denominator, jnp.inf)
            return scaled if limit is None else jnp.clip(scaled, -limit, limit)

        step = map_arrays(normalised, grads, state.nu)  # v_{t-1}: the old second moment
        mu = map_arrays(lambda s, m: ema_update(s, m, b1), step, state.mu)
        out = map_arrays(lambda s, m: ema_update(s, m, b1), step, mu) if self.nesterov else mu
        new_state = ScaleByAdamState(
            count=safe_increment(state.count),
            mu=store_like(mu, state.mu),
            nu=store_like(nu, state.nu),
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_adopt(
    b1: Any = 0.9,
    b2: Any = 0.9999,
    eps: Any = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Any = _quarter_power,
) -> ScaleByAdopt:
    r"""Rescale updates by ADOPT's decoupled moments (``optax.contrib.scale_by_adopt``).

    .. math::
        v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2 \ (v_0 = |g_0|^2),\quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\,
            \mathrm{clip}\big(g_t / \max(\sqrt{v_{t-1}}, \epsilon), c_t\big)
        \ (m_0 = 0),\quad u_t = m_t.

    The normaliser :math:`v_{t-1}` does not contain :math:`g_t`; the first step, where
    :math:`v_{-1} = 0`, moves nothing.

    Args:
      b1: :math:`\beta_1`, decay rate of the first moment, in ``[0, 1)``.
      b2: :math:`\beta_2`, decay rate of the second moment, in ``[0, 1)``.
      eps: :math:`\epsilon \ge 0`, the floor of :math:`\sqrt{v_{t-1}}` in the normaliser.
      mu_dtype: the storage dtype of the first moment (``None``: float32, or the parameter's
        dtype where wider).
      nesterov: return :math:`\beta_1 m_t + (1-\beta_1)\,\mathrm{clip}(\cdot)` instead of
        :math:`m_t`.
      use_clipping: clip the normalised gradient element-wise to :math:`[-c_t, c_t]`
        (complex parameters are rejected then).
      clip_value_fn: :math:`c_t`, a function of the step count (from 0) giving the clipping
        bound (default :math:`t^{1/4}`), or a number for a constant bound.

    Returns:
      A :class:`optim.GradientTransformation` whose state is Adam's (``ScaleByAdamState``:
      ``count``, ``mu``, ``nu``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.scale_by_adopt()
      >>> state = tx.init(jnp.zeros(2))
      >>> for g in ([0.5, -0.5], [1.0, 1.0]):
      ...     updates, state = tx.update(jnp.array(g), state)
      >>> print([round(float(u), 4) for u in updates])  # (1 - b1) * clip(g_1 / |g_0|, 1)
      [0.1, 0.1]

    References:
      Taniguchi et al., 2024, `ADOPT: Modified Adam Can Converge with Any beta_2 with the
      Optimal Rate <https://arxiv.org/abs/2411.02853>`_.
    """
    return ScaleByAdopt(
        b1=b1,
        b2=b2,
        eps=eps,
        clip_value_fn=clip_value_fn,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
        use_clipping=use_clipping,
    )


@suggest_keywords
def adopt(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.9999,
    eps: Any = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Any = _quarter_power,
) -> Chain:
    r"""ADOPT (Taniguchi et al., 2024): :math:`\theta_{t+1} = \theta_t - \eta_t m_t`, with
    :math:`m_t` from :func:`optim.contrib.scale_by_adopt`.

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule ``count -> float``.
      b1: :math:`\beta_1`, decay rate of the first moment, in ``[0, 1)``.
      b2: :math:`\beta_2`, decay rate of the second moment, in ``[0, 1)``.
      eps: :math:`\epsilon \ge 0`, the floor of :math:`\sqrt{v_{t-1}}` in the normaliser.
      mu_dtype: the storage dtype of the first moment (``None``: float32, or the parameter's
        dtype where wider).
      nesterov: use the Nesterov form of the first moment.
      use_clipping: clip the normalised gradient element-wise to :math:`[-c_t, c_t]`.
      clip_value_fn: :math:`c_t`, a function of the step count (from 0) giving the clipping
        bound (default :math:`t^{1/4}`), or a number for a constant bound.

    Returns:
      The :class:`optim.GradientTransformation` chain ``(scale_by_adopt,
      scale_by_learning_rate)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.adopt(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> for g in ([0.5, -0.5], [1.0, 1.0]):
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(params["w"])  # the first step moves nothing
      [ 0.99 -2.01]

    References:
      Taniguchi et al., 2024, `ADOPT: Modified Adam Can Converge with Any beta_2 with the
      Optimal Rate <https://arxiv.org/abs/2411.02853>`_.
    """
    return chain(
        scale_by_adopt(
            b1,
            b2,
            eps,
            mu_dtype,
            nesterov=nesterov,
            use_clipping=use_clipping,
            clip_value_fn=clip_value_fn,
        ),
        scale_by_learning_rate(learning_rate),
    )
