"""Losses and metrics for the models: optax's losses (from ``optim.losses``) plus three helpers.

``squared_error``, ``l2_loss``, ``huber_loss``, ``softmax_cross_entropy``,
``softmax_cross_entropy_with_integer_labels`` and ``sigmoid_binary_cross_entropy`` are
``optim.losses``'s, re-exported here: the same functions, with optax's names, arguments and
numbers (one value per element or example; take ``.mean()`` yourself). The helpers optax does
not have live here:

* ``mean_squared_error``: the scalar mean of ``squared_error``;
* ``accuracy``: the fraction of examples whose largest logit is the label's;
* ``l2_penalty``: weight decay ``scale * 0.5 * sum(p ** 2)`` over a parameter tree.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from optim.losses import (
    huber_loss,
    l2_loss,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
    squared_error,
)
from optim.losses._validation import floating, integer, integer_labels

__all__ = [
    "accuracy",
    "huber_loss",
    "l2_loss",
    "l2_penalty",
    "mean_squared_error",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "squared_error",
]


def mean_squared_error(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    """The scalar ``mean((predictions - targets) ** 2)``; the shapes must be equal.

    Args:
      predictions: floating-point predictions, any shape.
      targets: floating-point targets of the same shape.

    Returns:
      A scalar, the mean over every element.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(mean_squared_error(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0])))
      2.0
    """
    return jnp.mean(squared_error(predictions, targets))


def accuracy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """The scalar fraction of examples with ``argmax(logits, -1) == labels``.

    Args:
      logits: floating-point scores, shape ``(..., num_classes)``.
      labels: integer classes in ``[0, num_classes)``, shape ``logits.shape[:-1]``; values out
        of range raise ``ValueError`` (outside ``jit``, where they can be checked).

    Returns:
      A float32 scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(accuracy(jnp.array([[0.1, 0.9], [0.8, 0.2]]), jnp.array([1, 1])))
      0.5
    """
    logits, labels = floating("logits", logits), integer("labels", labels)
    if logits.ndim == 0:
        raise ValueError("`logits` must have a class axis, got a scalar.")
    integer_labels(logits, labels)
    # An out-of-range label would silently count as wrong; it can only be checked for concrete
    # inputs, not under jit.
    if not isinstance(labels, jax.core.Tracer) and labels.size:
        concrete = np.asarray(labels)  # NumPy: under an outer jit, labels.min() would trace
        low, high, num_classes = int(concrete.min()), int(concrete.max()), logits.shape[-1]
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"`labels` must lie in [0, num_classes={num_classes}) (the last axis of "
                f"`logits`), got values in [{low}, {high}]."
            )
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels, dtype=jnp.float32)


def l2_penalty(params: Any, scale: float = 1.0) -> jax.Array:
    """Weight decay ``scale * 0.5 * sum(p ** 2)`` over the floating-point arrays of ``params``.

    The 0.5 makes the gradient ``scale * p``, the same convention as ``l2_loss`` and the same
    step as ``add_decayed_weights(weight_decay=scale)``. Leaves that are not floating-point
    arrays (integer arrays, Python numbers, strings) are ignored. Sums are accumulated in at
    least float32, so bfloat16 parameters do not lose the small terms.

    Args:
      params: any pytree (a model, a dict of arrays).
      scale: the weight-decay coefficient.

    Returns:
      A float32 scalar (wider if a parameter is).

    Examples:
      >>> import jax.numpy as jnp
      >>> print(l2_penalty({"w": jnp.array([1.0, 2.0]), "step": 3}, scale=0.1))
      0.25
    """
    total = jnp.zeros((), jnp.float32)
    for leaf in jax.tree.leaves(params):
        if isinstance(leaf, (jax.Array, np.ndarray)) and jnp.issubdtype(leaf.dtype, jnp.floating):
            wide = leaf.astype(jnp.promote_types(leaf.dtype, jnp.float32))
            total = total + jnp.sum(jnp.square(wide))
    return scale * 0.5 * total
