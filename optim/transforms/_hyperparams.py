"""The float hyperparameters of any composed optimizer, read (``hyperparams``) or replaced
(``with_hyperparams``) by name.

Hyperparameter names. ``hyperparams`` names each value ``<block>.<field>``: the block by the
factory that builds it (``scale_by_adam.b1``, ``scale_by_learning_rate.learning_rate``; the
class name in snake_case when its module has no such function);
chains and single-optimizer wrappers (``masked``, ``apply_if_finite``, ``MultiSteps``,
``lookahead``, ``flatten``) add nothing to the name, ``partition`` adds its label
(``decay.scale_by_adam.b1``), ``inject_hyperparams`` names its block after the factory
(``adam.learning_rate``). A block name that occurs more than once in the same place gets its
position among them: ``scale[0].step_size``, ``scale[1].step_size``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import sys
from collections import Counter
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from optim._hyper import Decay, hyper, is_schedule, value_at
from optim._keywords import suggest_keywords
from optim._pytree import is_static, with_fields
from optim._tree import (
    is_array,
    zero_count,
)
from optim.base import Chain
from optim.schedules._inject import InjectHyperparams
from optim.transforms._accumulation import MultiSteps
from optim.transforms._combining import Partition, _path_parts
from optim.transforms._conditionality import ApplyIfFinite
from optim.transforms._layouts import Flatten
from optim.transforms._lookahead import Lookahead
from optim.transforms._masking import Masked

# Single-transformation wrappers and the field of their state holding the inner state.
_INNER_STATE = {
    Masked: "inner_state",
    ApplyIfFinite: "inner_state",
    MultiSteps: "inner_opt_state",
    Lookahead: "fast_state",
}


def _is_transformation(x: Any) -> bool:
    return (
        not isinstance(x, type)
        and callable(getattr(x, "init", None))
        and callable(getattr(x, "update", None))
    )


def _data_fields(block: Any) -> list[str]:
    if not dataclasses.is_dataclass(block):
        return []
    return [f.name for f in dataclasses.fields(block) if not is_static(f)]


def _is_hyper(value: Any) -> bool:
    """A float hyperparameter: a floating array, a ``Decay`` or a schedule (not a
    transformation)."""
    if _is_transformation(value):
        return False
    return (
        isinstance(value, Decay)
        or is_schedule(value)
        or (is_array(value) and jnp.issubdtype(value.dtype, jnp.floating))
    )


@functools.cache
def _factory(cls: type) -> tuple[str, Any]:
    """The public factory of a block class and its name: the function of its module whose name
    without underscores is the class name (``ScaleByAdam`` -> ``scale_by_adam``). Without one,
    the class name in snake_case and None."""
    key = cls.__name__.lower()
    for name, obj in vars(sys.modules.get(cls.__module__, object)).items():
        if inspect.isfunction(obj) and not name.startswith("_") and name.replace("_", "") == key:
            return name, obj
    return re.sub(
        r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls.__name__
    ).lower(), None


def _factory_name(factory: Any) -> str:
    return getattr(factory, "__name__", None) or getattr(
        getattr(factory, "func", None), "__name__", "inject_hyperparams"
    )


def _children(block: Any, state: Any) -> list[tuple[str | None, Any, Any]]:
    """(name segment or None, inner transformation, its state or None) inside ``block``.

    A block may say so itself with a ``hyperparameter_children(state)`` method returning that
    list (``conditionally_transform``, ``named_chain``, ...).
    """
    own = getattr(block, "hyperparameter_children", None)
    if callable(own):
        return own(state)
    if isinstance(block, Chain):
        n = len(block.transforms)
        states = state if isinstance(state, tuple) and len(state) == n else (None,) * n
        return [(None, t, s) for t, s in zip(block.transforms, states, strict=True)]
    if isinstance(block, Partition):
        inner = getattr(state, "inner_states", None) or {}
        return [
            (str(k), t, inner.get(k)) for k, t in zip(block.labels, block.transforms, strict=True)
        ]
    if isinstance(block, Flatten):
        return [(None, block.inner, state)]
    attr = _INNER_STATE.get(type(block))
    children = []
    for name in _data_fields(block):
        value = getattr(block, name)
        several = isinstance(value, (tuple, list)) and not _is_transformation(value)
        items = value if several else [value]
        for item in items:
            if _is_transformation(item):
                inner_state = getattr(state, attr, None) if attr and state is not None else None
                children.append((None, item, inner_state))
    return children


def _walk(block: Any, state: Any, namespace: tuple[str, ...], found: list) -> None:
    """Append ``(namespace, block name, block, state)`` for blocks holding hyperparameters."""
    if isinstance(block, InjectHyperparams):
        found.append((namespace, _factory_name(block.inner_factory), block, state))
        return
    if any(_is_hyper(getattr(block, name)) for name in _data_fields(block)):
        found.append((namespace, _factory(type(block))[0], block, state))
    for segment, child, child_state in _children(block, state):
        _walk(child, child_state, namespace if segment is None else (*namespace, segment), found)


def _count(state: Any) -> jax.Array:
    count = getattr(state, "count", None)  # NamedTuples without the field have tuple.count
    return count if is_array(count) else zero_count()


def _block_values(block: Any, state: Any) -> dict[str, jax.Array]:
    if isinstance(block, InjectHyperparams):
        numeric = getattr(state, "hyperparams", None)
        schedule_states = getattr(state, "hyperparams_states", None)
        return block.current(
            numeric if isinstance(numeric, Mapping) else block.numeric,
            schedule_states if isinstance(schedule_states, Mapping) else {},
            _count(state),
        )
    count = _count(state)
    return {
        name: value_at(getattr(block, name), count)
        for name in _data_fields(block)
        if _is_hyper(getattr(block, name))
    }


def _has_hyperparams(x: Any) -> bool:
    return (
        isinstance(x, tuple)
        and "hyperparams" in getattr(x, "_fields", ())
        and isinstance(x.hyperparams, Mapping)
    )


@suggest_keywords
def hyperparams(state_or_optimizer: Any, state: Any = None) -> dict[str, jax.Array]:
    """The float hyperparameters, as a flat dict ``name -> float32 scalar``.

    Works under ``jit`` (the values are arrays or traced). Names: ``<block>.<field>``, the
    block named by the factory that builds it; chains and single-optimizer wrappers add
    nothing, ``partition`` adds its label, and a block name repeated in the same place gets
    its position (``scale[0].step_size``); see the module docstring.

    Args:
      state_or_optimizer: one of

        * an optimizer (ours): every float hyperparameter of every block
          (``"scale_by_adam.b1"``). A schedule is evaluated at its block's step count, taken
          from ``state`` when given and 0 otherwise, so the values are those the next
          ``update`` will use; an ``inject_hyperparams`` block reads its numbers from
          ``state.hyperparams`` when a state is given. optax transformations inside keep
          theirs in closures and contribute nothing.
        * a state: the ``hyperparams`` dict of every ``inject_hyperparams`` state in it
          (ours or optax's), i.e. the values used by the last update, keyed by name,
          prefixed by the state's position (``"1.learning_rate"`` inside a chain) unless it
          is the root.
      state: with an optimizer, that optimizer's state (for the step counts of schedules
        and the numbers of ``inject_hyperparams`` blocks); ``None``: step 0 and the
        optimizer's own numbers. Must be ``None`` when the first argument is a state.

    Returns:
      A dict from names to float32 scalars (NumPy scalars or JAX arrays), in the order the
      blocks are found.

    Raises:
      TypeError: ``state`` is given but the first argument is not an optimizer.

    Examples:
      >>> import optim
      >>> hp = optim.hyperparams(optim.adamw(1e-3, weight_decay=0.1))
      >>> sorted(hp)[:3], round(float(hp["scale_by_learning_rate.learning_rate"]), 6)
      (['add_decayed_weights.weight_decay', 'scale_by_adam.b1', 'scale_by_adam.b2'], 0.001)
    """
    if _is_transformation(state_or_optimizer):
        found: list = []
        _walk(state_or_optimizer, state, (), found)
        occurrences = Counter((ns, name) for ns, name, _, _ in found)
        seen: Counter = Counter()
        values = {}
        for ns, name, block, block_state in found:
            label = name
            if occurrences[(ns, name)] > 1:
                label = f"{name}[{seen[(ns, name)]}]"
                seen[(ns, name)] += 1
            prefix = ".".join((*ns, label))
            for field, value in _block_values(block, block_state).items():
                values[f"{prefix}.{field}"] = value
        return values
    if state is not None:
        raise TypeError("hyperparams(x, state): x must be an optimizer when state is given")
    values = {}
    nodes = jax.tree_util.tree_flatten_with_path(state_or_optimizer, is_leaf=_has_hyperparams)[0]
    for path, node in nodes:
        if _has_hyperparams(node):
            prefix = "".join(f"{p}." for p in _path_parts(path))
            values.update({f"{prefix}{k}": v for k, v in node.hyperparams.items()})
    return values


def _validated(block: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` checked by the block's factory (see ``_factory``) when its arguments cover the
    block's fields, else as finite scalars."""
    factory = _factory(type(block))[1]
    fields = [f.name for f in dataclasses.fields(block)]
    if factory is not None:
        try:
            parameters = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            parameters = {}
        if set(fields) <= set(parameters):
            rebuilt = factory(**{**{name: getattr(block, name) for name in fields}, **changes})
            if type(rebuilt) is type(block):
                return {name: getattr(rebuilt, name) for name in changes}
    return {name: hyper(value, name) for name, value in changes.items()}


def _replace(block: Any, values: dict[str, Any], used: set, available: set) -> Any:
    if isinstance(block, InjectHyperparams):
        names = set(block.numeric) | set(block.schedules)
        available.update(names)
        changes = {k: v for k, v in values.items() if k in names}
        used.update(changes)
        return block.replaced(changes) if changes else block
    children, changes = {}, {}
    for name in _data_fields(block):
        value = getattr(block, name)
        if _is_hyper(value):
            available.add(name)
            if name in values:
                changes[name] = values[name]
                used.add(name)
        elif _is_transformation(value):
            children[name] = _replace(value, values, used, available)
        elif isinstance(value, (tuple, list)) and any(_is_transformation(v) for v in value):
            children[name] = type(value)(
                _replace(v, values, used, available) if _is_transformation(v) else v for v in value
            )
    if changes:
        children.update(_validated(block, changes))
    return with_fields(block, **children) if children else block


@suggest_keywords
def with_hyperparams(optimizer: Any, **values: Any) -> Any:
    """A copy of ``optimizer`` with float hyperparameters replaced by field name.

    ``with_hyperparams(optim.adamw(1e-3), learning_rate=3e-4, b1=0.8)`` sets every field of
    that name in every block (inside chains, partitions and wrappers; the numbers of an
    ``inject_hyperparams`` block too). Values go through the block's factory, so they are
    validated as there (``learning_rate=-1.0`` raises ``ValueError`` naming it) and may be
    schedules where the factory accepts one; traced values (inside ``jit``/``vmap``) are
    accepted. Only the floats change, so a jitted step taking the optimizer as an argument
    does not recompile.

    Args:
      optimizer: the optimizer to copy (ours; optax transformations inside it keep their
        hyperparameters in closures and cannot be changed).
      **values: field name -> new value (a number, an array or, where the block's factory
        accepts one, a schedule), e.g. ``learning_rate=3e-4``; names as the last part of
        those :func:`optim.hyperparams` returns.

    Returns:
      An optimizer of the same structure with the given fields replaced; ``optimizer``
      itself is not changed.

    Raises:
      TypeError: ``optimizer`` has no ``init`` and ``update`` methods.
      ValueError: a keyword matches no float hyperparameter (the error lists those there are),
        or a value is rejected by its block's factory.

    Examples:
      >>> import optim
      >>> tx = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(learning_rate=0.1))
      >>> tx = optim.with_hyperparams(tx, learning_rate=0.01, max_norm=2.0)
      >>> {name: round(float(value), 6) for name, value in optim.hyperparams(tx).items()}
      {'clip_by_global_norm.max_norm': 2.0, 'scale_by_learning_rate.learning_rate': 0.01}
    """
    if not _is_transformation(optimizer):
        raise TypeError(f"optimizer must have init and update, got {type(optimizer).__name__}")
    used: set = set()
    available: set = set()
    new = _replace(optimizer, values, used, available)
    unknown = sorted(set(values) - used)
    if unknown:
        raise ValueError(
            f"with_hyperparams: no block of this optimizer has a float hyperparameter named "
            f"{', '.join(unknown)}; its float hyperparameters are {sorted(available)}"
        )
    return new
