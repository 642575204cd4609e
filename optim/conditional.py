"""Conditional and structural wrappers: accumulate and apply every k steps, transform only at
some steps, name the parts of a chain, freeze parameters by a mask (optax's names, arguments
and states).

As in ``optim.wrappers``, a wrapper is a pytree whose children are the wrapped
transformations; step counts, functions and masks are static metadata.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from optim._hyper import check_flag
from optim._numerics import cast_like_grads, store_like
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_prefix,
    full_like,
    is_tree_function,
    keystr,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim.base import Chain, Transformation, as_transformation, check_updates, set_to_zero
from optim.combine import Partition, _static_bool, partition
from optim.wrappers import StaticTree, _like, _positive_int, _zeros_like

__all__ = [
    "ApplyEvery",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "apply_every",
    "conditionally_mask",
    "conditionally_transform",
    "named_chain",
    "selective_transform",
]


# --- apply_every --------------------------------------------------------------------------


class ApplyEvery(NamedTuple):
    """The position within the current group of ``k`` steps and the sum of its updates
    (optax's state, named ``ApplyEvery`` there too)."""

    count: jax.Array
    grad_acc: PyTree


@pytree_dataclass
class ApplyEveryK(Transformation):
    r"""Sum the updates of ``k`` steps and emit the sum at the last of them:

    .. math:: a_n = g_n + [n \bmod k \ne 0]\, a_{n-1},\qquad
        u_n = [n \bmod k = k - 1]\, a_n \quad (n = 0, 1, \dots \text{ earlier calls}),

    zero updates at the other steps. Transformations before it in a chain still update their
    state at every step (``MultiSteps`` skips the inner optimizer instead). The accumulator
    is float32 for bf16/fp16 parameters (optax keeps their dtype); a new group starts from
    0 where optax multiplies the old sum by 0 (the same, unless it held an inf or NaN).
    """

    k: int = static(1)

    def init(self, params: PyTree) -> ApplyEvery:
        return ApplyEvery(count=zero_count(), grad_acc=full_like(params, 0.0))

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.grad_acc)
        position = state.count % self.k
        continuing = position != 0
        grad_acc = map_arrays(
            lambda g, a: jnp.where(continuing, upcast(a), 0) + upcast(g), updates, state.grad_acc
        )
        emit = position == self.k - 1
        out = map_arrays(lambda a: jnp.where(emit, a, 0), grad_acc)
        new_state = ApplyEvery(
            count=(safe_increment(state.count) % self.k).astype(jnp.int32),
            grad_acc=store_like(grad_acc, state.grad_acc),
        )
        return cast_like_grads(out, updates), new_state


def apply_every(k: int = 1) -> ApplyEveryK:
    """Accumulate updates and apply their sum every ``k`` steps (``optax.apply_every``)."""
    return ApplyEveryK(_positive_int(k, "k", 1))


# --- conditionally_transform / conditionally_mask -----------------------------------------


class ConditionallyTransformState(NamedTuple):
    """The inner state and the number of calls to ``update`` so far (optax's fields)."""

    inner_state: Any
    step: jax.Array


class ConditionallyMaskState(NamedTuple):
    """The number of calls to ``update`` so far and the inner state (optax's fields)."""

    step: jax.Array
    inner_state: Any


class ConditionFn(Protocol):
    """The type of ``should_transform_fn`` in ``conditionally_transform`` and
    ``conditionally_mask`` (optax's protocol).

    Called with the number of earlier calls to ``update`` (an int32 scalar) and, with
    ``forward_extra_args``, the extra keyword arguments of ``update``; returns a boolean
    scalar: whether to apply the inner transformation at this step.
    """

    def __call__(self, step: jax.Array, **extra_args: Any) -> jax.Array: ...


def _condition(fn: Callable[..., Any], step: jax.Array, extra_args: dict[str, Any]) -> jax.Array:
    """``fn(step, **extra_args)`` checked to be a boolean scalar."""
    result = jnp.asarray(fn(step, **extra_args))
    if result.shape != () or result.dtype != jnp.bool_:
        raise ValueError(
            "should_transform_fn must return a boolean scalar (whether to apply the inner "
            f"transformation at this step), got an array of shape {result.shape} and dtype "
            f"{result.dtype}"
        )
    return result


@pytree_dataclass
class ConditionallyApply(Transformation):
    r"""Apply ``inner`` at the steps where ``should_transform_fn(step)`` is True:

    .. math:: (u_t, s_t) = \begin{cases} T(g_t, s_{t-1}) & c(t) \\ (r(g_t), s_{t-1}) &
        \text{otherwise,} \end{cases}

    :math:`t = 0, 1, \dots` the number of earlier calls and :math:`r(g) = g`
    (``conditionally_transform``) or :math:`r(g) = 0` (``conditionally_mask``). A step that
    is not transformed leaves the inner state bit for bit as it was.
    """

    inner: Any
    should_transform_fn: Callable[..., Any] = static()
    forward_extra_args: bool = static(False)
    zero_rejected: bool = static(False)

    def init(self, params: PyTree) -> ConditionallyTransformState | ConditionallyMaskState:
        return self._state(self.inner.init(params), zero_count())

    def hyperparameter_children(self, state: Any) -> list[tuple[None, Any, Any]]:
        """For ``optim.hyperparams``: the inner transformation and its state."""
        return [(None, self.inner, getattr(state, "inner_state", None))]

    def _state(self, inner_state: Any, step: jax.Array) -> Any:
        if self.zero_rejected:
            return ConditionallyMaskState(step=step, inner_state=inner_state)
        return ConditionallyTransformState(inner_state=inner_state, step=step)

    def update(self, updates, state, params=None, **extra_args):
        condition = _condition(
            self.should_transform_fn, state.step, extra_args if self.forward_extra_args else {}
        )

        def transform() -> tuple[PyTree, Any]:
            new, inner_state = self.inner.update(updates, state.inner_state, params, **extra_args)
            return _like(new, updates), _like(inner_state, state.inner_state)

        def reject() -> tuple[PyTree, Any]:
            return (_zeros_like(updates) if self.zero_rejected else updates), state.inner_state

        new_updates, inner_state = jax.lax.cond(condition, transform, reject)
        return new_updates, self._state(inner_state, safe_increment(state.step))


def _conditionally(
    inner: Any, should_transform_fn: Any, forward_extra_args: Any, zero_rejected: bool
) -> ConditionallyApply:
    if not callable(should_transform_fn):
        raise TypeError(
            "should_transform_fn must be a function of the step count returning a boolean "
            f"scalar, got {type(should_transform_fn).__name__} {should_transform_fn!r}"
        )
    return ConditionallyApply(
        as_transformation(inner, "inner"),
        should_transform_fn,
        check_flag(forward_extra_args, "forward_extra_args"),
        zero_rejected,
    )


def conditionally_transform(
    inner: Any, should_transform_fn: Callable[..., Any], forward_extra_args: bool = False
) -> ConditionallyApply:
    """Apply ``inner`` only at the steps where ``should_transform_fn(step)`` is True and pass
    the updates through unchanged at the others (``optax.conditionally_transform``).

    ``step`` counts the earlier calls to ``update`` (int32, from 0). With
    ``forward_extra_args`` the extra keyword arguments of ``update`` go to
    ``should_transform_fn`` too. The function is static, compared by identity: pass the same
    object to reuse the compiled program.
    """
    return _conditionally(inner, should_transform_fn, forward_extra_args, zero_rejected=False)


def conditionally_mask(
    inner: Any, should_transform_fn: Callable[..., Any], forward_extra_args: bool = False
) -> ConditionallyApply:
    """Apply ``inner`` only at the steps where ``should_transform_fn(step)`` is True and
    return zero updates at the others (``optax.conditionally_mask``); arguments as
    ``conditionally_transform``."""
    return _conditionally(inner, should_transform_fn, forward_extra_args, zero_rejected=True)


# --- named_chain --------------------------------------------------------------------------


@pytree_dataclass
class NamedChain(Transformation):
    r"""``chain`` whose state is an ordered dict keyed by the transformations' names:
    :math:`u \leftarrow T_n(\dots T_1(g))`, ``state[name]`` the state of that part."""

    transforms: tuple[Any, ...]
    names: tuple[str, ...] = static()

    def init(self, params: PyTree) -> collections.OrderedDict:
        return collections.OrderedDict(
            zip(self.names, Chain(self.transforms).init(params), strict=True)
        )

    def hyperparameter_children(self, state: Any) -> list[tuple[str, Any, Any]]:
        """For ``optim.hyperparams``: each part under its name, with its state."""
        states = state if isinstance(state, Mapping) else {}
        return [(n, t, states.get(n)) for n, t in zip(self.names, self.transforms, strict=True)]

    def update(self, updates, state, params=None, **extra_args):
        if not isinstance(state, Mapping) or set(state) != set(self.names):
            got = sorted(map(str, state)) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                f"state does not belong to this named_chain of {list(self.names)} (got {got}); "
                "create it with init"
            )
        updates, states = Chain(self.transforms).update(
            updates, tuple(state[name] for name in self.names), params, **extra_args
        )
        return updates, collections.OrderedDict(zip(self.names, states, strict=True))


def named_chain(*args: tuple[str, Any]) -> NamedChain:
    """Compose ``(name, transformation)`` pairs in order; the state is an ordered dict with
    each part's state under its name (``optax.named_chain``).

    >>> import jax.numpy as jnp, optim
    >>> tx = optim.named_chain(("clip", optim.clip(1.0)), ("adam", optim.adam(1e-3)))
    >>> list(tx.init({"w": jnp.zeros(2)}))
    ['clip', 'adam']
    """
    names = []
    for i, pair in enumerate(args):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(
                f"named_chain argument {i} must be a (name, transformation) pair with a str "
                f"name, got {pair!r}"
            )
        names.append(pair[0])
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"named_chain names must be unique; repeated: {duplicates}")
    transforms = tuple(as_transformation(tx, f"named_chain argument {name!r}") for name, tx in args)
    return NamedChain(transforms, tuple(names))


# --- selective_transform ------------------------------------------------------------------


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
