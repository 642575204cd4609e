"""scale_gradient (optim/transforms/_scaling.py) against optax.

Trajectory parity follows tests/test_optax_parity.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import FLOAT32_BOUND, relative_deviation

import optim

OURS = optim


def _loss_through(scale_gradient, scale):
    def loss(params):
        scaled = scale_gradient(params, scale)
        return sum(jnp.sum(jnp.sin(x) * x) for x in jax.tree.leaves(scaled))

    return loss


@pytest.mark.parametrize("scale", [0.5, -2.0, 0.0, 1.0])
def test_scale_gradient_against_optax(params, scale):
    ours = jax.grad(_loss_through(OURS.scale_gradient, scale))(params)
    theirs = jax.grad(_loss_through(optax.scale_gradient, scale))(params)
    assert relative_deviation(ours, theirs) < FLOAT32_BOUND
    # The forward pass is the identity.
    assert OURS.scale_gradient(params, scale)["scale"] == params["scale"]


def test_scale_gradient_traced_scale_and_passthrough(params):
    """A traced scale (vmap, jit) works; non-float leaves pass through; dtype is kept."""
    scales = jnp.array([0.5, -2.0, 0.0])
    batched = jax.jit(jax.vmap(lambda s: jax.grad(_loss_through(OURS.scale_gradient, s))(params)))(
        scales
    )
    unscaled = jax.grad(_loss_through(OURS.scale_gradient, 1.0))(params)
    for i, s in enumerate(scales):
        expected = jax.tree.map(lambda g, s=s: g * s, unscaled)
        assert relative_deviation(jax.tree.map(lambda x, i=i: x[i], batched), expected) < 1e-6
    tree = {"w": jnp.ones(2, jnp.bfloat16), "n": 3, "f": None, "i": jnp.arange(2)}
    out = OURS.scale_gradient(tree, 0.5)
    assert out["n"] == 3 and out["f"] is None and out["i"] is tree["i"]
    grad = jax.grad(lambda w: jnp.sum(OURS.scale_gradient({"w": w}, 0.5)["w"]))(tree["w"])
    assert grad.dtype == jnp.bfloat16 and grad.tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match=r"scale must be finite"):
        OURS.scale_gradient(tree, float("nan"))
