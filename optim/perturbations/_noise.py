"""Noise distributions for perturbed functions: a ``sample`` and a ``log_prob`` (up to a
constant) each, drawing the same numbers as ``jax.random`` for a given key."""

from __future__ import annotations

import jax
import jax.numpy as jnp


class Normal:
    r"""Standard normal distribution, :math:`\log p(z) = -z^2/2 + \text{const}`.

    Examples:
      >>> import jax
      >>> from optim.perturbations import Normal
      >>> Normal().sample(jax.random.key(0), (2,)).shape
      (2,)
    """

    def sample(
        self,
        key: jax.typing.ArrayLike,
        sample_shape: tuple[int, ...] = (),
        dtype: jax.typing.DTypeLike = float,
    ) -> jax.Array:
        """Standard normal samples of shape ``sample_shape`` (``jax.random.normal``)."""
        return jax.random.normal(key, sample_shape, dtype)

    def log_prob(self, inputs: jax.Array) -> jax.Array:
        """The log density at ``inputs`` up to its constant, :math:`-z^2/2`."""
        return -0.5 * inputs**2


class Gumbel:
    r"""Standard Gumbel distribution, :math:`\log p(z) = -z - e^{-z}`.

    Examples:
      >>> import jax
      >>> from optim.perturbations import Gumbel
      >>> Gumbel().sample(jax.random.key(0), (3,)).shape
      (3,)
    """

    def sample(
        self,
        key: jax.typing.ArrayLike,
        sample_shape: tuple[int, ...] = (),
        dtype: jax.typing.DTypeLike = float,
    ) -> jax.Array:
        """Standard Gumbel samples of shape ``sample_shape`` (``jax.random.gumbel``)."""
        return jax.random.gumbel(key, sample_shape, dtype)

    def log_prob(self, inputs: jax.Array) -> jax.Array:
        """The log density at ``inputs``, :math:`-z - e^{-z}`."""
        return -inputs - jnp.exp(-inputs)
