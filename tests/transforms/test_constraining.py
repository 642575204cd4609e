"""zero_nans and keep_params_nonnegative (optim/transforms/_constraining.py).

Trajectory parity follows tests/test_optax_parity.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import jitted_update

import optim

OURS = optim


def test_zero_nans_against_optax(params):
    grads = jax.tree.map(jnp.ones_like, params)
    grads["dense"]["w"] = grads["dense"]["w"].at[1, 2].set(jnp.nan)
    grads["scale"] = jnp.array(jnp.inf)
    ours, ours_state = jitted_update(OURS.zero_nans(), grads, params)
    theirs, their_state = jitted_update(optax.zero_nans(), grads, params)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), ours, theirs))
    assert ours_state.found_nan == their_state.found_nan
    assert bool(ours_state.found_nan["dense"]["w"]) and not bool(ours_state.found_nan["scale"])


def test_keep_params_nonnegative_rejects_complex_and_needs_params(params):
    tx = OURS.keep_params_nonnegative()
    complex_params = {**params, "scale": jnp.array(1.0 + 1.0j)}
    grads = jax.tree.map(jnp.ones_like, complex_params)
    with pytest.raises(TypeError, match=r"params\['scale'\] has dtype complex"):
        tx.update(grads, tx.init(complex_params), complex_params)
    with pytest.raises(ValueError, match=r"keep_params_nonnegative needs params"):
        tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params))
