"""optim.losses' Dice losses against optax's: bitwise, values and gradients, under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from losses_parity import assert_matches, normal

from optim import losses

_rng = np.random.default_rng(0)
LOGITS = normal((2, 4, 5, 3), 1, 2.0)
TARGETS = jax.nn.one_hot(jnp.asarray(_rng.integers(0, 3, (2, 4, 5))), 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"alpha": 0.3, "beta": 0.7, "smooth": 0.1},
        {"reduction": "sum", "ignore_background": True},
        {"reduction": "none", "class_weights": jnp.array([0.2, 1.0, 2.0])},
        {"axis": (1,)},
    ],
)
def test_dice_loss_matches_optax(kwargs):
    assert_matches(losses.dice_loss, optax.losses.dice_loss, LOGITS, TARGETS, **kwargs)


def test_dice_loss_on_probabilities_matches_optax_and_is_checked_outside_jit():
    probs = jax.nn.softmax(LOGITS)
    # optax cannot run its check under jit, so compare eagerly; ours skips it under jit.
    ours = losses.dice_loss(probs, TARGETS, apply_softmax=False)
    np.testing.assert_array_equal(ours, optax.losses.dice_loss(probs, TARGETS, apply_softmax=False))
    np.testing.assert_array_equal(
        jax.jit(lambda p: losses.dice_loss(p, TARGETS, apply_softmax=False))(probs), ours
    )
    with pytest.raises(ValueError, match="`predictions` must be valid probability distributions"):
        losses.dice_loss(LOGITS, TARGETS, apply_softmax=False)


@pytest.mark.parametrize("binary_shape", [(2, 4, 5), (2, 4, 5, 1)])
def test_binary_dice_loss_matches_optax(binary_shape):
    logits = normal(binary_shape, 2, 2.0)
    targets = jnp.asarray(_rng.integers(0, 2, binary_shape), jnp.float32)
    assert_matches(losses.binary_dice_loss, optax.losses.binary_dice_loss, logits, targets)
    assert_matches(losses.dice_loss, optax.losses.dice_loss, logits[..., None], targets)


@pytest.mark.parametrize("kwargs", [{}, {"ignore_background": True, "smooth": 0.5}])
def test_multiclass_generalized_dice_loss_matches_optax(kwargs):
    # Class 2 absent from the targets: its weight is the largest, kept finite by 1e-7.
    targets = TARGETS.at[..., 2].set(0.0)
    assert_matches(
        losses.multiclass_generalized_dice_loss,
        optax.losses.multiclass_generalized_dice_loss,
        LOGITS,
        targets,
        **kwargs,
    )


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="`predictions` and `targets` must have the same shape"):
        losses.dice_loss(LOGITS, TARGETS[..., :2])
    with pytest.raises(ValueError, match=r"`reduction` must be one of .*got 'max'"):
        losses.dice_loss(LOGITS, TARGETS, reduction="max")
    with pytest.raises(ValueError, match=r"`class_weights` must have rank 1"):
        losses.dice_loss(LOGITS, TARGETS, class_weights=jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="`predictions` and `targets` must have the same shape"):
        losses.multiclass_generalized_dice_loss(LOGITS, TARGETS[0])
