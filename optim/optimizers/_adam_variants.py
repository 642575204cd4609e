"""Adam's relatives with other moments or steps: AdaBelief, RAdam, Yogi, Adan and NovoGrad.

Each optimizer is a building block (``scale_by_*``, with optax's name, arguments, defaults and
state field names) and an alias chaining it with weight decay and the learning rate, as in
optax. Notation and numerical edges as in ``optim.optimizers._adam``. Beyond optax, every
block and alias takes a keyword-only ``nu_dtype`` for its second-moment slots (Adan's n
included), and ``novograd`` passes ``scale_by_novograd``'s ``mu_dtype`` on.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import (
    Decay,
    decay,
    decay_hyper,
    dtype_option,
    flag,
    hyper_field,
    nonnegative,
    positive,
)
from optim._keywords import suggest_keywords
from optim._numerics import (
    adaptive_step,
    adaptive_steps,
    cast_like_grads,
    debias_tree,
    debiased_first_moment,
    decay_complement,
    decay_rate,
    ema_update,
    ema_update_sq,
    safe_sqrt,
    square_safe,
    store_like,
)
from optim._pytree import checked, pytree_dataclass
from optim._tree import (
    PyTree,
    abs_sq,
    check_params,
    compute_dtype,
    full_like,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import SIGNED, UNSIGNED, Chain, Transformation, chain, check_updates, require_params
from optim.optimizers._adam import (
    ScaleByAdamState,
    _first_moment_slot,
    _square_safe,
)
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate


class ScaleByBeliefState(NamedTuple):
    """AdaBelief's step count, first moment and second moment of the prediction error.

    Attributes:
      count: the number of updates so far, an int32 scalar.
      mu: the first moment :math:`m_t`, a pytree like the params.
      nu: the second moment :math:`s_t` of the prediction error :math:`g_t - m_t`, a pytree
        like the params.
    """

    count: jax.Array
    mu: PyTree
    nu: PyTree

    moment_slots = MappingProxyType({"mu": SIGNED, "nu": UNSIGNED})


@pytree_dataclass
class ScaleByBelief(Transformation):
    r"""AdaBelief (Zhuang et al., 2020, "AdaBelief Optimizer: Adapting Stepsizes by the
    Belief in Observed Gradients").

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2) |g_t - m_t|^2 + \epsilon_{root},\quad
        u_t = \hat m_t / (\sqrt{\hat s_t} + \epsilon).

    The step shrinks where the gradient agrees with its prediction :math:`m_t`. With
    ``nesterov=True`` :math:`\hat m_t` is Nadam's (see ``scale_by_adam``).

    Attributes:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second moment :math:`s_t` of the prediction
        error :math:`g_t - m_t`, in ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to :math:`\sqrt{\hat s_t}` in the denominator.
      eps_root: :math:`\epsilon_{root} >= 0`, added to :math:`s_t` at every step (inside
        the average, as in the paper and optax).
      nesterov: use Nesterov momentum: :math:`\hat m_t` is NAdam's
        :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)` (see
        :func:`optim.scale_by_adam`).
      nu_dtype: beyond optax: storage dtype of the second moment ``nu``
        (a floating or complex dtype; ``None``: float32, or the parameter's dtype when wider).

    The fields are the arguments of :func:`optim.scale_by_belief`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    b1: Any = decay()
    b2: Any = decay()
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()
    nesterov: bool = flag(False)
    nu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByBeliefState:
        return ScaleByBeliefState(
            count=zero_count(),
            mu=full_like(params),
            nu=full_like(params, 0.0, self.nu_dtype),
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        b1, b2 = self.b1, self.b2
        grads = _square_safe(updates)
        mu = map_arrays(lambda g, m: ema_update(g, m, b1), grads, state.mu)
        nu = map_arrays(
            lambda g, m, s: ema_update_sq(g - m, s, b2) + self.eps_root, grads, mu, state.nu
        )
        count = safe_increment(state.count)
        mu_hat = debiased_first_moment(mu, grads, b1, count, self.nesterov)
        nu_hat = debias_tree(nu, b2, count)
        out = map_arrays(lambda m, s: adaptive_step(m, s, self.eps), mu_hat, nu_hat)
        new_state = ScaleByBeliefState(count, store_like(mu, state.mu), store_like(nu, state.nu))
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_belief(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> ScaleByBelief:
    r"""Rescale updates by AdaBelief's moments (``optax.scale_by_belief``).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2) |g_t - m_t|^2 + \epsilon_{root},\quad
        u_t = \hat m_t / (\sqrt{\hat s_t} + \epsilon).

    The step shrinks where the gradient agrees with its prediction :math:`m_t`.

    Args:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second moment :math:`s_t` of the prediction
        error :math:`g_t - m_t`, in ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to :math:`\sqrt{\hat s_t}` in the denominator.
      eps_root: :math:`\epsilon_{root} >= 0`, added to :math:`s_t` at every step (inside
        the average, as in the paper and optax).
      nesterov: keyword-only; use Nesterov momentum: :math:`\hat m_t` is NAdam's
        :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)` (see
        :func:`optim.scale_by_adam`).
      nu_dtype: keyword-only, beyond optax: storage dtype of the second moment ``nu``
        (a floating or complex dtype; ``None``: float32, or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByBeliefState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_belief()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 1.1679931 -1.1679931]

    References:
      Zhuang et al., 2020, https://arxiv.org/abs/2010.07468
    """
    return ScaleByBelief(
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        nesterov=nesterov,
        nu_dtype=nu_dtype,
    )


@suggest_keywords
def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> Chain:
    r"""AdaBelief (Zhuang et al., 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
    Observed Gradients").

    .. math:: \theta_{t+1} = \theta_t - \eta_t \hat m_t / (\sqrt{\hat s_t} + \epsilon)

    with :math:`s_t` the moving average of :math:`|g_t - m_t|^2`; see :func:`optim.scale_by_belief`.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second moment :math:`s_t` of the prediction
        error :math:`g_t - m_t`, in ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to :math:`\sqrt{\hat s_t}` in the denominator.
      eps_root: :math:`\epsilon_{root} >= 0`, added to :math:`s_t` at every step (inside
        the average, as in the paper and optax).
      nesterov: keyword-only; use Nesterov momentum: :math:`\hat m_t` is NAdam's
        :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)` (see
        :func:`optim.scale_by_adam`).
      nu_dtype: keyword-only, beyond optax: storage dtype of the second moment ``nu``
        (a floating or complex dtype; ``None``: float32, or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.adabelief(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.8888896 -1.8888897]

    References:
      Zhuang et al., 2020, https://arxiv.org/abs/2010.07468
    """
    return chain(
        scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@pytree_dataclass
class RadamDecay(Decay):
    r"""RAdam's :math:`\beta_2` with the constants it fixes: :math:`\rho_\infty = 2/(1-\beta_2)
    - 1` and :math:`(\rho_\infty-4)(\rho_\infty-2)`.

    From a Python :math:`\beta_2` optax computes both in double precision (in float32,
    :math:`\rho_\infty` is 1998.9999 rather than 1999 for 0.999), and so does ``_radam_decay``;
    from an array, in its precision. Kept with :math:`\beta_2`, so that replacing it
    (``with_hyperparams``) replaces them too.

    Attributes:
      rate: :math:`\beta_2`, a float32 scalar.
      complement: :math:`1 - \beta_2`, a float32 scalar.
      ro_inf: :math:`\rho_\infty = 2/(1-\beta_2) - 1`.
      ro_inf_terms: :math:`(\rho_\infty-4)(\rho_\infty-2)`.
    """

    ro_inf: Any
    ro_inf_terms: Any


def _radam_decay(b2: Any, name: str) -> RadamDecay:
    if isinstance(b2, RadamDecay):
        return b2
    rate = decay_hyper(b2, name)
    if isinstance(b2, (int, float)):
        ro_inf = 2.0 / (1.0 - float(b2)) - 1.0
        terms = (ro_inf - 4.0) * (ro_inf - 2.0)
        ro_inf, terms = np.float32(ro_inf), np.float32(terms)
    else:
        ro_inf = 2 / decay_complement(rate) - 1
        terms = (ro_inf - 4) * (ro_inf - 2)
    return RadamDecay(rate.rate, rate.complement, ro_inf, terms)


@pytree_dataclass
class ScaleByRadam(Transformation):
    r"""Rectified Adam (Liu et al., 2020, "On the Variance of the Adaptive Learning Rate and
    Beyond").

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1,\quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t},\quad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}},

    .. math::
        u_t = r_t \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)
        \text{ if } \rho_t \ge \text{threshold, else } u_t = \hat m_t,

    with Adam's moments :math:`m_t, v_t`: plain momentum until the variance of the adaptive
    step is tractable, then Adam with the variance rectified by :math:`r_t`. With
    ``nesterov=True`` :math:`\hat m_t` is Nadam's.

    Attributes:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      threshold: the :math:`\rho_t` from which the rectified adaptive step is taken
        (before it, plain momentum :math:`\hat m_t`); at least 4, where the rectification
        :math:`r_t` is real (optax returns NaN updates for smaller values).
      nesterov: use Nesterov momentum: :math:`\hat m_t` is NAdam's
        :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)` (see
        :func:`optim.scale_by_adam`).
      nu_dtype: beyond optax: storage dtype of the second moment ``nu``
        (a floating or complex dtype; ``None``: float32, or the parameter's dtype when wider).

    The fields are the arguments of :func:`optim.scale_by_radam`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    b1: Any = decay()
    b2: Any = checked(_radam_decay)
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()
    threshold: Any = hyper_field(low=4.0)
    nesterov: bool = flag(False)
    nu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByAdamState:
        return ScaleByAdamState.zeros(params, nu_dtype=self.nu_dtype)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        b1, b2 = self.b1, self.b2
        grads = _square_safe(updates)
        mu = map_arrays(lambda g, m: ema_update(g, m, b1), grads, state.mu)
        nu = map_arrays(lambda g, v: ema_update_sq(g, v, b2), grads, state.nu)
        count = safe_increment(state.count)
        ro_inf = b2.ro_inf
        b2t = decay_rate(b2) ** count
        ro = ro_inf - 2 * count * b2t / (1 - b2t)
        # Negative for 2 < ro < 4, where the step below is not taken (threshold >= 4): the floor
        # at 0 keeps r finite there, and with it the gradient through jnp.where (0 * NaN).
        r_sq = (ro - 4) * (ro - 2) * ro_inf / (b2.ro_inf_terms * ro)
        r = safe_sqrt(jnp.maximum(r_sq, 0))
        mu_hat = debiased_first_moment(mu, grads, b1, count, self.nesterov)

        def rectified(m: jax.Array, v_hat: jax.Array) -> jax.Array:
            step = adaptive_step(r.astype(m.dtype) * m, v_hat, self.eps, self.eps_root)
            return jnp.where(ro >= self.threshold, step, m)

        out = map_arrays(rectified, mu_hat, debias_tree(nu, b2, count))
        new_state = ScaleByAdamState(count, store_like(mu, state.mu), store_like(nu, state.nu))
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_radam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    threshold: Any = 5.0,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> ScaleByRadam:
    r"""Rescale updates by Rectified Adam (``optax.scale_by_radam``).

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1,\quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t},\quad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}},

    and :math:`u_t = r_t \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)` once
    :math:`\rho_t \ge` ``threshold``, :math:`u_t = \hat m_t` before, with Adam's moments.

    Args:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      threshold: the :math:`\rho_t` from which the rectified adaptive step is taken
        (before it, plain momentum :math:`\hat m_t`); at least 4, where the rectification
        :math:`r_t` is real (optax returns NaN updates for smaller values).
      nesterov: keyword-only; use Nesterov momentum: :math:`\hat m_t` is NAdam's
        :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)` (see
        :func:`optim.scale_by_adam`).
      nu_dtype: keyword-only, beyond optax: storage dtype of the second moment ``nu``
        (a floating or complex dtype; ``None``: float32, or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByAdamState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_radam()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 0.4999999 -0.4999999]

    References:
      Liu et al., 2020, https://arxiv.org/abs/1908.03265
    """
    return ScaleByRadam(
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        threshold=threshold,
        nesterov=nesterov,
        nu_dtype=nu_dtype,
    )


@suggest_keywords
def radam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    threshold: Any = 5.0,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> Chain:
    r"""RAdam (Liu et al., 2020, "On the Variance of the Adaptive Learning Rate and Beyond").

    :math:`\theta_{t+1} = \theta_t - \eta_t u_t` with the rectified step :math:`u_t` of
    :func:`optim.scale_by_radam`: plain momentum for the first steps, then Adam with its variance
    rectified.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      threshold: the :math:`\rho_t` from which the rectified adaptive step is taken
        (before it, plain momentum :math:`\hat m_t`); at least 4, where the rectification
        :math:`r_t` is real (optax returns NaN updates for smaller values).
      nesterov: keyword-only; use Nesterov momentum: :math:`\hat m_t` is NAdam's
        :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)` (see
        :func:`optim.scale_by_adam`).
      nu_dtype: keyword-only, beyond optax: storage dtype of the second moment ``nu``
        (a floating or complex dtype; ``None``: float32, or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.radam(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.95 -1.95]

    References:
      Liu et al., 2020, https://arxiv.org/abs/1908.03265
    """
    return chain(
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@pytree_dataclass
class ScaleByYogi(Transformation):
    r"""Yogi (Zaheer et al., 2018, "Adaptive Methods for Nonconvex Optimization").

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = v_{t-1} - (1-\beta_2)\,\mathrm{sign}(v_{t-1} - |g_t|^2)\,|g_t|^2,\quad
        u_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon),

    with :math:`m_0 = v_0` = ``initial_accumulator_value``. The second moment moves by at
    most :math:`(1-\beta_2)|g_t|^2` a step, so a burst of small gradients cannot make the
    step size explode as in Adam.

    Attributes:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root
        (Yogi's default 1e-3 is much larger than Adam's).
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      initial_accumulator_value: :math:`m_0 = v_0 > 0`, the starting value of both
        moments.
      nu_dtype: beyond optax: storage dtype of the second moment ``nu``
        (a floating or complex dtype; ``None``: float32, or the parameter's dtype when wider).

    The fields are the arguments of :func:`optim.scale_by_yogi`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    b1: Any = decay()
    b2: Any = decay()
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()
    initial_accumulator_value: Any = positive()
    nu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByAdamState:
        return ScaleByAdamState.zeros(
            params, nu_dtype=self.nu_dtype, value=self.initial_accumulator_value
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        b1, b2 = self.b1, self.b2
        grads = _square_safe(updates)
        mu = map_arrays(lambda g, m: ema_update(g, m, b1), grads, state.mu)

        def yogi_moment(g: jax.Array, v: jax.Array) -> jax.Array:
            g2, v = abs_sq(g), upcast(v)
            return v - decay_complement(b2) * jnp.sign(v - g2) * g2

        nu = map_arrays(yogi_moment, grads, state.nu)
        count = safe_increment(state.count)
        out = adaptive_steps(
            debias_tree(mu, b1, count), debias_tree(nu, b2, count), self.eps, self.eps_root
        )
        new_state = ScaleByAdamState(count, store_like(mu, state.mu), store_like(nu, state.nu))
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_yogi(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-3,
    eps_root: Any = 0.0,
    initial_accumulator_value: Any = 1e-6,
    *,
    nu_dtype: Any = None,
) -> ScaleByYogi:
    r"""Rescale updates by Yogi's moments (``optax.scale_by_yogi``).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = v_{t-1} - (1-\beta_2)\,\mathrm{sign}(v_{t-1} - |g_t|^2)\,|g_t|^2,\quad
        u_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon).

    The second moment moves by at most :math:`(1-\beta_2)|g_t|^2` a step.

    Args:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root
        (Yogi's default 1e-3 is much larger than Adam's).
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      initial_accumulator_value: :math:`m_0 = v_0 > 0`, the starting value of both
        moments.
      nu_dtype: keyword-only, beyond optax: storage dtype of the second moment ``nu``
        (a floating or complex dtype; ``None``: float32, or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByAdamState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_yogi()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 0.9960293 -0.9959934]

    References:
      Zaheer et al., 2018, https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization
    """
    return ScaleByYogi(
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        initial_accumulator_value=initial_accumulator_value,
        nu_dtype=nu_dtype,
    )


@suggest_keywords
def yogi(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-3,
    *,
    nu_dtype: Any = None,
) -> Chain:
    r"""Yogi (Zaheer et al., 2018, "Adaptive Methods for Nonconvex Optimization").

    .. math:: \theta_{t+1} = \theta_t - \eta_t \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    with Yogi's additive second moment; see :func:`optim.scale_by_yogi` (whose ``eps_root`` and
    ``initial_accumulator_value`` keep their defaults here, as in optax).

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root
        (Yogi's default 1e-3 is much larger than Adam's).
      nu_dtype: keyword-only, beyond optax: storage dtype of the second moment ``nu``
        (a floating or complex dtype; ``None``: float32, or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.yogi(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.90039706 -1.9004006 ]

    References:
      Zaheer et al., 2018, https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization
    """
    return chain(
        scale_by_yogi(b1, b2, eps, nu_dtype=nu_dtype), scale_by_learning_rate(learning_rate)
    )


class ScaleByAdanState(NamedTuple):
    """Adan's moments of the gradient (m), its change (v) and the squared term (n); the
    previous gradient (g) and the step count (t).

    Attributes:
      m: the gradient's moving average :math:`m_t`, a pytree like the params.
      v: the moving average :math:`v_t` of the gradient change, a pytree like the params.
      n: the second moment :math:`n_t`, a pytree like the params.
      g: the previous gradient :math:`g_{t-1}`, a pytree like the params.
      t: the number of updates so far, an int32 scalar.
    """

    m: PyTree
    v: PyTree
    n: PyTree
    g: PyTree
    t: jax.Array


@pytree_dataclass
class ScaleByAdan(Transformation):
    r"""Adan (Xie et al., 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster
    Optimizing Deep Models", Algorithm 1).

    .. math::
        \Delta_t = g_t - g_{t-1}\ (\Delta_1 = 0),\quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) \Delta_t,

    .. math::
        n_t = \beta_3 n_{t-1} + (1-\beta_3) |g_t + (1-\beta_2)\Delta_t|^2,\quad
        u_t = (\hat m_t + (1-\beta_2)\hat v_t) / (\sqrt{\hat n_t + \epsilon_{root}} + \epsilon).

    The gradient change is a cheap estimate of Nesterov's look-ahead gradient.

    Attributes:
      b1: decay rate :math:`\beta_1` of the gradient's average :math:`m_t`, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the gradient change's average :math:`v_t`, in
        ``[0, 1)``.
      b3: decay rate :math:`\beta_3` of the second moment :math:`n_t`, in ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      nu_dtype: beyond optax: storage dtype of the second moment ``n``
        (``None``: float32, or the parameter's dtype when wider); ``m``, ``v`` and ``g`` take
        the compute dtype.

    The fields are the arguments of :func:`optim.scale_by_adan`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    b1: Any = decay()
    b2: Any = decay()
    b3: Any = decay()
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()
    nu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByAdanState:
        return ScaleByAdanState(
            m=full_like(params),
            v=full_like(params),
            n=full_like(params, 0.0, self.nu_dtype),
            g=full_like(params),
            t=zero_count(),
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.m)
        b1, b2, b3 = self.b1, self.b2, self.b3
        grads = _square_safe(updates)
        diff = map_arrays(
            lambda g, prev: jnp.where(state.t == 0, 0.0, g - upcast(prev)), grads, state.g
        )
        m = map_arrays(lambda g, m: ema_update(g, m, b1), grads, state.m)
        v = map_arrays(lambda d, v: ema_update(d, v, b2), diff, state.v)
        n = map_arrays(
            lambda g, d, n: ema_update_sq(g + decay_complement(b2) * d, n, b3), grads, diff, state.n
        )
        t = safe_increment(state.t)
        out = map_arrays(
            lambda m, v, n: adaptive_step(m + decay_complement(b2) * v, n, self.eps, self.eps_root),
            debias_tree(m, b1, t),
            debias_tree(v, b2, t),
            debias_tree(n, b3, t),
        )
        new_state = ScaleByAdanState(
            m=store_like(m, state.m),
            v=store_like(v, state.v),
            n=store_like(n, state.n),
            g=store_like(grads, state.g),
            t=t,
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_adan(
    b1: Any = 0.98,
    b2: Any = 0.92,
    b3: Any = 0.99,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    *,
    nu_dtype: Any = None,
) -> ScaleByAdan:
    r"""Rescale updates by Adan's moments (``optax.scale_by_adan``).

    .. math::
        \Delta_t = g_t - g_{t-1}\ (\Delta_1 = 0),\quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) \Delta_t,

    .. math::
        n_t = \beta_3 n_{t-1} + (1-\beta_3) |g_t + (1-\beta_2)\Delta_t|^2,\quad
        u_t = (\hat m_t + (1-\beta_2)\hat v_t) / (\sqrt{\hat n_t + \epsilon_{root}} + \epsilon).

    Args:
      b1: decay rate :math:`\beta_1` of the gradient's average :math:`m_t`, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the gradient change's average :math:`v_t`, in
        ``[0, 1)``.
      b3: decay rate :math:`\beta_3` of the second moment :math:`n_t`, in ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      nu_dtype: keyword-only, beyond optax: storage dtype of the second moment ``n``
        (``None``: float32, or the parameter's dtype when wider); ``m``, ``v`` and ``g`` take
        the compute dtype.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByAdanState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_adan()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 1.0000005 -1.0000005]

    References:
      Xie et al., 2022, https://arxiv.org/abs/2208.06677
    """
    return ScaleByAdan(
        b1=b1,
        b2=b2,
        b3=b3,
        eps=eps,
        eps_root=eps_root,
        nu_dtype=nu_dtype,
    )


@suggest_keywords
def adan(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.98,
    b2: Any = 0.92,
    b3: Any = 0.99,
    eps: Any = 1e-8,
    eps_root: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
    *,
    nu_dtype: Any = None,
) -> Chain:
    r"""Adan (Xie et al., 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
    Deep Models") with decoupled weight decay.

    :math:`\theta_{t+1} = \theta_t - \eta_t (u_t + \lambda\theta_t)`, :math:`u_t` from
    :func:`optim.scale_by_adan`, the decay applied only where ``mask`` is True.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the gradient's average :math:`m_t`, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the gradient change's average :math:`v_t`, in
        ``[0, 1)``.
      b3: decay rate :math:`\beta_3` of the second moment :math:`n_t`, in ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      weight_decay: strength :math:`\lambda >= 0` of the decoupled weight decay, a number
        or a schedule: :math:`\lambda \theta_t` is added to the direction before the learning
        rate scales it (:func:`optim.add_decayed_weights`).
      mask: where weight decay applies: a pytree of booleans with the structure of the
        params (or a prefix of it), or a function ``params -> such a pytree``; True leaves are
        decayed, False leaves are not. ``None``: every leaf is decayed.
      nu_dtype: keyword-only, beyond optax: storage dtype of the second moment ``n``
        (``None``: float32, or the parameter's dtype when wider); ``m``, ``v`` and ``g`` take
        the compute dtype.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.adan(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.9 -1.9]

    References:
      Xie et al., 2022, https://arxiv.org/abs/2208.06677
    """
    return chain(
        scale_by_adan(b1, b2, b3, eps, eps_root, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


class ScaleByNovogradState(NamedTuple):
    """NovoGrad's step count, first moment, and one second moment (a scalar) per leaf.

    Attributes:
      count: the number of updates so far, an int32 scalar.
      mu: the first moment :math:`m_t`, a pytree like the params.
      nu: one second moment per leaf (a scalar array: the moving average of the squared
        gradient norm).
    """

    count: jax.Array
    mu: PyTree
    nu: PyTree


@pytree_dataclass
class ScaleByNovograd(Transformation):
    r"""NovoGrad (Ginsburg et al., 2019, "Stochastic Gradient Methods with Layer-wise
    Adaptive Moments for Training of Deep Networks").

    Per leaf (layer) :math:`l`, with :math:`v^l_1 = \|g^l_1\|^2` and :math:`m_0 = 0`:

    .. math::
        v^l_t = \beta_2 v^l_{t-1} + (1-\beta_2) \|g^l_t\|^2,\quad
        m_t = \beta_1 m_{t-1} + g_t / (\sqrt{v^l_t + \epsilon_{root}} + \epsilon)
        + \lambda\theta_t,\quad u_t = m_t.

    The second moment is one number per layer (the squared gradient norm), so the optimizer
    is Adam-like in memory for the first moment only. Needs ``params`` (for the weight decay).

    Attributes:
      b1: decay rate :math:`\beta_1` of the first moment, in ``[0, 1]`` (the new term is
        not multiplied by :math:`1-\beta_1`).
      b2: decay rate :math:`\beta_2` of the per-layer second moment, in ``[0, 1]``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root.
      weight_decay: :math:`\lambda >= 0`: :math:`\lambda\theta_t` is added to each
        normalized gradient before the momentum (a number, not a schedule).
      mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype; a
        real one with complex params raises ``TypeError``); ``None``: float32, or the
        parameter's dtype when wider.
      nu_dtype: beyond optax: dtype of the per-layer second moments
        (scalars; ``None``: float32, or the parameter's dtype when wider).

    The fields are the arguments of :func:`optim.scale_by_novograd`, which builds it.
    """

    b1: Any = decay(closed=True)
    b2: Any = decay(closed=True)
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()
    weight_decay: Any = nonnegative()
    mu_dtype: Any = dtype_option()
    nu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByNovogradState:
        check_params(params)
        nu = map_arrays(lambda p: jnp.zeros([], self.nu_dtype or compute_dtype(p)), params)
        return ScaleByNovogradState(
            count=zero_count(),
            mu=_first_moment_slot(params, self.mu_dtype, "mu_dtype"),
            nu=nu,
        )

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "scale_by_novograd")
        check_updates(updates, state.mu)
        check_updates(updates, params, "params")
        count = safe_increment(state.count)
        # Bounded so that the layer's sum of squares (not just each square) stays finite.
        grads = map_arrays(lambda g: square_safe(upcast(g), terms=g.size), updates)
        # optax's rounding: the norm squared, not the sum of squares.
        grad_sq_norm = map_arrays(lambda g: jnp.linalg.norm(g) ** 2, grads)
        nu = map_arrays(
            lambda s, v: jnp.where(count == 1, s, ema_update(s, v, self.b2)),
            grad_sq_norm,
            state.nu,
        )
        # No special case for the first step: b1 * m_0 = 0 adds nothing.
        mu = map_arrays(
            lambda g, p, m, v: (
                decay_rate(self.b1) * upcast(m)
                + (adaptive_step(g, v, self.eps, self.eps_root) + self.weight_decay * upcast(p))
            ),
            grads,
            params,
            state.mu,
            nu,
        )
        new_state = ScaleByNovogradState(count, store_like(mu, state.mu), store_like(nu, state.nu))
        return cast_like_grads(mu, updates), new_state


@suggest_keywords
def scale_by_novograd(
    b1: Any = 0.9,
    b2: Any = 0.25,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nu_dtype: Any = None,
) -> ScaleByNovograd:
    r"""Rescale updates by NovoGrad's layer-wise moments (``optax.scale_by_novograd``).

    Per leaf (layer) :math:`l`, with :math:`v^l_1 = \|g^l_1\|^2` and :math:`m_0 = 0`:

    .. math::
        v^l_t = \beta_2 v^l_{t-1} + (1-\beta_2) \|g^l_t\|^2,\quad
        m_t = \beta_1 m_{t-1} + g_t / (\sqrt{v^l_t + \epsilon_{root}} + \epsilon)
        + \lambda\theta_t,\quad u_t = m_t.

    Args:
      b1: decay rate :math:`\beta_1` of the first moment, in ``[0, 1]`` (the new term is
        not multiplied by :math:`1-\beta_1`).
      b2: decay rate :math:`\beta_2` of the per-layer second moment, in ``[0, 1]``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root.
      weight_decay: :math:`\lambda >= 0`: :math:`\lambda\theta_t` is added to each
        normalized gradient before the momentum (a number, not a schedule).
      mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype; a
        real one with complex params raises ``TypeError``); ``None``: float32, or the
        parameter's dtype when wider.
      nu_dtype: keyword-only, beyond optax: dtype of the per-layer second moments
        (scalars; ``None``: float32, or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to :math:`m_t`, without the learning rate or its
      minus sign, and needs ``params`` (``ValueError`` without them). Its state is a
      :class:`optim.ScaleByNovogradState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_novograd()
      >>> params = jnp.array([1.0, -2.0])
      >>> updates, state = tx.update(jnp.array([3.0, -4.0]), tx.init(params), params)
      >>> print(updates)
      [ 0.6 -0.8]

    References:
      Ginsburg et al., 2019, https://arxiv.org/abs/1905.11286
    """
    return ScaleByNovograd(
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        weight_decay=weight_decay,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
    )


@suggest_keywords
def novograd(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.25,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> Chain:
    r"""NovoGrad (Ginsburg et al., 2019, "Stochastic Gradient Methods with Layer-wise Adaptive
    Moments for Training of Deep Networks").

    :math:`\theta_{t+1} = \theta_t - \eta_t m_t`, with :math:`m_t` the momentum of gradients
    normalized by each layer's gradient norm (:func:`optim.scale_by_novograd`).

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the first moment, in ``[0, 1]`` (the new term is
        not multiplied by :math:`1-\beta_1`).
      b2: decay rate :math:`\beta_2` of the per-layer second moment, in ``[0, 1]``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root.
      weight_decay: :math:`\lambda >= 0`: :math:`\lambda\theta_t` is added to each
        normalized gradient before the momentum (a number, not a schedule).
      mu_dtype: keyword-only here (positional in :func:`optim.scale_by_novograd`): storage
        dtype of the first moment ``mu`` (a floating or complex dtype; a real one with
        complex params raises ``TypeError``); ``None``: float32, or the parameter's dtype
        when wider.
      nu_dtype: keyword-only, beyond optax: dtype of the per-layer second moments
        (scalars; ``None``: float32, or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves). Its ``update`` needs ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.novograd(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.9292894 -1.9292895]

    References:
      Ginsburg et al., 2019, https://arxiv.org/abs/1905.11286
    """
    return chain(
        scale_by_novograd(
            b1, b2, eps, eps_root, weight_decay, mu_dtype=mu_dtype, nu_dtype=nu_dtype
        ),
        scale_by_learning_rate(learning_rate),
    )
