"""optim.losses.smooth_labels against optax's, bitwise."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from losses_parity import assert_matches

from optim import losses


@pytest.mark.parametrize(
    ("shape", "axis"), [((5, 4), -1), ((5, 4), 0), ((2, 3, 4), (1, 2)), ((2, 3), None)]
)
@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_smooth_labels_matches_optax(shape, axis, alpha):
    labels = jax.nn.one_hot(jnp.arange(np.prod(shape[:-1])) % shape[-1], shape[-1])
    labels = labels.reshape(shape)
    assert_matches(losses.smooth_labels, optax.losses.smooth_labels, labels, alpha, axis=axis)


def test_smooth_labels_with_where_matches_optax():
    labels = jax.nn.one_hot(jnp.array([0, 2, 1]), 4)
    where = jnp.array([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]], bool)
    assert_matches(
        losses.smooth_labels, optax.losses.smooth_labels, labels, 0.2, where=where, grad_argnums=()
    )
    # Each example spreads alpha over its own included classes.
    np.testing.assert_allclose(losses.smooth_labels(labels, 0.2, where=where)[2, 2], 0.1)


def test_smooth_labels_of_integer_labels_raise_type_error():
    with pytest.raises(TypeError, match="`labels` must have a floating-point dtype"):
        losses.smooth_labels(jnp.zeros((2, 3), jnp.int32), 0.1)
