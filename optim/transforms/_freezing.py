"""Freezing parameters: zero updates for the leaves a mask selects (``freeze``), or a whole
optimizer applied to the others only (``selective_transform``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from optim._keywords import suggest_keywords
from optim._tree import (
    PyTree,
    check_prefix,
    is_array,
    is_tree_function,
    keystr,
)
from optim.base import as_transformation, set_to_zero
from optim.transforms._combining import Partition, partition
from optim.transforms._common import StaticTree
from optim.transforms._masking import Masked, masked


def _static_bool(m: Any) -> Any:
    """A concrete boolean scalar array as a Python bool; anything else unchanged."""
    if (
        is_array(m)
        and not isinstance(m, jax.core.Tracer)
        and np.shape(m) == ()
        and m.dtype == np.bool_
    ):
        return bool(m)
    return m


@suggest_keywords
def freeze(mask: Any) -> Masked:
    r"""Zero the updates where ``mask`` is True: :math:`u_i = 0` there, :math:`g_i` elsewhere.

    ``optax.freeze``: :func:`optim.masked` around :func:`optim.set_to_zero`. Chained after an
    optimizer, the frozen leaves still have optimizer state (see
    :func:`optim.selective_transform` for none).

    Args:
      mask: one bool (freeze all or nothing), a tree of bools with the structure of the
        params or a prefix of it, or a function of the params returning one; True freezes.
        Concrete boolean scalar arrays are read as Python bools.

    Returns:
      A ``Masked`` transformation (an :class:`optim.GradientTransformation`) whose state is
      a :class:`optim.MaskedState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.chain(optim.sgd(learning_rate=0.1), optim.freeze({"w": False, "b": True}))
      >>> params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array([0.5])}
      >>> grads = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])}
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> print(updates["w"], updates["b"])
      [-0.1  0.2] [0.]
    """
    if not is_tree_function(mask):
        mask = jax.tree.map(_static_bool, mask)
    return masked(set_to_zero(), mask)


def _freeze_labels(freeze_mask: PyTree) -> PyTree:
    """``"freeze"`` where ``freeze_mask`` is True, ``"train"`` where it is False."""

    def label(path: Any, m: Any) -> str:
        m = _static_bool(m)
        if not isinstance(m, bool):
            raise TypeError(
                f"freeze_mask{keystr(path)} must be a Python bool or a concrete boolean "
                f"scalar (masks are static), got {m!r}"
            )
        return "freeze" if m else "train"

    return jax.tree_util.tree_map_with_path(label, freeze_mask)


@dataclasses.dataclass(frozen=True)
class _FreezeLabels:
    """``selective_transform``'s labels: ``mask`` (a ``StaticTree`` of bools, or a function of
    the params returning a tree of them) as ``"freeze"``/``"train"``, checked against the
    params so that errors name ``freeze_mask``. Compared by value, so re-creating the
    optimizer with an equal mask reuses the compiled program."""

    mask: Any

    def __call__(self, params: PyTree) -> PyTree:
        mask = self.mask.value() if isinstance(self.mask, StaticTree) else self.mask(params)
        labels = _freeze_labels(mask)
        check_prefix(labels, params, "freeze_mask")
        return labels


@suggest_keywords
def selective_transform(optimizer: Any, *, freeze_mask: Any) -> Partition:
    r"""Apply ``optimizer`` to the leaves where ``freeze_mask`` is False and zero the updates
    where it is True: :math:`u_i = 0` where frozen, :math:`T(g)_i` elsewhere
    (``optax.selective_transform``).

    Unlike ``freeze(mask)`` chained after an optimizer, the frozen leaves get no optimizer
    state. The state is ``partition``'s, with labels ``"train"`` and ``"freeze"``, as in
    optax.

    Args:
      optimizer: the optimizer of the leaves that are not frozen (ours or optax's).
      freeze_mask: keyword only: one bool, a tree of bools with the structure of the params
        (or a prefix of it), or a function of the params returning one (optax takes no
        function); True freezes. Concrete boolean scalar arrays are read as Python bools.

    Returns:
      A ``Partition`` transformation (an :class:`optim.GradientTransformation`) whose state
      is a :class:`optim.PartitionState` with the labels ``"train"`` and ``"freeze"``.

    Raises:
      TypeError: ``optimizer`` is not a transformation, or a mask value is not a bool.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.selective_transform(
      ...     optim.sgd(learning_rate=0.1), freeze_mask={"w": False, "b": True}
      ... )
      >>> params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array([0.5])}
      >>> grads = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])}
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> print(updates["w"], updates["b"], sorted(state.inner_states))
      [-0.1  0.2] [0.] ['freeze', 'train']
    """
    optimizer = as_transformation(optimizer, "optimizer")
    if not is_tree_function(freeze_mask):
        _freeze_labels(freeze_mask)  # a leaf that is not a bool fails here, not at init
        leaves, treedef = jax.tree.flatten(jax.tree.map(_static_bool, freeze_mask))
        freeze_mask = StaticTree(treedef, tuple(leaves))
    return partition({"train": optimizer, "freeze": set_to_zero()}, _FreezeLabels(freeze_mask))
