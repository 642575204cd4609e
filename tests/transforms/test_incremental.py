"""incremental_update and periodic_update (optim/transforms/_incremental.py) against optax.

Given a float32 ``step_size`` both compute ``a * new + (1 - a) * old`` in float32: compared bit
for bit. Given a Python float, optax rounds ``1 - a`` from float64 and ours from float32, a
difference of at most one float32 ulp of ``1 - a`` (bound: relative 1e-6 of the leaves).
``periodic_update`` only selects: bit for bit.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import nested_params, relative_deviation, tree_bytes

import optim

NEW = nested_params(1)
OLD = nested_params(2)


@pytest.mark.parametrize("step_size", [0.0, 0.01, 0.3, 1.0])
def test_incremental_update_matches_optax(step_size):
    ours = optim.incremental_update(NEW, OLD, step_size)
    assert tree_bytes(ours) == tree_bytes(
        optax.incremental_update(NEW, OLD, jnp.float32(step_size))
    )
    assert relative_deviation(ours, optax.incremental_update(NEW, OLD, step_size)) < 1e-6


def test_incremental_update_jitted_with_a_traced_step_size():
    average = jax.jit(optim.incremental_update)(NEW, OLD, jnp.float32(0.3))
    expected = jax.jit(optax.incremental_update)(NEW, OLD, jnp.float32(0.3))
    assert tree_bytes(average) == tree_bytes(expected)


def test_polyak_average_over_a_training_loop():
    """The use optax documents: an average of the parameters along an sgd run."""
    loss = lambda p: sum(jnp.sum((x - 1.0) ** 2) for x in jax.tree.leaves(p))

    def run(lib):
        tx = lib.sgd(0.1)

        @jax.jit
        def step(carry, _):
            params, average, state = carry
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            params = lib.apply_updates(params, updates)
            return (params, lib.incremental_update(params, average, jnp.float32(0.05)), state), None

        (_, average, _), _ = jax.lax.scan(step, (NEW, NEW, tx.init(NEW)), length=50)
        return average

    assert relative_deviation(run(optim), run(optax)) < 2e-6  # sgd: same float32 arithmetic


def test_incremental_update_dtypes_and_non_array_leaves():
    new = {"w": jnp.ones(2, jnp.bfloat16), "f": jnp.tanh, "n": None, "k": jnp.arange(2)}
    old = {"w": jnp.zeros(2, jnp.float32), "f": jnp.tanh, "n": None, "k": jnp.zeros(2, int)}
    average = optim.incremental_update(new, old, 0.25)
    assert average["w"].dtype == jnp.float32 and average["w"].tolist() == [0.25, 0.25]
    assert average["f"] is jnp.tanh and average["n"] is None and average["k"] is new["k"]
    half = optim.incremental_update(
        {"w": jnp.ones(2, jnp.bfloat16)}, {"w": jnp.zeros(2, jnp.bfloat16)}, 0.5
    )
    assert half["w"].dtype == jnp.bfloat16


@pytest.mark.parametrize(
    ("step_size", "error", "match"),
    [
        (1.5, ValueError, r"step_size must be in \[0.0, 1.0\], got 1.5"),
        (-0.1, ValueError, r"step_size must be in \[0.0, 1.0\], got -0.1"),
        (float("nan"), ValueError, "step_size must be finite"),
        ("0.1", TypeError, "step_size must be a number, got str"),
        (jnp.ones(2), ValueError, r"step_size must be a scalar"),
    ],
)
def test_incremental_update_bad_step_size(step_size, error, match):
    with pytest.raises(error, match=match):
        optim.incremental_update(NEW, OLD, step_size)


def test_incremental_update_structure_mismatch_names_the_leaf():
    with pytest.raises(ValueError, match=r"new_tensors\['dense'\]\['b'\] has shape \(3,\)"):
        optim.incremental_update(NEW, {**OLD, "dense": {**OLD["dense"], "b": jnp.ones(4)}}, 0.1)


# --- periodic_update ----------------------------------------------------------------------


@pytest.mark.parametrize("update_period", [1, 3])
def test_periodic_update_matches_optax(update_period):
    for steps in range(7):
        ours = optim.periodic_update(NEW, OLD, steps, update_period)
        assert tree_bytes(ours) == tree_bytes(optax.periodic_update(NEW, OLD, steps, update_period))
        assert tree_bytes(ours) == tree_bytes(NEW if steps % update_period == 0 else OLD)


def test_periodic_update_jitted_with_traced_steps_and_period():
    update = jax.jit(optim.periodic_update)
    for steps in (4, 6):
        got = update(NEW, OLD, jnp.int32(steps), jnp.int32(3))
        assert tree_bytes(got) == tree_bytes(NEW if steps % 3 == 0 else OLD)


def test_periodic_update_keeps_old_dtypes_and_non_array_leaves():
    new = {"w": jnp.ones(2, jnp.bfloat16), "f": jnp.tanh, "n": None}
    old = {"w": jnp.zeros(2, jnp.float32), "f": jnp.tanh, "n": None}
    copied = optim.periodic_update(new, old, 0, 2)
    assert copied["w"].dtype == jnp.float32 and copied["w"].tolist() == [1.0, 1.0]
    assert copied["f"] is jnp.tanh and copied["n"] is None
    assert optim.periodic_update(new, old, 1, 2)["w"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("steps", "update_period", "error", "match"),
    [
        (0, 0, ValueError, "update_period must be >= 1, got 0"),
        (0, jnp.int32(-2), ValueError, "update_period must be >= 1, got -2"),
        (0, 2.0, TypeError, "update_period must be an int"),
        (0, True, TypeError, "update_period must be an int"),
        (1.0, 2, TypeError, "steps must be an int"),
        (-1, 2, ValueError, "steps must be >= 0, got -1"),
        (jnp.arange(2), 2, ValueError, r"steps must be a scalar, got shape \(2,\)"),
    ],
)
def test_periodic_update_bad_counts(steps, update_period, error, match):
    with pytest.raises(error, match=match):
        optim.periodic_update(NEW, OLD, steps, update_period)


def test_periodic_update_structure_mismatch():
    with pytest.raises(ValueError, match="new_tensors does not have the structure of old"):
        optim.periodic_update({"a": jnp.ones(2)}, {"b": jnp.ones(2)}, 0, 1)


@pytest.mark.parametrize("name", ["incremental_update", "periodic_update"])
def test_signatures_match_optax(name):
    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    assert list(ours) == list(theirs)
