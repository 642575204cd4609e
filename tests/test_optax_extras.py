"""optax's remaining core transformations and wrappers (sanitizing, per-example and adaptive
clipping, conditional transformations: optim/transforms/) against optax.

Trajectory parity follows tests/test_optax_parity.py: 100 float32 steps of ``convex_loss`` on
the nested tree. Ours run batched under ``vmap`` (traced hyperparameters, so float32 arithmetic
from the arrays) against optax given float32 arrays (bound 2e-6: the same arithmetic, only
XLA's fusion differs), and ours given Python floats against optax given the same Python floats
(bound 1e-6).
None of these blocks computes ``1 - b``, so both comparisons measure at most a few 1e-7.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import nested_params, relative_deviation, trajectory

import optim
from optim.transforms._clipping import AdaptiveGradClip
from optim.transforms._conditionality import ConditionFn
from optim.transforms._normalizing import Centralize

STRICT = 2e-6
PYTHON_BOUND = 1e-6
# The names this file compares with optax.
NEW_NAMES = (
    "AdaptiveGradClipState",
    "ApplyEvery",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "NonNegativeParamsState",
    "ZeroNansState",
    "adaptive_grad_clip",
    "apply_every",
    "centralize",
    "conditionally_mask",
    "conditionally_transform",
    "keep_params_nonnegative",
    "named_chain",
    "normalize_by_update_norm",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "scale_gradient",
    "selective_transform",
    "zero_nans",
)
OURS = optim
START = nested_params()
MASK = {"dense": {"w": True, "b": False}, "scale": False, "blocks": [True, (False,)]}


def _matrices(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


def _even(step):
    return step % 2 == 0


def _momentum(m, f):
    """A cheap inner transformation with a state (the wrappers' behaviour does not depend on
    which; each compilation costs time on 2 shared cores)."""
    return m.trace(f(0.9))


# (id, builder(lib, f) -> transformation); f turns a float into what the library is given,
# every float hyperparameter passed through it.
CASES = [
    (
        "adaptive_grad_clip",
        lambda m, f: m.chain(m.adaptive_grad_clip(f(0.05), f(1e-3)), m.scale(f(-0.1))),
    ),
    (
        "adaptive_grad_clip_axis",  # rank-2 leaves only: axis=1 does not exist on vectors
        lambda m, f: m.chain(
            m.masked(m.adaptive_grad_clip(f(0.05), f(1e-3), axis=1), _matrices),
            m.scale(f(-0.1)),
        ),
    ),
    ("centralize", lambda m, f: m.chain(m.centralize(), m.scale(f(-0.1)))),
    ("zero_nans", lambda m, f: m.chain(m.zero_nans(), m.scale(f(-0.1)))),
    # Steps that push every parameter down: negative ones, and later all, are clamped to 0.
    (
        "keep_params_nonnegative",
        lambda m, f: m.chain(m.scale(f(0.05)), m.keep_params_nonnegative()),
    ),
    ("normalize_by_update_norm", lambda m, f: m.normalize_by_update_norm(f(-0.1), f(1e-6))),
    ("apply_every", lambda m, f: m.chain(m.apply_every(3), m.scale(f(-0.05)))),
    (
        "conditionally_transform",
        lambda m, f: m.chain(m.conditionally_transform(_momentum(m, f), _even), m.scale(f(-0.01))),
    ),
    (
        "conditionally_mask",
        lambda m, f: m.chain(m.conditionally_mask(_momentum(m, f), _even), m.scale(f(-0.01))),
    ),
    (
        "named_chain",
        lambda m, f: m.named_chain(
            ("clip", m.clip_by_global_norm(f(1.0))), ("sgd", m.sgd(f(0.05), f(0.9)))
        ),
    ),
    (
        "selective_transform",
        lambda m, f: m.selective_transform(m.sgd(f(0.01), f(0.9)), freeze_mask=MASK),
    ),
]
CASE_IDS = [c[0] for c in CASES]


def _f32(value: float) -> jax.Array:
    return jnp.asarray(value, jnp.float32)


def _run(library, build, apply_updates):
    """``factor -> trajectory`` with every float hyperparameter multiplied by ``factor``."""

    def run(factor):
        # The initial params made outside: drawn inside jit, threefry would be compiled too.
        return trajectory(build(library, lambda v: v * factor), apply_updates, params=START)

    return run


@pytest.mark.parametrize(("name", "build"), CASES, ids=CASE_IDS)
def test_trajectory_equals_optax_under_jit_and_vmap(name, build):
    """Ours run batched, ``jax.jit(jax.vmap(...))`` over a factor multiplying every float
    hyperparameter; optax at each factor with float32 hyperparameters (one jitted program
    for both factors) and at factor 1 with Python floats. Three compilations per case."""
    factors = jnp.array([1.0, 0.7], jnp.float32)
    batched = jax.jit(jax.vmap(_run(OURS, build, optim.apply_updates)))(factors)
    theirs = jax.jit(_run(optax, build, optax.apply_updates))
    for i, factor in enumerate(factors):
        ours = jax.tree.map(lambda x, i=i: x[i], batched)
        assert relative_deviation(ours, theirs(factor)) < STRICT
        # The trajectory moved: the comparison is not between two untouched trees.
        assert relative_deviation(ours, START) > 1e-3
    if name == "keep_params_nonnegative":  # the clamp binds: every parameter ends at 0
        assert all(bool(jnp.all(x == 0.0)) for x in jax.tree.leaves(batched))
    python_floats = trajectory(build(optax, float), optax.apply_updates, params=START)
    ours_python = trajectory(build(OURS, float), optim.apply_updates, params=START)
    assert relative_deviation(ours_python, python_floats) < PYTHON_BOUND


@pytest.mark.parametrize(
    "make",
    [
        lambda c: OURS.adaptive_grad_clip(c, c / 10),
        lambda c: OURS.normalize_by_update_norm(-c, c / 10),
        lambda c: OURS.conditionally_mask(OURS.sgd(c), _even),
        lambda c: OURS.named_chain(("clip", OURS.clip(c)), ("sgd", OURS.sgd(c))),
        lambda c: OURS.selective_transform(OURS.sgd(c), freeze_mask=MASK),
    ],
)
def test_one_compilation_for_all_hyperparameter_values(params, make):
    """The transformation is a jit argument: new float hyperparameters do not recompile."""
    step = jax.jit(lambda tx, grads, state: tx.update(grads, state, params))
    grads = jax.tree.map(jnp.ones_like, params)
    results = [step(make(c), grads, make(c).init(params))[0] for c in (0.1, 0.3)]
    assert step._cache_size() == 1
    assert relative_deviation(results[0], results[1]) > 1e-3


def _public(name):
    return getattr(OURS, name)


def test_signatures_match_optax():
    """Same argument names, order, kinds and defaults as optax for every new function."""
    functions = [n for n in NEW_NAMES if n[0].islower()]
    assert len(functions) == 13
    for name in functions:
        ours = inspect.signature(_public(name)).parameters
        theirs = inspect.signature(getattr(optax, name)).parameters
        assert list(ours) == list(theirs), name
        for arg, param in theirs.items():
            assert ours[arg].kind == param.kind, (name, arg)
            assert ours[arg].default == param.default, (name, arg)


def test_state_names_and_fields_match_optax(params):
    """State records have optax's names and fields, so optax.tree.get works on ours."""
    for name in [n for n in NEW_NAMES if n[0].isupper()]:
        assert _public(name)._fields == getattr(optax, name)._fields, name
    pairs = [
        (OURS.zero_nans(), optax.zero_nans()),
        (OURS.apply_every(2), optax.apply_every(2)),
        (
            OURS.conditionally_mask(OURS.sgd(0.1), _even),
            optax.conditionally_mask(optax.sgd(0.1), _even),
        ),
        (
            OURS.conditionally_transform(OURS.sgd(0.1), _even),
            optax.conditionally_transform(optax.sgd(0.1), _even),
        ),
        (OURS.adaptive_grad_clip(0.1), optax.adaptive_grad_clip(0.1)),
        (OURS.keep_params_nonnegative(), optax.keep_params_nonnegative()),
    ]
    for ours, theirs in pairs:
        a, b = ours.init(params), theirs.init(params)
        assert type(a).__name__ == type(b).__name__ and a._fields == b._fields, (a, b)
    state = OURS.named_chain(("clip", OURS.clip(1.0)), ("sgd", OURS.sgd(0.1))).init(params)
    assert list(state) == ["clip", "sgd"] and type(state).__name__ == "OrderedDict"
    assert optax.tree.get(OURS.zero_nans().init(params), "found_nan")["scale"].dtype == bool


# --- behaviour at single steps, against optax ---------------------------------------------


def _step(tx, grads, params, state=None, **extra):
    """One jitted update (eager, each operation would compile on its own)."""
    return jax.jit(tx.update)(grads, tx.init(params) if state is None else state, params, **extra)


def test_zero_nans_against_optax(params):
    grads = jax.tree.map(jnp.ones_like, params)
    grads["dense"]["w"] = grads["dense"]["w"].at[1, 2].set(jnp.nan)
    grads["scale"] = jnp.array(jnp.inf)
    ours, ours_state = _step(OURS.zero_nans(), grads, params)
    theirs, their_state = _step(optax.zero_nans(), grads, params)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), ours, theirs))
    assert ours_state.found_nan == their_state.found_nan
    assert bool(ours_state.found_nan["dense"]["w"]) and not bool(ours_state.found_nan["scale"])


def _parts(tree):
    """Real and imaginary parts side by side (``relative_deviation`` compares real arrays)."""
    return jax.tree.map(lambda x: jnp.stack([x.real, x.imag]), tree)


@pytest.mark.parametrize(
    "name",
    ["centralize", "normalize_by_update_norm", "adaptive_grad_clip", "zero_nans", "apply_every"],
)
def test_complex_leaves_as_optax(name):
    """Complex parameters are supported where optax supports them, with optax's values."""
    key = jax.random.split(jax.random.PRNGKey(3), 4)
    params = {
        "w": jax.random.normal(key[0], (4, 3)) + 1j * jax.random.normal(key[1], (4, 3)),
        "b": jax.random.normal(key[2], (3,)) * (1 + 0.5j),
    }
    grads = jax.tree.map(lambda p: (p * 2.0 - 1j) * 3.0, params)
    args = {"normalize_by_update_norm": (-0.5,), "adaptive_grad_clip": (0.1,)}.get(name, ())
    ours, _ = _step(getattr(OURS, name)(*args), grads, params)
    theirs, _ = _step(getattr(optax, name)(*args), grads, params)
    assert relative_deviation(_parts(ours), _parts(theirs)) < STRICT
    assert ours["w"].dtype == jnp.complex64


def test_keep_params_nonnegative_rejects_complex_and_needs_params(params):
    tx = OURS.keep_params_nonnegative()
    complex_params = {**params, "scale": jnp.array(1.0 + 1.0j)}
    grads = jax.tree.map(jnp.ones_like, complex_params)
    with pytest.raises(TypeError, match=r"params\['scale'\] has dtype complex"):
        tx.update(grads, tx.init(complex_params), complex_params)
    with pytest.raises(ValueError, match=r"keep_params_nonnegative needs params"):
        tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params))


def test_adaptive_grad_clip_errors(params):
    grads = jax.tree.map(jnp.ones_like, params)
    tx = OURS.adaptive_grad_clip(0.1)
    with pytest.raises(ValueError, match=r"adaptive_grad_clip needs params"):
        tx.update(grads, tx.init(params))
    deep = {"k": jnp.ones((2,) * 6)}
    with pytest.raises(ValueError, match=r"params\['k'\] has shape \(2, 2, 2, 2, 2, 2\).*axis="):
        tx.update(deep, tx.init(deep), deep)
    # With an explicit axis any rank works, as optax.
    out, _ = _step(OURS.adaptive_grad_clip(0.1, axis=(0, 1)), deep, deep)
    theirs, _ = _step(optax.adaptive_grad_clip(0.1, axis=(0, 1)), deep, deep)
    assert relative_deviation(out, theirs) < STRICT
    with pytest.raises(ValueError, match=r"axis=2 is out of range for params\['blocks'\]\[0\]"):
        _step(OURS.adaptive_grad_clip(0.1, axis=2), grads, params)
    with pytest.raises(ValueError, match=r"grads\['dense'\]\['w'\] has shape \(3, 4\)"):
        _step(tx, {**grads, "dense": {"w": jnp.ones((3, 4)), "b": grads["dense"]["b"]}}, params)


def test_normalize_by_update_norm_zero_updates_stay_zero(params):
    """eps = 0 with all-zero updates: optax divides 0 by 0 (NaN); ours leaves them 0."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    out, _ = _step(OURS.normalize_by_update_norm(1.0, 0.0), zeros, params)
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(out))


# --- scale_gradient -----------------------------------------------------------------------


def _loss_through(scale_gradient, scale):
    def loss(params):
        scaled = scale_gradient(params, scale)
        return sum(jnp.sum(jnp.sin(x) * x) for x in jax.tree.leaves(scaled))

    return loss


@pytest.mark.parametrize("scale", [0.5, -2.0, 0.0, 1.0])
def test_scale_gradient_against_optax(params, scale):
    ours = jax.grad(_loss_through(OURS.scale_gradient, scale))(params)
    theirs = jax.grad(_loss_through(optax.scale_gradient, scale))(params)
    assert relative_deviation(ours, theirs) < STRICT
    # The forward pass is the identity.
    assert OURS.scale_gradient(params, scale)["scale"] == params["scale"]


def test_scale_gradient_traced_scale_and_passthrough(params):
    """A traced scale (vmap, jit) works; non-float leaves pass through; dtype is kept."""
    scales = jnp.array([0.5, -2.0, 0.0])
    batched = jax.jit(jax.vmap(lambda s: jax.grad(_loss_through(OURS.scale_gradient, s))(params)))(
        scales
    )
    unscaled = jax.grad(_loss_through(OURS.scale_gradient, 1.0))(params)
    for i, s in enumerate(scales):
        expected = jax.tree.map(lambda g, s=s: g * s, unscaled)
        assert relative_deviation(jax.tree.map(lambda x, i=i: x[i], batched), expected) < 1e-6
    tree = {"w": jnp.ones(2, jnp.bfloat16), "n": 3, "f": None, "i": jnp.arange(2)}
    out = OURS.scale_gradient(tree, 0.5)
    assert out["n"] == 3 and out["f"] is None and out["i"] is tree["i"]
    grad = jax.grad(lambda w: jnp.sum(OURS.scale_gradient({"w": w}, 0.5)["w"]))(tree["w"])
    assert grad.dtype == jnp.bfloat16 and grad.tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match=r"scale must be finite"):
        OURS.scale_gradient(tree, float("nan"))


# --- per-example clipping -----------------------------------------------------------------

PER_EXAMPLE = {
    "a": jax.random.normal(jax.random.PRNGKey(1), (8, 3, 2)),
    "b": [jax.random.normal(jax.random.PRNGKey(2), (8,)) * 0.3],
    "c": jax.random.normal(jax.random.PRNGKey(4), (8, 5)) * 2.0,
}


@pytest.mark.parametrize("bound", [0.0, 2.0, 5.0, float("inf")])
def test_per_example_clipping_against_optax(bound):
    for f in (float, _f32):
        ours = OURS.per_example_global_norm_clip(PER_EXAMPLE, f(bound))
        theirs = optax.per_example_global_norm_clip(PER_EXAMPLE, f(bound))
        assert relative_deviation(ours[0], theirs[0]) < STRICT
        assert int(ours[1]) == int(theirs[1])
        for uniform in (True, False):
            ours = OURS.per_example_layer_norm_clip(PER_EXAMPLE, f(bound), uniform)
            theirs = optax.per_example_layer_norm_clip(PER_EXAMPLE, f(bound), uniform)
            assert relative_deviation(ours[0], theirs[0]) < STRICT
            assert jax.tree.map(int, ours[1]) == jax.tree.map(int, theirs[1])
    # 5.0 clips 3 of the 8 examples (2.0 all of "a" and none of "b"): the counts inform.
    assert int(OURS.per_example_global_norm_clip(PER_EXAMPLE, 5.0)[1]) == 3


def test_per_example_clipping_jit_vmap_complex_and_passthrough():
    """Jitted (eagerly each complex operation would compile on its own), vmapped over the
    bound, on complex gradients as optax, with ``None`` leaves passed through."""
    with_none = {**PER_EXAMPLE, "n": None}
    clipped, counts = jax.jit(OURS.per_example_layer_norm_clip)(with_none, 1.0)
    assert clipped["n"] is None and counts["n"] is None and clipped["a"].shape == (3, 2)
    global_clip = jax.jit(OURS.per_example_global_norm_clip)
    complex_grads = jax.tree.map(lambda x: x * (1 - 0.5j), PER_EXAMPLE)
    ours = global_clip(complex_grads, 5.0)
    theirs = jax.jit(optax.per_example_global_norm_clip)(complex_grads, 5.0)
    assert relative_deviation(_parts(ours[0]), _parts(theirs[0])) < STRICT
    assert int(ours[1]) == int(theirs[1]) > 0
    bounds = jnp.array([0.5, 5.0])
    batched = jax.jit(jax.vmap(global_clip, (None, 0)))(PER_EXAMPLE, bounds)
    for i, bound in enumerate(bounds):
        single = global_clip(PER_EXAMPLE, bound)
        assert relative_deviation(jax.tree.map(lambda x, i=i: x[i], batched[0]), single[0]) < 1e-6
        assert int(batched[1][i]) == int(single[1])


@pytest.mark.parametrize(
    "function", [optim.per_example_global_norm_clip, optim.per_example_layer_norm_clip]
)
def test_per_example_clipping_errors(function):
    name = function.__name__
    with pytest.raises(
        ValueError,
        match=rf"{name}: grads\['c'\] has 4 examples on axis 0 but "
        r"grads\['a'\] has 8",
    ):
        function({**PER_EXAMPLE, "c": jnp.ones((4, 5))}, 1.0)
    with pytest.raises(ValueError, match=rf"{name}: grads\['s'\] is a scalar"):
        function({**PER_EXAMPLE, "s": jnp.ones(())}, 1.0)
    with pytest.raises(TypeError, match=r"grads\['a'\] is an array of dtype int32"):
        function({"a": jnp.ones((8, 2), jnp.int32)}, 1.0)
    argument = list(inspect.signature(function).parameters)[1]
    for bad, error in [(-1.0, r"must be in \[0.0, inf\)"), (float("nan"), r"must be finite")]:
        with pytest.raises(ValueError, match=rf"{argument} {error}"):
            function(PER_EXAMPLE, bad)
    with pytest.raises(TypeError, match=r"l2_norm_clip must be a number|global_l2_norm_clip"):
        function(PER_EXAMPLE, "abc")


# --- wrappers: counters and inner state as optax ------------------------------------------


@pytest.mark.parametrize("kind", ["conditionally_transform", "conditionally_mask"])
def test_conditional_wrappers_step_by_step(params, kind):
    """Each step's updates and the whole state (step counter, inner state left untouched at
    rejected steps) equal optax's."""
    ours_tx = getattr(OURS, kind)(OURS.adam(0.1), _even)
    their_tx = getattr(optax, kind)(optax.adam(0.1), _even)
    ours_state, their_state = ours_tx.init(params), their_tx.init(params)
    ours_update, their_update = jax.jit(ours_tx.update), jax.jit(their_tx.update)
    grads = jax.grad(lambda p: sum(jnp.sum(x**2) for x in jax.tree.leaves(p)))(params)
    for _ in range(4):
        before = ours_state.inner_state
        ours, ours_state = ours_update(grads, ours_state, params)
        theirs, their_state = their_update(grads, their_state, params)
        assert relative_deviation(ours, theirs) < STRICT
        assert relative_deviation(ours_state, their_state) < STRICT
        if int(ours_state.step) % 2 == 0:  # the step just taken was odd: rejected
            unchanged = jax.tree.map(jnp.array_equal, ours_state.inner_state, before)
            assert all(bool(u) for u in jax.tree.leaves(unchanged))
            expected = jax.tree.map(jnp.zeros_like, grads) if kind.endswith("mask") else grads
            assert relative_deviation(ours, expected) == 0.0
    assert int(ours_state.step) == 4 and int(ours_state.inner_state[0].count) == 2


def test_conditional_forward_extra_args_and_checks(params):
    grads = jax.tree.map(jnp.ones_like, params)
    tx = OURS.conditionally_mask(OURS.sgd(1.0), lambda step, loss: loss < 1.0, True)
    applied, _ = _step(tx, grads, params, loss=jnp.float32(0.5))
    rejected, _ = _step(tx, grads, params, loss=jnp.float32(2.0))
    assert float(applied["scale"]) == -1.0 and float(rejected["scale"]) == 0.0
    with pytest.raises(ValueError, match=r"should_transform_fn must return a boolean scalar"):
        _step(OURS.conditionally_mask(OURS.sgd(1.0), lambda step: step), grads, params)
    with pytest.raises(TypeError, match=r"should_transform_fn must be a function"):
        OURS.conditionally_transform(OURS.sgd(1.0), True)
    with pytest.raises(TypeError, match=r"forward_extra_args must be True or False, got str"):
        OURS.conditionally_transform(OURS.sgd(1.0), _even, "yes")
    with pytest.raises(TypeError, match=r"inner must be a gradient transformation"):
        OURS.conditionally_mask(optim.sgd, _even)


def test_apply_every_state_as_optax(params):
    grads = jax.tree.map(jnp.ones_like, params)
    ours_tx, their_tx = OURS.apply_every(3), optax.apply_every(3)
    ours_state, their_state = ours_tx.init(params), their_tx.init(params)
    for _ in range(5):
        ours, ours_state = ours_tx.update(grads, ours_state)
        theirs, their_state = their_tx.update(grads, their_state)
        assert relative_deviation(ours, theirs) == 0.0
        assert int(ours_state.count) == int(their_state.count)
        assert relative_deviation(ours_state.grad_acc, their_state.grad_acc) == 0.0
    with pytest.raises(ValueError, match=r"k must be an int >= 1, got 0"):
        OURS.apply_every(0)
    for bad in (2.5, True):
        with pytest.raises(TypeError, match=r"k must be an int, got"):
            OURS.apply_every(bad)


def test_named_chain_and_selective_transform_checks(params):
    tx = OURS.named_chain(("clip", OURS.clip(1.0)), ("sgd", OURS.sgd(0.1)))
    grads = jax.tree.map(jnp.ones_like, params)
    with pytest.raises(ValueError, match=r"does not belong to this named_chain of \['clip', 'sgd'"):
        tx.update(grads, {"clip": (), "adam": ()}, params)
    with pytest.raises(ValueError, match=r"names must be unique; repeated: \['a'\]"):
        OURS.named_chain(("a", OURS.clip(1.0)), ("a", OURS.sgd(0.1)))
    with pytest.raises(TypeError, match=r"named_chain argument 1 must be a \(name, transf"):
        OURS.named_chain(("a", OURS.clip(1.0)), OURS.sgd(0.1))
    with pytest.raises(
        ValueError,
        match=r"freeze_mask must have the structure of params.*"
        r"not in params: freeze_mask\['x'\]",
    ):
        OURS.selective_transform(OURS.sgd(0.1), freeze_mask={"x": True}).init(params)
    with pytest.raises(TypeError, match=r"freeze_mask\['dense'\]\['w'\] must be a Python bool"):
        OURS.selective_transform(OURS.sgd(0.1), freeze_mask={"dense": {"w": 1, "b": True}})
    # A single bool and a function of the params, as the mask of freeze().
    frozen, _ = _step(OURS.selective_transform(OURS.sgd(0.1), freeze_mask=True), grads, params)
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(frozen))
    by_fn, _ = _step(OURS.selective_transform(OURS.sgd(0.1), freeze_mask=_matrices), grads, params)
    by_tree, _ = _step(OURS.selective_transform(OURS.sgd(0.1), freeze_mask=MASK), grads, params)
    assert relative_deviation(by_fn, by_tree) == 0.0


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: OURS.adaptive_grad_clip(float("nan")), ValueError, r"clipping must be finite"),
        (lambda: OURS.adaptive_grad_clip(-1.0), ValueError, r"clipping must be in \[0.0, inf\)"),
        (lambda: OURS.adaptive_grad_clip(0.1, -1.0), ValueError, r"eps must be in \[0.0, inf\)"),
        (lambda: OURS.adaptive_grad_clip(0.1, axis="0"), TypeError, r"axis must be None, an int"),
        (lambda: OURS.normalize_by_update_norm(float("nan")), ValueError, r"scale_factor must"),
        (lambda: OURS.normalize_by_update_norm(1.0, -1.0), ValueError, r"eps must be in \[0.0"),
        (lambda: OURS.normalize_by_update_norm("abc"), TypeError, r"scale_factor must be a num"),
        (
            lambda: OURS.per_example_layer_norm_clip(PER_EXAMPLE, 1.0, 1),
            TypeError,
            r"uniform must be True or False, got int 1",
        ),
    ],
)
def test_bad_hyperparameters(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    "name",
    [
        "zero_nans",
        "centralize",
        "normalize_by_update_norm",
        "adaptive_grad_clip",
        "keep_params_nonnegative",
        "apply_every",
    ],
)
def test_non_array_leaves_pass_through(name):
    """A tree with ``None`` and a Python number: they get ``None`` updates, as everywhere."""
    params = {"w": jnp.ones((2, 3)), "none": None, "n": 3}
    grads = {"w": jnp.full((2, 3), 0.5), "none": None, "n": None}
    args = {"adaptive_grad_clip": (0.1,)}.get(name, ())
    tx = getattr(OURS, name)(*args)
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    assert updates["none"] is None and updates["n"] is None
    assert updates["w"].shape == (2, 3) and bool(jnp.all(jnp.isfinite(updates["w"])))


def test_bfloat16_updates_keep_their_dtype():
    params = {"w": jnp.ones((2, 3), jnp.bfloat16)}
    grads = {"w": jnp.full((2, 3), -2.0, jnp.bfloat16)}
    for tx in (
        OURS.centralize(),
        OURS.normalize_by_update_norm(),
        OURS.apply_every(2),
        OURS.adaptive_grad_clip(0.1),
        OURS.keep_params_nonnegative(),
    ):
        updates, _ = _step(tx, grads, params)
        assert updates["w"].dtype == jnp.bfloat16, tx
    state = OURS.apply_every(2).init(params)
    assert state.grad_acc["w"].dtype == jnp.float32  # optax would keep bf16


def test_docstrings_cite_papers():
    assert "Brock et al., 2021" in AdaptiveGradClip.__doc__
    assert "Yong et al., 2020" in Centralize.__doc__
    assert "Abadi et al., 2016" in optim.per_example_global_norm_clip.__doc__


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


# --- unitwise_norm and unitwise_clip (optax.transforms' helpers of adaptive_grad_clip) -----

UNIT_SHAPES = [(), (5,), (1, 5), (4, 3), (2, 3, 4), (2, 2, 3, 4), (2, 2, 2, 3, 4)]


@pytest.mark.parametrize("shape", UNIT_SHAPES, ids=str)
def test_unitwise_norm_matches_optax_bitwise(shape):
    x = jax.random.normal(jax.random.PRNGKey(len(shape)), shape)
    ours = optim.transforms.unitwise_norm(x)
    theirs = optax.transforms.unitwise_norm(x)
    assert ours.shape == x.shape and ours.dtype == theirs.dtype
    assert ours.tobytes() == theirs.tobytes()  # float32: the same sum of squares and sqrt
    if len(shape) >= 2:
        axis = (len(shape) - 1,)
        assert (
            optim.transforms.unitwise_norm(x, axis=axis).tobytes()
            == optax.transforms.unitwise_norm(x, axis=axis).tobytes()
        )


def test_unitwise_norm_dtypes_and_errors():
    z = jnp.array([3 + 4j, 0j], jnp.complex64)
    assert optim.transforms.unitwise_norm(z).dtype == jnp.float32
    np.testing.assert_array_equal(optim.transforms.unitwise_norm(z), [5.0, 5.0])
    half = optim.transforms.unitwise_norm(jnp.full((2, 2), 300.0, jnp.bfloat16))
    assert half.dtype == jnp.bfloat16 and float(half[0, 0]) == pytest.approx(424.26, rel=4e-3)
    with pytest.raises(ValueError, match=r"x has shape \(2, 2, 2, 2, 2, 2\); without axis"):
        optim.transforms.unitwise_norm(jnp.ones((2,) * 6))
    with pytest.raises(ValueError, match=r"axis=3 is out of range for x of shape \(2, 2\)"):
        optim.transforms.unitwise_norm(jnp.ones((2, 2)), axis=3)
    with pytest.raises(TypeError, match="axis must be None, an int or a tuple of ints"):
        optim.transforms.unitwise_norm(jnp.ones(2), axis=0.5)


def test_unitwise_clip_matches_optax_bitwise():
    grad = jax.random.normal(jax.random.PRNGKey(0), (4, 3)) * 3.0
    g_norm = optim.transforms.unitwise_norm(grad)
    max_norm = jnp.full_like(grad, 4.0)
    ours = optim.transforms.unitwise_clip(g_norm, max_norm, grad)
    theirs = optax.transforms.unitwise_clip(g_norm, max_norm, grad)
    assert ours.tobytes() == theirs.tobytes()
    assert bool(jnp.any(ours != grad))  # some units clipped
    unclipped = optim.transforms.unitwise_clip(g_norm, max_norm * 100, grad, div_eps=1e-3)
    assert unclipped.tobytes() == grad.tobytes()
    with pytest.raises(ValueError, match=r"max_norm has shape \(3,\) but g_norm has shape"):
        optim.transforms.unitwise_clip(g_norm, jnp.ones(3), grad)
    with pytest.raises(ValueError, match=r"grad has shape \(3, 4\)"):
        optim.transforms.unitwise_clip(g_norm, max_norm, grad.T)


def test_type_protocols_are_exported_where_optax_has_them():
    assert optim.transforms.ConditionFn is ConditionFn
    assert optim.transforms.ShouldSkipUpdateFunction is optim.ShouldSkipUpdateFunction
    for name in ("unitwise_norm", "unitwise_clip", "ConditionFn"):
        assert hasattr(optax.transforms, name) and name in optim.transforms.__all__
    for name in ("unitwise_norm", "unitwise_clip"):
        ours = inspect.signature(getattr(optim.transforms, name)).parameters
        theirs = inspect.signature(getattr(optax.transforms, name)).parameters
        assert list(ours) == list(theirs)
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]
