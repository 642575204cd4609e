"""optim.numerics (safe_norm, safe_root_mean_squares, safe_increment) against optax.

safe_norm computes Euclidean norms as s * ||x / s|| with s a power of two: multiplying by a
power of two is exact, so for real arrays the values are optax's bit for bit (under jit and
outside it) wherever the squares neither overflow nor underflow; complex arrays are within an
ulp (XLA rounds the fused complex squares differently by a last bit). Beyond float32's range
of squares the values are the true norm where optax gives inf or 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from optim import numerics

RNG = np.random.default_rng(0)

# (shape, ord, axis): every form jnp.linalg.norm takes, Euclidean and not.
NORMS = [
    ((7,), None, None),
    ((7,), 2, None),
    ((7,), 1, None),
    ((7,), np.inf, None),
    ((4, 3), None, None),
    ((4, 3), "fro", None),
    ((4, 3), "fro", (0, 1)),
    ((4, 3), None, 1),
    ((4, 3), 2, -1),
    ((4, 3), 2, None),  # spectral norm: not Euclidean, jnp.linalg.norm's
    ((4, 3), "nuc", None),
    ((4, 3), 1, None),
    ((2, 3, 4), None, None),
    ((2, 3, 4), None, -1),
    ((2, 3, 4), None, (1, 2)),
    ((33, 5), None, 0),
]


def _draw(shape, dtype=np.float32):
    return jnp.asarray(RNG.normal(size=shape) * 3, dtype)


INPUTS = [_draw(shape) for shape, _, _ in NORMS]


def _all_norms(safe_norm, keepdims):
    """Every case of NORMS at once (one compilation under jit)."""
    return lambda xs: [
        safe_norm(x, 0.1, ord, axis, keepdims) for x, (_, ord, axis) in zip(xs, NORMS, strict=True)
    ]


@pytest.mark.parametrize("keepdims", [False, True])
def test_safe_norm_is_optax_bit_for_bit(keepdims):
    ours, theirs = _all_norms(optim.safe_norm, keepdims), _all_norms(optax.safe_norm, keepdims)
    for case, a, b in zip(NORMS, jax.jit(ours)(INPUTS), jax.jit(theirs)(INPUTS), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, case
        np.testing.assert_array_equal(a, b, err_msg=str(case))


def test_safe_norm_is_optax_bit_for_bit_outside_jit():
    """Op by op (jnp.linalg.norm is itself jitted, ours calls it on the scaled array)."""
    for i in (0, 4, 7, 13, 15):  # a vector, a matrix, per-row norms, 3-d, per-column
        (_, ord, axis), x = NORMS[i], INPUTS[i]
        np.testing.assert_array_equal(
            optim.safe_norm(x, 0.1, ord, axis), optax.safe_norm(x, 0.1, ord, axis)
        )


def test_safe_norm_complex_within_an_ulp():
    for shape, axis in [((7,), None), ((4, 3), None), ((4, 3), 1)]:
        x = (_draw(shape) + 1j * _draw(shape)).astype(jnp.complex64)
        ours, theirs = optim.safe_norm(x, 0.1, axis=axis), optax.safe_norm(x, 0.1, axis=axis)
        assert ours.dtype == theirs.dtype == jnp.float32
        np.testing.assert_allclose(ours, theirs, rtol=1.2e-7, atol=0)


def test_safe_norm_floor_and_its_gradient():
    x = jnp.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]])
    np.testing.assert_array_equal(optim.safe_norm(x, 0.5, axis=1), [5.0, 0.5, 0.5])
    np.testing.assert_array_equal(
        optim.safe_norm(x, 0.5, axis=1, keepdims=True), [[5.0], [0.5], [0.5]]
    )
    grad = jax.grad(lambda v: jnp.sum(optim.safe_norm(v, 0.5, axis=1)))(x)
    np.testing.assert_allclose(grad, [[0.6, 0.8], [0.0, 0.0], [0.0, 0.0]], rtol=1e-7)
    assert jnp.all(jnp.isfinite(jax.grad(optim.safe_norm)(jnp.zeros(3), 0.0)))


def test_safe_norm_gradient_matches_optax():
    def total(safe_norm):
        return lambda xs: sum(jnp.sum(y) for y in _all_norms(safe_norm, False)(xs))

    ours, theirs = (
        jax.jit(jax.grad(total(optim.safe_norm)))(INPUTS),
        jax.jit(jax.grad(total(optax.safe_norm)))(INPUTS),
    )
    # The same products scaled by powers of two: equal up to XLA's fusion of the backward pass.
    for case, a, b in zip(NORMS, ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7, err_msg=str(case))


@pytest.mark.parametrize("magnitude", [1e30, 1e-30])
def test_safe_norm_without_overflow_or_underflow(magnitude):
    """Squares of 1e30 overflow float32 (optax: inf), of 1e-30 underflow (optax: 0).

    (Subnormal entries, below 1.2e-38, may be flushed to 0 by XLA on CPU: not tested.)"""
    values = np.array([3.0, -4.0, 1.0, 0.0], np.float64) * magnitude
    x = jnp.asarray(values, jnp.float32)
    exact = np.linalg.norm(np.asarray(x, np.float64))
    ours = optim.safe_norm(x, 0.0)
    np.testing.assert_allclose(ours, exact, rtol=1e-6)
    assert np.isfinite(float(jax.jit(lambda v: optim.safe_norm(v, 0.0))(x)))
    if magnitude == 1e30:
        assert np.isinf(optax.safe_norm(x, 0.0))  # what the scaling avoids


def test_safe_norm_non_finite_entries_propagate():
    assert np.isinf(optim.safe_norm(jnp.array([1.0, np.inf]), 0.0))
    assert np.isnan(optim.safe_norm(jnp.array([1.0, np.nan]), 0.0))


def test_safe_norm_low_precision_and_integer_inputs():
    x = _draw((5, 3), jnp.bfloat16)
    ours, theirs = optim.safe_norm(x, 0.1), optax.safe_norm(x, 0.1)
    assert ours.dtype == theirs.dtype == jnp.bfloat16
    np.testing.assert_array_equal(ours, theirs)
    ints = jnp.array([3, 4])
    assert optim.safe_norm(ints, 0.1) == optax.safe_norm(ints, 0.1) == 5.0


def test_safe_norm_bad_ord_is_jnp_error():
    with pytest.raises(ValueError, match="Invalid order"):
        optim.safe_norm(jnp.ones((2, 2)), 0.1, ord="bogus")


def test_safe_root_mean_squares_is_optax_bit_for_bit():
    for shape in [(7,), (4, 3), (2, 3, 4)]:
        x = _draw(shape)
        for floor in (0.1, 1e3):
            np.testing.assert_array_equal(
                optim.safe_root_mean_squares(x, floor), optax.safe_root_mean_squares(x, floor)
            )
    grad = jax.grad(optim.safe_root_mean_squares)(jnp.zeros(4), 1e-3)
    np.testing.assert_array_equal(grad, jnp.zeros(4))


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.int8, jnp.uint8, jnp.float32, jnp.bfloat16])
def test_safe_increment_saturates(dtype):
    largest = jnp.iinfo(dtype).max if jnp.issubdtype(dtype, jnp.integer) else jnp.finfo(dtype).max
    for count in (jnp.asarray(0, dtype), jnp.asarray(largest, dtype)):
        ours, theirs = optim.safe_increment(count), optax.safe_increment(count)
        assert ours.dtype == theirs.dtype == dtype
        np.testing.assert_array_equal(ours, theirs)
    assert optim.safe_increment(jnp.asarray(largest, dtype)) == jnp.asarray(largest, dtype)
    assert jax.jit(optim.safe_increment)(jnp.asarray(5, dtype)) == 6


def test_safe_increment_is_the_counter_of_every_optimizer():
    """One implementation: optim's step counters and the public name."""
    from optim import _tree

    assert optim.safe_int32_increment is optim.safe_increment is _tree.safe_increment
    state = optim.adam(1e-3).init({"w": jnp.zeros(2)})
    state = (state[0]._replace(count=jnp.asarray(2**31 - 1, jnp.int32)), *state[1:])
    _, state = optim.adam(1e-3).update({"w": jnp.ones(2)}, state)
    assert state[0].count == 2**31 - 1


@pytest.mark.parametrize("count", [jnp.asarray(True), jnp.asarray(1 + 1j)])
def test_safe_increment_rejects_other_dtypes(count):
    with pytest.raises(ValueError, match=r"count must be an integer or floating counter"):
        optim.safe_increment(count)


def test_public_names():
    assert set(numerics.__all__) == {
        "safe_increment",
        "safe_int32_increment",
        "safe_norm",
        "safe_root_mean_squares",
    }
    for name in numerics.__all__:
        assert getattr(optim, name) is getattr(numerics, name)
