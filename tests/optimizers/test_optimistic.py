"""Optimistic gradient descent and Adam (optim/optimizers/_optimistic.py).

The comparisons of tests/test_optax_parity.py (see its docstring), over 200 float32 steps of
``convex_loss``: ours against optax, both given the same Python-float hyperparameters; bound
1e-6 relative (the arithmetic is the same, XLA's fusion choices may move last bits);
``optimistic_adam`` runs 100 steps given the same float32 hyperparameters (bound 2e-6).
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import optax
import pytest
from conftest import FLOAT32_BOUND, PYTHON_FLOAT_BOUND, relative_deviation, trajectory

import optim

OURS = optim


def test_optimistic_adam_v2_is_optax_deprecated_optimistic_adam():
    """The docstring's translation of optax's deprecated optimistic_adam holds."""
    ours = trajectory(OURS.optimistic_adam_v2(1.0, alpha=0.01, beta=0.5), optim.apply_updates)
    with pytest.warns(DeprecationWarning):
        theirs_tx = optax.optimistic_adam(0.01, 0.5, 0.9, 0.999)
    theirs = trajectory(theirs_tx, optax.apply_updates)
    assert relative_deviation(ours, theirs) < PYTHON_FLOAT_BOUND


def _f32(x):
    return jnp.asarray(x, jnp.float32)


def test_optimistic_adam_trajectory_and_deprecation():
    with pytest.warns(DeprecationWarning, match="optimistic_adam_v2"):
        ours = optim.optimistic_adam(0.01, 0.5, 0.8, 0.99, nesterov=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = optax.optimistic_adam(_f32(0.01), _f32(0.5), _f32(0.8), _f32(0.99), nesterov=False)
        default = optim.optimistic_adam(0.01)
    a = trajectory(ours, optim.apply_updates)
    assert relative_deviation(a, trajectory(theirs, optax.apply_updates)) < FLOAT32_BOUND
    # It is optimistic_adam_v2 with the optimism as beta (None: the learning rate).
    v2 = optim.optimistic_adam_v2(1.0, alpha=0.01, beta=0.01)
    assert (
        relative_deviation(
            trajectory(default, optim.apply_updates), trajectory(v2, optim.apply_updates)
        )
        == 0.0
    )


def test_optimistic_adam_errors():
    with pytest.raises(ValueError, match="learning_rate of optimistic_adam must be a number"):
        optim.optimistic_adam(optim.constant_schedule(0.1))
    with pytest.raises(ValueError, match=r"learning_rate must be in \[0.0, inf\)"):
        optim.optimistic_adam(-0.1)
    with pytest.raises(ValueError, match="optimism must be finite"):
        optim.optimistic_adam(0.1, float("nan"))
