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

    ``mask`` is one bool (freeze all or nothing), a tree of bools with the structure of the
    params or a prefix of it, or a function of the params returning one (``optax.freeze``).
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
    state. ``freeze_mask`` is one bool, a tree of bools with the structure of the params (or
    a prefix of it), or a function of the params returning one (optax takes no function).
    The state is ``partition``'s, with labels ``"train"`` and ``"freeze"``, as in optax.
    """
    optimizer = as_transformation(optimizer, "optimizer")
    if not is_tree_function(freeze_mask):
        _freeze_labels(freeze_mask)  # a leaf that is not a bool fails here, not at init
        leaves, treedef = jax.tree.flatten(jax.tree.map(_static_bool, freeze_mask))
        freeze_mask = StaticTree(treedef, tuple(leaves))
    return partition({"train": optimizer, "freeze": set_to_zero()}, _FreezeLabels(freeze_mask))
