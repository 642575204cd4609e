"""optim.losses' margin losses (hinge, perceptron, sparsemax) against optax's, under jit.

Bitwise, values and gradients (but for the order of one sum in the multiclass sparsemax
gradient): the same operations, including sparsemax's custom JVP.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from losses_parity import assert_matches, normal

from optim import losses

_rng = np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(7,), (3, 5)])
@pytest.mark.parametrize("name", ["hinge_loss", "perceptron_loss"])
def test_binary_margin_losses_match_optax(name, shape):
    scores = normal(shape, 1, 2.0)
    targets = jnp.asarray(2 * _rng.integers(0, 2, shape) - 1, jnp.float32)
    ours, theirs = getattr(losses, name), getattr(optax.losses, name)
    assert_matches(ours, theirs, scores, targets)


@pytest.mark.parametrize("shape", [(7,), (3, 5)])
def test_sparsemax_loss_matches_optax(shape):
    # Scores on both sides of -1 and 1, where sparse_plus changes pieces.
    logits = normal(shape, 2, 2.0)
    labels = jnp.asarray(_rng.integers(0, 2, shape), jnp.int32)
    assert_matches(losses.sparsemax_loss, optax.losses.sparsemax_loss, logits, labels)


@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 5)])
@pytest.mark.parametrize("name", ["multiclass_hinge_loss", "multiclass_perceptron_loss"])
def test_multiclass_margin_losses_match_optax(name, shape):
    scores = normal(shape, 3, 2.0)
    labels = jnp.asarray(_rng.integers(0, shape[-1], shape[:-1]), jnp.int32)
    ours, theirs = getattr(losses, name), getattr(optax.losses, name)
    assert_matches(ours, theirs, scores, labels)


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_multiclass_sparsemax_loss_matches_optax(scale):
    # Small scores spread sparsemax over many classes, large ones put it on one.
    scores = normal((8, 6), 4, scale)
    labels = jnp.asarray(_rng.integers(0, 6, (8,)), jnp.int32)
    ours, theirs = losses.multiclass_sparsemax_loss, optax.losses.multiclass_sparsemax_loss
    # Values are bitwise equal. In the gradient, the two terms of sparsemax's transposed
    # Jacobian and the direct term p are summed in another order (optax's projection goes
    # through ravel_pytree and a division by scale=1, which groups the first two): a few ulps.
    assert_matches(ours, theirs, scores, labels, grad_rtol=1e-6, grad_atol=1e-7)


def test_multiclass_sparsemax_loss_gradient_is_sparsemax_minus_one_hot():
    scores = normal((5, 4), 5)
    labels = jnp.array([0, 1, 2, 3, 0])
    grads = jax.grad(lambda s: losses.multiclass_sparsemax_loss(s, labels).sum())(scores)
    probs = optax.projections.projection_simplex(scores[0])
    np.testing.assert_allclose(grads[0], probs - jax.nn.one_hot(0, 4), atol=1e-6)  # rounding
    np.testing.assert_allclose(grads.sum(axis=-1), 0.0, atol=1e-6)


def test_perceptron_loss_shape_mismatch_raises_value_error():
    with pytest.raises(ValueError, match="`predictor_outputs` and `targets` must have the same"):
        losses.perceptron_loss(jnp.ones((3, 1)), jnp.ones(3))
