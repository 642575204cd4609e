"""Clipping (optim/transforms/_clipping.py): adaptive, per-example and unit-wise clipping.

Trajectory parity follows tests/test_optax_parity.py.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import (
    FLOAT32_BOUND,
    jitted_update,
    real_and_imaginary,
    relative_deviation,
)

import optim

OURS = optim


def _f32(value: float) -> jax.Array:
    return jnp.asarray(value, jnp.float32)


def test_adaptive_grad_clip_errors(params):
    grads = jax.tree.map(jnp.ones_like, params)
    tx = OURS.adaptive_grad_clip(0.1)
    with pytest.raises(ValueError, match=r"adaptive_grad_clip needs params"):
        tx.update(grads, tx.init(params))
    deep = {"k": jnp.ones((2,) * 6)}
    with pytest.raises(ValueError, match=r"params\['k'\] has shape \(2, 2, 2, 2, 2, 2\).*axis="):
        tx.update(deep, tx.init(deep), deep)
    # With an explicit axis any rank works, as optax.
    out, _ = jitted_update(OURS.adaptive_grad_clip(0.1, axis=(0, 1)), deep, deep)
    theirs, _ = jitted_update(optax.adaptive_grad_clip(0.1, axis=(0, 1)), deep, deep)
    assert relative_deviation(out, theirs) < FLOAT32_BOUND
    with pytest.raises(ValueError, match=r"axis=2 is out of range for params\['blocks'\]\[0\]"):
        jitted_update(OURS.adaptive_grad_clip(0.1, axis=2), grads, params)
    with pytest.raises(ValueError, match=r"grads\['dense'\]\['w'\] has shape \(3, 4\)"):
        jitted_update(
            tx, {**grads, "dense": {"w": jnp.ones((3, 4)), "b": grads["dense"]["b"]}}, params
        )


PER_EXAMPLE = {
    "a": jax.random.normal(jax.random.PRNGKey(1), (8, 3, 2)),
    "b": [jax.random.normal(jax.random.PRNGKey(2), (8,)) * 0.3],
    "c": jax.random.normal(jax.random.PRNGKey(4), (8, 5)) * 2.0,
}


@pytest.mark.parametrize("bound", [0.0, 2.0, 5.0, float("inf")])
def test_per_example_clipping_against_optax(bound):
    for f in (float, _f32):
        ours = OURS.per_example_global_norm_clip(PER_EXAMPLE, f(bound))
        theirs = optax.per_example_global_norm_clip(PER_EXAMPLE, f(bound))
        assert relative_deviation(ours[0], theirs[0]) < FLOAT32_BOUND
        assert int(ours[1]) == int(theirs[1])
        for uniform in (True, False):
            ours = OURS.per_example_layer_norm_clip(PER_EXAMPLE, f(bound), uniform)
            theirs = optax.per_example_layer_norm_clip(PER_EXAMPLE, f(bound), uniform)
            assert relative_deviation(ours[0], theirs[0]) < FLOAT32_BOUND
            assert jax.tree.map(int, ours[1]) == jax.tree.map(int, theirs[1])
    # 5.0 clips 3 of the 8 examples (2.0 all of "a" and none of "b"): the counts inform.
    assert int(OURS.per_example_global_norm_clip(PER_EXAMPLE, 5.0)[1]) == 3


def test_per_example_clipping_jit_vmap_complex_and_passthrough():
    """Jitted (eagerly each complex operation would compile on its own), vmapped over the
    bound, on complex gradients as optax, with ``None`` leaves passed through."""
    with_none = {**PER_EXAMPLE, "n": None}
    clipped, counts = jax.jit(OURS.per_example_layer_norm_clip)(with_none, 1.0)
    assert clipped["n"] is None and counts["n"] is None and clipped["a"].shape == (3, 2)
    global_clip = jax.jit(OURS.per_example_global_norm_clip)
    complex_grads = jax.tree.map(lambda x: x * (1 - 0.5j), PER_EXAMPLE)
    ours = global_clip(complex_grads, 5.0)
    theirs = jax.jit(optax.per_example_global_norm_clip)(complex_grads, 5.0)
    assert (
        relative_deviation(real_and_imaginary(ours[0]), real_and_imaginary(theirs[0]))
        < FLOAT32_BOUND
    )
    assert int(ours[1]) == int(theirs[1]) > 0
    bounds = jnp.array([0.5, 5.0])
    batched = jax.jit(jax.vmap(global_clip, (None, 0)))(PER_EXAMPLE, bounds)
    for i, bound in enumerate(bounds):
        single = global_clip(PER_EXAMPLE, bound)
        assert relative_deviation(jax.tree.map(lambda x, i=i: x[i], batched[0]), single[0]) < 1e-6
        assert int(batched[1][i]) == int(single[1])


@pytest.mark.parametrize(
    "function", [optim.per_example_global_norm_clip, optim.per_example_layer_norm_clip]
)
def test_per_example_clipping_errors(function):
    name = function.__name__
    with pytest.raises(
        ValueError,
        match=rf"{name}: grads\['c'\] has 4 examples on axis 0 but "
        r"grads\['a'\] has 8",
    ):
        function({**PER_EXAMPLE, "c": jnp.ones((4, 5))}, 1.0)
    with pytest.raises(ValueError, match=rf"{name}: grads\['s'\] is a scalar"):
        function({**PER_EXAMPLE, "s": jnp.ones(())}, 1.0)
    with pytest.raises(TypeError, match=r"grads\['a'\] is an array of dtype int32"):
        function({"a": jnp.ones((8, 2), jnp.int32)}, 1.0)
    argument = list(inspect.signature(function).parameters)[1]
    for bad, error in [(-1.0, r"must be in \[0.0, inf\)"), (float("nan"), r"must be finite")]:
        with pytest.raises(ValueError, match=rf"{argument} {error}"):
            function(PER_EXAMPLE, bad)
    with pytest.raises(TypeError, match=r"l2_norm_clip must be a number|global_l2_norm_clip"):
        function(PER_EXAMPLE, "abc")


UNIT_SHAPES = [(), (5,), (1, 5), (4, 3), (2, 3, 4), (2, 2, 3, 4), (2, 2, 2, 3, 4)]


@pytest.mark.parametrize("shape", UNIT_SHAPES, ids=str)
def test_unitwise_norm_matches_optax_bitwise(shape):
    x = jax.random.normal(jax.random.PRNGKey(len(shape)), shape)
    ours = optim.transforms.unitwise_norm(x)
    theirs = optax.transforms.unitwise_norm(x)
    assert ours.shape == x.shape and ours.dtype == theirs.dtype
    assert ours.tobytes() == theirs.tobytes()  # float32: the same sum of squares and sqrt
    if len(shape) >= 2:
        axis = (len(shape) - 1,)
        assert (
            optim.transforms.unitwise_norm(x, axis=axis).tobytes()
            == optax.transforms.unitwise_norm(x, axis=axis).tobytes()
        )


def test_unitwise_norm_dtypes_and_errors():
    z = jnp.array([3 + 4j, 0j], jnp.complex64)
    assert optim.transforms.unitwise_norm(z).dtype == jnp.float32
    np.testing.assert_array_equal(optim.transforms.unitwise_norm(z), [5.0, 5.0])
    half = optim.transforms.unitwise_norm(jnp.full((2, 2), 300.0, jnp.bfloat16))
    assert half.dtype == jnp.bfloat16 and float(half[0, 0]) == pytest.approx(424.26, rel=4e-3)
    with pytest.raises(ValueError, match=r"x has shape \(2, 2, 2, 2, 2, 2\); without axis"):
        optim.transforms.unitwise_norm(jnp.ones((2,) * 6))
    with pytest.raises(ValueError, match=r"axis=3 is out of range for x of shape \(2, 2\)"):
        optim.transforms.unitwise_norm(jnp.ones((2, 2)), axis=3)
    with pytest.raises(TypeError, match="axis must be None, an int or a tuple of ints"):
        optim.transforms.unitwise_norm(jnp.ones(2), axis=0.5)


def test_unitwise_clip_matches_optax_bitwise():
    grad = jax.random.normal(jax.random.PRNGKey(0), (4, 3)) * 3.0
    g_norm = optim.transforms.unitwise_norm(grad)
    max_norm = jnp.full_like(grad, 4.0)
    ours = optim.transforms.unitwise_clip(g_norm, max_norm, grad)
    theirs = optax.transforms.unitwise_clip(g_norm, max_norm, grad)
    assert ours.tobytes() == theirs.tobytes()
    assert bool(jnp.any(ours != grad))  # some units clipped
    unclipped = optim.transforms.unitwise_clip(g_norm, max_norm * 100, grad, div_eps=1e-3)
    assert unclipped.tobytes() == grad.tobytes()
    with pytest.raises(ValueError, match=r"max_norm has shape \(3,\) but g_norm has shape"):
        optim.transforms.unitwise_clip(g_norm, jnp.ones(3), grad)
    with pytest.raises(ValueError, match=r"grad has shape \(3, 4\)"):
        optim.transforms.unitwise_clip(g_norm, max_norm, grad.T)
