"""models.losses (optim.losses re-exported, plus three helpers) against optax: values, gradients,
large logits, finite differences, bad shapes."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from models import losses

# Our losses use the same formulas as optax's, so in float32 they agree to a few ulps (float32
# eps is 1.2e-7): rtol=1e-6 leaves room for a different order of operations. The atol only
# matters where a value or gradient is ~0 (e.g. cross entropy of a confidently right logit of
# 1e4), where relative error is meaningless.
RTOL, ATOL = 1e-6, 1e-7

_rng = np.random.default_rng(0)
# Six ordinary rows, then huge logits of every sign combination; every test below sees both.
LARGE_ROWS = [[1e4, -1e4, 0.0, 1e4], [-1e4, -1e4, -1e4, 1e4], [1e4, 1e4, -1e4, -1e4]]
LOGITS = np.concatenate([3.0 * _rng.normal(size=(6, 4)), LARGE_ROWS]).astype(np.float32)
N, C = LOGITS.shape
INT_LABELS = np.concatenate([_rng.integers(0, C, 6), [1, 0, 2]]).astype(np.int32)
ONE_HOT = np.eye(C, dtype=np.float32)[INT_LABELS]
PROBS = _rng.dirichlet(np.ones(C), N).astype(np.float32)
BINARY = _rng.integers(0, 2, (N, C)).astype(np.float32)
BINARY[-1] = 0.5  # a probability target against huge logits
TARGETS = (2.0 * _rng.normal(size=(N, C))).astype(np.float32)


def _huber(delta):
    return (
        lambda p, t: losses.huber_loss(p, t, delta=delta),
        lambda p, t: optax.losses.huber_loss(p, t, delta=delta),
    )


# (ours, optax's, first argument (differentiated), second argument)
CASES = {
    "squared_error": (losses.squared_error, optax.losses.squared_error, LOGITS, TARGETS),
    "l2_loss": (losses.l2_loss, optax.losses.l2_loss, LOGITS, TARGETS),
    "huber_loss": (losses.huber_loss, optax.losses.huber_loss, LOGITS, TARGETS),
    "huber_loss_delta": (*_huber(0.5), LOGITS, TARGETS),
    "softmax_ce_one_hot": (
        losses.softmax_cross_entropy,
        optax.losses.softmax_cross_entropy,
        LOGITS,
        ONE_HOT,
    ),
    "softmax_ce_probs": (
        losses.softmax_cross_entropy,
        optax.losses.softmax_cross_entropy,
        LOGITS,
        PROBS,
    ),
    "softmax_ce_int": (
        losses.softmax_cross_entropy_with_integer_labels,
        optax.losses.softmax_cross_entropy_with_integer_labels,
        LOGITS,
        INT_LABELS,
    ),
    "sigmoid_bce": (
        losses.sigmoid_binary_cross_entropy,
        optax.losses.sigmoid_binary_cross_entropy,
        LOGITS,
        BINARY,
    ),
}


def _value_and_grad(fn, first, second):
    """Per-example values, and the gradient of their sum with respect to ``first``."""
    return fn(first, second), jax.grad(lambda a: jnp.sum(fn(a, second)))(first)


@functools.partial(jax.jit, static_argnums=(0, 1))  # one compilation per case, not per op
def _ours_and_optax(ours, theirs, first, second):
    return _value_and_grad(ours, first, second), _value_and_grad(theirs, first, second)


@pytest.mark.parametrize("name", CASES)
def test_matches_optax_values_and_gradients(name):
    ours, theirs, first, second = CASES[name]
    (values, grads), (expected_values, expected_grads) = _ours_and_optax(
        ours, theirs, first, second
    )
    assert values.shape == expected_values.shape
    assert values.dtype == expected_values.dtype == jnp.float32
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grads))
    np.testing.assert_allclose(values, expected_values, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grads, expected_grads, rtol=RTOL, atol=ATOL)


def test_large_logits_give_exact_losses():
    # Confidently right costs nothing; confidently wrong costs the logit gap, not inf.
    ce, bce = jax.jit(
        lambda: (
            losses.softmax_cross_entropy_with_integer_labels(LOGITS[6:], INT_LABELS[6:]),
            losses.sigmoid_binary_cross_entropy(jnp.array([1e4, -1e4, 1e4]), jnp.array([1, 1, 0])),
        )
    )()
    np.testing.assert_allclose(ce, [2e4 + np.log(2.0), 2e4, 2e4 + np.log(2.0)], rtol=RTOL)
    np.testing.assert_allclose(bce, [0.0, 1e4, 1e4], rtol=RTOL, atol=ATOL)


def test_without_targets_means_zero_targets():
    fns = (losses.squared_error, losses.l2_loss, losses.huber_loss)
    without, with_zeros = jax.jit(
        lambda x: ([fn(x) for fn in fns], [fn(x, jnp.zeros_like(x)) for fn in fns])
    )(LOGITS)
    for a, b in zip(without, with_zeros, strict=True):
        np.testing.assert_array_equal(a, b)


def test_mean_squared_error_is_the_mean_of_squared_error():
    mse = losses.mean_squared_error(LOGITS, TARGETS)
    assert mse.shape == ()
    np.testing.assert_allclose(mse, optax.losses.squared_error(LOGITS, TARGETS).mean(), rtol=RTOL)


def test_accuracy():
    logits = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    acc = losses.accuracy(logits, jnp.array([1, 0, 0, 0]))
    assert acc.shape == () and acc.dtype == jnp.float32
    assert float(acc) == 0.75


def test_l2_penalty_sums_half_squares_of_float_arrays_only():
    params = {
        "w": jnp.array([[1.0, 2.0], [3.0, 4.0]]),
        "b": np.array([0.5], np.float32),
        "count": jnp.array([100, 100]),
        "lr": 3.0,
        "name": "ignored",
    }
    np.testing.assert_allclose(losses.l2_penalty(params, scale=0.1), 0.1 * 0.5 * 30.25, rtol=RTOL)
    # The 0.5 makes the gradient scale * params, like optax.add_decayed_weights.
    floats = {"w": params["w"], "b": jnp.asarray(params["b"])}
    grads = jax.jit(jax.grad(lambda p: losses.l2_penalty(p, scale=0.1)))(floats)
    jax.tree.map(lambda g, p: np.testing.assert_allclose(g, 0.1 * p, rtol=RTOL), grads, floats)
    assert losses.l2_penalty({}).dtype == jnp.float32 and float(losses.l2_penalty({})) == 0.0


def test_l2_penalty_accumulates_bfloat16_in_float32():
    # With bfloat16's 8-bit mantissa, a running sum of 4096 equal terms would be far off.
    penalty = losses.l2_penalty(jnp.full((4096,), 0.01, jnp.bfloat16))
    assert penalty.dtype == jnp.float32
    np.testing.assert_allclose(penalty, 0.5 * 4096 * float(jnp.bfloat16(0.01)) ** 2, rtol=1e-6)


def _finite_difference_grad(f, x, h=1e-6):
    """Central differences of the scalar ``f`` at the float64 numpy array ``x``."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


@pytest.mark.parametrize("name", ["huber_loss", "softmax_ce_probs", "sigmoid_bce"])
def test_gradient_matches_finite_differences_in_float64(name):
    ours, _, first, second = CASES[name]
    # float64 is needed for differences this accurate; scoped so other tests stay float32.
    with jax.enable_x64(True):
        x = np.asarray(first[:2, :3], np.float64)
        other = np.asarray(second[:2] if second.ndim == 1 else second[:2, :3])
        if name == "softmax_ce_probs":
            other = other / other.sum(axis=-1, keepdims=True)

        total = jax.jit(lambda a: jnp.sum(ours(a, other)))
        grad = jax.grad(total)(x)
        assert grad.dtype == jnp.float64
        expected = _finite_difference_grad(lambda a: float(total(a)), x)
    # Central differences err by ~h**2 (1e-12) plus rounding ~eps/h (1e-10).
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)


def _in_order(*words):
    return ".*".join(re.escape(word) for word in words)


@pytest.mark.parametrize(
    ("fn", "first", "second", "names"),
    [
        (
            losses.squared_error,
            np.zeros((N, 1), np.float32),
            np.zeros((N,), np.float32),
            ("predictions", "targets"),
        ),
        (
            losses.l2_loss,
            np.zeros((N,), np.float32),
            np.zeros((N, 1), np.float32),
            ("predictions", "targets"),
        ),
        (
            losses.mean_squared_error,
            np.zeros((N, 1), np.float32),
            np.zeros((1, N), np.float32),
            ("predictions", "targets"),
        ),
        (  # (n, 1) against (n,) broadcasts in huber_loss, as in optax: (n,) against (n - 1,)
            losses.huber_loss,
            np.zeros((N,), np.float32),
            np.zeros((N - 1,), np.float32),
            ("predictions", "targets"),
        ),
        (
            losses.softmax_cross_entropy,
            LOGITS,
            np.eye(C + 1, dtype=np.float32)[INT_LABELS],
            ("logits", "labels"),
        ),
        (
            losses.softmax_cross_entropy_with_integer_labels,
            LOGITS,
            INT_LABELS[:, None],
            ("labels", "logits"),
        ),
        (
            losses.softmax_cross_entropy_with_integer_labels,
            LOGITS,
            INT_LABELS[:-1],
            ("labels", "logits"),
        ),
        (losses.accuracy, LOGITS, INT_LABELS[:, None], ("labels", "logits")),
        (
            losses.sigmoid_binary_cross_entropy,
            np.zeros((N,), np.float32),
            np.zeros((N - 1,), np.float32),
            ("logits", "labels"),
        ),
    ],
)
def test_shape_mismatch_raises(fn, first, second, names):
    with pytest.raises(ValueError, match=_in_order(*names)) as info:
        fn(first, second)
    message = str(info.value)
    assert str(first.shape) in message and str(second.shape) in message


@pytest.mark.parametrize(
    ("name", "first", "second"),
    [
        ("huber_loss", LOGITS[:, :1], TARGETS[:, 0]),
        ("sigmoid_binary_cross_entropy", LOGITS[:, 0], BINARY[:, :1]),
        ("softmax_cross_entropy", LOGITS, PROBS[0]),
        ("softmax_cross_entropy_with_integer_labels", LOGITS, INT_LABELS[:1]),
    ],
)
def test_shapes_that_broadcast_are_accepted_as_in_optax(name, first, second):
    # optax combines these elementwise ((n, 1) with (n,) gives (n, n)); so must a drop-in.
    ours = getattr(losses, name)(first, second)
    theirs = getattr(optax.losses, name)(first, second)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_models_losses_are_optim_losses():
    import optim.losses

    for name in losses.__all__:
        if hasattr(optim.losses, name):
            assert getattr(losses, name) is getattr(optim.losses, name), name


def test_integer_labels_for_one_hot_loss_get_a_hint():
    with pytest.raises(ValueError, match="softmax_cross_entropy_with_integer_labels"):
        losses.softmax_cross_entropy(LOGITS, INT_LABELS)


def test_wrong_dtypes_raise():
    with pytest.raises(TypeError, match="labels"):
        losses.softmax_cross_entropy_with_integer_labels(LOGITS, ONE_HOT[:, 0])
    with pytest.raises(TypeError, match="logits"):
        losses.softmax_cross_entropy(jnp.zeros((N, C), jnp.int32), ONE_HOT)
    with pytest.raises(TypeError, match="predictions"):
        losses.squared_error(jnp.arange(3), jnp.arange(3))
