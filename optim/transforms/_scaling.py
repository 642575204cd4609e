r"""Scaling: multiply the updates by a constant, a schedule or the learning rate, and scale a
gradient in the backward pass only (optax's names, arguments and states).

Notation in the docstrings: :math:`g_t` is the incoming update (the gradient, or the output of
the previous transformation in a chain), :math:`u_t` the outgoing one, :math:`\theta_t` the
parameters, :math:`t \ge 1` the step count. Arithmetic runs in at least float32 whatever the
parameter dtype; state slots keep the dtype they were created with (float32 for bf16/fp16
parameters unless a ``*_dtype`` argument says otherwise); updates leave in the incoming
gradient's dtype.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import check_flag, flag, hyper, hyper_field, is_schedule, nonnegative, value_at
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_float_updates,
    is_trainable,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim.base import EmptyState, Transformation

# The state of scale: empty, as in optax (where it is an alias too).
ScaleState = EmptyState


@pytree_dataclass
class Scale(Transformation):
    r"""Multiply by a constant: :math:`u_t = s\,g_t`. Built by :func:`optim.scale`.

    Attributes:
      step_size: :math:`s`, the factor (float32).
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    step_size: Any = hyper_field()

    def init(self, params: PyTree) -> ScaleState:
        del params
        return ScaleState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        return map_arrays(lambda g: (self.step_size * upcast(g)).astype(g.dtype), updates), state


@suggest_keywords
def scale(step_size: Any) -> Scale:
    r"""Scale updates by a constant ``step_size`` (``optax.scale``): :math:`u_t = s\,g_t`.

    Args:
      step_size: :math:`s`, a finite real number (negative flips the updates' sign; not a
        schedule: see :func:`optim.scale_by_schedule`).

    Returns:
      A ``Scale`` transformation (an :class:`optim.GradientTransformation`) with an empty
      state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale(0.5)
      >>> updates, state = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init({"w": jnp.zeros(2)}))
      >>> print(updates["w"])
      [ 0.5 -1. ]
    """
    return Scale(step_size)


class ScaleByScheduleState(NamedTuple):
    """The number of updates made so far, the schedule's argument.

    Attributes:
      count: the number of updates made so far (int32 scalar; it stops at the largest
        int32 rather than wrapping).
    """

    count: jax.Array


@pytree_dataclass
class ScaleBySchedule(Transformation):
    r"""Multiply by a schedule of the step count: :math:`u_t = s(t-1)\,g_t`. Built by
    :func:`optim.scale_by_schedule`.

    Attributes:
      step_size_fn: :math:`s`, the schedule (a pytree schedule, or a function wrapped in
        ``FunctionSchedule``).
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    step_size_fn: Any = hyper_field(schedule=True)

    def init(self, params: PyTree) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(count=zero_count())

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        step_size = value_at(self.step_size_fn, state.count)
        updates = map_arrays(lambda g: (step_size * upcast(g)).astype(g.dtype), updates)
        return updates, ScaleByScheduleState(count=safe_increment(state.count))


@suggest_keywords
def scale_by_schedule(step_size_fn: Any) -> ScaleBySchedule:
    r"""Scale updates by ``step_size_fn(count)`` (``optax.scale_by_schedule``):
    :math:`u_t = s(t-1)\,g_t`.

    Args:
      step_size_fn: :math:`s`, a schedule: a function (or a schedule of
        :mod:`optim.schedules`) of the number of updates made so far, ``0`` at the first
        step, returning a scalar.

    Returns:
      A ``ScaleBySchedule`` transformation (an :class:`optim.GradientTransformation`) whose
      state is a :class:`optim.ScaleByScheduleState`.

    Raises:
      TypeError: ``step_size_fn`` is not callable.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_schedule(lambda count: 1.0 / (count + 1))
      >>> grads = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state)
      ...     print(updates["w"])
      [ 1. -2.]
      [ 0.5 -1. ]
    """
    if not is_schedule(step_size_fn):
        raise TypeError(f"step_size_fn must be a schedule (callable), got {step_size_fn!r}")
    return ScaleBySchedule(step_size_fn)


@pytree_dataclass
class ScaleByLearningRate(Transformation):
    r"""Descent step: :math:`u_t = -\eta_t\,g_t` (or :math:`+\eta_t g_t` with ``flip_sign=False``).

    :math:`\eta_t` is a constant or a schedule evaluated at the number of previous updates;
    only a schedule keeps a count in the state. Built by :func:`optim.scale_by_learning_rate`.

    Attributes:
      learning_rate: :math:`\eta`, a float32 scalar >= 0 or a schedule.
      flip_sign: multiply by :math:`-\eta` (True, descent) or by :math:`\eta` (static).
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    learning_rate: Any = nonnegative(schedule=True)
    flip_sign: bool = flag(True)

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


@suggest_keywords
def scale_by_learning_rate(learning_rate: Any = None, *, flip_sign: bool = True) -> Any:
    r"""Scale by minus the learning rate (``optax.scale_by_learning_rate``):
    :math:`u_t = -\eta_t\,g_t`.

    The last transformation of most optimizers: it turns a descent direction into the step
    :func:`optim.apply_updates` adds to the parameters.

    Args:
      learning_rate: :math:`\eta`, a finite number >= 0, or a schedule (a function of the
        number of updates made so far, ``0`` at the first step). ``None`` means no scaling:
        :func:`optim.identity` is returned, as in optax.
      flip_sign: True: multiply by :math:`-\eta` (gradient descent); False: by :math:`\eta`
        (the updates are already descent directions). True or False.

    Returns:
      A ``ScaleByLearningRate`` transformation (an :class:`optim.GradientTransformation`; the
      ``Identity`` of :func:`optim.identity` for ``None``); its state is an
      :class:`optim.ScaleByScheduleState` for a schedule, empty for a number.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_learning_rate(0.1)
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> updates, state = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init(params))
      >>> print(optim.apply_updates(params, updates)["w"])
      [0.9 2.2]
    """
    if learning_rate is None:
        from optim.base import identity

        check_flag(flip_sign, "flip_sign")  # not kept by identity(), checked all the same
        return identity()
    return ScaleByLearningRate(learning_rate, flip_sign=flip_sign)


def learning_rate_hyper(learning_rate: Any) -> Any:
    """Validate a learning rate: a finite number >= 0, or a schedule.

    Args:
      learning_rate: the value to check.

    Returns:
      A float32 scalar, or the schedule (a plain function wrapped in ``FunctionSchedule``).

    Raises:
      TypeError, ValueError: ``learning_rate`` is not a number or a schedule, or is
        negative or not finite; the error names ``learning_rate``.

    Examples:
      >>> from optim.transforms._scaling import learning_rate_hyper
      >>> print(learning_rate_hyper(0.1))
      0.1
    """
    return hyper(learning_rate, "learning_rate", low=0.0)


@jax.custom_vjp
def _scaled_backward(x: jax.Array, scale: jax.Array) -> jax.Array:
    del scale
    return x


def _scaled_backward_fwd(x: jax.Array, scale: jax.Array) -> tuple[jax.Array, jax.Array]:
    return x, scale


def _scaled_backward_bwd(scale: jax.Array, cotangent: jax.Array) -> tuple[jax.Array, jax.Array]:
    scaled = (upcast(cotangent) * scale).astype(cotangent.dtype)
    return scaled, jnp.zeros_like(scale)  # the scale itself gets no gradient, as in optax


_scaled_backward.defvjp(_scaled_backward_fwd, _scaled_backward_bwd)


@suggest_keywords
def scale_gradient(inputs: PyTree, scale: Any) -> PyTree:
    r"""``inputs`` unchanged in the forward pass; their gradient multiplied by ``scale`` in
    the backward pass: :math:`f(x) = x`, :math:`\bar x = s\,\bar f` (``optax.scale_gradient``).

    Floating leaves of ``inputs`` are scaled; other leaves pass through. ``scale`` may be
    traced (``jit``, ``vmap`` over it); a concrete 1 returns ``inputs`` and a concrete 0
    stops the gradient (``jax.lax.stop_gradient``), as in optax. The cotangent is multiplied
    in float32 or wider and returned in the input's dtype. ``scale`` gets no gradient.

    Args:
      inputs: a pytree (of arrays, usually activations or parameters inside a loss).
      scale: :math:`s`, the factor of the gradient: a finite real scalar (not a schedule).

    Returns:
      ``inputs``, with the same structure and values.

    Raises:
      ValueError: ``scale`` is not finite or not a scalar.
      TypeError: ``scale`` is not a real number.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optim
      >>> loss = lambda x: jnp.sum(optim.scale_gradient(x, 0.5) ** 2)
      >>> print(jax.grad(loss)(jnp.array([1.0, 2.0])))  # half of 2x
      [1. 2.]
    """
    scale = hyper(scale, "scale", schedule=False)
    concrete = not isinstance(scale, jax.core.Tracer)
    if concrete and scale == 1.0:
        return inputs
    stop = concrete and scale == 0.0

    def scaled(x: Any) -> Any:
        if not is_trainable(x):
            return x
        return jax.lax.stop_gradient(x) if stop else _scaled_backward(x, scale)

    return jax.tree.map(scaled, inputs)
