"""What a first-time user runs into with ``fit`` and ``sweep``: an objective without data, a
model class where a model belongs, and seeds that would train identical copies."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import pytest

import models
import optim


def rosenbrock(p):
    """The Rosenbrock function: a curved valley with its minimum 0 at (1, 1)."""
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def squared_error(w, batch):
    return jnp.mean((batch - w) ** 2)


START = jnp.array([-1.0, 1.0])


def test_fit_trains_an_objective_without_data():
    result = optim.fit(rosenbrock, START, optim.lbfgs(), None, steps=50)
    assert jnp.allclose(result.params, 1.0, atol=1e-4)
    assert result.losses.shape == (50,) and float(result.losses[0]) == 4.0


def test_data_defaults_to_none():
    explicit = optim.fit(rosenbrock, START, optim.adam(0.05), None, steps=100)
    default = optim.fit(rosenbrock, START, optim.adam(0.05), steps=100)
    assert jnp.array_equal(explicit.params, default.params)


def test_data_free_fit_works_under_vmap():
    """A data-free objective is traceable as any other (a sweep over learning rates)."""

    def final(lr):
        return optim.fit(rosenbrock, START, optim.sgd(lr), steps=20).losses[-1]

    losses = jax.vmap(final)(jnp.array([1e-4, 1e-3]))
    assert losses.shape == (2,) and bool(jnp.all(losses < 4.0))


def test_sweep_trains_an_objective_without_data():
    result = optim.sweep(
        rosenbrock, START, optim.adam, None, grid={"learning_rate": [1e-3, 5e-2]}, steps=200
    )
    assert result.best == {"learning_rate": 5e-2} and result.final_loss.shape == (2,)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 1}, "give steps=, not epochs, batch_size or accumulate"),
        ({"accumulate": 2}, "give steps=, not epochs, batch_size or accumulate"),
    ],
)
def test_data_free_fit_refuses_options_that_need_data(options, message):
    with pytest.raises(ValueError, match=message):
        optim.fit(rosenbrock, START, optim.sgd(0.01), None, steps=3, **options)


def test_a_loss_that_needs_a_batch_without_data_says_so():
    with pytest.raises(TypeError, match=r"data=None calls loss_fn\(params\) without a batch"):
        optim.fit(squared_error, jnp.zeros(()), optim.sgd(0.1), steps=3)


def mlp_loss(model, batch):
    x, y = batch
    return jnp.mean((model(x) - y) ** 2)


DATA = (jnp.ones((4, 2)), jnp.ones((4, 1)))


@pytest.mark.parametrize(
    ("params", "where", "build"),
    [
        (models.MLP, "params", "models.MLP.init(key, sizes)"),
        ({"net": models.MLP}, "params['net']", "models.MLP.init(key, sizes)"),
        (models.LinearRegression, "params", "models.LinearRegression.init(key, in_features)"),
    ],
)
def test_a_model_class_where_a_model_belongs(params, where, build):
    with pytest.raises(TypeError) as info:
        optim.fit(mlp_loss, params, optim.sgd(0.1), DATA, steps=3)
    message = str(info.value)
    assert message.startswith(f"{where} is the class ") and "not an instance" in message
    assert build in message


def test_sweep_names_a_model_class_too():
    with pytest.raises(
        TypeError, match=r"params is the class MLP.*models\.MLP\.init\(key, sizes\)"
    ):
        optim.sweep(mlp_loss, models.MLP, optim.sgd, DATA, grid={"learning_rate": [0.1]}, steps=3)


def test_seeds_that_would_train_identical_copies_warn():
    with pytest.warns(UserWarning, match=r"seeds=3 trains identical copies") as record:
        result = optim.sweep(
            squared_error,
            jnp.zeros(()),
            optim.sgd,
            jnp.ones(8),
            grid={"learning_rate": [0.1]},
            seeds=3,
            steps=5,
        )
    assert record[0].filename == __file__  # attributed to the caller of sweep
    assert len(set(result.final_loss.ravel().tolist())) == 1  # what the warning is about


@pytest.mark.parametrize(
    "options",
    [
        {"params": lambda key: jax.random.normal(key, ())},  # each seed its own initial params
        {"params": jnp.zeros(()), "batch_size": 2},  # each seed its own minibatches
        {"params": jnp.zeros(()), "seeds": 1},
    ],
    ids=["initialiser", "minibatches", "one-seed"],
)
def test_seeds_that_differ_do_not_warn(options):
    options = {"seeds": 3, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.sweep(
            squared_error,
            options.pop("params"),
            optim.sgd,
            jnp.ones(8),
            grid={"learning_rate": [0.1]},
            steps=5,
            **options,
        )
