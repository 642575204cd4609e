"""``map_params``: apply a function to every copy of the parameter tree inside a state.

An optimizer's state holds parameter-shaped slots (Adam's ``mu`` and ``nu``) beside other
values (step counts, hyperparameters). To tell them apart without knowing the optimizer,
``init`` is called on a placeholder: a pytree node without children, so every
``jax.tree.map`` over the "params" in ``init`` returns the placeholder itself. The slots are
where the placeholder turns up in that state. Wrappers that look inside the params at ``init``
(``masked``) pass a placeholder straight to their inner optimizer (see
``is_params_placeholder``).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax

from optim._keywords import suggest_keywords
from optim._tree import PyTree


class _ParamsPlaceholder:
    """Stands for the whole parameter tree in ``init``: an empty pytree node."""

    def __repr__(self) -> str:
        return "ParamsPlaceholder()"


def _register(cls: type) -> type:
    jax.tree_util.register_pytree_node(cls, lambda _: ((), None), lambda _aux, _children: cls())
    return cls


_register(_ParamsPlaceholder)


def _optax_placeholder_type() -> type | None:
    """optax's placeholder class, once optax's ``tree_utils`` is loaded (never imports it)."""
    module = sys.modules.get("optax.tree_utils._state_utils")
    return getattr(module, "_ParamsPlaceholder", None)


@functools.cache
def _placeholder_type() -> type:
    """The class of the placeholder ``map_params`` passes to ``init``.

    A subclass of optax's own placeholder too when optax is installed: ``optax.masked``
    passes only its own placeholder through unmasked, and an optax transformation may sit
    inside one of ours (``chain(optax.masked(...), ...)``).
    """
    with contextlib.suppress(ImportError):
        import optax.tree_utils  # noqa: F401 - defines optax's placeholder class
    optax_type = _optax_placeholder_type()
    if optax_type is None:
        return _ParamsPlaceholder
    return _register(type("ParamsPlaceholder", (_ParamsPlaceholder, optax_type), {}))


def is_params_placeholder(params: Any) -> bool:
    """Whether ``init`` was called by ``map_params`` (ours or optax's) on a placeholder."""
    if isinstance(params, _ParamsPlaceholder):
        return True
    optax_type = _optax_placeholder_type()
    return optax_type is not None and isinstance(params, optax_type)


@runtime_checkable
class Initable(Protocol):
    """An object with an ``init(params) -> state`` method (an optimizer)."""

    def init(self, params: PyTree) -> Any: ...


@suggest_keywords
def map_params(
    initable: Callable[[PyTree], Any] | Initable,
    f: Callable[..., Any],
    state: Any,
    /,
    *rest: Any,
    transform_non_params: Callable[..., Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """Apply ``f`` to every copy of the parameter tree inside an optimizer state.

    For each parameter-shaped slot ``s`` of ``state``, ``jax.tree.map(f, s, *rest,
    is_leaf=is_leaf)``; every other value ``v`` becomes ``transform_non_params(v)`` (or stays
    as it is). The slots are found by calling ``initable``'s ``init`` on a placeholder for the
    params. Typical use: sharding specs of a state from those of the params.

    With ``masked`` optimizers, masked-out parameters are ``MaskedNode()`` in the slots: to
    pass ``rest`` trees shaped like the full params, give
    ``is_leaf=lambda v: isinstance(v, optim.MaskedNode)`` (``f`` then also gets those
    ``MaskedNode`` leaves).

    Args:
      initable: an optimizer (an object with ``init``) or its ``init`` function.
      f: the function applied leaf by leaf to each slot (and ``rest``).
      state: the state to map over, returned by ``initable``'s ``init``.
      *rest: more trees with the structure of the params, passed to ``f`` after each slot.
      transform_non_params: an optional function applied to every other leaf of the state.
      is_leaf: passed to ``jax.tree.map`` over each slot.

    Returns:
      a pytree with the structure of ``state``: ``f``'s results in the slots.

    Raises:
      ValueError: ``state`` does not have the structure of ``initable``'s state.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> params = {"w": jnp.zeros((2, 3))}
      >>> opt = optim.adam(1e-3)
      >>> specs = optim.tree.map_params(
      ...     opt, lambda p: p.shape, opt.init(params), transform_non_params=lambda _: None)
      >>> specs[0].mu, specs[0].count
      ({'w': (2, 3)}, None)
    """
    placeholder = _placeholder_type()()
    if isinstance(initable, Initable):
        template = initable.init(placeholder)
    elif callable(initable):
        template = initable(placeholder)
    else:
        raise TypeError(
            "initable must be an optimizer (an object with an init method) or an init "
            f"function, got {type(initable).__name__}"
        )

    def at(slot_or_other: Any, value: Any) -> Any:
        if is_params_placeholder(slot_or_other):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        if transform_non_params is not None:
            return transform_non_params(value)
        return value

    try:
        jax.tree.map(lambda *_: None, template, state, is_leaf=is_params_placeholder)
    except ValueError as e:
        raise ValueError(
            "state does not have the structure of the state initable's init returns; pass "
            f"the state of this optimizer ({str(e).splitlines()[0]})"
        ) from None
    return jax.tree.map(at, template, state, is_leaf=is_params_placeholder)
