"""scale_by_backtracking_linesearch against optax, in the hand-written loop of optax's docs:
``update(grads, state, params, value=, grad=, value_fn=, **batch)``.

The search makes the same evaluations of the loss in the same order with the same float32
arithmetic, so trajectories, stepsizes and evaluation counts are compared bit for bit (jitted
steps on CPU). Where ours deliberately differs (after a search that failed, complex
parameters) the tests check our behaviour only.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim

# An ill-conditioned quadratic: sgd(1.0) overshoots along the large eigenvalues, so most
# steps backtrack several times.
EIGENVALUES = jnp.array([0.5, 2.0, 7.0, 12.0])


def quadratic(params, shift=0.0):
    return 0.5 * jnp.sum(EIGENVALUES * (params["w"] - shift) ** 2) + jnp.sum(params["b"] ** 2)


PARAMS = {"w": jnp.array([1.0, -2.0, 3.0, 0.5]), "b": jnp.array([0.3, -0.7])}


def _hand_loop(m, steps=60, store_grad=False, batches=False, **options):
    """The loop of optax's docstring, jitted per step; returns params, stepsizes, counts."""
    solver = m.chain(
        m.sgd(learning_rate=1.0),
        m.scale_by_backtracking_linesearch(
            max_backtracking_steps=15, store_grad=store_grad, **options
        ),
    )
    shifts = jnp.linspace(0.0, 0.5, steps) if batches else jnp.zeros(steps)

    @jax.jit
    def step(params, state, shift):
        if store_grad:
            value, grad = m.value_and_grad_from_state(quadratic)(params, shift, state=state)
        else:
            value, grad = jax.value_and_grad(quadratic)(params, shift)
        updates, state = solver.update(
            grad, state, params, value=value, grad=grad, value_fn=quadratic, shift=shift
        )
        return m.apply_updates(params, updates), state

    params, state, history = PARAMS, solver.init(PARAMS), []
    for shift in shifts:
        params, state = step(params, state, shift)
        search = state[-1]
        history.append(
            (params, search.learning_rate, search.info.num_linesearch_steps, search.value)
        )
    return history


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"store_grad": True},
        {"batches": True},
        {"decrease_factor": 0.5, "increase_factor": 2.0, "slope_rtol": 0.3},
        {"max_learning_rate": 0.5, "atol": 1e-3},
    ],
    ids=["default", "store_grad", "value_fn_with_a_batch", "factors", "max_lr_atol"],
)
def test_trajectory_is_optax_bit_for_bit(options):
    ours, theirs = _hand_loop(optim, **options), _hand_loop(optax, **options)
    counts = [int(h[2]) for h in ours]
    assert max(counts) >= 3 and min(counts) >= 1  # the search backtracked
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        jax.tree.map(
            lambda x, y, step=step: np.testing.assert_array_equal(x, y, err_msg=f"step {step}"),
            a,
            b,
        )
    final = ours[-1][0]
    shift = 0.5 if options.get("batches") else 0.0
    assert quadratic(final, shift) < 1e-3 * quadratic(PARAMS, shift)


def test_state_is_optax_record():
    ours = optim.scale_by_backtracking_linesearch(5).init(PARAMS)
    theirs = optax.scale_by_backtracking_linesearch(5).init(PARAMS)
    assert type(ours).__name__ == type(theirs).__name__ == "ScaleByBacktrackingLinesearchState"
    assert ours._fields == theirs._fields == ("learning_rate", "value", "grad", "info")
    assert ours.info._fields == theirs.info._fields
    assert ours.grad is None
    stored = optim.scale_by_backtracking_linesearch(5, store_grad=True).init(PARAMS)
    their_stored = optax.scale_by_backtracking_linesearch(5, store_grad=True).init(PARAMS)
    # The same shape of tree (printed: the record classes are ours and optax's).
    assert str(jax.tree.structure(stored)) == str(jax.tree.structure(their_stored))
    for x, y in zip(jax.tree.leaves(stored), jax.tree.leaves(their_stored), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def test_docstring_numbers_with_value_and_grad_from_state():
    """optax's second docstring example: 5.04, 1.81, 0.653, 0.235, 0.0847."""

    def fn(params):
        return jnp.sum(params**2)

    solver = optim.chain(
        optim.sgd(learning_rate=1.0),
        optim.scale_by_backtracking_linesearch(max_backtracking_steps=15, store_grad=True),
    )
    params = jnp.array([1.0, 2.0, 3.0])
    state = solver.init(params)
    value_and_grad = optim.value_and_grad_from_state(fn)
    values = []
    for _ in range(5):
        value, grad = value_and_grad(params, state=state)
        updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=fn)
        params = optim.apply_updates(params, updates)
        values.append(f"{fn(params):.2E}")
    assert values == ["5.04E+00", "1.81E+00", "6.53E-01", "2.35E-01", "8.47E-02"]


def test_a_search_that_finds_nothing_takes_no_step_then_starts_again():
    """A loss that is NaN at every stepsize tried: stepsize 0 (as optax). The next search
    starts from max_learning_rate (optax would grow 0 and stay at 0 for ever)."""
    tx = optim.scale_by_backtracking_linesearch(3, max_learning_rate=0.5)
    params = {"w": jnp.array([1.0, 2.0])}
    grad = {"w": jnp.array([1.0, 1.0])}
    direction = {"w": -grad["w"]}
    state = tx.init(params)

    def nan_loss(p):
        return jnp.where(jnp.all(p["w"] == params["w"]), 1.0, jnp.nan)

    updates, state = tx.update(direction, state, params, value=1.0, grad=grad, value_fn=nan_loss)
    np.testing.assert_array_equal(updates["w"], [0.0, 0.0])
    assert state.learning_rate == 0.0 and np.isinf(state.info.decrease_error)
    assert state.info.num_linesearch_steps == 4  # max_backtracking_steps + 1 evaluations

    def loss(p):
        return jnp.sum(p["w"] ** 2)

    updates, state = tx.update(direction, state, params, value=5.0, grad=grad, value_fn=loss)
    assert state.learning_rate == 0.5  # restarted from max_learning_rate
    np.testing.assert_array_equal(updates["w"], [-0.5, -0.5])


def test_complex_parameters_descend():
    """grad is the gradient in the usual sense (the conjugate of jax.grad's, as for the zoom
    search and the optimizers); the slope is Re<grad, u>, so sgd's direction is accepted."""

    def loss(z):
        return jnp.sum(jnp.abs(z - (1.0 + 2.0j)) ** 2)

    solver = optim.chain(optim.sgd(1.0), optim.scale_by_backtracking_linesearch(20))
    z = jnp.array([0.0 + 0.0j, 3.0 - 1.0j])
    start = loss(z)
    state = solver.init(z)
    for _ in range(10):
        value, grad = jax.value_and_grad(loss)(z)
        grad = jnp.conj(grad)
        updates, state = solver.update(grad, state, z, value=value, grad=grad, value_fn=loss)
        z = optim.apply_updates(z, updates)
        assert state[-1].info.decrease_error == 0.0  # sufficient decrease met at every step
    assert loss(z) < 1e-4 * start


def test_extra_arguments_value_fn_does_not_take_are_refused():
    """As in optax: update passes its extras on to value_fn; one it does not take would
    leave the search minimising another function than the caller meant."""
    tx = optim.scale_by_backtracking_linesearch(5)
    grad = {"w": jnp.ones(2)}
    params = {"w": jnp.ones(2)}

    def loss(p, scale=1.0):
        return scale * jnp.sum(p["w"] ** 2)

    args = dict(value=2.0, grad=grad, value_fn=loss, scale=3.0)
    updates, _ = tx.update({"w": -jnp.ones(2)}, tx.init(params), params, **args)
    assert jnp.all(jnp.isfinite(updates["w"]))
    with pytest.raises(TypeError, match=r"Unexpected keyword arguments \['unrelated'\]"):
        tx.update({"w": -jnp.ones(2)}, tx.init(params), params, **args, unrelated=object())


def test_update_errors():
    tx = optim.scale_by_backtracking_linesearch(5)
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    g = {"w": jnp.ones(2)}
    with pytest.raises(TypeError, match=r"needs the keyword arguments \['value_fn'\]"):
        tx.update(g, state, params, value=1.0, grad=g)
    with pytest.raises(TypeError, match=r"needs the keyword arguments \['value', 'grad'\]"):
        tx.update(g, state, params, value_fn=jnp.sum)
    with pytest.raises(ValueError, match="a line search needs params"):
        tx.update(g, state, value=1.0, grad=g, value_fn=jnp.sum)
    with pytest.raises(TypeError, match="value_fn must be the loss function"):
        tx.update(g, state, params, value=1.0, grad=g, value_fn="loss")
    with pytest.raises(ValueError, match="grad does not have the structure of params"):
        tx.update(g, state, params, value=1.0, grad={"v": jnp.ones(2)}, value_fn=jnp.sum)


def test_value_and_grad_from_state_needs_store_grad():
    tx = optim.scale_by_backtracking_linesearch(5)
    with pytest.raises(ValueError, match="store_grad=True"):
        optim.value_and_grad_from_state(jnp.sum)(PARAMS, state=tx.init(PARAMS))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"max_backtracking_steps": -1}, ValueError, "max_backtracking_steps must be an int >= 0"),
        ({"max_backtracking_steps": 2.5}, TypeError, "max_backtracking_steps must be an int"),
        ({"decrease_factor": 0.0}, ValueError, r"decrease_factor must be in \(0.0, 1.0\]"),
        ({"decrease_factor": 1.5}, ValueError, r"decrease_factor must be in \(0.0, 1.0\]"),
        ({"increase_factor": -1.0}, ValueError, r"increase_factor must be in \(0.0, inf\)"),
        ({"slope_rtol": 2.0}, ValueError, r"slope_rtol must be in \[0.0, 1.0\]"),
        ({"max_learning_rate": 0.0}, ValueError, r"max_learning_rate must be in \(0.0, inf\)"),
        ({"atol": -1.0}, ValueError, r"atol must be in \[0.0, inf\)"),
        ({"rtol": float("nan")}, ValueError, "rtol must be finite"),
        ({"store_grad": "yes"}, TypeError, "store_grad must be True or False"),
        ({"verbose": 1}, TypeError, "verbose must be True or False"),
    ],
)
def test_factory_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        optim.scale_by_backtracking_linesearch(**{"max_backtracking_steps": 5, **kwargs})


def test_increase_factor_inf_starts_each_search_at_the_largest_stepsize():
    tx = optim.scale_by_backtracking_linesearch(5, increase_factor=float("inf"))
    params = {"w": jnp.array([1.0])}
    state = tx.init(params)._replace(learning_rate=jnp.float32(0.01))
    grad = {"w": jnp.array([2.0])}
    _, state = tx.update(
        {"w": -grad["w"] / 4}, state, params, value=1.0, grad=grad,
        value_fn=lambda p: jnp.sum(p["w"] ** 2),
    )  # fmt: skip
    assert state.learning_rate == 1.0


def test_verbose_reports_a_failed_search(capfd):
    tx = optim.scale_by_backtracking_linesearch(2, verbose=True)
    params = {"w": jnp.array([1.0])}
    grad = {"w": jnp.array([2.0])}
    tx.update(
        {"w": grad["w"]},
        tx.init(params),
        params,
        value=1.0,
        grad=grad,
        value_fn=lambda p: jnp.sum(p["w"] ** 2),
    )  # fmt: skip  (an ascent direction: the search fails)
    jax.effects_barrier()
    assert "no stepsize met the sufficient decrease condition" in capfd.readouterr().out


def test_signature_and_export_match_optax():
    ours = inspect.signature(optim.scale_by_backtracking_linesearch).parameters
    theirs = inspect.signature(optax.scale_by_backtracking_linesearch).parameters
    assert list(ours) == list(theirs)
    for name, param in theirs.items():
        assert ours[name].default == param.default, name
    assert optim.ScaleByBacktrackingLinesearchState._fields == (
        optax.ScaleByBacktrackingLinesearchState._fields
    )
