"""``value_and_grad`` for models whose leaves are not all float arrays."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["value_and_grad"]


def _is_array(leaf: Any) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic))


def value_and_grad(
    loss_fn: Callable[..., Any], has_aux: bool = False
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """A jitted ``(model, batch) -> (loss, grads)`` for ``loss_fn(model, batch)``.

    With ``has_aux=True``, ``loss_fn`` returns ``(loss, aux)`` and the result is
    ``((loss, aux), grads)``, as with ``jax.value_and_grad``.

    ``grads`` has the structure of ``model``, with the gradient at each floating-point array
    leaf and ``None`` at every other leaf: integer or boolean arrays are passed through traced
    but not differentiated, and leaves that are not arrays at all (Python numbers, strings,
    functions) are compiled in as constants, so they must be hashable and a new value
    recompiles. For the models of this package, whose only leaves are float arrays, this is
    ``jax.jit(jax.value_and_grad(loss_fn, has_aux=has_aux))``.
    """

    @functools.partial(jax.jit, static_argnums=2)
    def compute(arrays: list[Any], batch: Any, static: tuple[Any, tuple[Any, ...]]) -> Any:
        treedef, constants = static
        floats = [
            a if a is not None and jnp.issubdtype(a.dtype, jnp.inexact) else None for a in arrays
        ]

        def loss_of_floats(floats: list[Any]) -> Any:
            # Each leaf is exactly one of: a differentiated float, another array, a constant.
            leaves = [
                f if f is not None else a if a is not None else c
                for f, a, c in zip(floats, arrays, constants, strict=True)
            ]
            return loss_fn(jax.tree.unflatten(treedef, leaves), batch)

        value, grads = jax.value_and_grad(loss_of_floats, has_aux=has_aux)(floats)
        return value, jax.tree.unflatten(treedef, grads)

    @functools.wraps(loss_fn)
    def wrapped(model: Any, batch: Any) -> tuple[Any, Any]:
        leaves, treedef = jax.tree.flatten(model)
        arrays = [leaf if _is_array(leaf) else None for leaf in leaves]
        constants = tuple(None if _is_array(leaf) else leaf for leaf in leaves)
        return compute(arrays, batch, (treedef, constants))

    return wrapped
