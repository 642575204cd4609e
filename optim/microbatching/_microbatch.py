"""``microbatch``: evaluate a function on a batch one microbatch at a time; ``micro_vmap`` and
``micro_grad``, the vmap and the per-example gradients built on it."""

from __future__ import annotations

import collections
import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim.microbatching._accumulators import AccumulationType, Accumulator, resolve
from optim.microbatching._reshape import reshape_batch_axis

# What micro_grad returns next to the gradients: per-example values, metrics and aux.
IndividualOutputs = collections.namedtuple("Aux", ["values", "metrics", "aux"])


def _as_ints(value: Any, name: str) -> tuple[int, ...]:
    """An int or a sequence of ints as a tuple; ``TypeError`` naming ``name`` otherwise."""
    items = (value,) if isinstance(value, numbers.Integral) else value
    try:
        items = tuple(items)
    except TypeError:
        items = None
    if items is None or not all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in items
    ):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {value!r}")
    return tuple(int(i) for i in items)


def _check_microbatch_size(microbatch_size: Any) -> None:
    if isinstance(microbatch_size, bool) or not isinstance(microbatch_size, numbers.Integral):
        raise TypeError(
            f"microbatch_size must be an int or None, got {type(microbatch_size).__name__}"
        )
    if microbatch_size < 1:
        raise ValueError(f"microbatch_size must be at least 1, got {microbatch_size}")


def _batch_size(batch_args: list[Any], axes: Sequence[int], microbatch_size: int) -> int:
    """The common size of the batch axes; ``ValueError`` when they differ or
    ``microbatch_size`` does not divide it."""
    sizes = [
        leaf.shape[axis]
        for tree, axis in zip(batch_args, axes, strict=True)
        for leaf in jax.tree.leaves(tree)
    ]
    if not sizes:
        raise ValueError("the batch arguments hold no arrays: there is no batch axis to split")
    if len(set(sizes)) > 1:
        raise ValueError(f"Batch Arguments must have equal-size batch axes, found {sizes}.")
    if sizes[0] % microbatch_size != 0:
        raise ValueError(
            f"the batch size {sizes[0]} must be divisible by microbatch_size={microbatch_size}"
        )
    return sizes[0]


@suggest_keywords
def microbatch(
    fun: Callable[..., Any],
    argnums: int | Sequence[int],
    microbatch_size: int | None,
    accumulator: Accumulator | AccumulationType | Any = AccumulationType.SUM,
    *,
    argnames: str | Sequence[str] = (),
    in_axes: int | Sequence[int] = 0,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    """A general microbatching transformation.

    Given ``fun``, returns a function that splits the batch arguments into
    ``batch_size // microbatch_size`` microbatches, evaluates ``fun`` on each in turn (a
    ``lax.fori_loop``, so one microbatch's intermediate values are in memory at a time), and
    combines the results with ``accumulator``. For the SUM accumulator:

    .. code-block:: python

      def microbatched_fun(full_batch):
          total = 0
          for microbatch in full_batch:
              total += fun(microbatch)
          return total

    Microbatch ``k`` holds the rows ``k, k + n, k + 2n, ...`` of the batch, with ``n`` the
    number of microbatches (see :func:`reshape_batch_axis`); CONCAT puts them back in order.

    Args:
      fun: An arbitrary function.
      argnums: A sequence of argument indices that have a batch axis.
      microbatch_size: The number of rows in the overall batch used in each microbatch.
        Smaller values reduce memory overhead, but require more sequential computation. This
        must evenly divide the batch axis size of the batch arguments. ``None`` returns
        ``fun`` itself.
      accumulator: Specifies how to combine results from each microbatch; can be a single
        ``Accumulator`` or ``AccumulationType``, a pytree matching the structure of ``fun``'s
        output with those at the leaves, or anything in between (a pytree prefix of ``fun``'s
        output).
      argnames: A sequence of keyword argument names that have a batch axis.
      in_axes: An integer or sequence of integers indicating the batch axis of each argument
        in ``argnums`` and ``argnames``, aligned with the list ``argnums + argnames``. The
        default value of 0 puts every batch axis first.
      num_real_microbatches: Optional number of microbatches that are actually executed. If
        specified, microbatching stops after this many steps: a way to handle variable batch
        sizes without recompilation.

    Returns:
      A new function that evaluates ``fun`` sequentially ``num_microbatches`` times on
      subsets of data. Consumes the same args and kwargs as ``fun``.

    Raises:
      TypeError: ``fun`` is not callable, or ``argnums``, ``argnames``, ``in_axes``,
        ``microbatch_size`` have the wrong type; at call time, ``accumulator`` is not an
        ``Accumulator``/``AccumulationType`` tree.
      ValueError: ``microbatch_size`` is less than 1, or ``in_axes`` does not have one entry
        per batch argument; at call time, the batch sizes differ or are not divisible by
        ``microbatch_size``, a batch argument is missing, or ``accumulator`` is not a prefix
        of ``fun``'s output.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> fun = lambda x: (x + 1, jnp.sum(3 * x))
      >>> data = jnp.array([1, 2, 3, 4])
      >>> strategy = (
      ...     optim.microbatching.AccumulationType.CONCAT,
      ...     optim.microbatching.AccumulationType.SUM,
      ... )
      >>> microbatched_fun = optim.microbatch(
      ...     fun, argnums=0, microbatch_size=2, accumulator=strategy
      ... )
      >>> microbatched_fun(data)
      (Array([2, 3, 4, 5], dtype=int32), Array(30, dtype=int32))
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    if microbatch_size is None:
        return fun
    _check_microbatch_size(microbatch_size)
    argnums = _as_ints(argnums, "argnums")
    argnames = (argnames,) if isinstance(argnames, str) else tuple(argnames)
    if not all(isinstance(name, str) for name in argnames):
        raise TypeError(f"argnames must be a string or a sequence of strings, got {argnames!r}")
    num_batched = len(argnums) + len(argnames)
    in_axes = (in_axes,) * num_batched if isinstance(in_axes, numbers.Integral) else in_axes
    in_axes = _as_ints(in_axes, "in_axes")
    if len(in_axes) != num_batched:
        raise ValueError(
            f"in_axes must have one entry per batch argument (argnums + argnames: "
            f"{num_batched}), got {len(in_axes)}"
        )
    positional_axes = dict(zip(argnums, in_axes[: len(argnums)], strict=True))
    keyword_axes = dict(zip(argnames, in_axes[len(argnums) :], strict=True))

    def microbatched_fun(*args: Any, **kwargs: Any) -> Any:
        for i in positional_axes:
            if not -len(args) <= i < len(args):
                raise ValueError(
                    f"argnums names argument {i}, but the function was called with "
                    f"{len(args)} positional arguments"
                )
        for name in keyword_axes:
            if name not in kwargs:
                raise ValueError(f"argnames names {name!r}, which was not passed as a keyword")
        batch_args = [args[i] for i in positional_axes] + [kwargs[k] for k in keyword_axes]
        batch_size = _batch_size(
            batch_args, [*positional_axes.values(), *keyword_axes.values()], microbatch_size
        )
        num_microbatches = batch_size // microbatch_size
        split_args = [
            reshape_batch_axis(a, microbatch_size, positional_axes[i])
            if i in positional_axes
            else a
            for i, a in enumerate(args)
        ]
        split_kwargs = {
            k: reshape_batch_axis(a, microbatch_size, keyword_axes[k]) if k in keyword_axes else a
            for k, a in kwargs.items()
        }
        # Negative argnums index from the end, as in Python.
        positional = {i % len(args): axis for i, axis in positional_axes.items()}

        def on_microbatch(index: Any) -> Any:
            def take(tree: Any, axis: int) -> Any:
                return jax.tree.map(functools.partial(jnp.take, indices=index, axis=axis), tree)

            call_args = [
                take(a, positional[i]) if i in positional else a for i, a in enumerate(split_args)
            ]
            call_kwargs = {
                k: take(a, keyword_axes[k]) if k in keyword_axes else a
                for k, a in split_kwargs.items()
            }
            return fun(*call_args, **call_kwargs)

        combine = resolve(accumulator, num_microbatches)
        steps = num_microbatches if num_real_microbatches is None else num_real_microbatches
        carry = jax.lax.fori_loop(
            0,
            steps,
            lambda index, carry: combine.update(carry, on_microbatch(index), index),
            combine.init(jax.eval_shape(on_microbatch, 0)),
        )
        return combine.finalize(carry)

    return microbatched_fun


@suggest_keywords
def micro_vmap(
    fun: Callable[..., Any],
    in_axes: int | Sequence[int] = 0,
    out_axes: Any = 0,
    *,
    microbatch_size: int | None = None,
    vmap_fn: Callable[..., Any] = jax.vmap,
    accumulator: Accumulator | AccumulationType | Any = AccumulationType.CONCAT,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., Any]:
    """A generalized version of ``jax.vmap`` that supports microbatching.

    Because the batch is processed one microbatch at a time, the batch axis can be far
    larger than ``jax.vmap`` alone would fit in memory. ``accumulator`` says what to do
    with the mapped outputs: CONCAT (the default) returns them with a batch axis, as
    ``jax.vmap`` does; MEAN and SUM reduce over the batch, for when the full output is not
    needed (and too large to keep). Each microbatch's outputs are reduced by the
    accumulator's ``aggregate``, then combined across microbatches.

    Args:
      fun: Function to be mapped over additional axes.
      in_axes: Array axis to map over, per positional argument (``None``: not mapped). See
        ``jax.vmap``. Keyword arguments are mapped along their axis 0.
      out_axes: Must be 0 (other values are not supported).
      microbatch_size: The number of rows in the overall batch used in each microbatch.
        Smaller values reduce memory overhead, but require more sequential computation. This
        must evenly divide the batch axis size of the batch arguments.
      vmap_fn: A function with the same signature as ``jax.vmap``, e.g. to pass it keyword
        arguments.
      accumulator: Specifies what to do with the vmapped outputs: an ``Accumulator``, an
        ``AccumulationType``, or a tree of them that is a prefix of the outputs.
      num_real_microbatches: Optional number of microbatches that are actually executed. If
        specified, microbatching stops after this many steps.

    Returns:
      A new function with the same args and kwargs having an additional batch axis
      (according to ``in_axes``).

    Raises:
      NotImplementedError: ``out_axes`` is not 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import microbatching
      >>> microbatching.micro_vmap(lambda x: x**2)(jnp.arange(8))
      Array([ 0,  1,  4,  9, 16, 25, 36, 49], dtype=int32)
      >>> microbatching.micro_vmap(
      ...     lambda x: x**2, microbatch_size=2, accumulator=microbatching.AccumulationType.SUM
      ... )(jnp.arange(8))
      Array(140, dtype=int32)
    """
    if out_axes != 0:
        raise NotImplementedError("out_axes other than 0 is not supported")
    in_axes = (in_axes,) if isinstance(in_axes, numbers.Integral) else tuple(in_axes)

    # vmap maps keyword arguments along axis 0: they travel as one keyword, a dict.
    def map_then_aggregate(*args: Any, kwargs: dict[str, Any]) -> Any:
        outputs = vmap_fn(fun, in_axes, out_axes)(*args, **kwargs)
        # aggregate needs no number of microbatches: any stands in for it.
        per_call = jax.tree.leaves(outputs)[0].shape[0]
        return resolve(accumulator, per_call).aggregate(outputs)

    mapped = microbatch(
        map_then_aggregate,
        argnums=tuple(i for i, axis in enumerate(in_axes) if axis is not None),
        microbatch_size=microbatch_size,
        accumulator=accumulator,
        argnames="kwargs",
        in_axes=(*(axis for axis in in_axes if axis is not None), 0),
        num_real_microbatches=num_real_microbatches,
    )
    return lambda *args, **kwargs: mapped(*args, kwargs=kwargs)


@suggest_keywords
def micro_grad(
    fun: Callable[..., Any],
    has_aux: bool = False,
    argnums: int | Sequence[int] = 0,
    *,
    batch_argnums: int | Sequence[int] = 1,
    keep_batch_dim: bool = True,
    microbatch_size: int | None = None,
    accumulator: Accumulator | AccumulationType | Any = AccumulationType.SUM,
    transform_fn: Callable[[Any], Any] = lambda x: x,
    metrics_fn: Callable[[Any], Any] = lambda x: None,
    num_real_microbatches: int | jax.Array | None = None,
) -> Callable[..., tuple[Any, Any]]:
    """Create a function to compute, transform, and sum per-example gradients.

    Like ``jax.value_and_grad``, but gradients are taken per example (batches of size 1)
    and pass through ``transform_fn`` (e.g. clipping, or moments) and ``metrics_fn``
    (low-dimensional per-example metrics) before ``accumulator`` combines them across the
    batch, one microbatch at a time (see :func:`microbatch`). Differences from
    ``jax.value_and_grad``:

    * at least one argument of ``fun`` has a batch axis (axis 0), named by
      ``batch_argnums``; the default ``1`` fits ``fun(params, batch, ...)``.
    * the gradient comes first; the per-example values, metrics and ``fun``'s aux come
      second, as a namedtuple ``Aux(values, metrics, aux)``.

    Args:
      fun: The function to compute the gradient of.
      has_aux: Whether the function returns auxiliary output.
      argnums: The indices of argument(s) to differentiate with respect to.
      batch_argnums: The indices of argument(s) with a batch axis.
      keep_batch_dim: Whether ``fun`` expects inputs to have a batch dimension (each
        example is then passed with a batch axis of size 1).
      microbatch_size: The size of the microbatches to use when computing the per-example
        gradients. See :func:`microbatch`.
      accumulator: Specifies how to combine or aggregate the transformed gradients across
        the batch axis.
      transform_fn: A function to apply to per-example gradients before accumulating.
      metrics_fn: A function to apply to per-example gradients before transforming; returned
        per example in the auxiliary output, so it should be scalar or low-dimensional.
      num_real_microbatches: Optional number of microbatches that are actually executed.

    Returns:
      A function that computes the value and gradient of ``fun``, accumulating the
      transformed per-example gradients as ``accumulator`` says. The auxiliary output
      (values, metrics, function aux) is returned per example.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import microbatching
      >>> def mean_squared_loss(params, features, targets):
      ...     diff = features @ params - targets
      ...     return 0.5 * jnp.mean(diff**2)
      >>> params = jnp.zeros(1)
      >>> features = jnp.ones((4, 1))
      >>> targets = jnp.array([0, 2, 4, 6])
      >>> (grads, squared_grads), aux = microbatching.micro_grad(
      ...     mean_squared_loss,
      ...     argnums=0,
      ...     batch_argnums=(1, 2),
      ...     accumulator=microbatching.AccumulationType.MEAN,
      ...     transform_fn=lambda x: (x, x**2),
      ...     metrics_fn=jnp.linalg.norm,
      ... )(params, features, targets)
      >>> grads, squared_grads  # per-example grads are [0, 2, 4, 6]
      (Array([-3.], dtype=float32), Array([14.], dtype=float32))
      >>> aux.values
      Array([ 0.,  2.,  8., 18.], dtype=float32)
      >>> aux.metrics
      Array([0., 2., 4., 6.], dtype=float32)
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    batch_argnums = _as_ints(batch_argnums, "batch_argnums")
    if not batch_argnums:
        raise ValueError("batch_argnums must name at least one argument")
    with_aux = fun if has_aux else lambda *a, **k: (fun(*a, **k), None)
    value_and_grad = jax.value_and_grad(with_aux, argnums, has_aux=True)

    def per_example(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        (value, aux), grad = value_and_grad(*args, **kwargs)
        return transform_fn(grad), IndividualOutputs(value, metrics_fn(grad), aux)

    in_axes = [None] * (max(batch_argnums) + 1)
    for i in batch_argnums:
        in_axes[i] = 0
    mapped = micro_vmap(
        per_example,
        in_axes=tuple(in_axes),
        accumulator=(accumulator, AccumulationType.CONCAT),
        microbatch_size=microbatch_size,
        num_real_microbatches=num_real_microbatches,
    )
    if not keep_batch_dim:
        return mapped

    def with_example_axis(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        # Each example keeps a batch axis of size 1 (axis 1 of the batch, 0 of an example).
        args = [
            jax.tree.map(lambda x: jnp.expand_dims(x, 1), a) if i in batch_argnums else a
            for i, a in enumerate(args)
        ]
        return mapped(*args, **kwargs)

    return with_example_axis
