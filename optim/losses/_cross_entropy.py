"""Cross-entropy losses: softmax (one-hot, integer and ``0 log 0``-safe labels), sigmoid, focal
and PolyLoss.

All are computed through ``log_softmax``/``logsumexp``/``log_sigmoid``, so values and gradients
stay finite for large logits (``|logit| ~ 1e4``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special
from jax.typing import ArrayLike

from optim._keywords import suggest_keywords
from optim.losses._validation import (
    broadcastable,
    class_axes,
    floating,
    integer,
    integer_labels,
)

__all__ = [
    "poly_loss_cross_entropy",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
]

Axis = int | tuple[int, ...] | None


def _binary_labels(logits: Any, labels: Any) -> tuple[jax.Array, jax.Array]:
    """Floating ``logits`` and ``labels`` cast to their dtype, after checking the shapes."""
    logits = floating("logits", logits)
    labels = jnp.asarray(labels)
    broadcastable("logits", logits, "labels", labels)
    return logits, labels.astype(logits.dtype)


@suggest_keywords
def sigmoid_binary_cross_entropy(logits, labels):
    r"""Elementwise sigmoid (binary) cross entropy.

    .. math::
      \ell(x, y) = -y \log \sigma(x) - (1 - y) \log (1 - \sigma(x)),

    with :math:`\log(1 - \sigma(x))` computed as :math:`\log \sigma(-x)`, finite for large
    :math:`x`. Each element is an independent binary prediction, so this also serves
    multi-label classification (an image holding both a cat and a dog).

    Args:
      logits: floating-point logits of the positive class.
      labels: 0/1 labels or target probabilities, of any dtype; their shape must broadcast with
        that of ``logits`` (beware: ``(n, 1)`` against ``(n,)`` broadcasts to ``(n, n)``).

    Returns:
      The cross entropy of each binary prediction, with the broadcast shape.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> print(losses.sigmoid_binary_cross_entropy(jnp.array([0.0, 2.0]), jnp.array([1, 0])))
      [0.6931472 2.126928 ]
    """
    logits, labels = _binary_labels(logits, labels)
    return -labels * jax.nn.log_sigmoid(logits) - (1.0 - labels) * jax.nn.log_sigmoid(-logits)


@suggest_keywords
def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: ArrayLike | None = None,
    gamma: ArrayLike = 2.0,
) -> jax.Array:
    r"""Sigmoid focal loss: binary cross entropy scaled down on well-classified examples.

    .. math::
      FL(p_t) = -\alpha_t (1 - p_t)^\gamma \log p_t,

    where :math:`p_t` is the predicted probability of the true class (:math:`p = \sigma(x)` for
    label 1, :math:`1 - p` for label 0) and :math:`\alpha_t` is :math:`\alpha` for label 1,
    :math:`1 - \alpha` for label 0 (Lin et al., 2017, "Focal Loss for Dense Object
    Detection"). The factor :math:`(1 - p_t)^\gamma` is computed as
    :math:`\exp(\gamma \log(1 - p_t))` with :math:`\log(1 - p_t) = \operatorname{logsumexp}(
    [\log p, \log(1 - p)], b=[1 - y, y])`, finite for large logits and for :math:`\gamma < 1`;
    soft labels in :math:`[0, 1]` are accepted.

    Args:
      logits: floating-point logits, shape ``[...]``.
      labels: 0/1 labels or probabilities whose shape broadcasts with ``logits``.
      alpha: weight of the positive class in :math:`(0, 1)`, or ``None`` for no weighting.
      gamma: focusing exponent; 0 gives the binary cross entropy.

    Returns:
      The focal losses, with the broadcast shape of ``logits`` and ``labels``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> print(losses.sigmoid_focal_loss(jnp.array([3.0, -3.0]), jnp.array([1.0, 1.0])))
      [1.0928333e-04 2.7662804e+00]
    """
    logits, labels = _binary_labels(logits, labels)
    cross_entropy = sigmoid_binary_cross_entropy(logits, labels)
    log_p, log_not_p = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
    # log(1 - p_t) = log((1 - y) p + y (1 - p)), summed in log space: a weighted logsumexp.
    log_one_minus_p_t = jax.scipy.special.logsumexp(
        jnp.stack([log_p, log_not_p], axis=-1),
        axis=-1,
        b=jnp.stack([1 - labels, labels], axis=-1),
    )
    loss = cross_entropy * jnp.exp(gamma * log_one_minus_p_t)
    if alpha is None:
        return loss
    return (alpha * labels + (1.0 - alpha) * (1.0 - labels)) * loss


def _class_mask(where: Any, logits: jax.Array, axis: Axis) -> jax.Array | None:
    """``where`` as an array with the rank of ``logits``: a per-example mask gains the class
    axis back, so it masks every class of the examples it excludes."""
    if where is None:
        return None
    where = jnp.asarray(where)
    return where if where.ndim == logits.ndim else jnp.expand_dims(where, axis)


@suggest_keywords
def softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Softmax cross entropy between logits and one-hot labels or class probabilities.

    .. math::
      \ell(x, y) = -\sum_j y_j \log \frac{e^{x_j}}{\sum_k e^{x_k}},

    the sum running over the class ``axis``.

    Args:
      logits: floating-point unnormalised log-probabilities, shape ``[..., num_classes]``.
      labels: one-hot labels or probability distributions, a shape that broadcasts with
        ``logits``. For integer class indices use
        ``softmax_cross_entropy_with_integer_labels``.
      axis: the class axis or axes.
      where: classes to include, of the shape of ``logits`` or of ``[...]`` (then per
        example); excluded classes leave both the normaliser and the sum.

    Returns:
      The cross entropy of each example, shape ``[...]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
      >>> print(losses.softmax_cross_entropy(logits, labels))
      [0.2761297 2.951799 ]
    """
    logits = floating("logits", logits)
    labels = jnp.asarray(labels)
    hint = ""
    if logits.ndim and labels.shape == logits.shape[:-1]:
        hint = " For integer labels use softmax_cross_entropy_with_integer_labels."
    broadcastable("logits", logits, "labels", labels, hint)
    where = _class_mask(where, logits, axis)
    log_probs = jax.nn.log_softmax(logits, axis, where)
    return -(labels * log_probs).sum(axis, where=where)


@suggest_keywords
def softmax_cross_entropy_with_integer_labels(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: int | tuple[int, ...] = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Softmax cross entropy between logits and integer class labels.

    .. math::
      \ell(x, y) = \log \sum_j e^{x_j} - x_y.

    Only the label's logit is read, rather than the whole ``log_softmax``. Labels outside
    ``[0, num_classes)`` are not checked (they could not be under ``jit``): a negative label
    counts from the end, a too-large one gives NaN; mask them out with ``where``.

    Args:
      logits: floating-point unnormalised log-probabilities, shape ``[..., num_classes]``.
      labels: integer classes, shape ``[...]`` (``logits`` without its class axes).
      axis: the class axis, or a tuple of axes: then a label is a flat (row-major) index into
        the ``logits`` slice spanned by those axes.
      where: classes to include, of the shape of ``logits``, or examples to include, shape
        ``[...]``; an example with no class included has loss 0.

    Returns:
      The cross entropy of each example, shape ``[...]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> print(losses.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, 1])))
      [0.27612972 2.951799  ]
    """
    logits = floating("logits", logits)
    labels = integer("labels", labels)
    if logits.ndim == 0:
        raise ValueError("`logits` must have a class axis, got a scalar.")
    integer_labels(logits, labels, axis)
    where = _class_mask(where, logits, axis)
    axes = class_axes(axis, logits.ndim)
    if isinstance(axis, tuple):
        logits, where = _classes_last(logits, where, axes)
        class_axis = logits.ndim - 1
    else:
        class_axis = axes[0]
    label_logits = jnp.take_along_axis(
        logits, jnp.expand_dims(labels, class_axis), axis=class_axis
    ).take(0, axis=class_axis)
    loss = jax.nn.logsumexp(logits, axis=class_axis, where=where) - label_logits
    if where is None:
        return loss
    return jnp.where(jnp.any(where, class_axis), loss, 0.0)


def _classes_last(
    logits: jax.Array, where: jax.Array | None, axes: tuple[int, ...]
) -> tuple[jax.Array, jax.Array | None]:
    """Move the class ``axes`` last, in their given order, and merge them into one axis."""
    batch = tuple(i for i in range(logits.ndim) if i not in axes)

    def merge(x: jax.Array) -> jax.Array:
        x = x.transpose(batch + axes)
        return x.reshape((*x.shape[: len(batch)], -1))

    return merge(logits), None if where is None else merge(where)


@jax.custom_jvp
def _weighted_log_softmax(logits: jax.Array, weights: jax.Array) -> jax.Array:
    """``weights * log_softmax(logits)`` with ``0 * log 0 = 0``: where a weight is 0 the term
    is 0, even where the logit is ``-inf``."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return jnp.where(weights != 0.0, weights * log_probs, jnp.zeros_like(log_probs))


@_weighted_log_softmax.defjvp
def _weighted_log_softmax_jvp(primals, tangents):
    # Written out so that no inf * 0 of the -inf logits reaches the tangent: the derivative of
    # log_softmax along dx is dx - <softmax, dx>, and exp(-inf) = 0 drops those logits.
    logits, weights = primals
    logits_dot, weights_dot = tangents
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    value = jnp.where(weights != 0.0, weights * log_probs, jnp.zeros_like(log_probs))
    mean_dot = jnp.sum(logits_dot * jax.nn.softmax(logits, axis=-1), axis=-1, keepdims=True)
    return value, weights * logits_dot - weights * mean_dot + weights_dot * log_probs


@suggest_keywords
def safe_softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Softmax cross entropy with :math:`0 \log 0 = 0`: masked (``-inf``) logits are safe.

    The same as ``softmax_cross_entropy`` except where a logit is ``-inf`` and its label 0:
    there the term is 0 instead of ``0 * -inf = NaN``, in the value and the gradient.

    Args:
      logits: floating-point unnormalised log-probabilities, shape ``[..., num_classes]``
        (the class axis is the last one).
      labels: probability distributions (e.g. one-hot) whose shape broadcasts with ``logits``.

    Returns:
      The cross entropy of each example, shape ``[...]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> logits = jnp.array([[0.0, -jnp.inf], [1.0, 1.0]])
      >>> print(losses.safe_softmax_cross_entropy(logits, jnp.array([[1.0, 0.0], [0.5, 0.5]])))
      [-0.         0.6931472]
    """
    logits = floating("logits", logits)
    labels = jnp.asarray(labels)
    broadcastable("logits", logits, "labels", labels)
    return -jnp.sum(_weighted_log_softmax(logits, labels), axis=-1)


@suggest_keywords
def poly_loss_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: ArrayLike = 2.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Poly-1 loss: cross entropy plus ``epsilon`` times :math:`1 - p_t`.

    Writing the cross entropy as the series :math:`\sum_j \frac1j (1 - p_t)^j`, PolyLoss
    changes the coefficient of the first term (Leng et al., 2022, "PolyLoss: A Polynomial
    Expansion Perspective of Classification Loss Functions"):

    .. math::
      L_{\text{Poly-1}} = -\log p_t + \epsilon (1 - p_t),
      \quad 1 - p_t = \textstyle\sum_j y_j (1 - \operatorname{softmax}(x)_j).

    The paper recommends :math:`\epsilon = 2` for ImageNet classification and
    :math:`\epsilon = -1` for detection and instance segmentation.

    Args:
      logits: floating-point unnormalised log-probabilities, shape ``[..., num_classes]``.
      labels: floating-point probability distributions (e.g. one-hot), a shape that
        broadcasts with ``logits``.
      epsilon: the coefficient of the first polynomial term (keyword-only).
      axis: the class axis or axes.
      where: classes to include, of the shape of ``logits``.

    Returns:
      The losses, shape ``[...]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
      >>> print(losses.poly_loss_cross_entropy(logits, labels))
      [0.7587007 4.8473077]
    """
    logits = floating("logits", logits)
    labels = floating("labels", labels)
    broadcastable("logits", logits, "labels", labels)
    probs = jax.nn.softmax(logits, axis=axis, where=where)
    one_minus_pt = jnp.sum(labels * (1 - probs), axis=axis, where=where)
    cross_entropy = softmax_cross_entropy(logits, labels, axis=axis, where=where)
    return cross_entropy + epsilon * one_minus_pt
