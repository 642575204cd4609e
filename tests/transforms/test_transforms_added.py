"""The transforms optax added lately (optim/transforms/) against optax: one compilation,
signatures, state names, complex leaves, bad input. Their trajectories, under jit and vmap, are
compared with optax's by tests/test_optax_parity.py (records in tests/parity_table.py).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import (
    FLOAT32_BOUND,
    assert_signature_extends_optax,
    jitted_update,
    real_and_imaginary,
    relative_deviation,
)
from parity_table import MASK, even_step

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


@pytest.mark.parametrize(
    "make",
    [
        lambda c: optim.adaptive_grad_clip(c, c / 10),
        lambda c: optim.normalize_by_update_norm(-c, c / 10),
        lambda c: optim.conditionally_mask(optim.sgd(c), even_step),
        lambda c: optim.named_chain(("clip", optim.clip(c)), ("sgd", optim.sgd(c))),
        lambda c: optim.selective_transform(optim.sgd(c), freeze_mask=MASK),
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
    return getattr(optim, name)


def test_signatures_match_optax():
    """Same argument names, order, kinds and defaults as optax for every new function."""
    functions = [n for n in NEW_NAMES if n[0].islower()]
    assert len(functions) == 13
    for name in functions:
        assert_signature_extends_optax(_public(name), getattr(optax, name), name, exact=True)


def test_state_names_and_fields_match_optax(params):
    """State records have optax's names and fields, so optax.tree.get works on ours."""
    for name in [n for n in NEW_NAMES if n[0].isupper()]:
        assert _public(name)._fields == getattr(optax, name)._fields, name
    pairs = [
        (optim.zero_nans(), optax.zero_nans()),
        (optim.apply_every(2), optax.apply_every(2)),
        (
            optim.conditionally_mask(optim.sgd(0.1), even_step),
            optax.conditionally_mask(optax.sgd(0.1), even_step),
        ),
        (
            optim.conditionally_transform(optim.sgd(0.1), even_step),
            optax.conditionally_transform(optax.sgd(0.1), even_step),
        ),
        (optim.adaptive_grad_clip(0.1), optax.adaptive_grad_clip(0.1)),
        (optim.keep_params_nonnegative(), optax.keep_params_nonnegative()),
    ]
    for ours, theirs in pairs:
        a, b = ours.init(params), theirs.init(params)
        assert type(a).__name__ == type(b).__name__ and a._fields == b._fields, (a, b)
    state = optim.named_chain(("clip", optim.clip(1.0)), ("sgd", optim.sgd(0.1))).init(params)
    assert list(state) == ["clip", "sgd"] and type(state).__name__ == "OrderedDict"
    assert optax.tree.get(optim.zero_nans().init(params), "found_nan")["scale"].dtype == bool


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
    ours, _ = jitted_update(getattr(optim, name)(*args), grads, params)
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
        (lambda: optim.adaptive_grad_clip(float("nan")), ValueError, r"clipping must be finite"),
        (lambda: optim.adaptive_grad_clip(-1.0), ValueError, r"clipping must be in \[0.0, inf\)"),
        (lambda: optim.adaptive_grad_clip(0.1, -1.0), ValueError, r"eps must be in \[0.0, inf\)"),
        (lambda: optim.adaptive_grad_clip(0.1, axis="0"), TypeError, r"axis must be None, an int"),
        (lambda: optim.normalize_by_update_norm(float("nan")), ValueError, r"scale_factor must"),
        (lambda: optim.normalize_by_update_norm(1.0, -1.0), ValueError, r"eps must be in \[0.0"),
        (lambda: optim.normalize_by_update_norm("abc"), TypeError, r"scale_factor must be a num"),
        (
            lambda: optim.per_example_layer_norm_clip(PER_EXAMPLE, 1.0, 1),
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
    tx = getattr(optim, name)(*args)
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    assert updates["none"] is None and updates["n"] is None
    assert updates["w"].shape == (2, 3) and bool(jnp.all(jnp.isfinite(updates["w"])))


def test_bfloat16_updates_keep_their_dtype():
    params = {"w": jnp.ones((2, 3), jnp.bfloat16)}
    grads = {"w": jnp.full((2, 3), -2.0, jnp.bfloat16)}
    for tx in (
        optim.centralize(),
        optim.normalize_by_update_norm(),
        optim.apply_every(2),
        optim.adaptive_grad_clip(0.1),
        optim.keep_params_nonnegative(),
    ):
        updates, _ = jitted_update(tx, grads, params)
        assert updates["w"].dtype == jnp.bfloat16, tx
    state = optim.apply_every(2).init(params)
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
