"""A multilayer perceptron: ``Linear`` layers with an activation between them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from models.linear import Linear, check_positive_int
from optim._pytree import pytree_dataclass, static

__all__ = ["MLP"]


@pytree_dataclass
class MLP:
    """``logits = L_k(act(... act(L_1(x))))`` for affine layers ``L_i``; no activation on the last.

    Attributes:
      layers: the ``Linear`` layers, first to last (pytree children).
      activation: the elementwise nonlinearity between layers (static metadata, so it must be
        hashable; ``jax.nn`` functions are).

    Examples:
      >>> import jax, jax.numpy as jnp, models
      >>> mlp = models.MLP.init(jax.random.key(0), [4, 8, 3])
      >>> mlp(jnp.ones((5, 4))).shape
      (5, 3)
    """

    layers: tuple[Linear, ...]
    activation: Callable[[jax.Array], jax.Array] = static(jax.nn.relu)

    @classmethod
    def init(
        cls,
        key: jax.Array,
        sizes: Sequence[int],
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        dtype: DTypeLike = jnp.float32,
    ) -> MLP:
        """An MLP with layer widths ``sizes = [in, hidden..., out]``.

        Every layer gets ``Linear.init``: LeCun-normal weights ``N(0, 1 / fan_in)`` (flax's
        ``Dense`` default) and zero biases.

        Example: ``MLP.init(jax.random.PRNGKey(0), [64, 128, 10])`` maps ``(batch, 64)`` inputs
        to ``(batch, 10)`` logits.
        """
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(
                f"`sizes` must list at least the input and output widths, got {sizes!r}."
            )
        for i, size in enumerate(sizes):
            check_positive_int(f"sizes[{i}]", size)
        keys = jax.random.split(key, len(sizes) - 1)
        layers = tuple(
            Linear.init(k, n_in, n_out, dtype)
            for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
        )
        return cls(layers=layers, activation=activation)

    def __call__(self, x: ArrayLike) -> jax.Array:
        """Logits of shape ``(..., sizes[-1])`` for ``x`` of shape ``(..., sizes[0])``."""
        *hidden, last = self.layers
        for layer in hidden:
            x = self.activation(layer(x))
        return last(x)
