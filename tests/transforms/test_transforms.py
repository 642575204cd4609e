"""The wrappers of optim/transforms/ (and inject_hyperparams) against optax over one table:
trajectories, state field names, signatures, one trace for new hyperparameters, bad input.

Parity follows tests/test_optax_parity.py: 200 float32 steps of ``convex_loss``, ours against
optax, both given the same Python-float hyperparameters (bound 1e-6: the same arithmetic, only
XLA's fusion may differ).
"""

from __future__ import annotations

import copy
import inspect

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import PYTHON_FLOAT_BOUND, convex_loss, nested_params, relative_deviation, trajectory

import optim

OURS = optim


STEPS = 200


LABELS = {"dense": {"w": "a", "b": "b"}, "scale": "b", "blocks": ["a", ("b",)]}


PREFIX_LABELS = {"dense": "a", "scale": "b", "blocks": "a"}


MASK = {"dense": {"w": True, "b": False}, "scale": False, "blocks": [True, (False,)]}


def _matrices(params):
    return jax.tree.map(lambda x: "a" if x.ndim > 1 else "b", params)


def _adam(m, f, lr=0.01):
    return m.adam(f(lr), f(0.9), f(0.999), f(1e-8))


def _decay(count):
    return 0.02 / (1.0 + 0.01 * count)


# (id, builder(lib, f) -> transformation); f turns a float into what the library is given.
# Every float hyperparameter is passed explicitly.
CASES = [
    (
        "partition_tree",
        lambda m, f: m.partition({"a": _adam(m, f), "b": m.sgd(f(0.02), f(0.9))}, LABELS),
    ),
    (
        "partition_prefix",
        lambda m, f: m.partition({"a": _adam(m, f), "b": m.sgd(f(0.02))}, PREFIX_LABELS),
    ),
    (
        "multi_transform_fn",
        lambda m, f: m.multi_transform({"a": _adam(m, f), "b": m.sgd(f(0.02))}, _matrices),
    ),
    (
        "masked",
        lambda m, f: m.chain(
            m.masked(m.scale_by_adam(f(0.8), f(0.99), f(1e-8), f(0.0)), MASK), m.scale(f(-0.01))
        ),
    ),
    ("freeze", lambda m, f: m.chain(m.freeze(MASK), m.sgd(f(0.01), f(0.9)))),
    ("apply_if_finite", lambda m, f: m.apply_if_finite(_adam(m, f), 3)),
    ("multi_steps_mean", lambda m, f: m.MultiSteps(_adam(m, f, 0.05), 3)),
    (
        "multi_steps_sum_schedule",
        lambda m, f: m.MultiSteps(
            m.sgd(f(0.01), f(0.9)), lambda step: 2 + step % 2, use_grad_mean=False
        ),
    ),
    ("flatten", lambda m, f: m.flatten(_adam(m, f))),
    (
        "inject_hyperparams",
        lambda m, f: m.inject_hyperparams(m.adamw)(
            f(0.01), f(0.9), f(0.999), f(1e-8), f(0.0), weight_decay=f(0.1)
        ),
    ),
    (
        "inject_hyperparams_schedule",
        lambda m, f: m.inject_hyperparams(m.sgd)(learning_rate=_decay, momentum=f(0.9)),
    ),
]


@pytest.mark.parametrize(("name", "build"), CASES, ids=[c[0] for c in CASES])
def test_trajectory_equals_optax(name, build):
    ours = trajectory(build(OURS, float), optim.apply_updates, STEPS)
    theirs = trajectory(build(optax, float), optax.apply_updates, STEPS)
    assert relative_deviation(ours, theirs) < PYTHON_FLOAT_BOUND
    start = trajectory(optim.identity(), optim.apply_updates, steps=1)
    assert relative_deviation(ours, start) > 1e-3


def test_state_field_names_match_optax(params):
    pairs = [
        (OURS.partition({"a": OURS.sgd(0.1)}, "a"), optax.partition({"a": optax.sgd(0.1)}, "a")),
        (OURS.freeze(MASK), optax.freeze(MASK)),
        (OURS.apply_if_finite(OURS.sgd(0.1), 2), optax.apply_if_finite(optax.sgd(0.1), 2)),
        (OURS.MultiSteps(OURS.sgd(0.1), 2), optax.MultiSteps(optax.sgd(0.1), 2)),
    ]
    for ours, theirs in pairs:
        ours_state, their_state = ours.init(params), theirs.init(params)
        assert type(ours_state).__name__ == type(their_state).__name__
        assert ours_state._fields == their_state._fields
    la = OURS.lookahead(OURS.sgd(0.1), 2, 0.5).init(OURS.LookaheadParams.init_synced(params))
    assert la._fields == optax.LookaheadState._fields
    assert OURS.LookaheadParams._fields == optax.LookaheadParams._fields
    injected = OURS.inject_hyperparams(OURS.sgd)(0.1).init(params)
    their_injected = optax.inject_hyperparams(optax.sgd)(0.1).init(params)
    assert type(injected).__name__ == type(their_injected).__name__
    assert injected._fields == their_injected._fields
    assert OURS.InjectHyperparamsState._fields == optax.InjectHyperparamsState._fields
    assert OURS.MultiTransformState is OURS.PartitionState
    assert OURS.multi_transform is OURS.partition


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
        ours, theirs = getattr(OURS, name), getattr(optax, name)
        p_ours = inspect.signature(ours).parameters
        p_theirs = inspect.signature(theirs).parameters
        assert list(p_ours)[: len(p_theirs)] == list(p_theirs), name
        for arg, param in p_theirs.items():
            assert p_ours[arg].kind == param.kind or arg == "accumulator_dtype", (name, arg)
            if isinstance(param.default, (int, float, bool, type(None), tuple)):
                assert p_ours[arg].default == param.default, (name, arg)
    # Deliberate: keyword-only, and None = float32 for bf16/fp16, the parameter dtype otherwise.
    assert inspect.signature(OURS.MultiSteps).parameters["accumulator_dtype"].default is None


def _named_matrices(params):  # one function object, as a user would define it
    return jax.tree.map(lambda x: x.ndim > 1, params)


REBUILDS = {
    "partition_tree": lambda lr: OURS.partition(
        {"a": OURS.adam(lr), "b": OURS.sgd(lr * 2)}, copy.deepcopy(LABELS)
    ),
    "partition_regex": lambda lr: OURS.partition(
        {"decay": OURS.adamw(lr, weight_decay=0.1), "no_decay": OURS.adam(lr)},
        {"decay": r".*w|blocks/.*", "no_decay": r".*"},
    ),
    "partition_fn": lambda lr: OURS.partition({"a": OURS.adam(lr), "b": OURS.sgd(lr)}, _matrices),
    "masked_dict": lambda lr: OURS.chain(
        OURS.masked(OURS.scale_by_adam(), copy.deepcopy(MASK)), OURS.sgd(lr)
    ),
    "masked_fn": lambda lr: OURS.chain(
        OURS.masked(OURS.scale_by_adam(), _named_matrices), OURS.sgd(lr)
    ),
    "freeze": lambda lr: OURS.chain(OURS.freeze(copy.deepcopy(MASK)), OURS.adam(lr)),
    "apply_if_finite": lambda lr: OURS.apply_if_finite(OURS.adam(lr), 2),
    "multi_steps": lambda lr: OURS.MultiSteps(OURS.adam(lr), 2),
    "flatten": lambda lr: OURS.flatten(OURS.adam(lr)),
    "with_hyperparams": lambda lr: OURS.with_hyperparams(
        OURS.partition({"a": OURS.adam(0.1), "b": OURS.sgd(0.1)}, LABELS), learning_rate=lr
    ),
    "inject_hyperparams": lambda lr: OURS.inject_hyperparams(OURS.adam)(lr, b1=0.8),
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
        (lambda: OURS.apply_if_finite(OURS.sgd(0.1), -1), ValueError, "max_consecutive_errors"),
        (lambda: OURS.apply_if_finite("sgd", 1), TypeError, "inner"),
        (lambda: OURS.MultiSteps(OURS.sgd(0.1), 0), ValueError, "every_k_schedule"),
        (lambda: OURS.MultiSteps(OURS.sgd(0.1), 2.5), TypeError, "every_k_schedule"),
        (
            lambda: OURS.MultiSteps(OURS.sgd(0.1), 2, accumulator_dtype=jnp.int32),
            TypeError,
            "accumulator_dtype",
        ),
        (lambda: OURS.lookahead(OURS.sgd(0.1), 0, 0.5), ValueError, "sync_period"),
        (lambda: OURS.lookahead(OURS.sgd(0.1), 2, 1.5), ValueError, "slow_step_size"),
        (lambda: OURS.flatten(None), TypeError, "inner"),
        (lambda: OURS.freeze({"w": "yes"}).init({"w": jnp.ones(2)}), TypeError, r"mask\['w'\]"),
    ],
)
def test_wrappers_bad_input(build, error, match):
    with pytest.raises(error, match=match):
        build()
