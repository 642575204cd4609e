"""Input checks shared by the losses: clear errors naming the argument, never stricter than optax.

A check here rejects only what optax rejects too (a non-floating ``logits``, shapes that cannot
be combined), so a program that runs with optax runs with these losses; the difference is the
message, which names the arguments and their shapes instead of a bare broadcasting error.
All checks look at shapes and dtypes only, so they work unchanged under ``jit``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def floating(name: str, x: Any) -> jax.Array:
    """``x`` as an array, or a ``TypeError`` naming ``name`` unless its dtype is floating."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"`{name}` must have a floating-point dtype, got {x.dtype}.")
    return x


def integer(name: str, x: Any) -> jax.Array:
    """``x`` as an array, or a ``TypeError`` naming ``name`` unless its dtype is an integer."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"`{name}` must have an integer dtype, got {x.dtype}.")
    return x


def same_shape(a_name: str, a: jax.Array, b_name: str, b: jax.Array, hint: str = "") -> None:
    """A ``ValueError`` naming both arguments unless ``a`` and ``b`` have one shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"`{a_name}` and `{b_name}` must have the same shape, got {a_name}: {a.shape} "
            f"and {b_name}: {b.shape}.{hint}"
        )


def broadcastable(a_name: str, a: jax.Array, b_name: str, b: jax.Array, hint: str = "") -> None:
    """A ``ValueError`` naming both arguments unless their shapes broadcast together.

    Where they broadcast, optax combines them elementwise (a ``(n, 1)`` against an ``(n,)``
    gives ``(n, n)``), and so do these losses.
    """
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"`{a_name}` and `{b_name}` must have the same shape or shapes that broadcast "
            f"together, got {a_name}: {a.shape} and {b_name}: {b.shape}.{hint}"
        ) from None


def class_axes(axis: Any, ndim: int, name: str = "logits") -> tuple[int, ...]:
    """``axis`` (an int or a tuple of ints) as non-negative axes of an ``ndim``-array."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(
                f"`axis` must be an int or a tuple of ints, got {type(axis).__name__} {axis!r}."
            )
        if not -ndim <= a < ndim:
            raise ValueError(f"`axis` {axis!r} is out of range for `{name}` with {ndim} dims.")
    return tuple(int(a) % ndim for a in axes)


def integer_labels(logits: jax.Array, labels: jax.Array, axis: Any = -1) -> None:
    """A ``ValueError`` unless ``labels`` has the shape of ``logits`` without the class axes.

    A shape that broadcasts with it (e.g. ``(1,)`` against ``(n,)``) is accepted, as in optax.
    """
    axes = class_axes(axis, logits.ndim)
    batch = tuple(n for i, n in enumerate(logits.shape) if i not in axes)
    fits = labels.ndim == len(batch)
    if fits:
        try:
            np.broadcast_shapes(labels.shape, batch)
        except ValueError:
            fits = False
    if not fits:
        raise ValueError(
            f"`labels` must have the shape of `logits` without its class axis (axis={axis!r}), "
            f"got logits: {logits.shape} and labels: {labels.shape}. Integer labels hold one "
            "class index per example (drop a trailing axis of size 1 with labels[..., 0]); for "
            "one-hot labels use softmax_cross_entropy."
        )


def rank(name: str, x: jax.Array, expected: int, layout: str) -> None:
    """A ``ValueError`` naming ``name`` and its ``layout`` unless ``x.ndim == expected``."""
    if x.ndim != expected:
        raise ValueError(f"`{name}` must have rank {expected} ({layout}), got shape {x.shape}.")
