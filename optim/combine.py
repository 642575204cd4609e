"""Combinators: a different optimizer per part of the parameters, frozen parameters, and the
float hyperparameters of any composed optimizer read or replaced by name.

Leaf paths. ``partition`` matches regular expressions against a leaf's path written as its
keys joined by ``/``: dict keys as ``str(key)``, list and tuple positions as numbers,
dataclass and NamedTuple fields by name. ``{"dense": {"w": .., "b": ..}}`` has the paths
``dense/w`` and ``dense/b``; ``{"layers": [{"kernel": ..}]}`` has ``layers/0/kernel``; a
single array has the empty path ``""``.

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
from collections.abc import Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import Decay, check_flag, hyper, is_schedule, value_at
from optim._pytree import is_static, pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_prefix,
    check_same_structure,
    is_array,
    is_trainable,
    is_tree_function,
    zero_count,
)
from optim.base import Chain, Transformation, as_transformation, set_to_zero
from optim.tree._map_params import is_params_placeholder
from optim.wrappers import (
    ApplyIfFinite,
    Flatten,
    InjectHyperparams,
    Lookahead,
    Masked,
    MultiSteps,
    StaticTree,
    masked,
)

__all__ = [
    "MultiTransformState",
    "PartitionState",
    "freeze",
    "hyperparams",
    "multi_transform",
    "partition",
    "with_hyperparams",
]


def _path_parts(path: tuple[Any, ...]) -> list[str]:
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            parts.append(str(key.key))
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
        elif isinstance(key, jax.tree_util.GetAttrKey):
            parts.append(key.name)
        elif isinstance(key, jax.tree_util.FlattenedIndexKey):
            parts.append(str(key.key))
        else:
            parts.append(str(key))
    return parts


def _is_none(x: Any) -> bool:
    return x is None


# --- partition ----------------------------------------------------------------------------


class PartitionState(NamedTuple):
    """Each label's transformation state, built from the leaves with that label."""

    inner_states: dict[Hashable, Any]


MultiTransformState = PartitionState


class _Unlabeled:
    """The label of a non-trainable leaf that no pattern matches: no transform sees it."""


_UNLABELED = _Unlabeled()


@dataclasses.dataclass(frozen=True)
class RegexLabels:
    """``(label, pattern, flags)`` in priority order; static and compared by value."""

    patterns: tuple[tuple[Hashable, str, int], ...]

    def label_tree(self, tree: PyTree) -> PyTree:
        """The label of every leaf of ``tree``: the first pattern that matches its whole path."""
        compiled = [(label, re.compile(p, flags)) for label, p, flags in self.patterns]

        def label_of(path: tuple[Any, ...], leaf: Any) -> Any:
            name = "/".join(_path_parts(path))
            for label, pattern in compiled:
                if pattern.fullmatch(name):
                    return label
            if is_trainable(leaf):
                raise ValueError(
                    f"param_labels: leaf {name!r} matches none of the patterns "
                    f"{[p for _, p, _ in self.patterns]} (each must match the whole path); "
                    "add a catch-all such as r'.*' last"
                )
            return _UNLABELED

        return jax.tree_util.tree_map_with_path(label_of, tree, is_leaf=_is_none)


def _check_labels(found: list[Any], labels: tuple[Hashable, ...]) -> None:
    try:
        unknown = {label for label in found if label is not _UNLABELED} - set(labels)
    except TypeError:
        raise TypeError(f"param_labels must hold hashable labels, got {found}") from None
    if unknown:
        raise ValueError(
            f"param_labels has labels with no transformation: {sorted(map(repr, unknown))}; "
            f"the transforms are labelled {list(labels)}"
        )


def _regex_labels(param_labels: Any, labels: tuple[Hashable, ...]) -> RegexLabels | None:
    """``param_labels`` read as ``{label: pattern}`` when it can only mean that (see partition)."""
    if not isinstance(param_labels, Mapping) or not param_labels:
        return None
    values = list(param_labels.values())
    if not all(isinstance(v, (str, re.Pattern)) for v in values):
        return None
    if not all(key in labels for key in param_labels):
        return None
    if all(isinstance(v, str) and v in labels for v in values):
        return None  # a valid tree of labels, as optax reads it
    patterns = []
    for label, pattern in param_labels.items():
        try:
            compiled = re.compile(pattern)
        except re.error as e:
            raise ValueError(
                f"param_labels[{label!r}] is not a valid regular expression: {e}"
            ) from None
        patterns.append((label, compiled.pattern, compiled.flags))
    return RegexLabels(tuple(patterns))


@pytree_dataclass
class Partition(Transformation):
    r"""A transformation per label: :math:`u_i = T_{\ell(i)}(g)_i`, :math:`\ell(i)` the label
    of leaf :math:`i`. Each transformation sees only its leaves (the others are ``None``)."""

    transforms: tuple[Any, ...]
    labels: tuple[Hashable, ...] = static()
    param_labels: Any = static()
    mask_compatible_extra_args: bool = static(False)

    def _label_tree(self, tree: PyTree) -> PyTree:
        if isinstance(self.param_labels, StaticTree):
            labels = self.param_labels.value()
        elif isinstance(self.param_labels, RegexLabels):
            labels = self.param_labels.label_tree(tree)
        else:
            labels = self.param_labels(tree)
        check_prefix(labels, tree, "param_labels")
        _check_labels(jax.tree.leaves(labels), self.labels)
        return labels

    def _parts(self, tree: PyTree) -> list[tuple[Hashable, Masked]]:
        labels = self._label_tree(tree)
        parts = []
        for label, tx in zip(self.labels, self.transforms, strict=True):
            mask = jax.tree.map(lambda x, label=label: x is not _UNLABELED and x == label, labels)
            leaves, treedef = jax.tree.flatten(mask)
            static_mask = StaticTree(treedef, tuple(bool(m) for m in leaves))
            parts.append((label, Masked(tx, static_mask, self.mask_compatible_extra_args)))
        return parts

    def init(self, params: PyTree) -> PartitionState:
        if is_params_placeholder(params):  # from map_params: there are no labels to read
            parts = zip(self.labels, (Masked(tx, None) for tx in self.transforms), strict=True)
        else:
            parts = self._parts(params)
        return PartitionState({label: part.init(params) for label, part in parts})

    def update(self, updates, state, params=None, **extra_args):
        inner_states = getattr(state, "inner_states", None)
        if not isinstance(inner_states, Mapping) or set(inner_states) != set(self.labels):
            raise ValueError(
                f"state does not belong to this partition of labels {list(self.labels)}; "
                "create it with init"
            )
        if params is not None:
            check_same_structure(updates, params, "grads", "params")
        new_states = {}
        for label, part in self._parts(updates):
            updates, new_states[label] = part.update(
                updates, inner_states[label], params, **extra_args
            )
        return updates, PartitionState(new_states)


def partition(
    transforms: Mapping[Hashable, Any],
    param_labels: Any,
    *,
    mask_compatible_extra_args: bool = False,
) -> Partition:
    """Apply a different transformation to each labelled part of the parameters.

    ``transforms`` maps labels to transformations (ours or optax's). ``param_labels`` is one
    of (as ``optax.partition``, plus regular expressions):

    * a pytree of labels with the structure of the params, or a prefix of it;
    * a function of the params (or updates) returning such a tree;
    * a dict ``{label: regular expression}``, e.g. ``{"decay": r".*kernel|.*w",
      "no_decay": r".*"}``: each floating leaf gets the first label, in dict order, whose
      pattern matches its whole path (``re.fullmatch``; path format in the module
      docstring). A floating leaf that matches none raises ``ValueError`` naming its path;
      other leaves (``None``, functions, ints) that match none are passed through.

    A dict is read as patterns when its keys are labels of ``transforms`` and at least one
    value is a compiled pattern or a string that is not a label; otherwise it is a tree of
    labels, as in optax (use ``re.compile`` to force patterns). Labels and patterns are static
    and compared by value, so re-creating the optimizer reuses the compiled program; a label
    function is compared by identity.

    >>> import jax.numpy as jnp, optim
    >>> params = {"dense": {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}}
    >>> tx = optim.partition({"decay": optim.adamw(1e-3, weight_decay=0.1),
    ...                       "no_decay": optim.adam(1e-3)},
    ...                      {"decay": r".*/w", "no_decay": r".*"})
    >>> sorted(tx.init(params).inner_states)
    ['decay', 'no_decay']
    """
    if not isinstance(transforms, Mapping):
        raise TypeError(
            f"transforms must be a dict from labels to transformations, got "
            f"{type(transforms).__name__}"
        )
    labels = tuple(transforms)
    txs = tuple(as_transformation(t, f"transforms[{k!r}]") for k, t in transforms.items())
    if is_tree_function(param_labels):
        static_labels = param_labels
    else:
        static_labels = _regex_labels(param_labels, labels)
        if static_labels is None:
            leaves, treedef = jax.tree.flatten(param_labels)
            _check_labels(leaves, labels)
            static_labels = StaticTree(treedef, tuple(leaves))
    return Partition(
        txs,
        labels,
        static_labels,
        check_flag(mask_compatible_extra_args, "mask_compatible_extra_args"),
    )


multi_transform = partition


# --- freeze -------------------------------------------------------------------------------


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


def freeze(mask: Any) -> Masked:
    r"""Zero the updates where ``mask`` is True: :math:`u_i = 0` there, :math:`g_i` elsewhere.

    ``mask`` is one bool (freeze all or nothing), a tree of bools with the structure of the
    params or a prefix of it, or a function of the params returning one (``optax.freeze``).
    """
    if not is_tree_function(mask):
        mask = jax.tree.map(_static_bool, mask)
    return masked(set_to_zero(), mask)


# --- reading and replacing hyperparameters ------------------------------------------------

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
    list (the wrappers of ``optim.conditional``, which this module cannot import).
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


def hyperparams(state_or_optimizer: Any, state: Any = None) -> dict[str, jax.Array]:
    """The float hyperparameters, as a flat dict ``name -> float32 scalar array``.

    * For an optimizer (ours): every float hyperparameter of every block, named as in the
      module docstring (``"scale_by_adam.b1"``). A schedule is evaluated at its block's step
      count, taken from ``state`` (that optimizer's state) when given and 0 otherwise, so the
      values are those the next ``update`` will use; an ``inject_hyperparams`` block reads
      its numbers from ``state.hyperparams`` when a state is given. optax transformations
      inside keep theirs in closures and contribute nothing.
    * For a state: the ``hyperparams`` dict of every ``inject_hyperparams`` state in it
      (ours or optax's), i.e. the values used by the last update, keyed by name, prefixed by
      the state's position (``"1.learning_rate"`` inside a chain) unless it is the root.

    Works under ``jit`` (values are arrays).

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
    return dataclasses.replace(block, **children) if children else block


def with_hyperparams(optimizer: Any, **values: Any) -> Any:
    """A copy of ``optimizer`` with float hyperparameters replaced by field name.

    ``with_hyperparams(optim.adamw(1e-3), learning_rate=3e-4, b1=0.8)`` sets every field of
    that name in every block (inside chains, partitions and wrappers; the numbers of an
    ``inject_hyperparams`` block too). Values go through the block's factory, so they are
    validated as there (``learning_rate=-1.0`` raises ``ValueError`` naming it) and may be
    schedules where the factory accepts one; traced values (inside ``jit``/``vmap``) are
    accepted. Only the floats change, so a jitted step taking the optimizer as an argument
    does not recompile.

    Raises:
      ValueError: a keyword matches no float hyperparameter (the error lists those there are).
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
