"""``optim.fit``: one ``lax.scan`` that equals a hand-written loop and is fully traceable."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim


def _data(n: int = 64, key: int = 0):
    kx, kn = jax.random.split(jax.random.PRNGKey(key))
    x = jax.random.uniform(kx, (n, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * jax.random.normal(kn, (n,))
    return x, y


PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}


def mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def python_loop(tx, params, data, steps, batch_size=None, key=None):
    """The loop a user would write by hand (a jitted step), drawing batches as fit documents."""
    state = tx.init(params)

    @jax.jit
    def step(params, state, batch):
        loss, grads = jax.value_and_grad(mse)(params, batch)
        updates, state = tx.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss

    losses = []
    for t in range(steps):
        batch = data if batch_size is None else optim.sample_batch(data, key, batch_size, t)
        params, state, loss = step(params, state, batch)
        losses.append(loss)
    return params, state, jnp.stack(losses)


@pytest.mark.parametrize(
    ("tx", "batch_size"),
    [(optim.sgd(0.1), None), (optim.adam(0.05), 8), (optim.sgd(0.05), 1)],
    ids=["gd", "adam-minibatch", "sgd-one-example"],
)
def test_fit_equals_python_loop(tx, batch_size):
    data = _data()
    key = jax.random.PRNGKey(3)
    result = optim.fit(mse, PARAMS, tx, data, steps=30, batch_size=batch_size, key=key)
    params, state, losses = python_loop(tx, PARAMS, data, 30, batch_size, key)
    # Same operations in the same order; XLA may fuse differently inside the scan: 1e-6.
    np.testing.assert_allclose(result.losses, losses, rtol=1e-6, atol=1e-7)
    for a, b in zip(
        jax.tree.leaves((result.params, result.opt_state)),
        jax.tree.leaves((params, state)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert result.losses.shape == (30,)
    assert result.losses[-1] < result.losses[0]


def test_full_batch_gradient_descent_converges_to_least_squares():
    x, y = _data()
    result = optim.fit(mse, PARAMS, optim.sgd(0.5), (x, y), steps=2000)
    design = np.c_[np.asarray(x), np.ones(len(x))]
    solution, *_ = np.linalg.lstsq(design, np.asarray(y), rcond=None)
    np.testing.assert_allclose(result.params["w"], solution[:3], atol=2e-3)
    np.testing.assert_allclose(result.params["b"], solution[3], atol=2e-3)


def test_minibatches_are_drawn_without_replacement_and_vary():
    data = (jnp.arange(10.0), jnp.arange(10.0))
    first = optim.sample_batch(data, jax.random.PRNGKey(0), 5, step=0)[0]
    second = optim.sample_batch(data, jax.random.PRNGKey(0), 5, step=1)[0]
    assert len(set(np.asarray(first).tolist())) == 5
    assert not np.array_equal(first, second)


def test_has_aux_stacks_aux_per_step():
    def loss_with_aux(params, batch):
        loss = mse(params, batch)
        return loss, {"twice": 2 * loss}

    result = optim.fit(loss_with_aux, PARAMS, optim.sgd(0.1), _data(), steps=5, has_aux=True)
    np.testing.assert_allclose(result.aux["twice"], 2 * result.losses, rtol=1e-6)


def test_optax_optimizer_in_fit():
    ours = optim.fit(mse, PARAMS, optim.adam(0.05), _data(), steps=20)
    theirs = optim.fit(mse, PARAMS, optax.adam(0.05), _data(), steps=20)
    np.testing.assert_allclose(ours.losses, theirs.losses, rtol=1e-5)


def test_vmap_over_learning_rate_inside_fit():
    lrs = jnp.array([0.01, 0.1, 0.3])
    data = _data()
    losses = jax.vmap(lambda lr: optim.fit(mse, PARAMS, optim.adam(lr), data, steps=25).losses)(lrs)
    assert losses.shape == (3, 25)
    for i, lr in enumerate([0.01, 0.1, 0.3]):
        single = optim.fit(mse, PARAMS, optim.adam(lr), data, steps=25).losses
        np.testing.assert_allclose(losses[i], single, rtol=1e-5)


def test_vmap_over_seeds_with_minibatches():
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    data = _data()
    losses = jax.vmap(
        lambda k: optim.fit(mse, PARAMS, optim.sgd(0.1), data, steps=10, batch_size=4, key=k).losses
    )(keys)
    assert losses.shape == (4, 10)
    assert not np.allclose(losses[0], losses[1])


def test_jit_of_fit():
    data = _data()
    run = jax.jit(lambda lr: optim.fit(mse, PARAMS, optim.sgd(lr), data, steps=10).losses[-1])
    assert float(run(0.1)) == pytest.approx(
        float(optim.fit(mse, PARAMS, optim.sgd(0.1), data, steps=10).losses[-1]), rel=1e-6
    )


def test_grad_of_fit_with_respect_to_learning_rate_matches_finite_difference():
    train, valid = _data(32, key=0), _data(32, key=1)

    def validation_loss(lr):
        params = optim.fit(mse, PARAMS, optim.sgd(lr, momentum=0.5), train, steps=20).params
        return mse(params, valid)

    with jax.enable_x64(True):
        lr = jnp.float64(0.05)
        grad = jax.grad(validation_loss)(lr)
        h = 1e-4
        finite = (validation_loss(lr + h) - validation_loss(lr - h)) / (2 * h)
    # Central difference error O(h^2) ~ 1e-8 relative here; the run is float32 inside: 1e-3.
    np.testing.assert_allclose(grad, finite, rtol=1e-3)
    assert abs(float(grad)) > 1e-3


def test_non_array_leaves_in_params_pass_through_fit():
    params = {
        "w": jnp.zeros(3),
        "b": jnp.zeros(()),
        "name": "linear",
        "act": jnp.tanh,
        "n": 3,
        "none": None,
    }

    def loss(p, batch):
        assert p["name"] == "linear" and p["n"] == 3 and p["none"] is None
        return mse(p, batch)

    result = optim.fit(loss, params, optim.adam(0.1), _data(), steps=5)
    assert result.params["name"] == "linear" and result.params["act"] is jnp.tanh
    assert result.params["n"] == 3 and result.params["none"] is None
    assert float(result.losses[-1]) < float(result.losses[0])


def test_value_and_grad_gives_none_for_non_array_leaves():
    params = {"w": jnp.ones(2), "act": jnp.tanh, "n": 2}
    loss, grads = optim.value_and_grad(lambda p, x: jnp.sum(p["act"](p["w"] * x)) * p["n"])(
        params, jnp.ones(2)
    )
    assert float(loss) == pytest.approx(2 * 2 * np.tanh(1.0), rel=1e-6)
    assert grads["act"] is None and grads["n"] is None
    np.testing.assert_allclose(grads["w"], 2 * (1 - jnp.tanh(1.0) ** 2), rtol=1e-6)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"steps": 0}, ValueError, "steps must be an int >= 1"),
        ({"steps": 2.5}, TypeError, "steps must be an int"),
        (
            {"steps": 5, "batch_size": 65, "key": jax.random.PRNGKey(0)},
            ValueError,
            r"batch_size=65 is larger than the data \(64 examples\)",
        ),
        (
            {"steps": 5, "batch_size": 0, "key": jax.random.PRNGKey(0)},
            ValueError,
            "batch_size must be an int >= 1",
        ),
        ({"steps": 5, "batch_size": 4}, ValueError, "key is required when batch_size is set"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        optim.fit(mse, PARAMS, optim.sgd(0.1), _data(), **kwargs)


def test_data_with_different_leading_sizes_is_rejected():
    x, y = _data()
    with pytest.raises(ValueError, match=r"data\[0\] has 64, data\[1\] has 63"):
        optim.fit(mse, PARAMS, optim.sgd(0.1), (x, y[:-1]), steps=1)


def test_integer_params_are_rejected():
    with pytest.raises(TypeError, match=r"params\['w'\] is an array of dtype int32"):
        optim.fit(
            mse,
            {"w": jnp.zeros(3, jnp.int32), "b": jnp.zeros(())},
            optim.sgd(0.1),
            _data(),
            steps=1,
        )


def test_non_scalar_loss_is_rejected():
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar loss, got shape \(64,\)"):
        optim.fit(
            lambda p, b: (b[0] @ p["w"] - b[1]) ** 2, PARAMS, optim.sgd(0.1), _data(), steps=1
        )


def test_not_an_optimizer_is_rejected():
    with pytest.raises(TypeError, match="optimizer must be a gradient transformation"):
        optim.fit(mse, PARAMS, 0.1, _data(), steps=1)
