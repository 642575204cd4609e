"""freeze and selective_transform (optim/transforms/_freezing.py).

Parity follows tests/test_optax_parity.py: 200 float32 steps of ``convex_loss``, ours against
optax, both given the same Python-float hyperparameters (bound 1e-6: the same arithmetic, only
XLA's fusion may differ).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from conftest import convex_loss, tree_bytes

import optim

OURS = optim


def test_freeze_accepts_a_single_bool(params):
    grads = jax.grad(convex_loss)(params)
    for mask, frozen in [(True, True), (jnp.array(False), False), (np.bool_(True), True)]:
        tx = OURS.freeze(mask)
        updates, _ = tx.update(grads, tx.init(params), params)
        expected = jax.tree.map(jnp.zeros_like, grads) if frozen else grads
        assert tree_bytes(updates) == tree_bytes(expected)
