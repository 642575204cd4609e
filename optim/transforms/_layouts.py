"""Layouts: run a transformation on the updates ravelled into one vector (``flatten``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_params,
    is_trainable,
    map_arrays,
)
from optim.base import Transformation, as_transformation


def _ravel(tree: PyTree) -> jax.Array:
    """All floating leaves raveled and concatenated, in leaf order (dtypes promoted)."""
    leaves = [jnp.ravel(x) for x in jax.tree.leaves(tree) if is_trainable(x)]
    return jnp.concatenate(leaves) if leaves else jnp.zeros([0], jnp.float32)


def _unravel(flat: jax.Array, like: PyTree) -> PyTree:
    """Split ``flat`` into the shapes and dtypes of the floating leaves of ``like``."""
    leaves = [x for x in jax.tree.leaves(like) if is_trainable(x)]
    pieces = iter(jnp.split(flat, np.cumsum([x.size for x in leaves])[:-1]))

    def piece(x: jax.Array) -> jax.Array:
        p = next(pieces).reshape(x.shape)
        # A real leaf raveled with complex ones: its imaginary part is 0 by construction.
        p = p.real if jnp.iscomplexobj(p) and not jnp.iscomplexobj(x) else p
        return p.astype(x.dtype)

    return map_arrays(piece, like)


@pytree_dataclass
class Flatten(Transformation):
    r"""Run ``inner`` on one vector: all floating leaves raveled and concatenated.

    :math:`u = \operatorname{unravel}(T(\operatorname{ravel}(g)))`; fewer, larger kernels
    for trees of many small arrays. The state is the inner one, built for the vector.
    """

    inner: Any

    def init(self, params: PyTree) -> Any:
        check_params(params)
        return self.inner.init(_ravel(params))

    def update(self, updates, state, params=None, **extra_args):
        flat_params = None if params is None else _ravel(params)
        flat, state = self.inner.update(_ravel(updates), state, flat_params, **extra_args)
        return _unravel(flat, updates), state


@suggest_keywords
def flatten(inner: Any) -> Flatten:
    """Apply ``inner`` to all parameters raveled into one vector (``optax.flatten``)."""
    return Flatten(as_transformation(inner, "inner"))
