"""What a repeated ``fit`` call reuses: the checked, planned step program of an earlier call
with the same loss function, optimizer structure, tree structures, shapes, dtypes and options.

Planning a run (checking the options against the data, parameters and optimizer, finding
whether the optimizer is a line search, building the program ``jit`` is keyed on) reads only
those, never the values of the arrays, so a call that matches an earlier one in all of them
gets the same plan: only the per-call work is left (the arrays themselves, the data's
placement on a mesh, the run's bookkeeping). A training loop that calls ``fit`` again and
again on a small problem spends its time in the compiled program, not in Python.

Nothing is reused for a traced call (inside ``jit``, ``vmap`` or ``grad``: it is planned once
in the trace anyway) nor for data given as an iterator (each is a new object, which a kept plan
would keep alive).
"""

from __future__ import annotations

import collections
from collections.abc import Hashable, Iterator
from typing import Any

import jax

from optim._tree import PyTree, is_array
from optim.grad import ArraySplit

# Distinct plans kept; the oldest unused is dropped first. Each holds only what the compiled
# program (a ``jit`` static argument, kept by ``jit``'s own cache anyway) holds.
MAX_PLANS = 64


def _is_none(x: Any) -> bool:
    return x is None


def _avals(leaves: list[Any]) -> tuple[Any, ...] | None:
    """Each array's ``(shape, dtype)``, other leaves as they are; None if one is traced."""
    described = []
    for leaf in leaves:
        if isinstance(leaf, jax.core.Tracer):
            return None
        described.append((leaf.shape, leaf.dtype) if is_array(leaf) else leaf)
    return tuple(described)


def tree_signature(tree: PyTree) -> tuple[Any, ...] | None:
    """``(structure, leaf descriptions)`` of ``tree``: equal for trees a plan treats alike;
    None for a traced tree."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_none)
    avals = _avals(leaves)
    return None if avals is None else (treedef, avals)


def _metrics_signature(metrics: Any) -> Any:
    if isinstance(metrics, dict):
        return ("dict", tuple(metrics.items()))
    return metrics if metrics is None or isinstance(metrics, str) else tuple(metrics)


def plan_key(
    loss_fn: Any,
    split: ArraySplit,
    optimizer: Any,
    data: Any,
    batching: Any,
    step_options: Any,
    evaluation: Any,
    checkpointing: Any,
    placement: Any,
    chunking: Any,
) -> Hashable | None:
    """The key a call's plan is kept under, or None when it cannot be reused (see the
    module docstring)."""
    if isinstance(data, Iterator):
        return None
    # The optimizer's leaves are its hyperparameters: values of the program, not part of it.
    optimizer_leaves, optimizer_structure = jax.tree.flatten(optimizer)
    if any(isinstance(x, jax.core.Tracer) for x in optimizer_leaves):
        return None
    optional = (batching.key, evaluation.data)
    trees = [_avals(split.arrays), tree_signature(data)]
    trees += [() if tree is None else tree_signature(tree) for tree in optional]
    if any(t is None for t in trees):  # traced: planned once in the trace anyway
        return None
    key = (
        loss_fn,
        optimizer_structure,
        split.treedef,
        split.constants,
        *trees,
        (batching.steps, batching.epochs, batching.batch_size, batching.drop_last),
        step_options,
        (evaluation.every, _metrics_signature(evaluation.metrics)),
        evaluation.early_stopping,
        checkpointing,
        placement,
        chunking,
    )
    try:
        hash(key)
    except TypeError:  # a constant leaf or a static field that cannot be hashed
        return None
    return key


class RecentPlans:
    """The plans of the last ``MAX_PLANS`` distinct keys."""

    def __init__(self, size: int = MAX_PLANS) -> None:
        self.size = size
        self.plans: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

    def get(self, key: Hashable | None) -> Any:
        if key is None:
            return None
        try:
            found = self.plans.get(key)
        except (TypeError, ValueError):  # an element whose == is not a bool (an array)
            return None
        if found is not None:
            self.plans.move_to_end(key)
        return found

    def put(self, key: Hashable | None, plan: Any) -> None:
        if key is None:
            return
        try:
            self.plans[key] = plan
        except (TypeError, ValueError):
            return
        self.plans.move_to_end(key)
        if len(self.plans) > self.size:
            self.plans.popitem(last=False)

    def clear(self) -> None:
        self.plans.clear()
