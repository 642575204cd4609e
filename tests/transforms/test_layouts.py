"""flatten (optim/transforms/_layouts.py).

Parity follows tests/test_optax_parity.py: 200 float32 steps of ``convex_loss``, ours against
optax, both given the same Python-float hyperparameters (bound 1e-6: the same arithmetic, only
XLA's fusion may differ).
"""

from __future__ import annotations

import jax.numpy as jnp

import optim

OURS = optim


def test_flatten_keeps_dtypes_and_passes_non_arrays():
    params = {"a": jnp.ones((2, 2), jnp.bfloat16), "b": jnp.ones(3), "n": 3, "f": None}
    tx = OURS.flatten(OURS.adam(0.1))
    state = tx.init(params)
    assert state[0].mu.shape == (7,)
    grads = {"a": jnp.ones((2, 2), jnp.bfloat16), "b": jnp.ones(3), "n": None, "f": None}
    updates, _ = tx.update(grads, state, params)
    assert updates["a"].dtype == jnp.bfloat16 and updates["a"].shape == (2, 2)
    assert updates["n"] is None and updates["f"] is None
    new = optim.apply_updates(params, updates)
    assert new["n"] == 3 and float(new["b"][0]) < 1.0
