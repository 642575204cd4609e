"""L-BFGS and the zoom line search (optim/optimizers/_lbfgs.py, _linesearch.py): convergence,
compilation, extra arguments, state shared with optax, complex parameters, errors, and lbfgs
inside optim.fit. Their trajectories are compared with optax's in tests/test_optax_parity.py
(records of tests/parity_table.py's LBFGS: the end point, the loss and the line-search
iterations at every iteration).
"""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import (
    FLOAT32_BOUND,
    assert_signature_extends_optax,
    descend_with_line_search,
    relative_deviation,
)
from parity_table import OURS, rosenbrock, rosenbrock_start

import optim


def test_converges_on_rosenbrock():
    """From the classical start (-1.2, 1) to within 1e-6 of the minimum (1, 1) in 50 steps
    (the 5-dimensional start of the parity cases gets there too, as optax does)."""
    params, values, _ = descend_with_line_search(
        OURS, OURS.lbfgs(), rosenbrock, {"x": jnp.array([-1.2, 1.0])}, True, 50
    )
    assert jnp.max(jnp.abs(params["x"] - 1.0)) <= 1e-6
    assert values[-1] <= 1e-12


def test_one_compilation_and_a_fixed_state_structure():
    """The optimizer is a jit argument: new float hyperparameters reuse the program; the
    state keeps its shapes, dtypes and weak types from init on (it is a scan carry)."""

    @jax.jit
    def step(tx, params, state):
        value, grad = jax.value_and_grad(rosenbrock)(params)
        return tx.update(grad, state, params, value=value, grad=grad, value_fn=rosenbrock)

    def signature(tree):
        return jax.tree.map(lambda x: (x.shape, x.dtype, x.weak_type), tree)

    params = rosenbrock_start()
    for lr, curv in [(1.0, 0.9), (0.5, 0.7)]:
        tx = OURS.lbfgs(lr, linesearch=OURS.scale_by_zoom_linesearch(20, curv_rtol=curv))
        state = tx.init(params)
        _, new_state = step(tx, params, state)
        assert signature(new_state) == signature(state)
        assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert step._cache_size() == 1
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(tx))


def test_extra_arguments_reach_value_fn():
    """Keyword arguments other than value/grad/value_fn are the loss's own (a batch)."""

    def loss(params, x, y):
        return jnp.mean((x @ params - y) ** 2)

    x = jax.random.normal(jax.random.PRNGKey(0), (8, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5])
    tx = OURS.lbfgs()

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(loss)(params, x, y)
        updates, state = tx.update(
            grad, state, params, value=value, grad=grad, value_fn=loss, x=x, y=y
        )
        return optim.apply_updates(params, updates), state, value, grad

    params = jnp.zeros(3)
    state = tx.init(params)
    for _ in range(10):
        params, state, value, grad = step(params, state)
    assert jnp.allclose(params, jnp.array([1.0, -2.0, 0.5]), atol=1e-4)
    # An extra argument value_fn does not take is refused, as in optax.
    with pytest.raises(TypeError, match=r"Unexpected keyword arguments \['z'\]"):
        tx.update(grad, state, params, value=value, grad=grad, value_fn=loss, x=x, y=y, z=1)
    with pytest.raises(TypeError, match=r"\['value_fn'\]"):
        tx.update(grad, state, params, value=value, grad=grad)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(grad, state, value=value, grad=grad, value_fn=loss)


def test_state_interoperates_with_optax():
    """Same field names, so optax's value_and_grad_from_state reads our state and ours
    reads optax's."""
    params = rosenbrock_start()
    ours, theirs = OURS.lbfgs(), optax.lbfgs()
    ours_state, their_state = ours.init(params), theirs.init(params)
    assert [s._fields for s in ours_state] == [s._fields for s in their_state]
    assert ours_state[2].info._fields == their_state[2].info._fields

    @jax.jit
    def crossed(params, ours_state, their_state):
        value, grad = jax.value_and_grad(rosenbrock)(params)
        args = dict(value=value, grad=grad, value_fn=rosenbrock)
        _, ours_state = ours.update(grad, ours_state, params, **args)
        _, their_state = theirs.update(grad, their_state, params, **args)
        return (
            optax.value_and_grad_from_state(rosenbrock)(params, state=ours_state),
            OURS.value_and_grad_from_state(rosenbrock)(params, state=their_state),
        )

    from_ours, from_theirs = crossed(params, ours_state, their_state)
    assert jnp.isfinite(from_ours[0]) and from_ours[0] < rosenbrock(params)
    assert jnp.array_equal(from_ours[0], from_theirs[0])
    assert jnp.array_equal(from_ours[1]["x"], from_theirs[1]["x"])


def test_complex_parameters_match_the_real_problem():
    """optax's own check: L-BFGS on z in C^2 finds what it finds on (Re z, Im z) in R^2x2.
    ``grad`` is the conjugate of jax.grad's for complex leaves (see
    optim/optimizers/_linesearch.py)."""
    mat = jnp.array([[1, -2], [3, 4], [-4 + 2j, 5 - 3j], [-2 - 2j, 6]])

    def f_complex(z):
        return jnp.sum(jnp.abs(mat @ z) ** 1.5)

    def f_real(x):
        return f_complex(x[0] + 1j * x[1])

    z0 = jnp.array([1 - 1j, 0 + 1j])
    z, _, _ = descend_with_line_search(OURS, OURS.lbfgs(), f_complex, z0, True, 30)
    x, _, _ = descend_with_line_search(
        OURS, OURS.lbfgs(), f_real, jnp.stack([z0.real, z0.imag]), True, 30
    )
    assert jnp.allclose(z, x[0] + 1j * x[1], atol=1e-5)
    assert jnp.max(jnp.abs(z)) < 1e-5


def test_non_array_leaves_pass_through():
    """Leaves that are not arrays (a config int, a name) get None updates and reach value_fn
    unchanged."""

    def loss(p):
        return jnp.sum(jnp.abs(p["w"] - 1.0) ** p["power"])

    def model(w):
        return {"w": w, "power": 2, "name": "model"}

    tx = OURS.lbfgs()
    value_and_grad = OURS.value_and_grad_from_state(loss)
    passed_through = []

    @jax.jit
    def step(w, state):
        params = model(w)
        value, grad = value_and_grad(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=loss)
        params = optim.apply_updates(params, updates)
        passed_through.append(updates["power"] is None and params["name"] == "model")
        return params["w"], state

    w = jnp.array([3.0, -1.0])
    state = tx.init(model(w))
    for _ in range(3):
        w, state = step(w, state)
    assert passed_through == [True]  # traced once
    assert jnp.allclose(w, 1.0)


def test_verbose_reports_a_failed_search(capfd):
    """An ascent direction: no stepsize decreases the loss; verbose says so."""
    tx = OURS.chain(OURS.scale(1.0), OURS.scale_by_zoom_linesearch(3, verbose=True))
    params = jnp.array([1.0, 2.0])
    value, grad = jax.value_and_grad(lambda p: jnp.sum(p**2))(params)
    _, state = tx.update(
        grad, tx.init(params), params, value=value, grad=grad, value_fn=lambda p: jnp.sum(p**2)
    )
    jax.effects_barrier()
    assert "decrease error" in capfd.readouterr().out
    assert state[1].info.num_linesearch_steps == 3 and state[1].info.decrease_error > 0


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: OURS.lbfgs(memory_size=0), ValueError, "memory_size"),
        (lambda: OURS.lbfgs(-1.0), ValueError, "learning_rate"),
        (lambda: OURS.scale_by_lbfgs(2.5), TypeError, "memory_size"),
        (lambda: OURS.scale_by_zoom_linesearch(0), ValueError, "max_linesearch_steps"),
        (lambda: OURS.scale_by_zoom_linesearch(5.0), TypeError, "max_linesearch_steps"),
        (lambda: OURS.scale_by_zoom_linesearch(5, max_learning_rate=0.0), ValueError, "max_l"),
        (lambda: OURS.scale_by_zoom_linesearch(5, tol=-1.0), ValueError, "tol"),
        (lambda: OURS.scale_by_zoom_linesearch(5, increase_factor=0.0), ValueError, "increase"),
        (lambda: OURS.scale_by_zoom_linesearch(5, slope_rtol=2.0), ValueError, "slope_rtol"),
        (lambda: OURS.scale_by_zoom_linesearch(5, curv_rtol=-0.1), ValueError, "curv_rtol"),
        (lambda: OURS.scale_by_zoom_linesearch(5, approx_dec_rtol=math.nan), ValueError, "approx"),
        (
            lambda: OURS.scale_by_zoom_linesearch(5, stepsize_precision=-1.0),
            ValueError,
            "stepsize_precision",
        ),
        (
            lambda: OURS.scale_by_zoom_linesearch(5, initial_guess_strategy="two"),
            ValueError,
            "initial_guess_strategy",
        ),
    ],
)
def test_bad_hyperparameters_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


# The public names of L-BFGS and of the line searches.
LBFGS = ("ScaleByLBFGSState", "lbfgs", "scale_by_lbfgs")
LINESEARCH = (
    "ScaleByBacktrackingLinesearchState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "scale_by_backtracking_linesearch",
    "scale_by_zoom_linesearch",
    "value_and_grad_from_state",
)


def test_signatures_match_optax():
    for names in (LBFGS, LINESEARCH):
        for name in names:
            if name[0].isupper():
                continue
            assert_signature_extends_optax(
                getattr(optim, name), getattr(optax, name), name, exact=True
            )
    default = inspect.signature(OURS.lbfgs).parameters["linesearch"].default
    assert repr(default) == (
        "scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy='one')"
    )


# --- lbfgs inside optim.fit ----------------------------------------------------------------------


def _regression_data(n: int = 32):
    kx, kn = jax.random.split(jax.random.PRNGKey(3))
    x = jax.random.normal(kx, (n, 4))
    y = x @ jnp.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * jax.random.normal(kn, (n,))
    return x, y


def _mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


@pytest.mark.parametrize("lib", [optim, optax], ids=["optim", "optax"])
def test_fit_runs_lbfgs_with_its_line_search(lib):
    """fit hands a line-search optimizer ``grad=`` and ``value_fn=`` (the loss on the step's
    batch): full-batch fit equals the hand loop of optax's docs, step for step, with our
    lbfgs and with optax's."""
    data = _regression_data()
    params = {"w": jnp.zeros(4), "b": jnp.zeros(())}
    tx = lib.lbfgs()
    result = optim.fit(_mse, params, tx, data, steps=15)

    def loss(p):
        return _mse(p, data)

    hand, values, _ = descend_with_line_search(
        lib if lib is optax else OURS, tx, loss, params, False, 15
    )
    assert relative_deviation(result.params, hand) <= FLOAT32_BOUND
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=FLOAT32_BOUND), result.losses, values
    )
    # Least squares: L-BFGS reaches the closed-form optimum.
    x1 = jnp.concatenate([data[0], jnp.ones((32, 1))], axis=1)
    optimum = jnp.linalg.lstsq(x1, data[1])[0]
    np.testing.assert_allclose(result.params["w"], optimum[:4], atol=1e-4)


def test_fit_lbfgs_on_minibatches_searches_each_batch():
    """With minibatches the line search evaluates the loss on the step's own batch: the
    run converges on a consistent least-squares problem (the same optimum for every batch)."""
    x, _ = _regression_data(64)
    y = x @ jnp.array([1.0, -2.0, 0.5, 3.0]) + 0.7
    result = optim.fit(
        _mse,
        {"w": jnp.zeros(4), "b": jnp.zeros(())},
        optim.lbfgs(),
        (x, y),
        steps=30,
        batch_size=16,
        key=jax.random.PRNGKey(0),
    )
    np.testing.assert_allclose(result.params["w"], [1.0, -2.0, 0.5, 3.0], atol=1e-3)
    np.testing.assert_allclose(result.params["b"], 0.7, atol=1e-3)


def test_fit_refuses_lbfgs_with_accumulation():
    with pytest.raises(ValueError, match=r"accumulate=2 .*line-search optimizer \(lbfgs\)"):
        optim.fit(
            _mse,
            {"w": jnp.zeros(4), "b": jnp.zeros(())},
            optim.lbfgs(),
            _regression_data(),
            steps=2,
            batch_size=8,
            accumulate=2,
            key=jax.random.PRNGKey(0),
        )
