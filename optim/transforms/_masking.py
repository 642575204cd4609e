"""Masking: apply a transformation to the leaves a mask selects and pass the others through.

A wrapper is a pytree whose children are the wrapped transformations (so their float
hyperparameters stay leaves) and its own float hyperparameters; masks, step counts, flags and
functions are static metadata. Names, arguments, defaults and state fields follow optax.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from optim._hyper import flag
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_prefix,
    check_same_structure,
    is_trainable,
    is_tree_function,
    keystr,
)
from optim.base import Transformation, as_transformation
from optim.transforms._common import StaticTree
from optim.tree._map_params import is_params_placeholder


class MaskedState(NamedTuple):
    """The wrapped transformation's state, built from the selected leaves only.

    Attributes:
      inner_state: the state of the wrapped transformation, initialised from the parameters
        with the masked-out parts replaced by :class:`optim.MaskedNode` (so they have no
        state slots).
    """

    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands for a masked-out part of the parameters in the tree ``masked`` gives its inner
    transformation (and so in the inner state), as ``optax.MaskedNode``.

    An empty NamedTuple: a pytree node without children, so ``jax.tree.map`` skips it.
    """


def _is_none(x: Any) -> bool:
    return x is None


def _none_like(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda _: None, tree, is_leaf=_is_none)


def _masked_out(sub: PyTree, like: PyTree | None = None) -> PyTree:
    """What the inner transformation sees for a masked-out subtree ``sub``.

    ``MaskedNode()``, as in optax, where the subtree holds a floating array (in ``like``, the
    updates at that place, when given); otherwise ``sub`` with ``None`` leaves. Functions,
    Python numbers and integer arrays of an equinox or flax model get ``None`` updates, and a
    mask function called on the updates has no entry there: hiding them as ``None`` at
    ``init`` (from the params) and at ``update`` (from the updates) gives the inner
    transformation the same structure both times.
    """
    like = sub if like is None else like
    if any(is_trainable(x) for x in jax.tree.leaves(like)):
        return MaskedNode()
    return _none_like(sub)


@pytree_dataclass
class Masked(Transformation):
    r"""Apply ``inner`` to the leaves where the mask is True; pass the others through.

    :math:`u_t = T(g_t)` on selected leaves, :math:`u_t = g_t` elsewhere. Unselected parts
    are hidden from ``inner`` as ``MaskedNode()`` (as in optax; ``None`` leaves where they
    hold no floating array), so they get no state. Built by :func:`optim.masked`.

    Attributes:
      inner: the wrapped transformation.
      mask: the mask (static): a ``StaticTree`` of Python bools, or a function of the params
        (or updates) returning such a tree.
      mask_compatible_extra_args: mask the extra arguments of ``update`` that have the
        structure of the updates too (static).
    """

    inner: Any
    mask: Any = static()
    mask_compatible_extra_args: bool = flag(False)

    def _mask_tree(self, tree: PyTree) -> PyTree:
        mask = self.mask.value() if isinstance(self.mask, StaticTree) else self.mask(tree)
        for path, m in jax.tree_util.tree_flatten_with_path(mask)[0]:
            if not isinstance(m, bool):
                raise TypeError(
                    f"mask{keystr(path)} must be a Python bool (masks are static), got {m!r}"
                )
        return mask

    def _hide(self, tree: PyTree, mask: PyTree, tree_name: str = "params") -> PyTree:
        check_prefix(mask, tree, "mask", tree_name)
        return jax.tree.map(lambda m, sub: sub if m else _masked_out(sub), mask, tree)

    def _hide_params(self, params: PyTree, mask: PyTree, updates: PyTree) -> PyTree:
        """``params`` hidden as ``updates`` are by ``mask`` (made from the updates).

        Where an update is ``None`` a mask function has no entry (a ``None`` in ``mask``);
        the parameter there (a function of an equinox model) is hidden as ``None`` too.
        """
        return jax.tree.map(
            lambda m, u, p: None if m is None else (p if m else _masked_out(p, like=u)),
            mask,
            updates,
            params,
            is_leaf=_is_none,
        )

    def init(self, params: PyTree) -> MaskedState:
        if is_params_placeholder(params):
            # map_params finds the parameter slots of the inner state: it needs them whole.
            return MaskedState(self.inner.init(params))
        return MaskedState(self.inner.init(self._hide(params, self._mask_tree(params))))

    def update(self, updates, state, params=None, **extra_args):
        mask = self._mask_tree(updates)
        if params is not None:
            check_same_structure(updates, params, "grads", "params")
        hidden_updates = self._hide(updates, mask, "grads")
        hidden_params = None if params is None else self._hide_params(params, mask, updates)
        if self.mask_compatible_extra_args:
            structure = jax.tree.structure(updates)
            extra_args = {
                k: self._hide(v, mask) if jax.tree.structure(v) == structure else v
                for k, v in extra_args.items()
            }
        new, inner_state = self.inner.update(
            hidden_updates, state.inner_state, hidden_params, **extra_args
        )
        merged = jax.tree.map(lambda m, n, o: n if m else o, mask, new, updates)
        return merged, MaskedState(inner_state)


@suggest_keywords
def masked(inner: Any, mask: Any, *, mask_compatible_extra_args: bool = False) -> Masked:
    r"""Apply ``inner`` only where ``mask`` is True; pass the other updates through
    (``optax.masked``).

    :math:`u_t = T(g_t)` on selected leaves, :math:`u_t = g_t` elsewhere. ``inner`` sees the
    masked-out parts as :class:`optim.MaskedNode` (``None`` where they hold no floating
    array), so it keeps no state for them. A mask tree is static and compared by value (an
    equal mask reuses the compiled program); a mask function is compared by identity, so
    pass the same function object to avoid recompiling.

    Args:
      inner: the transformation to apply to the selected leaves (ours or optax's).
      mask: a pytree of Python bools with the structure of the params (or a prefix of it: a
        bool then covers a whole subtree), or a function ``params -> such a pytree``; it is
        called on the params in ``init`` and on the updates in ``update``. Mask values must
        be Python ``True``/``False``, not arrays (masks are static metadata).
      mask_compatible_extra_args: also mask the extra keyword arguments of ``update`` that
        have the structure of the updates before passing them to ``inner``. True or False.

    Returns:
      A ``Masked`` transformation (an :class:`optim.GradientTransformation`) whose state is a
      :class:`optim.MaskedState`.

    Raises:
      TypeError: ``inner`` is not a transformation; (in ``init``/``update``) a mask value is
        not a Python bool.
      ValueError: (in ``init``/``update``) the mask is not a prefix of the params' structure.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.masked(optim.sgd(learning_rate=0.1), {"w": True, "b": False})
      >>> params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array([1.0])}
      >>> grads = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([0.5])}
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> print(updates["w"], updates["b"])  # b's gradient passes through unscaled
      [-0.1  0.2] [0.5]
    """
    inner = as_transformation(inner, "inner")
    if not is_tree_function(mask):
        leaves, treedef = jax.tree.flatten(mask)
        mask = StaticTree(treedef, tuple(leaves))
    return Masked(inner, mask, mask_compatible_extra_args)
