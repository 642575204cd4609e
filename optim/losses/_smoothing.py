"""Label smoothing."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optim._keywords import suggest_keywords
from optim.losses._validation import floating

__all__ = ["smooth_labels"]


@suggest_keywords
def smooth_labels(
    labels: ArrayLike,
    alpha: ArrayLike,
    *,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Label smoothing: mixes one-hot labels with the uniform distribution.

    .. math::
      \tilde y = (1 - \alpha) \, y + \alpha / K

    over the :math:`K` classes of ``axis`` (or, with ``where``, the :math:`K` included ones).
    Trained against smoothed labels, a classifier keeps its logit gaps small, which tends to
    improve its calibration (Müller, Kornblith and Hinton, 2019, "When does label smoothing
    help?").

    Args:
      labels: floating-point one-hot labels.
      alpha: the smoothing factor in :math:`[0, 1]`.
      axis: the class axis or axes (``None``: all of them).
      where: the classes that exist (a mask broadcasting with ``labels``); :math:`K` counts
        them per example.

    Returns:
      The smoothed labels, with the shape of ``labels``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> print(losses.smooth_labels(jnp.array([[0.0, 1.0, 0.0, 0.0]]), 0.2))
      [[0.05 0.85 0.05 0.05]]
    """
    labels = floating("labels", labels)
    if where is None:
        axes = range(labels.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
        num_classes = math.prod(labels.shape[a] for a in axes)
    else:
        num_classes = jnp.sum(where, axis, keepdims=True)
    return (1.0 - alpha) * labels + alpha / num_classes
