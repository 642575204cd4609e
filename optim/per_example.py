"""Per-example gradient clipping for differentially private training (optax's functions).

Both functions take gradients with a batch dimension on axis 0 of every floating leaf (one
gradient per example, e.g. from ``jax.vmap(jax.grad(loss), (None, 0))``), clip each example's
gradient to a bound and return the sum over the batch with the number of examples clipped.
Norms and sums are computed in float32 or wider; the sums leave in each leaf's dtype. Leaves
that are not floating arrays get ``None``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import check_flag, hyper
from optim._tree import (
    PyTree,
    abs_sq,
    check_float_updates,
    is_trainable,
    keystr,
    leaves_with_paths,
    map_arrays,
    upcast,
)

__all__ = ["per_example_global_norm_clip", "per_example_layer_norm_clip"]


def _clip_bound(value: Any, name: str) -> jax.Array:
    """A clipping norm: a number >= 0 as a float32 scalar, ``inf`` (no clipping, as in
    optax's examples) included."""
    if (
        isinstance(value, (float, np.floating, np.ndarray, jax.Array))
        and not isinstance(value, jax.core.Tracer)
        and np.shape(value) == ()
        and np.isrealobj(value)
        and np.isposinf(value)
    ):
        return jnp.asarray(np.inf, jnp.float32)
    return hyper(value, name, schedule=False, low=0.0)


def _per_example_leaves(grads: PyTree, function: str) -> list[jax.Array]:
    """The floating leaves of ``grads``, after checking they share a batch size on axis 0."""
    check_float_updates(grads)
    leaves = [(path, x) for path, x in leaves_with_paths(grads) if is_trainable(x)]
    if not leaves:
        raise ValueError(f"{function}: grads has no floating array leaves to clip")
    first_path, first = leaves[0]
    for path, x in leaves:
        if x.ndim == 0:
            raise ValueError(
                f"{function}: grads{keystr(path)} is a scalar; each leaf of grads must hold "
                "one gradient per example along axis 0 (a batch dimension)"
            )
        if x.shape[0] != first.shape[0]:
            raise ValueError(
                f"{function}: grads{keystr(path)} has {x.shape[0]} examples on axis 0 but "
                f"grads{keystr(first_path)} has {first.shape[0]}; every leaf of grads must "
                "hold one gradient per example along axis 0"
            )
    return [x for _, x in leaves]


def _squared_norms(x: jax.Array) -> jax.Array:
    """The squared norm of each example's slice of ``x`` (shape ``[batch]``)."""
    return jnp.sum(abs_sq(upcast(x)), axis=tuple(range(1, x.ndim)))


def _clip_and_sum(grads: PyTree, norms: jax.Array, bound: jax.Array) -> tuple[PyTree, jax.Array]:
    r""":math:`\sum_i \min(1, C / n_i)\, g_i` over the examples :math:`i` (multiplier 1 where
    :math:`C / n_i` is NaN: :math:`0/0` or :math:`\infty/\infty`) and the number of examples
    with a multiplier below 1."""
    multipliers = jnp.nan_to_num(jnp.minimum(bound / norms, 1.0), nan=1.0)
    clipped_sum = map_arrays(
        lambda g: jnp.tensordot(multipliers, upcast(g), axes=1).astype(g.dtype), grads
    )
    return clipped_sum, jnp.sum(multipliers < 1.0).astype(jnp.int32)


def per_example_global_norm_clip(grads: PyTree, l2_norm_clip: Any) -> tuple[PyTree, jax.Array]:
    r"""Clip each example's gradient to global norm ``l2_norm_clip`` and sum over the batch
    (Abadi et al., 2016, "Deep Learning with Differential Privacy").

    .. math:: \bar g = \sum_i g_i \min\!\Big(1, \frac{C}{\lVert g_i \rVert_2}\Big),

    :math:`g_i` example :math:`i`'s gradient (the slices ``[i]`` of every leaf), its norm taken
    over all leaves together. ``l2_norm_clip`` = :math:`C \ge 0`, or ``inf`` for no clipping.

    Returns:
      ``(clipped_sum, num_clipped)``: the sum with the structure of ``grads`` (without the
      batch axis), and the number of examples clipped (int32).

    Raises:
      ValueError: a leaf has no batch axis or another batch size than the first (the
        error names its path); ``l2_norm_clip`` is negative or NaN.
      TypeError: a leaf is an integer array (optax would accept it; here gradients are
        floating, as everywhere in optim).
    """
    bound = _clip_bound(l2_norm_clip, "l2_norm_clip")
    leaves = _per_example_leaves(grads, "per_example_global_norm_clip")
    norms = jnp.sqrt(sum(_squared_norms(x) for x in leaves))
    return _clip_and_sum(grads, norms, bound)


def per_example_layer_norm_clip(
    grads: PyTree, global_l2_norm_clip: Any, uniform: bool = True
) -> tuple[PyTree, PyTree]:
    r"""Clip each example's gradient layer by layer and sum over the batch (McMahan et al.,
    2017, "Learning Differentially Private Recurrent Language Models").

    Each floating leaf :math:`k` ("layer") of each example is clipped to its own norm

    .. math:: C_k = C / \sqrt{K}\ \ (\text{uniform}) \qquad\text{or}\qquad
        C_k = C \sqrt{D_k / D}\ \ (\text{otherwise}),

    :math:`K` the number of layers, :math:`D_k` the size of one example's slice of layer
    :math:`k` and :math:`D = \sum_k D_k`; then :math:`\bar g_k = \sum_i g_{ik}
    \min(1, C_k / \lVert g_{ik}\rVert_2)`. Either way :math:`\sum_k C_k^2 = C^2`: a clipped
    example's global norm is at most :math:`C`. With one layer this is
    ``per_example_global_norm_clip``.

    Returns:
      ``(clipped_sums, num_clipped)``: two trees with the structure of ``grads``, the
      clipped sums and, per layer, the number of examples clipped (int32).

    Raises:
      ValueError, TypeError: as ``per_example_global_norm_clip``; ``uniform`` not a bool
        raises ``TypeError``.
    """
    bound = _clip_bound(global_l2_norm_clip, "global_l2_norm_clip")
    uniform = check_flag(uniform, "uniform")
    leaves = _per_example_leaves(grads, "per_example_layer_norm_clip")
    total_size = sum(x.size // x.shape[0] for x in leaves)

    def clip_layer(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        # The fraction in Python floats (float64), as optax, before it meets the float32 bound.
        fraction = 1.0 / len(leaves) if uniform else (x.size // x.shape[0]) / total_size
        norms = jnp.sqrt(_squared_norms(x))
        return _clip_and_sum(x, norms, bound * fraction**0.5)

    flat, treedef = jax.tree.flatten(grads, is_leaf=lambda x: x is None)
    pairs = [clip_layer(x) if is_trainable(x) else (None, None) for x in flat]
    return (
        jax.tree.unflatten(treedef, [total for total, _ in pairs]),
        jax.tree.unflatten(treedef, [count for _, count in pairs]),
    )
