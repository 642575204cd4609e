"""optim.losses' regression losses against optax's: values and gradients, bitwise, under jit.

The arithmetic is optax's operation for operation, so float32 results agree bit for bit.
"""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from losses_parity import assert_matches, normal

from optim import losses

SHAPES = [(), (7,), (3, 4, 5)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["squared_error", "l2_loss", "huber_loss", "log_cosh"])
def test_elementwise_losses_match_optax(name, shape):
    predictions, targets = normal(shape, 0, 3.0), normal(shape, 1, 3.0)
    ours, theirs = getattr(losses, name), getattr(optax.losses, name)
    assert_matches(ours, theirs, predictions, targets, grad_argnums=(0, 1))
    assert_matches(lambda p: ours(p), lambda p: theirs(p), predictions)  # targets=None


@pytest.mark.parametrize("delta", [0.5, 1.0, 4.0])
def test_huber_loss_delta_matches_optax(delta):
    # Errors of exactly +-delta, where the loss turns from quadratic to linear, included.
    predictions = jnp.concatenate([normal((20,), 2, 3.0), jnp.array([delta, -delta, 0.0])])
    assert_matches(
        lambda p: losses.huber_loss(p, delta=delta),
        lambda p: optax.losses.huber_loss(p, delta=delta),
        predictions,
    )


@pytest.mark.parametrize("name", ["huber_loss", "log_cosh"])
def test_broadcast_targets_match_optax(name):
    # optax broadcasts targets here (only squared_error/l2_loss insist on equal shapes).
    predictions, targets = normal((5, 1), 3), normal((4,), 4)
    ours, theirs = getattr(losses, name), getattr(optax.losses, name)
    assert ours(predictions, targets).shape == (5, 4)
    assert_matches(ours, theirs, predictions, targets, grad_argnums=(0, 1))


def test_log_cosh_is_finite_for_large_errors():
    errors = jnp.array([1e4, -1e4, 50.0])
    np.testing.assert_allclose(losses.log_cosh(errors), jnp.abs(errors) - np.log(2.0), rtol=1e-7)
    assert_matches(losses.log_cosh, optax.losses.log_cosh, errors)


@pytest.mark.parametrize("name", ["cosine_similarity", "cosine_distance"])
@pytest.mark.parametrize("axis", [-1, 0, (1, 2), None])
def test_cosine_losses_match_optax_along_axes(name, axis):
    predictions, targets = normal((3, 4, 5), 5), normal((3, 4, 5), 6)
    ours, theirs = getattr(losses, name), getattr(optax.losses, name)
    assert_matches(ours, theirs, predictions, targets, grad_argnums=(0, 1), axis=axis)


@pytest.mark.parametrize("name", ["cosine_similarity", "cosine_distance"])
def test_cosine_losses_match_optax_with_where_and_epsilon(name):
    predictions, targets = normal((6, 5), 7), normal((6, 5), 8)
    where = np.random.default_rng(9).random((6, 5)) < 0.6
    predictions = predictions.at[0].set(0.0)  # a zero vector: epsilon keeps it finite
    ours, theirs = getattr(losses, name), getattr(optax.losses, name)
    for kwargs in ({"where": where}, {"epsilon": 1e-3}, {"where": where, "epsilon": 0.5}):
        assert_matches(ours, theirs, predictions, targets, grad_argnums=(0, 1), **kwargs)


def test_cosine_similarity_of_a_zero_vector_without_epsilon_is_nan_as_in_optax():
    ours = losses.cosine_similarity(jnp.zeros((1, 3)), jnp.ones((1, 3)))
    theirs = optax.losses.cosine_similarity(jnp.zeros((1, 3)), jnp.ones((1, 3)))
    assert np.isnan(ours).all() and np.isnan(theirs).all()


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: losses.squared_error(jnp.arange(3)), "predictions"),
        (lambda: losses.l2_loss(jnp.arange(3), jnp.zeros(3)), "predictions"),
        (lambda: losses.huber_loss(jnp.arange(3)), "predictions"),
        (lambda: losses.log_cosh(jnp.arange(3)), "predictions"),
        (lambda: losses.cosine_similarity(jnp.arange(3), jnp.ones(3)), "predictions"),
        (lambda: losses.cosine_distance(jnp.ones(3), jnp.arange(3)), "targets"),
    ],
)
def test_integer_inputs_raise_type_error(call, argument):
    with pytest.raises(TypeError, match=f"`{argument}` must have a floating-point dtype"):
        call()


@pytest.mark.parametrize(
    ("name", "targets", "expects"),
    [
        ("squared_error", jnp.zeros((4,)), "must have the same shape"),
        ("l2_loss", jnp.zeros((4,)), "must have the same shape"),
        ("huber_loss", jnp.zeros((3,)), "shapes that broadcast together"),
        ("log_cosh", jnp.zeros((3,)), "shapes that broadcast together"),
    ],
)
def test_shape_mismatch_raises_value_error_naming_both(name, targets, expects):
    predictions = jnp.zeros((4, 1)) if name in ("squared_error", "l2_loss") else jnp.zeros((4,))
    with pytest.raises(ValueError, match=expects) as info:
        getattr(losses, name)(predictions, targets)
    message = str(info.value)
    assert "`predictions` and `targets`" in message
    assert str(predictions.shape) in message and str(targets.shape) in message
