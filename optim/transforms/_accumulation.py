r"""Accumulation over steps: momentum (``trace``), moving averages (``ema``), gradient
accumulation (``MultiSteps``, ``apply_every``) and the skip rules ``MultiSteps`` takes.

Notation in the docstrings: :math:`g_t` is the incoming update (the gradient, or the output of
the previous transformation in a chain), :math:`u_t` the outgoing one, :math:`\theta_t` the
parameters, :math:`t \ge 1` the step count. Arithmetic runs in at least float32 whatever the
parameter dtype; state slots keep the dtype they were created with (float32 for bf16/fp16
parameters unless a ``*_dtype`` argument says otherwise); updates leave in the incoming
gradient's dtype.

A wrapper is a pytree whose children are the wrapped transformations (so their float
hyperparameters stay leaves) and its own float hyperparameters; masks, step counts, flags and
functions are static metadata. Names, arguments, defaults and state fields follow optax.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from optim._hyper import (
    check_int,
    decay,
    dtype_option,
    flag,
    hyper_field,
    int_option,
)
from optim._keywords import suggest_keywords
from optim._numerics import (
    cast_like_grads,
    debias_tree,
    ema_update,
    store_like,
)
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_params,
    full_like,
    is_trainable,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim.base import (
    SIGNED,
    Transformation,
    as_transformation,
    check_updates,
)
from optim.transforms._common import cast_like, zeros_like


class TraceState(NamedTuple):
    """The momentum buffer.

    Attributes:
      trace: :math:`m_{t}`, a pytree with the structure of the params (in
        ``accumulator_dtype``, or each parameter's dtype).
    """

    trace: PyTree

    moment_slots = MappingProxyType({"trace": SIGNED})


@pytree_dataclass
class Trace(Transformation):
    r"""Heavy-ball momentum (Polyak, 1964): :math:`m_t = g_t + \mu\,m_{t-1}`, :math:`u_t = m_t`.

    With ``nesterov=True`` (Sutskever et al., 2013): :math:`u_t = g_t + \mu\,m_t`. Built by
    :func:`optim.trace`.

    Attributes:
      decay: :math:`\mu`, the momentum coefficient (float32).
      nesterov: use Nesterov momentum (static).
      accumulator_dtype: the dtype of the momentum buffer (static); ``None``: each
        parameter's.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    decay: Any = hyper_field()
    nesterov: bool = flag(False)
    accumulator_dtype: Any = dtype_option()

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


@suggest_keywords
def trace(decay: Any, nesterov: bool = False, accumulator_dtype: Any = None) -> Trace:
    r"""Momentum: a decaying sum of past updates (``optax.trace``; Polyak, 1964).

    .. math:: m_t = g_t + \mu\,m_{t-1},\qquad u_t = m_t

    or, with ``nesterov=True`` (Sutskever et al., 2013), :math:`u_t = g_t + \mu\,m_t`.

    Args:
      decay: :math:`\mu`, the momentum coefficient: a finite real number, usually in
        ``[0, 1)`` (not a schedule).
      nesterov: use Nesterov momentum. True or False.
      accumulator_dtype: the dtype of the momentum buffer (a floating or complex dtype);
        ``None``: each parameter's dtype.

    Returns:
      A ``Trace`` transformation (an :class:`optim.GradientTransformation`) whose state is a
      :class:`optim.TraceState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.trace(decay=0.9)
      >>> grads = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state)
      ...     print(updates["w"])
      [ 1. -2.]
      [ 1.9 -3.8]
    """
    return Trace(
        decay,
        nesterov=nesterov,
        accumulator_dtype=accumulator_dtype,
    )


class EmaState(NamedTuple):
    """Step count and the exponential moving average.

    Attributes:
      count: the number of updates made so far (int32 scalar), for the bias correction.
      ema: :math:`m_t`, the moving average without bias correction, a pytree with the
        structure of the params (in ``accumulator_dtype``, or each parameter's dtype).
    """

    count: jax.Array
    ema: PyTree

    moment_slots = MappingProxyType({"ema": SIGNED})


@pytree_dataclass
class Ema(Transformation):
    r"""Exponential moving average :math:`m_t = (1-\beta) g_t + \beta m_{t-1}`.

    :math:`u_t = m_t / (1 - \beta^t)` with ``debias=True``, else :math:`u_t = m_t`. Built by
    :func:`optim.ema`.

    Attributes:
      decay: :math:`\beta`, kept with its complement :math:`1 - \beta` (a ``Decay``).
      debias: divide by :math:`1 - \beta^t` (static).
      accumulator_dtype: the dtype of the average (static); ``None``: each parameter's.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    decay: Any = decay(closed=True)
    debias: bool = flag(True)
    accumulator_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> EmaState:
        return EmaState(count=zero_count(), ema=full_like(params, 0.0, self.accumulator_dtype))

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.ema)
        ema = map_arrays(lambda g, m: ema_update(g, m, self.decay), updates, state.ema)
        count = safe_increment(state.count)
        out = debias_tree(ema, self.decay, count) if self.debias else ema
        return cast_like_grads(out, updates), EmaState(count=count, ema=store_like(ema, state.ema))


@suggest_keywords
def ema(decay: Any, debias: bool = True, accumulator_dtype: Any = None) -> Ema:
    r"""Exponential moving average of past updates (``optax.ema``).

    .. math:: m_t = (1-\beta) g_t + \beta m_{t-1},\qquad u_t = m_t / (1 - \beta^t)

    (:math:`u_t = m_t` without ``debias``).

    Args:
      decay: :math:`\beta`, the decay rate: a number in ``[0, 1]`` (not a schedule).
      debias: divide by :math:`1 - \beta^t` so that early averages are not biased towards
        zero. True or False.
      accumulator_dtype: the dtype of the average (a floating or complex dtype); ``None``:
        each parameter's dtype.

    Returns:
      An ``Ema`` transformation (an :class:`optim.GradientTransformation`) whose state is an
      :class:`optim.EmaState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.ema(decay=0.9, debias=False)
      >>> grads = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state)
      ...     print(updates["w"])
      [ 0.1 -0.2]
      [ 0.19 -0.38]
    """
    return Ema(
        decay,
        debias=debias,
        accumulator_dtype=accumulator_dtype,
    )


class MultiStepsState(NamedTuple):
    """Gradient accumulation: the position within the current group of mini-steps, the number
    of inner steps taken, the inner state, the accumulated gradient and the skip function's
    record (optax's fields).

    Attributes:
      mini_step: the position within the current group of mini-steps, ``0`` to ``k - 1``
        (int32 scalar).
      gradient_step: the number of inner optimizer steps taken (int32 scalar).
      inner_opt_state: the inner optimizer's state.
      acc_grads: the gradient accumulated over the group so far (its mean or sum), a pytree
        with the structure of the params.
      skip_state: the second value ``should_skip_update_fn`` returned at the last call (its
        record, e.g. ``{"should_skip", "num_not_finite"}``); ``()`` without one.
    """

    mini_step: jax.Array
    gradient_step: jax.Array
    inner_opt_state: Any
    acc_grads: PyTree
    skip_state: Any = ()


class ShouldSkipUpdateFunction(Protocol):
    """The type of ``MultiSteps``'s ``should_skip_update_fn`` (optax's protocol).

    Called with the proposed updates, the number of inner steps taken so far and the params
    (or None); returns a boolean scalar (True: ignore this mini-step) and any pytree of
    arrays, kept in ``MultiStepsState.skip_state`` (for example what the decision was based
    on). ``skip_not_finite`` and ``skip_large_updates`` are two.
    """

    def __call__(
        self, updates: PyTree, gradient_step: jax.Array, params: PyTree | None
    ) -> tuple[jax.Array, PyTree]: ...


@suggest_keywords
def skip_not_finite(
    updates: PyTree, gradient_step: jax.Array, params: PyTree | None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A ``should_skip_update_fn`` for ``MultiSteps``: skip when any update is NaN or infinite
    (``optax.skip_not_finite``).

    Args:
      updates: the proposed updates (a pytree; only floating leaves are looked at).
      gradient_step: the number of inner steps taken (unused, part of the protocol).
      params: the params or ``None`` (unused, part of the protocol).

    Returns:
      ``(should_skip, record)``: a boolean scalar, True when some update element is NaN or
      infinite, and ``{"should_skip": should_skip, "num_not_finite": n}``, ``n`` the number
      of such elements (int32).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> skip, record = optim.skip_not_finite({"w": jnp.array([1.0, jnp.nan])}, 0, None)
      >>> bool(skip), int(record["num_not_finite"])
      (True, 1)
    """
    del gradient_step, params
    counts = [jnp.sum(~jnp.isfinite(x)) for x in jax.tree.leaves(updates) if is_trainable(x)]
    num_not_finite = sum(counts, zero_count())
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


@suggest_keywords
def skip_large_updates(
    updates: PyTree, gradient_step: jax.Array, params: PyTree | None, max_squared_norm: Any
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A ``should_skip_update_fn``: skip when the squared global norm is not below the bound
    (``optax.skip_large_updates``).

    Bind ``max_squared_norm`` with ``functools.partial`` to pass it to ``MultiSteps``. NaN
    norms are skipped too.

    Args:
      updates: the proposed updates (a pytree; only floating leaves count).
      gradient_step: the number of inner steps taken (unused, part of the protocol).
      params: the params or ``None`` (unused, part of the protocol).
      max_squared_norm: the bound on the squared global norm of ``updates`` (a number).

    Returns:
      ``(should_skip, record)``: a boolean scalar, True when the squared norm is not below
      ``max_squared_norm``, and ``{"should_skip": should_skip, "norm_squared": n}``, ``n``
      the squared norm (float32).

    Examples:
      >>> import functools
      >>> import jax.numpy as jnp
      >>> import optim
      >>> skip_fn = functools.partial(optim.skip_large_updates, max_squared_norm=10.0)
      >>> skip, record = skip_fn({"w": jnp.array([3.0, 4.0])}, 0, None)
      >>> bool(skip), float(record["norm_squared"])
      (True, 25.0)
    """
    del gradient_step, params
    squares = [
        jnp.sum(jnp.abs(upcast(x)) ** 2) for x in jax.tree.leaves(updates) if is_trainable(x)
    ]
    norm_sq = sum(squares, jnp.zeros([], jnp.float32))
    should_skip = ~(norm_sq < max_squared_norm)
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


def _never_skip(updates: PyTree, gradient_step: jax.Array, params: PyTree | None) -> Any:
    del updates, gradient_step, params
    return jnp.array(False), ()


def _every_k_schedule(value: Any, name: str) -> Any:
    """A function of the number of inner steps taken, as it is, or a static int >= 1."""
    return value if callable(value) else check_int(value, name, low=1)


@pytree_dataclass
class MultiSteps(Transformation):
    r"""Gradient accumulation: one inner step every :math:`k` calls (optax's ``MultiSteps``).

    With :math:`n` the mini-step within the current group of :math:`k` (``every_k_schedule``
    of the number of inner steps taken):

    .. math:: a_n = a_{n-1} + (g - a_{n-1}) / (n + 1)\ \text{(mean, Welford)}\quad
        \text{or}\quad a_n = a_{n-1} + g\ \text{(sum)};

    at :math:`n = k - 1` the inner optimizer is applied to :math:`a_n` and :math:`a` is
    reset; other calls return zero updates. One accumulation buffer, in
    ``accumulator_dtype`` (by default float32 for bf16/fp16 parameters and each parameter's
    own dtype otherwise). A mini-step that ``should_skip_update_fn`` rejects changes nothing
    but ``skip_state``.

    Use it as optax's class: ``opt = MultiSteps(optim.adam(1e-3), every_k_schedule=4)``, then
    ``opt.init``, ``opt.update``, ``opt.has_updated(state)``; it is a pytree itself, so
    ``opt.gradient_transformation()`` returns ``opt``, and ``opt.inner_opt`` is ``opt.opt``.
    Its state is a :class:`optim.MultiStepsState`.

    Args:
      opt: the inner optimizer (ours or optax's), applied once every ``k`` calls to the
        accumulated gradient.
      every_k_schedule: ``k``, the number of mini-steps per inner step: an int >= 1, or a
        function of the number of inner steps taken returning one.
      use_grad_mean: True: the inner optimizer gets the mean of the ``k`` gradients; False:
        their sum.
      should_skip_update_fn: ``None``, or a function ``(updates, gradient_step, params) ->
        (should_skip, record)`` (see :class:`optim.ShouldSkipUpdateFunction`, e.g.
        :func:`optim.skip_not_finite`): a mini-step it rejects is not accumulated.
      accumulator_dtype: keyword only: the dtype of the accumulated gradient; ``None``:
        float32 for bf16/fp16 parameters, each parameter's dtype otherwise (optax has no
        such argument).

    Raises:
      TypeError: ``every_k_schedule`` is neither an int nor a function, or
        ``should_skip_update_fn`` is not a function.
      ValueError: ``every_k_schedule`` is an int below 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> opt = optim.MultiSteps(optim.sgd(learning_rate=0.1), every_k_schedule=2)
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> state = opt.init(params)
      >>> for g in ([1.0, -2.0], [3.0, 0.0]):
      ...     updates, state = opt.update({"w": jnp.array(g)}, state, params)
      ...     print(updates["w"], bool(opt.has_updated(state)))
      [0. 0.] False
      [-0.2  0.1] True
    """

    opt: Any
    every_k_schedule: Any = static(check=_every_k_schedule)
    use_grad_mean: bool = static(True)
    should_skip_update_fn: Any = static(None)
    accumulator_dtype: Any = dtype_option(kw_only=True)

    def __post_init__(self) -> None:
        # Checks the user's arguments once (unflatten does not run it, see optim._pytree) and
        # wraps an optax GradientTransformation.
        if isinstance(self.opt, tuple) and callable(getattr(self.opt, "update", None)):
            object.__setattr__(self, "opt", as_transformation(self.opt, "opt"))
        if self.should_skip_update_fn is not None and not callable(self.should_skip_update_fn):
            raise TypeError(
                f"should_skip_update_fn must be a function, got {self.should_skip_update_fn!r}"
            )
        object.__setattr__(self, "use_grad_mean", bool(self.use_grad_mean))

    @property
    def inner_opt(self) -> Any:
        return self.opt

    def _k(self, gradient_step: jax.Array) -> Any:
        if callable(self.every_k_schedule):
            return self.every_k_schedule(gradient_step)
        return self.every_k_schedule

    def _should_skip(self, updates: PyTree, gradient_step: jax.Array, params: PyTree) -> Any:
        skip, skip_state = (self.should_skip_update_fn or _never_skip)(
            updates, gradient_step, params
        )
        skip = jnp.asarray(skip)
        if skip.dtype != jnp.bool_ or skip.shape != ():
            raise ValueError(
                "should_skip_update_fn must return a boolean scalar first, got an array of "
                f"dtype {skip.dtype} and shape {skip.shape}"
            )
        return skip, skip_state

    def init(self, params: PyTree) -> MultiStepsState:
        check_params(params)
        gradient_step = zero_count()
        _, skip_state = self._should_skip(zeros_like(params), gradient_step, params)
        return MultiStepsState(
            mini_step=zero_count(),
            gradient_step=gradient_step,
            inner_opt_state=self.opt.init(params),
            acc_grads=full_like(params, 0.0, self.accumulator_dtype),
            skip_state=skip_state,
        )

    def update(self, updates, state, params=None, **extra_args):
        check_updates(updates, state.acc_grads)
        k = self._k(state.gradient_step)
        skip, skip_state = self._should_skip(updates, state.gradient_step, params)
        n = state.mini_step

        def accumulate_leaf(g: jax.Array, a: jax.Array) -> jax.Array:
            if self.use_grad_mean:
                return upcast(a) + (upcast(g) - upcast(a)) / (n + 1)
            return upcast(a) + upcast(g)

        def accumulate():
            acc = map_arrays(accumulate_leaf, updates, state.acc_grads)
            emit = n == k - 1

            def step():
                new, inner_state = self.opt.update(
                    cast_like_grads(acc, updates), state.inner_opt_state, params, **extra_args
                )
                return new, cast_like(inner_state, state.inner_opt_state)

            new_updates, inner_state = jax.lax.cond(
                emit, step, lambda: (zeros_like(updates), state.inner_opt_state)
            )
            new_state = MultiStepsState(
                mini_step=(safe_increment(n) % k).astype(jnp.int32),
                gradient_step=jnp.where(
                    emit, safe_increment(state.gradient_step), state.gradient_step
                ),
                inner_opt_state=inner_state,
                acc_grads=map_arrays(
                    lambda a, old: jnp.where(emit, 0, a).astype(old.dtype), acc, state.acc_grads
                ),
                skip_state=skip_state,
            )
            return new_updates, new_state

        def skip_step():
            return zeros_like(updates), state._replace(skip_state=skip_state)

        return jax.lax.cond(skip, skip_step, accumulate)

    def has_updated(self, state: Any) -> jax.Array:
        """True right after a call that applied the inner optimizer.

        Args:
          state: the :class:`optim.MultiStepsState` the last ``update`` returned.

        Returns:
          A boolean scalar array.
        """
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> MultiSteps:
        """This object (it has ``init`` and ``update`` and is a pytree), as optax's method."""
        return self


class ApplyEvery(NamedTuple):
    """The position within the current group of ``k`` steps and the sum of its updates
    (optax's state, named ``ApplyEvery`` there too).

    Attributes:
      count: the position within the current group of ``k`` steps, ``0`` to ``k - 1``
        (int32 scalar).
      grad_acc: the sum of the group's updates so far, a pytree with the structure of the
        params.
    """

    count: jax.Array
    grad_acc: PyTree


@pytree_dataclass
class ApplyEveryK(Transformation):
    r"""Sum the updates of ``k`` steps and emit the sum at the last of them:

    .. math:: a_n = g_n + [n \bmod k \ne 0]\, a_{n-1},\qquad
        u_n = [n \bmod k = k - 1]\, a_n \quad (n = 0, 1, \dots \text{ earlier calls}),

    zero updates at the other steps. Transformations before it in a chain still update their
    state at every step (``MultiSteps`` skips the inner optimizer instead). The accumulator
    is float32 for bf16/fp16 parameters (optax keeps their dtype); a new group starts from
    0 where optax multiplies the old sum by 0 (the same, unless it held an inf or NaN).
    Built by :func:`optim.apply_every`.

    Attributes:
      k: the number of steps whose updates are summed (static, >= 1).
    """

    k: int = int_option(1, low=1)

    def init(self, params: PyTree) -> ApplyEvery:
        return ApplyEvery(count=zero_count(), grad_acc=full_like(params, 0.0))

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.grad_acc)
        position = state.count % self.k
        continuing = position != 0
        grad_acc = map_arrays(
            lambda g, a: jnp.where(continuing, upcast(a), 0) + upcast(g), updates, state.grad_acc
        )
        emit = position == self.k - 1
        out = map_arrays(lambda a: jnp.where(emit, a, 0), grad_acc)
        new_state = ApplyEvery(
            count=(safe_increment(state.count) % self.k).astype(jnp.int32),
            grad_acc=store_like(grad_acc, state.grad_acc),
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def apply_every(k: int = 1) -> ApplyEveryK:
    r"""Accumulate updates and apply their sum every ``k`` steps (``optax.apply_every``).

    .. math:: a_n = g_n + [n \bmod k \ne 0]\, a_{n-1},\qquad
        u_n = [n \bmod k = k - 1]\, a_n,

    :math:`n = 0, 1, \dots` the number of earlier calls: zero updates at the other steps.
    Transformations before it in a chain still update their state at every step
    (:class:`optim.MultiSteps` skips the inner optimizer instead). The accumulator is float32
    for bf16/fp16 parameters, where optax keeps their dtype.

    Args:
      k: the number of steps whose updates are summed, an int >= 1.

    Returns:
      An ``ApplyEveryK`` transformation (an :class:`optim.GradientTransformation`) whose
      state is an :class:`optim.ApplyEvery`.

    Raises:
      TypeError: ``k`` is not an int.
      ValueError: ``k`` is below 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.apply_every(k=2)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> for g in ([1.0, -2.0], [3.0, 0.0]):
      ...     updates, state = tx.update({"w": jnp.array(g)}, state)
      ...     print(updates["w"])
      [0. 0.]
      [ 4. -2.]
    """
    return ApplyEveryK(k)
