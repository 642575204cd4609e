"""Affine models: the ``Linear`` layer, least-squares regression and softmax regression.

All three are the same pytree, ``x @ w + b`` with ``w`` of shape ``(in_features, out_features)``
and ``b`` of shape ``(out_features,)``; they differ only in how they are initialised and in
what their output means (a prediction, or class logits).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from optim._pytree import pytree_dataclass

__all__ = ["Linear", "LinearRegression", "LogisticRegression"]


def check_positive_int(name: str, value: object) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a positive integer."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")


@pytree_dataclass
class Linear:
    """An affine layer ``y = x @ w + b``.

    Attributes:
      w: weights of shape ``(in_features, out_features)``.
      b: bias of shape ``(out_features,)``.

    Examples:
      >>> import jax, jax.numpy as jnp, models
      >>> layer = models.Linear.init(jax.random.key(0), in_features=4, out_features=2)
      >>> layer(jnp.ones((5, 4))).shape
      (5, 2)
    """

    w: jax.Array
    b: jax.Array

    @classmethod
    def init(
        cls,
        key: jax.Array,
        in_features: int,
        out_features: int,
        dtype: DTypeLike = jnp.float32,
    ) -> Linear:
        """LeCun-normal ``w ~ N(0, 1 / in_features)`` (flax's ``Dense`` default), zero ``b``."""
        check_positive_int("in_features", in_features)
        check_positive_int("out_features", out_features)
        w = jax.random.normal(key, (in_features, out_features), dtype) / math.sqrt(in_features)
        return cls(w=w, b=jnp.zeros((out_features,), dtype))

    @property
    def in_features(self) -> int:
        return self.w.shape[0]

    @property
    def out_features(self) -> int:
        return self.w.shape[1]

    def __call__(self, x: ArrayLike) -> jax.Array:
        """``x @ w + b`` for ``x`` of shape ``(..., in_features)``: ``(..., out_features)``."""
        x = jnp.asarray(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"`x` must have shape (..., {self.in_features}) to match `w` of shape "
                f"{self.w.shape}, got {x.shape}."
            )
        return x @ self.w + self.b


@pytree_dataclass
class LinearRegression(Linear):
    """Linear regression ``y = x @ w + b``, trained with the mean squared error.

    ``init`` draws both ``w`` and ``b`` from a standard normal, as the textbook TensorFlow 1
    experiment does (``tf.random_normal``). Its bias has shape ``(1, 1)``; here it is
    ``(out_features,)``, which broadcasts the same way. ``closed_form`` gives the least-squares
    optimum directly.

    Attributes:
      w: weights of shape ``(in_features, out_features)``.
      b: bias of shape ``(out_features,)``.

    Examples:
      >>> import jax.numpy as jnp, models
      >>> x = jnp.array([[0.0], [1.0], [2.0]])
      >>> model = models.LinearRegression.closed_form(x, 2 * x + 1)
      >>> print(model.w, model.b)
      [[2.]] [1.]
    """

    @classmethod
    def init(
        cls,
        key: jax.Array,
        in_features: int,
        out_features: int = 1,
        dtype: DTypeLike = jnp.float32,
    ) -> LinearRegression:
        """Standard-normal ``w`` and ``b``, as the textbook TensorFlow 1 experiment draws them."""
        check_positive_int("in_features", in_features)
        check_positive_int("out_features", out_features)
        w_key, b_key = jax.random.split(key)
        return cls(
            w=jax.random.normal(w_key, (in_features, out_features), dtype),
            b=jax.random.normal(b_key, (out_features,), dtype),
        )

    @classmethod
    def closed_form(cls, x: ArrayLike, y: ArrayLike) -> LinearRegression:
        """The least-squares fit with intercept, ``argmin_{w,b} sum((x @ w + b - y) ** 2)``.

        Solved as ordinary least squares on centred data, ``w = lstsq(x - mean(x), y - mean(y))``
        and ``b = mean(y) - mean(x) @ w``, which is the same optimum as appending a column of
        ones to ``x`` but better conditioned in float32 when the features are far from zero.
        When ``x`` is rank deficient, ``w`` is the minimum-norm solution.

        Args:
          x: inputs of shape ``(n, in_features)``.
          y: targets of shape ``(n, out_features)``.

        Returns:
          The fitted :class:`LinearRegression`.
        """
        x, y = jnp.asarray(x), jnp.asarray(y)
        if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(
                "`x` and `y` must have shapes (n, in_features) and (n, out_features) with the "
                f"same n, got x: {x.shape} and y: {y.shape}; reshape a vector y with y[:, None]."
            )
        x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        w = jnp.linalg.lstsq(x - x_mean, y - y_mean)[0]
        return cls(w=w, b=y_mean - x_mean @ w)


@pytree_dataclass
class LogisticRegression(Linear):
    """Multi-class softmax (multinomial logistic) regression: ``logits = x @ w + b``.

    Train it with ``losses.softmax_cross_entropy_with_integer_labels``; ``jax.nn.softmax`` of
    the output gives class probabilities.

    Attributes:
      w: weights of shape ``(in_features, num_classes)``.
      b: bias of shape ``(num_classes,)``.

    Examples:
      >>> import jax, jax.numpy as jnp, models
      >>> model = models.LogisticRegression.init(jax.random.key(0), in_features=4, num_classes=3)
      >>> jax.nn.softmax(model(jnp.ones((1, 4))))  # zero start: every class equally likely
      Array([[0.33333334, 0.33333334, 0.33333334]], dtype=float32)
    """

    @classmethod
    def init(
        cls,
        key: jax.Array,
        in_features: int,
        num_classes: int,
        dtype: DTypeLike = jnp.float32,
    ) -> LogisticRegression:
        """Zero ``w`` and ``b``: every class starts equally likely.

        The loss is convex, so no random symmetry breaking is needed and a zero start makes
        runs comparable across optimizers. ``key`` is unused; it keeps the ``init(key, ...)``
        signature shared by every model.
        """
        del key
        check_positive_int("in_features", in_features)
        check_positive_int("num_classes", num_classes)
        return cls(
            w=jnp.zeros((in_features, num_classes), dtype),
            b=jnp.zeros((num_classes,), dtype),
        )
