"""apply_if_finite and the conditional wrappers (optim/transforms/_conditionality.py).

Parity follows tests/test_optax_parity.py: 200 float32 steps of ``convex_loss``, ours against
optax, both given the same Python-float hyperparameters (bound 1e-6: the same arithmetic, only
XLA's fusion may differ).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import (
    FLOAT32_BOUND,
    convex_loss,
    jitted_update,
    relative_deviation,
    tree_bytes,
)

import optim

OURS = optim


def test_apply_if_finite_rejects_nan_and_leaves_state_bit_identical(params):
    tx = OURS.apply_if_finite(OURS.adamw(0.1, weight_decay=0.1), max_consecutive_errors=2)
    grads = jax.grad(convex_loss)(params)
    bad = {**grads, "scale": jnp.float32(jnp.inf)}
    bad["dense"] = {**grads["dense"], "b": grads["dense"]["b"].at[1].set(jnp.nan)}
    update = jax.jit(tx.update)
    _, state = update(grads, tx.init(params), params)
    for rejected in (1, 2):
        updates, new_state = update(bad, state, params)
        assert tree_bytes(new_state.inner_state) == tree_bytes(
            state.inner_state
        )  # count and moments
        assert all(not np.any(np.asarray(u)) for u in jax.tree.leaves(updates))
        assert int(new_state.notfinite_count) == rejected
        assert int(new_state.total_notfinite) == rejected
        assert not bool(new_state.last_finite)
        state = new_state
    # The third NaN in a row exceeds max_consecutive_errors=2: applied, as in optax.
    _, state = update(bad, state, params)
    assert int(state.inner_state[0].count) == 2 and int(state.notfinite_count) == 3
    _, state = update(grads, state, params)
    assert int(state.notfinite_count) == 0 and int(state.total_notfinite) == 3
    assert bool(state.last_finite)


def _even(step):
    return step % 2 == 0


@pytest.mark.parametrize("kind", ["conditionally_transform", "conditionally_mask"])
def test_conditional_wrappers_step_by_step(params, kind):
    """Each step's updates and the whole state (step counter, inner state left untouched at
    rejected steps) equal optax's."""
    ours_tx = getattr(OURS, kind)(OURS.adam(0.1), _even)
    their_tx = getattr(optax, kind)(optax.adam(0.1), _even)
    ours_state, their_state = ours_tx.init(params), their_tx.init(params)
    ours_update, their_update = jax.jit(ours_tx.update), jax.jit(their_tx.update)
    grads = jax.grad(lambda p: sum(jnp.sum(x**2) for x in jax.tree.leaves(p)))(params)
    for _ in range(4):
        before = ours_state.inner_state
        ours, ours_state = ours_update(grads, ours_state, params)
        theirs, their_state = their_update(grads, their_state, params)
        assert relative_deviation(ours, theirs) < FLOAT32_BOUND
        assert relative_deviation(ours_state, their_state) < FLOAT32_BOUND
        if int(ours_state.step) % 2 == 0:  # the step just taken was odd: rejected
            unchanged = jax.tree.map(jnp.array_equal, ours_state.inner_state, before)
            assert all(bool(u) for u in jax.tree.leaves(unchanged))
            expected = jax.tree.map(jnp.zeros_like, grads) if kind.endswith("mask") else grads
            assert relative_deviation(ours, expected) == 0.0
    assert int(ours_state.step) == 4 and int(ours_state.inner_state[0].count) == 2


def test_conditional_forward_extra_args_and_checks(params):
    grads = jax.tree.map(jnp.ones_like, params)
    tx = OURS.conditionally_mask(OURS.sgd(1.0), lambda step, loss: loss < 1.0, True)
    applied, _ = jitted_update(tx, grads, params, loss=jnp.float32(0.5))
    rejected, _ = jitted_update(tx, grads, params, loss=jnp.float32(2.0))
    assert float(applied["scale"]) == -1.0 and float(rejected["scale"]) == 0.0
    with pytest.raises(ValueError, match=r"should_transform_fn must return a boolean scalar"):
        jitted_update(OURS.conditionally_mask(OURS.sgd(1.0), lambda step: step), grads, params)
    with pytest.raises(TypeError, match=r"should_transform_fn must be a function"):
        OURS.conditionally_transform(OURS.sgd(1.0), True)
    with pytest.raises(TypeError, match=r"forward_extra_args must be True or False, got str"):
        OURS.conditionally_transform(OURS.sgd(1.0), _even, "yes")
    with pytest.raises(TypeError, match=r"inner must be a gradient transformation"):
        OURS.conditionally_mask(optim.sgd, _even)
