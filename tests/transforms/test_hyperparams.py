"""hyperparams and with_hyperparams (optim/transforms/_hyperparams.py).

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
from conftest import convex_loss, relative_deviation, trajectory, tree_bytes
from parity_table import LABELS, MASK

import optim

OURS = optim


def _decay(count):
    return 0.02 / (1.0 + 0.01 * count)


def test_hyperparams_names_and_values():
    tx = OURS.chain(
        OURS.clip_by_global_norm(1.0),
        OURS.partition(
            {"decay": OURS.adamw(1e-3, weight_decay=0.1, mask=MASK), "rest": OURS.sgd(0.5)},
            jax.tree.map({"a": "decay", "b": "rest"}.get, LABELS),
        ),
        OURS.scale(2.0),
        OURS.scale(3.0),
    )
    values = {k: float(v) for k, v in OURS.hyperparams(tx).items()}
    expected = {
        "clip_by_global_norm.max_norm": 1.0,
        "decay.scale_by_adam.b1": 0.9,
        "decay.scale_by_adam.b2": 0.999,
        "decay.scale_by_adam.eps": 1e-8,
        "decay.scale_by_adam.eps_root": 0.0,
        "decay.add_decayed_weights.weight_decay": 0.1,
        "decay.scale_by_learning_rate.learning_rate": 1e-3,
        "rest.scale_by_learning_rate.learning_rate": 0.5,
        "scale[0].step_size": 2.0,
        "scale[1].step_size": 3.0,
    }
    assert values.keys() == expected.keys()
    np.testing.assert_allclose([values[k] for k in expected], list(expected.values()), rtol=1e-7)


def test_hyperparams_evaluates_schedules_at_the_state_count(params):
    schedule = OURS.linear_schedule(0.1, 0.0, 10)
    tx = OURS.apply_if_finite(OURS.adamw(schedule, weight_decay=0.1), 2)
    key = "scale_by_learning_rate.learning_rate"
    assert float(OURS.hyperparams(tx)[key]) == pytest.approx(0.1)  # no state: step 0
    state = tx.init(params)
    for _ in range(3):
        _, state = tx.update(jax.grad(convex_loss)(params), state, params)
    values = jax.jit(OURS.hyperparams)(tx, state)
    assert float(values[key]) == pytest.approx(float(schedule(3)))  # what step 4 will use
    assert float(values["add_decayed_weights.weight_decay"]) == pytest.approx(0.1)


def test_hyperparams_of_inject_hyperparams(params):
    tx = OURS.inject_hyperparams(OURS.sgd)(learning_rate=_decay, momentum=0.9)
    state = tx.init(params)
    for _ in range(2):
        _, state = tx.update(jax.grad(convex_loss)(params), state, params)
    assert float(OURS.hyperparams(state)["learning_rate"]) == pytest.approx(_decay(1))  # last used
    assert float(OURS.hyperparams(tx, state)["sgd.learning_rate"]) == pytest.approx(_decay(2))
    assert float(OURS.hyperparams(tx)["sgd.momentum"]) == pytest.approx(0.9)
    nested = OURS.chain(OURS.clip(1.0), tx).init(params)
    assert set(OURS.hyperparams(nested)) == {"1.learning_rate", "1.momentum"}
    theirs = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1).init(params)
    assert float(OURS.hyperparams(theirs)["learning_rate"]) == pytest.approx(0.1)


def test_with_hyperparams_replaces_everywhere_and_equals_a_fresh_optimizer():
    def build(lr, b1):
        return OURS.chain(
            OURS.clip_by_global_norm(1.0),
            OURS.partition(
                {"a": OURS.adam(lr, b1=b1), "b": OURS.MultiSteps(OURS.adam(lr, b1=b1), 2)}, LABELS
            ),
        )

    replaced = OURS.with_hyperparams(build(0.1, 0.9), learning_rate=0.02, b1=0.7)
    assert jax.tree.structure(replaced) == jax.tree.structure(build(0.02, 0.7))
    assert tree_bytes(replaced) == tree_bytes(build(0.02, 0.7))
    injected = OURS.with_hyperparams(OURS.inject_hyperparams(OURS.adam)(0.1), learning_rate=0.02)
    assert float(OURS.hyperparams(injected)["adam.learning_rate"]) == np.float32(0.02)


def test_with_hyperparams_under_vmap_matches_separate_runs():
    tx = OURS.partition({"a": OURS.adam(0.1), "b": OURS.sgd(0.1)}, LABELS)
    lrs = jnp.array([0.01, 0.05])
    runs = jax.vmap(
        lambda lr: trajectory(OURS.with_hyperparams(tx, learning_rate=lr), OURS.apply_updates, 10)
    )(lrs)
    for i, lr in enumerate([0.01, 0.05]):
        single = trajectory(OURS.with_hyperparams(tx, learning_rate=lr), OURS.apply_updates, 10)
        assert relative_deviation(jax.tree.map(lambda x, i=i: x[i], runs), single) < 1e-6


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"lr": 0.1}, r"named lr; its float hyperparameters are \['b1', .*'learning_rate'"),
        ({"nesterov": True}, "named nesterov"),
        ({"learning_rate": -1.0}, r"learning_rate must be in \[0.0, inf\)"),
        ({"b2": 1.0}, r"b2 must be in \[0.0, 1.0\)"),
        ({"weight_decay": float("nan")}, "weight_decay must be finite"),
    ],
)
def test_with_hyperparams_bad_input(values, match):
    with pytest.raises(ValueError, match=match):
        OURS.with_hyperparams(OURS.adamw(1e-3, weight_decay=0.1), **values)


def test_hyperparams_reads_inside_named_chain_and_conditional_wrappers():
    """optim.hyperparams names named_chain's parts and evaluates a schedule inside a
    conditional wrapper at the inner count (the steps it was applied), not at 0."""
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.ones(3)}
    schedule = optim.linear_schedule(1.0, 0.0, 10)
    named = optim.named_chain(("clip", optim.clip(1.0)), ("opt", optim.adam(schedule)))
    conditional = optim.conditionally_transform(optim.sgd(schedule), lambda step: step % 2 == 0)
    for tx, steps, key, expected in [
        (named, 3, "opt.scale_by_learning_rate.learning_rate", 0.7),
        (conditional, 4, "scale_by_learning_rate.learning_rate", 0.8),  # applied at 0 and 2
    ]:
        state = tx.init(params)
        for _ in range(steps):
            _, state = tx.update(grads, state, params)
        values = optim.hyperparams(tx, state)
        assert abs(float(values[key]) - expected) <= 1e-6, (key, values[key])
    assert "clip.clip.max_delta" in optim.hyperparams(named, named.init(params))
