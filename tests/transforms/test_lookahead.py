"""lookahead (optim/transforms/_lookahead.py) against optax, and behaviour.

Parity follows tests/test_optax_parity.py: 200 float32 steps of ``convex_loss``, ours against
optax, both given the same Python-float hyperparameters (bound 1e-6: the same arithmetic, only
XLA's fusion may differ).
"""

from __future__ import annotations

import jax
import optax
import pytest
from conftest import PYTHON_FLOAT_BOUND, convex_loss, nested_params, relative_deviation

import optim

OURS = optim


STEPS = 200


def _adam(m, f, lr=0.01):
    return m.adam(f(lr), f(0.9), f(0.999), f(1e-8))


def _lookahead_trajectory(tx, lib, steps=STEPS):
    params = lib.LookaheadParams.init_synced(nested_params())
    state = tx.init(params)

    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(convex_loss)(p.fast), s, p)
        return (lib.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(jax.jit(step), (params, state), length=steps)
    return params


@pytest.mark.parametrize("reset_state", [False, True])
def test_lookahead_equals_optax(reset_state):
    def build(m, f):
        return m.lookahead(_adam(m, f, 0.05), 5, f(0.5), reset_state=reset_state)

    steps = STEPS + 2  # not a multiple of sync_period: fast and slow differ at the end
    ours = _lookahead_trajectory(build(OURS, float), OURS, steps)
    theirs = _lookahead_trajectory(build(optax, float), optax, steps)
    assert relative_deviation(ours, theirs) < PYTHON_FLOAT_BOUND
    assert relative_deviation(ours.fast, ours.slow) > 1e-4


def test_lookahead_traces_once_for_new_hyperparameters():
    traces = []

    @jax.jit
    def step(tx, params, state):
        traces.append(1)
        return tx.update(jax.grad(convex_loss)(params.fast), state, params)

    params = OURS.LookaheadParams.init_synced(nested_params())
    for alpha in [0.5, 0.8]:
        tx = OURS.lookahead(OURS.adam(0.1), 3, alpha)
        step(tx, params, tx.init(params))
    assert len(traces) == 1


def test_lookahead_needs_lookahead_params(params):
    tx = OURS.lookahead(OURS.sgd(0.1), 2, 0.5)
    with pytest.warns(UserWarning, match="fast"):
        state = tx.init(params)
    with pytest.raises(ValueError, match="LookaheadParams"):
        tx.update(params, state, params)
