"""inject_hyperparams (optim/schedules/_inject.py) against optax, and behaviour.

Parity follows tests/test_optax_parity.py: 200 float32 steps of ``convex_loss``, ours against
optax, both given the same Python-float hyperparameters (bound 1e-6: the same arithmetic, only
XLA's fusion may differ).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import PYTHON_FLOAT_BOUND, convex_loss, nested_params, relative_deviation

import optim

OURS = optim


def test_inject_hyperparams_changed_between_steps_like_optax(params):
    def run(tx):
        state = tx.init(params)
        p = params
        for t in range(6):
            if t == 3:
                state.hyperparams["learning_rate"] = 0.3
                state.hyperparams["b1"] = 0.5
            u, state = tx.update(jax.grad(convex_loss)(p), state, p)
            p = optax.apply_updates(p, u)
        return p, state

    ours, ours_state = run(OURS.inject_hyperparams(OURS.adam)(learning_rate=0.01))
    theirs, _ = run(optax.inject_hyperparams(optax.adam)(learning_rate=0.01))
    assert relative_deviation(ours, theirs) < PYTHON_FLOAT_BOUND
    assert float(ours_state.hyperparams["b1"]) == 0.5
    assert OURS.hyperparams(ours_state)["learning_rate"] == np.float32(0.3)


def test_inject_hyperparams_keeps_float32_for_bf16_params():
    """optax stores hyperparameters in the parameters' dtype (b2=0.999 -> 1.0 in bf16)."""
    params = {"w": jnp.ones(4, jnp.bfloat16)}
    state = OURS.inject_hyperparams(OURS.adam)(1e-3).init(params)
    assert state.hyperparams["b2"].dtype == jnp.float32
    assert float(state.hyperparams["b2"]) == np.float32(0.999)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: OURS.inject_hyperparams(OURS.adam)(-1.0), ValueError, "learning_rate must be in"),
        (lambda: OURS.inject_hyperparams(OURS.adam)(0.1, b1=1.5), ValueError, "b1 must be in"),
        (lambda: OURS.inject_hyperparams(OURS.adam, static_args="lr"), ValueError, "static_args"),
        (
            lambda: OURS.inject_hyperparams(OURS.adam, hyperparam_dtype=int),
            TypeError,
            "hyperparam_dtype",
        ),
    ],
)
def test_inject_hyperparams_bad_input(build, error, match):
    with pytest.raises(error, match=match):
        build()


class _LossSchedule:
    """A stateful schedule that is a plain class (not a pytree), as users write for optax:
    the learning rate 0.1 / (1 + the sum of the losses so far), given as an extra argument."""

    def init(self):
        return jnp.zeros([], jnp.float32)

    def update(self, state, **extra_args):
        return state + extra_args["loss"]

    def __call__(self, state, **extra_args):
        del extra_args
        return 0.1 / (1.0 + state)


def _loss_driven(m, schedule, steps=6, wrap=lambda tx: tx):
    """(params, states) after jitted steps of an injected sgd whose schedule sees the loss."""
    tx = wrap(m.inject_hyperparams(m.sgd)(learning_rate=schedule, momentum=0.5))
    p = nested_params()
    state = tx.init(p)

    @jax.jit
    def step(p, state):
        loss, grads = jax.value_and_grad(convex_loss)(p)
        updates, state = tx.update(grads, state, p, loss=loss)
        return optax.apply_updates(p, updates), state

    states = []
    for _ in range(steps):
        p, state = step(p, state)
        states.append(state)
    return p, states


def test_inject_hyperparams_stateful_schedule_like_optax():
    theirs, their_states = _loss_driven(optax, _LossSchedule())
    # Not inside optax.chain: it passes extra arguments only to optax's
    # GradientTransformationExtraArgs instances and drops them for every other transformation.
    wraps = [lambda tx: tx, lambda tx: OURS.chain(OURS.identity(), tx)]
    for wrap in wraps:
        ours, states = _loss_driven(OURS, _LossSchedule(), wrap=wrap)
        assert (
            relative_deviation(ours, theirs) < PYTHON_FLOAT_BOUND
        )  # sgd: the same float32 arithmetic
        unwrap = (lambda s: s) if wrap is wraps[0] else (lambda s: s[-1])
        for s, t in zip(states, their_states, strict=True):
            s = unwrap(s)
            assert type(s).__name__ == type(t).__name__ == "InjectStatefulHyperparamsState"
            np.testing.assert_allclose(
                s.hyperparams["learning_rate"], t.hyperparams["learning_rate"], rtol=1e-6
            )  # the learning rate follows the losses, equal to float32 rounding
            np.testing.assert_allclose(
                s.hyperparams_states["learning_rate"],
                t.hyperparams_states["learning_rate"],
                rtol=1e-6,
            )


def test_inject_hyperparams_count_schedule_state_like_optax(params):
    schedule = OURS.linear_schedule(0.1, 0.0, 10)
    tx = OURS.inject_hyperparams(OURS.adam)(learning_rate=schedule, b1=0.8)
    theirs = optax.inject_hyperparams(optax.adam)(
        learning_rate=optax.linear_schedule(0.1, 0.0, 10), b1=0.8
    )
    state, their_state = tx.init(params), theirs.init(params)
    assert state._fields == their_state._fields
    step = jax.jit(lambda tx, s: tx.update(jax.grad(convex_loss)(params), s, params))
    in_optax_chain = optax.chain(tx)
    chained = in_optax_chain.init(params)
    chained_step = jax.jit(
        lambda s: in_optax_chain.update(jax.grad(convex_loss)(params), s, params)
    )
    for _ in range(3):
        _, state = step(tx, state)
        _, their_state = theirs.update(jax.grad(convex_loss)(params), their_state, params)
        _, chained = chained_step(chained)
    assert [np.asarray(x).tobytes() for x in jax.tree.leaves(chained[0])] == [
        np.asarray(x).tobytes() for x in jax.tree.leaves(state)
    ]
    ours_schedule_state = state.hyperparams_states["learning_rate"]
    their_schedule_state = their_state.hyperparams_states["learning_rate"]
    assert type(ours_schedule_state).__name__ == type(their_schedule_state).__name__
    assert int(ours_schedule_state.count) == int(their_schedule_state.count) == 3
    assert float(state.hyperparams["learning_rate"]) == float(
        their_state.hyperparams["learning_rate"]
    )
    assert float(OURS.hyperparams(tx, state)["adam.learning_rate"]) == pytest.approx(schedule(3))
    # The schedule's floats stay leaves of the optimizer: a new schedule, no recompilation.
    assert np.float32(0.1) in [np.float32(x) for x in jax.tree.leaves(tx)]


def test_wrapped_schedules_ours_and_optax():
    fn = optax.linear_schedule(0.1, 0.0, 10)
    wrapped = OURS.WrappedSchedule(fn)
    assert isinstance(wrapped, OURS.StatefulSchedule)
    assert jax.tree.leaves(wrapped) == []  # a plain function is static
    state = wrapped.update(wrapped.update(wrapped.init()))
    assert float(wrapped(state)) == float(fn(2))
    ours_leaves = OURS.WrappedSchedule(OURS.linear_schedule(0.1, 0.0, 10))
    assert len(jax.tree.leaves(ours_leaves)) == 3  # init_value, end_value, power
    params = {"w": jnp.ones(2)}
    results = []
    for schedule in (fn, wrapped, ours_leaves, optax.schedules.WrappedSchedule(fn)):
        tx = OURS.inject_hyperparams(OURS.sgd)(learning_rate=schedule)
        state = tx.init(params)
        for _ in range(3):
            _, state = jax.jit(tx.update)(params, state)
        results.append(float(state.hyperparams["learning_rate"]))
        assert int(state.hyperparams_states["learning_rate"].count) == 3
    assert results == [float(fn(2))] * 4


def test_inject_hyperparams_holds_a_plain_stateful_schedule_as_static():
    schedule = _LossSchedule()
    tx = OURS.inject_hyperparams(OURS.sgd)(learning_rate=schedule)
    assert jax.tree.leaves(tx) == []
    traces = []

    @jax.jit
    def step(tx, state):
        traces.append(1)
        return tx.update({"w": jnp.ones(2)}, state, loss=jnp.float32(1.0))[1]

    state = step(tx, tx.init({"w": jnp.ones(2)}))
    step(tx, state)
    assert len(traces) == 1 and float(state.hyperparams_states["learning_rate"]) == 1.0
    assert float(OURS.hyperparams(tx, state)["sgd.learning_rate"]) == pytest.approx(0.05)


def test_inject_hyperparams_sophia_needs_no_static_args():
    """update_interval is a step count, static in our sophia: found by tracing the factory
    (optax keeps it in the state, where its sophia takes it traced)."""
    params = nested_params()
    injected = OURS.inject_hyperparams(OURS.contrib.sophia)(learning_rate=1e-3)
    assert "update_interval" not in injected.init(params).hyperparams
    assert dict(injected.static_kwargs)["update_interval"] == 10

    def run(tx, steps=4):
        state = tx.init(params)
        p = params
        step = jax.jit(lambda p, s: tx.update(jax.grad(convex_loss)(p), s, p, obj_fn=convex_loss))
        for _ in range(steps):
            updates, state = step(p, state)
            p = optax.apply_updates(p, updates)
        return p

    ours = run(injected)
    assert [np.asarray(x).tobytes() for x in jax.tree.leaves(ours)] == [
        np.asarray(x).tobytes() for x in jax.tree.leaves(run(OURS.contrib.sophia(1e-3)))
    ]
    theirs = run(optax.inject_hyperparams(optax.contrib.sophia)(learning_rate=1e-3))
    assert relative_deviation(ours, theirs) < PYTHON_FLOAT_BOUND
    with pytest.raises(ValueError, match="update_interval"):
        OURS.inject_hyperparams(OURS.contrib.sophia)(learning_rate=1e-3, update_interval=0)


def test_inject_stateful_hyperparams_is_deprecated_like_optax(params):
    with pytest.warns(DeprecationWarning, match="use inject_hyperparams"):
        tx = OURS.inject_stateful_hyperparams(OURS.sgd)(learning_rate=0.1)
    assert type(tx.init(params)).__name__ == "InjectStatefulHyperparamsState"


def test_schedules_reexport_the_inject_names():
    import optim.schedules as schedules

    for name in [
        "InjectHyperparamsState",
        "InjectStatefulHyperparamsState",
        "StatefulSchedule",
        "WrappedSchedule",
        "inject_hyperparams",
        "inject_stateful_hyperparams",
    ]:
        assert getattr(schedules, name) is getattr(optim, name), name
        assert hasattr(optax.schedules, name), name
    assert schedules.Schedule is not None and hasattr(optax.schedules, "Schedule")
