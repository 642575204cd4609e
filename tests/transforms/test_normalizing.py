"""normalize_by_update_norm (optim/transforms/_normalizing.py).

Trajectory parity follows tests/test_optax_parity.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from conftest import jitted_update

import optim

OURS = optim


def test_normalize_by_update_norm_zero_updates_stay_zero(params):
    """eps = 0 with all-zero updates: optax divides 0 by 0 (NaN); ours leaves them 0."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    out, _ = jitted_update(OURS.normalize_by_update_norm(1.0, 0.0), zeros, params)
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(out))
