"""optim.losses' cross-entropy losses against optax's: values and gradients under jit.

The arithmetic is optax's operation for operation, so float32 values and gradients agree bit
for bit; the inputs include large logits (|x| ~ 1e4), masks and class axes other than the last.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from losses_parity import assert_matches, normal

from optim import losses

_rng = np.random.default_rng(0)


def _probs(shape, axis=-1, seed=0):
    p = np.random.default_rng(seed).random(shape).astype(np.float32)
    return jnp.asarray(p / p.sum(axis=axis, keepdims=True))


def _large(shape, seed):
    """Logits with a sprinkling of +-1e4 entries."""
    x = np.asarray(normal(shape, seed, 3.0)).copy()
    flat = x.reshape(-1)
    flat[::7] = 1e4
    flat[3::11] = -1e4
    return jnp.asarray(x)


@pytest.mark.parametrize(
    ("shape", "axis"), [((6, 5), -1), ((6, 5), 0), ((2, 3, 4), -1), ((2, 3, 4), (1, 2))]
)
def test_softmax_cross_entropy_matches_optax(shape, axis):
    logits = _large(shape, 1)
    labels = _probs(shape, axis, seed=2)
    ours, theirs = losses.softmax_cross_entropy, optax.losses.softmax_cross_entropy
    assert_matches(ours, theirs, logits, labels, grad_argnums=(0, 1), axis=axis)


def test_softmax_cross_entropy_where_matches_optax():
    logits, labels = normal((6, 5), 3, 2.0), _probs((6, 5), seed=4)
    full = _rng.random((6, 5)) < 0.7
    full[:, 0] = True  # every example keeps a class, else optax's log_softmax gives NaN
    per_example = np.array([True, False, True, True, False, True])
    ours, theirs = losses.softmax_cross_entropy, optax.losses.softmax_cross_entropy
    for where in (jnp.asarray(full), jnp.asarray(per_example)):
        assert_matches(ours, theirs, logits, labels, grad_argnums=(0, 1), where=where)


def test_softmax_cross_entropy_broadcast_labels_match_optax():
    logits, labels = normal((6, 5), 5), _probs((5,), seed=6)
    ours, theirs = losses.softmax_cross_entropy, optax.losses.softmax_cross_entropy
    assert_matches(ours, theirs, logits, labels, grad_argnums=(0, 1))


@pytest.mark.parametrize(
    ("shape", "axis", "label_shape", "classes"),
    [
        ((6, 5), -1, (6,), 5),
        ((6, 5), 0, (5,), 6),
        ((2, 3, 4), 1, (2, 4), 3),
        ((2, 3, 4), (1, 2), (2,), 12),
        ((2, 3, 4), (2, 1), (2,), 12),
    ],
)
def test_integer_labels_match_optax(shape, axis, label_shape, classes):
    logits = _large(shape, 7)
    labels = jnp.asarray(np.random.default_rng(8).integers(0, classes, label_shape), jnp.int32)
    ours = losses.softmax_cross_entropy_with_integer_labels
    theirs = optax.losses.softmax_cross_entropy_with_integer_labels
    assert_matches(ours, theirs, logits, labels, axis=axis)


def test_integer_labels_where_matches_optax_and_masks_padding_labels():
    # A padded position may hold any label (here -100) when `where` excludes it: no error.
    logits = normal((6, 5), 9, 2.0)
    labels = jnp.array([1, -100, 4, 0, -100, 2])
    per_example = labels >= 0
    full = jnp.asarray(_rng.random((6, 5)) < 0.6).at[:, 0].set(True)
    ours = losses.softmax_cross_entropy_with_integer_labels
    theirs = optax.losses.softmax_cross_entropy_with_integer_labels
    assert_matches(ours, theirs, logits, labels, where=per_example)
    assert_matches(ours, theirs, logits, jnp.abs(labels) % 5, where=full)
    masked = ours(logits, labels, where=per_example)
    assert float(masked[1]) == float(masked[4]) == 0.0


def test_integer_labels_out_of_range_give_optax_values_not_errors():
    # Not checkable under jit, so not checked at all: -1 counts from the end, 5 gives NaN.
    logits, labels = normal((3, 5), 10), jnp.array([-1, 5, 2])
    ours = losses.softmax_cross_entropy_with_integer_labels(logits, labels)
    theirs = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)
    np.testing.assert_array_equal(ours, theirs)
    assert np.isnan(ours[1]) and np.isfinite(ours[0])


def test_safe_softmax_cross_entropy_matches_optax_with_masked_logits():
    logits = np.asarray(normal((5, 4), 11, 2.0)).copy()
    labels = np.asarray(_probs((5, 4), seed=12)).copy()
    logits[:, 3], labels[:, 3] = -np.inf, 0.0  # 0 log 0 = 0: no NaN in value or gradient
    labels[0] = [1.0, 0.0, 0.0, 0.0]
    ours, theirs = losses.safe_softmax_cross_entropy, optax.losses.safe_softmax_cross_entropy
    assert_matches(ours, theirs, jnp.asarray(logits), jnp.asarray(labels), grad_argnums=(0, 1))
    value, grad = jax.value_and_grad(lambda x: ours(x, labels).sum())(jnp.asarray(logits))
    assert np.isfinite(value) and np.isfinite(grad).all()


def test_safe_softmax_cross_entropy_equals_softmax_cross_entropy_on_finite_logits():
    logits, labels = normal((5, 4), 13), _probs((5, 4), seed=14)
    np.testing.assert_allclose(
        losses.safe_softmax_cross_entropy(logits, labels),
        losses.softmax_cross_entropy(logits, labels),
        rtol=1e-6,  # the same sum, reordered by the where
    )


@pytest.mark.parametrize("labels_kind", ["binary", "soft", "integer", "broadcast"])
def test_sigmoid_binary_cross_entropy_matches_optax(labels_kind):
    logits = _large((6, 4), 15)
    labels = {
        "binary": jnp.asarray(_rng.integers(0, 2, (6, 4)), jnp.float32),
        "soft": jnp.asarray(_rng.random((6, 4)), jnp.float32),
        "integer": jnp.asarray(_rng.integers(0, 2, (6, 4)), jnp.int32),
        "broadcast": jnp.asarray(_rng.random((4,)), jnp.float32),
    }[labels_kind]
    grads = (0,) if labels_kind == "integer" else (0, 1)
    ours, theirs = losses.sigmoid_binary_cross_entropy, optax.losses.sigmoid_binary_cross_entropy
    assert_matches(ours, theirs, logits, labels, grad_argnums=grads)


@pytest.mark.parametrize(("alpha", "gamma"), [(None, 2.0), (0.25, 0.5), (0.75, 0.0)])
def test_sigmoid_focal_loss_matches_optax(alpha, gamma):
    logits = _large((6, 4), 16)
    labels = jnp.asarray(_rng.random((6, 4)) < 0.4, jnp.float32).at[0].set(0.3)  # soft row
    assert_matches(
        losses.sigmoid_focal_loss,
        optax.losses.sigmoid_focal_loss,
        logits,
        labels,
        alpha=alpha,
        gamma=gamma,
    )


def test_sigmoid_focal_loss_with_gamma_zero_is_the_cross_entropy():
    logits, labels = normal((8,), 17, 3.0), jnp.asarray(_rng.random(8), jnp.float32)
    np.testing.assert_allclose(
        losses.sigmoid_focal_loss(logits, labels, gamma=0.0),
        losses.sigmoid_binary_cross_entropy(logits, labels),
        rtol=1e-6,  # exp(0 * log(1 - p_t)) is exactly 1; the rest is the same arithmetic
    )


@pytest.mark.parametrize("kwargs", [{}, {"where": "mask"}, {"epsilon": -1.0, "axis": 0}])
def test_poly_loss_cross_entropy_matches_optax(kwargs):
    logits = normal((6, 5), 18, 2.0)
    axis = kwargs.get("axis", -1)
    labels = _probs((6, 5), axis, seed=19)
    if kwargs.get("where") == "mask":
        kwargs = {"where": jnp.asarray(_rng.random((6, 5)) < 0.7).at[:, 0].set(True)}
    assert_matches(
        losses.poly_loss_cross_entropy,
        optax.losses.poly_loss_cross_entropy,
        logits,
        labels,
        grad_argnums=(0, 1),
        **kwargs,
    )


_INTS, _FLOATS = jnp.zeros((2, 3), jnp.int32), jnp.ones((2, 3))


@pytest.mark.parametrize(
    ("name", "logits", "labels", "argument"),
    [
        ("softmax_cross_entropy", _INTS, _FLOATS, "logits"),
        ("softmax_cross_entropy_with_integer_labels", _INTS, _INTS[:, 0], "logits"),
        ("sigmoid_binary_cross_entropy", _INTS, _FLOATS, "logits"),
        ("sigmoid_focal_loss", _INTS, _FLOATS, "logits"),
        ("safe_softmax_cross_entropy", _INTS, _FLOATS, "logits"),
        ("poly_loss_cross_entropy", _FLOATS, _INTS, "labels"),
    ],
)
def test_integer_inputs_where_floats_are_needed_raise_type_error(name, logits, labels, argument):
    with pytest.raises(TypeError, match=f"`{argument}` must have a floating-point dtype"):
        getattr(losses, name)(logits, labels)


def test_float_labels_for_the_integer_loss_raise_type_error():
    with pytest.raises(TypeError, match="`labels` must have an integer dtype, got float32"):
        losses.softmax_cross_entropy_with_integer_labels(jnp.ones((2, 3)), jnp.ones(2))


@pytest.mark.parametrize(
    ("logits_shape", "labels_shape", "axis"),
    [((4, 3), (4, 1), -1), ((4, 3), (5,), -1), ((2, 3, 4), (2, 3), (1, 2)), ((4, 3), (3,), -1)],
)
def test_integer_labels_of_the_wrong_shape_raise_value_error(logits_shape, labels_shape, axis):
    with pytest.raises(ValueError, match=r"`labels` must have the shape of `logits`") as info:
        losses.softmax_cross_entropy_with_integer_labels(
            jnp.ones(logits_shape), jnp.zeros(labels_shape, jnp.int32), axis=axis
        )
    assert str(logits_shape) in str(info.value) and str(labels_shape) in str(info.value)


def test_integer_labels_bad_axis_raises():
    logits, labels = jnp.ones((4, 3)), jnp.zeros(4, jnp.int32)
    with pytest.raises(TypeError, match="`axis` must be an int or a tuple of ints, got list"):
        losses.softmax_cross_entropy_with_integer_labels(logits, labels, axis=[1])
    with pytest.raises(ValueError, match="`axis` 2 is out of range for `logits` with 2 dims"):
        losses.softmax_cross_entropy_with_integer_labels(logits, labels, axis=2)


def test_one_hot_loss_given_integer_labels_raises_with_a_hint():
    with pytest.raises(ValueError, match="softmax_cross_entropy_with_integer_labels") as info:
        losses.softmax_cross_entropy(jnp.ones((4, 3)), jnp.zeros(4, jnp.int32))
    assert "`logits` and `labels`" in str(info.value)


@pytest.mark.parametrize(
    "name", ["sigmoid_binary_cross_entropy", "sigmoid_focal_loss", "safe_softmax_cross_entropy"]
)
def test_labels_that_do_not_broadcast_raise_value_error(name):
    with pytest.raises(ValueError, match="`logits` and `labels` must have the same shape or"):
        getattr(losses, name)(jnp.ones((4, 3)), jnp.ones((4, 2)))
