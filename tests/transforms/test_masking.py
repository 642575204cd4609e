"""masked (optim/transforms/_masking.py).

Parity follows tests/test_optax_parity.py: 200 float32 steps of ``convex_loss``, ours against
optax, both given the same Python-float hyperparameters (bound 1e-6: the same arithmetic, only
XLA's fusion may differ).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import models
import optim


def _is_matrix(tree):
    return jax.tree.map(lambda x: getattr(x, "ndim", 0) > 1, tree)


MODEL_WITH_FUNCTION_LEAF = {"w": jnp.ones((2, 2)), "b": jnp.ones(2), "act": jnp.tanh}


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.adamw(1.0, weight_decay=0.5, mask=_is_matrix),
        lambda: optim.partition(
            {"decay": optim.add_decayed_weights(0.5), "keep": optim.set_to_zero()},
            lambda p: jax.tree.map(lambda x: "decay" if getattr(x, "ndim", 0) > 1 else "keep", p),
        ),
        lambda: optim.chain(optim.freeze(lambda p: _is_matrix(p)), optim.sgd(1.0)),
    ],
    ids=["adamw-mask-function", "partition-label-function", "freeze-function"],
)
def test_mask_functions_on_params_with_function_leaves(make):
    """Equinox-style params hold functions, whose gradients are None: a mask (or label)
    function, called on the updates, has no entry there, and the params are hidden with the
    mask extended by False at those leaves (the function gets no update)."""
    grads = {"w": jnp.ones((2, 2)), "b": jnp.ones(2), "act": None}
    tx = make()
    updates, _ = tx.update(grads, tx.init(MODEL_WITH_FUNCTION_LEAF), MODEL_WITH_FUNCTION_LEAF)
    assert updates["act"] is None
    assert jax.tree.structure(updates["w"]) == jax.tree.structure(grads["w"])


@pytest.mark.parametrize(
    "make",
    [
        lambda mask, labels: optim.adamw(1e-3, weight_decay=0.1, mask=mask),
        lambda mask, labels: optim.partition({"a": optim.adam(1e-3), "s": optim.sgd(1e-3)}, labels),
        lambda mask, labels: optim.freeze(mask),
    ],
    ids=["adamw-mask-tree", "partition-label-tree", "freeze-tree"],
)
def test_a_mask_tree_of_a_callable_model_is_a_tree_not_a_function(make):
    """``jax.tree.map`` over a callable pytree model (models.MLP, an equinox module) gives a
    callable tree of bools; it is a mask tree, as in optax (a function's leaves are callable)."""
    model = models.MLP.init(jax.random.PRNGKey(0), [3, 4, 2])
    mask = jax.tree.map(lambda x: x.ndim > 1, model)
    labels = jax.tree.map(lambda x: "a" if x.ndim > 1 else "s", model)
    tx = make(mask, labels)
    grads = jax.tree.map(jnp.ones_like, model)
    updates, _ = tx.update(grads, tx.init(model), model)
    assert jax.tree.structure(updates) == jax.tree.structure(model)
