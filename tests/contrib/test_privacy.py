"""DP-SGD (optim.contrib._privacy) against optax.contrib 0.2.8 (the oracle): the noise, the
keys, the clipped mean, dtypes, jit and vmap, bad arguments. The updates take per-example
gradients (a batch axis on every leaf). The trajectories are compared with optax's in
tests/test_optax_parity.py (records of tests/parity_table.py's PRIVACY).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import relative_deviation
from parity_table import DP_BATCH, dp_params, per_example_grads

import optim
from optim.contrib import (
    DifferentiallyPrivateAggregateState,
    differentially_private_aggregate,
    dpsgd,
)


def _aggregate_once(module, grads, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optax's and our key=None / seed= warnings
        tx = module.contrib.differentially_private_aggregate(0.8, 1.5, **kwargs)
    params = jax.tree.map(lambda g: g[0], grads)
    return tx.update(grads, tx.init(params), params)


@pytest.mark.parametrize(
    "kwargs",
    [{"key": 3}, {"key": jax.random.key(9)}, {"seed": 2}, {}],
    ids=["int_key", "typed_key", "deprecated_seed", "no_key"],
)
def test_aggregate_draws_optax_noise(kwargs):
    """Every way of giving the key gives optax's noise, with a tree holding a None leaf (not
    counted when the key is split, as in optax) and leaves of several shapes."""
    grads = {
        **per_example_grads(dp_params()),
        "frozen": None,
        "extra": [jnp.ones((DP_BATCH, 2, 2))],
    }
    ours, our_state = _aggregate_once(optim, grads, **kwargs)
    theirs, their_state = _aggregate_once(optax, grads, **kwargs)
    assert ours["frozen"] is None
    assert relative_deviation(ours, theirs) == 0.0
    assert isinstance(our_state, DifferentiallyPrivateAggregateState)
    np.testing.assert_array_equal(
        jax.random.key_data(our_state.rng_key), jax.random.key_data(their_state.rng_key)
    )


def test_raw_prng_key_accepted():
    """A ``jax.random.PRNGKey(seed)`` (raw uint32 data) is the typed key of the same data;
    optax's ``jax.random.key`` cannot take it."""
    grads = per_example_grads(dp_params())
    raw = jax.random.PRNGKey(12)
    ours, _ = _aggregate_once(optim, grads, key=raw)
    theirs, _ = _aggregate_once(optax, grads, key=jax.random.wrap_key_data(raw))
    assert relative_deviation(ours, theirs) == 0.0


def test_key_warnings_as_optax():
    with pytest.warns(UserWarning, match="key"):
        differentially_private_aggregate(1.0, 1.0)
    with pytest.warns(DeprecationWarning, match="seed"):
        differentially_private_aggregate(1.0, 1.0, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dpsgd's seed is its documented argument: no warning
        dpsgd(0.1, 1.0, 1.0, seed=1)


def test_clipped_mean_without_noise():
    """noise_multiplier = 0: the mean over the batch of each example's gradient scaled to norm
    at most C (computed here in float64)."""
    grads = per_example_grads(dp_params())
    bound = 3.0
    tx = differentially_private_aggregate(bound, 0.0, key=0)
    updates, _ = tx.update(grads, tx.init(None))
    flat = np.concatenate(
        [np.asarray(g, np.float64).reshape(DP_BATCH, -1) for g in jax.tree.leaves(grads)], axis=1
    )
    factors = np.minimum(1.0, bound / np.linalg.norm(flat, axis=1))
    assert np.sum(factors < 1) >= 2  # the case clips some examples, not all
    for g, u in zip(jax.tree.leaves(grads), jax.tree.leaves(updates), strict=True):
        expected = np.tensordot(factors, np.asarray(g, np.float64), axes=1) / DP_BATCH
        np.testing.assert_allclose(u, expected, rtol=1e-6, atol=1e-7)


def test_no_clipping_and_no_noise_is_the_mean_unlike_optax():
    """l2_norm_clip = inf with noise_multiplier = 0 (plain averaging): optax's standard
    deviation is inf * 0 = NaN, and so is every update; ours is the batch mean."""
    grads = per_example_grads(dp_params())
    tx = differentially_private_aggregate(float("inf"), 0.0, key=0)
    ours, _ = tx.update(grads, tx.init(None))
    for g, u in zip(jax.tree.leaves(grads), jax.tree.leaves(ours), strict=True):
        np.testing.assert_allclose(u, jnp.mean(g, axis=0), rtol=1e-6)


def test_noise_has_the_stated_standard_deviation():
    """Zero gradients: the update is the noise over the batch size, of standard deviation
    sigma C / B (100,000 draws: the sample deviation is within 1% at 5 sigma)."""
    grads = {"w": jnp.zeros((4, 100_000))}
    tx = differentially_private_aggregate(2.0, 1.5, key=1)
    updates, _ = tx.update(grads, tx.init(None))
    assert abs(float(jnp.std(updates["w"])) / (2.0 * 1.5 / 4) - 1) < 0.01
    assert abs(float(jnp.mean(updates["w"]))) < 5 * 0.75 / np.sqrt(100_000)


def test_bfloat16_gradients_keep_their_dtype():
    """bfloat16 updates, the same with and without jit (the noise drawn in float32: optax's
    bfloat16 draws differ by ulps between the two)."""
    grads = jax.tree.map(lambda g: g.astype(jnp.bfloat16), per_example_grads(dp_params()))
    tx = dpsgd(0.1, 1.0, 1.0, 0, momentum=0.9)
    params = jax.tree.map(lambda g: g[0], grads)
    updates, state = tx.update(grads, tx.init(params), params)
    jitted, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
    assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates))
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
    assert state[1].trace["w"].dtype == jnp.float32


def test_jit_compiles_once_and_equals_eager():
    """The optimizer is a pytree: a new learning rate, bound or key reuses the program; the
    jitted update equals the eager one (the same noise; XLA fuses the arithmetic: an ulp)."""
    traces = []

    @jax.jit
    def step(tx, params, state):
        traces.append(1)
        return tx.update(per_example_grads(params), state, params)

    params = dp_params()
    for lr, clip, seed in ((0.1, 1.0, 0), (0.2, 3.0, 1), (0.05, 0.5, 2)):
        tx = dpsgd(lr, clip, 1.0, seed, momentum=0.9)
        jitted = step(tx, params, tx.init(params))
    assert len(traces) == 1
    eager = tx.update(per_example_grads(params), tx.init(params), params)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager), strict=True):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            np.testing.assert_array_equal(jax.random.key_data(a), jax.random.key_data(b))
        else:
            np.testing.assert_allclose(a, b, rtol=2.4e-7, atol=0)  # 2 ulps (measured: 1)


def test_vmap_over_keys_gives_independent_noise():
    grads = per_example_grads(dp_params())

    def update(key):
        tx = optim.chain(differentially_private_aggregate(1.0, 1.0, key=key))
        return tx.update(grads, tx.init(None))[0]["b"]

    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.vmap(update)(keys)
    for i in range(3):
        np.testing.assert_array_equal(batched[i], update(keys[i]))
    assert not np.array_equal(batched[0], batched[1])


def test_signatures_match_optax():
    import inspect

    for ours, theirs in (
        (dpsgd, optax.contrib.dpsgd),
        (differentially_private_aggregate, optax.contrib.differentially_private_aggregate),
    ):
        p_ours = inspect.signature(ours).parameters
        p_theirs = inspect.signature(theirs).parameters
        assert list(p_ours) == list(p_theirs)
        for name, param in p_theirs.items():
            assert p_ours[name].kind == param.kind and p_ours[name].default == param.default
    assert DifferentiallyPrivateAggregateState._fields == (
        optax.contrib.DifferentiallyPrivateAggregateState._fields
    )


BAD_ARGUMENTS = [
    (lambda: dpsgd(-0.1, 1.0, 1.0, 0), ValueError, "learning_rate"),
    (lambda: dpsgd(0.1, -1.0, 1.0, 0), ValueError, "l2_norm_clip"),
    (lambda: dpsgd(0.1, float("nan"), 1.0, 0), ValueError, "l2_norm_clip"),
    (lambda: dpsgd(0.1, 1.0, -1.0, 0), ValueError, "noise_multiplier"),
    (lambda: dpsgd(0.1, 1.0, "1", 0), TypeError, "noise_multiplier"),
    (lambda: dpsgd(0.1, float("inf"), 1.0, 0), ValueError, "l2_norm_clip \\* noise_multiplier"),
    (lambda: dpsgd(0.1, 1.0, 1.0, 1.5), TypeError, "seed"),
    (lambda: dpsgd(0.1, 1.0, 1.0, None), TypeError, "seed"),
    (lambda: dpsgd(0.1, 1.0, 1.0, 0, momentum=-0.5), ValueError, "momentum"),
    (lambda: dpsgd(0.1, 1.0, 1.0, 0, momentum=0.9, nesterov="yes"), TypeError, "nesterov"),
    (lambda: dpsgd(0.1, 1.0, 1.0, 0, nesterov=True), ValueError, "nesterov"),
    (lambda: differentially_private_aggregate(1.0, 1.0, key="k"), TypeError, "key"),
    (lambda: differentially_private_aggregate(1.0, 1.0, key=1, seed=2), ValueError, "seed"),
]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(("build", "error", "match"), BAD_ARGUMENTS)
def test_bad_arguments_raise_naming_them(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize(
    ("grads", "match"),
    [
        (
            {"w": jnp.ones((4, 2)), "b": jnp.ones((3,))},
            r"differentially_private_aggregate.*\['b'\]",
        ),
        ({"w": jnp.ones((4, 2)), "s": jnp.ones(())}, r"differentially_private_aggregate.*\['s'\]"),
    ],
    ids=["batch_sizes_differ", "no_batch_axis"],
)
def test_gradients_without_a_common_batch_axis_name_the_leaf(grads, match):
    tx = dpsgd(0.1, 1.0, 1.0, 0)
    with pytest.raises(ValueError, match=match):
        tx.update(grads, tx.init(None))


def test_nothing_to_aggregate_passes_through():
    """An empty tree, or one of None leaves only (optax: an IndexError)."""
    tx = dpsgd(0.1, 1.0, 1.0, 0, momentum=0.9)
    for grads in ({}, {"w": None}):
        updates, _ = tx.update(grads, tx.init(grads))
        assert updates == grads


def test_integer_gradients_rejected():
    tx = differentially_private_aggregate(1.0, 1.0, key=0)
    with pytest.raises(TypeError, match=r"grads\['i'\]"):
        tx.update({"i": jnp.ones((2, 3), jnp.int32)}, tx.init(None))
