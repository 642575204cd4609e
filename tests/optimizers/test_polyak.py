"""polyak_sgd (optim/optimizers/_polyak.py) against optax, and its need of the loss value.

The comparisons of tests/test_optax_parity.py (see its docstring), over 200 float32 steps of
``convex_loss``: ours against optax, both given the same Python-float hyperparameters; bound
1e-6 relative (the arithmetic is the same, XLA's fusion choices may move last bits).
"""

from __future__ import annotations

import jax.numpy as jnp
import pytest

import optim

OURS = optim


def test_polyak_needs_value(params):
    tx = OURS.polyak_sgd()
    state = tx.init(params)
    grads = params  # any tree of the right structure: the checks come first
    with pytest.raises(TypeError, match="value=loss"):
        tx.update(grads, state, params)
    with pytest.raises(ValueError, match="value must be the scalar loss"):
        tx.update(grads, state, params, value=jnp.ones(2))
