"""Building blocks: each scales, accumulates or adds to the incoming updates.

Notation in the docstrings: :math:`g_t` is the incoming update (the gradient, or the output of
the previous transformation in a chain), :math:`u_t` the outgoing one, :math:`\\theta_t` the
parameters, :math:`t \\ge 1` the step count. Arithmetic runs in at least float32 whatever the
parameter dtype; state slots keep the dtype they were created with (float32 for bf16/fp16
parameters unless a ``*_dtype`` argument says otherwise); updates leave in the incoming
gradient's dtype.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import check_flag, decay_hyper, hyper, is_schedule, value_at
from optim._numerics import (
    adaptive_step,
    canonical_dtype,
    cast_like_grads,
    debias_tree,
    debiased_first_moment,
    ema_update,
    ema_update_sq,
    square_safe,
    store_like,
)
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    abs_sq,
    check_float_updates,
    check_params,
    full_like,
    is_trainable,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim.base import EmptyState, Transformation, check_updates

# --- scaling ------------------------------------------------------------------------------

# The state of scale: empty, as in optax (where it is an alias too).
ScaleState = EmptyState


@pytree_dataclass
class Scale(Transformation):
    r"""Multiply by a constant: :math:`u_t = s\,g_t`."""

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    step_size: Any

    def init(self, params: PyTree) -> ScaleState:
        del params
        return ScaleState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        return map_arrays(lambda g: (self.step_size * upcast(g)).astype(g.dtype), updates), state


def scale(step_size: Any) -> Scale:
    """Scale updates by a constant ``step_size`` (``optax.scale``)."""
    return Scale(hyper(step_size, "step_size", schedule=False))


class ScaleByScheduleState(NamedTuple):
    """The number of updates made so far, the schedule's argument."""

    count: jax.Array


@pytree_dataclass
class ScaleBySchedule(Transformation):
    r"""Multiply by a schedule of the step count: :math:`u_t = s(t-1)\,g_t`."""

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    step_size_fn: Any

    def init(self, params: PyTree) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(count=zero_count())

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        step_size = value_at(self.step_size_fn, state.count)
        updates = map_arrays(lambda g: (step_size * upcast(g)).astype(g.dtype), updates)
        return updates, ScaleByScheduleState(count=safe_increment(state.count))


def scale_by_schedule(step_size_fn: Any) -> ScaleBySchedule:
    """Scale updates by ``step_size_fn(count)`` (``optax.scale_by_schedule``)."""
    if not is_schedule(step_size_fn):
        raise TypeError(f"step_size_fn must be a schedule (callable), got {step_size_fn!r}")
    return ScaleBySchedule(hyper(step_size_fn, "step_size_fn"))


@pytree_dataclass
class ScaleByLearningRate(Transformation):
    r"""Descent step: :math:`u_t = -\eta_t\,g_t` (or :math:`+\eta_t g_t` with ``flip_sign=False``).

    :math:`\eta_t` is a constant or a schedule evaluated at the number of previous updates;
    only a schedule keeps a count in the state.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    learning_rate: Any
    flip_sign: bool = static(True)

    def init(self, params: PyTree) -> EmptyState | ScaleByScheduleState:
        del params
        if is_schedule(self.learning_rate):
            return ScaleByScheduleState(count=zero_count())
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        if is_schedule(self.learning_rate):
            lr = value_at(self.learning_rate, state.count)
            state = ScaleByScheduleState(count=safe_increment(state.count))
        else:
            lr = self.learning_rate
        step = -lr if self.flip_sign else lr
        return map_arrays(lambda g: (step * upcast(g)).astype(g.dtype), updates), state


def scale_by_learning_rate(learning_rate: Any = None, *, flip_sign: bool = True) -> Any:
    """Scale by minus the learning rate, a non-negative number or a schedule.

    ``learning_rate=None`` means no scaling (``identity``), as in optax.
    """
    flip_sign = check_flag(flip_sign, "flip_sign")
    if learning_rate is None:
        from optim.base import identity

        return identity()
    return ScaleByLearningRate(learning_rate_hyper(learning_rate), flip_sign=flip_sign)


def learning_rate_hyper(learning_rate: Any) -> Any:
    """Validate a learning rate: a finite number >= 0, or a schedule."""
    return hyper(learning_rate, "learning_rate", low=0.0)


# --- accumulation -------------------------------------------------------------------------


class TraceState(NamedTuple):
    """The momentum buffer."""

    trace: PyTree


@pytree_dataclass
class Trace(Transformation):
    r"""Heavy-ball momentum (Polyak, 1964): :math:`m_t = g_t + \mu\,m_{t-1}`, :math:`u_t = m_t`.

    With ``nesterov=True`` (Sutskever et al., 2013): :math:`u_t = g_t + \mu\,m_t`.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    decay: Any
    nesterov: bool = static(False)
    accumulator_dtype: Any = static(None)

    def init(self, params: PyTree) -> TraceState:
        return TraceState(trace=full_like(params, 0.0, self.accumulator_dtype))

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.trace)
        trace = map_arrays(lambda g, t: upcast(g) + self.decay * upcast(t), updates, state.trace)
        out = trace
        if self.nesterov:
            out = map_arrays(lambda g, t: upcast(g) + self.decay * t, updates, trace)
        return cast_like_grads(out, updates), TraceState(trace=store_like(trace, state.trace))


def trace(decay: Any, nesterov: bool = False, accumulator_dtype: Any = None) -> Trace:
    """Momentum: a decaying sum of past updates (``optax.trace``)."""
    return Trace(
        hyper(decay, "decay", schedule=False),
        nesterov=check_flag(nesterov, "nesterov"),
        accumulator_dtype=canonical_dtype(accumulator_dtype, "accumulator_dtype"),
    )


class EmaState(NamedTuple):
    """Step count and the exponential moving average."""

    count: jax.Array
    ema: PyTree


@pytree_dataclass
class Ema(Transformation):
    r"""Exponential moving average :math:`m_t = (1-\beta) g_t + \beta m_{t-1}`.

    :math:`u_t = m_t / (1 - \beta^t)` with ``debias=True``, else :math:`u_t = m_t`.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    decay: Any
    debias: bool = static(True)
    accumulator_dtype: Any = static(None)

    def init(self, params: PyTree) -> EmaState:
        return EmaState(count=zero_count(), ema=full_like(params, 0.0, self.accumulator_dtype))

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.ema)
        ema = map_arrays(lambda g, m: ema_update(g, m, self.decay), updates, state.ema)
        count = safe_increment(state.count)
        out = debias_tree(ema, self.decay, count) if self.debias else ema
        return cast_like_grads(out, updates), EmaState(count=count, ema=store_like(ema, state.ema))


def ema(decay: Any, debias: bool = True, accumulator_dtype: Any = None) -> Ema:
    """Exponential moving average of past updates (``optax.ema``)."""
    return Ema(
        decay_hyper(decay, "decay", closed=True),
        debias=check_flag(debias, "debias"),
        accumulator_dtype=canonical_dtype(accumulator_dtype, "accumulator_dtype"),
    )


# --- adaptive scaling ---------------------------------------------------------------------


class ScaleByAdamState(NamedTuple):
    """Adam's step count and first and second moments."""

    count: jax.Array
    mu: PyTree
    nu: PyTree

    @classmethod
    def zeros(
        cls, params: PyTree, mu_dtype: Any = None, nu_dtype: Any = None, value: float = 0.0
    ) -> ScaleByAdamState:
        """Step 0, both moments filled with ``value`` (dtype None: float32 or wider)."""
        return cls(
            count=zero_count(),
            mu=full_like(params, value, mu_dtype),
            nu=full_like(params, value, nu_dtype),
        )


@pytree_dataclass
class ScaleByAdam(Transformation):
    r"""Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization").

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2,\\
        \hat m_t = m_t / (1-\beta_1^t),\quad \hat v_t = v_t / (1-\beta_2^t),\quad
        u_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon).

    With ``nesterov=True`` (Nadam; Dozat, 2016, "Incorporating Nesterov Momentum into
    Adam"): :math:`\hat m_t = \beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`.
    Unlike the seed document's formula, :math:`\epsilon` sits outside the square root and the
    moments are bias-corrected, as in the paper.

    Numerical edges (where optax gives inf or NaN): gradients beyond :math:`2^{62}` in
    magnitude count as :math:`\pm 2^{62}` in both moments (``square_safe``), so :math:`v_t`
    never overflows to inf and a spike does not freeze its coordinate for good; where the
    denominator is 0 (:math:`\epsilon = \epsilon_{root} = 0`, :math:`v_t = 0`) the step is 0;
    and the derivative of :math:`\sqrt{v}` at 0 is taken as 0, so ``jax.grad`` through updates
    with zero gradients stays finite (``safe_sqrt``).
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    b1: Any
    b2: Any
    eps: Any
    eps_root: Any
    mu_dtype: Any = static(None)
    nesterov: bool = static(False)
    nu_dtype: Any = static(None)

    def init(self, params: PyTree) -> ScaleByAdamState:
        return ScaleByAdamState.zeros(params, self.mu_dtype, self.nu_dtype)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        b1, b2 = self.b1, self.b2
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        mu = map_arrays(lambda g, m: ema_update(g, m, b1), grads, state.mu)
        nu = map_arrays(lambda g, v: ema_update_sq(g, v, b2), grads, state.nu)
        count = safe_increment(state.count)
        mu_hat = debiased_first_moment(mu, grads, b1, count, self.nesterov)
        out = map_arrays(
            lambda m, v: adaptive_step(m, v, self.eps, self.eps_root),
            mu_hat,
            debias_tree(nu, b2, count),
        )
        new_state = ScaleByAdamState(
            count=count, mu=store_like(mu, state.mu), nu=store_like(nu, state.nu)
        )
        return cast_like_grads(out, updates), new_state


def scale_by_adam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> ScaleByAdam:
    """Rescale updates by Adam's bias-corrected moments (``optax.scale_by_adam``).

    ``mu_dtype``/``nu_dtype`` set the storage dtype of each moment (default: float32, or the
    parameter's dtype when wider); the arithmetic stays float32 whatever they are.
    """
    return ScaleByAdam(
        b1=decay_hyper(b1, "b1"),
        b2=decay_hyper(b2, "b2"),
        eps=hyper(eps, "eps", schedule=False, low=0.0),
        eps_root=hyper(eps_root, "eps_root", schedule=False, low=0.0),
        mu_dtype=canonical_dtype(mu_dtype, "mu_dtype"),
        nesterov=check_flag(nesterov, "nesterov"),
        nu_dtype=canonical_dtype(nu_dtype, "nu_dtype"),
    )


class ScaleByRmsState(NamedTuple):
    """RMSProp's step count (used with ``bias_correction``) and second moment."""

    count: jax.Array
    nu: PyTree


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
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    decay: Any
    eps: Any
    initial_scale: Any
    eps_in_sqrt: bool = static(True)
    bias_correction: bool = static(False)

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


def _rms_args(decay: Any, eps: Any, initial_scale: Any) -> dict[str, Any]:
    return dict(
        decay=decay_hyper(decay, "decay", closed=True),
        eps=hyper(eps, "eps", schedule=False, low=0.0),
        initial_scale=hyper(initial_scale, "initial_scale", schedule=False, low=0.0),
    )


def scale_by_rms(
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> ScaleByRms:
    """Rescale by the root of an EMA of squared updates (``optax.scale_by_rms``)."""
    return ScaleByRms(
        **_rms_args(decay, eps, initial_scale),
        eps_in_sqrt=check_flag(eps_in_sqrt, "eps_in_sqrt"),
        bias_correction=check_flag(bias_correction, "bias_correction"),
    )


class ScaleByRStdDevState(NamedTuple):
    """Centered RMSProp's first and second moments (``scale_by_stddev`` without bias
    correction; optax's record)."""

    mu: PyTree
    nu: PyTree


class ScaleByStddevState(NamedTuple):
    """Centered RMSProp's step count, first and second moments (``scale_by_stddev`` with
    ``bias_correction=True``; optax's ``ScaleByRStdDevWithCountState``)."""

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
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    decay: Any
    eps: Any
    initial_scale: Any
    eps_in_sqrt: bool = static(True)
    bias_correction: bool = static(False)

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


def scale_by_stddev(
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> ScaleByStddev:
    """Rescale by the root of the centered EMA of squares (``optax.scale_by_stddev``)."""
    return ScaleByStddev(
        **_rms_args(decay, eps, initial_scale),
        eps_in_sqrt=check_flag(eps_in_sqrt, "eps_in_sqrt"),
        bias_correction=check_flag(bias_correction, "bias_correction"),
    )


class ScaleByRssState(NamedTuple):
    """Adagrad's running sum of squared updates."""

    sum_of_squares: PyTree


@pytree_dataclass
class ScaleByRss(Transformation):
    r"""Adagrad scaling (Duchi et al., 2011, "Adaptive Subgradient Methods").

    .. math::
        s_t = s_{t-1} + |g_t|^2,\quad u_t = g_t / \sqrt{s_t + \epsilon}\ (0 \text{ where }
        s_t = 0),\quad s_0 = \text{initial\_accumulator\_value}.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    initial_accumulator_value: Any
    eps: Any

    def init(self, params: PyTree) -> ScaleByRssState:
        return ScaleByRssState(full_like(params, self.initial_accumulator_value))

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.sum_of_squares)
        # Bounded as in scale_by_adam: one gradient spike cannot make the sum inf (many can).
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        sums = map_arrays(lambda g, s: abs_sq(g) + upcast(s), grads, state.sum_of_squares)
        out = map_arrays(
            lambda g, s: jnp.where(s > 0, jax.lax.rsqrt(s + self.eps), 0.0) * g, grads, sums
        )
        return cast_like_grads(out, updates), ScaleByRssState(
            store_like(sums, state.sum_of_squares)
        )


def scale_by_rss(initial_accumulator_value: Any = 0.1, eps: Any = 1e-7) -> ScaleByRss:
    """Rescale by the root of the sum of all squared updates (``optax.scale_by_rss``)."""
    return ScaleByRss(
        initial_accumulator_value=hyper(
            initial_accumulator_value, "initial_accumulator_value", schedule=False, low=0.0
        ),
        eps=hyper(eps, "eps", schedule=False, low=0.0),
    )


# --- adding -------------------------------------------------------------------------------


class AddDecayedWeightsState(NamedTuple):
    """The step count, kept only when the weight decay is a schedule."""

    count: jax.Array


@pytree_dataclass
class AddDecayedWeights(Transformation):
    r"""Decoupled weight decay (Loshchilov & Hutter, 2019): :math:`u_t = g_t + \lambda_t\theta_t`.

    Placed before the learning-rate scaling this gives AdamW's
    :math:`\theta_{t+1} = \theta_t - \eta(\hat u_t + \lambda\theta_t)`.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    weight_decay: Any

    def init(self, params: PyTree) -> EmptyState | AddDecayedWeightsState:
        check_params(params)
        if is_schedule(self.weight_decay):
            return AddDecayedWeightsState(count=zero_count())
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            if not any(is_trainable(g) for g in jax.tree.leaves(updates)):
                return updates, state  # nothing to decay (e.g. every leaf masked out)
            raise ValueError("add_decayed_weights needs params: call update(grads, state, params)")
        if is_schedule(self.weight_decay):
            wd = value_at(self.weight_decay, state.count)
            state = AddDecayedWeightsState(count=safe_increment(state.count))
        else:
            wd = self.weight_decay
        params = _without_missing_updates(updates, params)
        check_updates(updates, params, "params")
        out = map_arrays(lambda g, p: upcast(g) + wd * upcast(p), updates, params)
        return cast_like_grads(out, updates), state


def _without_missing_updates(updates: PyTree, params: PyTree) -> PyTree:
    """``params`` with the subtrees where ``updates`` has ``None`` set to ``None`` too (optax:
    a ``None`` update stays ``None``, whatever the parameter under it)."""
    is_none = lambda x: x is None
    if not any(x is None for x in jax.tree.leaves(updates, is_leaf=is_none)):
        return params
    try:
        return jax.tree.map(lambda g, p: None if g is None else p, updates, params, is_leaf=is_none)
    except ValueError:
        return params  # not a prefix: check_updates names the difference


def add_decayed_weights(weight_decay: Any = 0.0, mask: Any = None) -> Any:
    """Add ``weight_decay * params`` to the updates, on the leaves ``mask`` selects.

    ``mask`` is a pytree of booleans (a prefix of the params tree) or a function of the params
    returning one, as in ``optax.add_decayed_weights``.
    """
    tx = AddDecayedWeights(hyper(weight_decay, "weight_decay", low=0.0))
    if mask is None:
        return tx
    from optim.wrappers import masked

    return masked(tx, mask)
