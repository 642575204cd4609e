"""noisy_sgd's gradient noise (optim/optimizers/_sgd.py): ours draws the same random numbers as
optax, bit for bit (the same key splits, one sample key per leaf in tree order, the same sampler
and dtype), so the noisy trajectories meet the same deterministic bounds.

The comparisons of tests/test_optax_parity.py (see its docstring), over 200 float32 steps of
``convex_loss``: ours against optax, both given the same Python-float hyperparameters; bound
1e-6 relative (the arithmetic is the same, XLA's fusion choices may move last bits).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from conftest import convex_loss, relative_deviation

import optim

OURS = optim


def test_noise_key_is_a_leaf_compiled_once(params):
    """Another key or learning rate reuses the compiled step; another key changes the noise."""
    traces = []

    @jax.jit
    def step(tx, p):
        traces.append(None)
        u, _ = tx.update(jax.grad(convex_loss)(p), tx.init(p), p)
        return u

    a = step(OURS.noisy_sgd(0.01, key=0), params)
    b = step(OURS.noisy_sgd(0.02, key=jax.random.key(1)), params)
    c = step(OURS.noisy_sgd(0.01, key=jax.random.PRNGKey(0)), params)  # legacy key, same noise
    assert len(traces) == 1
    assert relative_deviation(a, b) > 1e-3
    assert relative_deviation(a, c) == 0.0


def test_noise_key_handling():
    with pytest.warns(UserWarning, match="key"):
        default = OURS.add_noise(0.1, 0.5)
    assert (
        jax.random.key_data(default.key).tolist() == jax.random.key_data(jax.random.key(0)).tolist()
    )
    with pytest.warns(DeprecationWarning, match="seed"):
        OURS.add_noise(0.1, 0.5, seed=2)
    with pytest.warns(DeprecationWarning, match="seed"):  # points at the caller, not optim
        seeded = OURS.noisy_sgd(0.1, seed=2)
    assert jax.random.key_data(seeded.transforms[0].key).tolist() == [0, 2]
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="key or seed"):
        OURS.add_noise(0.1, 0.5, key=1, seed=2)
    with pytest.raises(TypeError, match="key"):
        OURS.add_noise(0.1, 0.5, key=1.5)
    with pytest.raises(TypeError, match="key"):
        OURS.add_noise(0.1, 0.5, key=jnp.zeros(3, jnp.uint32))
