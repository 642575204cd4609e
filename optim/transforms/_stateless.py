"""Transformations without state, made from a function, and optax's helpers for writing them.

``stateless(f)`` and ``stateless_with_tree_map(f)`` turn a function of the updates (and the
parameters) into a transformation whose state is ``EmptyState()``; ``init_empty_state`` is
that ``init``; ``with_extra_args_support`` makes any transformation's ``update`` accept extra
keyword arguments (ours always do). The function is static metadata, compared by identity:
pass the same function object to reuse a compiled step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass, static
from optim._tree import PyTree, check_same_structure
from optim.base import EmptyState, Transformation, as_transformation

__all__ = [
    "init_empty_state",
    "stateless",
    "stateless_with_tree_map",
    "with_extra_args_support",
]


@suggest_keywords
def init_empty_state(params: PyTree) -> EmptyState:
    """The ``init`` of a transformation that keeps no state: ``EmptyState()`` (optax's name).

    Args:
      params: the parameters (unused).

    Returns:
      ``EmptyState()``.

    Examples:
      >>> import optim
      >>> optim.init_empty_state({"w": 1.0})
      EmptyState()
    """
    del params
    return EmptyState()


def _check_function(f: Any, name: str) -> None:
    if not callable(f):
        raise TypeError(f"{name} must be a function, got {type(f).__name__} {f!r}")


@pytree_dataclass
class Stateless(Transformation):
    r"""A transformation without state made from a function: :math:`u_t = f(g_t, \theta_t)`
    (:math:`\theta_t` is ``None`` when ``update`` is called without params). Built by
    :func:`optim.stateless`.

    Attributes:
      f: the function ``f(updates, params)`` (static, compared by identity).
    """

    f: Callable[[PyTree, PyTree | None], PyTree] = static()

    def init(self, params: PyTree) -> EmptyState:
        return init_empty_state(params)

    def update(self, updates, state, params=None, **extra_args):
        del state, extra_args
        return self.f(updates, params), EmptyState()


@suggest_keywords
def stateless(f: Callable[[PyTree, PyTree | None], PyTree]) -> Stateless:
    """A transformation without state from a function of the updates and params (optax's name).

    Args:
      f: ``f(updates, params)`` returning the new updates; ``params`` is ``None`` when
        ``update`` is called without them.

    Returns:
      The transformation; its state is ``EmptyState()``.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> halve = optim.stateless(lambda g, p: jax.tree.map(lambda x: x / 2, g))
      >>> updates, _ = halve.update({"w": jnp.ones(2)}, halve.init(None))
      >>> updates["w"].tolist()
      [0.5, 0.5]
    """
    _check_function(f, "f")
    return Stateless(f)


@pytree_dataclass
class StatelessWithTreeMap(Transformation):
    r"""A transformation without state applying a function leaf by leaf:
    :math:`u_t^{(i)} = f(g_t^{(i)}, \theta_t^{(i)})` (:math:`\theta^{(i)}` is ``None``
    without params). ``None`` updates (non-trainable leaves) stay ``None``. Built by
    :func:`optim.stateless_with_tree_map`.

    Attributes:
      f: the function ``f(update, param)`` of one leaf (static, compared by identity).
    """

    f: Callable[[jax.Array, jax.Array | None], jax.Array] = static()

    def init(self, params: PyTree) -> EmptyState:
        return init_empty_state(params)

    def update(self, updates, state, params=None, **extra_args):
        del state, extra_args

        def is_none(x: Any) -> bool:
            return x is None

        if params is None:
            return jax.tree.map(lambda u: self.f(u, None), updates), EmptyState()
        check_same_structure(updates, params, "updates", "params")
        # None counts as a leaf on both sides, so a None update next to a leaf of the params
        # that has none (a function of an equinox module) lines up and stays None.
        new = jax.tree.map(
            lambda u, p: None if u is None else self.f(u, p), updates, params, is_leaf=is_none
        )
        return new, EmptyState()


@suggest_keywords
def stateless_with_tree_map(
    f: Callable[[jax.Array, jax.Array | None], jax.Array],
) -> StatelessWithTreeMap:
    """A transformation without state from a function of one update leaf and its parameter
    (optax's name); the leaves are mapped for you.

    Args:
      f: ``f(update, param)`` returning the new update for one leaf; ``param`` is ``None``
        when ``update`` is called without params.

    Returns:
      The transformation; its state is ``EmptyState()``.

    Raises:
      ValueError: (in ``update``) the updates and params do not have the same structure and
        shapes.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> decay = optim.stateless_with_tree_map(lambda g, p: g + 0.1 * p)
      >>> params = {"w": jnp.ones(2)}
      >>> updates, _ = decay.update({"w": jnp.zeros(2)}, decay.init(params), params)
      >>> updates["w"].tolist()
      [0.10000000149011612, 0.10000000149011612]
    """
    _check_function(f, "f")
    return StatelessWithTreeMap(f)


@suggest_keywords
def with_extra_args_support(tx: Any) -> Any:
    """``tx`` with an ``update`` that accepts (and ignores) extra keyword arguments
    (optax's name).

    Ours accept them already and are returned as they are; an optax
    ``GradientTransformation`` is wrapped (an optax ``GradientTransformationExtraArgs``
    passes them on to its ``update``).

    Args:
      tx: a gradient transformation, ours or optax's.

    Returns:
      A transformation whose ``update(updates, state, params=None, **extra_args)`` works.

    Raises:
      TypeError: ``tx`` has no ``init`` and ``update``.

    Examples:
      >>> import jax.numpy as jnp, optax, optim
      >>> tx = optim.with_extra_args_support(optax.sgd(0.1))
      >>> updates, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), loss=1.0)
      >>> updates.tolist()
      [-0.10000000149011612, -0.10000000149011612]
    """
    return as_transformation(tx, "tx")
