"""Clipping: bound each update element, or the norm of all of them together."""

from __future__ import annotations

from typing import Any, ClassVar

import jax.numpy as jnp

from optim._hyper import hyper
from optim._pytree import pytree_dataclass
from optim._tree import PyTree, check_float_updates, global_norm, map_arrays, upcast
from optim.base import EmptyState, Transformation

# The states of clip and clip_by_global_norm: empty, as in optax (where they are aliases too).
ClipState = EmptyState
ClipByGlobalNormState = EmptyState


@pytree_dataclass
class Clip(Transformation):
    r"""Element-wise clipping: :math:`u_t = \min(\max(g_t, -c), c)`."""

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    max_delta: Any

    def init(self, params: PyTree) -> ClipState:
        del params
        return ClipState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        c = self.max_delta
        return map_arrays(lambda g: jnp.clip(upcast(g), -c, c).astype(g.dtype), updates), state


def clip(max_delta: Any) -> Clip:
    """Clip every update element to ``[-max_delta, max_delta]`` (``optax.clip``)."""
    return Clip(hyper(max_delta, "max_delta", schedule=False, low=0.0))


@pytree_dataclass
class ClipByGlobalNorm(Transformation):
    r"""Global-norm clipping (Pascanu et al., 2013, "On the difficulty of training RNNs").

    .. math:: u_t = g_t \cdot \min(1, c / \lVert g_t \rVert_2),

    the norm taken over all leaves together (in float32 or wider).
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim._flat)

    max_norm: Any

    def init(self, params: PyTree) -> ClipByGlobalNormState:
        del params
        return ClipByGlobalNormState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        norm = global_norm(updates)  # raises TypeError for integer updates
        keep = norm < self.max_norm

        def clip_leaf(g):
            g32 = upcast(g)
            return jnp.where(keep, g32, g32 / norm.astype(g32.dtype) * self.max_norm).astype(
                g.dtype
            )

        return map_arrays(clip_leaf, updates), state


def clip_by_global_norm(max_norm: Any) -> ClipByGlobalNorm:
    """Rescale updates so that their global norm is at most ``max_norm``."""
    return ClipByGlobalNorm(hyper(max_norm, "max_norm", schedule=False, low=0.0))
