"""Mechanic (Cutkosky, Defazio & Mehta, 2023): learn the scale of any optimizer's updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import int_option, nonnegative, positive
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads, square_safe
from optim._pytree import pytree_dataclass
from optim._tree import (
    INT32_MAX,
    PyTree,
    check_same_structure,
    float_copy,
    global_norm,
    map_arrays,
    reject_complex,
    safe_increment,
    tree_inner,
    upcast,
    zero_count,
)
from optim.base import Transformation, as_transformation, check_updates, require_params

__all__ = ["MechanicState", "mechanize"]


class MechanicState(NamedTuple):
    r"""The state of :func:`optim.contrib.mechanize`; the accumulators are float32 vectors of
    length ``num_betas``, one entry per :math:`\beta_i`.

    Attributes:
      base_optimizer_state: the state of ``base_optimizer``.
      count: the number of updates so far (int32).
      r: :math:`r_t`, the reward of each :math:`\beta_i`.
      m: :math:`m_t`, the running maximum of :math:`|h_t|` for each :math:`\beta_i`.
      v: :math:`v_t`, the sum of :math:`h_t^2` discounted by :math:`\beta_i^2`.
      s: :math:`s_t`, the scales; their sum :math:`S_t` multiplies the base optimizer's summed
        updates.
      x0: :math:`x_0`, a float32 (or wider) copy of the params at the first ``update``.
    """

    base_optimizer_state: Any
    count: jax.Array
    r: jax.Array
    m: jax.Array
    v: jax.Array
    s: jax.Array
    x0: PyTree


@pytree_dataclass
class Mechanize(Transformation):
    r"""Mechanic (Cutkosky, Defazio & Mehta, 2023, "Mechanic: A Learning Rate Tuner",
    with optax's clipping of :math:`h`). With :math:`\Delta_t = -\sum_{k<t}
    u^{base}_k` the base optimizer's summed updates, :math:`S_t = \sum_i s_{t,i}`, the
    iterates are :math:`x_t = x_0 + S_t \Delta_t`; per step, with
    :math:`\beta_i = 1 - 10^{-i}` (:math:`i = 1..n`, ``num_betas``):

    .. math::
        \tilde g_t = g_t + \lambda S_t \frac{\lVert g_t\rVert}{\lVert x_t\rVert + \epsilon}
            x_t,\quad
        h_t = \Big\langle \tilde g_t, \frac{x_0 - x_t}{S_t + \epsilon}\Big\rangle,\\
        m_{t,i} = \max(\beta_i m_{t-1,i}, |h_t| + \epsilon),\quad
        v_{t,i} = \beta_i^2 v_{t-1,i} + h_t^2,\quad
        r_{t,i} = \beta_i r_{t-1,i} + \mathrm{clip}(h_t, \pm m_{t-1,i})\, s_{t-1,i},\\
        s_{t,i} = \frac{(s_{init}/n)\, m_{t,i} + \max(r_{t,i}, 0)}{\sqrt{v_{t,i}} + \epsilon},
        \quad x_{t+1} = x_0 + S_{t+1}\Delta_{t+1},\quad u_t = x_{t+1} - x_t,

    :math:`\lambda` = ``weight_decay`` (Mechanic's own, not the base optimizer's).
    :math:`x_0` is the params at the first ``update`` (so a checkpoint loaded after ``init``
    counts). Real parameters only (:math:`h` is clipped). The gradients are bounded first
    (``square_safe``: unchanged below :math:`2^{62} / (4\sqrt{n})`), for the base optimizer
    too, so that one spike cannot make :math:`v` infinite and every later step NaN.
    """

    base_optimizer: Any
    weight_decay: Any = nonnegative()
    eps: Any = nonnegative()
    s_init: Any = positive()
    num_betas: int = int_option(6, low=1, high=INT32_MAX, note="the number of betas 1 - 10^-i")

    def init(self, params: PyTree) -> MechanicState:
        reject_complex(params, "mechanize", "its inner product h is clipped")
        zeros = jnp.zeros([self.num_betas], jnp.float32)
        return MechanicState(
            base_optimizer_state=self.base_optimizer.init(params),
            count=zero_count(),
            r=zeros,
            m=zeros,
            v=zeros,
            s=jnp.ones([self.num_betas], jnp.float32) * self.s_init,
            x0=float_copy(params),
        )

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "mechanize")
        check_updates(updates, state.x0)
        check_same_structure(params, state.x0, "params", "the optimizer state")
        eps = self.eps
        first = state.count == 0
        x0 = map_arrays(lambda p, x: jnp.where(first, upcast(p), x), params, state.x0)
        s_sum = jnp.sum(state.s)
        # Bounded (square_safe; unchanged below 2^62 / (4 sqrt(n))), for the base optimizer
        # too, so that the norms, Delta and h^2 stay finite after a gradient spike.
        bounded = map_arrays(lambda g: square_safe(upcast(g), g.size), updates)
        base_updates, base_state = self.base_optimizer.update(
            cast_like_grads(bounded, updates), state.base_optimizer_state, params, **extra_args
        )
        decay = self.weight_decay * s_sum * global_norm(bounded) / (global_norm(params) + eps)
        grads = map_arrays(lambda g, p: g + decay * upcast(p), bounded, params)
        # Delta_t, recomputed from x_t (the memory-efficient form): x_t = x_0 + S_t Delta_t.
        delta_prev = map_arrays(lambda p, x: (x - upcast(p)) / (s_sum + eps), params, x0)
        delta = map_arrays(lambda d, u: d - upcast(u), delta_prev, base_updates)
        h = tree_inner(grads, delta_prev)
        clipped_h = jnp.clip(h, -state.m, state.m)
        betas = jnp.array([1.0 - 0.1**i for i in range(1, self.num_betas + 1)], jnp.float32)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas**2 * state.v + h**2
        r = betas * state.r + clipped_h * state.s
        wealth = (self.s_init / self.num_betas) * m + jnp.maximum(0.0, r)
        s = wealth / (jnp.sqrt(v) + eps)
        scale = jnp.sum(s)
        # x_{t+1} - x_t as optax computes it, so that trajectories agree to rounding.
        out = map_arrays(lambda x, d, p: (x - scale * d) - upcast(p), x0, delta, params)
        new_state = MechanicState(
            base_optimizer_state=base_state,
            count=safe_increment(state.count),
            r=r.astype(state.r.dtype),
            m=m.astype(state.m.dtype),
            v=v.astype(state.v.dtype),
            s=s.astype(state.s.dtype),
            x0=x0,
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def mechanize(
    base_optimizer: Any,
    weight_decay: Any = 1e-2,
    eps: Any = 1e-8,
    s_init: Any = 1e-6,
    num_betas: int = 6,
) -> Mechanize:
    r"""Learn the scale of ``base_optimizer``'s updates with Mechanic (Cutkosky, Defazio &
    Mehta, 2023; ``optax.contrib.mechanize``, with optax's clipping of :math:`h`).

    With :math:`\Delta_t = -\sum_{k<t} u^{base}_k` the base optimizer's summed updates and
    :math:`S_t = \sum_i s_{t,i}`, the iterates are :math:`x_t = x_0 + S_t \Delta_t`; per step,
    with :math:`\beta_i = 1 - 10^{-i}` (:math:`i = 1..n`, ``num_betas``):

    .. math::
        \tilde g_t = g_t + \lambda S_t \frac{\lVert g_t\rVert}{\lVert x_t\rVert + \epsilon}
            x_t,\quad
        h_t = \Big\langle \tilde g_t, \frac{x_0 - x_t}{S_t + \epsilon}\Big\rangle,\\
        m_{t,i} = \max(\beta_i m_{t-1,i}, |h_t| + \epsilon),\quad
        v_{t,i} = \beta_i^2 v_{t-1,i} + h_t^2,\quad
        r_{t,i} = \beta_i r_{t-1,i} + \mathrm{clip}(h_t, \pm m_{t-1,i})\, s_{t-1,i},\\
        s_{t,i} = \frac{(s_{init}/n)\, m_{t,i} + \max(r_{t,i}, 0)}{\sqrt{v_{t,i}} + \epsilon},
        \quad x_{t+1} = x_0 + S_{t+1}\Delta_{t+1},\quad u_t = x_{t+1} - x_t.

    :math:`x_0` is the params at the first ``update`` (so a checkpoint loaded after ``init``
    counts); ``update`` needs the params. Real parameters only. The gradients are bounded
    first (unchanged below :math:`2^{62} / (4\sqrt{n})`), for the base optimizer too.

    Args:
      base_optimizer: the optimizer whose updates are rescaled, an
        :class:`optim.GradientTransformation` or an optax one; give it a learning rate (or a
        schedule) peaking at 1. Extra ``update`` keyword arguments reach it.
      weight_decay: :math:`\lambda \ge 0`, Mechanic's own weight decay in :math:`\tilde g_t`
        (not the base optimizer's).
      eps: :math:`\epsilon \ge 0`, guards the divisions.
      s_init: :math:`s_{init} > 0`, the initial scale: each :math:`s_{0,i}` starts there.
      num_betas: :math:`n \ge 1`, the number of decay rates :math:`\beta_i = 1 - 10^{-i}`.

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.MechanicState`.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.mechanize(optim.adam(learning_rate=1.0), s_init=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4), round(float(state.s.sum()), 4))  # loss from 29, S
      23.6554 0.1352

    References:
      Cutkosky, Defazio & Mehta, 2023, `Mechanic: A Learning Rate Tuner
      <https://arxiv.org/abs/2306.00144>`_.
    """
    return Mechanize(
        base_optimizer=as_transformation(base_optimizer, "base_optimizer"),
        weight_decay=weight_decay,
        eps=eps,
        s_init=s_init,
        num_betas=num_betas,
    )
