"""Combinators and wrappers (optim/transforms/, optim/schedules/_inject.py) against optax, and
behaviour.

Parity follows tests/test_optax_parity.py: 200 float32 steps of ``convex_loss``, ours against
optax, both given the same Python-float hyperparameters (bound 1e-6: the same arithmetic, only
XLA's fusion may differ).
"""

from __future__ import annotations

import copy
import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import convex_loss, nested_params, relative_deviation, trajectory

import models
import optim
from optim.transforms._combining import _path_parts

OURS = optim

STRICT = 1e-6
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
    assert relative_deviation(ours, theirs) < STRICT
    start = trajectory(optim.identity(), optim.apply_updates, steps=1)
    assert relative_deviation(ours, start) > 1e-3


def _poisoned_trajectory(tx, apply_updates, steps=STEPS):
    """Like conftest.trajectory, but every 7th gradient (and 2 more in a row from step 50)
    has a NaN in one leaf."""
    params = nested_params()
    state = tx.init(params)

    def step(carry, t):
        p, s = carry
        g = jax.grad(convex_loss)(p)
        bad = (t % 7 == 3) | ((t >= 50) & (t < 53))
        g["dense"]["b"] = jnp.where(bad, jnp.nan, g["dense"]["b"])
        u, s = tx.update(g, s, p)
        return (apply_updates(p, u), s), None

    (params, state), _ = jax.lax.scan(jax.jit(step), (params, state), jnp.arange(steps))
    return params, state


@pytest.mark.parametrize(
    "build",
    [
        lambda m, f: m.apply_if_finite(_adam(m, f), 3),
        lambda m, f: m.MultiSteps(_adam(m, f, 0.05), 3, should_skip_update_fn=m.skip_not_finite),
    ],
    ids=["apply_if_finite", "multi_steps_skip_not_finite"],
)
def test_skipped_steps_equal_optax(build):
    ours, ours_state = _poisoned_trajectory(build(OURS, float), optim.apply_updates)
    theirs, theirs_state = _poisoned_trajectory(build(optax, float), optax.apply_updates)
    assert relative_deviation(ours, theirs) < STRICT
    assert np.isfinite(np.concatenate([np.ravel(x) for x in jax.tree.leaves(ours)])).all()
    counters = [name for name in ("total_notfinite", "gradient_step") if name in ours_state._fields]
    for name in counters:
        assert int(getattr(ours_state, name)) == int(getattr(theirs_state, name))


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
    assert relative_deviation(ours, theirs) < STRICT
    assert relative_deviation(ours.fast, ours.slow) > 1e-4


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


# --- partition ----------------------------------------------------------------------------


def _layers_params():
    return {
        "dense": {"w": jnp.ones((2, 3)), "b": jnp.ones(3), "w_norm": jnp.ones(3)},
        "layers": [{"kernel": jnp.ones((3, 3)), "bias": jnp.ones(3)} for _ in range(2)],
        "activation": jax.nn.relu,
        "depth": 2,
    }


def test_partition_regex_labels_apply_the_right_transform():
    params = _layers_params()
    tx = OURS.partition(
        {"decay": OURS.scale(2.0), "no_decay": OURS.scale(3.0), "bias": OURS.scale(5.0)},
        {"decay": r".*kernel|.*w$", "bias": r".*/b(ias)?", "no_decay": r".*"},
    )
    state = tx.init(params)
    grads = jax.tree.map(lambda x: jnp.ones_like(x) if isinstance(x, jax.Array) else None, params)
    updates, _ = tx.update(grads, state, params)
    factors = {
        "dense/w": 2.0,  # .*w$
        "dense/b": 5.0,
        "dense/w_norm": 3.0,  # whole-path match: w$ does not end it, b(ias)? does not match
        "layers/0/kernel": 2.0,
        "layers/0/bias": 5.0,
        "layers/1/kernel": 2.0,
        "layers/1/bias": 5.0,
    }
    got = {
        "/".join(_path_parts(path)): float(leaf[0] if leaf.ndim == 1 else leaf[0, 0])
        for path, leaf in jax.tree_util.tree_flatten_with_path(updates)[0]
    }
    assert got == factors
    assert updates["activation"] is None and updates["depth"] is None


def test_partition_first_matching_pattern_wins():
    params = {"a": {"kernel": jnp.ones(2)}}
    first = OURS.partition(
        {"x": OURS.scale(2.0), "y": OURS.scale(3.0)}, {"x": r"a/.*", "y": r".*kernel"}
    )
    second = OURS.partition(
        {"x": OURS.scale(2.0), "y": OURS.scale(3.0)}, {"y": r".*kernel", "x": r"a/.*"}
    )
    for tx, factor in [(first, 2.0), (second, 3.0)]:
        updates, _ = tx.update(params, tx.init(params), params)
        assert float(updates["a"]["kernel"][0]) == factor


def test_partition_regex_equals_label_tree():
    transforms = {"a": OURS.adam(0.01), "b": OURS.sgd(0.02, 0.9)}
    regex = OURS.partition(transforms, {"a": r"dense/w|blocks/0", "b": r".*"})
    tree = OURS.partition(transforms, LABELS)
    assert (
        relative_deviation(
            trajectory(regex, optim.apply_updates), trajectory(tree, optim.apply_updates)
        )
        == 0.0
    )


def test_partition_unmatched_leaf_names_its_path():
    params = _layers_params()
    tx = OURS.partition({"decay": OURS.sgd(0.1)}, {"decay": r"dense/.*"})
    with pytest.raises(ValueError, match=r"leaf 'layers/0/bias' matches none of the patterns"):
        tx.init(params)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: OURS.partition([OURS.sgd(0.1)], "a"), TypeError, "transforms must be a dict"),
        (
            lambda: OURS.partition({"a": OURS.sgd(0.1)}, {"w": "b"}),
            ValueError,
            r"no transformation.*'b'",
        ),
        (lambda: OURS.partition({"a": "sgd"}, "a"), TypeError, r"transforms\['a'\]"),
        (
            lambda: OURS.partition({"a": OURS.sgd(0.1)}, {"a": "(["}),
            ValueError,
            r"param_labels\['a'\]",
        ),
    ],
)
def test_partition_bad_input(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_partition_label_function_checked_at_init(params):
    tx = OURS.partition({"a": OURS.sgd(0.1)}, lambda p: jax.tree.map(lambda _: "c", p))
    with pytest.raises(ValueError, match="no transformation"):
        tx.init(params)


def test_freeze_accepts_a_single_bool(params):
    grads = jax.grad(convex_loss)(params)
    for mask, frozen in [(True, True), (jnp.array(False), False), (np.bool_(True), True)]:
        tx = OURS.freeze(mask)
        updates, _ = tx.update(grads, tx.init(params), params)
        expected = jax.tree.map(jnp.zeros_like, grads) if frozen else grads
        assert _bits(updates) == _bits(expected)


# --- jit compiles once for new float hyperparameters ---------------------------------------


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


# --- apply_if_finite ----------------------------------------------------------------------


def _bits(tree):
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def test_apply_if_finite_rejects_nan_and_leaves_state_bit_identical(params):
    tx = OURS.apply_if_finite(OURS.adamw(0.1, weight_decay=0.1), max_consecutive_errors=2)
    grads = jax.grad(convex_loss)(params)
    bad = {**grads, "scale": jnp.float32(jnp.inf)}
    bad["dense"] = {**grads["dense"], "b": grads["dense"]["b"].at[1].set(jnp.nan)}
    update = jax.jit(tx.update)
    _, state = update(grads, tx.init(params), params)
    for rejected in (1, 2):
        updates, new_state = update(bad, state, params)
        assert _bits(new_state.inner_state) == _bits(state.inner_state)  # count and moments
        assert all(not np.any(np.asarray(u)) for u in jax.tree.leaves(updates))
        assert int(new_state.notfinite_count) == rejected
        assert int(new_state.total_notfinite) == rejected
        assert not bool(new_state.last_finite)
        state = new_state
    # The third NaN in a row exceeds max_consecutive_errors=2: applied, as in optax.
    _, state = update(bad, state, params)
    assert int(state.inner_state[0].count) == 2 and int(state.notfinite_count) == 3
    _, state = update(grads, state, params)
    assert int(state.notfinite_count) == 0 and int(state.total_notfinite) == 3
    assert bool(state.last_finite)


# --- MultiSteps ---------------------------------------------------------------------------


def _batches(k=4, n=8, seed=1):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    return jax.random.normal(kx, (k, n, 3)), jax.random.normal(ky, (k, n))


def _mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


@pytest.mark.parametrize(
    "make", [lambda: OURS.sgd(0.1, 0.9), lambda: OURS.adam(0.05)], ids=["sgd", "adam"]
)
def test_multi_steps_equals_big_batch_steps(make):
    """k mini-batches averaged by MultiSteps = one step on the k-times larger batch."""
    big, small = make(), OURS.MultiSteps(make(), every_k_schedule=4)

    @jax.jit
    def step(tx, params, state, batch):
        updates, state = tx.update(jax.grad(_mse)(params, batch), state, params)
        return optim.apply_updates(params, updates), state, updates

    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    big_params, big_state = params, big.init(params)
    small_params, small_state = params, small.init(params)
    for round_ in range(3):
        xs, ys = _batches(seed=round_)
        big_params, big_state, _ = step(big, big_params, big_state, (xs.reshape(-1, 3), ys.ravel()))
        for i in range(4):
            small_params, small_state, updates = step(
                small, small_params, small_state, (xs[i], ys[i])
            )
            if i < 3:
                assert not bool(small.has_updated(small_state))
                assert all(not np.any(np.asarray(u)) for u in jax.tree.leaves(updates))
        assert bool(small.has_updated(small_state))
        # Float32 rounding: the mean of 4 batch means (Welford) vs the mean of 32 terms.
        np.testing.assert_allclose(small_params["w"], big_params["w"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(small_params["b"], big_params["b"], rtol=1e-5, atol=1e-7)
    assert int(small_state.gradient_step) == 3


@pytest.mark.parametrize(
    ("accumulator_dtype", "expected"),
    [(None, jnp.float32), (jnp.bfloat16, jnp.bfloat16)],
)
def test_multi_steps_one_buffer_in_the_chosen_dtype(accumulator_dtype, expected):
    params = nested_params(dtype=jnp.bfloat16)
    tx = OURS.MultiSteps(OURS.sgd(0.1), 2, accumulator_dtype=accumulator_dtype)
    state = tx.init(params)
    assert jax.tree.structure(state.acc_grads) == jax.tree.structure(params)
    assert all(a.dtype == expected for a in jax.tree.leaves(state.acc_grads))
    # The only per-parameter buffer: sgd has no state, so the rest is two counters.
    assert len(jax.tree.leaves(state)) == len(jax.tree.leaves(params)) + 2
    grads = jax.grad(convex_loss)(params)
    update = jax.jit(tx.update)
    for _ in range(2):
        updates, state = update(grads, state, params)
    assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates))
    assert all(a.dtype == expected for a in jax.tree.leaves(state.acc_grads))


def test_multi_steps_class_api(params):
    inner = OURS.adam(0.1)
    tx = OURS.MultiSteps(inner, 3)
    assert tx.inner_opt is inner
    assert tx.gradient_transformation() is tx
    wrapped = OURS.MultiSteps(optax.adam(0.1), 3)  # an optax optimizer inside
    assert isinstance(wrapped.opt, optim.OptaxTransform)
    skip = functools.partial(OURS.skip_large_updates, max_squared_norm=1.0)
    tx = OURS.MultiSteps(OURS.sgd(0.1), 2, should_skip_update_fn=skip)
    state = tx.init(params)
    huge = jax.tree.map(lambda x: 1e3 * jnp.ones_like(x), params)
    _, new_state = tx.update(huge, state, params)
    assert _bits(new_state._replace(skip_state=None)) == _bits(state._replace(skip_state=None))
    assert bool(new_state.skip_state["should_skip"])


# --- lookahead, flatten -------------------------------------------------------------------


def test_lookahead_needs_lookahead_params(params):
    tx = OURS.lookahead(OURS.sgd(0.1), 2, 0.5)
    with pytest.warns(UserWarning, match="fast"):
        state = tx.init(params)
    with pytest.raises(ValueError, match="LookaheadParams"):
        tx.update(params, state, params)


def test_flatten_keeps_dtypes_and_passes_non_arrays():
    params = {"a": jnp.ones((2, 2), jnp.bfloat16), "b": jnp.ones(3), "n": 3, "f": None}
    tx = OURS.flatten(OURS.adam(0.1))
    state = tx.init(params)
    assert state[0].mu.shape == (7,)
    grads = {"a": jnp.ones((2, 2), jnp.bfloat16), "b": jnp.ones(3), "n": None, "f": None}
    updates, _ = tx.update(grads, state, params)
    assert updates["a"].dtype == jnp.bfloat16 and updates["a"].shape == (2, 2)
    assert updates["n"] is None and updates["f"] is None
    new = optim.apply_updates(params, updates)
    assert new["n"] == 3 and float(new["b"][0]) < 1.0


# --- inject_hyperparams -------------------------------------------------------------------


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
    assert relative_deviation(ours, theirs) < STRICT
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
        assert relative_deviation(ours, theirs) < STRICT  # sgd: the same float32 arithmetic
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
    assert relative_deviation(ours, theirs) < STRICT
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


# --- hyperparams and with_hyperparams -----------------------------------------------------


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
    assert _bits(replaced) == _bits(build(0.02, 0.7))
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


# --- bad input of the wrappers ------------------------------------------------------------


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


def _is_matrix(tree):
    return jax.tree.map(lambda x: getattr(x, "ndim", 0) > 1, tree)


MODEL_WITH_FUNCTION_LEAF = {"w": jnp.ones((2, 2)), "b": jnp.ones(2), "act": jnp.tanh}


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.adamw(1.0, weight_decay=0.5, mask=_is_matrix),
        lambda: optim.partition(
            {"decay": optim.add_decayed_weights(0.5), "keep": optim.set_to_zero()},
            lambda p: jax.tree.map(lambda x: "decay" if getattr(x, "ndim", 0) > 1 else "keep", p),
        ),
        lambda: optim.chain(optim.freeze(lambda p: _is_matrix(p)), optim.sgd(1.0)),
    ],
    ids=["adamw-mask-function", "partition-label-function", "freeze-function"],
)
def test_mask_functions_on_params_with_function_leaves(make):
    """Equinox-style params hold functions, whose gradients are None: a mask (or label)
    function, called on the updates, has no entry there, and the params are hidden with the
    mask extended by False at those leaves (the function gets no update)."""
    grads = {"w": jnp.ones((2, 2)), "b": jnp.ones(2), "act": None}
    tx = make()
    updates, _ = tx.update(grads, tx.init(MODEL_WITH_FUNCTION_LEAF), MODEL_WITH_FUNCTION_LEAF)
    assert updates["act"] is None
    assert jax.tree.structure(updates["w"]) == jax.tree.structure(grads["w"])


@pytest.mark.parametrize(
    "make",
    [
        lambda mask, labels: optim.adamw(1e-3, weight_decay=0.1, mask=mask),
        lambda mask, labels: optim.partition({"a": optim.adam(1e-3), "s": optim.sgd(1e-3)}, labels),
        lambda mask, labels: optim.freeze(mask),
    ],
    ids=["adamw-mask-tree", "partition-label-tree", "freeze-tree"],
)
def test_a_mask_tree_of_a_callable_model_is_a_tree_not_a_function(make):
    """``jax.tree.map`` over a callable pytree model (models.MLP, an equinox module) gives a
    callable tree of bools; it is a mask tree, as in optax (a function's leaves are callable)."""
    model = models.MLP.init(jax.random.PRNGKey(0), [3, 4, 2])
    mask = jax.tree.map(lambda x: x.ndim > 1, model)
    labels = jax.tree.map(lambda x: "a" if x.ndim > 1 else "s", model)
    tx = make(mask, labels)
    grads = jax.tree.map(jnp.ones_like, model)
    updates, _ = tx.update(grads, tx.init(model), model)
    assert jax.tree.structure(updates) == jax.tree.structure(model)
