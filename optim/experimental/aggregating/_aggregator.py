"""Aggregators (transformations from per-element updates to one update) and ``process``, which
runs a preprocessor, an aggregator and a postprocessor in turn."""

from __future__ import annotations

import abc
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax
import jax.numpy as jnp

from optim._pytree import pytree_dataclass, static
from optim._tree import PyTree
from optim.base import Transformation, as_transformation

PerElementUpdates = PyTree
AggregatedUpdates = PyTree
MaybeAxis = int | Sequence[int] | None


class AggregatorUpdateFn(Protocol):
    """Update function for aggregators."""

    def __call__(
        self,
        per_elt_updates: PerElementUpdates,
        state: Any,
        params: PyTree | None = None,
        **extra_args: Any,
    ) -> tuple[AggregatedUpdates, Any]:
        """Transforms per-element updates into aggregated update direction."""


@pytree_dataclass
class Aggregator(abc.ABC):  # noqa: B024 - an ABC for register(), with no abstract method
    """A pair of pure functions that implement stateful aggregation of gradients.

    An aggregator differs from a gradient transformation in what it takes: a set of
    individual gradients (per example or per microbatch) of shape
    ``[*batch_shape, *params_shape]``, rather than one aggregated gradient, and it returns an
    update direction of shape ``[*params_shape]``. The signatures of ``init`` and ``update``
    are a transformation's; where a transformation is used as

    .. code-block:: python

      grads = jax.grad(loss)(params, batch)
      updates, opt_state = transformation.update(grads, opt_state)

    an aggregator is used as

    .. code-block:: python

      grads = jax.vmap(jax.grad(loss), in_axes=(None, 0))(params, batch)
      updates, opt_state = aggregator.update(grads, opt_state)

    ``Aggregator(init, update)`` makes one of two functions; the aggregators of this module
    are aggregators too (``isinstance(a, Aggregator)`` holds for them).

    Attributes:
      init: Initialization function that takes params and returns state.
      update: Update function that takes per-example gradients, state and params
        (optionally) and returns updates and updated state.
    """

    init: Callable[[PyTree], Any] = static()
    update: AggregatorUpdateFn = static()


def is_aggregator(tx: Any) -> bool:
    """Ours, or an ``optax.experimental.aggregating.Aggregator``."""
    theirs = sys.modules.get("optax.experimental._aggregating")
    return isinstance(tx, Aggregator) or (theirs is not None and isinstance(tx, theirs.Aggregator))


def find_field(tree: Any, key: str, default: Any) -> Any:
    """The value of the field or dict key ``key`` in ``tree``, or the NamedTuple named ``key``
    (as ``optax.tree.get``): ``default`` when there is none, ``KeyError`` when there are
    several. A node that matches is not searched further."""
    found = []

    def visit(node: Any) -> None:
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            if key in node._fields:
                found.append(getattr(node, key))
                return
            if type(node).__name__ == key:
                found.append(node)
                return
        if isinstance(node, dict) and key in node:
            found.append(node[key])
            return
        children = jax.tree.leaves(node, is_leaf=lambda x: x is not node)
        if children != [node]:
            for child in children:
                visit(child)

    visit(tree)
    if len(found) > 1:
        raise KeyError(f"found {len(found)} values of {key!r} in the state; expected one")
    return found[0] if found else default


@pytree_dataclass
class Process(Transformation):
    """Per-element gradients through a preprocessor, an aggregator and a postprocessor.

    The state is ``(preprocess_state, aggregate_state, postprocess_state)``. The
    postprocessor runs only when the aggregator's state says it is ``ready`` (always, when it
    has no such field); otherwise the update is zero and its state stays.
    """

    preprocessor: Any
    aggregator: Any
    postprocessor: Any
    aggregator_has_aux: bool = static(False)

    def init(self, params: PyTree) -> tuple[Any, Any, Any]:
        return (
            self.preprocessor.init(params),
            self.aggregator.init(params),
            self.postprocessor.init(params),
        )

    def update(self, updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != 3:
            raise ValueError(
                "state must be the (preprocess, aggregate, postprocess) states that init "
                f"returned, got {type(state).__name__}"
            )
        pre_state, aggregate_state, post_state = state
        per_elt, pre_state = self.preprocessor.update(updates, pre_state, params, **extra_args)
        aggregated, aggregate_state = self.aggregator.update(
            per_elt, aggregate_state, params, **extra_args
        )
        if self.aggregator_has_aux:
            aggregated, aux = aggregated
            extra_args = extra_args | aux
        ready = find_field(aggregate_state, "ready", True)

        def run(g, s, p, kw):
            return self.postprocessor.update(g, s, p, **kw)

        def wait(g, s, p, kw):
            del p, kw
            return jax.tree.map(jnp.zeros_like, aggregated), s

        updates, post_state = jax.lax.cond(
            ready, run, wait, aggregated, post_state, params, extra_args
        )
        return updates, (pre_state, aggregate_state, post_state)


@pytree_dataclass
class AggregatingProcess(Process):
    """A ``Process`` whose aggregator is an ``Aggregator``: an aggregator itself."""


Aggregator.register(AggregatingProcess)


def process(
    preprocessor: Any,
    aggregator: Any,
    postprocessor: Any,
    aggregator_has_aux: bool = False,
) -> Process:
    """Process gradients through a sequence of transformations.

    ``preprocessor`` maps per-element gradients to per-element updates (e.g. clipping each
    example's gradient), ``aggregator`` reduces them to one update (e.g. their mean, or a
    mean accumulated over microbatches), and ``postprocessor`` (e.g. an optimizer) maps that
    to the final update. With an accumulating aggregator the postprocessor runs only on the
    steps where the accumulation is complete; the other steps return zero updates.

    Args:
      preprocessor: A transformation that maps per-example gradients to per-example
        updates.
      aggregator: A transformation that aggregates per-example updates into a single update.
      postprocessor: A transformation that maps aggregated updates to the final updates.
      aggregator_has_aux: Whether the aggregator returns more than just the average updates:
        ``(updates, aux)`` with ``aux`` a dict passed to the postprocessor as extra keyword
        arguments.

    Returns:
      A gradient transformation; an :class:`Aggregator` when ``aggregator`` is one.

    Raises:
      TypeError: one of the three is not a transformation (with ``init`` and ``update``).

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import jax.random as jrd
      >>> import optim
      >>> from optim.experimental import aggregating
      >>> clip_per_sample = jax.vmap(optim.projections.projection_l2_ball, 0)
      >>> average_grads = lambda gs: jax.tree.map(lambda g: jnp.mean(g, 0), gs)
      >>> opt = aggregating.process(
      ...     # clip per sample
      ...     aggregating.Aggregator(
      ...         init=lambda p: optim.EmptyState(),
      ...         update=lambda gs, s, _: (clip_per_sample(gs), s),
      ...     ),
      ...     # average
      ...     aggregating.Aggregator(
      ...         init=lambda p: optim.EmptyState(),
      ...         update=lambda gs, s, _: (average_grads(gs), s),
      ...     ),
      ...     # usual optimizer there
      ...     optim.adam(learning_rate=1e-1),
      ... )
      >>> fun = lambda w, x, y: jnp.sum((x.dot(w) - y) ** 2)
      >>> n, k, d = 8, 2, 4
      >>> xs = jrd.normal(jrd.key(0), (n, d))
      >>> ys = jrd.normal(jrd.key(1), (n, k))
      >>> params = jrd.normal(jrd.key(2), (d, k))
      >>> state = opt.init(params)
      >>> value_and_grads = jax.vmap(jax.value_and_grad(fun), (None, 0, 0))
      >>> for i in range(3):
      ...     losses, grads = value_and_grads(params, xs, ys)
      ...     updates, state = opt.update(grads, state)
      ...     params = optim.apply_updates(params, updates)
      ...     print(f"Step: {i} | Batch loss: {jnp.mean(losses):.2e}")
      Step: 0 | Batch loss: 7.47e+00
      Step: 1 | Batch loss: 6.20e+00
      Step: 2 | Batch loss: 5.08e+00
    """
    cls = AggregatingProcess if is_aggregator(aggregator) else Process
    return cls(
        as_transformation(preprocessor, "preprocessor"),
        as_transformation(aggregator, "aggregator"),
        as_transformation(postprocessor, "postprocessor"),
        bool(aggregator_has_aux),
    )
