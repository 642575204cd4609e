"""Averaging aggregators: the mean over the per-element axis, and a running mean accumulated
over microbatches."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import check_int
from optim._pytree import pytree_dataclass, static
from optim._tree import PyTree
from optim.base import EmptyState, Transformation, chain, identity
from optim.experimental.aggregating._aggregator import Aggregator, MaybeAxis


def check_axis(per_elt_axis: Any, name: str = "per_elt_axis") -> int | tuple[int, ...]:
    """An int, or a sequence of ints as a tuple; ``TypeError`` naming ``name`` otherwise."""
    if isinstance(per_elt_axis, numbers.Integral) and not isinstance(per_elt_axis, bool):
        return int(per_elt_axis)
    if isinstance(per_elt_axis, Sequence) and all(
        isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in per_elt_axis
    ):
        return tuple(int(a) for a in per_elt_axis)
    raise TypeError(f"{name} must be an int or a sequence of ints, got {per_elt_axis!r}")


def check_steps(accumulation_steps: Any) -> int:
    """``accumulation_steps`` as an int of at least 1."""
    return check_int(accumulation_steps, "accumulation_steps", low=1)


@pytree_dataclass
class AveragePerElementUpdates(Transformation):
    r"""The mean of per-element updates over their element axis: :math:`u = \frac1B \sum_b
    g_b`."""

    per_elt_axis: int | tuple[int, ...] = static(0)

    def init(self, params: PyTree) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        return jax.tree.map(lambda x: jnp.mean(x, axis=self.per_elt_axis), updates), state


Aggregator.register(AveragePerElementUpdates)


def average_per_element_updates(per_elt_axis: int | Sequence[int] = 0) -> Aggregator:
    """Average per-element updates.

    Args:
      per_elt_axis: The axis to average over.

    Returns:
      An Aggregator that averages per-element updates.

    Raises:
      TypeError: ``per_elt_axis`` is not an int or a sequence of ints.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.experimental import aggregating
      >>> agg = aggregating.average_per_element_updates()
      >>> per_example = {"w": jnp.array([[1.0, 2.0], [3.0, 6.0]])}
      >>> agg.update(per_example, agg.init(None))[0]
      {'w': Array([2., 4.], dtype=float32)}
    """
    return AveragePerElementUpdates(check_axis(per_elt_axis))


class AccumulateAvgUpdatesState(NamedTuple):
    """State for the average gradient accumulator.

    Attributes:
      micro_step: int scalar, the microbatches averaged so far in the current accumulation
        (0 after the last one).
      ready: bool scalar, whether the last call completed an accumulation (returned the
        mean).
      avg_grad: the running mean of the current accumulation, in the updates' structure.
    """

    micro_step: jax.Array  # int
    ready: jax.Array  # bool
    avg_grad: Any


@pytree_dataclass
class AccumulateAvgUpdates(Transformation):
    r"""A running mean over ``accumulation_steps`` calls,
    :math:`a_k = a_{k-1} + (g_k - a_{k-1}) / k`, returned (and reset) on the last of them;
    zeros on the others."""

    accumulation_steps: int = static()

    def init(self, params: PyTree) -> AccumulateAvgUpdatesState:
        return AccumulateAvgUpdatesState(
            micro_step=jnp.asarray(0),
            ready=jnp.asarray(False),
            avg_grad=jax.tree.map(jnp.zeros_like, params),
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        micro_step = state.micro_step + 1
        average = jax.tree.map(lambda u, a: a + (u - a) / micro_step, updates, state.avg_grad)
        zeros = jax.tree.map(jnp.zeros_like, average)
        done = (
            average,
            AccumulateAvgUpdatesState(jnp.asarray(0), jnp.asarray(True), zeros),
        )
        pending = (zeros, AccumulateAvgUpdatesState(micro_step, jnp.asarray(False), average))
        complete = micro_step == self.accumulation_steps
        return jax.tree.map(lambda d, p: jnp.where(complete, d, p), done, pending)


def accumulate_avg_updates(accumulation_steps: int) -> Any:
    """Accumulates average gradients for ``accumulation_steps`` microbatches.

    Each call adds one microbatch's gradient to a running mean; the call that completes
    ``accumulation_steps`` of them returns the mean (and starts a new one), the others
    return zeros. Best used with :func:`process`, whose postprocessor (the optimizer) then
    steps once per ``accumulation_steps`` calls. With ``accumulation_steps=1`` this is
    ``identity()``.

    Args:
      accumulation_steps: The number of microbatches to accumulate over.

    Returns:
      A gradient transformation that accumulates average gradients for
      ``accumulation_steps`` microbatches.

    Raises:
      TypeError: ``accumulation_steps`` is not an int.
      ValueError: ``accumulation_steps`` is less than 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.experimental import aggregating
      >>> acc = aggregating.accumulate_avg_updates(2)
      >>> state = acc.init(jnp.zeros(2))
      >>> u, state = acc.update(jnp.array([1.0, 2.0]), state)
      >>> print(u, state.ready)
      [0. 0.] False
      >>> u, state = acc.update(jnp.array([3.0, 4.0]), state)
      >>> print(u, state.ready)
      [2. 3.] True
    """
    steps = check_steps(accumulation_steps)
    if steps == 1:  # nothing to accumulate: no state to keep
        return identity()
    return AccumulateAvgUpdates(steps)


def average_incrementally_updates(per_elt_axis: MaybeAxis, accumulation_steps: int) -> Any:
    """Average and accumulate per-element updates.

    The mean over ``per_elt_axis`` (:func:`average_per_element_updates`) followed by a
    running mean over ``accumulation_steps`` microbatches (:func:`accumulate_avg_updates`).

    Args:
      per_elt_axis: The axis to average over, or None if no averaging is desired.
      accumulation_steps: The number of microbatches to accumulate over.

    Returns:
      A gradient transformation (``per_elt_axis=None``) or an Aggregator that averages
      and/or accumulates per-element updates.

    Raises:
      TypeError: ``per_elt_axis`` is not None, an int or a sequence of ints, or
        ``accumulation_steps`` is not an int.
      ValueError: ``accumulation_steps`` is less than 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.experimental import aggregating
      >>> agg = aggregating.average_incrementally_updates(0, accumulation_steps=2)
      >>> state = agg.init(jnp.zeros(2))
      >>> _, state = agg.update(jnp.array([[1.0, 2.0], [3.0, 4.0]]), state)
      >>> print(agg.update(jnp.array([[5.0, 6.0], [7.0, 8.0]]), state)[0])
      [4. 5.]
    """
    if per_elt_axis is None:
        return accumulate_avg_updates(accumulation_steps)
    combined = chain(
        average_per_element_updates(per_elt_axis), accumulate_avg_updates(accumulation_steps)
    )
    return Aggregator(combined.init, combined.update)
