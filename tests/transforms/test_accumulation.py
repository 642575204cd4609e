"""MultiSteps, apply_every and the skip_* rules (optim/transforms/_accumulation.py).

Parity follows tests/test_optax_parity.py: 200 float32 steps of ``convex_loss``, ours against
optax, both given the same Python-float hyperparameters (bound 1e-6: the same arithmetic, only
XLA's fusion may differ).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import PYTHON_FLOAT_BOUND, convex_loss, nested_params, relative_deviation, tree_bytes

import optim

OURS = optim


STEPS = 200


def _adam(m, f, lr=0.01):
    return m.adam(f(lr), f(0.9), f(0.999), f(1e-8))


def _poisoned_trajectory(tx, apply_updates, steps=STEPS):
    """Like conftest.trajectory, but every 7th gradient (and 2 more in a row from step 50)
    has a NaN in one leaf."""
    params = nested_params()
    state = tx.init(params)

    def step(carry, t):
        p, s = carry
        g = jax.grad(convex_loss)(p)
        bad = (t % 7 == 3) | ((t >= 50) & (t < 53))
        g["dense"]["b"] = jnp.where(bad, jnp.nan, g["dense"]["b"])
        u, s = tx.update(g, s, p)
        return (apply_updates(p, u), s), None

    (params, state), _ = jax.lax.scan(jax.jit(step), (params, state), jnp.arange(steps))
    return params, state


@pytest.mark.parametrize(
    "build",
    [
        lambda m, f: m.apply_if_finite(_adam(m, f), 3),
        lambda m, f: m.MultiSteps(_adam(m, f, 0.05), 3, should_skip_update_fn=m.skip_not_finite),
    ],
    ids=["apply_if_finite", "multi_steps_skip_not_finite"],
)
def test_skipped_steps_equal_optax(build):
    ours, ours_state = _poisoned_trajectory(build(OURS, float), optim.apply_updates)
    theirs, theirs_state = _poisoned_trajectory(build(optax, float), optax.apply_updates)
    assert relative_deviation(ours, theirs) < PYTHON_FLOAT_BOUND
    assert np.isfinite(np.concatenate([np.ravel(x) for x in jax.tree.leaves(ours)])).all()
    counters = [name for name in ("total_notfinite", "gradient_step") if name in ours_state._fields]
    for name in counters:
        assert int(getattr(ours_state, name)) == int(getattr(theirs_state, name))


def _batches(k=4, n=8, seed=1):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    return jax.random.normal(kx, (k, n, 3)), jax.random.normal(ky, (k, n))


def _mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


@pytest.mark.parametrize(
    "make", [lambda: OURS.sgd(0.1, 0.9), lambda: OURS.adam(0.05)], ids=["sgd", "adam"]
)
def test_multi_steps_equals_big_batch_steps(make):
    """k mini-batches averaged by MultiSteps = one step on the k-times larger batch."""
    big, small = make(), OURS.MultiSteps(make(), every_k_schedule=4)

    @jax.jit
    def step(tx, params, state, batch):
        updates, state = tx.update(jax.grad(_mse)(params, batch), state, params)
        return optim.apply_updates(params, updates), state, updates

    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    big_params, big_state = params, big.init(params)
    small_params, small_state = params, small.init(params)
    for round_ in range(3):
        xs, ys = _batches(seed=round_)
        big_params, big_state, _ = step(big, big_params, big_state, (xs.reshape(-1, 3), ys.ravel()))
        for i in range(4):
            small_params, small_state, updates = step(
                small, small_params, small_state, (xs[i], ys[i])
            )
            if i < 3:
                assert not bool(small.has_updated(small_state))
                assert all(not np.any(np.asarray(u)) for u in jax.tree.leaves(updates))
        assert bool(small.has_updated(small_state))
        # Float32 rounding: the mean of 4 batch means (Welford) vs the mean of 32 terms.
        np.testing.assert_allclose(small_params["w"], big_params["w"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(small_params["b"], big_params["b"], rtol=1e-5, atol=1e-7)
    assert int(small_state.gradient_step) == 3


@pytest.mark.parametrize(
    ("accumulator_dtype", "expected"),
    [(None, jnp.float32), (jnp.bfloat16, jnp.bfloat16)],
)
def test_multi_steps_one_buffer_in_the_chosen_dtype(accumulator_dtype, expected):
    params = nested_params(dtype=jnp.bfloat16)
    tx = OURS.MultiSteps(OURS.sgd(0.1), 2, accumulator_dtype=accumulator_dtype)
    state = tx.init(params)
    assert jax.tree.structure(state.acc_grads) == jax.tree.structure(params)
    assert all(a.dtype == expected for a in jax.tree.leaves(state.acc_grads))
    # The only per-parameter buffer: sgd has no state, so the rest is two counters.
    assert len(jax.tree.leaves(state)) == len(jax.tree.leaves(params)) + 2
    grads = jax.grad(convex_loss)(params)
    update = jax.jit(tx.update)
    for _ in range(2):
        updates, state = update(grads, state, params)
    assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates))
    assert all(a.dtype == expected for a in jax.tree.leaves(state.acc_grads))


def test_multi_steps_class_api(params):
    inner = OURS.adam(0.1)
    tx = OURS.MultiSteps(inner, 3)
    assert tx.inner_opt is inner
    assert tx.gradient_transformation() is tx
    wrapped = OURS.MultiSteps(optax.adam(0.1), 3)  # an optax optimizer inside
    assert isinstance(wrapped.opt, optim.OptaxTransform)
    skip = functools.partial(OURS.skip_large_updates, max_squared_norm=1.0)
    tx = OURS.MultiSteps(OURS.sgd(0.1), 2, should_skip_update_fn=skip)
    state = tx.init(params)
    huge = jax.tree.map(lambda x: 1e3 * jnp.ones_like(x), params)
    _, new_state = tx.update(huge, state, params)
    assert tree_bytes(new_state._replace(skip_state=None)) == tree_bytes(
        state._replace(skip_state=None)
    )
    assert bool(new_state.skip_state["should_skip"])


def test_apply_every_state_as_optax(params):
    grads = jax.tree.map(jnp.ones_like, params)
    ours_tx, their_tx = OURS.apply_every(3), optax.apply_every(3)
    ours_state, their_state = ours_tx.init(params), their_tx.init(params)
    for _ in range(5):
        ours, ours_state = ours_tx.update(grads, ours_state)
        theirs, their_state = their_tx.update(grads, their_state)
        assert relative_deviation(ours, theirs) == 0.0
        assert int(ours_state.count) == int(their_state.count)
        assert relative_deviation(ours_state.grad_acc, their_state.grad_acc) == 0.0
    with pytest.raises(ValueError, match=r"k must be an int >= 1, got 0"):
        OURS.apply_every(0)
    for bad in (2.5, True):
        with pytest.raises(TypeError, match=r"k must be an int, got"):
            OURS.apply_every(bad)
