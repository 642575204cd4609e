"""Dtypes of pytrees: cast every leaf, cast like another tree, read a tree's dtype."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim._tree import PyTree, keystr

_MIXED_DTYPE_HANDLERS = (None, "promote", "highest", "lowest")


@suggest_keywords
def cast(tree: PyTree, dtype: jax.typing.DTypeLike | None) -> PyTree:
    """Cast every leaf of ``tree`` to ``dtype``; ``tree`` itself when ``dtype`` is None.

    Args:
      tree: the pytree to cast (its leaves must have ``astype``).
      dtype: the dtype to cast to, or ``None`` to leave the tree as it is.

    Returns:
      the tree with its leaves cast to ``dtype``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.cast({"a": jnp.array(1.0)}, jnp.bfloat16)
      {'a': Array(1, dtype=bfloat16)}
    """
    if dtype is None:
        return tree
    return jax.tree.map(lambda x: x.astype(dtype), tree)


@suggest_keywords
def cast_like(tree: PyTree, other_tree: PyTree) -> PyTree:
    """Cast each leaf of ``tree`` to the dtype of the leaf of ``other_tree`` at its place.

    A leaf whose counterpart has no dtype (a Python number) is left as it is.

    Args:
      tree: the pytree to cast.
      other_tree: a pytree with the structure of ``tree`` whose dtypes to take.

    Returns:
      the tree with its leaves cast.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.cast_like({"a": jnp.array(1.0)}, {"a": jnp.array(2, jnp.int32)})
      {'a': Array(1, dtype=int32)}
    """
    return jax.tree.map(
        lambda x, other: x.astype(other.dtype) if hasattr(other, "dtype") else x,
        tree,
        other_tree,
    )


def _lower(dtype1: Any, dtype2: Any) -> Any:
    """The one of two dtypes that promotes to the other (ValueError if neither does)."""
    promoted = jnp.promote_types(dtype1, dtype2)
    if promoted == dtype1:
        return dtype2
    if promoted == dtype2:
        return dtype1
    raise ValueError(
        f"dtypes {dtype1} and {dtype2} are not ordered: neither promotes to the other (their "
        f"common type is {promoted}); use mixed_dtype_handler='promote'"
    )


def _higher(dtype1: Any, dtype2: Any) -> Any:
    """The one of two dtypes the other promotes to (ValueError if neither does)."""
    return dtype1 if _lower(dtype1, dtype2) == dtype2 else dtype2


@suggest_keywords
def dtype(tree: PyTree, mixed_dtype_handler: str | None = None) -> jax.typing.DTypeLike:
    """The dtype of a pytree's leaves.

    For a tree without leaves, JAX's default float dtype (that of ``jnp.asarray([])``).

    Args:
      tree: the pytree.
      mixed_dtype_handler: what to do when the leaves have different dtypes:

        * ``None``: raise ``ValueError`` naming the leaves that differ from the first;
        * ``"promote"``: their common type (:func:`jax.numpy.promote_types`);
        * ``"highest"`` / ``"lowest"``: the highest / lowest of them, where ``a <= b`` when
          ``a`` promotes to ``b``; ``ValueError`` for two dtypes neither of which promotes to
          the other (``int32`` and ``uint32``).

    Returns:
      the dtype of the tree.

    Raises:
      ValueError: mixed dtypes with ``mixed_dtype_handler=None``, unordered dtypes with
        ``"highest"`` or ``"lowest"``, or another ``mixed_dtype_handler``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> tree = {"a": jnp.array(1.0, jnp.float16), "b": jnp.array(2.0, jnp.float32)}
      >>> optim.tree.dtype(tree, "lowest"), optim.tree.dtype(tree, "highest")
      (dtype('float16'), dtype('float32'))
    """
    if mixed_dtype_handler not in _MIXED_DTYPE_HANDLERS:
        raise ValueError(
            f"mixed_dtype_handler must be one of None, 'promote', 'highest' or 'lowest', got "
            f"{mixed_dtype_handler!r}"
        )
    with_paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    if not with_paths:
        return jnp.asarray([]).dtype
    dtypes = [jnp.asarray(x).dtype for _, x in with_paths]
    if mixed_dtype_handler is None:
        first = dtypes[0]
        others = [
            f"tree{keystr(path)} has dtype {d}"
            for (path, _), d in zip(with_paths, dtypes, strict=True)
            if d != first
        ]
        if others:
            raise ValueError(
                f"the leaves of the tree have different dtypes: the first is {first}, but "
                + "; ".join(others)
                + ". Pass mixed_dtype_handler='promote', 'highest' or 'lowest' to choose one."
            )
        return first
    combine = {"promote": jnp.promote_types, "highest": _higher, "lowest": _lower}
    return functools.reduce(combine[mixed_dtype_handler], dtypes)
