"""Ranking losses: the cost of the order that item scores induce, against relevance labels.

They work on the last axis (the list of items); leading axes are batch axes, and ``reduce_fn``
reduces the per-list losses (``jnp.mean`` by default, ``None`` keeps them).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optim._keywords import suggest_keywords
from optim.losses._validation import floating

__all__ = ["ranking_softmax_loss"]


def _reduce(
    losses: jax.Array,
    where: jax.Array | None,
    reduce_fn: Callable[..., ArrayLike] | None,
) -> jax.Array:
    """``reduce_fn(losses, where=where)``, or ``losses`` zeroed outside ``where`` without one.

    A mean over no list at all (every list masked out) is 0 rather than NaN, unless a loss
    itself is NaN: that is reported, not hidden.
    """
    if reduce_fn is None:
        return losses if where is None else jnp.where(where, losses, 0.0)
    reduced = reduce_fn(losses, where=where)
    if reduce_fn is jnp.mean:
        empty = jnp.isnan(reduced) & jnp.logical_not(jnp.any(jnp.isnan(losses)))
        reduced = jnp.where(empty, 0.0, reduced)
    return reduced


@suggest_keywords
def ranking_softmax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduce_fn: Callable[..., ArrayLike] | None = jnp.mean,
) -> jax.Array:
    r"""Ranking softmax loss: the cross entropy of the item scores' softmax against the labels.

    .. math::
      \ell(s, y) = -\sum_i y_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}.

    Args:
      logits: floating-point item scores, shape ``[..., list_size]``.
      labels: relevance labels, the same shape.
      where: the items that exist (boolean, the same shape); the others take part in neither
        the softmax nor the sum, and a list with none is left out of the reduction.
      weights: per-item weights multiplying the labels.
      reduce_fn: reduces the per-list losses, e.g. ``jnp.sum`` or ``jnp.mean`` (which gives 0,
        not NaN, when every list is masked out); ``None`` keeps them, 0 for masked lists.

    Returns:
      The reduced loss, or the per-list losses of shape ``[...]`` when ``reduce_fn`` is None.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> scores, labels = jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0])
      >>> print(f"{losses.ranking_softmax_loss(scores, labels):.3f}")
      1.408
      >>> scores = jnp.array([[2.0, 1.0, 0.0], [1.0, 0.5, 1.5]])
      >>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
      >>> where = jnp.array([[True, True, False], [True, True, True]])
      >>> print(f"{losses.ranking_softmax_loss(scores, labels, where=where):.3f}")
      0.497
      >>> grads = jax.grad(losses.ranking_softmax_loss)(jnp.array([2.0, 1.0, 3.0]), labels[0])
      >>> print([round(float(g), 3) for g in grads])
      [-0.755, 0.09, 0.665]
    """
    logits = floating("logits", logits)
    labels = jnp.asarray(labels).astype(logits.dtype)
    if where is not None:
        labels = jnp.where(where, labels, jnp.zeros_like(labels))
        logits = jnp.where(where, logits, jnp.full_like(logits, -jnp.inf))
    if weights is not None:
        labels = labels * weights
    losses = -jnp.sum(labels * jax.nn.log_softmax(logits, axis=-1), axis=-1, where=where)
    lists = None if where is None else jnp.any(where, axis=-1)
    return _reduce(losses, lists, reduce_fn)
