"""Small datasets that need no download, as JAX arrays.

A ``Dataset`` is a ``NamedTuple`` of ``x`` and ``y`` sharing a leading example axis, so it is a
pytree that ``optim.fit`` can batch directly and a ``loss_fn(params, batch)`` can read as
``batch.x`` and ``batch.y``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Dataset", "Digits", "digits", "linear_regression_uniform"]


class Dataset(NamedTuple):
    """Inputs ``x`` and targets ``y`` with the same number of rows.

    Attributes:
      x: inputs, shape ``(n, ...)``.
      y: targets, shape ``(n, ...)``.
    """

    x: jax.Array
    y: jax.Array


class Digits(NamedTuple):
    """The split, standardised digits data and the statistics used to standardise it.

    Attributes:
      train: a :class:`Dataset`: ``x`` float32 of shape ``(n_train, 64)``, ``y`` int32 of
        shape ``(n_train,)``.
      test: the same for the held-out examples.
      mean: float32 ``(64,)``, the per-pixel mean of the raw training split.
      scale: float32 ``(64,)``, the per-pixel standard deviation of the raw training split,
        1 for pixels that are constant there. Raw pixels are ``x * scale + mean``.
    """

    train: Dataset
    test: Dataset
    mean: jax.Array
    scale: jax.Array


def linear_regression_uniform(key: jax.Array, n: int = 100) -> Dataset:
    """The demo's regression data: ``x`` and ``y`` each ``(n, 1)``, float32, uniform on [0, 1).

    ``x`` and ``y`` are drawn independently, as the textbook TensorFlow 1 experiment draws them
    (``np.random.rand(100, 1)`` twice): there is no relationship to learn, and the best linear
    fit is close to the constant ``mean(y)`` (about 0.5), with an MSE near the variance of
    U(0, 1), 1/12.

    Args:
      key: a PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``).
      n: the number of examples.

    Returns:
      A :class:`Dataset` with ``x`` and ``y`` float32 of shape ``(n, 1)``.

    Examples:
      >>> import jax, models
      >>> data = models.datasets.linear_regression_uniform(jax.random.key(0), n=10)
      >>> data.x.shape, data.y.shape
      ((10, 1), (10, 1))
    """
    x_key, y_key = jax.random.split(key)
    return Dataset(
        x=jax.random.uniform(x_key, (n, 1), jnp.float32),
        y=jax.random.uniform(y_key, (n, 1), jnp.float32),
    )


def digits(test_fraction: float = 0.2, seed: int = 0) -> Digits:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), split and standardised.

    The split is stratified by class and shuffled with ``seed``. Each pixel is standardised as
    ``(raw - mean) / scale`` with ``mean`` and ``scale`` from the training split only, so no
    test statistic leaks into training; the returned ``Digits`` carries them for new inputs.

    Needs scikit-learn (a dependency of this package's tests).

    Args:
      test_fraction: the fraction of images held out for ``test``, in (0, 1).
      seed: seeds the shuffle before splitting.

    Returns:
      A :class:`Digits` ``(train, test, mean, scale)``.

    Examples:
      >>> import models
      >>> data = models.datasets.digits()
      >>> data.train.x.shape, data.test.x.shape, data.train.y.dtype
      ((1437, 64), (360, 64), dtype('int32'))
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction!r}.")
    # scikit-learn takes about a second to import; only this dataset needs it.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    raw = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        raw.data, raw.target, test_size=test_fraction, random_state=seed, stratify=raw.target
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    scale = np.where(std > 0.0, std, 1.0)

    def dataset(x: np.ndarray, y: np.ndarray) -> Dataset:
        return Dataset(x=jnp.asarray((x - mean) / scale, jnp.float32), y=jnp.asarray(y, jnp.int32))

    return Digits(
        train=dataset(x_train, y_train),
        test=dataset(x_test, y_test),
        mean=jnp.asarray(mean, jnp.float32),
        scale=jnp.asarray(scale, jnp.float32),
    )
