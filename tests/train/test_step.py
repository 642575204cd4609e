"""optim.train's traceable core (train_step, train_loop), the declared line-search attribute
and the path ``fit`` records in its result."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from optim.train._step import needs_value_fn

PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}


def _data(n: int = 32):
    x = jax.random.uniform(jax.random.PRNGKey(0), (n, 3))
    return x, x @ jnp.array([1.0, -2.0, 0.5]) + 0.3


def mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def test_train_loop_is_fit_on_an_iterator_of_the_same_batches():
    tx, data = optim.adam(0.05), _data()
    batches = jax.tree.map(lambda a: jnp.stack([a] * 20), data)
    params, _, records = jax.jit(lambda p, s, b: optim.train.train_loop(mse, tx, p, s, b))(
        PARAMS, tx.init(PARAMS), batches
    )
    result = optim.fit(mse, PARAMS, tx, iter([data] * 20), progress=False)
    np.testing.assert_allclose(records.loss, result.losses, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), params, result.params)


def test_train_step_under_vmap_runs_one_model_per_learning_rate():
    data = _data()

    def one(lr):
        tx = optim.sgd(lr)
        params, state = PARAMS, tx.init(PARAMS)
        for _ in range(3):
            params, _, record = optim.train.train_step(mse, tx, params, state, data)
        return record.loss

    losses = jax.vmap(one)(jnp.array([0.0, 0.1, 0.5]))
    assert losses[0] > losses[1] > losses[2]


def test_train_step_skips_a_non_finite_step():
    tx = optim.sgd(0.1)
    bad = (jnp.full((4, 3), jnp.nan), jnp.ones(4))
    params, _, record = optim.train.train_step(
        mse, tx, PARAMS, tx.init(PARAMS), bad, skip_nonfinite=True
    )
    assert bool(record.skipped)
    jax.tree.map(np.testing.assert_array_equal, params, PARAMS)


def test_train_step_checks_its_arguments():
    tx = optim.sgd(0.1)
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        optim.train.train_step("mse", tx, PARAMS, tx.init(PARAMS), _data())
    with pytest.raises(ValueError, match="accumulate must be an int >= 1"):
        optim.train.train_step(mse, tx, PARAMS, tx.init(PARAMS), _data(), accumulate=0)


def test_line_searches_are_found_by_their_declared_attribute():
    assert needs_value_fn(optim.lbfgs(), PARAMS)
    assert needs_value_fn(optim.chain(optim.scale_by_backtracking_linesearch(5)), PARAMS)
    assert needs_value_fn(optax.lbfgs(), PARAMS)  # optax's, by its line-search state type
    assert not needs_value_fn(optim.lbfgs(linesearch=None), PARAMS)
    assert not needs_value_fn(optim.adam(0.1), PARAMS)


class _Record(NamedTuple):
    value: Any
    grad: Any


def test_a_state_with_value_and_grad_fields_does_not_switch_fit_to_line_search():
    tx = optax.GradientTransformation(
        lambda p: _Record(jnp.zeros(()), p),
        lambda u, s, p=None: (jax.tree.map(lambda g: -0.1 * g, u), s),
    )
    assert not needs_value_fn(optim.chain(tx), PARAMS)
    result = optim.fit(mse, PARAMS, tx, _data(), steps=3, progress=False)
    assert result.path.line_search is False


def test_fit_result_records_its_path():
    result = optim.fit(mse, PARAMS, optim.adam(0.1), _data(), steps=4, progress=False)
    assert result.path == optim.train.FitPath(
        flat=False, progress=False, traced=False, line_search=False, chunks=1
    )
    flat = optim.fit(
        mse, PARAMS, optim.adam(0.1), _data(), steps=4, chunk_size=2, flatten=True, progress=False
    )
    assert flat.path.flat and flat.path.chunks == 2
    assert optim.fit(mse, PARAMS, optim.lbfgs(), _data(), steps=2, progress=False).path.line_search
    traced = jax.jit(lambda p: optim.fit(mse, p, optim.sgd(0.1), _data(), steps=2))(PARAMS)
    assert traced.path.traced and not traced.path.progress
