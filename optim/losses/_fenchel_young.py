"""Fenchel-Young losses built from a max (convex regularised maximum) function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optim._keywords import suggest_keywords

__all__ = ["make_fenchel_young_loss"]


class MaxFun(Protocol):
    """A convex function of a score vector ``(n,) -> ()``, e.g. ``logsumexp``."""

    def __call__(self, scores, *args, **kwargs: Any) -> ArrayLike: ...


@suggest_keywords
def make_fenchel_young_loss(max_fun: MaxFun) -> Callable[..., jax.Array]:
    r"""The Fenchel-Young loss :math:`\ell(s, y) = \Omega^*(s) - \langle y, s \rangle` of a
    max function :math:`\Omega^*` (Blondel, Martins and Niculae, 2020, "Learning with
    Fenchel-Young Losses").

    ``max_fun=logsumexp`` gives the softmax cross entropy (up to the targets' entropy); its
    gradient is :math:`\nabla \Omega^*(s) - y`, the prediction minus the target.

    Args:
      max_fun: a function of one score vector ``(n,) -> ()``, with any extra arguments.

    Returns:
      ``fenchel_young_loss(scores, targets, *args, **kwargs)``: the loss over the last axis of
      ``scores`` and ``targets`` (any leading axes are batch axes, unlike jaxopt, which
      flattens), the extra arguments passed on to ``max_fun`` with every score vector. (optax
      drops extra keyword arguments without a word and rejects extra positional ones.)

    Examples:
      >>> import jax.numpy as jnp
      >>> from jax.scipy.special import logsumexp
      >>> from optim import losses
      >>> fy_loss = losses.make_fenchel_young_loss(max_fun=logsumexp)
      >>> print(fy_loss(jnp.array([[1.0, 2.0], [0.0, 0.0]]), jnp.array([[0.0, 1.0], [1.0, 0.0]])))
      [0.3132615 0.6931472]
    """
    vdot_last_axis = jnp.vectorize(jnp.vdot, signature="(n),(n)->()")

    def fenchel_young_loss(scores, targets, *args, **kwargs):
        # The extra arguments are closed over, not vectorized: each score vector gets them
        # whole. (Handed to jnp.vectorize itself, as optax does, keyword arguments would be
        # dropped silently and positional ones rejected.)
        max_last_axis = jnp.vectorize(lambda s: max_fun(s, *args, **kwargs), signature="(n)->()")
        return max_last_axis(scores) - vdot_last_axis(targets, scores)

    return fenchel_young_loss
