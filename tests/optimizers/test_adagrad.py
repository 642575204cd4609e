"""adadelta (optim/optimizers/_adagrad.py): complex parameters and the default learning rate."""

from __future__ import annotations

import jax.numpy as jnp
import optax
import pytest
from conftest import PYTHON_FLOAT_BOUND, convex_loss, nested_params, relative_deviation, trajectory

import optim

STEPS = 200


def test_adadelta_rejects_complex_parameters():
    """optax's Adadelta squares complex gradients (g**2, not |g|^2) and does not converge."""
    with pytest.raises(TypeError, match=r"scale_by_adadelta does not support complex.*\['w'\]"):
        optim.adadelta(1.0).init({"w": jnp.ones(2, jnp.complex64)})


def test_adadelta_without_learning_rate_descends():
    """Deliberate difference: optax.adadelta(None) skips the sign flip and climbs the loss."""
    ours = trajectory(optim.adadelta(None), optim.apply_updates, STEPS)
    unit = trajectory(optax.adadelta(1.0, 0.9, 1e-6), optax.apply_updates, STEPS)
    assert relative_deviation(ours, unit) < PYTHON_FLOAT_BOUND
    start = nested_params()
    assert convex_loss(ours) < convex_loss(start)
    # optax's (if this fails, optax has fixed it and the difference can go).
    assert convex_loss(trajectory(optax.adadelta(), optax.apply_updates, 10)) > convex_loss(start)
