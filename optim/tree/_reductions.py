"""Reductions of whole pytrees to one value: sums, extrema, inner products, norms, sizes.

The leaves are reduced one by one and the per-leaf results combined in leaf order, as
``optax.tree`` does, so the values are bit for bit optax's. Unlike the optimizers' own
reductions (``optim._tree.tree_sum``, ``global_norm``), nothing is upcast: an integer tree
has an integer sum, a bfloat16 tree a bfloat16 one.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim._tree import PyTree, inner_product, keystr


def _leaf_vdot(path: Any, a: Any, b: Any) -> jax.Array:
    r""":math:`\sum_i \bar a_i b_i` for two arrays of one shape, at the highest precision
    (``jnp.vdot``, as optax on this JAX version)."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape != b.shape:
        raise ValueError(
            f"tree_x{keystr(path)} has shape {a.shape} but tree_y{keystr(path)} has shape "
            f"{b.shape}; vdot needs leaves of equal shapes"
        )
    return inner_product(a, b)


@suggest_keywords
def vdot(tree_x: PyTree, tree_y: PyTree) -> jax.typing.ArrayLike:
    r"""The inner product of two pytrees: :math:`\sum_{\ell} \sum_i \bar x_{\ell i} y_{\ell i}`.

    The first tree is conjugated where complex. Each leaf's product is computed at the highest
    matmul precision; the result has the leaves' (promoted) dtype.

    Args:
      tree_x: first pytree.
      tree_y: second pytree, with the structure and leaf shapes of ``tree_x``.

    Returns:
      the inner product of ``tree_x`` and ``tree_y``, a scalar.

    Raises:
      ValueError: a leaf of ``tree_y`` has another shape than ``tree_x``'s.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.vdot(
      ...     {"a": jnp.array([1, 2]), "b": jnp.array([1, 2])},
      ...     {"a": jnp.array([-1, -1]), "b": jnp.array([1, 1])},
      ... )
      Array(0, dtype=int32)
    """
    products = jax.tree_util.tree_map_with_path(_leaf_vdot, tree_x, tree_y)
    return jax.tree.reduce(operator.add, products, initializer=0)


@suggest_keywords
def sum(tree: PyTree, associative_reduction: bool = False) -> jax.typing.ArrayLike:
    """The sum of all the elements of all the leaves of a pytree.

    Args:
      tree: pytree.
      associative_reduction: combine the per-leaf sums as a balanced tree of additions
        (``jax.tree.reduce_associative``) instead of left to right: faster to compile for
        trees of many leaves, with rounding that may differ in the last bits.

    Returns:
      a scalar (the integer 0 for a tree without leaves).

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.sum({"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)})
      Array(6., dtype=float32)
    """
    sums = jax.tree.map(jnp.sum, tree)
    if associative_reduction:
        return jax.tree.reduce_associative(operator.add, sums, identity=0)
    return jax.tree.reduce(operator.add, sums, initializer=0)


def _extremum(tree: PyTree, leaf_fn: Any, combine: Any, empty: float) -> jax.typing.ArrayLike:
    """``combine`` over ``leaf_fn`` of every non-empty leaf, starting from ``empty``."""
    per_leaf = jax.tree.map(lambda x: None if jnp.size(x) == 0 else leaf_fn(x), tree)
    return jax.tree.reduce(combine, per_leaf, initializer=empty)


@suggest_keywords
def max(tree: PyTree) -> jax.typing.ArrayLike:
    """The largest element of all the leaves of a pytree (empty leaves are skipped).

    Args:
      tree: pytree.

    Returns:
      a scalar (``-inf`` for a tree without elements).

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.max({"a": jnp.array([1.0, 5.0]), "b": jnp.array(3.0)})
      Array(5., dtype=float32)
    """
    return _extremum(tree, jnp.max, jnp.maximum, -float("inf"))


@suggest_keywords
def min(tree: PyTree) -> jax.typing.ArrayLike:
    """The smallest element of all the leaves of a pytree (empty leaves are skipped).

    Args:
      tree: pytree.

    Returns:
      a scalar (``inf`` for a tree without elements).

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.min({"a": jnp.array([1.0, 5.0]), "b": jnp.array(3.0)})
      Array(1., dtype=float32)
    """
    return _extremum(tree, jnp.min, jnp.minimum, float("inf"))


@suggest_keywords
def size(tree: PyTree) -> int:
    """The total number of elements of all the leaves of a pytree.

    Args:
      tree: pytree.

    Returns:
      a Python int.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.size({"a": jnp.ones((2, 3)), "b": jnp.ones(4)})
      10
    """
    return functools.reduce(operator.add, (jnp.size(x) for x in jax.tree.leaves(tree)), 0)


def _abs_squared(x: jax.Array) -> jax.Array:
    """:math:`|x|^2` as :math:`\\Re(x)^2 + \\Im(x)^2`."""
    return jnp.square(x.real) + jnp.square(x.imag)


_INF_NAMES = ("inf", "infinity")


@suggest_keywords
def norm(
    tree: PyTree,
    ord: int | str | float | None = None,
    squared: bool = False,
) -> jax.Array:
    r"""The vector norm of a pytree, all its leaves' elements seen as one vector.

    :math:`\|x\|_2 = \sqrt{\sum_i |x_i|^2}` (``ord`` ``None`` or 2), :math:`\|x\|_1 = \sum_i
    |x_i|` (``ord=1``) or :math:`\|x\|_\infty = \max_i |x_i|` (``ord`` ``jnp.inf``, ``"inf"``
    or ``"infinity"``).

    Args:
      tree: pytree.
      ord: the order of the norm: ``None``, 1, 2 or infinity.
      squared: return the norm squared.

    Returns:
      a scalar array.

    Raises:
      ValueError: ``ord`` is none of the above.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])})
      Array(5., dtype=float32)
      >>> optim.tree.norm({"a": jnp.array([3.0]), "b": jnp.array([-4.0])}, ord=1)
      Array(7., dtype=float32)
    """
    if ord is None or ord == 2:
        total = sum(jax.tree.map(_abs_squared, tree))
        return jnp.array(total if squared else jnp.sqrt(total))
    if ord == 1:
        result = sum(jax.tree.map(jnp.abs, tree))
    elif ord == jnp.inf or (isinstance(ord, str) and ord in _INF_NAMES):
        result = max(jax.tree.map(jnp.abs, tree))
    else:
        raise ValueError(
            f"ord must be None, 1, 2, jnp.inf, 'inf' or 'infinity' for a tree norm, got {ord!r}"
        )
    return jnp.array(_abs_squared(result) if squared else result)


@suggest_keywords
def allclose(
    a: PyTree,
    b: PyTree,
    rtol: jax.typing.ArrayLike = 1e-05,
    atol: jax.typing.ArrayLike = 1e-08,
    equal_nan: bool = False,
) -> jax.typing.ArrayLike:
    r"""Whether two pytrees are equal within a tolerance, element by element.

    :math:`|a_i - b_i| \le \text{atol} + \text{rtol}\,|b_i|` for every element of every leaf,
    as :func:`jax.numpy.allclose`.

    Args:
      a: a pytree.
      b: a pytree with the structure of ``a``.
      rtol: relative tolerance.
      atol: absolute tolerance.
      equal_nan: whether NaNs at the same place count as equal.

    Returns:
      a boolean scalar array (``True`` for trees without leaves).

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> bool(optim.tree.allclose({"a": jnp.array(1.0)}, {"a": jnp.array(1.0 + 1e-7)}))
      True
    """
    close = jax.tree.map(
        lambda x, y: jnp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan), a, b
    )
    return functools.reduce(operator.and_, jax.tree.leaves(close), True)
