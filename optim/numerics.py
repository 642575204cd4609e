"""Numerically safe primitives: norms with finite gradients at 0, counters that saturate.

The public functions of optax's ``numerics`` module, with its names, arguments and values:
``safe_norm``, ``safe_root_mean_squares``, ``safe_increment`` (``safe_int32_increment`` is the
same function). The optimizers of this package use them too (LAMB, LARS and Fromage's norms,
Adafactor's parameter scale, every step counter).

This module depends on JAX alone, so the tree helpers (``optim._tree``) can build on it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._keywords import suggest_keywords

__all__ = ["safe_increment", "safe_int32_increment", "safe_norm", "safe_root_mean_squares"]


def abs_sq(x: jax.Array) -> jax.Array:
    """:math:`|x|^2`, real for complex ``x``."""
    return (x.conj() * x).real if jnp.iscomplexobj(x) else x * x


def _inexact(x: Any) -> jax.Array:
    """``x`` as an array of a floating (or complex) dtype; integers become the default float,
    as in ``jnp.linalg.norm``."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return x
    return x.astype(jnp.result_type(x.dtype, float))


def _euclidean_axes(ord: Any, axis: Any, ndim: int) -> tuple[int, ...] | None:
    """The axes ``jnp.linalg.norm(x, ord, axis)`` sums squares over when it is a Euclidean
    norm (the vector 2-norm or the Frobenius norm); None for every other norm."""
    if axis is None:
        axes = tuple(range(ndim))
        if ord is None:
            return axes  # jnp.linalg.norm flattens any rank when ord is None
    else:
        axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
        if not all(isinstance(a, (int, np.integer)) and -ndim <= a < ndim for a in axes):
            return None  # jnp.linalg.norm raises the error
        axes = tuple(int(a) % ndim for a in axes)
    is_string = isinstance(ord, str)
    if len(axes) == 1 and (ord is None or (not is_string and ord == 2)):
        return axes
    if len(axes) == 2 and (ord is None or (is_string and ord in ("f", "fro"))):
        return axes
    return None


def _power_of_two_floor(m: jax.Array) -> jax.Array:
    r""":math:`2^{\lfloor \log_2 m \rfloor}` for normal :math:`m > 0`, read off the exponent
    bits; the smallest normal number for 0 and subnormal ``m``; 1 for inf and NaN."""
    info = jnp.finfo(m.dtype)
    unsigned = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[m.dtype.itemsize]
    exponent_mask = ((1 << info.nexp) - 1) << info.nmant
    bits = jax.lax.bitcast_convert_type(m, unsigned) & np.array(exponent_mask, unsigned)
    power = jax.lax.bitcast_convert_type(bits, m.dtype)
    power = jnp.where(bits == 0, jnp.asarray(info.tiny, m.dtype), power)
    return jnp.where(bits == exponent_mask, jnp.ones_like(m), power)


def _squeeze(norm: jax.Array, axis: Any, ndim: int) -> jax.Array:
    """Drop the dimensions a norm with ``keepdims=True`` kept."""
    return jnp.squeeze(norm, axis=tuple(range(ndim)) if axis is None else axis)


def _norm(x: jax.Array, ord: Any, axis: Any, scale: jax.Array | None, keepdims: bool):
    r"""``jnp.linalg.norm(x, ord, axis, keepdims)``, computed as :math:`s \lVert x/s\rVert`
    when ``scale`` is a power of two :math:`s` (with kept dimensions; a Euclidean norm).

    Multiplying by a power of two is exact, so the value is ``jnp.linalg.norm``'s bit for bit
    where the squares neither overflow nor underflow, and the true norm where they would.
    ``jnp.linalg.norm`` itself computes the norm of the scaled ``x`` so that the squares are
    summed (and contracted into multiply-adds) exactly as there.
    """
    if scale is None:
        return jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    scaled = x * (1 / scale).astype(scale.dtype)
    norm = scale * jnp.linalg.norm(scaled, ord=ord, axis=axis, keepdims=True)
    return norm if keepdims else _squeeze(norm, axis, x.ndim)


@suggest_keywords
def safe_norm(
    x: Any,
    min_norm: Any,
    ord: int | float | str | None = None,
    axis: tuple[int, ...] | int | None = None,
    keepdims: bool = False,
) -> jax.Array:
    r"""``jnp.maximum(jnp.linalg.norm(x, ord, axis, keepdims), min_norm)`` with finite gradients.

    Where the norm is at most ``min_norm`` the result is ``min_norm`` and its gradient is 0:
    ``jnp.maximum`` of a norm differentiates both branches, and the norm's derivative at
    :math:`x = 0` is NaN. Here the norm of those slices is computed a second time on ones
    instead of ``x``, whose gradient is then discarded.

    The 2-norm of vectors and the Frobenius norm (``ord`` None, 2 for vectors, ``"fro"``) are
    computed as :math:`s \sqrt{\sum |x/s|^2}` with :math:`s` the power of two at or below the
    largest magnitude: the same values as ``jnp.linalg.norm`` where the squares stay within the
    dtype's range (bit for bit), and the true norm where they do not: float32 entries above
    :math:`1.8 \cdot 10^{19}` no longer give an infinite norm, nor entries below
    :math:`10^{-19}` a zero norm. Other norms are ``jnp.linalg.norm``'s.

    Args:
      x: an array (integers are converted to the default float dtype).
      min_norm: lower bound of the returned norm.
      ord: order of the norm, as in ``jnp.linalg.norm``: None, a non-zero int, ``inf``,
        ``-inf``, ``"fro"`` or ``"nuc"``.
      axis: None, an int (vector norms along it) or a pair of ints (matrix norms), as in
        ``jnp.linalg.norm``.
      keepdims: keep the reduced axes as dimensions of size one.

    Returns:
      The norm, at least ``min_norm``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optim
      >>> optim.safe_norm(jnp.array([3.0, 4.0]), 1.0)
      Array(5., dtype=float32)
      >>> jax.grad(optim.safe_norm)(jnp.zeros(2), 1.0)
      Array([0., 0.], dtype=float32)
    """
    x = _inexact(x)
    axes = _euclidean_axes(ord, axis, x.ndim)
    scale = None
    if axes is not None:
        largest = jnp.max(jnp.abs(x), axis=axes, keepdims=True, initial=0)
        scale = jax.lax.stop_gradient(_power_of_two_floor(largest))
    norm = _norm(x, ord, axis, scale, keepdims=True)
    small = norm <= min_norm
    # Ones where the floor applies (their norm, and its gradient, are then discarded).
    x = jnp.where(small, jnp.ones_like(x), x)
    scale = None if scale is None else jnp.where(small, jnp.ones_like(scale), scale)
    masked_norm = _norm(x, ord, axis, scale, keepdims)
    if not keepdims:
        norm = _squeeze(norm, axis, x.ndim)
    return jnp.where(norm <= min_norm, min_norm, masked_norm)


@suggest_keywords
def safe_root_mean_squares(x: Any, min_rms: Any) -> jax.Array:
    r""":math:`\max(\sqrt{\mathrm{mean}(|x|^2)}, m)` (:math:`m` = ``min_rms``) with a finite
    gradient where the root mean square is at most :math:`m` (there it is 0).

    As in ``safe_norm``, the root is taken a second time on ones where the floor applies, so
    that differentiating never meets :math:`\sqrt{0}`'s infinite derivative.

    Args:
      x: an array.
      min_rms: lower bound of the returned root mean square.

    Returns:
      The root mean square of all entries of ``x``, at least ``min_rms``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> optim.safe_root_mean_squares(jnp.array([3.0, 4.0]), 1.0)
      Array(3.535534, dtype=float32)
    """
    x = _inexact(x)
    rms = jnp.sqrt(jnp.mean(abs_sq(x)))
    floored = rms <= min_rms
    x = jnp.where(floored, jnp.ones_like(x), x)
    return jnp.where(floored, min_rms, jnp.sqrt(jnp.mean(abs_sq(x))))


@suggest_keywords
def safe_increment(count: Any) -> jax.Array:
    """``count + 1``, staying at the largest value of ``count``'s dtype instead of wrapping.

    For an int32 step counter :math:`2^{31} - 1` is followed by itself, not by
    :math:`-2^{31}` (which would restart a schedule or flip a bias correction); a floating
    counter stops at the dtype's largest finite value.

    Args:
      count: an integer or floating scalar or array.

    Returns:
      ``count + 1`` in ``count``'s dtype, or its dtype's largest value where ``count`` is
      already there.

    Raises:
      ValueError: ``count`` is neither an integer nor a floating array.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> optim.safe_increment(jnp.asarray(1, dtype=jnp.int32))
      Array(2, dtype=int32)
      >>> optim.safe_increment(jnp.asarray(2147483647, dtype=jnp.int32))
      Array(2147483647, dtype=int32)
    """
    dtype = jnp.asarray(count).dtype
    if jnp.issubdtype(dtype, jnp.integer):
        largest = jnp.iinfo(dtype).max
    elif jnp.issubdtype(dtype, jnp.floating):
        largest = jnp.finfo(dtype).max
    else:
        raise ValueError(
            f"count must be an integer or floating counter, got dtype {dtype}; "
            "safe_increment cannot step it"
        )
    largest = jnp.asarray(largest, dtype)
    return jnp.where(count < largest, count + jnp.asarray(1, dtype), largest)


safe_int32_increment = safe_increment
