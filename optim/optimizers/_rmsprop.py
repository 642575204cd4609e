r"""RMSProp (Tieleman and Hinton, 2012): steps divided by a moving root mean square of the
gradients, optionally centred (``scale_by_stddev``), with momentum.

Notation in the docstrings: :math:`g_t` is the incoming update (the gradient, or the output of
the previous transformation in a chain), :math:`u_t` the outgoing one, :math:`\theta_t` the
parameters, :math:`t \ge 1` the step count. Arithmetic runs in at least float32 whatever the
parameter dtype; state slots keep the dtype they were created with (float32 for bf16/fp16
parameters unless a ``*_dtype`` argument says otherwise); updates leave in the incoming
gradient's dtype.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import check_flag, decay, flag, nonnegative
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
from optim._tree import (
    PyTree,
    abs_sq,
    full_like,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import UNSIGNED, Chain, Transformation, chain, check_updates
from optim.optimizers._sgd import _momentum
from optim.transforms._scaling import scale_by_learning_rate


class ScaleByRmsState(NamedTuple):
    """RMSProp's step count (used with ``bias_correction``) and second moment.

    Attributes:
      count: the number of updates so far when ``bias_correction`` is on (0 otherwise), an
        int32 scalar.
      nu: the moving average :math:`v_t` of squared updates, a pytree like the params.
    """

    count: jax.Array
    nu: PyTree

    moment_slots = MappingProxyType({"nu": UNSIGNED})


def _rms_scaling(v: jax.Array, eps: jax.Array, eps_in_sqrt: bool) -> jax.Array:
    r""":math:`1/\sqrt{v + \epsilon}` or :math:`1/(\sqrt{v} + \epsilon)`; 0 where the root is 0.

    The root is 0 only with :math:`\epsilon = 0` where every gradient so far was 0 or squared
    to an underflow: the step there is 0 rather than optax's NaN (0/0) or inf.
    """
    if eps_in_sqrt:
        root_squared = v + eps
        return jax.lax.rsqrt(jnp.where(root_squared > 0, root_squared, jnp.inf))  # 1/inf = 0
    return adaptive_step(1.0, v, eps)


@pytree_dataclass
class ScaleByRms(Transformation):
    r"""RMSProp scaling (Hinton, 2012, "Neural Networks for Machine Learning", lecture 6e).

    .. math::
        v_t = \beta v_{t-1} + (1-\beta) |g_t|^2,\quad
        u_t = g_t / \sqrt{\hat v_t + \epsilon}\ \text{(or } g_t / (\sqrt{\hat v_t} + \epsilon)
        \text{ with eps\_in\_sqrt=False)},

    with :math:`\hat v_t = v_t / (1-\beta^t)` if ``bias_correction`` else :math:`v_t`, and
    :math:`v_0` = ``initial_scale``. Numerical edges as in ``scale_by_adam``: gradients beyond
    :math:`2^{62}` count as :math:`\pm 2^{62}`, a zero root gives a zero step, and the
    derivative of the root at 0 is 0.

    Attributes:
      decay: decay rate :math:`\beta` of the moving average of squared updates, in
        ``[0, 1]``.
      eps: :math:`\epsilon >= 0`, added to the mean square inside the square root
        (``eps_in_sqrt=True``) or to the root outside it.
      initial_scale: the starting value :math:`v_0 >= 0` of the mean square.
      eps_in_sqrt: put :math:`\epsilon` inside the square root
        (:math:`\sqrt{v + \epsilon}`, True, optax's default) or outside
        (:math:`\sqrt{v} + \epsilon`, False, as in PyTorch).
      bias_correction: divide the moving averages by :math:`1 - \beta^t` (as Adam does);
        False, optax's default, uses them as they are.

    The fields are the arguments of :func:`optim.scale_by_rms`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    decay: Any = decay(closed=True)
    eps: Any = nonnegative()
    initial_scale: Any = nonnegative()
    eps_in_sqrt: bool = flag(True)
    bias_correction: bool = flag(False)

    def init(self, params: PyTree) -> ScaleByRmsState:
        nu = full_like(params, self.initial_scale)
        return ScaleByRmsState(count=zero_count(), nu=nu)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.nu)
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        nu = map_arrays(lambda g, v: ema_update_sq(g, v, self.decay), grads, state.nu)
        count = safe_increment(state.count) if self.bias_correction else state.count
        nu_hat = debias_tree(nu, self.decay, count) if self.bias_correction else nu
        out = map_arrays(
            lambda g, v: _rms_scaling(v, self.eps, self.eps_in_sqrt) * g,
            grads,
            nu_hat,
        )
        return cast_like_grads(out, updates), ScaleByRmsState(
            count=count, nu=store_like(nu, state.nu)
        )


@suggest_keywords
def scale_by_rms(
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> ScaleByRms:
    r"""Rescale by the root of an EMA of squared updates (``optax.scale_by_rms``).

    .. math::
        v_t = \beta v_{t-1} + (1-\beta) |g_t|^2,\quad u_t = g_t / \sqrt{\hat v_t + \epsilon}

    with :math:`\hat v_t = v_t / (1-\beta^t)` under ``bias_correction``, else :math:`v_t`. A zero
    root gives a zero step (optax: NaN or inf).

    Args:
      decay: decay rate :math:`\beta` of the moving average of squared updates, in
        ``[0, 1]``.
      eps: :math:`\epsilon >= 0`, added to the mean square inside the square root
        (``eps_in_sqrt=True``) or to the root outside it.
      initial_scale: the starting value :math:`v_0 >= 0` of the mean square.
      eps_in_sqrt: put :math:`\epsilon` inside the square root
        (:math:`\sqrt{v + \epsilon}`, True, optax's default) or outside
        (:math:`\sqrt{v} + \epsilon`, False, as in PyTorch).
      bias_correction: divide the moving averages by :math:`1 - \beta^t` (as Adam does);
        False, optax's default, uses them as they are.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByRmsState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_rms()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 3.162277 -3.162277]

    References:
      Hinton, 2012, http://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf
    """
    return ScaleByRms(
        decay=decay,
        eps=eps,
        initial_scale=initial_scale,
        eps_in_sqrt=eps_in_sqrt,
        bias_correction=bias_correction,
    )


class ScaleByRStdDevState(NamedTuple):
    """Centered RMSProp's first and second moments (``scale_by_stddev`` without bias
    correction; optax's record).

    Attributes:
      mu: the moving average :math:`m_t` of the updates, a pytree like the params.
      nu: the moving average :math:`v_t` of squared updates, a pytree like the params.
    """

    mu: PyTree
    nu: PyTree


class ScaleByStddevState(NamedTuple):
    """Centered RMSProp's step count, first and second moments (``scale_by_stddev`` with
    ``bias_correction=True``; optax's ``ScaleByRStdDevWithCountState``).

    Attributes:
      count: the number of updates so far, an int32 scalar.
      mu: the moving average :math:`m_t` of the updates, a pytree like the params.
      nu: the moving average :math:`v_t` of squared updates, a pytree like the params.
    """

    count: jax.Array
    mu: PyTree
    nu: PyTree


@pytree_dataclass
class ScaleByStddev(Transformation):
    r"""Centered RMSProp scaling (Graves, 2013, "Generating Sequences With RNNs", eq. 38-40).

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t,\quad v_t = \beta v_{t-1} + (1-\beta)|g_t|^2,\quad
        u_t = g_t / \sqrt{\hat v_t - |\hat m_t|^2 + \epsilon}

    (or :math:`g_t / (\sqrt{\hat v_t - |\hat m_t|^2} + \epsilon)` with ``eps_in_sqrt=False``),
    hats denoting optional bias correction and numerical edges handled as in ``scale_by_rms``.

    Attributes:
      decay: decay rate :math:`\beta` of the moving average of squared updates, in
        ``[0, 1]``.
      eps: :math:`\epsilon >= 0`, added to the mean square inside the square root
        (``eps_in_sqrt=True``) or to the root outside it.
      initial_scale: the starting value :math:`v_0 >= 0` of the mean square.
      eps_in_sqrt: put :math:`\epsilon` inside the square root
        (:math:`\sqrt{v + \epsilon}`, True, optax's default) or outside
        (:math:`\sqrt{v} + \epsilon`, False, as in PyTorch).
      bias_correction: divide the moving averages by :math:`1 - \beta^t` (as Adam does);
        False, optax's default, uses them as they are.

    The fields are the arguments of :func:`optim.scale_by_stddev`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    decay: Any = decay(closed=True)
    eps: Any = nonnegative()
    initial_scale: Any = nonnegative()
    eps_in_sqrt: bool = flag(True)
    bias_correction: bool = flag(False)

    def init(self, params: PyTree) -> ScaleByRStdDevState | ScaleByStddevState:
        mu, nu = full_like(params), full_like(params, self.initial_scale)
        if self.bias_correction:
            return ScaleByStddevState(count=zero_count(), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.nu)
        d = self.decay
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        mu = map_arrays(lambda g, m: ema_update(g, m, d), grads, state.mu)
        nu = map_arrays(lambda g, v: ema_update_sq(g, v, d), grads, state.nu)
        count = safe_increment(state.count) if self.bias_correction else None
        hat = (lambda x: debias_tree(x, d, count)) if self.bias_correction else (lambda x: x)
        out = map_arrays(
            lambda g, m, v: _rms_scaling(v - abs_sq(m), self.eps, self.eps_in_sqrt) * g,
            grads,
            hat(mu),
            hat(nu),
        )
        mu, nu = store_like(mu, state.mu), store_like(nu, state.nu)
        if self.bias_correction:
            return cast_like_grads(out, updates), ScaleByStddevState(count, mu, nu)
        return cast_like_grads(out, updates), ScaleByRStdDevState(mu, nu)


@suggest_keywords
def scale_by_stddev(
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> ScaleByStddev:
    r"""Rescale by the root of the centered EMA of squares (``optax.scale_by_stddev``).

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t,\quad v_t = \beta v_{t-1} + (1-\beta)|g_t|^2,\quad
        u_t = g_t / \sqrt{\hat v_t - |\hat m_t|^2 + \epsilon}

    (hats: optional bias correction).

    Args:
      decay: decay rate :math:`\beta` of the moving average of squared updates, in
        ``[0, 1]``.
      eps: :math:`\epsilon >= 0`, added to the mean square inside the square root
        (``eps_in_sqrt=True``) or to the root outside it.
      initial_scale: the starting value :math:`v_0 >= 0` of the mean square.
      eps_in_sqrt: put :math:`\epsilon` inside the square root
        (:math:`\sqrt{v + \epsilon}`, True, optax's default) or outside
        (:math:`\sqrt{v} + \epsilon`, False, as in PyTorch).
      bias_correction: divide the moving averages by :math:`1 - \beta^t` (as Adam does);
        False, optax's default, uses them as they are.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByRStdDevState`, or a :class:`optim.ScaleByStddevState`
      (with a step count) under ``bias_correction``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_stddev()
      >>> grads = jnp.array([0.5, -0.25])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 3.3333325 -3.3333304]

    References:
      Graves, 2013, https://arxiv.org/abs/1308.0850 (eq. 38-40)
    """
    return ScaleByStddev(
        decay=decay,
        eps=eps,
        initial_scale=initial_scale,
        eps_in_sqrt=eps_in_sqrt,
        bias_correction=bias_correction,
    )


@suggest_keywords
def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Any = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> Chain:
    r"""RMSProp (Hinton, 2012), centered (Graves, 2013) by option, with optional momentum.

    .. math:: v_t = \beta v_{t-1} + (1-\beta) g_t^2,\quad
        \theta_{t+1} = \theta_t - \eta_t\, g_t / \sqrt{v_t + \epsilon}

    (centered: :math:`v_t - m_t^2` under the root; momentum is applied after the scaling, as in
    optax and PyTorch).

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      decay: decay rate :math:`\beta` of the moving average of squared updates, in
        ``[0, 1]``.
      eps: :math:`\epsilon >= 0`, added to the mean square inside the square root
        (``eps_in_sqrt=True``) or to the root outside it.
      initial_scale: the starting value :math:`v_0 >= 0` of the mean square.
      eps_in_sqrt: put :math:`\epsilon` inside the square root
        (:math:`\sqrt{v + \epsilon}`, True, optax's default) or outside
        (:math:`\sqrt{v} + \epsilon`, False, as in PyTorch).
      centered: subtract the squared moving average of the updates under the root
        (:func:`optim.scale_by_stddev`); False uses :func:`optim.scale_by_rms`.
      momentum: decay :math:`\mu >= 0` of a momentum buffer applied to the learning-rate-scaled
        steps, or ``None`` for no momentum.
      nesterov: use Nesterov momentum; needs a ``momentum`` (with ``None`` it raises
        ``ValueError``, where optax ignores the flag).
      bias_correction: divide the moving averages by :math:`1 - \beta^t` (as Adam does);
        False, optax's default, uses them as they are.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.rmsprop(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.6837723 -1.6837723]

    References:
      Hinton, 2012, http://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf;
      Graves, 2013, https://arxiv.org/abs/1308.0850
    """
    scaling = scale_by_stddev if check_flag(centered, "centered") else scale_by_rms
    return chain(
        scaling(decay, eps, initial_scale, eps_in_sqrt, bias_correction),
        scale_by_learning_rate(learning_rate),
        _momentum(momentum, nesterov),
    )
