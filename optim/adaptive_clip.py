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


def _axes(
    shape: tuple[int, ...], axis: int | tuple[int, ...] | None, where: str, caller: str
) -> tuple[int, ...] | None:
    """The reduction axes for an array of ``shape`` (``axis``, checked; or by rank when None);
    ``where`` names the array and ``caller`` the function in errors."""
    if axis is None:
        axes = _default_axes(shape)
        if axes == ():
            raise ValueError(
                f"{caller}: {where} has shape {shape}; without axis, units are defined for "
                "ranks 1 to 5 only. Pass axis= (the axes a unit's norm sums over) for other "
                "shapes."
            )
        return axes
    axes = (axis,) if isinstance(axis, int) else axis
    if any(not -len(shape) <= a < len(shape) for a in axes):
        raise ValueError(f"{caller}: axis={axis} is out of range for {where} of shape {shape}")
    return axes


def _unitwise_norm(x: jax.Array, axes: tuple[int, ...] | None) -> jax.Array:
    """Each unit's norm in float32 or wider, broadcast to ``x``'s shape."""
    squares = jnp.sum(abs_sq(upcast(x)), axis=axes, keepdims=True)
    return jnp.broadcast_to(jnp.sqrt(squares), x.shape)


def unitwise_norm(x: Any, axis: int | tuple[int, ...] | None = None) -> jax.Array:
    r"""The Euclidean (Frobenius) norm of each unit of ``x``, broadcast to ``x``'s shape
    (``optax.transforms.unitwise_norm``).

    A unit is a slice of ``x`` over the axes ``axis``; without ``axis`` they are chosen by
    rank as in optax: a scalar or vector (or an array with one axis longer than 1) is one
    unit; rank 2 and 3 (dense and multi-head dense kernels, inputs first) sum axis 0; rank 4
    (HWIO convolutions) axes 0-2; rank 5 (DHWIO) axes 0-3. Computed in at least float32 and
    returned in ``x``'s (real) dtype.

    Args:
      x: an array.
      axis: the axis or axes a unit's norm sums over; None: by rank, as above.

    Returns:
      An array of ``x``'s shape holding, at each entry, the norm of its unit.

    Raises:
      ValueError: ``axis`` is None and ``x`` has rank 6 or more, or ``axis`` is out of range.
      TypeError: ``axis`` is not None, an int or a tuple of ints.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.transforms.unitwise_norm(jnp.array([[3.0, 1.0], [4.0, 0.0]])).tolist()
      [[5.0, 1.0], [5.0, 1.0]]
    """
    x = jnp.asarray(x)
    norm = _unitwise_norm(x, _axes(x.shape, _check_axis(axis), "x", "unitwise_norm"))
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return norm.astype(jnp.finfo(x.dtype).dtype)
    return norm


def unitwise_clip(g_norm: Any, max_norm: Any, grad: Any, div_eps: Any = _DIV_EPS) -> jax.Array:
    r"""Scale each unit of ``grad`` whose norm is not below ``max_norm`` down to that norm
        (``optax.transforms.unitwise_clip``).

        .. math:: u = egin{cases} g & \lVert g
    Vert < m \ g\, m / \max(\lVert g
    Vert,
            \epsilon_{div}) & 	ext{otherwise,} \end{cases}

        elementwise, with the unit norms :math:`\lVert g
    Vert` = ``g_norm`` (as
        ``unitwise_norm`` returns them) and :math:`m` = ``max_norm``. :math:`\epsilon_{div}`
        only keeps the division finite.

        Args:
          g_norm: the unit norms of ``grad``, broadcast to its shape.
          max_norm: the largest norm allowed, of the same shape.
          grad: the array to clip.
          div_eps: the floor of ``g_norm`` in the division.

        Returns:
          The clipped array.

        Raises:
          ValueError: the three arrays do not have the same shape.

        Examples:
          >>> import jax.numpy as jnp, optim
          >>> g = jnp.array([3.0, 4.0])
          >>> norm = optim.transforms.unitwise_norm(g)
          >>> optim.transforms.unitwise_clip(norm, jnp.full(2, 1.0), g).tolist()
          [0.6000000238418579, 0.800000011920929]
    """
    g_norm, max_norm, grad = jnp.asarray(g_norm), jnp.asarray(max_norm), jnp.asarray(grad)
    for name, value in (("max_norm", max_norm), ("grad", grad)):
        if value.shape != g_norm.shape:
            raise ValueError(
                f"unitwise_clip: {name} has shape {value.shape} but g_norm has shape "
                f"{g_norm.shape}; they must be equal"
            )
    clipped = grad * (max_norm / jnp.maximum(g_norm, div_eps))
    return jnp.where(g_norm < max_norm, grad, clipped)


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
        return _axes(shape, self.axis, where, "adaptive_grad_clip")

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
            max_norm = self.clipping * jnp.maximum(_unitwise_norm(p, leaf_axes), self.eps)
            return unitwise_clip(_unitwise_norm(g32, leaf_axes), max_norm, g32, _DIV_EPS)

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
