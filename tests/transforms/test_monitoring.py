"""snapshot, monitor and measure_with_ema (optim/transforms/_monitoring.py) against optax.

The measurements are the user's functions of the same updates: compared bit for bit. The moving
average too when optax is given ``decay`` as a float32 array (the same float32 arithmetic);
given a Python float, optax rounds ``1 - decay`` from float64 and ours from float32 (one
float32 ulp of ``1 - decay``: bound relative 1e-6).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import convex_loss, nested_params, tree_bytes

import optim

STEPS = 6


def _norm(updates):
    return optax.tree.norm(updates)


def _clipped(updates):
    return optax.tree.norm(updates) > 20.0


def _per_leaf_max(updates):
    return jax.tree.map(lambda x: jnp.max(jnp.abs(x)), updates)


def _run(tx, apply_updates, steps=STEPS, **extra_args):
    """(params, state) after jitted steps, and the state after each of them."""
    params = nested_params()
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(convex_loss)(params), state, params, **extra_args)
        return apply_updates(params, updates), state

    states = []
    for _ in range(steps):
        params, state = step(params, state)
        states.append(state)
    return params, states


def _monitored(m, decay):
    return m.chain(
        m.sgd(0.05, momentum=0.9),
        m.monitor(
            {
                "norm": _norm,
                "per_leaf": _per_leaf_max,
                "clipped_ema": m.measure_with_ema(_clipped, decay),
                "norm_ema": m.measure_with_ema(_norm, decay, debias=False),
            }
        ),
        m.snapshot("before_clip", _per_leaf_max),
        m.clip_by_global_norm(1.0),
    )


@pytest.mark.parametrize("chain", ["optim", "optax"])
def test_measurements_match_optax_bitwise(chain):
    lib = optim if chain == "optim" else optax
    ours = lib.chain(*_monitored(optim, 0.8).transforms)
    expected, their_states = _run(_monitored(optax, jnp.float32(0.8)), optax.apply_updates)
    params, states = _run(ours, optim.apply_updates)
    assert tree_bytes(params) == tree_bytes(expected)
    for ours_state, their_state in zip(states, their_states, strict=True):
        for name in ("norm", "per_leaf", "clipped_ema", "norm_ema", "before_clip"):
            assert tree_bytes(optax.tree.get(ours_state, name)) == tree_bytes(
                optax.tree.get(their_state, name)
            ), name
        assert tree_bytes(ours_state[1].measure_states) == tree_bytes(their_state[1].measure_states)


def test_python_float_decay_is_within_one_ulp_of_optax():
    _, states = _run(_monitored(optim, 0.8), optim.apply_updates)
    _, their_states = _run(_monitored(optax, 0.8), optax.apply_updates)
    for name in ("clipped_ema", "norm_ema"):
        ours, theirs = optax.tree.get(states[-1], name), optax.tree.get(their_states[-1], name)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_the_state_keeps_one_structure_for_scan():
    """optax's monitor starts with no measurements; ours with zeros of their shapes."""
    tx = _monitored(optim, 0.8)
    params = nested_params()
    state = tx.init(params)
    assert tree_bytes(state[1].measurements) == tree_bytes(
        {
            "clipped_ema": jnp.float32(0),
            "norm": jnp.float32(0),
            "norm_ema": jnp.float32(0),
            "per_leaf": jax.tree.map(lambda _: jnp.float32(0), params),
        }
    )

    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(convex_loss)(p), s, p)
        return (optim.apply_updates(p, u), s), None

    (_, scanned), _ = jax.lax.scan(step, (params, state), length=STEPS)
    _, states = _run(tx, optim.apply_updates)
    assert jax.tree.structure(scanned) == jax.tree.structure(state)
    assert tree_bytes(scanned) == tree_bytes(states[-1])


def test_snapshot_init_measures_the_params():
    params = nested_params()
    state = optim.snapshot("max", _per_leaf_max).init(params)
    assert state._fields == optax.SnapshotState._fields
    assert tree_bytes(state.measurement["max"]) == tree_bytes(_per_leaf_max(params))


def test_monitor_passes_params_and_extra_args_to_measuring_transformations():
    def update(updates, state, params=None, *, loss, **extra_args):
        del updates, extra_args
        return {"loss": loss, "params": optax.tree.norm(params)}, state + 1

    recorder = optax.GradientTransformationExtraArgs(lambda p: jnp.zeros([], jnp.int32), update)
    tx = optim.monitor({"recorded": recorder})
    params = {"w": jnp.full(4, 0.5)}
    state = tx.init(params)
    assert state.measurements == {}  # it cannot measure without the loss: left out, as in optax
    tx = optim.monitor({"recorded": recorder, "norm": _norm})
    state = tx.init(params)
    assert list(state.measurements) == ["norm"]
    updates, state = jax.jit(lambda s: tx.update(params, s, params, loss=jnp.float32(2.5)))(state)
    assert updates is not params and tree_bytes(updates) == tree_bytes(params)
    assert float(state.measurements["recorded"]["loss"]) == 2.5
    assert float(state.measurements["recorded"]["params"]) == 1.0
    assert int(state.measure_states[0]) == 1
    assert state._fields == optax.MonitorState._fields


def test_measure_with_ema_state_and_values_like_optax():
    decay = jnp.float32(0.9)
    ours = optim.measure_with_ema(_norm, 0.9)
    theirs = optax.measure_with_ema(_norm, decay)
    params = nested_params()
    state, their_state = ours.init(params), theirs.init(params)
    assert [type(s).__name__ for s in state] == ["EmptyState", "EmaState"]
    assert state[1]._fields == their_state[1]._fields
    grads = jax.grad(convex_loss)(params)
    for _ in range(3):
        average, state = ours.update(grads, state)
        their_average, their_state = theirs.update(grads, their_state)
        assert tree_bytes(average) == tree_bytes(their_average)
        assert tree_bytes(state[1]) == tree_bytes(their_state[1])


def test_measure_with_ema_of_a_boolean_is_float32_from_init():
    """optax's average starts as a boolean and turns float32 at the first update; ours is
    float32 throughout (the same values from then on)."""
    tx = optim.measure_with_ema(lambda g: jnp.max(g) > 0.5, 0.5)
    state = tx.init(jnp.zeros(2))
    assert state[1].ema.dtype == jnp.float32
    theirs = optax.measure_with_ema(lambda g: jnp.max(g) > 0.5, jnp.float32(0.5))
    their_state = theirs.init(jnp.zeros(2))
    for g in (jnp.ones(2), jnp.zeros(2), jnp.ones(2)):
        average, state = jax.jit(tx.update)(g, state)
        their_average, their_state = theirs.update(g, their_state)
        assert average.dtype == jnp.float32 and tree_bytes(average) == tree_bytes(their_average)
    assert float(average) == pytest.approx((0.5 * 0.5 * 0.5 + 0.5) / (1 - 0.5**3))


def test_measure_with_ema_accumulator_dtype():
    tx = optim.measure_with_ema(_norm, 0.9, accumulator_dtype=jnp.bfloat16)
    state = tx.init({"w": jnp.ones(3)})
    assert state[1].ema.dtype == jnp.bfloat16
    average, state = tx.update({"w": jnp.ones(3)}, state)
    assert state[1].ema.dtype == jnp.bfloat16 and average.dtype == jnp.float32


def test_transformations_are_pytrees_with_static_functions():
    tx = optim.monitor({"a": _norm, "b": optim.measure_with_ema(_norm, 0.25)})
    assert [float(x) for x in jax.tree.leaves(tx)] == [0.25]  # only the decay is a leaf
    assert jax.tree.leaves(optim.snapshot("n", _norm)) == []


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: optim.snapshot(3, _norm), TypeError, "measure_name must be a string, got int"),
        (lambda: optim.snapshot("n", 3), TypeError, "measure must be a function"),
        (lambda: optim.monitor([_norm]), TypeError, "measures must be a dict"),
        (
            lambda: optim.monitor({"n": 3}),
            TypeError,
            r"measures\['n'\] must be a gradient transformation",
        ),
        (lambda: optim.measure_with_ema(3, 0.9), TypeError, "measure must be a function"),
        (lambda: optim.measure_with_ema(_norm, 1.5), ValueError, r"decay must be in \[0.0, 1.0\]"),
        (lambda: optim.measure_with_ema(_norm, "a"), TypeError, "decay must be a number"),
        (
            lambda: optim.measure_with_ema(_norm, 0.9, debias=1),
            TypeError,
            "debias must be True or False",
        ),
        (
            lambda: optim.measure_with_ema(_norm, 0.9, accumulator_dtype=jnp.int32),
            TypeError,
            "accumulator_dtype must be a floating",
        ),
    ],
)
def test_bad_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_monitor_rejects_a_foreign_state():
    tx = optim.monitor({"a": _norm, "b": _norm})
    other = optim.monitor({"a": _norm}).init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="state does not belong to this monitor of 2 measures"):
        tx.update({"w": jnp.ones(2)}, other)


def test_measure_with_ema_rejects_a_measurement_of_another_structure():
    tx = optim.measure_with_ema(lambda g: g, 0.9)
    state = tx.init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="the measurement does not have the structure"):
        tx.update({"v": jnp.ones(2)}, state)


@pytest.mark.parametrize("name", ["snapshot", "monitor", "measure_with_ema"])
def test_signatures_match_optax(name):
    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    assert list(ours) == list(theirs)
    assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]
    assert getattr(optim.transforms, name) is getattr(optim, name)
