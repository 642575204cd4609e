"""Self-supervised (metric learning) losses: NT-Xent and the triplet margin loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from optim._keywords import suggest_keywords
from optim.losses._regression import cosine_similarity
from optim.losses._validation import floating

__all__ = ["ntxent", "triplet_margin_loss"]


@suggest_keywords
def ntxent(
    embeddings: ArrayLike,
    labels: ArrayLike,
    temperature: ArrayLike = 0.07,
) -> jax.Array:
    r"""Normalized temperature-scaled cross entropy (NT-Xent), the SimCLR contrastive loss.

    With :math:`s_{ij}` the cosine similarity of embeddings :math:`i` and :math:`j` divided by
    the temperature :math:`\tau`, each positive pair :math:`(i, j)` (same label, :math:`i \ne
    j`) costs

    .. math::
      -\log \frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k:\, y_k \ne y_i} e^{s_{ik}}},

    and the loss is the mean over all positive pairs (Chen et al., 2020, "A Simple Framework
    for Contrastive Learning of Visual Representations").

    Args:
      embeddings: floating-point embeddings, shape ``[batch, features]``.
      labels: ``[batch]`` group labels: embeddings with equal labels form positive pairs
        (e.g. ``[0, 0, 1, 1]`` for two augmented views of two examples).
      temperature: the temperature :math:`\tau`.

    Returns:
      The scalar loss.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> embeddings = jnp.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
      >>> print(losses.ntxent(embeddings, jnp.array([0, 0, 1, 1]), temperature=0.5))
      0.29646033
    """
    embeddings = floating("embeddings", embeddings)
    labels = jnp.asarray(labels)
    if labels.ndim == 0 or embeddings.ndim == 0 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            "`labels` and `embeddings` must have the same leading (batch) dimension, got "
            f"embeddings: {embeddings.shape} and labels: {labels.shape}."
        )
    eps = jnp.finfo(embeddings.dtype).eps
    similarity = (
        cosine_similarity(embeddings[None, :, :], embeddings[:, None, :], epsilon=eps) / temperature
    )
    same_group = labels[:, None] == labels[None, :]
    negatives = jnp.logical_not(same_group)
    positives = same_group & jnp.logical_not(jnp.eye(same_group.shape[0], dtype=bool))
    negative_scores = jnp.where(negatives, similarity, -jnp.inf)
    positive_scores = jnp.where(positives, similarity, -jnp.inf)
    # Shift each row by its largest score (a constant: it cancels in the ratio) so that exp
    # cannot overflow at small temperatures.
    row_max = lax.stop_gradient(
        jnp.max(jnp.concatenate([negative_scores, positive_scores], axis=-1), axis=1, keepdims=True)
    )
    negative_scores = negative_scores - row_max
    positive_scores = positive_scores - row_max
    denominator = jnp.sum(jnp.exp(negative_scores), axis=1, keepdims=True) + jnp.exp(
        positive_scores
    )
    log_ratio = positive_scores - jnp.log(denominator)
    return -jnp.where(positives, log_ratio, 0.0).sum() / positives.sum()


@suggest_keywords
def triplet_margin_loss(
    anchors: ArrayLike,
    positives: ArrayLike,
    negatives: ArrayLike,
    axis: int = -1,
    norm_degree: ArrayLike = 2,
    margin: ArrayLike = 1.0,
    eps: ArrayLike = 1e-6,
) -> jax.Array:
    r"""Triplet margin loss :math:`\max(0, d(a, p) - d(a, n) + m)`.

    With :math:`d(x, y) = (\sum_i |x_i - y_i|^q + \epsilon)^{1/q}`, the :math:`L^q` distance
    along ``axis``, the anchor must be closer to the positive than to the negative by at least
    the margin :math:`m` (Balntas et al., 2016, "Learning local feature descriptors with
    triplets and shallow convolutional neural networks").

    Args:
      anchors: floating-point anchor embeddings, ``[batch, features]``.
      positives: floating-point embeddings similar to the anchors, the same shape.
      negatives: floating-point embeddings dissimilar to the anchors, the same shape.
      axis: the feature axis.
      norm_degree: the degree :math:`q` of the distance (2: Euclidean).
      margin: the margin :math:`m`.
      eps: added under the root, which keeps the gradient finite at zero distance.

    Returns:
      The losses, ``[batch]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> anchors = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> positives = jnp.array([[0.1, 0.1], [1.1, 1.1]])
      >>> negatives = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> print(losses.triplet_margin_loss(anchors, positives, negatives))
      [0.14142442 0.14142442]
    """
    anchors = floating("anchors", anchors)
    positives = floating("positives", positives)
    negatives = floating("negatives", negatives)

    # |x|^q, not x^q: for an odd q a signed sum is no distance, and for a fractional q a
    # negative base gives NaN. For an even integer q (2 by default) they are equal, and x^q
    # is kept: it also rounds the gradient as optax does.
    even = isinstance(norm_degree, (int, float, np.integer, np.floating)) and norm_degree % 2 == 0

    def distance(other: jax.Array) -> jax.Array:
        difference = anchors - other
        powered = jnp.power(difference if even else jnp.abs(difference), norm_degree)
        return jnp.power(powered.sum(axis) + eps, 1 / norm_degree)

    return jnp.maximum(distance(positives) - distance(negatives) + margin, 0)
