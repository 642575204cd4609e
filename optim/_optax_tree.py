"""Tree reductions in the order and dtypes that ``optax.tree`` uses.

A scalar made of a whole tree (a norm, an inner product) is summed leaf by leaf from a Python ``0``,
left to right, so that it has the leaves' own dtype (bf16 stays bf16, float64 stays float64)
and the same rounding as optax's. Every leaf, Python numbers included, takes part.
"""

from __future__ import annotations

import functools
import numbers
import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._tree import PyTree, check_prefix, check_same_structure


def leaf_sum(values: PyTree) -> Any:
    """``((0 + s_0) + s_1) + ...`` over the leaves' sums."""
    return functools.reduce(operator.add, [jnp.sum(v) for v in jax.tree.leaves(values)], 0)


def squared_norm(tree: PyTree) -> jax.Array:
    r""":math:`\sum_i |x_i|^2` over all leaves (real and imaginary parts squared)."""
    squares = jax.tree.map(lambda x: jnp.square(x.real) + jnp.square(x.imag), tree)
    return jnp.asarray(leaf_sum(squares))


def l1_norm(tree: PyTree) -> jax.Array:
    r""":math:`\sum_i |x_i|` over all leaves."""
    return jnp.asarray(leaf_sum(jax.tree.map(jnp.abs, tree)))


def _inner_leaf(x: Any, y: Any) -> jax.Array:
    # jnp.vdot at the highest precision: what optax 0.2.8 runs with this JAX (its version test
    # compares strings, '0.10' < '0.7.2', so it takes the vdot branch). For complex leaves a
    # full tensordot of conj(x) and y rounds differently.
    return jnp.vdot(jnp.asarray(x), jnp.asarray(y), precision=jax.lax.Precision.HIGHEST)


def inner(x: PyTree, y: PyTree) -> Any:
    r""":math:`\langle x, y \rangle = \sum_i \bar x_i y_i` over all leaves."""
    return functools.reduce(operator.add, jax.tree.leaves(jax.tree.map(_inner_leaf, x, y)), 0)


def check_like(a: PyTree, x: PyTree, name: str, reference_name: str = "x") -> None:
    """``ValueError`` naming ``name`` unless it has the leaf paths and shapes of ``x``."""
    check_same_structure(a, x, name, reference_name)


def broadcast_prefix(prefix: PyTree, tree: PyTree, name: str) -> PyTree:
    """``prefix`` (a scalar, or a tree whose leaves stand for subtrees of ``tree``) repeated to
    ``tree``'s structure; ``ValueError`` naming ``name`` when it is not a prefix."""
    check_prefix(prefix, tree, name, "tree")
    return jax.tree.map(lambda p, sub: jax.tree.map(lambda _: p, sub), prefix, tree)


def check_scalar(value: Any, name: str) -> None:
    """``TypeError`` naming ``name`` unless it is a number or an array, ``ValueError`` unless
    it is a scalar (a number or a 0-d array)."""
    if isinstance(value, bool) or not isinstance(
        value, (numbers.Number, np.generic, np.ndarray, jax.Array)
    ):
        raise TypeError(f"{name} must be a scalar number or array, got {type(value).__name__}")
    if np.shape(value) != ():
        raise ValueError(f"{name} must be a scalar, got an array of shape {np.shape(value)}")


def add_scaled(x: PyTree, scalar: Any, y: PyTree) -> PyTree:
    """:math:`x + s y` leaf by leaf (``None`` leaves of ``x`` stay ``None``)."""
    scalar = jnp.asarray(scalar)
    return jax.tree.map(
        lambda xi, yi: None if xi is None else xi + scalar * yi,
        x,
        y,
        is_leaf=lambda leaf: leaf is None,
    )
