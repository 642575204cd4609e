"""AdEMAMix (Pagliardini et al., 2024): Adam with a second, slow momentum mixed in."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from optim._hyper import decay, decay_at, dtype_option, nonnegative, value_at
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
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate


class ScaleByAdemamixState(NamedTuple):
    """The state of :func:`optim.contrib.scale_by_ademamix`.

    Attributes:
      count: the number of updates so far (int32), for the bias correction of ``m1`` and
        ``nu``.
      count_m2: the number of updates so far (int32), at which the ``b3`` and ``alpha``
        schedules are evaluated.
      m1: the fast EMA of the gradients :math:`m^{(1)}`, a pytree like the params.
      m2: the slow EMA of the gradients :math:`m^{(2)}` (not bias-corrected), like the params.
      nu: the EMA of the squared gradients :math:`v`, a pytree like the params.
    """

    count: jax.Array
    count_m2: jax.Array
    m1: PyTree
    m2: PyTree
    nu: PyTree


@pytree_dataclass
class ScaleByAdemamix(Transformation):
    r"""AdEMAMix (Pagliardini et al., 2024, "The AdEMAMix Optimizer: Better, Faster, Older",
    Algorithm 1).

    .. math::
        m^{(1)}_t = \beta_1 m^{(1)}_{t-1} + (1-\beta_1) g_t,\quad
        m^{(2)}_t = \beta_3(t) m^{(2)}_{t-1} + (1-\beta_3(t)) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2,\\
        u_t = \frac{m^{(1)}_t / (1-\beta_1^t) + \alpha(t)\, m^{(2)}_t}
                   {\sqrt{v_t / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}.

    The slow EMA :math:`m^{(2)}` is not bias-corrected, so it fills slowly. :math:`\beta_3`
    and :math:`\alpha` may be schedules (the paper warms both up), evaluated at the number of
    previous updates (``count_m2``).
    """

    b1: Any = decay()
    b2: Any = decay()
    b3: Any = decay(schedule=True)
    alpha: Any = nonnegative(schedule=True)
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()
    mu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByAdemamixState:
        return ScaleByAdemamixState(
            count=zero_count(),
            count_m2=zero_count(),
            m1=full_like(params, 0.0, self.mu_dtype),
            m2=full_like(params, 0.0, self.mu_dtype),
            nu=full_like(params, 0.0),
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.m1)
        b1, b2 = self.b1, self.b2
        b3 = decay_at(self.b3, state.count_m2)
        alpha = value_at(self.alpha, state.count_m2)
        # Numerical edges as in scale_by_adam: bounded gradients, 0 for 0/0, finite gradients.
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        m1 = map_arrays(lambda g, m: ema_update(g, m, b1), grads, state.m1)
        m2 = map_arrays(lambda g, m: ema_update(g, m, b3), grads, state.m2)
        nu = map_arrays(lambda g, v: ema_update_sq(g, v, b2), grads, state.nu)
        count = safe_increment(state.count)
        out = map_arrays(
            lambda fast, slow, v: adaptive_step(fast + alpha * slow, v, self.eps, self.eps_root),
            debias_tree(m1, b1, count),
            m2,
            debias_tree(nu, b2, count),
        )
        new_state = ScaleByAdemamixState(
            count=count,
            count_m2=safe_increment(state.count_m2),
            m1=store_like(m1, state.m1),
            m2=store_like(m2, state.m2),
            nu=store_like(nu, state.nu),
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_ademamix(
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 6.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
) -> ScaleByAdemamix:
    r"""Rescale updates by AdEMAMix's mixed moments (``optax.contrib.scale_by_ademamix``).

    .. math::
        m^{(1)}_t = \beta_1 m^{(1)}_{t-1} + (1-\beta_1) g_t,\quad
        m^{(2)}_t = \beta_3(t) m^{(2)}_{t-1} + (1-\beta_3(t)) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2,\\
        u_t = \frac{m^{(1)}_t / (1-\beta_1^t) + \alpha(t)\, m^{(2)}_t}
                   {\sqrt{v_t / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}.

    The slow EMA :math:`m^{(2)}` is not bias-corrected, so it fills slowly. As in optax,
    ``alpha`` defaults to 6 here and to 5 in :func:`optim.contrib.ademamix`.

    Args:
      b1: :math:`\beta_1`, decay rate of the fast EMA, in ``[0, 1)``.
      b2: :math:`\beta_2`, decay rate of the second moment, in ``[0, 1)``.
      b3: :math:`\beta_3`, decay rate of the slow EMA, in ``[0, 1)``: a number or a schedule
        ``count -> float`` (the paper warms it up).
      alpha: :math:`\alpha \ge 0`, the weight of the slow EMA: a number or a schedule.
      eps: :math:`\epsilon \ge 0`, added to the root of the second moment.
      eps_root: :math:`\epsilon_{root} \ge 0`, added to the second moment inside the root.
      mu_dtype: the storage dtype of both EMAs ``m1`` and ``m2`` (``None``: float32, or the
        parameter's dtype where wider).

    Returns:
      A :class:`optim.GradientTransformation` with state
      :class:`optim.contrib.ScaleByAdemamixState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.scale_by_ademamix()
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([0.5, -0.5]), state)
      >>> print([round(float(u), 4) for u in updates])  # sign(g) (1 + alpha (1 - b3))
      [1.0006, -1.0006]

    References:
      Pagliardini et al., 2024, `The AdEMAMix Optimizer: Better, Faster, Older
      <https://arxiv.org/abs/2409.03137>`_.
    """
    return ScaleByAdemamix(
        b1=b1,
        b2=b2,
        b3=b3,
        alpha=alpha,
        eps=eps,
        eps_root=eps_root,
        mu_dtype=mu_dtype,
    )


@suggest_keywords
def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 5.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""AdEMAMix with decoupled weight decay (Pagliardini et al., 2024).

    .. math:: \theta_{t+1} = \theta_t - \eta_t (u_t + \lambda\theta_t)

    with :math:`u_t` from :func:`optim.contrib.scale_by_ademamix` and the decay applied
    where ``mask`` is True.

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule ``count -> float``.
      b1: :math:`\beta_1`, decay rate of the fast EMA, in ``[0, 1)``.
      b2: :math:`\beta_2`, decay rate of the second moment, in ``[0, 1)``.
      b3: :math:`\beta_3`, decay rate of the slow EMA, in ``[0, 1)``: a number or a schedule.
      alpha: :math:`\alpha \ge 0`, the weight of the slow EMA: a number or a schedule
        (5 by default here, 6 in ``scale_by_ademamix``, as in optax).
      eps: :math:`\epsilon \ge 0`, added to the root of the second moment.
      eps_root: :math:`\epsilon_{root} \ge 0`, added to the second moment inside the root.
      mu_dtype: the storage dtype of both EMAs (``None``: float32, or the parameter's dtype
        where wider).
      weight_decay: :math:`\lambda`, the decoupled weight decay rate (0: none).
      mask: a pytree of booleans with the structure of the params (or a prefix of it), or a
        function ``params -> such a pytree``: where True, weight decay applies (``None``: on
        every leaf).

    Returns:
      The :class:`optim.GradientTransformation` chain ``(scale_by_ademamix,
      add_decayed_weights, scale_by_learning_rate)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.ademamix(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print([round(float(w), 4) for w in optim.apply_updates(params, updates)["w"]])
      [0.9, -1.9]

    References:
      Pagliardini et al., 2024, `The AdEMAMix Optimizer: Better, Faster, Older
      <https://arxiv.org/abs/2409.03137>`_.
    """
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
