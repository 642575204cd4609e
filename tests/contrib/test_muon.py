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


def test_dimension_numbers_for_a_callable_model():
    """A model that is callable (models.MLP, an equinox module) is a tree, not a
    function: dimension numbers shaped like it, given directly or returned by a function of
    the params, pick the same matrices."""
    import jax.numpy as jnp

    import models

    model = models.MLP.init(jax.random.key(0), [16, 16, 4])
    assert callable(model)

    def dims_of(params):
        is_matrix = lambda x: x.ndim == 2 and min(x.shape) > 4
        return jax.tree.map(
            lambda x: optim.contrib.MuonDimensionNumbers(0, 1) if is_matrix(x) else None, params
        )

    grads = jax.tree.map(jnp.ones_like, model)
    updates = []
    for dims in (dims_of, dims_of(model)):
        tx = optim.contrib.muon(0.01, muon_weight_dimension_numbers=dims)
        updates.append(tx.update(grads, tx.init(model), model)[0])
    for by_function, by_tree in zip(*map(jax.tree.leaves, updates), strict=True):
        np.testing.assert_array_equal(by_function, by_tree)
    plain = optim.contrib.muon(0.01)  # no dimension numbers: every leaf gets AdamW
    adamw_only = jax.tree.leaves(plain.update(grads, plain.init(model), model)[0])
    differs = [
        not np.allclose(a, b) for a, b in zip(jax.tree.leaves(updates[0]), adamw_only, strict=True)
    ]
    assert any(differs)  # the matrices took Muon's orthogonalised step
