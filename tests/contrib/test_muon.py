"""muon (optim/contrib/_muon.py): Newton-Schulz orthogonalisation.

Parity as in tests/test_optax_parity.py: 200 float32 steps, ours against optax.
"""

from __future__ import annotations

import jax
import numpy as np

import optim
import optim.contrib


def test_newton_schulz_orthogonalises():
    """Jordan's quintic sends singular values that are not tiny next to the Frobenius norm
    into about [0.7, 1.2] (it does not converge to 1, by design), keeping the singular vectors."""
    g = jax.random.normal(jax.random.PRNGKey(3), (16, 8))
    tx = optim.contrib.scale_by_muon(nesterov=False)
    u, _ = tx.update({"w": g}, tx.init({"w": g}))
    s = np.linalg.svd(np.asarray(u["w"]), compute_uv=False)
    assert 0.65 < s.min() and s.max() < 1.25, s
    left, _, right = np.linalg.svd(np.asarray(g), full_matrices=False)
    core = left.T @ np.asarray(u["w"]) @ right.T  # diagonal: same singular vectors as g
    assert np.allclose(core, np.diag(np.diag(core)), atol=1e-4)
