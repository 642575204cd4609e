"""optim.losses' Kullback-Leibler divergences against optax's: bitwise, values and gradients."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from losses_parity import assert_matches, normal

from optim import losses

NAMES = ["kl_divergence", "kl_divergence_with_log_targets", "generalized_kl_divergence"]


def _inputs(shape, axis=-1):
    log_predictions = jax.nn.log_softmax(normal(shape, 1, 2.0), axis=axis)
    targets = np.asarray(jax.nn.softmax(normal(shape, 2, 2.0), axis=axis)).copy()
    targets.reshape(-1)[::5] = 0.0  # zero targets: 0 log 0 = 0
    return log_predictions, jnp.asarray(targets)


def _second(name, targets):
    return jnp.log(targets) if name == "kl_divergence_with_log_targets" else targets


@pytest.mark.parametrize(
    ("shape", "axis"), [((6, 5), -1), ((6, 5), 0), ((2, 3, 4), (1, 2)), ((2, 3, 4), None)]
)
@pytest.mark.parametrize("name", NAMES)
def test_divergences_match_optax(name, shape, axis):
    log_predictions, targets = _inputs(shape, axis if isinstance(axis, int) else -1)
    ours, theirs = getattr(losses, name), getattr(optax.losses, name)
    assert_matches(ours, theirs, log_predictions, _second(name, targets), axis=axis)


@pytest.mark.parametrize("name", NAMES)
def test_divergences_with_where_match_optax(name):
    log_predictions, targets = _inputs((6, 5))
    where = jnp.asarray(np.random.default_rng(3).random((6, 5)) < 0.6)
    ours, theirs = getattr(losses, name), getattr(optax.losses, name)
    assert_matches(ours, theirs, log_predictions, _second(name, targets), where=where)


def test_kl_divergence_is_zero_for_equal_distributions():
    log_p, _ = _inputs((4, 3))
    np.testing.assert_allclose(losses.kl_divergence(log_p, jnp.exp(log_p)), 0.0, atol=1e-6)


def test_convex_kl_divergence_warns_and_is_the_generalized_one():
    log_predictions, targets = _inputs((6, 5))
    with pytest.warns(DeprecationWarning, match="use generalized_kl_divergence"):
        ours = losses.convex_kl_divergence(log_predictions, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = optax.losses.convex_kl_divergence(log_predictions, targets)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, losses.generalized_kl_divergence(log_predictions, targets))


@pytest.mark.parametrize("name", NAMES)
def test_integer_inputs_raise_type_error(name):
    with pytest.raises(TypeError, match="`log_predictions` must have a floating-point dtype"):
        getattr(losses, name)(jnp.zeros(3, jnp.int32), jnp.ones(3))
