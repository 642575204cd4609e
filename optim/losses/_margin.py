"""Margin losses for classification: hinge, perceptron and sparsemax, binary and multiclass.

The binary ones take scores and targets in {-1, 1} (hinge, perceptron) or labels in {0, 1}
(sparsemax); the multiclass ones take a score per class (last axis) and integer labels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optim._keywords import suggest_keywords
from optim.losses._validation import same_shape
from optim.projections._simplex import _unit_simplex

__all__ = [
    "hinge_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "perceptron_loss",
    "sparsemax_loss",
]

# <scores, one_hot> over the last axis, any leading axes.
_dot_last_axis = jnp.vectorize(jnp.dot, signature="(n),(n)->()")


@suggest_keywords
def hinge_loss(predictor_outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Binary hinge loss :math:`\max(0, 1 - s t)` for targets :math:`t \in \{-1, 1\}`.

    Args:
      predictor_outputs: the scores :math:`s` of the decision function.
      targets: the targets, each -1 or 1 (a shape that broadcasts with the scores).

    Returns:
      The elementwise losses.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> print(losses.hinge_loss(jnp.array([2.0, 0.5, -1.0]), jnp.array([1.0, 1.0, 1.0])))
      [0.  0.5 2. ]
    """
    return jnp.maximum(0, 1 - predictor_outputs * targets)


@suggest_keywords
def perceptron_loss(predictor_outputs: ArrayLike, targets: ArrayLike) -> jax.Array:
    r"""Binary perceptron loss :math:`\max(0, -s t)` for targets :math:`t \in \{-1, 1\}`.

    Zero for every correctly signed score, however small its margin (Rosenblatt's perceptron).

    Args:
      predictor_outputs: the scores :math:`s`.
      targets: the targets, each -1 or 1, of the same shape as the scores.

    Returns:
      The elementwise losses.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> print(losses.perceptron_loss(jnp.array([2.0, 0.5, -1.0]), jnp.array([1.0, 1.0, 1.0])))
      [0. 0. 1.]
    """
    same_shape(
        "predictor_outputs",
        jnp.asarray(predictor_outputs),
        "targets",
        jnp.asarray(targets),
    )
    return jnp.maximum(0, -predictor_outputs * targets)


@suggest_keywords
def sparsemax_loss(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Binary sparsemax loss: zero exactly where ``sparse_sigmoid(logits) == labels``.

    The Fenchel-Young loss of the sparse sigmoid (Blondel, Martins and Niculae, 2020,
    "Learning with Fenchel-Young Losses", section 4.4): :math:`\operatorname{sparse\_plus}(-x)`
    for label 1 and :math:`\operatorname{sparse\_plus}(x)` for label 0, a quadratic between
    -1 and 1 and linear/zero outside.

    Args:
      logits: the scores :math:`x`.
      labels: the labels, each 0 or 1 (a shape that broadcasts with the logits).

    Returns:
      The elementwise losses.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> print(losses.sparsemax_loss(jnp.array([2.0, 0.0, -2.0]), jnp.array([1, 1, 1])))
      [0.   0.25 2.  ]
    """
    return jax.nn.sparse_plus(jnp.where(labels, -logits, logits))


@suggest_keywords
def multiclass_hinge_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass hinge loss :math:`\max_j (s_j + [j \ne y]) - s_y`.

    Zero when the true class scores at least 1 above every other one.

    Args:
      scores: the class scores, shape ``[..., num_classes]``.
      labels: integer labels, shape ``[...]``.

    Returns:
      The losses, shape ``[...]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> scores = jnp.array([[3.0, 1.0, 0.0], [0.5, 1.0, 0.0]])
      >>> print(losses.multiclass_hinge_loss(scores, jnp.array([0, 0])))
      [0.  1.5]
    """
    one_hot = jax.nn.one_hot(labels, jnp.shape(scores)[-1])
    return jnp.max(scores + 1.0 - one_hot, axis=-1) - _dot_last_axis(scores, one_hot)


@suggest_keywords
def multiclass_perceptron_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass perceptron loss :math:`\max_j s_j - s_y` (Collins, 2002).

    Args:
      scores: the class scores, shape ``[..., num_classes]``.
      labels: integer labels, shape ``[...]``.

    Returns:
      The losses, shape ``[...]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> scores = jnp.array([[3.0, 1.0, 0.0], [0.5, 1.0, 0.0]])
      >>> print(losses.multiclass_perceptron_loss(scores, jnp.array([0, 0])))
      [0.  0.5]
    """
    one_hot = jax.nn.one_hot(labels, jnp.shape(scores)[-1])
    return jnp.max(scores, axis=-1) - _dot_last_axis(scores, one_hot)


def _sparsemax_loss_one(scores: jax.Array, label: jax.Array) -> jax.Array:
    probs = _unit_simplex(scores)  # sparsemax: the projection onto the probability simplex
    # The Fenchel conjugate of the Gini negentropy, <p, s> + (1 - <p, p>) / 2, minus s_y.
    # As p sums to 1, <p, s> - s_y = <p, s - s_y>: the shift keeps the terms small. Entries
    # off the support are zeroed, so that an infinite score there does not give 0 * inf.
    shifted = (scores - scores[label]).at[label].set(0.0)
    return jnp.dot(probs, jnp.where(probs, shifted, 0.0)) + 0.5 * (1.0 - jnp.dot(probs, probs))


@suggest_keywords
def multiclass_sparsemax_loss(scores: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Multiclass sparsemax loss (Martins and Astudillo, 2016, "From Softmax to Sparsemax").

    The Fenchel-Young loss of sparsemax, the Euclidean projection :math:`p` of the scores onto
    the probability simplex:

    .. math::
      \ell(s, y) = \langle p, s \rangle + \tfrac12 (1 - \|p\|^2) - s_y,

    zero exactly when sparsemax puts all its mass on the label; its gradient is
    :math:`p - e_y`.

    Args:
      scores: the class scores, shape ``[batch, num_classes]``.
      labels: integer labels, shape ``[batch]``.

    Returns:
      The losses, shape ``[batch]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> scores = jnp.array([[3.0, 1.0, 0.0], [0.5, 1.0, 0.0]])
      >>> print(losses.multiclass_sparsemax_loss(scores, jnp.array([0, 0])))
      [0.     0.5625]
    """
    return jax.vmap(_sparsemax_loss_one)(jnp.asarray(scores), jnp.asarray(labels))
