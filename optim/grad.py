"""Gradients of a loss with respect to the trainable leaves of a model, whatever else it holds.

A model (an equinox or flax module, a dict of arrays with a config string) splits three ways:
floating arrays are differentiated; other arrays (integer buffers) are traced but not
differentiated; everything else (functions, Python numbers, strings, ``None``) is a constant
of the compiled program. Gradients are ``None`` at every leaf that is not differentiated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from optim._hyper import check_flag
from optim._keywords import suggest_keywords
from optim._tree import PyTree, is_array, is_trainable


class ArraySplit(NamedTuple):
    """A model split into traced arrays and static constants (see module docstring)."""

    arrays: list[Any]  # every array leaf, None elsewhere
    treedef: Any
    constants: tuple[Any, ...]  # every non-array leaf, None at arrays

    def combine(self, arrays: list[Any]) -> PyTree:
        leaves = [a if c is None else c for a, c in zip(arrays, self.constants, strict=True)]
        return jax.tree.unflatten(self.treedef, leaves)


def split_arrays(tree: PyTree) -> ArraySplit:
    """``tree`` split into its array leaves (traced) and the rest (constants)."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=lambda x: x is None)
    arrays = [leaf if is_array(leaf) else None for leaf in leaves]
    constants = tuple(None if is_array(leaf) else leaf for leaf in leaves)
    return ArraySplit(arrays, treedef, constants)


def trainable_value_and_grad(loss_fn: Callable[..., Any], has_aux: bool = False) -> Callable:
    """``jax.value_and_grad(loss_fn)`` over the floating arrays of its first argument only."""

    def wrapped(model: PyTree, *args: Any) -> tuple[Any, PyTree]:
        split = split_arrays(model)
        floats = [a if is_trainable(a) else None for a in split.arrays]

        def on_floats(values: list[Any]) -> Any:
            merged = [v if v is not None else a for v, a in zip(values, split.arrays, strict=True)]
            return loss_fn(split.combine(merged), *args)

        out, grads = jax.value_and_grad(on_floats, has_aux=has_aux)(floats)
        return out, jax.tree.unflatten(split.treedef, grads)

    return wrapped


@suggest_keywords
def value_and_grad(loss_fn: Callable[..., Any], has_aux: bool = False) -> Callable:
    """A jitted ``(model, *args) -> (loss, grads)`` (``((loss, aux), grads)`` with ``has_aux``).

    ``grads`` has the model's structure with ``None`` at every leaf that is not a floating
    array, so models with functions, ints or integer buffers among their leaves need no
    filtering. Non-array leaves are compiled in as constants: they must be hashable, and a
    new value recompiles.
    """
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be a function of (model, *args), got {type(loss_fn).__name__} "
            f"{loss_fn!r}"
        )
    grad_fn = trainable_value_and_grad(loss_fn, check_flag(has_aux, "has_aux"))

    @functools.partial(jax.jit, static_argnums=(1, 2))
    def compiled(arrays: list[Any], treedef: Any, constants: tuple[Any, ...], *args: Any) -> Any:
        return grad_fn(ArraySplit(arrays, treedef, constants).combine(arrays), *args)

    @functools.wraps(loss_fn)
    def wrapped(model: PyTree, *args: Any) -> tuple[Any, PyTree]:
        split = split_arrays(model)
        return compiled(split.arrays, split.treedef, split.constants, *args)

    return wrapped
