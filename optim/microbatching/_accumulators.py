"""How per-microbatch results are combined: ``Accumulator`` programs and the built-in
``AccumulationType`` s (sum, mean, running mean, concatenation)."""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from optim._tree import check_prefix


@dataclasses.dataclass(frozen=True)
class Accumulator:
    """A class for accumulating values in a microbatched function.

    Given the evaluations ``[x_0, ..., x_{n-1}]`` of a function on ``n`` microbatches, an
    accumulator is the program

    .. code-block:: python

      carry = init(jax.typeof(x_0))
      for i in range(n):
          carry = update(carry, x_i, i)
      return finalize(carry)

    Attributes:
      init: A function ``f(shape_dtype_struct)`` that initializes the microbatch state from
        the shape/dtype of a single microbatch evaluation.
      update: A function ``f(carry, value, index)`` that updates the microbatch state with
        the function evaluation of the current microbatch.
      finalize: A function ``f(carry)`` that returns the final result from the final state.
      aggregate: A function ``f(per_microbatch_value)`` that aggregates per-example values
        (stacked along axis 0) into a single value. Used by ``micro_vmap``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import microbatching
      >>> maximum = microbatching.Accumulator(
      ...     init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
      ...     update=lambda carry, value, i: jnp.maximum(carry, value),
      ...     finalize=lambda carry: carry,
      ...     aggregate=lambda values: jnp.max(values, axis=0),
      ... )
      >>> f = microbatching.microbatch(jnp.max, 0, 2, accumulator=maximum)
      >>> f(jnp.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0]))
      Array(9., dtype=float32)
    """

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], Any]
    finalize: Callable[[Any], Any]
    aggregate: Callable[[Any], Any]


class AccumulationType(enum.Enum):
    """The type of accumulation to perform."""

    MEAN = enum.auto()
    """Average the microbatch outputs."""
    SUM = enum.auto()
    """Sum the microbatch outputs."""
    RUNNING_MEAN = enum.auto()
    """Average the microbatch outputs over ``num_real_microbatches``."""
    CONCAT = enum.auto()
    """Concatenate the microbatch outputs along axis 0."""


def _per_leaf(accumulator: Accumulator) -> Accumulator:
    """An accumulator of arrays applied to every leaf of a tree of them."""
    return Accumulator(
        init=lambda value: jax.tree.map(accumulator.init, value),
        update=lambda carry, value, i: jax.tree.map(
            lambda c, v: accumulator.update(c, v, i), carry, value
        ),
        finalize=lambda carry: jax.tree.map(accumulator.finalize, carry),
        aggregate=lambda values: jax.tree.map(accumulator.aggregate, values),
    )


def _floating_zeros(value: Any) -> jax.Array:
    """Zeros like ``value``, which must be floating: an average of integers is not one."""
    if not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(
            "the MEAN and RUNNING_MEAN accumulators average floating-point values; "
            f"the function returned an array of dtype {value.dtype} (use SUM, or cast it)"
        )
    return jnp.zeros_like(value)


def _check_count(num_microbatches: Any) -> None:
    if num_microbatches <= 0:
        raise ValueError(f"num_microbatches must be positive, got {num_microbatches}")


def _sum() -> Accumulator:
    return _per_leaf(
        Accumulator(
            init=jnp.zeros_like,
            update=lambda carry, value, _: carry + value,
            finalize=lambda carry: carry,
            aggregate=functools.partial(jnp.sum, axis=0),
        )
    )


def _mean(num_microbatches: int) -> Accumulator:
    """The sum, divided once by the number of microbatches at the end."""
    _check_count(num_microbatches)
    return _per_leaf(
        Accumulator(
            init=_floating_zeros,
            update=lambda carry, value, _: carry + value,
            finalize=lambda carry: carry / num_microbatches,
            aggregate=functools.partial(jnp.mean, axis=0),
        )
    )


def _running_mean() -> Accumulator:
    r""":math:`m_{i+1} = m_i \frac{i}{i+1} + x_i (1 - \frac{i}{i+1})`: the mean of however many
    microbatches have run, so it is right when fewer than all of them do."""

    def update(carry: jax.Array, value: jax.Array, index: Any) -> jax.Array:
        kept = index / (index + 1)
        return carry * kept + value * (1 - kept)

    return _per_leaf(
        Accumulator(
            init=_floating_zeros,
            update=update,
            finalize=lambda carry: carry,
            aggregate=functools.partial(jnp.mean, axis=0),
        )
    )


def _out_sharding(carry: jax.Array) -> dict[str, Any]:
    """The sharding of ``carry`` merged along its first two axes, when the mesh is explicit
    (the microbatch axis is not sharded: it is dropped from the spec)."""
    sharding = jax.typeof(carry).sharding
    if not sharding.mesh.are_all_axes_explicit:
        return {}
    spec = jax.sharding.PartitionSpec(*sharding.spec[1:])
    return {"out_sharding": jax.sharding.NamedSharding(sharding.mesh, spec)}


def _concat(num_microbatches: int) -> Accumulator:
    """Each microbatch's output in its slot; the batch order is restored at the end (the
    inverse of ``reshape_batch_axis``'s column-major split)."""
    _check_count(num_microbatches)

    def init(value: Any) -> jax.Array:
        return jnp.broadcast_to(jnp.zeros_like(value), (num_microbatches, *value.shape))

    def finalize(carry: jax.Array) -> jax.Array:
        return carry.reshape(-1, *carry.shape[2:], order="F", **_out_sharding(carry))

    return _per_leaf(
        Accumulator(
            init=init,
            update=lambda carry, value, index: carry.at[index].set(value),
            finalize=finalize,
            aggregate=lambda values: values,
        )
    )


def _compose(accumulators: Any) -> Accumulator:
    """One accumulator from a tree of them, a prefix of the outputs' tree."""

    def over_outputs(fn: Callable[..., Any], outputs: Any, *others: Any) -> Any:
        check_prefix(accumulators, outputs, "accumulator", "the function's output")
        return jax.tree.map(fn, accumulators, outputs, *others)

    return Accumulator(
        init=lambda values: over_outputs(lambda acc, val: acc.init(val), values),
        update=lambda carry, value, index: over_outputs(
            lambda acc, val, car: acc.update(car, val, index), value, carry
        ),
        finalize=lambda carry: jax.tree.map(
            lambda acc, car: acc.finalize(car), accumulators, carry
        ),
        aggregate=lambda values: over_outputs(lambda acc, val: acc.aggregate(val), values),
    )


def resolve(accumulator: Any, num_microbatches: int | None) -> Accumulator:
    """One ``Accumulator`` from ``accumulator``: an ``Accumulator``, an ``AccumulationType``,
    or a tree of them (MEAN and CONCAT need the number of microbatches)."""

    def build(acc: Any) -> Accumulator:
        if isinstance(acc, Accumulator):
            return acc
        if acc is AccumulationType.MEAN:
            return _mean(num_microbatches)
        if acc is AccumulationType.SUM:
            return _sum()
        if acc is AccumulationType.RUNNING_MEAN:
            return _running_mean()
        if acc is AccumulationType.CONCAT:
            return _concat(num_microbatches)
        raise TypeError(
            "accumulator must be an Accumulator, an AccumulationType, or a tree of them; "
            f"found {type(acc).__name__} {acc!r}"
        )

    return _compose(jax.tree.map(build, accumulator))
