"""Tree helpers the combinators share: zero updates, dtype-matched branches, counts."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from optim._tree import (
    PyTree,
    is_array,
    is_trainable,
    map_arrays,
)


def zeros_like(updates: PyTree) -> PyTree:
    """Zero updates: zeros where ``updates`` holds floating arrays, ``None`` elsewhere.

    Args:
      updates: a pytree of updates.

    Returns:
      A pytree with the structure of ``updates``: zeros of each array's shape and dtype,
      ``None`` at the other leaves.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.transforms._common import zeros_like
      >>> zeros_like({"w": jnp.array([1.0, 2.0]), "act": jnp.tanh})
      {'act': None, 'w': Array([0., 0.], dtype=float32)}
    """
    return map_arrays(jnp.zeros_like, updates)


def cast_like(new: PyTree, old: PyTree) -> PyTree:
    """``new`` with every array cast to the dtype of its counterpart in ``old``.

    The two branches of ``lax.cond`` must return identical types; an inner optimizer from
    optax may return a state whose dtypes (or weak types) differ from the ones it was given.

    Args:
      new: a pytree (a new state or new updates).
      old: a pytree with the structure of ``new``, whose array dtypes are kept.

    Returns:
      ``new`` with each array cast to the dtype of its counterpart in ``old`` (other leaves
      as they are).

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.transforms._common import cast_like
      >>> cast_like({"count": jnp.array(1.0)}, {"count": jnp.array(0, jnp.int32)})
      {'count': Array(1, dtype=int32)}
    """
    return jax.tree.map(lambda n, o: jnp.asarray(n, o.dtype) if is_array(o) else n, new, old)


def all_finite(updates: PyTree) -> jax.Array:
    """True when no floating leaf of ``updates`` holds a NaN or an infinity.

    Args:
      updates: a pytree of updates (other leaves are ignored).

    Returns:
      A boolean scalar array (True for a tree without floating leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.transforms._common import all_finite
      >>> bool(all_finite({"w": jnp.array([1.0, jnp.inf])}))
      False
    """
    checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(updates) if is_trainable(x)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.array(True)


@dataclasses.dataclass(frozen=True)
class StaticTree:
    """A pytree of Python values held as static metadata (a mask, labels).

    Hashed and compared by value, so re-creating an optimizer with an equal mask reuses the
    compiled program.

    Attributes:
      treedef: the tree's structure.
      leaves: its leaves, a tuple of hashable Python values.
    """

    treedef: Any
    leaves: tuple

    def value(self) -> PyTree:
        return jax.tree.unflatten(self.treedef, self.leaves)
