"""Losses and metrics with optax's names, argument names and per-example outputs.

Each loss that optax also has returns the same values as optax's (no reduction: one value per
element or per example; take ``.mean()`` yourself). Where optax broadcasts mismatched shapes,
these raise ``ValueError`` naming both arguments and shapes instead: a ``(n, 1)`` prediction
against ``(n,)`` targets silently becomes an ``(n, n)`` loss otherwise. The class axis is always
the last one; optax's ``axis`` and ``where`` arguments are not supported.

All of them are stable for large logits (``|logit| ~ 1e4``): values and gradients stay finite
because they are computed through ``log_softmax``/``logsumexp``/``log_sigmoid``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

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


def _floating(name: str, x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"`{name}` must have a floating-point dtype, got {x.dtype}.")
    return x


def _check_same_shape(a_name: str, a: jax.Array, b_name: str, b: jax.Array, hint: str = "") -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"`{a_name}` and `{b_name}` must have the same shape, got {a_name}: {a.shape} "
            f"and {b_name}: {b.shape}.{hint}"
        )


def _errors(predictions: ArrayLike, targets: ArrayLike | None) -> jax.Array:
    """``predictions - targets`` for floating ``predictions`` and same-shaped (or no) targets."""
    predictions = _floating("predictions", predictions)
    if targets is None:
        return predictions
    targets = jnp.asarray(targets)
    _check_same_shape("predictions", predictions, "targets", targets)
    return predictions - targets


def _logits_and_integer_labels(logits: ArrayLike, labels: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Validate ``logits`` of shape ``(..., num_classes)`` against integer ``labels`` ``(...)``."""
    logits, labels = _floating("logits", logits), jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"`labels` must have an integer dtype, got {labels.dtype}.")
    if logits.ndim == 0 or labels.shape != logits.shape[:-1]:
        raise ValueError(
            "`labels` must have the shape of `logits` without its last (class) axis, got "
            f"logits: {logits.shape} and labels: {labels.shape}. Integer labels hold one class "
            "index per example (drop a trailing axis of size 1 with labels[..., 0]); for "
            "one-hot labels use softmax_cross_entropy."
        )
    # Out-of-range labels would index past the class axis and give meaningless values; they can
    # only be checked for concrete inputs, not under jit.
    if not isinstance(labels, jax.core.Tracer) and labels.size:
        concrete = np.asarray(labels)  # NumPy: under an outer jit, labels.min() would trace
        low, high, num_classes = int(concrete.min()), int(concrete.max()), logits.shape[-1]
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"`labels` must lie in [0, num_classes={num_classes}) (the last axis of "
                f"`logits`), got values in [{low}, {high}]."
            )
    return logits, labels


def squared_error(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    """Elementwise ``(predictions - targets) ** 2``; ``targets=None`` means zeros.

    Same shape as ``predictions``; ``targets`` must have exactly that shape.
    """
    return jnp.square(_errors(predictions, targets))


def l2_loss(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    """Elementwise ``0.5 * (predictions - targets) ** 2``: ``squared_error`` halved (Bishop's)."""
    return 0.5 * squared_error(predictions, targets)


def mean_squared_error(predictions: ArrayLike, targets: ArrayLike) -> jax.Array:
    """The scalar ``mean((predictions - targets) ** 2)``: the seed experiment's MSE loss."""
    return jnp.mean(squared_error(predictions, targets))


def huber_loss(
    predictions: ArrayLike, targets: ArrayLike | None = None, *, delta: float = 1.0
) -> jax.Array:
    """Elementwise Huber loss of ``e = predictions - targets`` (``targets=None`` means zeros).

    ``0.5 * e ** 2`` where ``|e| <= delta`` and ``0.5 * delta ** 2 + delta * (|e| - delta)``
    elsewhere: quadratic near zero, linear (gradient clipped to ``±delta``) far from it.
    ``delta`` is keyword-only, as in optax.
    """
    if not isinstance(delta, jax.core.Tracer) and not np.all(np.asarray(delta) > 0):
        raise ValueError(f"`delta` must be positive, got {delta!r}.")
    abs_errors = jnp.abs(_errors(predictions, targets))
    # min/difference rather than where(|e| <= delta, ...) so that exactly one branch carries
    # the gradient at |e| == delta.
    quadratic = jnp.minimum(abs_errors, delta)
    linear = abs_errors - quadratic
    return 0.5 * jnp.square(quadratic) + delta * linear


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """Cross entropy ``-sum_j labels[..., j] * log_softmax(logits)[..., j]`` per example.

    Args:
        logits: unnormalised log-probabilities, shape ``(..., num_classes)``.
        labels: one-hot labels or class probabilities, the same shape as ``logits``.

    Returns:
        Shape ``logits.shape[:-1]``.
    """
    logits = _floating("logits", logits)
    labels = jnp.asarray(labels)
    if logits.ndim == 0:
        raise ValueError("`logits` must have a class axis, got a scalar.")
    hint = ""
    if labels.shape == logits.shape[:-1]:
        hint = " For integer labels use softmax_cross_entropy_with_integer_labels."
    _check_same_shape("logits", logits, "labels", labels, hint)
    return -jnp.sum(labels * jax.nn.log_softmax(logits), axis=-1)


def softmax_cross_entropy_with_integer_labels(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """Cross entropy ``logsumexp(logits) - logits[labels]`` per example.

    Args:
        logits: unnormalised log-probabilities, shape ``(..., num_classes)``.
        labels: integer classes in ``[0, num_classes)``, shape ``logits.shape[:-1]``. Values out
            of range raise ``ValueError``; under ``jit`` they cannot be checked and give
            meaningless losses.

    Returns:
        Shape ``labels.shape``.
    """
    logits, labels = _logits_and_integer_labels(logits, labels)
    # Only the label's logit is needed; subtracting the normaliser from it alone, rather than
    # forming the full log_softmax, saves an (n, num_classes) intermediate.
    label_logits = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    return jax.nn.logsumexp(logits, axis=-1) - label_logits


def sigmoid_binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """Elementwise ``-labels * log(sigmoid(logits)) - (1 - labels) * log(1 - sigmoid(logits))``.

    ``log(1 - sigmoid(x))`` is computed as ``log_sigmoid(-x)``, which stays finite for large
    ``x``. ``labels`` (0/1 or probabilities, any dtype) must have the shape of ``logits``.
    """
    logits = _floating("logits", logits)
    labels = jnp.asarray(labels)
    _check_same_shape("logits", logits, "labels", labels)
    labels = labels.astype(logits.dtype)
    return -labels * jax.nn.log_sigmoid(logits) - (1.0 - labels) * jax.nn.log_sigmoid(-logits)


def accuracy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    """The scalar fraction of examples with ``argmax(logits, -1) == labels`` (integer labels)."""
    logits, labels = _logits_and_integer_labels(logits, labels)
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels, dtype=jnp.float32)


def l2_penalty(params: Any, scale: float = 1.0) -> jax.Array:
    """Weight decay ``scale * 0.5 * sum(p ** 2)`` over the floating-point arrays of ``params``.

    The 0.5 makes the gradient ``scale * p``, the same convention as ``l2_loss`` and the same
    step as ``add_decayed_weights(weight_decay=scale)``. Leaves that are not floating-point
    arrays (integer arrays, Python numbers, strings) are ignored. Sums are accumulated in at
    least float32, so bfloat16 parameters do not lose the small terms.
    """
    total = jnp.zeros((), jnp.float32)
    for leaf in jax.tree.leaves(params):
        if isinstance(leaf, (jax.Array, np.ndarray)) and jnp.issubdtype(leaf.dtype, jnp.floating):
            wide = leaf.astype(jnp.promote_types(leaf.dtype, jnp.float32))
            total = total + jnp.sum(jnp.square(wide))
    return scale * 0.5 * total
