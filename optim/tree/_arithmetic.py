"""Leaf-wise arithmetic on pytrees: sums, products, scaling, clipping and constant trees.

Every function maps over the leaves of its tree arguments with ``jax.tree.map`` (``None`` is an
empty subtree, so it is kept as it is), with the same arithmetic as ``optax.tree``: the results
are bit for bit optax's.
"""

from __future__ import annotations

import functools
import operator

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim._tree import PyTree


@suggest_keywords
def add(tree_x: PyTree, tree_y: PyTree, *other_trees: PyTree) -> PyTree:
    r"""Add two (or more) pytrees leaf by leaf: :math:`x + y + \dots`.

    Args:
      tree_x: first pytree.
      tree_y: second pytree, with the structure of ``tree_x``.
      *other_trees: more pytrees to add, with the same structure.

    Returns:
      the sum of the pytrees.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> x = {"a": jnp.array([1.0, 2.0])}
      >>> optim.tree.add(x, x, x)
      {'a': Array([3., 6.], dtype=float32)}
    """
    # A left fold starting from the integer 0, as Python's ``sum``: 0 + (-0.0) is +0.0.
    return jax.tree.map(
        lambda *leaves: functools.reduce(operator.add, leaves, 0), tree_x, tree_y, *other_trees
    )


@suggest_keywords
def sub(tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """Subtract two pytrees leaf by leaf: :math:`x - y`.

    Args:
      tree_x: first pytree.
      tree_y: second pytree, with the structure of ``tree_x``.

    Returns:
      the difference of the two pytrees.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.sub({"a": jnp.array([3.0])}, {"a": jnp.array([1.0])})
      {'a': Array([2.], dtype=float32)}
    """
    return jax.tree.map(operator.sub, tree_x, tree_y)


@suggest_keywords
def mul(tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """Multiply two pytrees leaf by leaf (element-wise): :math:`x \\odot y`.

    Args:
      tree_x: first pytree.
      tree_y: second pytree, with the structure of ``tree_x``.

    Returns:
      the product of the two pytrees.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.mul({"a": jnp.array([1.0, 2.0])}, {"a": jnp.array([3.0, 4.0])})
      {'a': Array([3., 8.], dtype=float32)}
    """
    return jax.tree.map(operator.mul, tree_x, tree_y)


@suggest_keywords
def div(tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """Divide two pytrees leaf by leaf (element-wise): :math:`x / y`.

    Args:
      tree_x: first pytree.
      tree_y: second pytree, with the structure of ``tree_x``.

    Returns:
      the quotient of the two pytrees.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.div({"a": jnp.array([1.0, 2.0])}, {"a": jnp.array([4.0, 4.0])})
      {'a': Array([0.25, 0.5 ], dtype=float32)}
    """
    return jax.tree.map(operator.truediv, tree_x, tree_y)


@suggest_keywords
def scale(scalar: jax.typing.ArrayLike, tree: PyTree) -> PyTree:
    """Multiply every leaf of a tree by a scalar: :math:`\\alpha x`.

    Args:
      scalar: scalar value :math:`\\alpha`.
      tree: pytree.

    Returns:
      a pytree with the structure of ``tree``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.scale(2.0, {"a": jnp.array([1.0, 2.0])})
      {'a': Array([2., 4.], dtype=float32)}
    """
    return jax.tree.map(lambda x: scalar * x, tree)


@suggest_keywords
def add_scale(tree_x: PyTree, scalar: jax.typing.ArrayLike, tree_y: PyTree) -> PyTree:
    """Add a scaled tree to another: :math:`x + \\alpha y`.

    Where ``tree_x`` holds ``None`` the result holds ``None`` (whatever ``tree_y`` has there).

    Args:
      tree_x: first pytree.
      scalar: scalar value :math:`\\alpha`.
      tree_y: second pytree, with the structure of ``tree_x``.

    Returns:
      a pytree with the structure of ``tree_x``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.add_scale({"a": jnp.array([1.0])}, 0.5, {"a": jnp.array([4.0])})
      {'a': Array([3.], dtype=float32)}
    """
    scalar = jnp.asarray(scalar)
    return jax.tree.map(
        lambda x, y: None if x is None else x + scalar * y,
        tree_x,
        tree_y,
        is_leaf=lambda x: x is None,
    )


@suggest_keywords
def conj(tree: PyTree) -> PyTree:
    """The complex conjugate of every leaf (real leaves are unchanged).

    Args:
      tree: pytree.

    Returns:
      a pytree with the structure of ``tree``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.conj({"a": jnp.array([1.0 + 2.0j])})
      {'a': Array([1.-2.j], dtype=complex64)}
    """
    return jax.tree.map(jnp.conj, tree)


@suggest_keywords
def real(tree: PyTree) -> PyTree:
    """The real part of every leaf.

    Args:
      tree: pytree.

    Returns:
      a pytree with the structure of ``tree``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.real({"a": jnp.array([1.0 + 2.0j])})
      {'a': Array([1.], dtype=float32)}
    """
    return jax.tree.map(jnp.real, tree)


@suggest_keywords
def clip(
    tree: PyTree,
    min_value: jax.typing.ArrayLike | None = None,
    max_value: jax.typing.ArrayLike | None = None,
) -> PyTree:
    """Clip every leaf to ``[min_value, max_value]`` element-wise.

    Args:
      tree: pytree.
      min_value: lower bound, or ``None`` (the default) for none.
      max_value: upper bound, or ``None`` (the default) for none.

    Returns:
      a pytree with the structure of ``tree``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.clip({"a": jnp.array([-2.0, 0.5, 3.0])}, -1.0, 1.0)
      {'a': Array([-1. ,  0.5,  1. ], dtype=float32)}
    """
    return jax.tree.map(lambda x: jnp.clip(x, min_value, max_value), tree)


@suggest_keywords
def where(condition: jax.typing.ArrayLike, tree_x: PyTree, tree_y: PyTree) -> PyTree:
    """Select ``tree_x``'s leaves where ``condition`` is True, ``tree_y``'s elsewhere.

    Args:
      condition: a boolean (scalar, or broadcastable against every leaf).
      tree_x: pytree chosen where ``condition`` is True.
      tree_y: pytree chosen where ``condition`` is False, with the structure of ``tree_x``.

    Returns:
      a pytree with the structure of ``tree_x``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.where(False, {"a": jnp.array([1.0])}, {"a": jnp.array([2.0])})
      {'a': Array([2.], dtype=float32)}
    """
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


@suggest_keywords
def batch_shape(tree: PyTree, shape: tuple[int, ...] = ()) -> PyTree:
    """Add leading batch dimensions ``shape`` to every leaf (by broadcasting).

    Args:
      tree: pytree.
      shape: the leading dimensions to add.

    Returns:
      a pytree whose leaves have shape ``(*shape, *leaf.shape)``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.batch_shape({"a": jnp.ones(3)}, (2,))["a"].shape
      (2, 3)
    """
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


@suggest_keywords
def zeros_like(tree: PyTree, dtype: jax.typing.DTypeLike | None = None) -> PyTree:
    """A tree of zeros with the structure, shapes and (unless ``dtype``) dtypes of ``tree``.

    Args:
      tree: pytree.
      dtype: optional dtype of every leaf of the result.

    Returns:
      an all-zeros pytree with the structure of ``tree``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.zeros_like({"a": jnp.ones(2)})
      {'a': Array([0., 0.], dtype=float32)}
    """
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


@suggest_keywords
def ones_like(tree: PyTree, dtype: jax.typing.DTypeLike | None = None) -> PyTree:
    """A tree of ones with the structure, shapes and (unless ``dtype``) dtypes of ``tree``.

    Args:
      tree: pytree.
      dtype: optional dtype of every leaf of the result.

    Returns:
      an all-ones pytree with the structure of ``tree``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.ones_like({"a": jnp.zeros(2)}, dtype=jnp.int32)
      {'a': Array([1, 1], dtype=int32)}
    """
    return jax.tree.map(lambda x: jnp.ones_like(x, dtype=dtype), tree)


@suggest_keywords
def full_like(
    tree: PyTree, fill_value: jax.typing.ArrayLike, dtype: jax.typing.DTypeLike | None = None
) -> PyTree:
    """A tree with the structure and shapes of ``tree``, every element ``fill_value``.

    Unlike the optimizers' state slots, the leaves keep ``tree``'s dtypes (or take ``dtype``)
    and every leaf is filled, whatever its dtype.

    Args:
      tree: pytree.
      fill_value: the value of every element.
      dtype: optional dtype of every leaf of the result.

    Returns:
      a pytree with the structure of ``tree``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.full_like({"a": jnp.zeros(2)}, 7.0)
      {'a': Array([7., 7.], dtype=float32)}
    """
    return jax.tree.map(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)
