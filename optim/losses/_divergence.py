"""Kullback-Leibler divergences between a predicted distribution (given as log-probabilities)
and a target distribution (given as probabilities or log-probabilities)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optim._keywords import suggest_keywords
from optim._warnings import warn_user
from optim.losses._validation import floating

__all__ = [
    "convex_kl_divergence",
    "generalized_kl_divergence",
    "kl_divergence",
    "kl_divergence_with_log_targets",
]

Axis = int | tuple[int, ...] | None


@suggest_keywords
def kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(t \,\|\, p) = \sum_i t_i (\log t_i -
    \log p_i)` (Kullback and Leibler, 1951).

    The information lost when the predicted distribution is used in place of the target one.
    A zero target contributes 0 (:math:`0 \log 0 = 0`).

    Args:
      log_predictions: floating-point log-probabilities of the prediction, ``[..., dim]``.
      targets: floating-point probabilities of the target, broadcasting with them.
      axis: the axis or axes holding the distributions.
      where: elements to include in the sum.

    Returns:
      The divergences, shape ``[...]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> log_p = jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1]]))
      >>> print(losses.kl_divergence(log_p, jnp.array([[0.5, 0.5], [1.0, 0.0]])))
      [0.         0.10536055]
    """
    log_predictions = floating("log_predictions", log_predictions)
    targets = floating("targets", targets)
    log_targets = jnp.where(targets == 0, 0, jnp.log(targets))
    return jnp.sum(targets * (log_targets - log_predictions), axis=axis, where=where)


@suggest_keywords
def kl_divergence_with_log_targets(
    log_predictions: ArrayLike,
    log_targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Kullback-Leibler divergence with the targets, too, given as log-probabilities.

    .. math::
      \mathrm{KL}(t \,\|\, p) = \sum_i e^{\log t_i} (\log t_i - \log p_i).

    Args:
      log_predictions: floating-point log-probabilities of the prediction, ``[..., dim]``.
      log_targets: floating-point log-probabilities of the target, broadcasting with them.
      axis: the axis or axes holding the distributions.
      where: elements to include in the sum.

    Returns:
      The divergences, shape ``[...]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> log_p = jnp.log(jnp.array([0.9, 0.1]))
      >>> print(losses.kl_divergence_with_log_targets(log_p, jnp.log(jnp.array([0.5, 0.5]))))
      0.51082563
    """
    log_predictions = floating("log_predictions", log_predictions)
    log_targets = floating("log_targets", log_targets)
    terms = jnp.exp(log_targets) * (log_targets - log_predictions)
    return jnp.sum(terms, axis=axis, where=where)


@suggest_keywords
def generalized_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Generalized Kullback-Leibler divergence, for unnormalised distributions.

    .. math::
      D(t \,\|\, p) = \sum_i t_i (\log t_i - \log p_i) + \sum_i (p_i - t_i),

    the Bregman divergence of :math:`x \log x - x` (Boyd and Vandenberghe, "Convex
    Optimization", p. 90); it equals ``kl_divergence`` when both sides sum to 1.

    Args:
      log_predictions: floating-point log of the (unnormalised) prediction, ``[..., dim]``.
      targets: floating-point (unnormalised) non-negative targets, broadcasting with them.
      axis: the axis or axes holding the distributions.
      where: elements to include in the sums.

    Returns:
      The divergences, shape ``[...]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> log_p = jnp.log(jnp.array([1.0, 2.0]))
      >>> print(losses.generalized_kl_divergence(log_p, jnp.array([2.0, 2.0])))
      0.38629436
    """
    divergence = kl_divergence(log_predictions, targets, axis=axis, where=where)
    mass_gap = jnp.sum(jnp.exp(log_predictions) - targets, axis=axis, where=where)
    return divergence + mass_gap


@suggest_keywords
def convex_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Deprecated name of ``generalized_kl_divergence`` (as in optax): warns, then calls it.

    Args:
      log_predictions: floating-point log of the (unnormalised) prediction, ``[..., dim]``.
      targets: floating-point (unnormalised) non-negative targets, broadcasting with them.
      axis: the axis or axes holding the distributions.
      where: elements to include in the sums.

    Returns:
      ``generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)``.

    Examples:
      >>> import warnings
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> log_p, t = jnp.log(jnp.array([0.25, 0.75])), jnp.array([0.5, 0.5])
      >>> with warnings.catch_warnings(record=True) as caught:
      ...     warnings.simplefilter("always")
      ...     kl = losses.convex_kl_divergence(log_p, t)
      >>> print(caught[0].category.__name__, round(float(kl), 4))
      DeprecationWarning 0.1438
    """
    warn_user(
        "The function convex_kl_divergence is deprecated. Please use generalized_kl_divergence "
        "instead.",
        DeprecationWarning,
    )
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)
