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
    """Zero updates: zeros where ``updates`` holds floating arrays, ``None`` elsewhere."""
    return map_arrays(jnp.zeros_like, updates)


def cast_like(new: PyTree, old: PyTree) -> PyTree:
    """``new`` with every array cast to the dtype of its counterpart in ``old``.

    The two branches of ``lax.cond`` must return identical types; an inner optimizer from
    optax may return a state whose dtypes (or weak types) differ from the ones it was given.
    """
    return jax.tree.map(lambda n, o: jnp.asarray(n, o.dtype) if is_array(o) else n, new, old)


def all_finite(updates: PyTree) -> jax.Array:
    """True when no floating leaf of ``updates`` holds a NaN or an infinity."""
    checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(updates) if is_trainable(x)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.array(True)


@dataclasses.dataclass(frozen=True)
class StaticTree:
    """A pytree of Python values held as static metadata (a mask, labels).

    Hashed and compared by value, so re-creating an optimizer with an equal mask reuses the
    compiled program.
    """

    treedef: Any
    leaves: tuple

    def value(self) -> PyTree:
        return jax.tree.unflatten(self.treedef, self.leaves)
