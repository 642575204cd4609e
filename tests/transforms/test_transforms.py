"""The wrappers of optim/transforms/ (and inject_hyperparams) against optax: state field names,
signatures, one trace for new hyperparameters, bad input. Their trajectories are compared with
optax's by tests/test_optax_parity.py (records in tests/parity_table.py).
"""

from __future__ import annotations

import copy
import inspect

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import convex_loss, nested_params, relative_deviation
from parity_table import LABELS, MASK, matrices_mask, matrix_labels

import optim


def test_state_field_names_match_optax(params):
    pairs = [
        (optim.partition({"a": optim.sgd(0.1)}, "a"), optax.partition({"a": optax.sgd(0.1)}, "a")),
        (optim.freeze(MASK), optax.freeze(MASK)),
        (optim.apply_if_finite(optim.sgd(0.1), 2), optax.apply_if_finite(optax.sgd(0.1), 2)),
        (optim.MultiSteps(optim.sgd(0.1), 2), optax.MultiSteps(optax.sgd(0.1), 2)),
    ]
    for ours, theirs in pairs:
        ours_state, their_state = ours.init(params), theirs.init(params)
        assert type(ours_state).__name__ == type(their_state).__name__
        assert ours_state._fields == their_state._fields
    la = optim.lookahead(optim.sgd(0.1), 2, 0.5).init(optim.LookaheadParams.init_synced(params))
    assert la._fields == optax.LookaheadState._fields
    assert optim.LookaheadParams._fields == optax.LookaheadParams._fields
    injected = optim.inject_hyperparams(optim.sgd)(0.1).init(params)
    their_injected = optax.inject_hyperparams(optax.sgd)(0.1).init(params)
    assert type(injected).__name__ == type(their_injected).__name__
    assert injected._fields == their_injected._fields
    assert optim.InjectHyperparamsState._fields == optax.InjectHyperparamsState._fields
    assert optim.MultiTransformState is optim.PartitionState
    assert optim.multi_transform is optim.partition


def test_signatures_match_optax():
    names = [
        "partition",
        "multi_transform",
        "freeze",
        "apply_if_finite",
        "lookahead",
        "flatten",
        "inject_hyperparams",
        "masked",
        "skip_not_finite",
        "skip_large_updates",
        "MultiSteps",
    ]
    for name in names:
        ours, theirs = getattr(optim, name), getattr(optax, name)
        p_ours = inspect.signature(ours).parameters
        p_theirs = inspect.signature(theirs).parameters
        assert list(p_ours)[: len(p_theirs)] == list(p_theirs), name
        for arg, param in p_theirs.items():
            assert p_ours[arg].kind == param.kind or arg == "accumulator_dtype", (name, arg)
            if isinstance(param.default, (int, float, bool, type(None), tuple)):
                assert p_ours[arg].default == param.default, (name, arg)
    # Deliberate: keyword-only, and None = float32 for bf16/fp16, the parameter dtype otherwise.
    assert inspect.signature(optim.MultiSteps).parameters["accumulator_dtype"].default is None


REBUILDS = {
    "partition_tree": lambda lr: optim.partition(
        {"a": optim.adam(lr), "b": optim.sgd(lr * 2)}, copy.deepcopy(LABELS)
    ),
    "partition_regex": lambda lr: optim.partition(
        {"decay": optim.adamw(lr, weight_decay=0.1), "no_decay": optim.adam(lr)},
        {"decay": r".*w|blocks/.*", "no_decay": r".*"},
    ),
    "partition_fn": lambda lr: optim.partition(
        {"a": optim.adam(lr), "b": optim.sgd(lr)}, matrix_labels
    ),
    "masked_dict": lambda lr: optim.chain(
        optim.masked(optim.scale_by_adam(), copy.deepcopy(MASK)), optim.sgd(lr)
    ),
    "masked_fn": lambda lr: optim.chain(
        optim.masked(optim.scale_by_adam(), matrices_mask), optim.sgd(lr)
    ),
    "freeze": lambda lr: optim.chain(optim.freeze(copy.deepcopy(MASK)), optim.adam(lr)),
    "apply_if_finite": lambda lr: optim.apply_if_finite(optim.adam(lr), 2),
    "multi_steps": lambda lr: optim.MultiSteps(optim.adam(lr), 2),
    "flatten": lambda lr: optim.flatten(optim.adam(lr)),
    "with_hyperparams": lambda lr: optim.with_hyperparams(
        optim.partition({"a": optim.adam(0.1), "b": optim.sgd(0.1)}, LABELS), learning_rate=lr
    ),
    "inject_hyperparams": lambda lr: optim.inject_hyperparams(optim.adam)(lr, b1=0.8),
}


@pytest.mark.parametrize("name", sorted(REBUILDS))
def test_jitted_step_traces_once_for_new_hyperparameters(name):
    traces = []

    @jax.jit
    def step(tx, params, state):
        traces.append(1)
        updates, state = tx.update(jax.grad(convex_loss)(params), state, params)
        return optim.apply_updates(params, updates), state

    params = nested_params()
    results = []
    for lr in [0.1, 0.01, 3e-4]:
        tx = REBUILDS[name](lr)
        results.append(step(tx, params, tx.init(params))[0])
    assert len(traces) == 1
    assert relative_deviation(results[0], results[1]) > 0 or name == "multi_steps"


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: optim.apply_if_finite(optim.sgd(0.1), -1), ValueError, "max_consecutive_errors"),
        (lambda: optim.apply_if_finite("sgd", 1), TypeError, "inner"),
        (lambda: optim.MultiSteps(optim.sgd(0.1), 0), ValueError, "every_k_schedule"),
        (lambda: optim.MultiSteps(optim.sgd(0.1), 2.5), TypeError, "every_k_schedule"),
        (
            lambda: optim.MultiSteps(optim.sgd(0.1), 2, accumulator_dtype=jnp.int32),
            TypeError,
            "accumulator_dtype",
        ),
        (lambda: optim.lookahead(optim.sgd(0.1), 0, 0.5), ValueError, "sync_period"),
        (lambda: optim.lookahead(optim.sgd(0.1), 2, 1.5), ValueError, "slow_step_size"),
        (lambda: optim.flatten(None), TypeError, "inner"),
        (lambda: optim.freeze({"w": "yes"}).init({"w": jnp.ones(2)}), TypeError, r"mask\['w'\]"),
    ],
)
def test_wrappers_bad_input(build, error, match):
    with pytest.raises(error, match=match):
        build()
