"""Conditional transformations: skip non-finite steps (``apply_if_finite``), or transform or
mask the updates only at the steps a function of the step count selects.

A wrapper is a pytree whose children are the wrapped transformations (so their float
hyperparameters stay leaves) and its own float hyperparameters; masks, step counts, flags and
functions are static metadata. Names, arguments, defaults and state fields follow optax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from optim._hyper import flag, int_option
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    safe_increment,
    zero_count,
)
from optim.base import Transformation, as_transformation
from optim.transforms._common import all_finite, cast_like, zeros_like


class ApplyIfFiniteState(NamedTuple):
    """Counters of rejected steps and the wrapped transformation's state (optax's fields).

    Attributes:
      notfinite_count: the number of consecutive steps with a NaN or an infinity, reset to 0
        by a finite one (int32 scalar).
      last_finite: whether the last step's updates were finite (boolean scalar; True after
        ``init``).
      total_notfinite: the number of steps with a NaN or an infinity since ``init`` (int32
        scalar).
      inner_state: the wrapped transformation's state, unchanged by rejected steps.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: Any


@pytree_dataclass
class ApplyIfFinite(Transformation):
    r"""Skip steps whose updates hold a NaN or an infinity.

    With :math:`c_t` the number of consecutive non-finite steps up to step :math:`t`:

    .. math:: (u_t, s_t) = \begin{cases} T(g_t, s_{t-1}) & g_t \text{ finite or }
        c_t > \text{max\_consecutive\_errors} \\ (0, s_{t-1}) & \text{otherwise.}\end{cases}

    A rejected step leaves the inner state bit for bit as it was (its step count and bias
    correction included) and returns zero updates. Built by :func:`optim.apply_if_finite`.

    Attributes:
      inner: the wrapped transformation.
      max_consecutive_errors: the number of consecutive non-finite steps rejected before
        the next one is applied (static int >= 0).
    """

    inner: Any
    max_consecutive_errors: int = int_option(low=0)

    def init(self, params: PyTree) -> ApplyIfFiniteState:
        zero = zero_count()
        return ApplyIfFiniteState(zero, jnp.array(True), zero, self.inner.init(params))

    def update(self, updates, state, params=None, **extra_args):
        finite = all_finite(updates)
        notfinite_count = jnp.where(finite, 0, safe_increment(state.notfinite_count))

        def apply():
            new, inner_state = self.inner.update(updates, state.inner_state, params, **extra_args)
            return new, cast_like(inner_state, state.inner_state)

        new_updates, inner_state = jax.lax.cond(
            finite | (notfinite_count > self.max_consecutive_errors),
            apply,
            lambda: (zeros_like(updates), state.inner_state),
        )
        total = jnp.where(finite, state.total_notfinite, safe_increment(state.total_notfinite))
        return new_updates, ApplyIfFiniteState(notfinite_count, finite, total, inner_state)


@suggest_keywords
def apply_if_finite(inner: Any, max_consecutive_errors: int) -> ApplyIfFinite:
    r"""Ignore updates with NaNs or infinities, up to ``max_consecutive_errors`` in a row
    (``optax.apply_if_finite``).

    With :math:`c_t` the number of consecutive non-finite steps up to step :math:`t`:

    .. math:: (u_t, s_t) = \begin{cases} T(g_t, s_{t-1}) & g_t \text{ finite or }
        c_t > \text{max\_consecutive\_errors} \\ (0, s_{t-1}) & \text{otherwise.}\end{cases}

    A rejected step returns zero updates and leaves the inner state bit for bit as it was
    (its step count and bias correction included). After ``max_consecutive_errors``
    consecutive rejected steps the next non-finite update is applied, as in optax.

    Args:
      inner: the transformation to protect (ours or optax's), usually a whole optimizer.
      max_consecutive_errors: the number of consecutive non-finite steps to reject before
        applying one: an int >= 0.

    Returns:
      An ``ApplyIfFinite`` transformation (an :class:`optim.GradientTransformation`) whose
      state is an :class:`optim.ApplyIfFiniteState`.

    Raises:
      TypeError: ``inner`` is not a transformation, or ``max_consecutive_errors`` is not an
        int.
      ValueError: ``max_consecutive_errors`` is negative.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.apply_if_finite(optim.sgd(0.1), max_consecutive_errors=3)
      >>> state = tx.init({"w": jnp.ones(2)})
      >>> updates, state = tx.update({"w": jnp.array([1.0, jnp.nan])}, state)
      >>> int(state.total_notfinite), updates["w"].tolist()
      (1, [0.0, 0.0])
      >>> updates, state = tx.update({"w": jnp.array([1.0, 2.0])}, state)
      >>> bool(state.last_finite), updates["w"].tolist()
      (True, [-0.10000000149011612, -0.20000000298023224])
    """
    return ApplyIfFinite(
        as_transformation(inner, "inner"),
        max_consecutive_errors,
    )


class ConditionallyTransformState(NamedTuple):
    """The inner state and the number of calls to ``update`` so far (optax's fields).

    Attributes:
      inner_state: the wrapped transformation's state, unchanged at the steps it was not
        applied.
      step: the number of calls to ``update`` so far (int32 scalar), the argument of
        ``should_transform_fn``.
    """

    inner_state: Any
    step: jax.Array


class ConditionallyMaskState(NamedTuple):
    """The number of calls to ``update`` so far and the inner state (optax's fields).

    Attributes:
      step: the number of calls to ``update`` so far (int32 scalar), the argument of
        ``should_transform_fn``.
      inner_state: the wrapped transformation's state, unchanged at the steps it was not
        applied.
    """

    step: jax.Array
    inner_state: Any


class ConditionFn(Protocol):
    """The type of ``should_transform_fn`` in ``conditionally_transform`` and
    ``conditionally_mask`` (optax's protocol).

    Called with the number of earlier calls to ``update`` (an int32 scalar) and, with
    ``forward_extra_args``, the extra keyword arguments of ``update``; returns a boolean
    scalar: whether to apply the inner transformation at this step.
    """

    def __call__(self, step: jax.Array, **extra_args: Any) -> jax.Array: ...


def _condition(fn: Callable[..., Any], step: jax.Array, extra_args: dict[str, Any]) -> jax.Array:
    """``fn(step, **extra_args)`` checked to be a boolean scalar."""
    result = jnp.asarray(fn(step, **extra_args))
    if result.shape != () or result.dtype != jnp.bool_:
        raise ValueError(
            "should_transform_fn must return a boolean scalar (whether to apply the inner "
            f"transformation at this step), got an array of shape {result.shape} and dtype "
            f"{result.dtype}"
        )
    return result


@pytree_dataclass
class ConditionallyApply(Transformation):
    r"""Apply ``inner`` at the steps where ``should_transform_fn(step)`` is True:

    .. math:: (u_t, s_t) = \begin{cases} T(g_t, s_{t-1}) & c(t) \\ (r(g_t), s_{t-1}) &
        \text{otherwise,} \end{cases}

    :math:`t = 0, 1, \dots` the number of earlier calls and :math:`r(g) = g`
    (``conditionally_transform``) or :math:`r(g) = 0` (``conditionally_mask``). A step that
    is not transformed leaves the inner state bit for bit as it was. Built by
    :func:`optim.conditionally_transform` and :func:`optim.conditionally_mask`.

    Attributes:
      inner: the wrapped transformation.
      should_transform_fn: :math:`c`, the function of the step count (static).
      forward_extra_args: pass ``update``'s extra keyword arguments to
        ``should_transform_fn`` (static).
      zero_rejected: return zero updates at the other steps (``conditionally_mask``) rather
        than the updates unchanged (static).
    """

    inner: Any
    should_transform_fn: Callable[..., Any] = static()
    forward_extra_args: bool = flag(False)
    zero_rejected: bool = flag(False)

    def init(self, params: PyTree) -> ConditionallyTransformState | ConditionallyMaskState:
        return self._state(self.inner.init(params), zero_count())

    def hyperparameter_children(self, state: Any) -> list[tuple[None, Any, Any]]:
        """For ``optim.hyperparams``: the inner transformation and its state."""
        return [(None, self.inner, getattr(state, "inner_state", None))]

    def _state(self, inner_state: Any, step: jax.Array) -> Any:
        if self.zero_rejected:
            return ConditionallyMaskState(step=step, inner_state=inner_state)
        return ConditionallyTransformState(inner_state=inner_state, step=step)

    def update(self, updates, state, params=None, **extra_args):
        condition = _condition(
            self.should_transform_fn, state.step, extra_args if self.forward_extra_args else {}
        )

        def transform() -> tuple[PyTree, Any]:
            new, inner_state = self.inner.update(updates, state.inner_state, params, **extra_args)
            return cast_like(new, updates), cast_like(inner_state, state.inner_state)

        def reject() -> tuple[PyTree, Any]:
            return (zeros_like(updates) if self.zero_rejected else updates), state.inner_state

        new_updates, inner_state = jax.lax.cond(condition, transform, reject)
        return new_updates, self._state(inner_state, safe_increment(state.step))


def _conditionally(
    inner: Any, should_transform_fn: Any, forward_extra_args: Any, zero_rejected: bool
) -> ConditionallyApply:
    if not callable(should_transform_fn):
        raise TypeError(
            "should_transform_fn must be a function of the step count returning a boolean "
            f"scalar, got {type(should_transform_fn).__name__} {should_transform_fn!r}"
        )
    return ConditionallyApply(
        as_transformation(inner, "inner"),
        should_transform_fn,
        forward_extra_args,
        zero_rejected,
    )


@suggest_keywords
def conditionally_transform(
    inner: Any, should_transform_fn: Callable[..., Any], forward_extra_args: bool = False
) -> ConditionallyApply:
    """Apply ``inner`` only at the steps where ``should_transform_fn(step)`` is True and pass
    the updates through unchanged at the others (``optax.conditionally_transform``).

    A step that is not transformed leaves the inner state bit for bit as it was. The
    function is static, compared by identity: pass the same object to reuse the compiled
    program.

    Args:
      inner: the transformation to apply at the selected steps (ours or optax's).
      should_transform_fn: a function ``(step, **extra_args) -> bool scalar`` (the
        ``ConditionFn`` protocol); ``step`` counts the earlier calls to ``update`` (int32,
        from 0).
      forward_extra_args: also pass the extra keyword arguments of ``update`` to
        ``should_transform_fn``. True or False.

    Returns:
      A ``ConditionallyApply`` transformation (an :class:`optim.GradientTransformation`)
      whose state is an :class:`optim.ConditionallyTransformState`.

    Raises:
      TypeError: ``should_transform_fn`` is not callable, or ``inner`` is not a
        transformation.
      ValueError: (in ``update``) ``should_transform_fn`` does not return a boolean scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.conditionally_transform(optim.scale(10.0), lambda step: step % 2 == 1)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> for _ in range(2):
      ...     updates, state = tx.update({"w": jnp.array([1.0, -2.0])}, state)
      ...     print(updates["w"])
      [ 1. -2.]
      [ 10. -20.]
    """
    return _conditionally(inner, should_transform_fn, forward_extra_args, zero_rejected=False)


@suggest_keywords
def conditionally_mask(
    inner: Any, should_transform_fn: Callable[..., Any], forward_extra_args: bool = False
) -> ConditionallyApply:
    """Apply ``inner`` only at the steps where ``should_transform_fn(step)`` is True and
    return zero updates at the others (``optax.conditionally_mask``).

    A step that is not transformed leaves the inner state bit for bit as it was. The
    function is static, compared by identity: pass the same object to reuse the compiled
    program.

    Args:
      inner: the transformation to apply at the selected steps (ours or optax's).
      should_transform_fn: a function ``(step, **extra_args) -> bool scalar`` (the
        ``ConditionFn`` protocol); ``step`` counts the earlier calls to ``update`` (int32,
        from 0).
      forward_extra_args: also pass the extra keyword arguments of ``update`` to
        ``should_transform_fn``. True or False.

    Returns:
      A ``ConditionallyApply`` transformation (an :class:`optim.GradientTransformation`)
      whose state is an :class:`optim.ConditionallyMaskState`.

    Raises:
      TypeError: ``should_transform_fn`` is not callable, or ``inner`` is not a
        transformation.
      ValueError: (in ``update``) ``should_transform_fn`` does not return a boolean scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.conditionally_mask(optim.scale(10.0), lambda step: step >= 1)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> for _ in range(2):
      ...     updates, state = tx.update({"w": jnp.array([1.0, -2.0])}, state)
      ...     print(updates["w"])
      [0. 0.]
      [ 10. -20.]
    """
    return _conditionally(inner, should_transform_fn, forward_extra_args, zero_rejected=True)
