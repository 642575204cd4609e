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
    r"""Multiply by a constant: :math:`u_t = s\,g_t`."""

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
    """Scale updates by a constant ``step_size`` (``optax.scale``)."""
    return Scale(step_size)


class ScaleByScheduleState(NamedTuple):
    """The number of updates made so far, the schedule's argument."""

    count: jax.Array


@pytree_dataclass
class ScaleBySchedule(Transformation):
    r"""Multiply by a schedule of the step count: :math:`u_t = s(t-1)\,g_t`."""

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
    """Scale updates by ``step_size_fn(count)`` (``optax.scale_by_schedule``)."""
    if not is_schedule(step_size_fn):
        raise TypeError(f"step_size_fn must be a schedule (callable), got {step_size_fn!r}")
    return ScaleBySchedule(step_size_fn)


@pytree_dataclass
class ScaleByLearningRate(Transformation):
    r"""Descent step: :math:`u_t = -\eta_t\,g_t` (or :math:`+\eta_t g_t` with ``flip_sign=False``).

    :math:`\eta_t` is a constant or a schedule evaluated at the number of previous updates;
    only a schedule keeps a count in the state.
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
    """Scale by minus the learning rate, a non-negative number or a schedule.

    ``learning_rate=None`` means no scaling (``identity``), as in optax.
    """
    if learning_rate is None:
        from optim.base import identity

        check_flag(flip_sign, "flip_sign")  # not kept by identity(), checked all the same
        return identity()
    return ScaleByLearningRate(learning_rate, flip_sign=flip_sign)


def learning_rate_hyper(learning_rate: Any) -> Any:
    """Validate a learning rate: a finite number >= 0, or a schedule."""
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

    Raises:
      ValueError: ``scale`` is not finite or not a scalar.
      TypeError: ``scale`` is not a real number.
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
