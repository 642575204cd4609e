"""Prodigy (Mishchenko & Defazio, 2023): Adam with a step size that estimates a distance."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import (
    Decay,
    decay,
    decay_hyper,
    flag,
    hyper_field,
    nonnegative,
    positive,
    value_at,
)
from optim._keywords import suggest_keywords
from optim._numerics import (
    cast_like_grads,
    decay_complement,
    decay_rate,
    ema_update,
    safe_sqrt,
    square_safe,
    store_like,
)
from optim._pytree import checked, pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_same_structure,
    float_copy,
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


class ProdigyState(NamedTuple):
    r"""The state of :func:`optim.contrib.prodigy` and :func:`optim.contrib.scale_by_prodigy`.

    Attributes:
      exp_avg: :math:`m`, the EMA of :math:`d\,g`, a pytree like the params.
      exp_avg_sq: :math:`v`, the EMA of :math:`(d\,g)^2`, a pytree like the params.
      grad_sum: :math:`s`, the weighted sum of the gradients, a pytree like the params.
      params0: :math:`\theta_0`, a float32 (or wider) copy of the parameters at ``init``.
      estim_lr: :math:`d`, the distance estimate (the step size found), a float32 scalar.
      numerator_weighted: :math:`r`, the weighted numerator of the estimate, a float32 scalar.
      count: the number of updates so far (int32).
    """

    exp_avg: PyTree
    exp_avg_sq: PyTree
    grad_sum: PyTree
    params0: PyTree
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array


@pytree_dataclass
class _Beta2(Decay):
    """Prodigy's :math:`\beta_2` with :math:`\\sqrt{\beta_2}`, the default :math:`\beta_3`: from a
    Python number optax computes the root in double precision, and so does ``_beta2``."""

    root: Any


def _beta2(value: Any, name: str) -> _Beta2:
    if isinstance(value, _Beta2):
        return value
    rate = decay_hyper(value, name)
    root = np.float32(float(value) ** 0.5) if isinstance(value, (int, float)) else rate.rate**0.5
    return _Beta2(rate.rate, rate.complement, root)


@pytree_dataclass
class ScaleByProdigy(Transformation):
    r"""Prodigy (Mishchenko & Defazio, 2023, "Prodigy: An Expeditiously Adaptive
    Parameter-Free Learner", the Adam version).

    With :math:`d_t` the distance estimate (:math:`d_0` = ``estim_lr0``), :math:`\lambda_t` the
    ``learning_rate`` schedule and :math:`\hat\eta_t = d_t\lambda_t\sqrt{1-\beta_2^{t+1}} /
    (1-\beta_1^{t+1})`:

    .. math::
        m_{t+1} = \beta_1 m_t + (1-\beta_1) d_t g_t,\quad
        v_{t+1} = \beta_2 v_t + (1-\beta_2) d_t^2 g_t^2,\\
        r_{t+1} = \beta_3 r_t + (d_t / d_0)\,\hat\eta_t \langle g_t, \theta_0 - \theta_t\rangle,
        \quad s_{t+1} = \beta_3 s_t + (\hat\eta_t / d_0)\, d_t g_t,\\
        d_{t+1} = \max\big(d_t,\ c\, r_{t+1} / \lVert s_{t+1}\rVert_1\big),\quad
        u_t = \hat\eta_t\big(m_{t+1} / (\sqrt{v_{t+1}} + d_t\epsilon) + w\,\theta_t\big),

    :math:`\beta_3 = \sqrt{\beta_2}` unless given, :math:`c` = ``estim_lr_coef``, :math:`w` =
    ``weight_decay``. ``safeguard_warmup`` uses :math:`d_t` instead of :math:`\hat\eta_t` in
    :math:`s`. The schedule enters the estimate of :math:`d`, so it lives here rather than in a
    separate ``scale_by_learning_rate``; ``u_t`` is the ascent step (``prodigy`` flips its
    sign). Real parameters only: the update squares and compares values.
    """

    learning_rate: Any = nonnegative(schedule=True)
    b1: Any = decay(name="betas[0]")
    b2: Any = checked(_beta2, name="betas[1]")
    beta3: Any = hyper_field(low=0.0, high=1.0, high_open=True, optional=True)
    eps: Any = nonnegative()
    estim_lr0: Any = positive()
    estim_lr_coef: Any = nonnegative()
    weight_decay: Any = nonnegative()
    safeguard_warmup: bool = flag(False)
    flip_sign: bool = static(False)

    def init(self, params: PyTree) -> ProdigyState:
        reject_complex(params, "prodigy", "its second moment squares d*g and d is a max")
        return ProdigyState(
            exp_avg=full_like(params),
            exp_avg_sq=full_like(params),
            grad_sum=full_like(params),
            params0=float_copy(params),
            estim_lr=jnp.asarray(self.estim_lr0, jnp.float32),
            numerator_weighted=jnp.zeros([], jnp.float32),
            count=zero_count(),
        )

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "prodigy")
        check_updates(updates, state.exp_avg)
        check_same_structure(params, state.params0, "params", "the optimizer state")
        b1, b2, d, d0 = self.b1, self.b2, state.estim_lr, self.estim_lr0
        beta3 = self.beta3
        if beta3 is None:  # optax's default, beta2 ** 0.5
            beta3 = b2.root if isinstance(b2, _Beta2) else decay_rate(b2) ** 0.5
        count = safe_increment(state.count)
        schedule = value_at(self.learning_rate, state.count)
        dlr = d * schedule * ((1 - decay_rate(b2) ** count) ** 0.5 / (1 - decay_rate(b1) ** count))
        # Bounded so that (d g)^2 stays finite for d <= 1 (see optim._numerics.square_safe).
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        dg = map_arrays(lambda g: d * g, grads)
        inner = tree_sum(
            map_arrays(lambda g, p0, p: inner_product(g, p0 - p), grads, state.params0, params)
        )
        exp_avg = map_arrays(lambda x, m: ema_update(x, m, b1), dg, state.exp_avg)
        # optax's rounding order, (1 - b2) x x rather than (1 - b2) x^2.
        exp_avg_sq = map_arrays(
            lambda x, v: decay_rate(b2) * upcast(v) + decay_complement(b2) * x * x,
            dg,
            state.exp_avg_sq,
        )
        sum_weight = d if self.safeguard_warmup else dlr
        grad_sum = map_arrays(lambda s, x: beta3 * s + sum_weight * x / d0, state.grad_sum, dg)
        numerator = beta3 * state.numerator_weighted + (d / d0) * dlr * inner
        denominator = tree_sum(map_arrays(lambda s: jnp.sum(jnp.abs(s)), grad_sum))
        # ||s||_1 = 0 while every gradient so far was 0: optax's 0/0 there makes d, and every
        # later step, NaN; d keeps its value instead.
        informed = denominator > 0
        estimate = self.estim_lr_coef * numerator / jnp.where(informed, denominator, 1)
        estim_lr = jnp.where(informed, jnp.maximum(d, estimate), d)
        sign = -1 if self.flip_sign else 1
        out = map_arrays(
            lambda m, v, p: (
                sign
                * (
                    self.weight_decay * dlr * upcast(p)
                    + dlr * m / (safe_sqrt(v) + estim_lr * self.eps)
                )
            ),
            exp_avg,
            exp_avg_sq,
            params,
        )
        new_state = ProdigyState(
            exp_avg=store_like(exp_avg, state.exp_avg),
            exp_avg_sq=store_like(exp_avg_sq, state.exp_avg_sq),
            grad_sum=store_like(grad_sum, state.grad_sum),
            params0=state.params0,
            # float32 as init made them (sums over float64 leaves are float64 under x64)
            estim_lr=estim_lr.astype(state.estim_lr.dtype),
            numerator_weighted=numerator.astype(state.numerator_weighted.dtype),
            count=count,
        )
        return cast_like_grads(out, updates), new_state


def _prodigy(
    learning_rate: Any,
    betas: Any,
    beta3: Any,
    eps: Any,
    estim_lr0: Any,
    estim_lr_coef: Any,
    weight_decay: Any,
    safeguard_warmup: bool,
    flip_sign: bool,
) -> ScaleByProdigy:
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise TypeError(f"betas must be a pair (b1, b2), got {betas!r}") from None
    return ScaleByProdigy(
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        beta3=beta3,
        eps=eps,
        estim_lr0=estim_lr0,
        estim_lr_coef=estim_lr_coef,
        weight_decay=weight_decay,
        safeguard_warmup=safeguard_warmup,
        flip_sign=flip_sign,
    )


@suggest_keywords
def scale_by_prodigy(
    learning_rate: Any = 1.0,
    betas: Any = (0.9, 0.999),
    beta3: Any = None,
    eps: Any = 1e-8,
    estim_lr0: Any = 1e-6,
    estim_lr_coef: Any = 1.0,
    weight_decay: Any = 0.0,
    safeguard_warmup: bool = False,
) -> ScaleByProdigy:
    r"""Prodigy's step :math:`u_t` before the sign flip (``optax.contrib.scale_by_prodigy``).

    With :math:`d_t` the distance estimate (:math:`d_0` = ``estim_lr0``), :math:`\lambda_t`
    the ``learning_rate`` schedule and
    :math:`\hat\eta_t = d_t\lambda_t\sqrt{1-\beta_2^{t+1}} / (1-\beta_1^{t+1})`:

    .. math::
        m_{t+1} = \beta_1 m_t + (1-\beta_1) d_t g_t,\quad
        v_{t+1} = \beta_2 v_t + (1-\beta_2) d_t^2 g_t^2,\\
        r_{t+1} = \beta_3 r_t + (d_t / d_0)\,\hat\eta_t \langle g_t, \theta_0 - \theta_t\rangle,
        \quad s_{t+1} = \beta_3 s_t + (\hat\eta_t / d_0)\, d_t g_t,\\
        d_{t+1} = \max\big(d_t,\ c\, r_{t+1} / \lVert s_{t+1}\rVert_1\big),\quad
        u_t = \hat\eta_t\big(m_{t+1} / (\sqrt{v_{t+1}} + d_t\epsilon) + w\,\theta_t\big).

    :math:`u_t` is the ascent step (:func:`optim.contrib.prodigy` flips its sign); ``update``
    needs the params. Real parameters only.

    Args:
      learning_rate: :math:`\lambda_t \ge 0`, a number or a schedule ``count -> float``
        multiplying the estimated step size (1.0 as its peak is recommended); it enters the
        estimate of :math:`d`.
      betas: the pair ``(b1, b2)``: :math:`\beta_1`, the decay of the first moment, and
        :math:`\beta_2`, the decay of the second moment, each in ``[0, 1)``.
      beta3: :math:`\beta_3`, the decay of :math:`r` and :math:`s`, in ``[0, 1)``
        (``None``: :math:`\sqrt{\beta_2}`).
      eps: :math:`\epsilon \ge 0`, added (times :math:`d`) to the root of the second moment.
      estim_lr0: :math:`d_0 > 0`, the initial distance estimate.
      estim_lr_coef: :math:`c \ge 0`, a factor on the estimate of :math:`d` (1: the paper's).
      weight_decay: :math:`w \ge 0`, the decoupled weight decay, scaled by :math:`\hat\eta_t`.
      safeguard_warmup: use :math:`d_t` instead of :math:`\hat\eta_t` in :math:`s` (the
        paper's safeguard for a learning-rate warmup).

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.ProdigyState`.

    Raises:
      TypeError: ``betas`` is not a pair.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.scale_by_prodigy()
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([0.5, -0.5]), state, params)
      >>> print([round(float(u), 7) for u in updates])  # the first step: about d0 sign(g)
      [1e-06, -1e-06]

    References:
      Mishchenko & Defazio, 2023, `Prodigy: An Expeditiously Adaptive Parameter-Free Learner
      <https://arxiv.org/abs/2306.06101>`_.
    """
    return _prodigy(
        learning_rate,
        betas,
        beta3,
        eps,
        estim_lr0,
        estim_lr_coef,
        weight_decay,
        safeguard_warmup,
        flip_sign=False,
    )


@suggest_keywords
def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: Any = (0.9, 0.999),
    beta3: Any = None,
    eps: Any = 1e-8,
    estim_lr0: Any = 1e-6,
    estim_lr_coef: Any = 1.0,
    weight_decay: Any = 0.0,
    safeguard_warmup: bool = False,
) -> ScaleByProdigy:
    r"""Learning-rate-free AdamW (``optax.contrib.prodigy``):
    :math:`\theta_{t+1} = \theta_t - u_t` with :math:`u_t` from ``scale_by_prodigy``.

    One transformation (not a chain), so its state is a ``ProdigyState`` as in optax.

    With :math:`d_t` the distance estimate (:math:`d_0` = ``estim_lr0``), :math:`\lambda_t`
    the ``learning_rate`` schedule and
    :math:`\hat\eta_t = d_t\lambda_t\sqrt{1-\beta_2^{t+1}} / (1-\beta_1^{t+1})`:

    .. math::
        m_{t+1} = \beta_1 m_t + (1-\beta_1) d_t g_t,\quad
        v_{t+1} = \beta_2 v_t + (1-\beta_2) d_t^2 g_t^2,\\
        r_{t+1} = \beta_3 r_t + (d_t / d_0)\,\hat\eta_t \langle g_t, \theta_0 - \theta_t\rangle,
        \quad s_{t+1} = \beta_3 s_t + (\hat\eta_t / d_0)\, d_t g_t,\\
        d_{t+1} = \max\big(d_t,\ c\, r_{t+1} / \lVert s_{t+1}\rVert_1\big),\quad
        u_t = \hat\eta_t\big(m_{t+1} / (\sqrt{v_{t+1}} + d_t\epsilon) + w\,\theta_t\big).

    ``update`` needs the params. Real parameters only.

    Args:
      learning_rate: :math:`\lambda_t \ge 0`, a number or a schedule ``count -> float``
        multiplying the estimated step size (1.0 as its peak is recommended); it enters the
        estimate of :math:`d`.
      betas: the pair ``(b1, b2)``: :math:`\beta_1`, the decay of the first moment, and
        :math:`\beta_2`, the decay of the second moment, each in ``[0, 1)``.
      beta3: :math:`\beta_3`, the decay of :math:`r` and :math:`s`, in ``[0, 1)``
        (``None``: :math:`\sqrt{\beta_2}`).
      eps: :math:`\epsilon \ge 0`, added (times :math:`d`) to the root of the second moment.
      estim_lr0: :math:`d_0 > 0`, the initial distance estimate.
      estim_lr_coef: :math:`c \ge 0`, a factor on the estimate of :math:`d` (1: the paper's).
      weight_decay: :math:`w \ge 0`, the decoupled weight decay, scaled by :math:`\hat\eta_t`.
      safeguard_warmup: use :math:`d_t` instead of :math:`\hat\eta_t` in :math:`s` (the
        paper's safeguard for a learning-rate warmup).

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.ProdigyState`.

    Raises:
      TypeError: ``betas`` is not a pair.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.prodigy(estim_lr0=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4), round(float(state.estim_lr), 4))  # loss from 29, d
      24.9842 0.1

    References:
      Mishchenko & Defazio, 2023, `Prodigy: An Expeditiously Adaptive Parameter-Free Learner
      <https://arxiv.org/abs/2306.06101>`_.
    """
    return _prodigy(
        learning_rate,
        betas,
        beta3,
        eps,
        estim_lr0,
        estim_lr_coef,
        weight_decay,
        safeguard_warmup,
        flip_sign=True,
    )
