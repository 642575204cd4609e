"""Slow copies of the parameters: a moving average (Polyak averaging) or a periodic copy.

``incremental_update`` and ``periodic_update`` are functions of two parameter trees, as in
optax: call them in the training step to keep an averaged model for evaluation or a target
network. Only floating (or complex) array leaves are averaged or copied; ``None`` stays
``None`` and other leaves (the functions and Python numbers of an equinox or flax module) are
taken from ``new_tensors``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import hyper
from optim._keywords import suggest_keywords
from optim._tree import PyTree, check_same_structure, is_array, is_trainable, upcast

__all__ = ["incremental_update", "periodic_update"]


def _is_none(x: Any) -> bool:
    return x is None


def _check_trees(new_tensors: PyTree, old_tensors: PyTree) -> None:
    check_same_structure(new_tensors, old_tensors, "new_tensors", "old_tensors")


@suggest_keywords
def incremental_update(new_tensors: PyTree, old_tensors: PyTree, step_size: Any) -> PyTree:
    r"""A moving average of the parameters, Polyak averaging (``optax.incremental_update``).

    .. math:: \bar\theta \leftarrow \alpha\,\theta + (1 - \alpha)\,\bar\theta,

    :math:`\alpha` = ``step_size``. Computed in at least float32; each leaf of the result has
    the dtype of its new and old values promoted together, as in optax.

    References:
      Polyak & Juditsky, 1992, "Acceleration of Stochastic Approximation by Averaging"
      (SIAM J. Control Optim. 30(4)).

    Args:
      new_tensors: the latest parameters :math:`\theta`.
      old_tensors: their moving average :math:`\bar\theta`, same structure and shapes.
      step_size: :math:`\alpha`, in [0, 1] (a float32 scalar; may be traced).

    Returns:
      The new moving average.

    Raises:
      ValueError: the trees' structures or shapes differ, or ``step_size`` is outside [0, 1].
      TypeError: ``step_size`` is not a number.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> average = optim.incremental_update({"w": jnp.ones(2)}, {"w": jnp.zeros(2)}, 0.25)
      >>> average["w"].tolist()
      [0.25, 0.25]
    """
    step_size = hyper(step_size, "step_size", low=0.0, high=1.0, schedule=False)
    _check_trees(new_tensors, old_tensors)

    def average(new: Any, old: Any) -> Any:
        if new is None:
            return None
        if not (is_trainable(new) and is_trainable(old)):
            return new
        dtype = jnp.promote_types(new.dtype, old.dtype)
        return (step_size * upcast(new) + (1 - step_size) * upcast(old)).astype(dtype)

    return jax.tree.map(average, new_tensors, old_tensors, is_leaf=_is_none)


def _integer(value: Any, name: str, low: int) -> Any:
    """An integer scalar (Python int or integer array, possibly traced), ``>= low`` when
    concrete."""
    if isinstance(value, (bool, np.bool_)) or not (
        isinstance(value, (int, np.integer))
        or (is_array(value) and jnp.issubdtype(jnp.result_type(value), jnp.integer))
    ):
        raise TypeError(f"{name} must be an int (or an integer array), got {value!r}")
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar, got shape {np.shape(value)}")
    if not isinstance(value, jax.core.Tracer) and int(value) < low:
        raise ValueError(f"{name} must be >= {low}, got {int(value)}")
    return value


@suggest_keywords
def periodic_update(
    new_tensors: PyTree, old_tensors: PyTree, steps: Any, update_period: Any
) -> PyTree:
    r"""A copy of the parameters refreshed every ``update_period`` steps
    (``optax.periodic_update``).

    .. math:: \bar\theta \leftarrow \begin{cases} \theta & t \bmod k = 0 \\ \bar\theta &
        \text{otherwise,} \end{cases}

    :math:`t` = ``steps``, :math:`k` = ``update_period``: a target network (Mnih et al., 2015,
    "Human-level control through deep reinforcement learning") or a slow copy for
    self-supervision (Grill et al., 2020, "Bootstrap your own latent").

    Args:
      new_tensors: the latest parameters :math:`\theta`.
      old_tensors: the slow copy :math:`\bar\theta`, same structure and shapes.
      steps: the number of updates made to ``new_tensors`` (an int or integer array; may be
        traced).
      update_period: :math:`k \ge 1` (an int or integer array; may be traced).

    Returns:
      The new slow copy; leaves keep ``old_tensors``' dtypes.

    Raises:
      ValueError: the trees' structures or shapes differ, or ``update_period < 1``.
      TypeError: ``steps`` or ``update_period`` is not an integer.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> target = {"w": jnp.zeros(2)}
      >>> [optim.periodic_update({"w": jnp.ones(2)}, target, t, 3)["w"].tolist() for t in (2, 3)]
      [[0.0, 0.0], [1.0, 1.0]]
    """
    steps = _integer(steps, "steps", 0)
    update_period = _integer(update_period, "update_period", 1)
    _check_trees(new_tensors, old_tensors)
    new_leaves, treedef = jax.tree.flatten(new_tensors, is_leaf=_is_none)
    old_leaves = jax.tree.leaves(old_tensors, is_leaf=_is_none)
    # Only array leaves go through the cond (its branches must return arrays); the others
    # (None, functions, Python numbers) are new_tensors'.
    pairs = enumerate(zip(new_leaves, old_leaves, strict=True))
    copied = [i for i, (n, o) in pairs if is_array(n) and is_array(o)]
    chosen = jax.lax.cond(
        jnp.mod(steps, update_period) == 0,
        lambda: [jnp.asarray(new_leaves[i], jnp.result_type(old_leaves[i])) for i in copied],
        lambda: [jnp.asarray(old_leaves[i]) for i in copied],
    )
    out = list(new_leaves)
    for i, leaf in zip(copied, chosen, strict=True):
        out[i] = leaf
    return jax.tree.unflatten(treedef, out)
