"""Find and replace values in optimizer states by name: ``get``, ``get_all_with_path``, ``set``.

A name is a field of a NamedTuple (``"count"``, ``"mu"``), a key of a dict
(``"learning_rate"`` in ``InjectStatefulHyperparamsState.hyperparams``) or the class name of a
NamedTuple (``"ScaleByAdamState"``), searched through any pytree: the tuples of a ``chain``,
the dicts of a ``partition``, the dataclass pytrees of equinox or flax. Paths are jax key paths
in which a NamedTuple field is a :class:`NamedTupleKey`, which also names the tuple's class, so
that a ``filtering`` function can tell apart equal field names of different states.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import jax

from optim._keywords import suggest_keywords
from optim._tree import PyTree

KeyPath = tuple[Any, ...]
Filtering = Callable[[KeyPath, Any], bool]


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """The key of a NamedTuple's field in a path found by ``get_all_with_path``.

    ``jax.tree_util`` names a NamedTuple's field by its position only; this key also gives the
    tuple's class name, so a ``filtering`` function of ``get``, ``set`` or
    ``get_all_with_path`` can select, e.g., the ``count`` of ``ScaleByAdamState`` only:
    ``lambda path, value: path[-1] == NamedTupleKey("ScaleByAdamState", "count")``.

    Attributes:
      tuple_name: the class name of the NamedTuple holding the field.
      name: the name of the field.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> state = optim.adam(1e-3).init(jnp.zeros(2))
      >>> [str(path[-1]) for path, _ in optim.tree_utils.tree_get_all_with_path(state, "mu")]
      ['ScaleByAdamState.mu']
    """

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


def _is_named_tuple(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _has_any(node: Any, keys: tuple[Any, ...]) -> bool:
    """Whether ``node`` (a NamedTuple or a dict) has a field, key or class name in ``keys``."""
    if _is_named_tuple(node):
        return type(node).__name__ in keys or any(k in node._fields for k in keys)
    return isinstance(node, dict) and any(k in node for k in keys)


def _leaves_with_named_paths(
    tree: PyTree, stop: Callable[[Any], bool], prefix: KeyPath = ()
) -> Iterator[tuple[KeyPath, Any]]:
    """The leaves of ``tree`` and the nodes where ``stop`` is True, with their paths.

    As ``jax.tree_util.tree_leaves_with_path`` (same leaves, same order), but a NamedTuple
    field is a ``NamedTupleKey`` in the path.
    """
    entries = jax.tree_util.tree_leaves_with_path(
        tree, is_leaf=lambda x: stop(x) or _is_named_tuple(x)
    )
    for path, node in entries:
        path = (*prefix, *path)
        if stop(node) or not _is_named_tuple(node):
            yield path, node
            continue
        for field in node._fields:
            key = NamedTupleKey(type(node).__name__, field)
            yield from _leaves_with_named_paths(getattr(node, field), stop, (*path, key))


def _children(path: KeyPath, node: Any) -> list[tuple[KeyPath, Any]]:
    """The fields of a NamedTuple or the items of a dict, with their paths."""
    if _is_named_tuple(node):
        name = type(node).__name__
        return [((*path, NamedTupleKey(name, f)), getattr(node, f)) for f in node._fields]
    return [((*path, jax.tree_util.DictKey(k)), v) for k, v in node.items()]


def _value_of(path: KeyPath, node: Any, key: Any) -> tuple[KeyPath, Any]:
    """``node`` itself when it is the NamedTuple named ``key``, else its entry ``key``."""
    if _is_named_tuple(node):
        if type(node).__name__ == key:
            return path, node
        return (*path, NamedTupleKey(type(node).__name__, key)), getattr(node, key)
    return (*path, jax.tree_util.DictKey(key)), node[key]


def _find(tree: PyTree, key: Any) -> list[tuple[KeyPath, Any]]:
    """Every value named ``key`` in ``tree``: the outermost ones in leaf order, then, for each
    node holding one, those nested inside that node's entries."""

    def holds(node: Any) -> bool:
        return _has_any(node, (key,))

    holders = [(p, n) for p, n in _leaves_with_named_paths(tree, holds) if holds(n)]
    found = [_value_of(path, node, key) for path, node in holders]
    for path, node in holders:
        for child_path, child in _children(path, node):
            found += [((*child_path, *p), v) for p, v in _find(child, key)]
    return found


@suggest_keywords
def get_all_with_path(
    tree: PyTree, key: Any, filtering: Filtering | None = None
) -> list[tuple[KeyPath, Any]]:
    """Every value of ``tree`` named ``key``, with its path.

    ``key`` is a NamedTuple field, a dict key or a NamedTuple class name; it may occur many
    times (the ``count`` of each state of a ``chain``). A path is a tuple of jax key entries
    (:class:`jax.tree_util.DictKey`, :class:`jax.tree_util.SequenceKey`,
    :class:`jax.tree_util.GetAttrKey`, ...) and :class:`NamedTupleKey`;
    :func:`jax.tree_util.keystr` prints it.

    Args:
      tree: the pytree to search.
      key: the field, dict key or NamedTuple class name to look for.
      filtering: optional ``filtering(path, value) -> bool``; only the values for which it is
        True are returned.

    Returns:
      a list of ``(path, value)`` pairs.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> state = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1).init(jnp.zeros(3))
      >>> for path, value in optim.tree.get_all_with_path(state, "learning_rate"):
      ...     print(jax.tree_util.keystr(path), value)
      InjectStatefulHyperparamsState.hyperparams['learning_rate'] 0.1
    """
    found = _find(tree, key)
    if filtering is None:
        return found
    return [(path, value) for path, value in found if filtering(path, value)]


@suggest_keywords
def get(
    tree: PyTree, key: Any, default: Any | None = None, filtering: Filtering | None = None
) -> Any:
    """The value of ``tree`` named ``key``; ``default`` when there is none.

    ``key`` is a NamedTuple field, a dict key or a NamedTuple class name. ``filtering``
    (``filtering(path, value) -> bool``, paths as in :func:`get_all_with_path`) keeps only some
    of the values found, e.g. those of one state, to make the value unique.

    Args:
      tree: the pytree to search.
      key: the field, dict key or NamedTuple class name to look for.
      default: the value to return when ``key`` is not found.
      filtering: optional ``filtering(path, value) -> bool`` selecting among the values.

    Returns:
      the value found, or ``default``.

    Raises:
      KeyError: ``key`` names more than one value (that ``filtering`` keeps).

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> state = optim.adam(learning_rate=1.0).init(jnp.array([1.0, 2.0, 3.0]))
      >>> print(optim.tree.get(state, "count"))
      0
      >>> print(optim.tree.get(state, "missing", default="none here"))
      none here
    """
    found = get_all_with_path(tree, key, filtering=filtering)
    if len(found) > 1:
        paths = ", ".join(jax.tree_util.keystr(path) for path, _ in found)
        raise KeyError(
            f"{key!r} names {len(found)} values in the tree (at {paths}); pass a filtering "
            "function to select one, or use get_all_with_path"
        )
    return found[0][1] if found else default


def _plain_key(entry: Any) -> Any:
    """The field name, dict key or index a path entry stands for."""
    if isinstance(entry, jax.tree_util.DictKey):
        if isinstance(entry.key, (str, int)):
            return entry.key
        raise KeyError(f"set supports dict keys of type str or int only, got {entry.key!r}")
    if isinstance(entry, NamedTupleKey):
        return entry.name
    if isinstance(entry, jax.tree_util.GetAttrKey):
        return entry.name
    if isinstance(entry, jax.tree_util.SequenceKey):
        return entry.idx
    if isinstance(entry, jax.tree_util.FlattenedIndexKey):
        return entry.key
    raise KeyError(f"path entry {entry!r} of type {type(entry).__name__} is not supported")


@suggest_keywords
def set(tree: PyTree, filtering: Filtering | None = None, /, **kwargs: Any) -> PyTree:
    """A copy of ``tree`` with the values named by the keywords replaced.

    Each keyword is a NamedTuple field, a dict key or a NamedTuple class name (the whole
    tuple is replaced). Every value that holds such a name is replaced, down to the first
    node that holds one of the names along each path: inside that node, a list or tuple
    without such a name is not searched further (as in ``optax.tree.set``).

    Args:
      tree: the pytree whose values to replace.
      filtering: optional ``filtering(path, value) -> bool`` (positional only): only the
        values for which it is True are replaced.
      **kwargs: the names to replace and their new values.

    Returns:
      a pytree with the structure of ``tree`` and the new values.

    Raises:
      KeyError: a keyword names no value of ``tree`` (that ``filtering`` keeps).

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> tx = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1)
      >>> state = tx.init(jnp.zeros(3))
      >>> state = optim.tree.set(state, learning_rate=jnp.asarray(0.5))
      >>> print(optim.tree.get(state, "learning_rate"))
      0.5
    """
    for key in kwargs:
        if not get_all_with_path(tree, key, filtering):
            selected = " that the filtering function keeps" if filtering else ""
            raise KeyError(f"found no value named {key!r}{selected} in the tree")
    names = tuple(kwargs)

    def holds(node: Any) -> bool:
        return _has_any(node, names)

    def chosen(path: KeyPath, value: Any) -> bool:
        return filtering is None or filtering(path, value)

    def replace(path: KeyPath, node: Any) -> Any:
        if not holds(node):
            return node
        if _is_named_tuple(node) and type(node).__name__ in kwargs and chosen(path, node):
            return kwargs[type(node).__name__]
        entries = {}
        for child_path, child in _children(path, node):
            key = _plain_key(child_path[-1])
            if key in kwargs and chosen(child_path, child):
                entries[key] = kwargs[key]
            elif isinstance(child, (dict, list, tuple)):
                entries[key] = replace(child_path, child)
            else:
                entries[key] = child
        return node._replace(**entries) if _is_named_tuple(node) else entries

    treedef = jax.tree.structure(tree, is_leaf=holds)
    return jax.tree.unflatten(
        treedef, [replace(path, node) for path, node in _leaves_with_named_paths(tree, holds)]
    )
