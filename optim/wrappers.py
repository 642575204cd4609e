"""Wrappers that change which leaves a transformation sees."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax

from optim._pytree import pytree_dataclass, static
from optim._tree import PyTree, keystr
from optim.base import as_transformation


class MaskedState(NamedTuple):
    """The wrapped transformation's state, built from the selected leaves only."""

    inner_state: Any


@dataclasses.dataclass(frozen=True)
class StaticTree:
    """A pytree of Python values held as static metadata (a mask, labels).

    Hashed and compared by value, so re-creating an optimizer with an equal mask reuses the
    compiled program.
    """

    treedef: Any
    leaves: tuple

    def value(self) -> PyTree:
        return jax.tree.unflatten(self.treedef, self.leaves)


def _none_like(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda _: None, tree, is_leaf=lambda x: x is None)


@pytree_dataclass
class Masked:
    r"""Apply ``inner`` to the leaves where the mask is True; pass the others through.

    :math:`u_t = T(g_t)` on selected leaves, :math:`u_t = g_t` elsewhere. Unselected leaves
    are hidden from ``inner`` as ``None``, so they get no state.
    """

    inner: Any
    mask: Any = static()
    mask_compatible_extra_args: bool = static(False)

    def _mask_tree(self, tree: PyTree) -> PyTree:
        mask = self.mask.value() if isinstance(self.mask, StaticTree) else self.mask(tree)
        for path, m in jax.tree_util.tree_flatten_with_path(mask)[0]:
            if not isinstance(m, bool):
                raise TypeError(
                    f"mask{keystr(path)} must be a Python bool (masks are static), got {m!r}"
                )
        return mask

    def _hide(self, tree: PyTree, mask: PyTree) -> PyTree:
        try:
            return jax.tree.map(lambda m, sub: sub if m else _none_like(sub), mask, tree)
        except ValueError as e:
            raise ValueError(f"mask must be a prefix of the params tree: {e}") from None

    def init(self, params: PyTree) -> MaskedState:
        return MaskedState(self.inner.init(self._hide(params, self._mask_tree(params))))

    def update(self, updates, state, params=None, **extra_args):
        mask = self._mask_tree(updates)
        hidden_params = None if params is None else self._hide(params, mask)
        if self.mask_compatible_extra_args:
            structure = jax.tree.structure(updates)
            extra_args = {
                k: self._hide(v, mask) if jax.tree.structure(v) == structure else v
                for k, v in extra_args.items()
            }
        new, inner_state = self.inner.update(
            self._hide(updates, mask), state.inner_state, hidden_params, **extra_args
        )
        merged = jax.tree.map(lambda m, n, o: n if m else o, mask, new, updates)
        return merged, MaskedState(inner_state)


def masked(inner: Any, mask: Any, *, mask_compatible_extra_args: bool = False) -> Masked:
    """Apply ``inner`` only where ``mask`` (a bool pytree or a function of params) is True.

    With ``mask_compatible_extra_args``, extra keyword arguments of ``update`` that have the
    structure of the updates are masked too (as in ``optax.masked``).
    """
    inner = as_transformation(inner, "inner")
    if not callable(mask):
        leaves, treedef = jax.tree.flatten(mask)
        mask = StaticTree(treedef, tuple(leaves))
    return Masked(inner, mask, bool(mask_compatible_extra_args))
