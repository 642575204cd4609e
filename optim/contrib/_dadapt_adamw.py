"""D-Adaptation for AdamW (Defazio & Mishchenko, 2023): AdamW with a learning rate that
estimates the distance to the solution."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import Decay, decay, decay_hyper, nonnegative, positive, value_at
from optim._keywords import suggest_keywords
from optim._numerics import (
    adaptive_step,
    cast_like_grads,
    decay_complement,
    decay_rate,
    square_safe,
    store_like,
)
from optim._pytree import checked, pytree_dataclass
from optim._tree import (
    PyTree,
    check_same_structure,
    full_like,
    inner_product,
    map_arrays,
    reject_complex,
    safe_increment,
    tree_sum,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import Transformation, check_updates, require_params

__all__ = ["DAdaptAdamWState", "dadapt_adamw"]


class DAdaptAdamWState(NamedTuple):
    r"""The state of :func:`optim.contrib.dadapt_adamw`.

    Attributes:
      exp_avg: :math:`m`, the EMA of the scaled gradients :math:`\hat\eta g`, a pytree like
        the params.
      exp_avg_sq: :math:`v`, the EMA of the squared gradients, a pytree like the params.
      grad_sum: :math:`s`, the weighted sum of the scaled gradients, a pytree like the params.
      estim_lr: :math:`d`, the distance estimate (the learning rate found), a float32 scalar.
      numerator_weighted: :math:`r`, the weighted numerator of the estimate, a float32 scalar.
      count: the number of updates so far (int32).
    """

    exp_avg: PyTree
    exp_avg_sq: PyTree
    grad_sum: PyTree
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array


@pytree_dataclass
class _Beta2(Decay):
    """D-Adaptation's :math:`\beta_2` with :math:`\\sqrt{\beta_2}` and its complement as a
    ``Decay``: from a Python number optax computes both in double precision."""

    root: Any


def _beta2(value: Any, name: str) -> _Beta2:
    if isinstance(value, _Beta2):
        return value
    rate = decay_hyper(value, name)
    if isinstance(value, (int, float)):
        root = float(value) ** 0.5
        return _Beta2(rate.rate, rate.complement, Decay(np.float32(root), np.float32(1 - root)))
    return _Beta2(rate.rate, rate.complement, rate.rate**0.5)


@pytree_dataclass
class DAdaptAdamW(Transformation):
    r"""D-Adaptation, AdamW version (Defazio & Mishchenko, 2023, "Learning-Rate-Free Learning
    by D-Adaptation", as in optax). With :math:`d_t` the distance estimate
    (:math:`d_0` = ``estim_lr0``), :math:`\lambda_t` the ``learning_rate`` schedule,
    :math:`\hat\eta_t = d_t\lambda_t\sqrt{1-\beta_2^{t+1}} / (1-\beta_1^{t+1})` and
    :math:`\beta_3 = \sqrt{\beta_2}`:

    .. math::
        r_{t+1} = \beta_3 r_t + (1-\beta_3)\,\hat\eta_t
            \Big\langle g_t, \frac{s_t}{\sqrt{v_t} + \epsilon}\Big\rangle,\quad
        s_{t+1} = \beta_3 s_t + (1-\beta_3)\,\hat\eta_t g_t,\\
        m_{t+1} = \beta_1 m_t + (1-\beta_1)\,\hat\eta_t g_t,\quad
        v_{t+1} = \beta_2 v_t + (1-\beta_2)\, g_t^2,\\
        d_{t+1} = \max\Big(d_t, \frac{r_{t+1}}{(1-\beta_3)\lVert s_{t+1}\rVert_1}\Big),\quad
        u_t = -\hat\eta_t w\,\theta_t - \frac{m_{t+1}}{\sqrt{v_{t+1}} + \epsilon},

    :math:`w` = ``weight_decay``. :math:`u_t` is the descent step (apply it as it is). Real
    parameters only (it squares :math:`g` and takes :math:`\ell_1` norms).
    """

    learning_rate: Any = nonnegative(schedule=True)
    b1: Any = decay(name="betas[0]")
    b2: Any = checked(_beta2, name="betas[1]")
    eps: Any = nonnegative()
    estim_lr0: Any = positive()
    weight_decay: Any = nonnegative()

    def init(self, params: PyTree) -> DAdaptAdamWState:
        reject_complex(params, "dadapt_adamw", "it squares gradients and d is a max")
        return DAdaptAdamWState(
            exp_avg=full_like(params),
            exp_avg_sq=full_like(params),
            grad_sum=full_like(params),
            estim_lr=jnp.asarray(self.estim_lr0, jnp.float32),
            numerator_weighted=jnp.zeros([], jnp.float32),
            count=zero_count(),
        )

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "dadapt_adamw")
        check_updates(updates, state.exp_avg)
        check_same_structure(params, state.exp_avg, "params", "the optimizer state")
        b1, b2, eps = decay_rate(self.b1), self.b2, self.eps
        # sqrt(b2) with its complement, from the Python number as optax computes them
        sb2 = b2.root if isinstance(b2, _Beta2) else decay_rate(b2) ** 0.5
        count = safe_increment(state.count)
        schedule = value_at(self.learning_rate, state.count)
        dlr = state.estim_lr * schedule * ((1 - decay_rate(b2) ** count) ** 0.5 / (1 - b1**count))
        # Bounded so that g^2 stays finite (see optim._numerics.square_safe).
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        weighted_sum = map_arrays(
            lambda s, v: adaptive_step(upcast(s), upcast(v), eps), state.grad_sum, state.exp_avg_sq
        )
        inner = tree_sum(map_arrays(inner_product, grads, weighted_sum))
        c1, c2, csb2 = decay_complement(self.b1), decay_complement(b2), decay_complement(sb2)
        sb2 = decay_rate(sb2)
        exp_avg = map_arrays(lambda m, g: b1 * upcast(m) + c1 * dlr * g, state.exp_avg, grads)
        exp_avg_sq = map_arrays(
            lambda v, g: decay_rate(b2) * upcast(v) + c2 * g * g, state.exp_avg_sq, grads
        )
        grad_sum = map_arrays(lambda s, g: sb2 * upcast(s) + csb2 * dlr * g, state.grad_sum, grads)
        l1 = tree_sum(map_arrays(lambda s: jnp.sum(jnp.abs(s)), grad_sum))
        numerator = sb2 * state.numerator_weighted + csb2 * dlr * inner
        # ||s||_1 = 0 while every gradient so far was 0: optax's 0/0 there makes d, and every
        # later step, NaN; d keeps its value instead.
        informed = l1 > 0
        estimate = numerator / (csb2 * jnp.where(informed, l1, 1))
        estim_lr = jnp.where(informed, jnp.maximum(state.estim_lr, estimate), state.estim_lr)
        out = map_arrays(
            lambda m, v, p: -self.weight_decay * dlr * upcast(p) - adaptive_step(m, v, eps),
            exp_avg,
            exp_avg_sq,
            params,
        )
        new_state = DAdaptAdamWState(
            exp_avg=store_like(exp_avg, state.exp_avg),
            exp_avg_sq=store_like(exp_avg_sq, state.exp_avg_sq),
            grad_sum=store_like(grad_sum, state.grad_sum),
            estim_lr=estim_lr.astype(state.estim_lr.dtype),
            numerator_weighted=numerator.astype(state.numerator_weighted.dtype),
            count=count,
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def dadapt_adamw(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: Any = (0.9, 0.999),
    eps: Any = 1e-8,
    estim_lr0: Any = 1e-6,
    weight_decay: Any = 0.0,
) -> DAdaptAdamW:
    r"""Learning-rate-free AdamW by D-Adaptation (Defazio & Mishchenko, 2023;
    ``optax.contrib.dadapt_adamw``).

    With :math:`d_t` the distance estimate (:math:`d_0` = ``estim_lr0``), :math:`\lambda_t`
    the ``learning_rate`` schedule,
    :math:`\hat\eta_t = d_t\lambda_t\sqrt{1-\beta_2^{t+1}} / (1-\beta_1^{t+1})` and
    :math:`\beta_3 = \sqrt{\beta_2}`:

    .. math::
        r_{t+1} = \beta_3 r_t + (1-\beta_3)\,\hat\eta_t
            \Big\langle g_t, \frac{s_t}{\sqrt{v_t} + \epsilon}\Big\rangle,\quad
        s_{t+1} = \beta_3 s_t + (1-\beta_3)\,\hat\eta_t g_t,\\
        m_{t+1} = \beta_1 m_t + (1-\beta_1)\,\hat\eta_t g_t,\quad
        v_{t+1} = \beta_2 v_t + (1-\beta_2)\, g_t^2,\\
        d_{t+1} = \max\Big(d_t, \frac{r_{t+1}}{(1-\beta_3)\lVert s_{t+1}\rVert_1}\Big),\quad
        u_t = -\hat\eta_t w\,\theta_t - \frac{m_{t+1}}{\sqrt{v_{t+1}} + \epsilon}.

    :math:`u_t` is the descent step (apply it as it is); ``update`` needs the params. Real
    parameters only. While every gradient so far was 0, :math:`d` keeps its value (optax's
    0/0 makes it NaN there).

    Args:
      learning_rate: :math:`\lambda_t \ge 0`, a number or a schedule ``count -> float`` with
        1 as its peak that multiplies the estimated step size (recommended: a linear decay to
        0 after a short warmup).
      betas: the pair ``(b1, b2)``: :math:`\beta_1`, the decay of the first moment, and
        :math:`\beta_2`, the decay of the second moment, each in ``[0, 1)``.
      eps: :math:`\epsilon \ge 0`, added to the root of the second moment.
      estim_lr0: :math:`d_0 > 0`, the initial distance estimate.
      weight_decay: :math:`w \ge 0`, the decoupled weight decay, scaled by :math:`\hat\eta_t`.

    Returns:
      A :class:`optim.GradientTransformation` with state
      :class:`optim.contrib.DAdaptAdamWState`.

    Raises:
      TypeError: ``betas`` is not a pair.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.dadapt_adamw(estim_lr0=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4), round(float(state.estim_lr), 4))  # loss from 29, d
      23.0656 0.9041

    References:
      Defazio & Mishchenko, 2023, `Learning-Rate-Free Learning by D-Adaptation
      <https://arxiv.org/abs/2301.07733>`_.
    """
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise TypeError(f"betas must be a pair (b1, b2), got {betas!r}") from None
    return DAdaptAdamW(
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        estim_lr0=estim_lr0,
        weight_decay=weight_decay,
    )
