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
    """A model split into traced arrays and static constants (see module docstring).

    Built by :func:`optim.grad.split_arrays`; ``combine`` puts a model back together from
    (possibly new) arrays.

    Attributes:
      arrays: the model's leaves in flattening order: each array leaf, ``None`` at the other
        leaves.
      treedef: the model's tree structure (``None`` leaves kept as leaves).
      constants: the model's leaves in the same order: each leaf that is not an array,
        ``None`` at the arrays.
    """

    arrays: list[Any]  # every array leaf, None elsewhere
    treedef: Any
    constants: tuple[Any, ...]  # every non-array leaf, None at arrays

    def combine(self, arrays: list[Any]) -> PyTree:
        leaves = [a if c is None else c for a, c in zip(arrays, self.constants, strict=True)]
        return jax.tree.unflatten(self.treedef, leaves)


def split_arrays(tree: PyTree) -> ArraySplit:
    """``tree`` split into its array leaves (traced) and the rest (constants).

    Args:
      tree: any pytree (a model): its ``None`` leaves are kept as leaves.

    Returns:
      An :class:`ArraySplit` whose ``combine(arrays)`` rebuilds ``tree`` with the given
      arrays in place of its own.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.grad import split_arrays
      >>> split = split_arrays({"w": jnp.array([1.0, 2.0]), "name": "dense"})
      >>> split.arrays[1], split.constants
      (Array([1., 2.], dtype=float32), ('dense', None))
      >>> split.combine([None, jnp.zeros(2)])
      {'name': 'dense', 'w': Array([0., 0.], dtype=float32)}
    """
    leaves, treedef = jax.tree.flatten(tree, is_leaf=lambda x: x is None)
    arrays = [leaf if is_array(leaf) else None for leaf in leaves]
    constants = tuple(None if is_array(leaf) else leaf for leaf in leaves)
    return ArraySplit(arrays, treedef, constants)


def trainable_value_and_grad(loss_fn: Callable[..., Any], has_aux: bool = False) -> Callable:
    """``jax.value_and_grad(loss_fn)`` over the floating arrays of its first argument only.

    Not compiled: the building block of :func:`optim.value_and_grad`, for use inside a
    function the caller compiles.

    Args:
      loss_fn: a function ``(model, *args) -> loss`` (``-> (loss, aux)`` with ``has_aux``),
        ``loss`` a real scalar.
      has_aux: ``loss_fn`` returns a pair ``(loss, aux)``; ``aux`` is returned, not
        differentiated.

    Returns:
      A function ``(model, *args) -> (loss, grads)`` (``((loss, aux), grads)`` with
      ``has_aux``); ``grads`` has the model's structure, ``None`` at every leaf that is not a
      floating array.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.grad import trainable_value_and_grad
      >>> model = {"w": jnp.array([1.0, -2.0]), "steps": jnp.array(3)}
      >>> loss, grads = trainable_value_and_grad(lambda m: jnp.sum(m["w"] ** 2))(model)
      >>> print(loss, grads["w"], grads["steps"])
      5.0 [ 2. -4.] None
    """

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

    Args:
      loss_fn: a function ``(model, *args) -> loss`` (``-> (loss, aux)`` with ``has_aux``),
        ``loss`` a real scalar; differentiated with respect to the floating arrays of
        ``model`` only. The other arguments ``args`` are traced arguments of the compiled
        function (arrays or pytrees of arrays), not differentiated.
      has_aux: ``loss_fn`` returns a pair ``(loss, aux)``; ``aux`` is returned, not
        differentiated. True or False.

    Returns:
      A jitted function ``(model, *args) -> (loss, grads)`` (``((loss, aux), grads)`` with
      ``has_aux``), with the name and docstring of ``loss_fn``.

    Raises:
      TypeError: ``loss_fn`` is not callable, or ``has_aux`` is not a bool.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> def loss_fn(model, x):
      ...     return jnp.sum((model["w"] * x) ** 2)
      >>> model = {"w": jnp.array([1.0, -2.0]), "act": jnp.tanh, "steps": jnp.array(3)}
      >>> loss, grads = optim.value_and_grad(loss_fn)(model, jnp.array([1.0, 0.5]))
      >>> print(loss, grads["w"], grads["act"], grads["steps"])
      2.0 [ 2. -1.] None None
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
