"""fit's engine: epochs, host iterators, chunks, evaluation, early stopping, progress,
gradient accumulation and non-finite skipping."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optim

PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}


def _data(n: int = 40, key: int = 0):
    kx, kn = jax.random.split(jax.random.PRNGKey(key))
    x = jax.random.uniform(kx, (n, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * jax.random.normal(kn, (n,))
    return x, y


def mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def _seen_indices(n, batch_size, epochs, drop_last):
    """Train on data whose 'x' is the example index; record which indices each step saw."""
    index = jnp.arange(n, dtype=jnp.float32)

    def loss(params, batch):
        return jnp.sum(params["w"] * 0.0), batch  # aux: the batch itself

    result = optim.fit(
        loss,
        {"w": jnp.zeros(())},
        optim.sgd(0.1),
        index,
        epochs=epochs,
        batch_size=batch_size,
        drop_last=drop_last,
        key=jax.random.PRNGKey(0),
        has_aux=True,
    )
    return result


def test_epochs_visit_every_example_once_per_epoch_with_fresh_shuffles():
    result = _seen_indices(n=12, batch_size=4, epochs=3, drop_last=True)
    seen = np.asarray(result.aux).reshape(3, 12)
    for epoch in seen:
        assert sorted(epoch.tolist()) == list(range(12))
    assert not np.array_equal(seen[0], seen[1])
    assert result.losses.shape == (9,)


def test_drop_last_false_keeps_the_partial_batch():
    def loss(params, batch):
        return jnp.sum(params["w"] * 0.0) + jnp.sum(batch * 0.0), jnp.sum(batch)

    index = jnp.arange(10, dtype=jnp.float32)
    kept = optim.fit(
        loss,
        {"w": jnp.zeros(())},
        optim.sgd(0.1),
        index,
        epochs=2,
        batch_size=4,
        drop_last=False,
        key=jax.random.PRNGKey(0),
        has_aux=True,
    )
    assert kept.losses.shape == (6,)  # 3 steps an epoch: 4 + 4 + 2
    sums = np.asarray(kept.aux).reshape(2, 3).sum(axis=1)
    np.testing.assert_allclose(sums, [45.0, 45.0])  # every example once per epoch
    dropped = optim.fit(
        loss,
        {"w": jnp.zeros(())},
        optim.sgd(0.1),
        index,
        epochs=2,
        batch_size=4,
        drop_last=True,
        key=jax.random.PRNGKey(0),
        has_aux=True,
    )
    assert dropped.losses.shape == (4,)


def test_chunked_run_equals_one_scan():
    data = _data()
    kwargs = dict(steps=30, batch_size=8, key=jax.random.PRNGKey(1))
    whole = optim.fit(mse, PARAMS, optim.adam(0.05), data, **kwargs)
    chunked = optim.fit(mse, PARAMS, optim.adam(0.05), data, chunk_size=7, **kwargs)
    np.testing.assert_array_equal(whole.losses, chunked.losses)
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(chunked), strict=True):
        np.testing.assert_array_equal(a, b)


def test_host_iterator_of_batches_equals_arrays():
    x, y = _data(40)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 40, 8)] * 3  # 15 batches
    from_iterator = optim.fit(mse, PARAMS, optim.sgd(0.1), iter(batches), chunk_size=4)
    assert from_iterator.losses.shape == (15,)
    params, state = PARAMS, optim.sgd(0.1).init(PARAMS)
    for t, batch in enumerate(batches):
        loss, grads = jax.value_and_grad(mse)(params, batch)
        np.testing.assert_allclose(from_iterator.losses[t], loss, rtol=1e-5)
        updates, state = optim.sgd(0.1).update(grads, state, params)
        params = optim.apply_updates(params, updates)
    limited = optim.fit(mse, PARAMS, optim.sgd(0.1), iter(batches), steps=6)
    assert limited.losses.shape == (6,)


def test_evaluation_history_and_accuracy():
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (60, 2))
    y = (x[:, 0] > 0).astype(jnp.int32)

    class Linear:  # a minimal classifier: params(x) -> logits
        def __init__(self, w):
            self.w = w

        def __call__(self, x):
            return x @ self.w

    jax.tree_util.register_pytree_node(Linear, lambda m: ((m.w,), None), lambda _, c: Linear(*c))

    def loss(model, batch):
        bx, by = batch
        logits = model(bx)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(by.shape[0]), by])

    result = optim.fit(
        loss,
        Linear(jnp.zeros((2, 2))),
        optim.adam(0.1),
        (x, y),
        steps=50,
        eval_data=(x, y),
        eval_every=10,
        metrics=["loss", "accuracy"],
    )
    np.testing.assert_array_equal(result.eval_steps, [10, 20, 30, 40, 50])
    assert result.eval_metrics["loss"].shape == (5,)
    assert float(result.eval_metrics["accuracy"][-1]) > 0.95
    assert float(result.eval_metrics["loss"][-1]) < float(result.eval_metrics["loss"][0])


def test_custom_metric_and_final_evaluation_without_eval_every():
    data = _data()
    result = optim.fit(
        mse,
        PARAMS,
        optim.sgd(0.1),
        data,
        steps=5,
        eval_data=data,
        metrics={"bias": lambda p, b: p["b"]},
    )
    np.testing.assert_array_equal(result.eval_steps, [5])
    np.testing.assert_allclose(result.eval_metrics["bias"], [result.params["b"]])


def test_early_stopping_restores_the_best_params():
    train, valid = _data(40, key=0), _data(40, key=1)
    # A learning rate that first helps, then diverges: validation loss goes down, then up.
    lr = optim.piecewise_constant_schedule(0.1, {20: 30.0})
    result = optim.fit(
        mse,
        PARAMS,
        optim.sgd(lr),
        train,
        steps=200,
        eval_data=valid,
        eval_every=5,
        early_stopping=optim.EarlyStopping(patience=2),
    )
    values = np.asarray(result.eval_metrics["loss"])
    assert result.losses.shape[0] < 200  # stopped early
    assert result.best_step == int(result.eval_steps[np.argmin(values)])
    np.testing.assert_allclose(mse(result.params, valid), values.min(), rtol=1e-5)


def test_progress_bar_updates_between_chunks(capsys):
    optim.fit(mse, PARAMS, optim.sgd(0.1), _data(), steps=20, progress=True, chunk_size=5)
    err = capsys.readouterr().err
    assert "20/20" in err and "loss=" in err


def test_accumulation_equals_the_big_batch():
    data = _data(48)
    big = optim.fit(
        mse, PARAMS, optim.adam(0.05), data, steps=20, batch_size=24, key=jax.random.PRNGKey(2)
    )
    micro = optim.fit(
        mse,
        PARAMS,
        optim.adam(0.05),
        data,
        steps=20,
        batch_size=24,
        key=jax.random.PRNGKey(2),
        accumulate=4,
    )
    # Mean of four equal-sized microbatch means = the batch mean, summed in another order.
    np.testing.assert_allclose(micro.losses, big.losses, rtol=2e-6)
    for a, b in zip(jax.tree.leaves(micro.params), jax.tree.leaves(big.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)


def test_accumulate_must_divide_the_batch():
    with pytest.raises(ValueError, match="accumulate=3 must divide the batch size"):
        optim.fit(
            mse,
            PARAMS,
            optim.sgd(0.1),
            _data(),
            steps=2,
            batch_size=8,
            key=jax.random.PRNGKey(0),
            accumulate=3,
        )


def _poisoned(n=40, bad=(3, 4)):
    x, y = _data(n)
    return x, y.at[jnp.asarray(bad)].set(jnp.nan)


def test_skip_nonfinite_leaves_params_and_state_untouched():
    x, y = _poisoned()
    # Full batch with one NaN target: every step is non-finite -> all skipped -> error.
    with pytest.raises(FloatingPointError, match="3 consecutive steps"):
        optim.fit(
            mse,
            PARAMS,
            optim.adam(0.1),
            (x, y),
            steps=10,
            skip_nonfinite=True,
            max_consecutive_skips=3,
            chunk_size=3,
        )
    # Minibatches of one: steps drawing examples 3 or 4 are skipped, the others train.
    result = optim.fit(
        mse,
        PARAMS,
        optim.adam(0.1),
        (x, y),
        steps=60,
        batch_size=1,
        key=jax.random.PRNGKey(0),
        skip_nonfinite=True,
    )
    skipped = np.asarray(result.skipped)
    assert 0 < skipped.sum() < 60
    assert np.all(np.isnan(np.asarray(result.losses)[skipped]))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(result.params))
    count = int(result.opt_state[0].count)
    assert count == 60 - skipped.sum()  # Adam's counter (and bias correction) did not move


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"steps": 5, "eval_every": 2}, ValueError, "eval_every needs eval_data"),
        (
            {"steps": 5, "eval_data": "V", "metrics": ["loss", "f1"]},
            ValueError,
            "unknown metric 'f1'",
        ),
        ({"steps": 5, "eval_data": "V", "metrics": "loss"}, TypeError, "write \\['loss'\\]"),
        ({"steps": 5, "epochs": 2}, ValueError, "give steps or epochs, not both"),
        ({}, ValueError, "give steps="),
        ({"epochs": 2, "batch_size": 4}, ValueError, "key is required with epochs"),
        (
            {"steps": 5, "eval_data": "V", "early_stopping": optim.EarlyStopping()},
            ValueError,
            "early_stopping needs eval_data and eval_every",
        ),
        (
            {
                "steps": 5,
                "eval_data": "V",
                "eval_every": 1,
                "early_stopping": optim.EarlyStopping(metric="accuracy"),
            },
            ValueError,
            "early_stopping.metric='accuracy' is not among the metrics",
        ),
        ({"steps": 5, "checkpoint_every": 2}, ValueError, "checkpoint_every needs checkpoint_dir"),
        ({"steps": 5, "resume": True}, ValueError, "resume=True needs checkpoint_dir"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    data = _data()
    kwargs = {k: (data if v == "V" else v) for k, v in kwargs.items()}
    with pytest.raises(error, match=match):
        optim.fit(mse, PARAMS, optim.sgd(0.1), data, **kwargs)


def test_host_work_under_a_transformation_is_an_error():
    data = _data()
    with pytest.raises(ValueError, match="fit is being traced"):
        jax.vmap(
            lambda lr: optim.fit(mse, PARAMS, optim.sgd(lr), data, steps=3, progress=True).losses
        )(jnp.array([0.1, 0.2]))


def test_traced_fit_evaluates_inside_the_program():
    data = _data()
    out = jax.vmap(
        lambda lr: optim.fit(
            mse, PARAMS, optim.sgd(lr), data, steps=10, eval_data=data, eval_every=5
        ).eval_metrics["loss"]
    )(jnp.array([0.1, 0.2]))
    assert out.shape == (2, 2)


# --- flat buffers -------------------------------------------------------------------------


def _many_leaves(n_leaves=20):
    keys = jax.random.split(jax.random.PRNGKey(0), n_leaves)
    params = {f"w{i}": jax.random.normal(k, (3,)) for i, k in enumerate(keys)}
    params["half"] = jnp.ones((2, 2), jnp.bfloat16)
    params["name"] = "model"  # a constant leaf among them
    return params


def _many_loss(params, batch):
    arrays = [v for k, v in sorted(params.items()) if k != "name"]
    total = sum(jnp.sum((a.astype(jnp.float32) * batch[0] - 1.0) ** 2) for a in arrays)
    return total / batch.shape[0]


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.adamw(0.05, weight_decay=0.1),
        lambda: optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.1, momentum=0.9)),
    ],
    ids=["adamw", "clip-sgd"],
)
def test_flat_buffers_give_the_per_leaf_numbers(make):
    params, data = _many_leaves(), jnp.linspace(0.5, 1.5, 16)[:, None] * jnp.ones((16, 1))
    per_leaf = optim.fit(_many_loss, params, make(), data, steps=25, flatten=False)
    flat = optim.fit(_many_loss, params, make(), data, steps=25, flatten=True)
    # Elementwise maths is identical; only the global norm sums in another order.
    np.testing.assert_allclose(flat.losses, per_leaf.losses, rtol=1e-6)
    assert jax.tree.structure(flat.opt_state) == jax.tree.structure(per_leaf.opt_state)
    for a, b in zip(
        jax.tree.leaves((flat.params, flat.opt_state)),
        jax.tree.leaves((per_leaf.params, per_leaf.opt_state)),
        strict=True,
    ):
        if isinstance(a, str):
            assert a == b
            continue
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(
            np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=1e-6, atol=1e-7
        )
    assert flat.params["name"] == "model" and flat.params["half"].dtype == jnp.bfloat16


def test_flatten_is_refused_for_per_leaf_optimizers():
    masked = optim.adamw(
        0.1, mask={f"w{i}": i % 2 == 0 for i in range(20)} | {"half": True, "name": False}
    )
    with pytest.raises(ValueError, match="flatten=True needs an elementwise optimizer"):
        optim.fit(_many_loss, _many_leaves(), masked, jnp.ones((4, 1)), steps=1, flatten=True)
    # "auto" falls back to the per-leaf path for it.
    result = optim.fit(_many_loss, _many_leaves(), masked, jnp.ones((4, 1)), steps=2)
    assert result.losses.shape == (2,)


def test_a_second_fit_with_evaluation_reuses_the_compiled_program():
    """The built-in "loss" metric is a value (equal for the same loss function), not a new
    closure per call: a second fit with the same loss, optimizer kind and shapes compiles
    nothing (it used to compile its chunk again on every call that had eval_data)."""
    from optim.train import _step

    data = _data()
    optim.fit(mse, PARAMS, optim.adam(0.1), data, steps=4, eval_data=data, eval_every=2)
    compiled = _step.run_chunk._cache_size()
    result = optim.fit(mse, PARAMS, optim.adam(0.05), data, steps=4, eval_data=data, eval_every=2)
    assert _step.run_chunk._cache_size() == compiled
    assert result.eval_metrics["loss"].shape == (2,)
