"""Moment estimates of pytrees: exponential moving averages and their bias correction.

The arithmetic is optax's (in the dtypes of the arguments, without upcasting), so these
functions give optax's numbers; the optimizers of this package use the float32 variants of
``optim._numerics``. Where ``updates`` holds ``None`` the result holds ``None``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim._tree import PyTree, abs_sq


def _is_none(x: Any) -> bool:
    return x is None


def _ema(leaf_fn: Any, updates: PyTree, moments: PyTree, decay: Any) -> PyTree:
    r""":math:`(1 - \beta) f(g) + \beta m` leaf by leaf, ``None`` where ``updates`` is."""
    return jax.tree.map(
        lambda g, m: None if g is None else (1 - decay) * leaf_fn(g) + decay * m,
        updates,
        moments,
        is_leaf=_is_none,
    )


@suggest_keywords
def update_moment(updates: PyTree, moments: PyTree, decay: Any, order: Any) -> PyTree:
    r"""The exponential moving average of the ``order``-th moment of the updates.

    .. math:: m_t = (1 - \beta) g_t^k + \beta m_{t-1}

    with :math:`\beta` = ``decay`` and :math:`k` = ``order``.

    Args:
      updates: the updates :math:`g_t`.
      moments: the previous moments :math:`m_{t-1}`, with the structure of ``updates``.
      decay: the decay rate :math:`\beta`.
      order: the order :math:`k` of the moment.

    Returns:
      the new moments :math:`m_t`.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.update_moment({"a": jnp.array(2.0)}, {"a": jnp.array(1.0)}, 0.5, 2)
      {'a': Array(2.5, dtype=float32, weak_type=True)}
    """
    return _ema(lambda g: g**order, updates, moments, decay)


@suggest_keywords
def update_infinity_moment(updates: PyTree, moments: PyTree, decay: Any, eps: Any) -> PyTree:
    r"""The exponentially weighted infinity norm of the updates (Adamax's second moment).

    .. math:: u_t = \max(|g_t| + \epsilon, \beta u_{t-1})

    Args:
      updates: the updates :math:`g_t`.
      moments: the previous moments :math:`u_{t-1}`, with the structure of ``updates``.
      decay: the decay rate :math:`\beta`.
      eps: :math:`\epsilon`, added to :math:`|g_t|`.

    Returns:
      the new moments :math:`u_t`.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.update_infinity_moment(
      ...     {"a": jnp.array(-2.0)}, {"a": jnp.array(3.0)}, 0.5, 0.0)
      {'a': Array(2., dtype=float32, weak_type=True)}
    """
    return jax.tree.map(
        lambda g, u: None if g is None else jnp.maximum(jnp.abs(g) + eps, decay * u),
        updates,
        moments,
        is_leaf=_is_none,
    )


def _norm_power(g: jax.Array, order: Any) -> jax.Array:
    """:math:`|g|^k` element-wise: :math:`g^k` for real ``g``, :math:`(|g|^2)^{k/2}` else."""
    if jnp.isrealobj(g):
        return g**order
    half = order / 2
    # An integer power compiles to repeated multiplication, a float one to exp/log.
    return abs_sq(g) ** (int(half) if float(half).is_integer() else half)


@suggest_keywords
def update_moment_per_elem_norm(updates: PyTree, moments: PyTree, decay: Any, order: Any) -> PyTree:
    r"""The exponential moving average of the ``order``-th power of the element-wise modulus.

    .. math:: m_t = (1 - \beta) |g_t|^k + \beta m_{t-1}

    For real updates :math:`|g|^k` is computed as :math:`g^k`; for complex ones as
    :math:`(\Re(g)^2 + \Im(g)^2)^{k/2}`, so the moments are real.

    Args:
      updates: the updates :math:`g_t`.
      moments: the previous moments :math:`m_{t-1}`, with the structure of ``updates``.
      decay: the decay rate :math:`\beta`.
      order: the order :math:`k`.

    Returns:
      the new moments :math:`m_t`.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.update_moment_per_elem_norm(
      ...     {"a": jnp.array(3.0 + 4.0j)}, {"a": jnp.array(0.0)}, 0.5, 2)
      {'a': Array(12.5, dtype=float32, weak_type=True)}
    """
    return _ema(lambda g: _norm_power(g, order), updates, moments, decay)


@functools.partial(jax.jit, inline=True)
@suggest_keywords
def bias_correction(moment: PyTree, decay: Any, count: Any) -> PyTree:
    r"""Bias correction of an exponential moving average started at zero.

    .. math:: \hat m_t = m_t / (1 - \beta^t)

    It tends to the identity as :math:`t` grows. :math:`1 - \beta^t` is computed in the
    dtype of ``decay`` and ``count`` (float32 at least for Python numbers, since the function
    is jitted): in bfloat16 :math:`\beta^t` would round to 1. It is then cast to each moment's
    dtype, so bfloat16 moments stay bfloat16.

    Args:
      moment: the moments :math:`m_t`.
      decay: the decay rate :math:`\beta`.
      count: the step count :math:`t` (at least 1).

    Returns:
      the corrected moments :math:`\hat m_t`.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.tree.bias_correction({"a": jnp.array(0.5)}, 0.5, 1)
      {'a': Array(1., dtype=float32)}
    """
    # One correction for all leaves (as optax): XLA may round a power fused into each
    # leaf's division differently.
    correction = 1 - decay**count
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)
