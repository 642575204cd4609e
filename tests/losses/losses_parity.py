"""Shared check of the loss tests: our loss and optax's, both under ``jit``, on the same inputs.

``assert_matches`` compares values and, for the arguments in ``grad_argnums``, the gradient of
the summed loss. ``rtol=0`` asks for bitwise equality (NaN matching NaN); otherwise
``assert_allclose`` with the given tolerances, which each caller explains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _summed(fn: Callable[..., Any], kwargs: dict) -> Callable[..., jax.Array]:
    def total(*args):
        out = fn(*args, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        return jnp.sum(out)

    return total


def evaluate(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: dict, grad_argnums: tuple[int, ...]
) -> tuple[Any, Any]:
    """``fn(*args, **kwargs)`` and the gradients of its sum, compiled as one program."""

    @jax.jit
    def run(*args):
        value = fn(*args, **kwargs)
        grads = jax.grad(_summed(fn, kwargs), grad_argnums)(*args) if grad_argnums else ()
        return value, grads

    return run(*args)


def _compare(ours: Any, theirs: Any, rtol: float, atol: float, what: str) -> None:
    ours_leaves, theirs_leaves = jax.tree.leaves(ours), jax.tree.leaves(theirs)
    assert len(ours_leaves) == len(theirs_leaves), what
    for a, b in zip(ours_leaves, theirs_leaves, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, (what, a.shape, b.shape)
        assert a.dtype == b.dtype, (what, a.dtype, b.dtype)
        if rtol == 0 and atol == 0:
            np.testing.assert_array_equal(a, b, err_msg=what)
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def assert_matches(
    ours: Callable[..., Any],
    theirs: Callable[..., Any],
    *args: Any,
    grad_argnums: tuple[int, ...] = (0,),
    rtol: float = 0.0,
    atol: float = 0.0,
    grad_rtol: float | None = None,
    grad_atol: float | None = None,
    **kwargs: Any,
) -> None:
    """Our loss equals optax's on ``args``/``kwargs``, in value and gradient, under ``jit``."""
    ours_value, ours_grads = evaluate(ours, args, kwargs, grad_argnums)
    their_value, their_grads = evaluate(theirs, args, kwargs, grad_argnums)
    _compare(ours_value, their_value, rtol, atol, "value")
    _compare(
        ours_grads,
        their_grads,
        rtol if grad_rtol is None else grad_rtol,
        atol if grad_atol is None else grad_atol,
        "gradient",
    )


def normal(shape: Sequence[int], seed: int, scale: float = 1.0) -> jax.Array:
    return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)
