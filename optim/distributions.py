"""A diagonal Gaussian parameterized by its mean and log standard deviation (``multi_normal``).

optax's ``multi_normal``: the search distribution of evolution strategies and of Monte Carlo
gradient estimators, whose parameters (``loc``, ``log_scale``) are what an optimizer updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass

__all__ = ["MultiNormalDiagFromLogScale", "multi_normal"]


@pytree_dataclass
class MultiNormalDiagFromLogScale:
    r"""The Gaussian :math:`\mathcal N(\mu, \mathrm{diag}(\sigma^2))` with
    :math:`\sigma = e^{s}`: mean ``loc`` (:math:`\mu`) and log standard deviation
    ``log_scale`` (:math:`s`), broadcast against each other.

    A pytree (its two arrays are the leaves), so it can be passed through ``jit``.

    Attributes:
      loc: the mean :math:`\mu`, a floating array.
      log_scale: the log standard deviation :math:`s`, a floating array broadcastable with
        ``loc``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from optim.distributions import MultiNormalDiagFromLogScale
      >>> dist = MultiNormalDiagFromLogScale(jnp.zeros(2), jnp.zeros(2))
      >>> dist.sample((3,), jax.random.key(0)).shape
      (3, 2)
      >>> round(float(dist.log_prob(jnp.zeros(2))), 4)  # -log(2 pi)
      -1.8379
    """

    loc: jax.Array
    log_scale: jax.Array

    @property
    def _param_shape(self) -> tuple[int, ...]:
        return jax.lax.broadcast_shapes(jnp.shape(self.loc), jnp.shape(self.log_scale))

    def sample(self, shape: Sequence[int], key: jax.Array) -> jax.Array:
        r"""Draws of shape ``shape + param_shape``: :math:`\mu + \sigma \odot z`,
        :math:`z \sim \mathcal N(0, I)`."""
        sample_shape = tuple(shape) + self._param_shape
        return jax.random.normal(key, shape=sample_shape) * jnp.exp(self.log_scale) + self.loc

    def log_prob(self, x: Any) -> jax.Array:
        """The log density at ``x``, summed over the parameter axes (the trailing ones)."""
        log_density = norm.logpdf(x, loc=self.loc, scale=jnp.exp(self.log_scale))
        return jnp.sum(log_density, axis=[-(i + 1) for i in range(len(self._param_shape))])

    @property
    def params(self) -> list[jax.Array]:
        """``[loc, log_scale]``: the parameters to optimize."""
        return [self.loc, self.log_scale]


@suggest_keywords
def multi_normal(loc: Any, log_scale: Any) -> MultiNormalDiagFromLogScale:
    r"""A diagonal Gaussian with mean ``loc`` and standard deviation ``exp(log_scale)``.

    Args:
      loc: the mean :math:`\mu`, an array.
      log_scale: :math:`s = \log\sigma`, an array broadcastable with ``loc``.

    Returns:
      A ``MultiNormalDiagFromLogScale`` with ``sample(shape, key)``, ``log_prob(x)`` and the
      properties ``params`` (``[loc, log_scale]``) and ``log_scale``.

    Raises:
      ValueError: the shapes of ``loc`` and ``log_scale`` do not broadcast.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optim
      >>> dist = optim.multi_normal(jnp.zeros(2), jnp.zeros(2))
      >>> dist.sample((5,), jax.random.key(0)).shape
      (5, 2)
      >>> print(f"{dist.log_prob(jnp.zeros(2)):.4f}")
      -1.8379
    """
    loc, log_scale = jnp.asarray(loc), jnp.asarray(log_scale)
    try:
        jax.lax.broadcast_shapes(loc.shape, log_scale.shape)
    except ValueError:
        raise ValueError(
            "Incompatible shapes for broadcasting: loc and log_scale must have shapes that "
            f"broadcast together, got {loc.shape} and "
            f"{log_scale.shape}"
        ) from None
    return MultiNormalDiagFromLogScale(loc=loc, log_scale=log_scale)
