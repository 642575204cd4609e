"""Hypothesis strategies for random parameter pytrees and their gradients.

A drawn ``Problem`` holds two trees of one structure, ``params`` and ``grads``, built from the
containers users put parameters in (dicts, lists, tuples, NamedTuples, dataclasses registered
with JAX, with static metadata) and leaves that are ``None`` or NumPy arrays of the shapes and
dtypes optimizers meet: scalars, empty and one-element vectors, matrices and 3-d arrays, in
float16, bfloat16, float32, float64 and complex64. Leaves are NumPy arrays so that a float64
leaf keeps its dtype until ``to_jax`` is called inside ``jax.enable_x64(problem.needs_x64)``.

Values are drawn per leaf as random signs times magnitudes ``10**(e + U(-1, 1))`` with a
decade ``e`` drawn per leaf in ``MAGNITUDE_DECADES[dtype]``, from tiny (subnormal in float16;
squares that underflow float32) to large (no overflow in the leaf dtype, and squares and sums
of squares finite in float32, the optimizers' compute dtype), a tenth of the elements zero.

``kitchen_sink()`` and ``x64_sink()`` are small fixed problems with every container, the
required shapes and every dtype, for ``hypothesis.example``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

PyTree = Any

# Ordered so that the minimal example (what hypothesis shrinks towards) is a float32 matrix.
DTYPES = (
    np.dtype(np.float32),
    np.dtype(np.float16),
    np.dtype(jnp.bfloat16),
    np.dtype(np.complex64),
    np.dtype(np.float64),
)
# (n, m); the edge cases (scalar, empty, one element); a vector, a column, larger arrays.
LEAF_SHAPES = ((2, 3), (), (0,), (1,), (5,), (3, 1), (4, 3, 2), (16, 8))

# log10 of the element magnitudes per leaf dtype. float16: 1e-7 (subnormal) to 1e3 (the
# largest float16 is 65504; a step of learning rate times 1e3 stays representable). The
# others: 1e-21 to 1e9, whose squares (1e-42: below float32's smallest subnormal; 1e18) and
# sums of squares stay finite in float32.
MAGNITUDE_DECADES = {
    np.dtype(np.float16): (-6, 2),
    np.dtype(jnp.bfloat16): (-20, 8),
    np.dtype(np.float32): (-20, 8),
    np.dtype(np.float64): (-20, 8),
    np.dtype(np.complex64): (-20, 8),
}
ZERO_FRACTION = 0.1


class Pair(NamedTuple):
    """A NamedTuple container (a pytree by default, like optax states)."""

    first: Any
    second: Any


@dataclasses.dataclass(frozen=True)
class Box:
    """A dataclass container registered with JAX; ``tag`` is static metadata (as in equinox)."""

    weight: Any
    bias: Any
    tag: str = "box"


jax.tree_util.register_dataclass(Box, data_fields=["weight", "bias"], meta_fields=["tag"])


@dataclasses.dataclass(frozen=True)
class LeafSpec:
    """Shape and dtype of one array leaf (not a pytree: a leaf of a tree of specs)."""

    shape: tuple[int, ...]
    dtype: np.dtype


# Every (shape, dtype) pair.
ALL_LEAVES = tuple(LeafSpec(s, d) for d, s in itertools.product(DTYPES, LEAF_SHAPES))


@dataclasses.dataclass(frozen=True)
class Problem:
    """Parameters and gradients of one structure; leaves ``None`` or NumPy arrays."""

    params: PyTree
    grads: PyTree

    @property
    def leaf_specs(self) -> list[LeafSpec]:
        return [LeafSpec(x.shape, x.dtype) for x in jax.tree.leaves(self.params)]

    @property
    def needs_x64(self) -> bool:
        """Whether a float64 leaf needs ``jax.enable_x64`` to stay float64 in JAX."""
        return any(spec.dtype == np.float64 for spec in self.leaf_specs)


def to_jax(tree: PyTree) -> PyTree:
    """The tree with NumPy leaves as JAX arrays of the same dtype (float64 needs x64)."""
    return jax.tree.map(jnp.asarray, tree)


def random_values(spec: LeafSpec, decade: int, seed: int) -> np.ndarray:
    """Random signs times magnitudes ``10**(decade + U(-1, 1))``, a tenth of them zero."""
    rng = np.random.default_rng(seed)

    def real() -> np.ndarray:
        magnitude = 10.0 ** (decade + rng.uniform(-1.0, 1.0, spec.shape))
        sign = rng.choice([-1.0, 1.0], spec.shape)
        return np.where(rng.uniform(size=spec.shape) < ZERO_FRACTION, 0.0, sign * magnitude)

    values = real() + 1j * real() if np.issubdtype(spec.dtype, np.complexfloating) else real()
    return np.asarray(values, spec.dtype)


def containers(children: st.SearchStrategy) -> st.SearchStrategy:
    """One level of nesting: dict, list, tuple, NamedTuple or registered dataclass."""
    small = {"min_size": 0, "max_size": 3}
    return st.one_of(
        st.dictionaries(st.sampled_from(["w", "b", "kernel", "scale", "emb"]), children, **small),
        st.lists(children, **small),
        st.lists(children, **small).map(tuple),
        st.builds(Pair, children, children),
        st.builds(Box, children, children, tag=st.sampled_from(["dense", "norm"])),
    )


def spec_trees(leaves: Sequence[LeafSpec], max_leaves: int) -> st.SearchStrategy[PyTree]:
    """Trees of ``LeafSpec`` (drawn from ``leaves``) and ``None`` (a non-trainable leaf).

    The root is not ``None``: ``update(grads, state, params=None)`` means "no params given".
    """
    leaf = st.one_of(st.sampled_from(leaves), st.none())
    return st.recursive(leaf, containers, max_leaves=max_leaves).filter(lambda t: t is not None)


@st.composite
def problems(
    draw: st.DrawFn, leaves: Sequence[LeafSpec] = ALL_LEAVES, max_leaves: int = 6
) -> Problem:
    """A ``Problem``: random params and grads on one random tree of specs."""
    flat, treedef = jax.tree.flatten(draw(spec_trees(leaves, max_leaves)))
    seeds = st.integers(0, 2**32 - 1)

    def values(spec: LeafSpec) -> np.ndarray:
        low, high = MAGNITUDE_DECADES[spec.dtype]
        return random_values(spec, draw(st.integers(low, high)), draw(seeds))

    params = [values(spec) for spec in flat]
    grads = [values(spec) for spec in flat]
    return Problem(jax.tree.unflatten(treedef, params), jax.tree.unflatten(treedef, grads))


def _values_tree(specs: PyTree, seed: int) -> PyTree:
    """Values for a tree of ``LeafSpec``: decades cycle through low, high and 0 by leaf."""
    flat, treedef = jax.tree.flatten(specs)
    arrays = []
    for i, spec in enumerate(flat):
        low, high = MAGNITUDE_DECADES[spec.dtype]
        arrays.append(random_values(spec, (low, high, 0)[(i + seed) % 3], seed + i))
    return jax.tree.unflatten(treedef, arrays)


def _fixed_problem(specs: PyTree, seed: int) -> Problem:
    return Problem(_values_tree(specs, seed), _values_tree(specs, seed + 1000))


def kitchen_sink(seed: int = 0) -> Problem:
    """The cases every optimizer must meet, in five leaves: shapes (), (0,), (1,), a matrix and
    a 3-d array; float32, float16, bfloat16 and complex64; every container; ``None``."""
    f32, f16, bf16, c64, _ = DTYPES
    specs = {
        "dense": Box(LeafSpec((2, 3), f32), LeafSpec((), f16), tag="dense"),
        "layers": [
            Pair(LeafSpec((0,), bf16), None),
            (LeafSpec((1,), c64), LeafSpec((4, 3, 2), bf16)),
        ],
        "frozen": None,
    }
    return _fixed_problem(specs, seed)


def x64_sink(seed: int = 0) -> Problem:
    """float64 leaves (a matrix and a scalar) in a NamedTuple, next to ``None``."""
    f64 = np.dtype(np.float64)
    return _fixed_problem(Pair(LeafSpec((4, 3), f64), [LeafSpec((), f64), None]), seed)
