"""optim.tree and optim.tree_utils against optax.tree and optax.tree_utils as the oracle.

The arithmetic is optax's, so values are compared bit for bit (dtype, shape and bytes of
every leaf); paths found in states are compared as strings (our NamedTupleKey and optax's are
different classes that print alike).
"""

from __future__ import annotations

import doctest
import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from optim.tree import (
    _arithmetic,
    _casting,
    _map_params,
    _moments,
    _random,
    _reductions,
    _state_access,
)


class Pair(NamedTuple):
    first: Any
    second: Any


def _tree(seed: int, dtype: Any = jnp.float32) -> dict:
    """Dicts, a list, a NamedTuple with a None, a scalar and an empty leaf."""
    k = jax.random.split(jax.random.PRNGKey(seed), 5)

    def normal(i: int, shape: tuple[int, ...]) -> jax.Array:
        return jax.random.normal(k[i], shape, dtype)

    return {
        "dense": {"w": normal(0, (4, 3)), "b": normal(1, (3,))},
        "blocks": [normal(2, (2, 5)), Pair(normal(3, (6,)), None)],
        "scalar": normal(4, ()),
        "empty": jnp.zeros((0,), dtype),
    }


def _complex_tree(seed: int) -> dict:
    return jax.tree.map(lambda r, i: r + 1j * i, _tree(seed), _tree(seed + 100))


X, Y, Z = _tree(0), _tree(1), _tree(2)
X16, Y16 = _tree(0, jnp.bfloat16), _tree(1, jnp.bfloat16)
XC, YC = _complex_tree(0), _complex_tree(1)
POSITIVE = jax.tree.map(lambda x: jnp.abs(x) + 0.5, Y)


def assert_identical(ours: Any, theirs: Any) -> None:
    """Same structure, and every leaf of the same type, dtype, shape and bytes (typed random
    keys compared by their data)."""
    ours, theirs = optax.tree.unwrap_random_key_data((ours, theirs))
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        if not isinstance(b, (jax.Array, np.ndarray, np.generic)):
            assert type(a) is type(b) and (a == b or (a != a and b != b)), (a, b)
            continue
        assert isinstance(a, type(b)) or isinstance(b, type(a)), (type(a), type(b))
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
        assert getattr(a, "weak_type", False) == getattr(b, "weak_type", False)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (a, b)


# --- names and signatures -----------------------------------------------------------------

OPTAX_TREE_NAMES = sorted(n for n in dir(optax.tree) if not n.startswith("_"))
OPTAX_TREE_UTILS_NAMES = sorted(
    n for n in dir(optax.tree_utils) if not n.startswith("_") and n not in ("functools", "typing")
)


def test_tree_has_every_name_of_optax_tree():
    assert len(OPTAX_TREE_NAMES) == 35
    assert optim.tree.__all__ == OPTAX_TREE_NAMES  # written sorted
    assert all(hasattr(optim.tree, name) for name in OPTAX_TREE_NAMES)


def test_tree_utils_names_are_the_same_functions():
    assert sorted(optim.tree_utils.__all__) == OPTAX_TREE_UTILS_NAMES
    for name in optim.tree.__all__:
        assert getattr(optim.tree_utils, f"tree_{name}") is getattr(optim.tree, name)
    assert optim.tree_utils.NamedTupleKey is _state_access.NamedTupleKey


def test_top_level_names_as_optax():
    assert optim.tree_map_params is optim.tree.map_params
    for name in ["bias_correction", "update_moment", "update_infinity_moment"]:
        assert getattr(optim, name) is getattr(optim.tree, name)
    assert optim.update_moment_per_elem_norm is optim.tree.update_moment_per_elem_norm
    assert optim.MaskedNode is optim.transforms.MaskedNode
    assert optim.MaskedNode._fields == () and issubclass(optim.MaskedNode, tuple)
    for name in ["tree", "tree_utils", "tree_map_params", "MaskedNode", "bias_correction"]:
        assert name in optim.__all__ and hasattr(optax, name)
    assert "MaskedNode" in optim.transforms.__all__


@pytest.mark.parametrize("name", OPTAX_TREE_NAMES)
def test_signature_matches_optax(name):
    ours = inspect.signature(getattr(optim.tree, name)).parameters
    theirs = inspect.signature(getattr(optax.tree, name)).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()
    ]


def test_deprecated_tree_utils_names_warn_and_work():
    with pytest.warns(DeprecationWarning, match="tree_scale"):
        scalar_mul = optim.tree_utils.tree_scalar_mul
    assert scalar_mul is optim.tree.scale
    with pytest.warns(DeprecationWarning, match="ord=1"):
        l1 = optim.tree_utils.tree_l1_norm
    assert float(l1(X)) == float(optim.tree.norm(X, ord=1))
    with pytest.raises(AttributeError, match="no attribute 'tree_nonexistent'"):
        optim.tree_utils.tree_nonexistent  # noqa: B018


# --- arithmetic ---------------------------------------------------------------------------

ARITHMETIC = {
    "add": lambda t, x, y: t.add(x, y),
    "add3": lambda t, x, y: t.add(x, y, x),
    "sub": lambda t, x, y: t.sub(x, y),
    "mul": lambda t, x, y: t.mul(x, y),
    "div": lambda t, x, y: t.div(x, y),
    "scale": lambda t, x, y: t.scale(0.3, x),
    "scale_array": lambda t, x, y: t.scale(jnp.asarray(1.7), x),
    "add_scale": lambda t, x, y: t.add_scale(x, 0.3, y),
    "conj": lambda t, x, y: t.conj(x),
    "real": lambda t, x, y: t.real(x),
    "clip": lambda t, x, y: t.clip(x, -0.5, 0.25),
    "clip_max": lambda t, x, y: t.clip(x, max_value=0.1),
    "where_true": lambda t, x, y: t.where(True, x, y),
    "where_false": lambda t, x, y: t.where(jnp.array(False), x, y),
    "batch_shape": lambda t, x, y: t.batch_shape(x, (2, 1)),
    "zeros_like": lambda t, x, y: t.zeros_like(x),
    "ones_like_int": lambda t, x, y: t.ones_like(x, dtype=jnp.int32),
    "full_like": lambda t, x, y: t.full_like(x, 3.5),
    "full_like_dtype": lambda t, x, y: t.full_like(x, 2, jnp.bfloat16),
}
TREES = {"f32": (X, Y), "bf16": (X16, Y16), "complex": (XC, YC)}


@pytest.mark.parametrize("kind", TREES)
@pytest.mark.parametrize("name", ARITHMETIC)
def test_arithmetic_bitwise(name, kind):
    if name.startswith("clip") and kind == "complex":
        pytest.skip("complex numbers have no order")
    x, y = TREES[kind]
    if name == "div":
        y = jax.tree.map(lambda a: a + 2, y)
    fn = ARITHMETIC[name]
    assert_identical(fn(optim.tree, x, y), fn(optax.tree, x, y))


def test_add_starts_from_zero_as_optax():
    """0 + (-0.0) is +0.0: the sign of a zero sum is optax's."""
    x = {"a": jnp.array([-0.0, 1.0])}
    assert_identical(optim.tree.add(x, x), optax.tree.add(x, x))
    assert not jnp.signbit(optim.tree.add(x, x)["a"][0])


def test_add_scale_keeps_none_of_tree_x():
    x, y = {"a": None, "b": jnp.ones(2)}, {"a": jnp.ones(3), "b": jnp.ones(2)}
    ours = optim.tree.add_scale(x, 2.0, y)
    assert ours["a"] is None
    assert_identical(ours, optax.tree.add_scale(x, 2.0, y))


def test_arithmetic_on_python_numbers():
    x, y = {"a": 1.0, "b": [2, 3]}, {"a": 0.5, "b": [4, 5]}
    for name in ["add", "sub", "mul", "div"]:
        assert getattr(optim.tree, name)(x, y) == getattr(optax.tree, name)(x, y)


def test_arithmetic_structure_mismatch_raises_valueerror():
    with pytest.raises(ValueError):
        optim.tree.add({"a": jnp.ones(2)}, {"b": jnp.ones(2)})


# --- reductions ---------------------------------------------------------------------------

REDUCTIONS = {
    "sum": lambda t, x, y: t.sum(x),
    "sum_associative": lambda t, x, y: t.sum(x, associative_reduction=True),
    "max": lambda t, x, y: t.max(x),
    "min": lambda t, x, y: t.min(x),
    "size": lambda t, x, y: t.size(x),
    "vdot": lambda t, x, y: t.vdot(x, y),
    "norm": lambda t, x, y: t.norm(x),
    "norm_squared": lambda t, x, y: t.norm(x, squared=True),
    "norm_2": lambda t, x, y: t.norm(x, 2),
    "norm_1": lambda t, x, y: t.norm(x, ord=1),
    "norm_1_squared": lambda t, x, y: t.norm(x, ord=1, squared=True),
    "norm_inf": lambda t, x, y: t.norm(x, ord=jnp.inf),
    "norm_inf_str": lambda t, x, y: t.norm(x, ord="inf", squared=True),
    "norm_infinity": lambda t, x, y: t.norm(x, ord="infinity"),
    "allclose_same": lambda t, x, y: t.allclose(x, x),
    "allclose_different": lambda t, x, y: t.allclose(x, y),
    "allclose_tolerant": lambda t, x, y: t.allclose(x, y, rtol=10.0, atol=10.0),
}


@pytest.mark.parametrize("kind", TREES)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_bitwise(name, kind):
    if name in ("max", "min") and kind == "complex":
        pytest.skip("complex numbers have no order")
    x, y = TREES[kind]
    fn = REDUCTIONS[name]
    assert_identical(fn(optim.tree, x, y), fn(optax.tree, x, y))


@pytest.mark.parametrize("name", ["sum", "max", "min", "size", "norm", "norm_1", "vdot"])
def test_reductions_of_trees_without_leaves(name):
    fn = REDUCTIONS[name]
    for empty in [{}, {"a": None}, []]:
        assert_identical(fn(optim.tree, empty, empty), fn(optax.tree, empty, empty))


def test_reductions_of_integer_trees_stay_integer():
    x = {"a": jnp.array([1, 2]), "b": jnp.array([1, 2])}
    y = {"a": jnp.array([-1, -1]), "b": jnp.array([1, 1])}
    for name in ["sum", "max", "min", "vdot", "norm_1"]:
        fn = REDUCTIONS[name]
        assert_identical(fn(optim.tree, x, y), fn(optax.tree, x, y))
    assert optim.tree.vdot(x, y).dtype == jnp.int32


def test_vdot_conjugates_the_first_tree():
    x, y = {"a": jnp.array([1j])}, {"a": jnp.array([1j])}
    assert complex(optim.tree.vdot(x, y)) == 1.0


def test_reductions_under_jit():
    for name in ["sum", "vdot", "norm", "max"]:
        fn = REDUCTIONS[name]
        ours = jax.jit(lambda x, y, fn=fn: fn(optim.tree, x, y))(X, Y)
        theirs = jax.jit(lambda x, y, fn=fn: fn(optax.tree, x, y))(X, Y)
        assert_identical(ours, theirs)


def test_vdot_under_explicit_sharding():
    """jnp.vdot ravels a sharded contraction, which explicit sharding rejects (optax 0.2.8
    takes that path on this JAX); the contraction over every axis gives a replicated scalar."""
    mesh = jax.make_mesh((1,), ("x",), axis_types=(jax.sharding.AxisType.Explicit,))
    with jax.set_mesh(mesh):
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("x"))
        a = jax.device_put(jnp.arange(4.0).reshape(2, 2), sharding)
        b = jax.device_put(jnp.ones((2, 2)), sharding)
        result = jax.jit(optim.tree.vdot)({"a": a}, {"a": b})
    assert float(result) == 6.0
    assert result.sharding.spec == jax.sharding.PartitionSpec()


def test_vdot_shape_mismatch_names_the_leaf():
    with pytest.raises(ValueError, match=r"tree_x\['a'\] has shape \(2,\) but tree_y\['a'\]"):
        optim.tree.vdot({"a": jnp.ones(2)}, {"a": jnp.ones(3)})


def test_norm_unsupported_ord():
    with pytest.raises(ValueError, match="ord must be None, 1, 2"):
        optim.tree.norm(X, ord=3)
    with pytest.raises(ValueError, match="'fro'"):
        optim.tree.norm(X, ord="fro")


# --- casting ------------------------------------------------------------------------------


def test_cast_and_cast_like_bitwise():
    for dtype in [jnp.bfloat16, jnp.float16, jnp.int32, None]:
        assert_identical(optim.tree.cast(X, dtype), optax.tree.cast(X, dtype))
    assert optim.tree.cast(X, None) is X
    other = {**jax.tree.map(lambda x: x.astype(jnp.bfloat16), X), "scalar": 2.0}
    assert_identical(optim.tree.cast_like(X, other), optax.tree.cast_like(X, other))
    assert optim.tree.cast_like(X, other)["scalar"] is X["scalar"]  # no dtype: left as it is


MIXED = {"a": jnp.ones(2, jnp.float16), "b": [jnp.ones(3, jnp.float32), jnp.ones((), jnp.int8)]}


@pytest.mark.parametrize("handler", ["promote", "highest", "lowest"])
@pytest.mark.parametrize(
    "tree",
    [X, X16, MIXED, {}, {"a": 1.0, "b": 2}, {"a": jnp.ones(2, jnp.int32), "b": 3}],
    ids=["f32", "bf16", "mixed", "empty", "python", "int-and-python"],
)
def test_dtype_as_optax(tree, handler):
    assert optim.tree.dtype(tree, handler) == optax.tree.dtype(tree, handler)
    if len({jnp.asarray(x).dtype for x in jax.tree.leaves(tree)}) <= 1:
        assert optim.tree.dtype(tree) == optax.tree.dtype(tree)


def test_dtype_errors():
    with pytest.raises(ValueError, match=r"the first is float16, but tree\['b'\]\[0\] has dtype"):
        optim.tree.dtype(MIXED)
    unordered = {"a": jnp.ones(2, jnp.bfloat16), "b": jnp.ones(2, jnp.float16)}
    assert optim.tree.dtype(unordered, "promote") == optax.tree.dtype(unordered, "promote")
    for handler in ["highest", "lowest"]:
        with pytest.raises(ValueError, match="neither promotes to the other"):
            optim.tree.dtype(unordered, handler)
    with pytest.raises(ValueError, match="mixed_dtype_handler must be one of"):
        optim.tree.dtype(X, "largest")


# --- random -------------------------------------------------------------------------------

KEYS = {"typed": jax.random.key(42), "raw": jax.random.PRNGKey(42)}


def _numbers(tree: Any) -> Any:
    return optax.tree.unwrap_random_key_data(tree)


@pytest.mark.parametrize("key", KEYS)
def test_split_key_like_as_optax(key):
    ours = optim.tree.split_key_like(KEYS[key], X)
    assert_identical(_numbers(ours), _numbers(optax.tree.split_key_like(KEYS[key], X)))
    assert ours["blocks"][1].second is None


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    "sampler, dtype",
    [
        (jax.random.normal, None),
        (jax.random.uniform, jnp.bfloat16),
        (jax.random.rademacher, jnp.int32),
        (lambda key, shape, dtype: jax.random.bernoulli(key, 0.3, shape).astype(dtype), None),
    ],
    ids=["normal", "uniform-bf16", "rademacher-int", "sampler-without-sharding"],
)
def test_random_like_gives_optax_numbers(key, sampler, dtype):
    ours = optim.tree.random_like(KEYS[key], X, sampler, dtype)
    assert_identical(ours, optax.tree.random_like(KEYS[key], X, sampler, dtype))


def test_random_like_under_jit():
    ours = jax.jit(optim.tree.random_like)(KEYS["typed"], X)
    assert_identical(ours, jax.jit(optax.tree.random_like)(KEYS["typed"], X))


def test_unwrap_random_key_data():
    tree = {"key": jax.random.key(3), "raw": jax.random.PRNGKey(3), "x": X["scalar"], "n": None}
    ours = optim.tree.unwrap_random_key_data(tree)
    assert_identical(ours, optax.tree.unwrap_random_key_data(tree))
    assert ours["key"].dtype == jnp.uint32 and ours["x"] is X["scalar"]


# --- moments ------------------------------------------------------------------------------

WITH_NONE = {"a": jnp.arange(3.0), "b": None, "c": [jnp.full((2,), -1.5)]}
MOMENTS = jax.tree.map(lambda x: x * 0.25 + 1, WITH_NONE)
WITH_NONE_C = {"a": jnp.arange(3.0) + 2j, "b": None}
MOMENTS_C = {"a": jnp.ones(3), "b": None}


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.update_moment(X, POSITIVE, 0.9, 1),
        lambda t: t.update_moment(X, POSITIVE, 0.999, 2),
        lambda t: t.update_moment(X16, Y16, 0.9, 2),
        lambda t: t.update_moment(WITH_NONE, MOMENTS, jnp.asarray(0.8), 2),
        lambda t: t.update_infinity_moment(X, POSITIVE, 0.999, 1e-8),
        lambda t: t.update_infinity_moment(WITH_NONE, MOMENTS, 0.9, 0.0),
        lambda t: t.update_moment_per_elem_norm(X, POSITIVE, 0.9, 2),
        lambda t: t.update_moment_per_elem_norm(X, POSITIVE, 0.9, 3),
        lambda t: t.update_moment_per_elem_norm(WITH_NONE_C, MOMENTS_C, 0.9, 2),
        lambda t: t.update_moment_per_elem_norm(WITH_NONE_C, MOMENTS_C, 0.9, 3),
        lambda t: t.update_moment_per_elem_norm(XC, jax.tree.map(jnp.abs, YC), 0.99, 1),
        lambda t: t.bias_correction(POSITIVE, 0.9, 1),
        lambda t: t.bias_correction(POSITIVE, 0.999, jnp.asarray(7)),
        lambda t: t.bias_correction(X16, 0.999, 3),
        lambda t: t.bias_correction(WITH_NONE, jnp.asarray(0.5, jnp.float32), jnp.int32(2)),
    ],
    ids=[
        "moment-1",
        "moment-2",
        "moment-bf16",
        "moment-none",
        "infinity",
        "infinity-none",
        "per-elem-real-2",
        "per-elem-real-3",
        "per-elem-complex-2",
        "per-elem-complex-3",
        "per-elem-complex-1",
        "bias-1",
        "bias-7",
        "bias-bf16",
        "bias-none",
    ],
)
def test_moments_bitwise(call):
    assert_identical(call(optim.tree), call(optax.tree))


def test_moments_keep_none_and_bias_correction_keeps_bf16():
    assert optim.tree.update_moment(WITH_NONE, MOMENTS, 0.9, 2)["b"] is None
    assert optim.tree.update_infinity_moment(WITH_NONE, MOMENTS, 0.9, 0.0)["b"] is None
    # 1 - 0.999**3 in bfloat16 is 0 (0.999 rounds to 1): computed in float32, then cast.
    corrected = optim.tree.bias_correction(X16, 0.999, 3)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(corrected))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(corrected))


# --- get, set, get_all_with_path ----------------------------------------------------------

PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}


def _found(found: list) -> list:
    """``(path, value)`` pairs as ``(printed path, value)``: paths of ours and optax's print
    alike; values compared with ``assert_identical``."""
    return [(jax.tree_util.keystr(path), value) for path, value in found]


def _assert_same_found(ours: list, theirs: list) -> None:
    assert [p for p, _ in _found(ours)] == [p for p, _ in _found(theirs)]
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        assert_identical(a, b)


class Inner(NamedTuple):
    count: Any
    mu: Any


class Outer(NamedTuple):
    count: Any
    inner: Any
    extra: Any


NESTED = {
    "opt": Outer(
        count=jnp.array(1),
        inner=(Inner(jnp.array(2), {"w": jnp.ones(2)}), [Inner(jnp.array(3), None)]),
        extra={"count": jnp.array(4), "mu": Inner(jnp.array(5), jnp.zeros(1))},
    ),
    "count": jnp.array(6),
    "list": [Inner(jnp.array(7), {"count": jnp.array(8)})],
}

STATES = {
    "adam": lambda m: m.adam(1e-3).init(PARAMS),
    "chain": lambda m: m.chain(m.clip_by_global_norm(1.0), m.adamw(1e-3)).init(PARAMS),
    "masked": lambda m: m.masked(m.adam(1e-3), {"w": True, "b": False}).init(PARAMS),
    "inject": lambda m: m.inject_hyperparams(m.adam)(learning_rate=1e-3).init(PARAMS),
    "noise": lambda m: m.chain(m.add_noise(0.1, 0.55, 0), m.scale_by_adam()).init(PARAMS),
}


@pytest.mark.parametrize("lib", [optim, optax], ids=["our-state", "optax-state"])
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize(
    "key", ["count", "mu", "nu", "learning_rate", "ScaleByAdamState", "inner_state", "rng_key"]
)
def test_get_all_with_path_as_optax(lib, state, key):
    tree = STATES[state](lib)
    ours = optim.tree.get_all_with_path(tree, key)
    _assert_same_found(ours, optax.tree.get_all_with_path(tree, key))
    if len(ours) == 1:
        assert_identical(optim.tree.get(tree, key), optax.tree.get(tree, key))
    elif not ours:
        assert optim.tree.get(tree, key, default="none") == "none"


@pytest.mark.parametrize("key", ["count", "mu", "Inner", "Outer", "extra", "w", "missing"])
def test_get_all_with_path_nested_as_optax(key):
    """Matches inside matches, lists of NamedTuples, dict keys and NamedTuple names."""
    _assert_same_found(
        optim.tree.get_all_with_path(NESTED, key), optax.tree.get_all_with_path(NESTED, key)
    )


def test_get_all_with_path_filtering_by_named_tuple_key():
    def only_inner(path, value):
        return isinstance(path[-1], optim.tree_utils.NamedTupleKey) and (
            path[-1].tuple_name == "Inner"
        )

    ours = optim.tree.get_all_with_path(NESTED, "count", only_inner)
    assert [str(path[-1]) for path, _ in ours] == ["Inner.count"] * 4
    assert optim.tree.get(NESTED, "count", filtering=lambda p, v: int(v) == 8) == 8


def test_get_our_adam_count_and_several_values_raise():
    state = optim.adam(1e-3).init(PARAMS)
    assert int(optim.tree.get(state, "count")) == 0
    assert optim.tree.get(state, "ScaleByAdamState") is state[0]
    chained = optim.chain(optim.adam(1e-3), optim.adam(1e-3)).init(PARAMS)
    with pytest.raises(KeyError, match="'count' names 2 values"):
        optim.tree.get(chained, "count")


@pytest.mark.parametrize(
    "filtering, kwargs",
    [
        (None, {"count": jnp.array(-1)}),
        (None, {"mu": "replaced"}),
        (None, {"Inner": "whole"}),
        (None, {"count": 0, "w": 1}),
        (lambda path, value: int(value) > 4, {"count": jnp.array(-1)}),
        (lambda path, value: isinstance(value, Inner), {"mu": "only named tuples"}),
    ],
)
def test_set_as_optax(filtering, kwargs):
    """Including optax's rule: inside a node holding a name, a plain tuple or list is not
    searched further (Outer.inner's tuple keeps its counts)."""
    args = (NESTED,) if filtering is None else (NESTED, filtering)
    ours = optim.tree.set(*args, **kwargs)
    theirs = optax.tree.set(*args, **kwargs)
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    assert_identical(ours, theirs)


@pytest.mark.parametrize("lib", [optim, optax], ids=["our-state", "optax-state"])
@pytest.mark.parametrize("state", STATES)
def test_set_count_on_states_as_optax(lib, state):
    tree = STATES[state](lib)
    assert_identical(
        optim.tree.set(tree, count=jnp.array(5)), optax.tree.set(tree, count=jnp.array(5))
    )


def test_set_learning_rate_of_our_injected_adam_changes_its_step():
    tx = optim.inject_hyperparams(optim.adam)(learning_rate=1e-3)
    state = optim.tree.set(tx.init(PARAMS), learning_rate=jnp.asarray(0.5))
    assert float(optim.tree.get(state, "learning_rate")) == 0.5
    grads = jax.tree.map(jnp.ones_like, PARAMS)
    updates, _ = tx.update(grads, state, PARAMS)
    # The injected b1, b2 are float32 arrays in the state (as in optax), so 1 - b is computed
    # in float32: the same step as optax's injected adam given the same learning rate.
    reference = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    reference_state = optax.tree.set(reference.init(PARAMS), learning_rate=jnp.asarray(0.5))
    expected, _ = reference.update(grads, reference_state, PARAMS)
    assert_identical(updates, expected)


def test_set_errors():
    with pytest.raises(KeyError, match="found no value named 'missing'"):
        optim.tree.set(NESTED, missing=1)
    with pytest.raises(KeyError, match="that the filtering function keeps"):
        optim.tree.set(NESTED, lambda path, value: False, count=1)


# --- map_params ---------------------------------------------------------------------------

MASK = {"w": True, "b": False}
OPTIMIZERS = {
    "adam": lambda m: m.adam(1e-3),
    "chain-clip-adamw": lambda m: m.chain(m.clip(1.0), m.adamw(1e-3)),
    "masked-adam": lambda m: m.masked(m.adam(1e-3), MASK),
    "masked-adam-fn": lambda m: m.masked(m.adam(1e-3), lambda p: {"w": True, "b": False}),
    "inject-adam": lambda m: m.inject_hyperparams(m.adam)(learning_rate=1e-3),
    "partition": lambda m: m.partition({"a": m.adam(1e-3), "s": m.sgd(0.1)}, {"w": "a", "b": "s"}),
    "adamw-mask": lambda m: m.adamw(1e-3, weight_decay=0.1, mask=MASK),
}


def _comparable(state: Any) -> Any:
    """optax's inject_hyperparams state has one more field (hyperparams_states): compare
    the fields both have."""
    if type(state).__name__ in ("InjectHyperparamsState", "InjectStatefulHyperparamsState"):
        return (state.count, state.hyperparams, state.inner_state)
    return state


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_map_params_on_our_optimizers_as_optax_on_its(name):
    ours_tx, theirs_tx = OPTIMIZERS[name](optim), OPTIMIZERS[name](optax)
    ours = optim.tree.map_params(
        ours_tx, lambda p: p.shape, ours_tx.init(PARAMS), transform_non_params=lambda _: "other"
    )
    theirs = optax.tree.map_params(
        theirs_tx,
        lambda p: p.shape,
        theirs_tx.init(PARAMS),
        transform_non_params=lambda _: "other",
    )
    assert repr(_comparable(ours)) == repr(_comparable(theirs))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_map_params_on_optax_optimizers_as_optax(name):
    tx = OPTIMIZERS[name](optax)
    state = tx.init(PARAMS)
    ours = optim.tree.map_params(tx, lambda p: p + 1, state)
    assert_identical(ours, optax.tree.map_params(tx, lambda p: p + 1, state))


@pytest.mark.parametrize("lib", [optim, optax], ids=["ours", "optax"])
def test_map_params_with_specs_through_masked_nodes(lib):
    """optax's recipe for masked states: MaskedNode is a leaf, f gets it beside the spec."""
    tx = lib.masked(lib.adam(1e-3), MASK)
    specs = {"w": "spec-w", "b": "spec-b"}
    kwargs = {
        "transform_non_params": lambda _: None,
        "is_leaf": lambda v: isinstance(v, lib.MaskedNode),
    }
    mapped = lib.tree.map_params(tx, lambda _, spec: spec, tx.init(PARAMS), specs, **kwargs)
    assert mapped.inner_state[0].mu == {"w": "spec-w", "b": "spec-b"}
    assert mapped.inner_state[0].count is None


def test_optax_map_params_on_our_masked_and_our_map_params_on_optax_masked():
    """The placeholders are interchangeable: each masked passes the other's through."""
    for lib, mapper in [(optim, optax.tree.map_params), (optax, optim.tree.map_params)]:
        tx = optim.chain(lib.masked(lib.adam(1e-3), MASK), optim.sgd(0.1))
        mapped = mapper(tx, lambda p: p.shape, tx.init(PARAMS))
        assert mapped[0].inner_state[0].mu == {"w": (2, 3), "b": optim.MaskedNode()}


def test_map_params_with_an_init_function_and_rest():
    tx = optim.adam(1e-3)
    state = tx.init(PARAMS)
    doubled = optim.tree.map_params(tx.init, lambda p, q: p + q, state, PARAMS)
    assert_identical(doubled[0].mu, PARAMS)
    assert doubled[0].count is state[0].count


def test_map_params_errors():
    state = optim.adam(1e-3).init(PARAMS)
    with pytest.raises(ValueError, match="state does not have the structure"):
        optim.tree.map_params(optim.sgd(0.1, momentum=0.9), lambda p: p, state)
    with pytest.raises(TypeError, match="initable must be an optimizer"):
        optim.tree.map_params(3, lambda p: p, state)


def test_map_params_of_sharding_specs_under_jit():
    """The use it exists for: a state of specs built from the params' specs, then used."""
    tx = optim.adam(1e-3)
    state = tx.init(PARAMS)
    shardings = optim.tree.map_params(
        tx,
        lambda p: jax.sharding.SingleDeviceSharding(jax.devices()[0]),
        state,
        transform_non_params=lambda _: jax.sharding.SingleDeviceSharding(jax.devices()[0]),
    )
    placed = jax.device_put(state, shardings)
    assert_identical(placed, state)


# --- masked states hold MaskedNode as optax's do ------------------------------------------


@pytest.mark.parametrize(
    "mask",
    [MASK, {"w": False, "b": False}, lambda p: jax.tree.map(lambda x: x.ndim > 1, p)],
    ids=["tree", "none-selected", "function"],
)
def test_masked_state_structure_is_optax(mask):
    ours = optim.masked(optim.adam(1e-3), mask).init(PARAMS)
    theirs = optax.masked(optax.adam(1e-3), mask).init(PARAMS)
    assert repr(jax.tree.map(jnp.shape, ours)) == repr(jax.tree.map(jnp.shape, theirs))


def test_masked_prefix_mask_hides_a_subtree_as_one_masked_node():
    params = {"layer": {"w": jnp.ones(2), "b": jnp.ones(2)}, "out": jnp.ones(3)}
    mask = {"layer": False, "out": True}
    ours = optim.masked(optim.adam(1e-3), mask).init(params)
    theirs = optax.masked(optax.adam(1e-3), mask).init(params)
    assert ours.inner_state[0].mu["layer"] == optim.MaskedNode()
    assert repr(jax.tree.map(jnp.shape, ours)) == repr(jax.tree.map(jnp.shape, theirs))
    grads = jax.tree.map(lambda p: 0.5 * p, params)
    tx = optim.masked(optim.adam(1e-3), mask)
    updates, state = jax.jit(tx.update)(grads, ours, params)
    optax_updates, _ = optax.masked(optax.adam(1e-3), mask).update(grads, theirs, params)
    # Our adam's arithmetic is not optax's op for op (test_optax_parity): last bits differ.
    for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(optax_updates), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    assert bool(jnp.all(updates["layer"]["w"] == grads["layer"]["w"]))  # passed through
    assert jax.tree.structure(state) == jax.tree.structure(ours)


# --- docstrings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [_arithmetic, _casting, _map_params, _moments, _random, _reductions, _state_access],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0
