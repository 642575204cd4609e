"""MoMo and MoMo-Adam (Schaipp et al., 2023): momentum with a Polyak-type adaptive step size
built from the loss value and a lower bound on it."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import decay, flag, hyper_field, nonnegative, value_at
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
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_same_structure,
    full_like,
    inner_product,
    map_arrays,
    reject_complex,
    safe_increment,
    tree_inner,
    tree_sum,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import Transformation, check_updates

__all__ = ["MomoAdamState", "MomoState", "momo", "momo_adam"]

# optax compares the model's curvature with jnp.finfo(float).eps, float64's epsilon.
_NO_STEP_BELOW = float(jnp.finfo(jnp.float64).eps)


class MomoState(NamedTuple):
    r"""The state of :func:`optim.contrib.momo`.

    Attributes:
      exp_avg: :math:`d_t`, the momentum (the EMA of the gradients), a pytree like the params.
      barf: :math:`\bar f_t`, the EMA of the loss values, a float32 scalar.
      gamma: :math:`\gamma_t`, the EMA of :math:`\langle g_t, \theta_t\rangle`, a float32
        scalar.
      lb: :math:`f_*`, the lower bound on the loss (re-estimated with
        ``adapt_lower_bound``), a float32 scalar.
      count: the number of updates so far (int32).
    """

    exp_avg: PyTree
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array


class MomoAdamState(NamedTuple):
    r"""The state of :func:`optim.contrib.momo_adam`: :class:`optim.contrib.MomoState` with
    Adam's second moment as well.

    Attributes:
      exp_avg: :math:`d_t`, the EMA of the gradients, a pytree like the params.
      exp_avg_sq: :math:`v_t`, the EMA of the squared gradients, a pytree like the params.
      barf: :math:`\bar f_t`, the EMA of the loss values, a float32 scalar.
      gamma: :math:`\gamma_t`, the EMA of :math:`\langle g_t, \theta_t\rangle`, a float32
        scalar.
      lb: :math:`f_*`, the lower bound on the loss, a float32 scalar.
      count: the number of updates so far (int32).
    """

    exp_avg: PyTree
    exp_avg_sq: PyTree
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array


def _value(value: Any, name: str) -> jax.Array:
    """The loss passed as ``value=``, checked to be a real scalar."""
    if value is None:
        raise ValueError(
            f"{name} needs the loss: call update(grads, state, params, value=loss) "
            "(jax.value_and_grad gives both)"
        )
    value = jnp.asarray(value)
    if value.shape != () or jnp.iscomplexobj(value):
        raise ValueError(
            f"value must be a real scalar (the loss), got shape {value.shape} and dtype "
            f"{value.dtype}"
        )
    return value.astype(jnp.float32)


@pytree_dataclass
class _Polyak:
    """The step size and lower-bound update shared by MoMo and MoMo-Adam (see ``Momo``)."""

    lower_bound: Any = hyper_field()
    weight_decay: Any = nonnegative()
    adapt_lower_bound: bool = flag(False)

    def __call__(self, alpha, barf, gamma, iprod, sq_norm, lb, bc1):
        decay = 1 + alpha * self.weight_decay
        if self.adapt_lower_bound:
            cap = decay * (barf - gamma) + iprod
            lb = jnp.where(
                cap < decay * bc1 * lb, jnp.maximum(cap / (2 * bc1 * decay), self.lower_bound), lb
            )
        informative = sq_norm > _NO_STEP_BELOW  # otherwise: no step, as in optax
        polyak = jnp.maximum(decay * (barf - bc1 * lb - gamma) + iprod, 0.0) / jnp.where(
            informative, sq_norm, 1.0
        )
        tau = jnp.minimum(alpha / bc1, jnp.where(informative, polyak, 0.0))
        if self.adapt_lower_bound:
            new_lb = jnp.maximum(
                ((barf + iprod - gamma) - 0.5 * tau * sq_norm) / bc1, self.lower_bound
            )
        else:
            new_lb = lb
        return tau, -(alpha * self.weight_decay) / decay, new_lb


def _start(name: str, updates: PyTree, state: Any, params: PyTree, value: Any) -> jax.Array:
    if params is None:
        raise ValueError(f"{name} needs params: call update(grads, state, params, value=loss)")
    check_updates(updates, state.exp_avg)
    check_same_structure(params, state.exp_avg, "params", "the optimizer state")
    return _value(value, name)


def _scalars(lower_bound: Any) -> dict[str, jax.Array]:
    return dict(
        barf=jnp.zeros([], jnp.float32),
        gamma=jnp.zeros([], jnp.float32),
        lb=jnp.asarray(lower_bound, jnp.float32),
        count=zero_count(),
    )


@pytree_dataclass
class Momo(Transformation):
    r"""MoMo (Schaipp, Ohana, Eickenberg, Defazio & Gower, 2023, "MoMo: Momentum Models for
    Adaptive Learning Rates"), SGD-with-momentum version. With :math:`\beta` (0 at the first
    step), learning rate :math:`\alpha_t`, weight decay :math:`\lambda`,
    :math:`\delta = 1 + \alpha_t\lambda` and :math:`f_*` the lower bound:

    .. math::
        \bar f_t = \beta\bar f_{t-1} + (1-\beta) f(\theta_t),\quad
        d_t = \beta d_{t-1} + (1-\beta) g_t,\quad
        \gamma_t = \beta\gamma_{t-1} + (1-\beta)\langle g_t, \theta_t\rangle,\\
        \tau_t = \min\Big(\alpha_t,
            \frac{\big(\delta(\bar f_t - f_* - \gamma_t) + \langle d_t,\theta_t\rangle\big)_+}
                 {\lVert d_t\rVert^2}\Big),\quad
        u_t = -\frac{\alpha_t\lambda}{\delta}\theta_t - \tau_t d_t.

    The loss :math:`f(\theta_t)` is passed as ``update(..., value=loss)``. With
    ``adapt_lower_bound`` :math:`f_*` is re-estimated every step from the model (see the
    paper, section 4). No step is taken while :math:`\lVert d_t\rVert^2 \le 2.2\cdot
    10^{-16}`. Real parameters only (the inner products would be complex).
    """

    learning_rate: Any = nonnegative(schedule=True)
    beta: Any = hyper_field(low=0.0, high=1.0, high_open=True)
    polyak: _Polyak

    def init(self, params: PyTree) -> MomoState:
        reject_complex(params, "momo", "its step size compares inner products")
        return MomoState(exp_avg=full_like(params), **_scalars(self.polyak.lower_bound))

    def update(self, updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        value = _start("momo", updates, state, params, value)
        beta = jnp.where(state.count == 0, 0.0, self.beta)
        grads = map_arrays(upcast, updates)
        barf = ema_update(value, state.barf, beta)
        exp_avg = map_arrays(lambda g, d: ema_update(g, d, beta), grads, state.exp_avg)
        gamma = ema_update(tree_inner(grads, params), state.gamma, beta)
        alpha = value_at(self.learning_rate, state.count)
        tau, decay, lb = self.polyak(
            alpha,
            barf,
            gamma,
            tree_inner(exp_avg, params),
            tree_inner(exp_avg, exp_avg),
            state.lb,
            1.0,
        )
        out = map_arrays(lambda d, p: decay * upcast(p) - tau * d, exp_avg, params)
        new_state = MomoState(
            exp_avg=store_like(exp_avg, state.exp_avg),
            # float32 scalars under x64 too (float64 params would widen them: the state
            # must keep its dtypes to be a scan carry).
            barf=barf.astype(state.barf.dtype),
            gamma=gamma.astype(state.gamma.dtype),
            lb=lb.astype(state.lb.dtype),
            count=safe_increment(state.count),
        )
        return cast_like_grads(out, updates), new_state


def _vdot(a: PyTree, b: PyTree) -> jax.Array:
    """optax's tree inner product (``optim._tree.inner_product`` per leaf, summed)."""
    return tree_sum(map_arrays(lambda x, y: inner_product(upcast(x), upcast(y)), a, b))


@pytree_dataclass
class MomoAdam(Transformation):
    r"""MoMo-Adam (Schaipp et al., 2023, "MoMo: Momentum Models for Adaptive Learning Rates"):
    ``Momo`` with Adam's preconditioner :math:`D_t = \epsilon +
    \sqrt{v_t / (1-\beta_2^t)}` and bias correction :math:`\rho_t = 1-\beta_1^t`:

    .. math::
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
        \tau_t = \min\Big(\frac{\alpha_t}{\rho_t},
            \frac{\big(\delta(\bar f_t - \rho_t f_* - \gamma_t)
                  + \langle d_t,\theta_t\rangle\big)_+}{\langle d_t, d_t / D_t\rangle}\Big),
        \quad u_t = -\frac{\alpha_t\lambda}{\delta}\theta_t - \tau_t \frac{d_t}{D_t},

    :math:`\bar f, d, \gamma` averaged with :math:`\beta_1` from the first step (zeros
    initially, hence :math:`\rho_t`). Real parameters only.
    """

    learning_rate: Any = nonnegative(schedule=True)
    b1: Any = decay()
    b2: Any = decay()
    eps: Any = nonnegative()
    polyak: _Polyak

    def init(self, params: PyTree) -> MomoAdamState:
        reject_complex(params, "momo_adam", "its step size compares inner products")
        return MomoAdamState(
            exp_avg=full_like(params),
            exp_avg_sq=full_like(params),
            **_scalars(self.polyak.lower_bound),
        )

    def update(self, updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        value = _start("momo_adam", updates, state, params, value)
        b1, b2 = self.b1, self.b2
        count = safe_increment(state.count)
        # Bounded so that g^2 stays finite (see optim._numerics.square_safe).
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        barf = ema_update(value, state.barf, b1)
        exp_avg = map_arrays(lambda g, d: ema_update(g, d, b1), grads, state.exp_avg)
        exp_avg_sq = map_arrays(
            lambda g, v: decay_rate(b2) * upcast(v) + decay_complement(b2) * g * g,
            grads,
            state.exp_avg_sq,
        )
        bc2 = 1 - decay_rate(b2) ** count
        precond = map_arrays(lambda v: self.eps + safe_sqrt(v / bc2), exp_avg_sq)
        weighted = map_arrays(lambda d, D: d / D, exp_avg, precond)
        gamma = ema_update(_vdot(grads, params), state.gamma, b1)
        alpha = value_at(self.learning_rate, state.count)
        tau, decay, lb = self.polyak(
            alpha,
            barf,
            gamma,
            _vdot(exp_avg, params),
            _vdot(exp_avg, weighted),
            state.lb,
            1 - decay_rate(b1) ** count,
        )
        # tau * m / D in optax's order (not tau * (m / D)).
        out = map_arrays(lambda m, D, p: decay * upcast(p) - tau * m / D, exp_avg, precond, params)
        new_state = MomoAdamState(
            exp_avg=store_like(exp_avg, state.exp_avg),
            exp_avg_sq=store_like(exp_avg_sq, state.exp_avg_sq),
            # float32 scalars under x64 too (float64 params would widen them: the state
            # must keep its dtypes to be a scan carry).
            barf=barf.astype(state.barf.dtype),
            gamma=gamma.astype(state.gamma.dtype),
            lb=lb.astype(state.lb.dtype),
            count=count,
        )
        return cast_like_grads(out, updates), new_state


def _polyak(lower_bound: Any, weight_decay: Any, adapt_lower_bound: bool) -> _Polyak:
    return _Polyak(
        lower_bound=lower_bound,
        weight_decay=weight_decay,
        adapt_lower_bound=adapt_lower_bound,
    )


@suggest_keywords
def momo(
    learning_rate: ScalarOrSchedule = 1.0,
    beta: Any = 0.9,
    lower_bound: Any = 0.0,
    weight_decay: Any = 0.0,
    adapt_lower_bound: bool = False,
) -> Momo:
    r"""MoMo: SGD with momentum and the step size :math:`\min(\alpha_t, \text{Polyak})`
    (Schaipp et al., 2023; ``optax.contrib.momo``).

    With :math:`\beta` (0 at the first step), learning rate :math:`\alpha_t`, weight decay
    :math:`\lambda`, :math:`\delta = 1 + \alpha_t\lambda` and :math:`f_*` the lower bound:

    .. math::
        \bar f_t = \beta\bar f_{t-1} + (1-\beta) f(\theta_t),\quad
        d_t = \beta d_{t-1} + (1-\beta) g_t,\quad
        \gamma_t = \beta\gamma_{t-1} + (1-\beta)\langle g_t, \theta_t\rangle,\\
        \tau_t = \min\Big(\alpha_t,
            \frac{\big(\delta(\bar f_t - f_* - \gamma_t) + \langle d_t,\theta_t\rangle\big)_+}
                 {\lVert d_t\rVert^2}\Big),\quad
        u_t = -\frac{\alpha_t\lambda}{\delta}\theta_t - \tau_t d_t.

    ``update`` needs the params and the loss :math:`f(\theta_t)`:
    ``update(grads, state, params, value=loss)`` (``jax.value_and_grad`` gives both). No step
    is taken while :math:`\lVert d_t\rVert^2 \le 2.2\cdot 10^{-16}`. Real parameters only.

    Args:
      learning_rate: :math:`\alpha_t \ge 0`, the cap on the step size (best chosen large), a
        number or a schedule ``count -> float``.
      beta: :math:`\beta`, the momentum's decay, in ``[0, 1)``.
      lower_bound: :math:`f_*`, a lower bound on the loss (0 for a non-negative loss); the
        floor of the estimate with ``adapt_lower_bound``.
      weight_decay: :math:`\lambda \ge 0`, the decoupled weight decay.
      adapt_lower_bound: re-estimate :math:`f_*` every step from the model (the paper's
        section 4) instead of keeping ``lower_bound``.

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.MomoState`.

    Raises:
      ValueError: in ``update``, no ``params``, no ``value``, or a ``value`` that is not a
        real scalar.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.momo()
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     value, grads = jax.value_and_grad(loss)(params)
      ...     updates, state = tx.update(grads, state, params, value=value)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4))  # from 29.0
      6.5081

    References:
      Schaipp, Ohana, Eickenberg, Defazio & Gower, 2023, `MoMo: Momentum Models for Adaptive
      Learning Rates <https://arxiv.org/abs/2305.07583>`_.
    """
    return Momo(
        learning_rate=learning_rate,
        beta=beta,
        polyak=_polyak(lower_bound, weight_decay, adapt_lower_bound),
    )


@suggest_keywords
def momo_adam(
    learning_rate: ScalarOrSchedule = 1e-2,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    lower_bound: Any = 0.0,
    weight_decay: Any = 0.0,
    adapt_lower_bound: bool = False,
) -> MomoAdam:
    r"""MoMo-Adam: AdamW with a Polyak-type step size (Schaipp et al., 2023;
    ``optax.contrib.momo_adam``).

    :func:`optim.contrib.momo` with Adam's preconditioner
    :math:`D_t = \epsilon + \sqrt{v_t / (1-\beta_2^t)}` and bias correction
    :math:`\rho_t = 1-\beta_1^t`:

    .. math::
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
        \tau_t = \min\Big(\frac{\alpha_t}{\rho_t},
            \frac{\big(\delta(\bar f_t - \rho_t f_* - \gamma_t)
                  + \langle d_t,\theta_t\rangle\big)_+}{\langle d_t, d_t / D_t\rangle}\Big),
        \quad u_t = -\frac{\alpha_t\lambda}{\delta}\theta_t - \tau_t \frac{d_t}{D_t},

    :math:`\bar f, d, \gamma` averaged with :math:`\beta_1` from the first step (zeros
    initially, hence :math:`\rho_t`). ``update`` needs the params and the loss:
    ``update(grads, state, params, value=loss)``. Real parameters only.

    Args:
      learning_rate: :math:`\alpha_t \ge 0`, the cap on the step size, a number or a schedule
        ``count -> float``.
      b1: :math:`\beta_1`, decay rate of the averages of the gradient, loss and
        :math:`\langle g, \theta\rangle`, in ``[0, 1)``.
      b2: :math:`\beta_2`, decay rate of the second moment, in ``[0, 1)``.
      eps: :math:`\epsilon \ge 0`, added to the root of the second moment in :math:`D_t`.
      lower_bound: :math:`f_*`, a lower bound on the loss (0 for a non-negative loss); the
        floor of the estimate with ``adapt_lower_bound``.
      weight_decay: :math:`\lambda \ge 0`, the decoupled weight decay.
      adapt_lower_bound: re-estimate :math:`f_*` every step from the model (the paper's
        section 4) instead of keeping ``lower_bound``.

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.MomoAdamState`.

    Raises:
      ValueError: in ``update``, no ``params``, no ``value``, or a ``value`` that is not a
        real scalar.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.momo_adam(learning_rate=0.5)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     value, grads = jax.value_and_grad(loss)(params)
      ...     updates, state = tx.update(grads, state, params, value=value)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4))  # from 29.0
      12.594

    References:
      Schaipp, Ohana, Eickenberg, Defazio & Gower, 2023, `MoMo: Momentum Models for Adaptive
      Learning Rates <https://arxiv.org/abs/2305.07583>`_.
    """
    return MomoAdam(
        learning_rate=learning_rate,
        b1=b1,
        b2=b2,
        eps=eps,
        polyak=_polyak(lower_bound, weight_decay, adapt_lower_bound),
    )
