"""optim.assignment against optax.assignment: the same (row, column) index arrays, exactly, on
random float matrices and on small-integer ones (with ties, where the tie-breaking shows)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from optim import assignment as A

SOLVERS = ["hungarian_algorithm", "base_hungarian_algorithm"]


def assert_same(ours, theirs) -> None:
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def brute_force_cost(costs: np.ndarray) -> float:
    n, m = costs.shape
    if n <= m:
        return min(costs[range(n), list(p)].sum() for p in itertools.permutations(range(m), n))
    return brute_force_cost(costs.T)


def test_names_match_optax():
    public = {n for n in dir(optax.assignment) if not n.startswith("_")}
    assert set(A.__all__) == public and sorted(A.__all__) == A.__all__
    assert optim.assignment is A


@pytest.mark.parametrize("name", SOLVERS)
def test_same_indices_as_optax(name):
    # Under jit, so that each shape compiles once (eager calls re-trace the loops every time).
    ours, theirs = jax.jit(getattr(A, name)), jax.jit(getattr(optax.assignment, name))
    rng = np.random.default_rng(0)
    # Few shapes (each compiles its loops once); per shape, normal costs and integer-valued
    # costs in [0, 3] (many ties, where the order of the search decides).
    for shape in [(1, 1), (4, 4), (2, 5), (5, 3)]:
        for draw in [rng.normal, lambda size: rng.integers(0, 4, size=size)] * 2:
            costs = draw(size=shape)
            costs = jnp.asarray(costs, jnp.float32)
            result = ours(costs)
            assert_same(result, theirs(costs))
            i, j = result
            np.testing.assert_allclose(
                np.asarray(costs)[i, j].sum(), brute_force_cost(np.asarray(costs)), rtol=1e-6
            )
    integers = jnp.asarray(rng.integers(0, 4, size=(3, 4)))  # int32: optax casts, so do we
    assert_same(ours(integers), theirs(integers))


@pytest.mark.parametrize("name", SOLVERS)
def test_jit_and_vmap(name):
    ours, theirs = getattr(A, name), getattr(optax.assignment, name)
    costs = jax.random.uniform(jax.random.key(1), (3, 5, 4))
    assert_same(jax.jit(jax.vmap(ours))(costs), jax.jit(jax.vmap(theirs))(costs))


@pytest.mark.parametrize("name", SOLVERS)
def test_doc_examples_and_empty(name):
    solve = getattr(A, name)
    cost = jnp.array([[90, 80, 75, 70], [35, 85, 55, 65], [125, 95, 90, 95], [45, 110, 95, 115]])
    i, j = solve(cost)
    assert int(cost[i, j].sum()) == brute_force_cost(np.asarray(cost)) == 265
    assert_same(solve(jnp.zeros((0, 3))), getattr(optax.assignment, name)(jnp.zeros((0, 3))))
    # A list is accepted (optax needs an array).
    assert_same(solve([[1.0, 0.0], [0.0, 1.0]]), solve(jnp.array([[1.0, 0.0], [0.0, 1.0]])))


@pytest.mark.parametrize("name", SOLVERS)
def test_errors_name_the_argument(name):
    solve = getattr(A, name)
    with pytest.raises(ValueError, match=r"^cost_matrix must be a 2-D array, got shape \(3,\)"):
        solve(jnp.ones(3))
    with pytest.raises(TypeError, match=r"^cost_matrix must be real"):
        solve(jnp.ones((2, 2), jnp.complex64))
    with pytest.raises(TypeError, match=r"^cost_matrix must be a 2-D array of costs"):
        solve({"a": 1})
