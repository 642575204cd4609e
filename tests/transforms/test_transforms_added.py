"""The transforms optax added lately (optim/transforms/) against optax over one table: trajectories
under jit and vmap, one compilation, signatures, state names, complex leaves, bad input.

Trajectory parity follows tests/test_optax_parity.py.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import (
    FLOAT32_BOUND,
    PYTHON_FLOAT_BOUND,
    jitted_update,
    nested_params,
    real_and_imaginary,
    relative_deviation,
    trajectory,
)

import optim
from optim.transforms._clipping import AdaptiveGradClip
from optim.transforms._conditionality import ConditionFn
from optim.transforms._normalizing import Centralize

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
        assert relative_deviation(ours, theirs(factor)) < FLOAT32_BOUND
        # The trajectory moved: the comparison is not between two untouched trees.
        assert relative_deviation(ours, START) > 1e-3
    if name == "keep_params_nonnegative":  # the clamp binds: every parameter ends at 0
        assert all(bool(jnp.all(x == 0.0)) for x in jax.tree.leaves(batched))
    python_floats = trajectory(build(optax, float), optax.apply_updates, params=START)
    ours_python = trajectory(build(OURS, float), optim.apply_updates, params=START)
    assert relative_deviation(ours_python, python_floats) < PYTHON_FLOAT_BOUND


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
    ours, _ = jitted_update(getattr(OURS, name)(*args), grads, params)
    theirs, _ = jitted_update(getattr(optax, name)(*args), grads, params)
    assert relative_deviation(real_and_imaginary(ours), real_and_imaginary(theirs)) < FLOAT32_BOUND
    assert ours["w"].dtype == jnp.complex64


PER_EXAMPLE = {
    "a": jax.random.normal(jax.random.PRNGKey(1), (8, 3, 2)),
    "b": [jax.random.normal(jax.random.PRNGKey(2), (8,)) * 0.3],
    "c": jax.random.normal(jax.random.PRNGKey(4), (8, 5)) * 2.0,
}


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
        updates, _ = jitted_update(tx, grads, params)
        assert updates["w"].dtype == jnp.bfloat16, tx
    state = OURS.apply_every(2).init(params)
    assert state.grad_acc["w"].dtype == jnp.float32  # optax would keep bf16


def test_docstrings_cite_papers():
    assert "Brock et al., 2021" in AdaptiveGradClip.__doc__
    assert "Yong et al., 2020" in Centralize.__doc__
    assert "Abadi et al., 2016" in optim.per_example_global_norm_clip.__doc__


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
