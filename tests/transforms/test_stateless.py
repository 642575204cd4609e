"""stateless, stateless_with_tree_map, with_extra_args_support and init_empty_state
(optim/transforms/_stateless.py) against optax.

The transformations only call the user's function, so outputs are compared bit for bit.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import convex_loss, nested_params, tree_bytes

import optim


def _pull(updates, params):
    """A function of the whole trees (stateless): updates plus 0.01 params."""
    return jax.tree.map(lambda g, p: g + 0.01 * p, updates, params)


def _leaf_pull(g, p):
    return g if p is None else g + 0.01 * p


def _run(tx, apply_updates, steps=5, **extra_args):
    params = nested_params()
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(convex_loss)(params), state, params, **extra_args)
        return apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
    return params, state


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (optim.stateless(_pull), optax.stateless(_pull)),
        (optim.stateless_with_tree_map(_leaf_pull), optax.stateless_with_tree_map(_leaf_pull)),
    ],
    ids=["stateless", "stateless_with_tree_map"],
)
def test_matches_optax_bitwise_in_both_chains(ours, theirs):
    expected, their_state = _run(optax.chain(theirs, optax.sgd(0.1)), optax.apply_updates)
    for chain in (optim.chain, optax.chain):
        got, state = _run(chain(ours, optim.sgd(0.1)), optim.apply_updates)
        assert tree_bytes(got) == tree_bytes(expected)
        assert type(state[0]).__name__ == "EmptyState"
    assert type(their_state[0]).__name__ == "EmptyState"


def test_without_params_the_function_gets_none():
    seen = []

    def record(updates, params):
        seen.append(params)
        return updates

    grads = {"w": jnp.ones(2)}
    tx = optim.stateless(record)
    updates, state = tx.update(grads, tx.init(grads))
    assert seen == [None] and updates is grads and state == optim.EmptyState()
    mapped = optim.stateless_with_tree_map(lambda g, p: g * 2 if p is None else g)
    assert mapped.update(grads, mapped.init(grads))[0]["w"].tolist() == [2.0, 2.0]


def test_tree_map_keeps_none_updates_next_to_non_array_params():
    """An equinox-style tree: a function among the params, no update for it."""
    params = {"w": jnp.ones(2), "act": jnp.tanh}
    grads = {"w": jnp.full(2, 0.5), "act": None}
    tx = optim.stateless_with_tree_map(lambda g, p: g + p)
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), {"w": params["w"], "act": None})
    assert updates["act"] is None and updates["w"].tolist() == [1.5, 1.5]
    updates, _ = tx.update(grads, tx.init(params), params)
    assert updates["act"] is None and updates["w"].tolist() == [1.5, 1.5]


def test_the_function_is_static_and_compiled_once():
    tx = optim.stateless(_pull)
    assert jax.tree.leaves(tx) == []
    traces = []

    @jax.jit
    def step(tx, grads, params):
        traces.append(1)
        return tx.update(grads, tx.init(params), params)[0]

    params = {"w": jnp.ones(2)}
    step(tx, params, params)
    step(optim.stateless(_pull), params, params)  # same function: no new trace
    assert len(traces) == 1


def test_update_ignores_extra_args():
    tx = optim.stateless(_pull)
    params = {"w": jnp.ones(2)}
    updates, _ = tx.update(params, tx.init(params), params, loss=1.0)
    assert updates["w"].tolist() == [1.0099999904632568] * 2


@pytest.mark.parametrize("factory", [optim.stateless, optim.stateless_with_tree_map])
def test_non_function_is_a_type_error(factory):
    with pytest.raises(TypeError, match=r"f must be a function, got int 3"):
        factory(3)


def test_tree_map_structure_mismatch_names_the_leaf():
    tx = optim.stateless_with_tree_map(_leaf_pull)
    with pytest.raises(ValueError, match=r"missing from updates: \['b'\]"):
        tx.update({"a": jnp.ones(2)}, tx.init(None), {"a": jnp.ones(2), "b": jnp.ones(2)})


# --- with_extra_args_support and init_empty_state -----------------------------------------


def test_with_extra_args_support_returns_ours_unchanged():
    tx = optim.adam(0.1)
    assert optim.with_extra_args_support(tx) is tx


def test_with_extra_args_support_wraps_optax_transformations():
    params = nested_params()
    plain = optax.sgd(0.1, momentum=0.9)
    wrapped = optim.with_extra_args_support(plain)
    got, _ = _run(wrapped, optim.apply_updates, loss=jnp.float32(1.0))
    expected, _ = _run(plain, optax.apply_updates)
    assert tree_bytes(got) == tree_bytes(expected)
    assert isinstance(optax.chain(wrapped, optax.scale(1.0)).init(params), tuple)


def test_with_extra_args_support_passes_them_to_optax_extra_args_transformations():
    seen = []

    def update(updates, state, params=None, *, loss, **extra_args):
        del params, extra_args
        seen.append(float(loss))
        return updates, state

    tx = optim.with_extra_args_support(
        optax.GradientTransformationExtraArgs(optax.init_empty_state, update)
    )
    grads = jnp.ones(2)
    tx.update(grads, tx.init(grads), loss=jnp.float32(3.0), other=1)
    assert seen == [3.0]


def test_with_extra_args_support_rejects_non_transformations():
    with pytest.raises(TypeError, match=r"tx must be a gradient transformation.*got function"):
        optim.with_extra_args_support(lambda g: g)


def test_init_empty_state():
    assert optim.init_empty_state({"w": jnp.ones(2)}) == optim.EmptyState()
    assert optim.init_empty_state(None) == ()


@pytest.mark.parametrize(
    "name", ["stateless", "stateless_with_tree_map", "with_extra_args_support", "init_empty_state"]
)
def test_signatures_match_optax(name):
    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    assert list(ours) == list(theirs)
    assert [p.kind for p in ours.values()] == [p.kind for p in theirs.values()]
