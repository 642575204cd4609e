"""optim.multi_normal against optax.multi_normal: the same draws and log densities, bit for
bit (the same jax.random and jax.scipy calls on the same values)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim

LOC = jnp.array([[0.5, -1.0, 2.0], [0.0, 1.0, 3.0]])
LOG_SCALE = jnp.array([0.1, -0.3, 0.7])  # broadcast against LOC


def test_sample_and_log_prob_are_optax_bit_for_bit():
    ours, theirs = optim.multi_normal(LOC, LOG_SCALE), optax.multi_normal(LOC, LOG_SCALE)
    key = jax.random.PRNGKey(3)
    for shape in [(), (4,), (2, 5)]:
        a, b = ours.sample(shape, key), theirs.sample(shape, key)
        assert a.shape == b.shape == (*shape, 2, 3)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ours.log_prob(a), theirs.log_prob(b))
    assert ours.log_prob(LOC).shape == ()
    np.testing.assert_array_equal(ours.log_scale, theirs.log_scale)
    for x, y in zip(ours.params, theirs.params, strict=True):
        np.testing.assert_array_equal(x, y)


def test_log_prob_is_the_gaussian_density():
    dist = optim.multi_normal(jnp.zeros(2), jnp.log(jnp.array([1.0, 2.0])))
    x = jnp.array([1.0, -1.0])
    expected = -0.5 * (1.0 + 0.25) - np.log(2 * np.pi) - np.log(2.0)
    np.testing.assert_allclose(dist.log_prob(x), expected, rtol=1e-6)


def test_a_pytree_through_jit_and_grad():
    """Ours is a pytree: jitted functions take it, and its parameters get gradients (the
    score-function estimators optimize loc and log_scale)."""
    dist = optim.multi_normal(LOC, LOG_SCALE)
    draws = jax.jit(lambda d, k: d.sample((3,), k))(dist, jax.random.PRNGKey(0))
    # Under jit XLA fuses z * scale + loc into a multiply-add: within an ulp of op by op.
    np.testing.assert_allclose(draws, dist.sample((3,), jax.random.PRNGKey(0)), rtol=2.4e-7)
    grads = jax.grad(lambda d: d.log_prob(LOC + 1.0))(dist)
    assert isinstance(grads, optim.distributions.MultiNormalDiagFromLogScale)
    np.testing.assert_allclose(grads.loc, jnp.exp(-2 * LOG_SCALE) * jnp.ones_like(LOC), rtol=1e-6)


def test_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"loc and log_scale must have shapes that broadcast"):
        optim.multi_normal(jnp.zeros(3), jnp.zeros(2))
