"""Which examples step ``t`` trains on: all of them, a random draw, or the next slice of an epoch.

Every choice is a function of ``(key, t)`` and the carried epoch permutation only, so a run cut
into chunks, or stopped and resumed from a checkpoint, draws exactly the same batches.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from optim._tree import PyTree


def take(data: PyTree, index: jax.Array) -> PyTree:
    return jax.tree.map(lambda x: x[index], data)


@dataclasses.dataclass(frozen=True)
class RandomBatches:
    """``batch_size`` examples drawn without replacement, independently at each step.

    Step ``t`` uses ``jax.random.choice(jax.random.fold_in(key, t), n, (batch_size,),
    replace=False)``; ``batch_size == n`` is gradient descent on the whole data set.

    Attributes:
      n: the number of examples.
      batch_size: examples per step, at most ``n``.
      partial_size: always 0: every batch has ``batch_size`` examples.
    """

    n: int
    batch_size: int
    partial_size: int = 0

    def batch(self, data: PyTree, key: Any, t: jax.Array, perm: Any, size: int) -> PyTree:
        del perm
        if size == self.n:
            return data
        index = jax.random.choice(jax.random.fold_in(key, t), self.n, (size,), replace=False)
        return take(data, index)

    def next_perm(self, perm: Any, key: Any, t: jax.Array) -> Any:
        del key, t
        return perm

    def initial_perm(self) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class EpochBatches:
    """Epochs: a fresh permutation ``jax.random.permutation(fold_in(key, epoch), n)`` at the
    start of each epoch, cut into consecutive batches of ``batch_size``.

    With ``drop_last=False`` the last ``n % batch_size`` examples form a smaller final batch
    (``partial_size``); with ``drop_last=True`` they are left out of that epoch.

    Attributes:
      n: the number of examples.
      batch_size: examples per full batch, at most ``n``.
      drop_last: leave out (True) or keep as a smaller final batch (False) the last
        ``n % batch_size`` examples of each epoch.
    """

    n: int
    batch_size: int
    drop_last: bool = True

    @property
    def partial_size(self) -> int:
        return 0 if self.drop_last else self.n % self.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size + (1 if self.partial_size else 0)

    def next_perm(self, perm: jax.Array, key: Any, t: jax.Array) -> jax.Array:
        epoch, position = jnp.divmod(t, self.steps_per_epoch)
        return jax.lax.cond(
            position == 0,
            lambda: jax.random.permutation(jax.random.fold_in(key, epoch), self.n).astype(
                jnp.int32
            ),
            lambda: perm,
        )

    def batch(self, data: PyTree, key: Any, t: jax.Array, perm: jax.Array, size: int) -> PyTree:
        del key
        start = (t % self.steps_per_epoch) * self.batch_size
        return take(data, jax.lax.dynamic_slice(perm, (start,), (size,)))

    def is_partial(self, t: jax.Array) -> jax.Array:
        return (t % self.steps_per_epoch) == self.steps_per_epoch - 1

    def initial_perm(self) -> jax.Array:
        return jnp.zeros((self.n,), jnp.int32)
