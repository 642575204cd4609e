"""Combining transformations: a different one per part of the parameters (``partition``), and
chains whose links have names (``named_chain``). ``chain`` itself is in ``optim.base``.

Leaf paths. ``partition`` matches regular expressions against a leaf's path written as its
keys joined by ``/``: dict keys as ``str(key)``, list and tuple positions as numbers,
dataclass and NamedTuple fields by name. ``{"dense": {"w": .., "b": ..}}`` has the paths
``dense/w`` and ``dense/b``; ``{"layers": [{"kernel": ..}]}`` has ``layers/0/kernel``; a
single array has the empty path ``""``.

A wrapper is a pytree whose children are the wrapped transformations (so their float
hyperparameters stay leaves) and its own float hyperparameters; masks, step counts, flags and
functions are static metadata. Names, arguments, defaults and state fields follow optax.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Hashable, Mapping
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
)
from optim.base import Chain, Transformation, as_transformation
from optim.transforms._common import StaticTree
from optim.transforms._masking import Masked
from optim.tree._map_params import is_params_placeholder


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


class PartitionState(NamedTuple):
    """Each label's transformation state, built from the leaves with that label
    (``optax.MultiTransformState``, of which :class:`optim.MultiTransformState` is an alias).

    Attributes:
      inner_states: a dict from each label to a :class:`optim.MaskedState` holding the state
        of that label's transformation.
    """

    inner_states: dict[Hashable, Any]


MultiTransformState = PartitionState


class _Unlabeled:
    """The label of a non-trainable leaf that no pattern matches: no transform sees it."""


_UNLABELED = _Unlabeled()


@dataclasses.dataclass(frozen=True)
class RegexLabels:
    """``(label, pattern, flags)`` in priority order; static and compared by value.

    The labels :func:`optim.partition` reads from a ``{label: regular expression}`` dict.

    Attributes:
      patterns: a tuple of ``(label, pattern, flags)``: the label, the regular expression's
        source and its ``re`` flags, in the order they are tried.
    """

    patterns: tuple[tuple[Hashable, str, int], ...]

    def label_tree(self, tree: PyTree) -> PyTree:
        """The label of every leaf of ``tree``: the first pattern that matches its whole path.

        Args:
          tree: a pytree (the params or the updates); ``None`` leaves are labelled too.

        Returns:
          A pytree with the structure of ``tree`` holding each leaf's label (an internal
          marker for a non-floating leaf that no pattern matches).

        Raises:
          ValueError: a floating leaf matches no pattern (the error names its path).
        """
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
    of leaf :math:`i`. Each transformation sees only its leaves (the others are hidden as in
    :func:`optim.masked`). Built by :func:`optim.partition`.

    Attributes:
      transforms: the transformations, one per label, in the order of ``labels``.
      labels: the labels (static).
      param_labels: how leaves get their labels (static): a ``StaticTree`` of labels, a
        ``RegexLabels`` of patterns, or a function of the params.
      mask_compatible_extra_args: mask the extra arguments of ``update`` that have the
        structure of the updates for each part too (static).
    """

    transforms: tuple[Any, ...]
    labels: tuple[Hashable, ...] = static()
    param_labels: Any = static()
    mask_compatible_extra_args: bool = flag(False)

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


@suggest_keywords
def partition(
    transforms: Mapping[Hashable, Any],
    param_labels: Any,
    *,
    mask_compatible_extra_args: bool = False,
) -> Partition:
    r"""Apply a different transformation to each labelled part of the parameters
    (``optax.partition``, also named ``multi_transform``).

    :math:`u_i = T_{\ell(i)}(g)_i`, :math:`\ell(i)` the label of leaf :math:`i`. Each
    transformation sees only the leaves with its label (the others are hidden as in
    :func:`optim.masked`) and keeps state for those only. Labels and patterns are static and
    compared by value, so re-creating the optimizer reuses the compiled program; a label
    function is compared by identity.

    Args:
      transforms: a dict (any mapping) from labels (hashable) to transformations, ours or
        optax's.
      param_labels: one of (as ``optax.partition``, plus regular expressions):

        * a pytree of labels with the structure of the params, or a prefix of it;
        * a function of the params (or updates) returning such a tree;
        * a dict ``{label: regular expression}``, e.g. ``{"decay": r".*kernel|.*w",
          "no_decay": r".*"}``: each floating leaf gets the first label, in dict order,
          whose pattern matches its whole path (``re.fullmatch``; the path is the leaf's
          keys joined by ``/``, e.g. ``dense/w``, ``layers/0/kernel``). A floating leaf
          that matches none raises ``ValueError`` naming its path; other leaves (``None``,
          functions, ints) that match none are passed through.

        A dict is read as patterns when its keys are labels of ``transforms`` and at least
        one value is a compiled pattern or a string that is not a label; otherwise it is a
        tree of labels, as in optax (use ``re.compile`` to force patterns).
      mask_compatible_extra_args: also mask, for each label, the extra keyword arguments of
        ``update`` that have the structure of the updates. True or False.

    Returns:
      A ``Partition`` transformation (an :class:`optim.GradientTransformation`) whose state
      is a :class:`optim.PartitionState` (``optim.MultiTransformState``).

    Raises:
      TypeError: ``transforms`` is not a mapping, one of its values is not a transformation,
        or a label is not hashable.
      ValueError: ``param_labels`` holds a label with no transformation, or a pattern that is
        not a valid regular expression; (in ``init``/``update``) a floating leaf matches no
        pattern.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array([1.0])}
      >>> tx = optim.multi_transform(
      ...     {"train": optim.sgd(learning_rate=0.1), "frozen": optim.set_to_zero()},
      ...     {"w": "train", "b": "frozen"},
      ... )
      >>> grads = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([0.5])}
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> new_params = optim.apply_updates(params, updates)
      >>> print(new_params["w"], new_params["b"])
      [0.9 2.2] [1.]

      Labels by regular expressions on the leaf paths:

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
        mask_compatible_extra_args,
    )


multi_transform = partition


@pytree_dataclass
class NamedChain(Transformation):
    r"""``chain`` whose state is an ordered dict keyed by the transformations' names:
    :math:`u \leftarrow T_n(\dots T_1(g))`, ``state[name]`` the state of that part. Built by
    :func:`optim.named_chain`.

    Attributes:
      transforms: the transformations, in the order they apply.
      names: their names, in the same order (static, unique).
    """

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


@suggest_keywords
def named_chain(*args: tuple[str, Any]) -> NamedChain:
    r"""Compose ``(name, transformation)`` pairs in order; the state is an ordered dict with
    each part's state under its name (``optax.named_chain``).

    :math:`u \leftarrow T_n(\dots T_1(g))`, as :func:`optim.chain`.

    Args:
      *args: ``(name, transformation)`` pairs in the order they apply: ``name`` a str,
        unique among the pairs; ``transformation`` ours or optax's.

    Returns:
      A ``NamedChain`` transformation (an :class:`optim.GradientTransformation`) whose state
      is a ``collections.OrderedDict`` from each name to that part's state.

    Raises:
      TypeError: an argument is not a pair with a str name and a transformation.
      ValueError: a name is repeated.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.named_chain(("clip", optim.clip(1.0)), ("sgd", optim.sgd(0.1)))
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> state = tx.init(params)
      >>> list(state)
      ['clip', 'sgd']
      >>> updates, state = tx.update({"w": jnp.array([3.0, -0.5])}, state, params)
      >>> print(updates["w"])
      [-0.1   0.05]
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
