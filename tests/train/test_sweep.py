"""``optim.sweep`` (a grid of ``fit`` runs as one vmapped program) and hypergradients."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optim
from optim.train import hypergradient_descent, sweep

STEPS = 20
LEARNING_RATES = [0.01, 0.1]
WEIGHT_DECAYS = [0.0, 0.5]


def _data(n: int = 64, key: int = 0, dtype=jnp.float32):
    """Noisy linear data whose first feature is always exactly zero (a constant pixel)."""
    kx, kn = jax.random.split(jax.random.PRNGKey(key))
    x = jax.random.uniform(kx, (n, 4), dtype).at[:, 0].set(0.0)
    y = x @ jnp.array([0.0, 1.0, -2.0, 0.5], dtype) + 0.3 + 0.1 * jax.random.normal(kn, (n,), dtype)
    return x, y


TRAIN, VALID = _data(key=0), _data(key=1)
PARAMS = {"w": jnp.zeros(4), "b": jnp.zeros(())}


def mse(params, batch):
    x, y = batch
    # A sum of products rather than x @ w: a GPU may run float32 matrix products in TF32,
    # with rounding that differs between the batched and the single program.
    return jnp.mean((jnp.sum(x * params["w"], axis=-1) + params["b"] - y) ** 2)


def init_params(key):
    return {"w": jax.random.normal(key, (4,)), "b": jnp.zeros(())}


def make_adamw(learning_rate, weight_decay):
    return optim.adamw(learning_rate, weight_decay=weight_decay)


def fit_alone(params, optimizer, key):
    """One ``fit`` run as the sweeps below make it (minibatches of 8)."""
    return optim.fit(mse, params, optimizer, TRAIN, steps=STEPS, batch_size=8, key=key)


def seeded(learning_rates, seeds, key=None):
    """sgd over learning rates and seeds, each seed initialising its own parameters."""
    grid = {"learning_rate": learning_rates}
    return sweep(
        mse,
        init_params,
        optim.sgd,
        TRAIN,
        grid=grid,
        seeds=seeds,
        steps=STEPS,
        batch_size=8,
        key=key,
    )


def gd_sweep(learning_rates, mode="min"):
    """Full-batch gradient descent over learning rates, chosen by validation loss."""
    grid = {"learning_rate": learning_rates}
    return sweep(
        mse,
        PARAMS,
        optim.sgd,
        TRAIN,
        grid=grid,
        steps=STEPS,
        eval_fn=mse,
        eval_data=VALID,
        mode=mode,
    )


@pytest.fixture(scope="module")
def grid_sweep():
    """adamw over a 2 x 2 grid with minibatches, chosen by validation loss."""
    grid = {"learning_rate": LEARNING_RATES, "weight_decay": WEIGHT_DECAYS}
    return sweep(
        mse,
        PARAMS,
        make_adamw,
        TRAIN,
        grid=grid,
        steps=STEPS,
        batch_size=8,
        key=jax.random.PRNGKey(5),
        eval_fn=mse,
        eval_data=VALID,
    )


@pytest.fixture(scope="module")
def seeded_sweep():
    return seeded(LEARNING_RATES, [3, 7])


def test_sweep_equals_separate_fit_runs(grid_sweep):
    points = list(itertools.product(LEARNING_RATES, WEIGHT_DECAYS))
    for axis, name in enumerate(["learning_rate", "weight_decay"]):
        np.testing.assert_array_equal(grid_sweep.grid[name], np.float32([p[axis] for p in points]))
    assert grid_sweep.losses.shape == (4, STEPS)
    assert grid_sweep.final_loss.shape == grid_sweep.eval.shape == (4,)
    for i, (lr, wd) in enumerate(points):
        alone = fit_alone(PARAMS, make_adamw(lr, wd), jax.random.PRNGKey(5))
        # The same arithmetic, batched by vmap; XLA may fuse it differently: 1e-5.
        np.testing.assert_allclose(grid_sweep.losses[i], alone.losses, rtol=1e-5)
        for swept, single in zip(
            jax.tree.leaves(grid_sweep.params), jax.tree.leaves(alone.params), strict=True
        ):
            np.testing.assert_allclose(swept[i], single, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(grid_sweep.final_loss[i], mse(alone.params, TRAIN), rtol=1e-5)
        np.testing.assert_allclose(grid_sweep.eval[i], mse(alone.params, VALID), rtol=1e-5)
    np.testing.assert_array_equal(grid_sweep.score, grid_sweep.eval)
    assert grid_sweep.best_index == int(np.argmin(grid_sweep.eval))
    lr, wd = points[grid_sweep.best_index]
    assert grid_sweep.best == {"learning_rate": lr, "weight_decay": wd}


def test_seeds_axis_initialises_and_batches_per_seed(seeded_sweep):
    assert seeded_sweep.losses.shape == (2, 2, STEPS)
    assert seeded_sweep.final_loss.shape == (2, 2) and seeded_sweep.score.shape == (2,)
    assert seeded_sweep.eval is None
    for (i, lr), (j, seed) in itertools.product(enumerate(LEARNING_RATES), enumerate([3, 7])):
        init_key, data_key = jax.random.split(jax.random.PRNGKey(seed))
        alone = fit_alone(init_params(init_key), optim.sgd(lr), data_key)
        np.testing.assert_allclose(seeded_sweep.losses[i, j], alone.losses, rtol=1e-5)
    assert not np.allclose(seeded_sweep.losses[0, 0], seeded_sweep.losses[0, 1])
    np.testing.assert_allclose(seeded_sweep.score, seeded_sweep.final_loss.mean(axis=1))


def test_seeds_with_a_key_fold_it_in(seeded_sweep):
    base = jax.random.PRNGKey(11)
    result = seeded(LEARNING_RATES, 2, key=base)  # the program above again: no new compile
    for seed in range(2):
        init_key, data_key = jax.random.split(jax.random.fold_in(base, seed))
        alone = fit_alone(init_params(init_key), optim.sgd(LEARNING_RATES[1]), data_key)
        np.testing.assert_allclose(result.losses[1, seed], alone.losses, rtol=1e-5)


# A learning rate of 10 makes gradient descent on this data diverge to inf/NaN in 20 steps.
DIVERGING = [10.0, 0.01, 0.3]


@pytest.mark.parametrize(("mode", "best"), [("min", 0.3), ("max", 0.01)])
def test_diverging_point_is_never_best(mode, best):
    result = gd_sweep(DIVERGING, mode)
    assert not np.isfinite(result.eval[0]) and not np.isfinite(result.final_loss[0])
    # np.argmin and np.argmax would pick the NaN: the best is the best finite point.
    assert result.best == {"learning_rate": best}
    assert result.best_index == DIVERGING.index(best)
    assert result.table().splitlines()[2].split()[-2:] == ["non-finite", "non-finite"]


def test_every_point_diverging_warns_and_has_no_best():
    with pytest.warns(RuntimeWarning, match="each has a run that diverged"):
        result = gd_sweep([10.0, 20.0, 30.0])
    assert result.best is None and result.best_index is None
    assert "No point has a finite eval: each has a run that diverged." in result.table()


def test_table_lists_every_point_and_marks_the_best(grid_sweep, seeded_sweep):
    lines = grid_sweep.table().splitlines()
    assert lines[0].split() == ["learning_rate", "weight_decay", "final", "loss", "eval"]
    rows = lines[2:-1]
    best = grid_sweep.best_index
    assert [row.startswith("*") for row in rows] == [i == best for i in range(4)]
    expected = [
        grid_sweep.grid["learning_rate"][best],
        grid_sweep.grid["weight_decay"][best],
        grid_sweep.final_loss[best],
        grid_sweep.eval[best],
    ]
    assert rows[best].split()[1:] == [f"{float(value):.4g}" for value in expected]
    assert lines[-1].startswith("* best by eval: learning_rate=")

    lines = seeded_sweep.table().splitlines()
    assert "final loss (mean ± std)" in lines[0]
    values = np.asarray(seeded_sweep.final_loss[0])
    assert f"{values.mean():.4g} ± {values.std():.2g}" in lines[2]
    lr = seeded_sweep.best["learning_rate"]
    assert lines[-1] == f"* best by final training loss, mean over 2 seeds: learning_rate={lr}"

    page = grid_sweep._repr_html_()
    assert page.startswith("<table>") and page.count("<tr") == 5
    assert page.count('style="font-weight:bold"') == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"grid": {}}, ValueError, "grid is empty"),
        ({"grid": [0.1]}, TypeError, "grid must be a dict"),
        (
            {"grid": {"learning_rte": [0.1]}},
            TypeError,
            r"grid name 'learning_rte' is not an argument of make_optimizer \(sgd\), which "
            r"accepts learning_rate, momentum, nesterov, accumulator_dtype; did you mean "
            r"'learning_rate'\?",
        ),
        (
            {"grid": {"momentum": [0.9]}},
            TypeError,
            r"make_optimizer \(sgd\) requires learning_rate, which grid does not give",
        ),
        (
            {"grid": {"learning_rate": [0.1, "fast"]}},
            TypeError,
            r"grid\['learning_rate'\] must hold real numbers, got str 'fast'",
        ),
        (
            {"grid": {"learning_rate": [True]}},
            TypeError,
            r"grid\['learning_rate'\] must hold real numbers, got bool True",
        ),
        ({"grid": {"learning_rate": 0.1}}, TypeError, r"for a single value write \[0.1\]"),
        ({"grid": {"learning_rate": []}}, ValueError, r"grid\['learning_rate'\] is empty"),
        ({"grid": {"learning_rate": [[0.1, 0.2]]}}, ValueError, r"flat.*got shape \(1, 2\)"),
        ({"grid": {"learning_rate": [0.1, np.nan]}}, ValueError, "must hold finite numbers"),
        ({"mode": "lowest"}, ValueError, "mode must be 'min' or 'max', got 'lowest'"),
        ({"mode": "max"}, ValueError, "mode='max' needs eval_fn"),
        ({"eval_fn": mse}, ValueError, "eval_fn and eval_data go together"),
        ({"seeds": 0}, ValueError, "seeds must be >= 1"),
        ({"seeds": [0.5]}, TypeError, "seeds must be None, a positive int"),
        ({"params": init_params}, ValueError, "params is a function of a PRNG key: pass key="),
        ({"batch_size": 8}, ValueError, "key is required when batch_size is set"),
        ({"steps": 0}, ValueError, "steps must be an int >= 1"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, error, match):
    arguments = {"params": PARAMS, "grid": {"learning_rate": [0.1]}, "steps": 5} | kwargs
    params = arguments.pop("params")
    with pytest.raises(error, match=match):
        sweep(mse, params, optim.sgd, TRAIN, **arguments)


def test_eval_fn_must_return_a_scalar():
    with pytest.raises(ValueError, match=r"eval_fn must return a scalar, got shape \(64,\)"):
        sweep(
            mse,
            PARAMS,
            optim.sgd,
            TRAIN,
            grid={"learning_rate": [0.1]},
            steps=5,
            eval_fn=lambda params, batch: batch[0] @ params["w"],
            eval_data=VALID,
        )


# --- hypergradients ---------------------------------------------------------------------------

# Each builds an optimizer from the learning rate and one more float hyperparameter.
HYPER_OPTIMIZERS = {
    "adam": lambda learning_rate, eps_root: optim.adam(learning_rate, eps_root=eps_root),
    "sgd-momentum": lambda learning_rate, momentum: optim.sgd(learning_rate, momentum=momentum),
}


def validation_loss(make_optimizer, learning_rate, other, train, valid):
    """The validation loss after 30 full-batch steps, as a function of the learning rate."""
    params = jax.tree.map(lambda p: p.astype(train[0].dtype), PARAMS)
    optimizer = make_optimizer(learning_rate, other)
    return mse(optim.fit(mse, params, optimizer, train, steps=30).params, valid)


# One compile per optimizer (and x64 mode), shared by a hypergradient and its neighbours.
value_and_hypergradient = jax.jit(jax.value_and_grad(validation_loss, argnums=1), static_argnums=0)


def hypergradient_x64(name, learning_rate, other):
    """``value_and_hypergradient`` on the float64 data, with 64-bit types enabled."""
    with jax.enable_x64(True):
        train, valid = _data(key=0, dtype=jnp.float64), _data(key=1, dtype=jnp.float64)
        value, grad = value_and_hypergradient(
            HYPER_OPTIMIZERS[name], learning_rate, other, train, valid
        )
        return float(value), float(grad)


@pytest.mark.parametrize(("name", "other"), [("adam", 1e-8), ("sgd-momentum", 0.9)])
def test_hypergradient_through_fit_matches_central_difference(name, other):
    # Learning rates are float32 leaves: lr and lr +- h are exact in float32, so the
    # difference quotient sees exactly the step h. Everything else runs in float64.
    lr, h = 2.0**-5, 2.0**-16
    _, grad = hypergradient_x64(name, lr, other)
    above, _ = hypergradient_x64(name, lr + h, other)
    below, _ = hypergradient_x64(name, lr - h, other)
    central = (above - below) / (2 * h)
    # Measured relative differences: 5e-8 (adam), 2e-7 (sgd-momentum). Two sources: the
    # truncation error h^2 f''' / 6 of the central difference (sgd-momentum's grows 16x, to
    # 4e-6, at 4h), and the gradient itself, which reaches the float32 leaf as a float32
    # cotangent (relative precision ~1e-7). Float64 rounding of the loss, ~1e-16 / h, is
    # negligible. Hence rtol 1e-6.
    assert abs(grad) > 1
    np.testing.assert_allclose(grad, central, rtol=1e-6)


def test_adam_hypergradient_is_finite_without_eps_root():
    # The zero feature gives a gradient entry that is exactly 0, so v = 0, where d sqrt(v)/dv
    # is infinite: optax's hypergradient is NaN there. Ours takes sqrt's derivative at 0 as 0
    # (optim._numerics.safe_sqrt), which is the derivative of the update (0 for that entry
    # whatever eps_root): the hypergradient matches the central difference as with eps_root.
    lr, h = 2.0**-5, 2.0**-16
    _, grad = hypergradient_x64("adam", lr, 0.0)
    above, _ = hypergradient_x64("adam", lr + h, 0.0)
    below, _ = hypergradient_x64("adam", lr - h, 0.0)
    assert np.isfinite(grad) and abs(grad) > 1
    np.testing.assert_allclose(grad, (above - below) / (2 * h), rtol=1e-6)


def test_hypergradient_descent_lowers_the_validation_loss():
    def objective(hyperparams):
        make_optimizer = HYPER_OPTIMIZERS["sgd-momentum"]
        return validation_loss(make_optimizer, hyperparams["learning_rate"], 0.9, TRAIN, VALID)

    result = hypergradient_descent(objective, {"learning_rate": 0.001}, steps=15, learning_rate=0.2)
    path = result.history["learning_rate"]
    assert path.shape == (16,) and result.losses.shape == (15,)
    np.testing.assert_allclose(path[0], 0.001, rtol=1e-6)
    np.testing.assert_allclose(result.losses[0], objective({"learning_rate": 0.001}), rtol=1e-5)
    assert float(result.hyperparams["learning_rate"]) == float(path[-1]) > 0.005
    assert float(objective(result.hyperparams)) < 0.5 * float(result.losses[0])


@pytest.mark.parametrize(
    ("hyperparams", "steps", "match"),
    [
        ({}, 5, "hyperparams must be a non-empty dict"),
        ({"learning_rate": 0.0}, 5, r"hyperparams\['learning_rate'\] must be a positive number"),
        ({"learning_rate": 0.1}, 0, "steps must be a positive int"),
    ],
)
def test_hypergradient_descent_bad_input(hyperparams, steps, match):
    with pytest.raises(ValueError, match=match):
        hypergradient_descent(lambda h: h["learning_rate"], hyperparams, steps=steps)
