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
    Built by :func:`optim.flatten`.

    Attributes:
      inner: the wrapped transformation, run on the vector.
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
    r"""Apply ``inner`` to all parameters raveled into one vector (``optax.flatten``).

    .. math:: u = \operatorname{unravel}(T(\operatorname{ravel}(g)))

    Every floating leaf is raveled and concatenated in leaf order (dtypes promoted to a
    common one); ``params`` and the updates alike. Fewer, larger kernels for trees of many
    small arrays; the updates come back in each leaf's shape and dtype. Leaves that are not
    arrays (``None``, functions) are left out of the vector and get ``None`` updates.

    Args:
      inner: the transformation to run on the vector (ours or optax's); it must not depend
        on the tree's structure (a mask or labels would see one vector).

    Returns:
      A ``Flatten`` transformation (an :class:`optim.GradientTransformation`) whose state is
      ``inner``'s state for the vector.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.flatten(optim.sgd(learning_rate=0.1, momentum=0.9))
      >>> params = {"b": jnp.array([0.5]), "w": jnp.array([1.0, 2.0])}
      >>> state = tx.init(params)
      >>> state[0].trace.shape  # one momentum vector for the three parameters
      (3,)
      >>> updates, state = tx.update({"b": jnp.array([3.0]), "w": jnp.array([1.0, -2.0])}, state)
      >>> print(updates["b"], updates["w"])
      [-0.3] [-0.1  0.2]
    """
    return Flatten(as_transformation(inner, "inner"))
