"""Regression losses: squared error, L2, Huber, log-cosh and the cosine similarity/distance.

Each returns one value per element (per vector for the cosine ones): reduce it yourself, e.g.
``squared_error(p, t).mean()`` is the mean squared error.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optim._keywords import suggest_keywords
from optim.losses._validation import broadcastable, floating, same_shape

__all__ = [
    "cosine_distance",
    "cosine_similarity",
    "huber_loss",
    "l2_loss",
    "log_cosh",
    "squared_error",
]

Axis = int | tuple[int, ...] | None


def _errors(predictions: Any, targets: Any, *, exact_shape: bool) -> jax.Array:
    """``predictions - targets`` (``predictions`` when no targets) for floating predictions.

    ``exact_shape`` asks for identical shapes, as optax's squared error does; otherwise shapes
    that broadcast are accepted, as optax's Huber and log-cosh losses do.
    """
    predictions = floating("predictions", predictions)
    if targets is None:
        return predictions
    targets = jnp.asarray(targets)
    check = same_shape if exact_shape else broadcastable
    check("predictions", predictions, "targets", targets)
    return predictions - targets


@suggest_keywords
def squared_error(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    r"""Elementwise squared error :math:`(p - t)^2`.

    The mean squared error is ``squared_error(p, t).mean()``.

    Args:
      predictions: floating-point predictions of any shape.
      targets: targets of the same shape as ``predictions`` (no broadcasting); ``None`` means
        zeros.

    Returns:
      The squared differences, with the shape of ``predictions``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> print(losses.squared_error(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 0.0, 1.0])))
      [0. 4. 9.]
    """
    return _errors(predictions, targets, exact_shape=True) ** 2


@suggest_keywords
def l2_loss(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    r"""Elementwise L2 loss :math:`\frac12 (p - t)^2`, half the squared error.

    The 1/2 (Bishop's convention, not that of Hastie, Tibshirani and Friedman) makes the
    gradient with respect to the predictions exactly :math:`p - t`.

    Args:
      predictions: floating-point predictions of any shape.
      targets: targets of the same shape as ``predictions``; ``None`` means zeros.

    Returns:
      The halved squared differences, with the shape of ``predictions``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> print(losses.l2_loss(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 0.0, 1.0])))
      [0.  2.  4.5]
    """
    return 0.5 * squared_error(predictions, targets)


@suggest_keywords
def huber_loss(
    predictions: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    delta: ArrayLike = 1.0,
) -> jax.Array:
    r"""Elementwise Huber loss: quadratic near zero, linear far from it.

    With :math:`e = p - t`,

    .. math::
      \ell(e) = \begin{cases} \frac12 e^2 & |e| \le \delta \\
      \frac12 \delta^2 + \delta (|e| - \delta) & |e| > \delta, \end{cases}

    so gradient descent on it is gradient descent on ``l2_loss`` with the gradient clipped to
    :math:`[-\delta, \delta]` (Huber, 1964, "Robust Estimation of a Location Parameter").

    Args:
      predictions: floating-point predictions of any shape.
      targets: targets whose shape broadcasts with ``predictions``; ``None`` means zeros.
      delta: where the loss turns from quadratic to linear (keyword-only).

    Returns:
      The Huber losses, with the broadcast shape of ``predictions`` and ``targets``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> print(losses.huber_loss(jnp.array([0.5, -2.0, 3.0])))
      [0.125 1.5   2.5  ]
    """
    abs_errors = jnp.abs(_errors(predictions, targets, exact_shape=False))
    # min and difference rather than where(|e| <= delta, ...): exactly one of the two terms
    # carries the gradient at |e| == delta, so it is not counted twice there.
    quadratic = jnp.minimum(abs_errors, delta)
    linear = abs_errors - quadratic
    return 0.5 * quadratic**2 + delta * linear


@suggest_keywords
def log_cosh(predictions: ArrayLike, targets: ArrayLike | None = None) -> jax.Array:
    r"""Elementwise log-cosh loss :math:`\log\cosh(p - t)`.

    About :math:`e^2 / 2` for small errors :math:`e` and :math:`|e| - \log 2` for large ones: a
    twice-differentiable alternative to the Huber loss (Chen et al., 2019, "Log Hyperbolic
    Cosine Loss Improves Variational Auto-Encoder"). Computed as
    :math:`\operatorname{logaddexp}(e, -e) - \log 2`, finite for any finite :math:`e`.

    Args:
      predictions: floating-point predictions of any shape.
      targets: targets whose shape broadcasts with ``predictions``; ``None`` means zeros.

    Returns:
      The log-cosh losses, with the broadcast shape of ``predictions`` and ``targets``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> print(losses.log_cosh(jnp.array([0.0, 1.0, 100.0])))
      [ 0.         0.4337808 99.306854 ]
    """
    errors = _errors(predictions, targets, exact_shape=False)
    return jnp.logaddexp(errors, -errors) - jnp.log(2.0).astype(errors.dtype)


@suggest_keywords
def cosine_similarity(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 0.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Cosine similarity :math:`\frac{p \cdot t}{\|p\| \, \|t\|}` of vectors along ``axis``.

    Each vector is scaled to unit norm before the inner product, so large vectors do not
    overflow; a squared norm below ``epsilon`` is raised to ``epsilon`` first (with the default
    0, a zero vector gives NaN).

    Args:
      predictions: floating-point vectors, shape ``[..., dim]``.
      targets: floating-point vectors whose shape broadcasts with ``predictions``.
      epsilon: lower bound on the squared norms in the denominator (keyword-only).
      axis: the axis or axes holding the vectors.
      where: elements to include (boolean, broadcast with the inputs); others count as absent.

    Returns:
      The similarities in :math:`[-1, 1]`, shape ``[...]`` (``axis`` removed).

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> p = jnp.array([[1.0, 0.0], [1.0, 1.0]])
      >>> print(losses.cosine_similarity(p, jnp.array([[2.0, 0.0], [-1.0, -1.0]])))
      [ 1.         -0.99999994]
    """
    predictions = floating("predictions", predictions)
    targets = floating("targets", targets)
    # Normalise each side first, then take the inner product: the product of the two squared
    # norms could overflow where each alone does not.
    p_norm = jnp.sqrt(_squared_norm(predictions, axis, where).clip(epsilon))
    t_norm = jnp.sqrt(_squared_norm(targets, axis, where).clip(epsilon))
    return ((predictions / p_norm) * (targets / t_norm)).sum(axis=axis, where=where)


def _squared_norm(x: jax.Array, axis: Axis, where: ArrayLike | None) -> jax.Array:
    return jnp.square(x).sum(axis=axis, where=where, keepdims=True)


@suggest_keywords
def cosine_distance(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: ArrayLike = 0.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Cosine distance :math:`1 - \cos\theta`: 0 for parallel vectors, 2 for opposite ones.

    See ``cosine_similarity`` for the arguments.

    Args:
      predictions: floating-point vectors, shape ``[..., dim]``.
      targets: floating-point vectors whose shape broadcasts with ``predictions``.
      epsilon: lower bound on the squared norms in the denominator (keyword-only).
      axis: the axis or axes holding the vectors.
      where: elements to include.

    Returns:
      The distances in :math:`[0, 2]`, shape ``[...]`` (``axis`` removed).

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> p = jnp.array([[1.0, 0.0], [1.0, 1.0]])
      >>> print(losses.cosine_distance(p, jnp.array([[0.0, 3.0], [-1.0, -1.0]])))
      [1. 2.]
    """
    return 1.0 - cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis, where=where)
