"""Normalising updates: subtract each leaf's mean (gradient centralisation), or divide by the
updates' global norm.

Arithmetic runs in at least float32; updates leave in the incoming gradient's dtype; leaves
that are not floating arrays get ``None``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optim._hyper import hyper_field, nonnegative
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_float_updates,
    check_params,
    global_norm,
    map_arrays,
    upcast,
)
from optim.base import EmptyState, Transformation


def _centralized(g: jax.Array) -> jax.Array:
    if g.ndim <= 1:
        return g
    g32 = upcast(g)
    return (g32 - g32.mean(axis=tuple(range(1, g.ndim)), keepdims=True)).astype(g.dtype)


@pytree_dataclass
class Centralize(Transformation):
    r"""Gradient centralisation (Yong et al., 2020, "Gradient Centralization: A New
    Optimization Technique for Deep Neural Networks").

    For a leaf of rank :math:`\ge 2`, each slice along the first axis loses its mean over
    all the other axes:

    .. math:: u_{t,i\ldots} = g_{t,i\ldots} - \operatorname{mean}_{j\ldots}\, g_{t,ij\ldots};

    vectors and scalars pass unchanged. The first axis is the output axis of PyTorch's
    weights (``(out, in, kh, kw)``), as in the paper and optax; for flax's ``(in, out)``
    kernels the mean is taken over the outputs instead. Complex leaves are supported.
    """

    def init(self, params: PyTree) -> EmptyState:
        check_params(params)
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        return map_arrays(_centralized, updates), state


@suggest_keywords
def centralize() -> Centralize:
    r"""Subtract from each matrix-like update its mean over all but the first axis
    (``optax.centralize``; Yong et al., 2020, "Gradient Centralization: A New Optimization
    Technique for Deep Neural Networks").

    .. math:: u_{t,i\ldots} = g_{t,i\ldots} - \operatorname{mean}_{j\ldots}\, g_{t,ij\ldots}

    for leaves of rank :math:`\ge 2`; vectors and scalars pass unchanged. The first axis is
    the output axis of PyTorch's weights (``(out, in, kh, kw)``), as in the paper and optax;
    for flax's ``(in, out)`` kernels the mean is taken over the outputs instead.

    Returns:
      A ``Centralize`` transformation (an :class:`optim.GradientTransformation`) with an
      empty state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.centralize()
      >>> grads = {"w": jnp.array([[1.0, 3.0], [0.0, 4.0]])}
      >>> updates, _ = tx.update(grads, tx.init({"w": jnp.zeros((2, 2))}))
      >>> print(updates["w"])
      [[-1.  1.]
       [-2.  2.]]

    References:
      Yong et al., 2020, https://arxiv.org/abs/2004.01461
    """
    return Centralize()


@pytree_dataclass
class NormalizeByUpdateNorm(Transformation):
    r"""Scale by the inverse of the global norm of the updates:

    .. math:: u_t = s\, \frac{g_t}{\lVert g_t \rVert_2 + \epsilon},

    the norm taken over all leaves together; :math:`s` = ``scale_factor`` (negative for a
    descent step with no other scaling). Where :math:`\lVert g_t\rVert_2 + \epsilon = 0`
    (every update 0 and :math:`\epsilon = 0`) the updates stay 0, where optax's are NaN.
    Built by :func:`optim.normalize_by_update_norm`.

    Attributes:
      scale_factor: :math:`s` (float32).
      eps: :math:`\epsilon` (float32, >= 0).
    """

    scale_factor: Any = hyper_field()
    eps: Any = nonnegative()

    def init(self, params: PyTree) -> EmptyState:
        check_params(params)
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        total = global_norm(updates) + self.eps
        # optax's order of operations, (norm + eps) / s, keeps the values bit for bit.
        denominator = jnp.where(total > 0, total, 1.0) / self.scale_factor
        normalized = map_arrays(lambda g: upcast(g) / denominator, updates)
        return cast_like_grads(normalized, updates), state


@suggest_keywords
def normalize_by_update_norm(scale_factor: Any = 1.0, eps: Any = 1e-6) -> NormalizeByUpdateNorm:
    r"""Divide the updates by their global norm (plus ``eps``) and multiply by ``scale_factor``
    (``optax.normalize_by_update_norm``).

    .. math:: u_t = s\, \frac{g_t}{\lVert g_t \rVert_2 + \epsilon},

    the norm taken over all floating leaves together, in float32 or wider. Where
    :math:`\lVert g_t\rVert_2 + \epsilon = 0` the updates stay 0, where optax's are NaN.

    Args:
      scale_factor: :math:`s`, a finite real number: the norm of the result (negative for a
        descent step with no other scaling).
      eps: :math:`\epsilon`, added to the norm to keep the division finite: a number >= 0.

    Returns:
      A ``NormalizeByUpdateNorm`` transformation (an :class:`optim.GradientTransformation`)
      with an empty state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.normalize_by_update_norm(scale_factor=-0.1, eps=0.0)
      >>> updates, _ = tx.update({"w": jnp.array([3.0, -4.0])}, tx.init({"w": jnp.zeros(2)}))
      >>> print(updates["w"])
      [-0.06  0.08]
    """
    return NormalizeByUpdateNorm(
        scale_factor=scale_factor,
        eps=eps,
    )
