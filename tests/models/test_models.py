"""models: the models are pytrees, their init and shapes, closed_form, value_and_grad, datasets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import models
from models import datasets, losses

# Each new shape drawn from jax.random compiles a PRNG kernel (~0.5 s on CPU), so the models
# below share their shapes, inputs come from numpy, and other shapes are checked with
# jax.eval_shape, which compiles nothing.
KEY = jax.random.PRNGKey(0)
X = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
APPLY = jax.jit(lambda model, x: model(x))

MODELS = {
    "linear_regression": lambda key: models.LinearRegression.init(key, 64, 128),
    "logistic_regression": lambda key: models.LogisticRegression.init(key, 64, 10),
    "mlp": lambda key: models.MLP.init(key, [64, 128, 10]),
}


@pytest.fixture(params=list(MODELS))
def model(request):
    return MODELS[request.param](KEY)


def _mean_output(model, x):
    return jnp.mean(model(x))


def test_models_are_pytrees_of_arrays(model):
    leaves, treedef = jax.tree.flatten(model)
    assert leaves and all(isinstance(leaf, jax.Array) for leaf in leaves)
    assert type(jax.tree.unflatten(treedef, leaves)) is type(model)


def test_models_work_under_jit_vmap_and_grad(model):
    out = model(X)
    # Compiled or batched differently, the float32 dot products may be summed in another order.
    np.testing.assert_allclose(APPLY(model, X), out, rtol=1e-5, atol=1e-6)
    # Called on one example at a time, a model gives the rows of the batched call.
    np.testing.assert_allclose(jax.vmap(model)(X), out, rtol=1e-5, atol=1e-6)
    loss, grads = models.value_and_grad(_mean_output)(model, X)
    expected_loss, expected_grads = jax.jit(jax.value_and_grad(_mean_output))(model, X)
    assert jax.tree.structure(grads) == jax.tree.structure(model)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), grads, expected_grads)


@pytest.mark.parametrize("name", MODELS)
def test_init_is_deterministic_in_key(name):
    make = MODELS[name]
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, make(KEY), make(KEY))))
    other = jax.tree.map(np.array_equal, make(KEY), make(jax.random.PRNGKey(1)))
    # Logistic regression starts at zero whatever the key; the others are random.
    assert all(jax.tree.leaves(other)) == (name == "logistic_regression")


def test_init_shapes_and_dtypes():
    f32, bf16 = jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)

    def shapes(init):
        model = jax.eval_shape(init, KEY)
        return [(a.shape, a.dtype) for a in jax.tree.leaves(model)]

    # Leaves are listed w, b for each layer.
    assert shapes(lambda k: models.LinearRegression.init(k, 3)) == [((3, 1), f32), ((1,), f32)]
    assert shapes(lambda k: models.LinearRegression.init(k, 3, 2, bf16)) == [
        ((3, 2), bf16),
        ((2,), bf16),
    ]
    assert shapes(lambda k: models.LogisticRegression.init(k, 5, 3, bf16)) == [
        ((5, 3), bf16),
        ((3,), bf16),
    ]
    assert shapes(lambda k: models.MLP.init(k, [64, 128, 10], dtype=bf16)) == [
        ((64, 128), bf16),
        ((128,), bf16),
        ((128, 10), bf16),
        ((10,), bf16),
    ]


def test_linear_regression_init_is_standard_normal():
    model = MODELS["linear_regression"](KEY)
    np.testing.assert_allclose(np.std(model.w), 1.0, rtol=0.05)  # 8192 draws
    np.testing.assert_allclose(np.std(model.b), 1.0, rtol=0.3)  # 128 draws


def test_logistic_regression_starts_uniform():
    model = MODELS["logistic_regression"](KEY)
    assert not np.any(model.w) and not np.any(model.b)
    np.testing.assert_array_equal(APPLY(model, X), 0.0)  # equal logits: a uniform softmax


def test_mlp_example():
    mlp = models.MLP.init(jax.random.PRNGKey(0), [64, 128, 10])
    logits = APPLY(mlp, X)
    assert logits.shape == (5, 10) and logits.dtype == jnp.float32
    # No activation after the last layer: relu would make every logit >= 0.
    assert np.min(logits) < 0.0
    # LeCun normal: std 1/sqrt(fan_in); zero biases.
    np.testing.assert_allclose(np.std(mlp.layers[0].w), 1 / 8, rtol=0.05)
    np.testing.assert_allclose(np.std(mlp.layers[1].w), 1 / np.sqrt(128), rtol=0.05)
    assert not any(np.any(layer.b) for layer in mlp.layers)


def test_mlp_activation_is_static():
    relu = MODELS["mlp"](KEY)
    tanh = models.MLP.init(KEY, [64, 128, 10], activation=jnp.tanh)
    assert len(jax.tree.leaves(relu)) == 4
    assert jax.tree.structure(relu) != jax.tree.structure(tanh)
    expected = tanh.layers[1](jnp.tanh(tanh.layers[0](X)))
    np.testing.assert_allclose(APPLY(tanh, X), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(APPLY(relu, X), APPLY(tanh, X))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: models.MLP.init(KEY, [3]), "sizes"),
        (lambda: models.MLP.init(KEY, [3, 0, 2]), r"sizes\[1\]"),
        (lambda: models.LinearRegression.init(KEY, 2.5), "in_features"),
        (lambda: models.LogisticRegression.init(KEY, 3, -1), "num_classes"),
    ],
)
def test_bad_init_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_input_width_raises():
    mlp = MODELS["mlp"](KEY)
    with pytest.raises(ValueError, match=r"x.*\(\.\.\., 64\).*\(5, 4\)"):
        mlp(np.ones((5, 4), np.float32))


def test_closed_form_is_the_least_squares_optimum():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = (x @ rng.normal(size=(3, 2)) + 2.0 + rng.normal(scale=0.1, size=(50, 2))).astype(np.float32)
    model = models.LinearRegression.closed_form(x, y)
    x_ones = np.hstack([x, np.ones((50, 1))]).astype(np.float64)
    expected = np.linalg.lstsq(x_ones, y.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(model.w, expected[:-1], atol=1e-5)
    np.testing.assert_allclose(model.b, expected[-1], atol=1e-5)
    # At the optimum the MSE has zero gradient.
    grads = jax.jit(jax.grad(lambda m: losses.mean_squared_error(m(x), y)))(model)
    assert max(np.abs(g).max() for g in jax.tree.leaves(grads)) < 1e-4


def test_closed_form_rejects_vector_targets():
    with pytest.raises(ValueError, match=r"y\[:, None\]"):
        models.LinearRegression.closed_form(np.ones((4, 2)), np.ones(4))


def test_value_and_grad_has_aux_and_non_array_leaves():
    params = {"w": jnp.array([1.0, 2.0]), "steps": jnp.array(3), "scale": 2.0, "name": "demo"}

    def loss_fn(params, batch):
        assert params["name"] == "demo"  # non-array leaves reach loss_fn as they are
        loss = params["scale"] * jnp.sum(params["w"] * batch) * params["steps"]
        return loss, {"w_sum": jnp.sum(params["w"])}

    (loss, aux), grads = models.value_and_grad(loss_fn, has_aux=True)(params, jnp.ones(2))
    assert float(loss) == 18.0 and float(aux["w_sum"]) == 3.0
    np.testing.assert_allclose(grads["w"], [6.0, 6.0])
    assert grads["steps"] is None and grads["scale"] is None and grads["name"] is None


# datasets


def test_linear_regression_uniform_data():
    data = datasets.linear_regression_uniform(KEY)
    for a in data:
        assert a.shape == (100, 1) and a.dtype == jnp.float32
        assert 0.0 <= np.min(a) and np.max(a) < 1.0
    assert not np.allclose(data.x, data.y)  # drawn independently
    small = jax.eval_shape(lambda k: datasets.linear_regression_uniform(k, n=7), KEY)
    assert small.x.shape == small.y.shape == (7, 1)
    same = datasets.linear_regression_uniform(KEY)
    other = datasets.linear_regression_uniform(jax.random.PRNGKey(1))
    assert np.array_equal(data.x, same.x) and not np.array_equal(data.x, other.x)


@pytest.fixture(scope="module")
def digits():
    return datasets.digits()


def test_digits_shapes_and_dtypes(digits):
    assert digits.train.x.shape == (1437, 64) and digits.test.x.shape == (360, 64)
    assert digits.train.y.shape == (1437,) and digits.test.y.shape == (360,)
    assert digits.train.x.dtype == jnp.float32 and digits.train.y.dtype == jnp.int32
    assert set(np.unique(digits.train.y)) == set(range(10)) == set(np.unique(digits.test.y))


def test_digits_standardized_with_train_statistics_only(digits):
    train_x, test_x = np.asarray(digits.train.x), np.asarray(digits.test.x)
    mean, scale = np.asarray(digits.mean), np.asarray(digits.scale)
    varying = train_x.std(axis=0) > 0
    np.testing.assert_allclose(train_x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train_x.std(axis=0)[varying], 1.0, rtol=1e-4)
    # The test split is transformed with the training statistics, so it is not exactly centred.
    assert np.abs(test_x.mean(axis=0)).max() > 0.01
    # Undoing the scaling gives back the raw pixels (integers 0..16) of both splits.
    for x in (train_x, test_x):
        raw = x * scale + mean
        np.testing.assert_allclose(raw, np.round(raw), atol=1e-4)
        assert -1e-4 < raw.min() and raw.max() < 16 + 1e-4
    # The statistics are those of the training split, not of all images.
    assert not np.allclose(mean, load_digits().data.mean(axis=0), atol=1e-4)


def test_digits_is_deterministic_in_seed(digits):
    again, other = datasets.digits(), datasets.digits(seed=1)
    assert np.array_equal(digits.train.x, again.train.x)
    assert np.array_equal(digits.test.y, again.test.y)
    assert not np.array_equal(digits.train.y, other.train.y)
    assert datasets.digits(test_fraction=0.5).test.x.shape[0] in (898, 899)
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.digits(test_fraction=1.0)
