"""optim.losses' NT-Xent and triplet margin losses against optax's, under jit."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from losses_parity import assert_matches, normal

from optim import losses


@pytest.mark.parametrize(
    ("labels", "temperature"),
    [([0, 0, 1, 1, 2, 2], 0.07), ([0, 1, 0, 1, 0, 1], 0.5), ([3, 3, 3, 1, 1, 2], 1.0)],
)
def test_ntxent_matches_optax(labels, temperature):
    embeddings = normal((6, 4), 1)
    labels = jnp.asarray(labels)
    assert_matches(losses.ntxent, optax.losses.ntxent, embeddings, labels, temperature=temperature)


def test_ntxent_bad_input_raises():
    with pytest.raises(TypeError, match="`embeddings` must have a floating-point dtype"):
        losses.ntxent(jnp.zeros((4, 2), jnp.int32), jnp.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"same leading \(batch\) dimension.*\(4, 2\).*\(3,\)"):
        losses.ntxent(jnp.zeros((4, 2)), jnp.array([0, 0, 1]))


@pytest.mark.parametrize(
    "kwargs", [{}, {"margin": 0.1, "eps": 1e-3}, {"axis": 0}, {"norm_degree": 4}]
)
def test_triplet_margin_loss_matches_optax(kwargs):
    anchors, positives, negatives = normal((5, 3), 2), normal((5, 3), 3), normal((5, 3), 4)
    assert_matches(
        losses.triplet_margin_loss,
        optax.losses.triplet_margin_loss,
        anchors,
        positives,
        negatives,
        grad_argnums=(0, 1, 2),
        **kwargs,
    )


@pytest.mark.parametrize("norm_degree", [1, 3, 1.5])
def test_triplet_margin_loss_uses_absolute_differences(norm_degree):
    # optax raises the signed differences to the power: for odd or fractional degrees that is
    # no distance (a negative sum, or NaN). Ours is the L^q distance.
    anchors, positives, negatives = normal((5, 3), 5), normal((5, 3), 6), normal((5, 3), 7)
    ours = losses.triplet_margin_loss(
        anchors, positives, negatives, norm_degree=norm_degree, margin=0.5, eps=0.0
    )
    distance = lambda other: np.sum(np.abs(anchors - other) ** norm_degree, -1) ** (1 / norm_degree)
    expected = np.maximum(distance(positives) - distance(negatives) + 0.5, 0)
    np.testing.assert_allclose(ours, expected, rtol=2e-6, atol=1e-6)  # pow in float32


def test_triplet_margin_loss_integer_inputs_raise_type_error():
    with pytest.raises(TypeError, match="`positives` must have a floating-point dtype"):
        losses.triplet_margin_loss(jnp.ones((2, 3)), jnp.ones((2, 3), int), jnp.ones((2, 3)))
