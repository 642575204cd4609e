"""optim.experimental.aggregating against optax.experimental.aggregating: the same updates and
states on random per-example gradients, bit for bit where the arithmetic is the same."""

from __future__ import annotations

import types
import typing

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.experimental
import pytest

import optim
from optim import experimental
from optim.experimental import aggregating as AG

OAG = optax.experimental.aggregating


def assert_same(ours, theirs, rtol: float = 0.0) -> None:
    """Same leaf paths (each library's state classes have the same names and fields), dtypes
    and values: bit for bit unless ``rtol`` is given."""
    ours_flat, _ = jax.tree_util.tree_flatten_with_path(ours)
    theirs_flat, _ = jax.tree_util.tree_flatten_with_path(theirs)
    assert [jax.tree_util.keystr(p) for p, _ in ours_flat] == [
        jax.tree_util.keystr(p) for p, _ in theirs_flat
    ]
    for (_, a), (_, b) in zip(ours_flat, theirs_flat, strict=True):
        a, b = jnp.asarray(a), jnp.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        if rtol:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-7)
        else:
            np.testing.assert_array_equal(a, b)


def per_example_grads(seed: int, batch: int = 6) -> dict:
    k = jax.random.split(jax.random.key(seed), 2)
    return {"w": jax.random.normal(k[0], (batch, 3, 2)), "b": jax.random.normal(k[1], (batch, 2))}


PARAMS = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}


def test_names_match_optax():
    assert set(experimental.__all__) == {n for n in dir(optax.experimental) if n[0] != "_"}
    assert optim.experimental is experimental and experimental.aggregating is AG
    # optax's module also shows what it imports (jax, typing.Any, ...): not its API.
    theirs = {
        n
        for n in dir(OAG)
        if not n.startswith("_")
        and not isinstance(getattr(OAG, n), types.ModuleType)
        and getattr(typing, n, None) is not getattr(OAG, n)
    }
    assert len(theirs) == 17
    assert set(AG.__all__) == theirs and sorted(AG.__all__) == AG.__all__


def test_aggregator_types():
    assert isinstance(AG.average_per_element_updates(), AG.Aggregator)
    assert isinstance(AG.get_per_element_mean_and_sum_sq_diff_grads(0, 2), AG.Aggregator)
    assert isinstance(AG.average_incrementally_updates(0, 2), AG.Aggregator)
    assert not isinstance(AG.accumulate_avg_updates(2), AG.Aggregator)
    assert isinstance(AG.add_mean_variance_to_opt(optim.sgd(0.1)), AG.Aggregator)
    plain = AG.process(optim.identity(), optim.identity(), optim.sgd(0.1))
    assert not isinstance(plain, AG.Aggregator)
    assert isinstance(AG.accumulate_avg_updates(1), type(optim.identity()))


def run(tx, grads_seq, params=PARAMS, **extra):
    state = tx.init(params)
    outs = []
    for g in grads_seq:
        updates, state = tx.update(g, state, params, **extra)
        outs.append(updates)
    return outs, state


@pytest.mark.parametrize("steps", [1, 3])
def test_accumulate_and_average_bitwise(steps):
    grads = [per_example_grads(s) for s in range(4)]
    mean_grads = [jax.tree.map(lambda g: jnp.mean(g, 0), g) for g in grads]
    assert_same(
        run(AG.accumulate_avg_updates(steps), mean_grads),
        run(OAG.accumulate_avg_updates(steps), mean_grads),
    )
    assert_same(
        run(AG.average_incrementally_updates(0, steps), grads),
        run(OAG.average_incrementally_updates(0, steps), grads),
    )
    assert_same(
        run(AG.average_incrementally_updates(None, steps), mean_grads),
        run(OAG.average_incrementally_updates(None, steps), mean_grads),
    )


@pytest.mark.parametrize("steps", [1, 2])
def test_mean_and_sum_sq_diff_bitwise(steps):
    grads = [per_example_grads(s) for s in range(3)]
    ours = jax.jit(AG.get_per_element_mean_and_sum_sq_diff_grads(0, steps).update)
    theirs = jax.jit(OAG.get_per_element_mean_and_sum_sq_diff_grads(0, steps).update)
    s_ours = AG.get_per_element_mean_and_sum_sq_diff_grads(0, steps).init(PARAMS)
    s_theirs = OAG.get_per_element_mean_and_sum_sq_diff_grads(0, steps).init(PARAMS)
    for g in grads:
        out_ours, s_ours = ours(g, s_ours)
        # optax's update for accumulation_steps=1 needs params passed (it ignores them).
        out_theirs, s_theirs = theirs(g, s_theirs, None)
        assert_same((out_ours, s_ours), (out_theirs, s_theirs))


@pytest.mark.parametrize("optimizer", ["optax_adam", "adam", "sgd"])
def test_process_doc_example(optimizer):
    """optax's process example (clip each example's gradient, average, adam), three steps.

    Bit for bit, optim.adam too: its 1 - b2 is optax's and its bias correction is compiled
    as optax's.
    """

    def build(lib, agg):
        clip = jax.vmap(lib.projections.projection_l2_ball, 0)
        average = lambda gs: jax.tree.map(lambda g: jnp.mean(g, 0), gs)
        return agg.process(
            agg.Aggregator(init=lambda p: (), update=lambda gs, s, _=None: (clip(gs), s)),
            agg.Aggregator(init=lambda p: (), update=lambda gs, s, _=None: (average(gs), s)),
            optax.adam(learning_rate=1e-1)
            if optimizer == "optax_adam"
            else getattr(lib, optimizer)(learning_rate=1e-1),
        )

    fun = lambda w, x, y: jnp.sum((x.dot(w) - y) ** 2)
    xs = jax.random.normal(jax.random.key(0), (8, 4))
    ys = jax.random.normal(jax.random.key(1), (8, 2))
    grads_fn = jax.vmap(jax.grad(fun), (None, 0, 0))
    trajectories = []
    for lib, agg in [(optim, AG), (optax, OAG)]:
        opt = build(lib, agg)
        params = jax.random.normal(jax.random.key(2), (4, 2))
        state = opt.init(params)
        for _ in range(3):
            updates, state = opt.update(grads_fn(params, xs, ys), state)
            params = lib.apply_updates(params, updates)
        trajectories.append(params)
    assert_same(*trajectories)


@pytest.mark.parametrize("steps", [1, 2])
def test_add_mean_variance_to_opt(steps):
    """Updates and EMAs bit for bit: the EMA weight 1 - 0.9 is rounded from the Python number,
    as optax computes it."""
    grads = [per_example_grads(s) for s in range(4)]
    ours_tx = AG.add_mean_variance_to_opt(optim.sgd(0.1), 0.9, 0, steps)
    theirs_tx = OAG.add_mean_variance_to_opt(optax.sgd(0.1), 0.9, 0, steps)
    ours_updates, ours_state = run(ours_tx, grads)
    theirs_updates, theirs_state = run(theirs_tx, grads)
    assert_same(ours_updates, theirs_updates)
    ours_moments = AG.get_unbiased_mean_and_variance_ema(ours_state)
    theirs_moments = OAG.get_unbiased_mean_and_variance_ema(theirs_state)
    assert_same(ours_moments, theirs_moments)
    # An optax optimizer inside ours: the same.
    mixed = AG.add_mean_variance_to_opt(optax.sgd(0.1), 0.9, 0, steps)
    assert_same(run(mixed, grads)[0], theirs_updates)


def test_track_ema_with_array_decay_bitwise():
    """With the decay given as a float32 array both compute in float32: bit for bit."""
    decay = jnp.float32(0.8)
    extra = {"sum_sq_diff_grads": per_example_grads(1, 1), "sample_size": 5}
    extra["sum_sq_diff_grads"] = jax.tree.map(lambda x: x[0], extra["sum_sq_diff_grads"])
    grads = [jax.tree.map(lambda x: x[0], per_example_grads(s, 1)) for s in range(3)]
    ours = run(AG.track_per_element_mean_and_variance_with_ema(decay), grads, **extra)
    theirs = run(OAG.track_per_element_mean_and_variance_with_ema(decay), grads, **extra)
    assert_same(ours, theirs)


def test_jit_with_transformation_argument():
    tx = AG.add_mean_variance_to_opt(optim.adam(0.01), 0.9, 0, 2)
    state = tx.init(PARAMS)
    step = jax.jit(lambda tx, g, s: tx.update(g, s, PARAMS))
    for seed in range(4):
        updates, state = step(tx, per_example_grads(seed), state)
    eager = run(tx, [per_example_grads(s) for s in range(4)])
    # One fused program against op-by-op execution: XLA may round a division or a fused
    # multiply-add differently, a last-bit difference (measured 1.4e-7 relative).
    assert_same((updates, state), (eager[0][-1], eager[1]), rtol=1e-6)


def test_get_batch_size():
    g = per_example_grads(0, batch=5)
    assert AG.get_batch_size_from_per_elt_updates(g, 0) == 5
    assert AG.get_batch_size_from_per_elt_updates({"w": jnp.zeros((2, 3, 4))}, [0, 1]) == 6
    with pytest.raises(ValueError, match=r"same batch size. Got: \[5, 3\]"):
        AG.get_batch_size_from_per_elt_updates({"b": g["b"], "w": jnp.zeros((3, 2))}, 0)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"^accumulation_steps must be an int >= 1"):
        AG.accumulate_avg_updates(0)
    with pytest.raises(TypeError, match=r"^accumulation_steps must be an int"):
        AG.get_per_element_mean_and_sum_sq_diff_grads(0, 2.0)
    with pytest.raises(TypeError, match=r"^per_elt_axis must be an int or a sequence"):
        AG.average_per_element_updates("batch")
    with pytest.raises(ValueError, match=r"^ema_decay must be in \[0.0, 1.0\]"):
        AG.track_per_element_mean_and_variance_with_ema(1.5)
    tracker = AG.track_per_element_mean_and_variance_with_ema()
    with pytest.raises(TypeError, match=r"needs the keyword arguments sum_sq_diff_grads"):
        tracker.update(PARAMS, tracker.init(PARAMS))
    with pytest.raises(ValueError, match=r"^State must have PerElementMeanAndVarianceEMAState"):
        AG.get_unbiased_mean_and_variance_ema(optim.adam(0.1).init(PARAMS))
    with pytest.raises(TypeError, match=r"^preprocessor must be a gradient transformation"):
        AG.process(None, AG.average_per_element_updates(), optim.sgd(0.1))
    with pytest.raises(TypeError, match=r"^opt must be a gradient transformation"):
        AG.add_mean_variance_to_opt(optim.sgd)
