"""optim.losses.make_fenchel_young_loss against optax's, bitwise, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.special import logsumexp
from losses_parity import assert_matches, normal

from optim import losses


@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 3, 5)])
def test_fenchel_young_loss_of_logsumexp_matches_optax(shape):
    scores = normal(shape, 1, 2.0)
    targets = jax.nn.softmax(normal(shape, 2), axis=-1)
    ours = losses.make_fenchel_young_loss(logsumexp)
    theirs = optax.losses.make_fenchel_young_loss(logsumexp)
    assert_matches(ours, theirs, scores, targets, grad_argnums=(0, 1))


def _scaled_logsumexp(scores, temperature=1.0, *, shift=0.0):
    return temperature * logsumexp(scores / temperature) + shift


def test_fenchel_young_loss_passes_extra_arguments_to_max_fun():
    # optax hands them to jnp.vectorize, which drops keyword arguments silently and rejects
    # positional ones; ours reach max_fun (a documented difference).
    scores, targets = normal((4, 5), 3), jax.nn.one_hot(jnp.arange(4), 5)
    loss = losses.make_fenchel_young_loss(_scaled_logsumexp)
    rows = zip(scores, targets, strict=True)
    expected = jnp.stack([_scaled_logsumexp(s, 0.5, shift=1.0) - jnp.vdot(t, s) for s, t in rows])
    np.testing.assert_allclose(loss(scores, targets, 0.5, shift=1.0), expected, rtol=1e-6)
    np.testing.assert_allclose(
        loss(scores, targets, temperature=0.5), loss(scores, targets, 0.5), rtol=0
    )


def test_fenchel_young_loss_of_logsumexp_is_cross_entropy_for_one_hot_targets():
    scores, labels = normal((4, 5), 4), jnp.array([0, 3, 1, 4])
    fy = losses.make_fenchel_young_loss(logsumexp)(scores, jax.nn.one_hot(labels, 5))
    ce = losses.softmax_cross_entropy_with_integer_labels(scores, labels)
    np.testing.assert_allclose(fy, ce, rtol=1e-6)  # the same quantity, summed differently
