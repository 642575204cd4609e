"""Adaptive gradient clipping: clip each unit's update relative to its parameters' norm."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import hyper
from optim._numerics import cast_like_grads
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    abs_sq,
    check_params,
    is_trainable,
    keystr,
    leaves_with_paths,
    map_arrays,
    upcast,
)
from optim.base import EmptyState, Transformation, check_updates, require_params

__all__ = ["AdaptiveGradClipState", "adaptive_grad_clip"]

AdaptiveGradClipState = EmptyState

# Floor of the update norm in the clipped branch's division, as optax's ``unitwise_clip``:
# that branch is taken only where the update norm exceeds a positive bound, so it never binds
# unless clipping * max(param norm, eps) < 1e-6.
_DIV_EPS = 1e-6


def _default_axes(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The axes a unit's norm sums over (None: the whole array), by rank as in optax: a
    vector (or an array with one non-unit axis) is one unit; rank 2 and 3 (dense, multi-head
    dense: inputs first) sum axis 0; rank 4 (HWIO convolutions) axes 0-2; rank 5 (DHWIO) 0-3.
    """
    if sum(d != 1 for d in shape) <= 1:
        return None
    return {2: (0,), 3: (0,), 4: (0, 1, 2), 5: (0, 1, 2, 3)}.get(len(shape), ())


def _unitwise_norm(x: jax.Array, axes: tuple[int, ...] | None) -> jax.Array:
    return jnp.sqrt(jnp.sum(abs_sq(upcast(x)), axis=axes, keepdims=True))


@pytree_dataclass
class AdaptiveGradClip(Transformation):
    r"""Adaptive gradient clipping (Brock et al., 2021, "High-Performance Large-Scale Image
    Recognition Without Normalization").

    For each unit (a slice of a leaf; see ``adaptive_grad_clip``) with update :math:`G` and
    parameters :math:`W`:

    .. math:: u = \begin{cases} G & \lVert G\rVert < \lambda \max(\lVert W\rVert, \epsilon)
        \\ \lambda \max(\lVert W\rVert, \epsilon)\, G / \lVert G\rVert & \text{otherwise,}
        \end{cases}

    Frobenius norms, :math:`\lambda` = ``clipping``. Complex leaves are supported (the norms
    use :math:`|x|^2`).
    """

    clipping: Any
    eps: Any
    axis: Any = static(None)

    def init(self, params: PyTree) -> AdaptiveGradClipState:
        check_params(params)
        return AdaptiveGradClipState()

    def _axes(self, shape: tuple[int, ...], where: str) -> tuple[int, ...] | None:
        """The reduction axes for a leaf of ``shape``; ``where`` names it in errors."""
        if self.axis is None:
            axes = _default_axes(shape)
            if axes == ():
                raise ValueError(
                    f"adaptive_grad_clip: {where} has shape {shape}; without axis, units are "
                    "defined for ranks 1 to 5 only. Pass axis= (the axes a unit's norm sums "
                    "over) for other shapes."
                )
            return axes
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        if any(not -len(shape) <= a < len(shape) for a in axes):
            raise ValueError(
                f"adaptive_grad_clip: axis={self.axis} is out of range for {where} of shape {shape}"
            )
        return axes

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "adaptive_grad_clip")
        check_updates(updates, params, "params")
        for path, p in leaves_with_paths(params):
            if is_trainable(p):
                self._axes(np.shape(p), f"params{keystr(path)}")  # raises naming the leaf

        def clip(g: jax.Array, p: jax.Array) -> jax.Array:
            leaf_axes = self._axes(np.shape(p), "params")
            g32 = upcast(g)
            g_norm = _unitwise_norm(g32, leaf_axes)
            max_norm = self.clipping * jnp.maximum(_unitwise_norm(p, leaf_axes), self.eps)
            clipped = g32 * (max_norm / jnp.maximum(g_norm, _DIV_EPS))
            return jnp.where(g_norm < max_norm, g32, clipped)

        return cast_like_grads(map_arrays(clip, updates, params), updates), state


def _check_axis(axis: Any) -> int | tuple[int, ...] | None:
    def is_int(a: Any) -> bool:
        return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))

    if axis is None or is_int(axis):
        return None if axis is None else int(axis)
    if isinstance(axis, (tuple, list)) and all(is_int(a) for a in axis):
        return tuple(int(a) for a in axis)
    raise TypeError(f"axis must be None, an int or a tuple of ints, got {axis!r}")


def adaptive_grad_clip(
    clipping: Any, eps: Any = 1e-3, axis: int | tuple[int, ...] | None = None
) -> AdaptiveGradClip:
    """Clip each unit's update to at most ``clipping`` times its parameters' norm
    (``optax.adaptive_grad_clip``; needs ``params`` in ``update``).

    ``eps`` floors the parameter norm, so zero-initialised parameters can still move.
    ``axis``: the axes a unit's norm sums over; ``None`` chooses them by rank as optax does
    (vectors and scalars: the whole leaf; rank 2-3: axis 0; rank 4: axes 0-2; rank 5: axes
    0-3; other ranks raise ``ValueError`` naming the leaf).
    """
    return AdaptiveGradClip(
        clipping=hyper(clipping, "clipping", schedule=False, low=0.0),
        eps=hyper(eps, "eps", schedule=False, low=0.0),
        axis=_check_axis(axis),
    )
