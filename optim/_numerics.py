"""Numerical helpers shared by the building blocks: moments, bias correction, dtypes.

Conventions: arithmetic in the compute dtype (at least float32, see ``_tree.upcast``); state
slots stored back in their own dtype (``store_like``); outgoing updates in the incoming
gradient's dtype (``cast_like_grads``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optim._tree import PyTree, abs_sq, map_arrays, safe_increment, upcast


def canonical_dtype(dtype: Any, name: str) -> Any:
    """Canonical static dtype (hashable) or None; rejects non-float dtypes."""
    if dtype is None:
        return None
    try:
        canonical = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be a dtype, got {dtype!r}") from None
    if not jnp.issubdtype(canonical, jnp.inexact):
        raise TypeError(f"{name} must be a floating or complex dtype, got {canonical}")
    return canonical


def store_like(new: PyTree, old: PyTree) -> PyTree:
    """Cast freshly computed slot values back to the slot's storage dtype."""
    return map_arrays(lambda n, o: n.astype(o.dtype), new, old)


def cast_like_grads(updates: PyTree, grads: PyTree) -> PyTree:
    """Cast outgoing updates to the dtype of the incoming ones."""
    return map_arrays(lambda u, g: u.astype(g.dtype), updates, grads)


def ema_update(g: jax.Array, m: jax.Array, decay: jax.Array) -> jax.Array:
    """:math:`(1 - \\beta) g + \\beta m` in the compute dtype."""
    return (1 - decay) * upcast(g) + decay * upcast(m)


def ema_update_sq(g: jax.Array, v: jax.Array, decay: jax.Array) -> jax.Array:
    """:math:`(1 - \\beta) |g|^2 + \\beta v` in the compute dtype."""
    return (1 - decay) * abs_sq(upcast(g)) + decay * upcast(v)


def debias(m: jax.Array, decay: jax.Array, count: jax.Array) -> jax.Array:
    """Bias correction :math:`m / (1 - \\beta^t)`."""
    return m / (1 - decay**count).astype(m.dtype)


def debiased_first_moment(
    mu: PyTree, grads: PyTree, b1: jax.Array, count: jax.Array, nesterov: bool
) -> PyTree:
    r""":math:`\hat m_t`, or with Nesterov momentum (Dozat, 2016)
    :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`."""
    if not nesterov:
        return map_arrays(lambda m: debias(m, b1, count), mu)
    return map_arrays(
        lambda m, g: (
            b1 * debias(m, b1, safe_increment(count)) + (1 - b1) * debias(upcast(g), b1, count)
        ),
        mu,
        grads,
    )
