"""The rest of optax.contrib: reduce_on_plateau, DoG/DoWG, MADGRAD, COCOB, Simplified AdEMAMix,
MoMo and MoMo-Adam against optax 0.2.8 (the oracle): signatures, state, dtypes, complex leaves,
jit and vmap, bad input. Their trajectories are compared with optax's by
tests/test_optax_parity.py (records in tests/parity_table.py).
"""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import PYTHON_FLOAT_BOUND, convex_loss, descend, nested_params, relative_deviation
from parity_table import OURS, THEIRS, with_value

import optim
from optim.contrib import (
    _acprop,
    _cocob,
    _complex_valued,
    _dadapt_adamw,
    _dog,
    _madgrad,
    _mechanic,
    _momo,
    _reduce_on_plateau,
    _simplified_ademamix,
)

MODULES = (_acprop, _cocob, _complex_valued, _dadapt_adamw, _dog, _madgrad, _mechanic, _momo,
           _reduce_on_plateau, _simplified_ademamix)  # fmt: skip


# --- signatures and state ------------------------------------------------------------------

FACTORIES = [n for m in MODULES for n in m.__all__ if n[0].islower()]


@pytest.mark.parametrize("name", FACTORIES)
def test_signature_matches_optax(name):
    """Same argument names, order and defaults as optax (extras may only follow)."""
    ours = inspect.signature(getattr(OURS, name)).parameters
    theirs = inspect.signature(getattr(THEIRS, name)).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for arg, param in theirs.items():
        assert ours[arg].default == param.default, arg


STATE_CASES = [
    ("reduce_on_plateau", lambda m: m.reduce_on_plateau(), "ReduceLROnPlateauState"),
    ("scale_by_dog", lambda m: m.scale_by_dog(("heuristic", 1e-6)), "DoGState"),
    ("scale_by_dowg", lambda m: m.scale_by_dowg(), "DoWGState"),
    ("scale_by_madgrad", lambda m: m.scale_by_madgrad(0.1), "MadgradState"),
    ("scale_by_cocob", lambda m: m.scale_by_cocob(), "COCOBState"),
    (
        "scale_by_simplified_ademamix",
        lambda m: m.scale_by_simplified_ademamix(),
        "ScaleBySimplifiedAdEMAMixState",
    ),
    ("momo", lambda m: m.momo(), "MomoState"),
    ("momo_adam", lambda m: m.momo_adam(), "MomoAdamState"),
    ("dadapt_adamw", lambda m: m.dadapt_adamw(), "DAdaptAdamWState"),
    # optax's SGD inside both, so that the base optimizer's state has the same shape.
    ("mechanize", lambda m: m.mechanize(optax.sgd(0.1)), "MechanicState"),
    ("scale_by_acprop", lambda m: m.scale_by_acprop(), "ScaleByBeliefState"),
    (
        "split_real_and_imaginary",
        lambda m: m.split_real_and_imaginary(optax.sgd(0.1)),
        "SplitRealAndImaginaryState",
    ),
]


@pytest.mark.parametrize(
    ("name", "build", "state_name"), STATE_CASES, ids=[c[0] for c in STATE_CASES]
)
def test_state_matches_optax(name, build, state_name, params):
    ours, theirs = build(OURS).init(params), build(THEIRS).init(params)
    assert type(ours).__name__ == type(theirs).__name__ == state_name
    assert ours._fields == theirs._fields
    if hasattr(OURS, state_name):
        assert getattr(OURS, state_name)._fields == getattr(THEIRS, state_name)._fields
    # Same shapes leaf for leaf (optax keeps a copy of the params where we do too).
    assert jax.tree.map(jnp.shape, ours) == jax.tree.map(jnp.shape, theirs)


def test_bf16_params_get_float32_state_and_bf16_updates():
    params = {"w": nested_params(dtype=jnp.bfloat16)["dense"]["w"]}
    grads = jax.grad(convex_loss)(params)
    for tx, extra in [
        # Those whose scalar state optax keeps in the params' dtype, and MADGRAD's casts.
        (OURS.madgrad(0.01), {}),
        (OURS.momo_adam(), {"value": convex_loss(params)}),
        (OURS.dadapt_adamw(), {}),
        (OURS.chain(OURS.sgd(0.1), OURS.reduce_on_plateau()), {"value": 1.0}),
    ]:
        state = tx.init(params)
        updates, state = tx.update(grads, state, params, **extra)
        floats = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert {x.dtype for x in floats} == {jnp.dtype(jnp.float32)}, tx
        assert {x.dtype for x in jax.tree.leaves(updates)} == {jnp.dtype(jnp.bfloat16)}, tx
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(updates)), tx


def test_non_array_leaves_pass_through():
    params = {"w": jnp.ones(3), "n": None, "tag": 3}
    grads = {"w": jnp.full(3, 0.5), "n": None, "tag": None}
    for tx, extra in [
        (OURS.madgrad(0.01), {}),
        (OURS.cocob(), {}),
        (OURS.dowg(), {}),
        (OURS.simplified_ademamix(0.01), {}),
        (OURS.momo(), {"value": 2.0}),
        (OURS.reduce_on_plateau(), {"value": 2.0}),
    ]:
        updates, _ = tx.update(grads, tx.init(params), params, **extra)
        assert updates["n"] is None and updates["tag"] is None, tx
        assert updates["w"].shape == (3,), tx


def test_dog_dowg_and_acprop_support_complex_parameters_like_optax():
    """Two steps on a complex leaf (norms and second moments of |g|^2) equal optax's."""
    params = {"z": jnp.array([1.0 + 2.0j, -0.5j, 3.0])}
    grads = [{"z": jnp.array([0.5 - 1.0j, 2.0j, 1.0])}, {"z": jnp.array([1.0j, -1.0, 0.5])}]
    for name in ("dog", "dowg", "acprop"):
        args = {"dog": (1.0, ("heuristic", 1e-6), 1e-8), "dowg": (1.0, None, 1e-4),
                "acprop": (0.1, 0.9, 0.999, 1e-16, 1e-16)}[name]  # fmt: skip
        ours = getattr(OURS, name)(*args)
        theirs = getattr(THEIRS, name)(*args)
        ours_state, their_state = ours.init(params), theirs.init(params)
        p = params
        for g in grads:
            u, ours_state = ours.update(g, ours_state, p)
            v, their_state = theirs.update(g, their_state, p)
            assert u["z"].dtype == jnp.complex64, name
            assert jnp.allclose(u["z"], v["z"], rtol=1e-6, atol=0), name
            p = optim.apply_updates(p, u)


@pytest.mark.parametrize(
    "build",
    [
        lambda: OURS.madgrad(0.01),
        lambda: OURS.cocob(),
        lambda: OURS.simplified_ademamix(0.01),
        lambda: OURS.momo(),
        lambda: OURS.momo_adam(),
        lambda: OURS.dadapt_adamw(),
        lambda: OURS.mechanize(OURS.sgd(0.1)),
    ],
    ids=[
        "madgrad",
        "cocob",
        "simplified_ademamix",
        "momo",
        "momo_adam",
        "dadapt_adamw",
        "mechanize",
    ],
)
def test_complex_parameters_rejected_naming_the_leaf(build):
    params = {"real": jnp.ones(2), "inner": {"z": jnp.ones(2, jnp.complex64)}}
    with pytest.raises(TypeError, match=r"params\['inner'\]\['z'\] has dtype complex64"):
        build().init(params)


def test_mechanize_passes_extra_args_to_the_base_optimizer():
    """MoMo inside Mechanic reads value=: without it MoMo's error surfaces, with it 10 steps
    agree with optax's (measured 4e-7 after 20; later the paths part, see the mechanize records
    of tests/parity_table.py)."""

    def build(m, f):
        return m.mechanize(m.momo(f(0.5), f(0.9), f(200.0)), f(0.01), f(1e-8), f(1e-3), 4)

    tx = build(OURS, float)
    with pytest.raises(ValueError, match=r"momo needs the loss"):
        tx.update(GRADS, tx.init(PARAMS), PARAMS)
    ours = descend(tx, optim.apply_updates, 10, extra=with_value, whole_path=True)
    theirs = descend(
        build(THEIRS, float), optax.apply_updates, 10, extra=with_value, whole_path=True
    )
    assert relative_deviation(ours.path, theirs.path) <= PYTHON_FLOAT_BOUND
    assert relative_deviation(ours.params, nested_params()) > 1e-3


def test_reduce_on_plateau_scales_complex_updates():
    tx = OURS.reduce_on_plateau(patience=1, factor=0.5)
    params = {"z": jnp.ones(2, jnp.complex64)}
    state = tx.init(params)
    for value in (1.0, 1.0):  # the second call does not improve: the scale halves
        updates, state = tx.update({"z": jnp.full(2, 1.0 - 1.0j, jnp.complex64)}, state,
                                   value=value)  # fmt: skip
    assert float(state.scale) == 0.5
    assert jnp.allclose(updates["z"], 0.5 * (1.0 - 1.0j))


# --- transformations (jit, vmap) ---------------------------------------------------------


# (name, passes value=, the argument batched, two values). The parameter-free ones multiply
# their own step size by the learning rate, 1 by default, and DoG's first steps are tiny (r_0 =
# 1e-6 (1 + |x_0|)), so they get rates near 1 and DoG a distance to start from. COCOB's step
# is invariant to the scale of the gradients (C / (L max(G + L, alpha L)) (L + R) is
# homogeneous of degree 0 but for L_0 = eps), so its learning rate cannot matter: alpha is
# batched instead.
VMAP_CASES = [
    ("dog", False, "learning_rate", (0.5, 1.0)),
    ("dowg", False, "learning_rate", (0.5, 1.0)),
    ("madgrad", False, "learning_rate", (0.01, 0.05)),
    ("cocob", False, "alpha", (10.0, 100.0)),
    ("simplified_ademamix", False, "learning_rate", (0.01, 0.05)),
    ("momo", True, "learning_rate", (0.01, 0.05)),
    ("momo_adam", True, "learning_rate", (0.01, 0.05)),
    ("dadapt_adamw", False, "learning_rate", (0.5, 1.0)),
    ("acprop", False, "learning_rate", (0.01, 0.05)),
]
# Their siblings (dog, momo_adam) run by default; these only with `pytest -m slow`.
VMAP_SLOW = {"dowg", "momo"}
VMAP_OPTIONS = {"dog": {"init_step": ("distance", 0.1)}, "madgrad": {"learning_rate": 0.01},
                "simplified_ademamix": {"learning_rate": 0.01}, "acprop": {"learning_rate": 0.01},
                "dadapt_adamw": {"estim_lr0": 1e-2}}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "passes_value", "arg", "values"),
    [
        pytest.param(*c, id=c[0], marks=[pytest.mark.slow] if c[0] in VMAP_SLOW else [])
        for c in VMAP_CASES
    ],
)
def test_jit_and_vmap_over_a_hyperparameter(name, passes_value, arg, values):
    """A hyperparameter (the learning rate but for COCOB) as a batch of traced leaves: one
    compiled program for all, each row equal to the run given that value as a Python float."""
    params = nested_params()["dense"]  # two leaves: compiling is most of this test's time

    def path(value):
        tx = getattr(OURS, name)(**{**VMAP_OPTIONS.get(name, {}), arg: value})
        extra = with_value if passes_value else None
        return descend(tx, optim.apply_updates, 100, params, extra=extra, whole_path=True).path

    batched = jax.jit(jax.vmap(path))(jnp.array(values))
    row = jax.tree.map(lambda x: x[1], batched)
    assert relative_deviation(row, path(values[1])) <= PYTHON_FLOAT_BOUND, name
    other = jax.tree.map(lambda x: x[0], batched)
    assert relative_deviation(other, row) > 1e-3, f"{arg} did not matter"


def test_reduce_on_plateau_under_vmap_over_factor():
    def final_scale(factor):
        tx = OURS.chain(OURS.sgd(0.05), OURS.reduce_on_plateau(factor=factor, patience=3))
        return descend(tx, optim.apply_updates, 120, extra=with_value).state[1].scale

    scales = jax.jit(jax.vmap(final_scale))(jnp.array([0.5, 0.25]))
    assert float(scales[0]) == float(final_scale(0.5)) < 1.0
    assert float(scales[1]) < float(scales[0])


# --- bad input ------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    (lambda: OURS.reduce_on_plateau(factor=1.0), ValueError, r"factor must be in \(0\.0, 1\.0\)"),
    (lambda: OURS.reduce_on_plateau(factor=math.nan), ValueError, r"factor must be finite"),
    (lambda: OURS.reduce_on_plateau(rtol=1.5), ValueError, r"rtol must be in \[0\.0, 1\.0\]"),
    (lambda: OURS.reduce_on_plateau(atol=-1.0), ValueError, r"atol must be in \[0\.0, inf\)"),
    (lambda: OURS.reduce_on_plateau(rtol=0.0, atol=0.0), ValueError, r"rtol and atol"),
    (lambda: OURS.reduce_on_plateau(patience=2.5), TypeError, r"patience must be an int"),
    (lambda: OURS.reduce_on_plateau(patience=0), ValueError, r"patience must be an int in \[1"),
    (lambda: OURS.reduce_on_plateau(cooldown=-1), ValueError, r"cooldown must be an int in \[0"),
    (lambda: OURS.reduce_on_plateau(accumulation_size=True), TypeError, r"accumulation_size"),
    (lambda: OURS.reduce_on_plateau(min_scale=-0.1), ValueError, r"min_scale must be in"),
    (lambda: OURS.dog(init_step=("guess", 1.0)), ValueError, r"init_step\[0\] must be one of"),
    (lambda: OURS.dog(init_step=1e-6), TypeError, r"init_step must be a pair"),
    (lambda: OURS.dog(init_step=("distance", 0.0)), ValueError, r"init_step\[1\] must be in"),
    (lambda: OURS.dog(eps=math.nan), ValueError, r"eps must be finite"),
    (lambda: OURS.dowg(init_estim_sq_dist=-1.0), ValueError, r"init_estim_sq_dist must be in"),
    (lambda: OURS.dowg(learning_rate=-1.0), ValueError, r"learning_rate must be in"),
    (lambda: OURS.madgrad(0.1, momentum=1.5), ValueError, r"momentum must be in \[0\.0, 1\.0\]"),
    (lambda: OURS.madgrad(0.1, weight_decay=math.nan), ValueError, r"weight_decay must be"),
    (lambda: OURS.cocob(alpha=-1.0), ValueError, r"alpha must be in \[0\.0, inf\)"),
    (lambda: OURS.cocob(eps=0.0), ValueError, r"eps must be in \(0\.0, inf\)"),
    (lambda: OURS.simplified_ademamix(0.1, b1=1.0), ValueError, r"b1 must be in \[0\.0, 1\.0\)"),
    (lambda: OURS.simplified_ademamix(0.1, alpha=-2.0), ValueError, r"alpha must be in"),
    (lambda: OURS.momo(beta=1.0), ValueError, r"beta must be in \[0\.0, 1\.0\)"),
    (lambda: OURS.momo(lower_bound=math.inf), ValueError, r"lower_bound must be finite"),
    (lambda: OURS.momo(adapt_lower_bound="yes"), TypeError, r"adapt_lower_bound must be True"),
    (lambda: OURS.momo_adam(adapt_lower_bound=1), TypeError, r"adapt_lower_bound must be True"),
    (lambda: OURS.momo_adam(b2=-0.1), ValueError, r"b2 must be in \[0\.0, 1\.0\)"),
    (lambda: OURS.dadapt_adamw(betas=0.9), TypeError, r"betas must be a pair"),
    (lambda: OURS.dadapt_adamw(betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in"),
    (lambda: OURS.dadapt_adamw(estim_lr0=0.0), ValueError, r"estim_lr0 must be in \(0\.0"),
    (lambda: OURS.mechanize(optim.adam), TypeError, r"base_optimizer must be a gradient"),
    (lambda: OURS.mechanize(OURS.sgd(0.1), num_betas=0), ValueError, r"num_betas must be an"),
    (lambda: OURS.mechanize(OURS.sgd(0.1), num_betas=2.0), TypeError, r"num_betas must be an"),
    (lambda: OURS.mechanize(OURS.sgd(0.1), s_init=0.0), ValueError, r"s_init must be in"),
    (lambda: OURS.acprop(0.1, eps_root=-1.0), ValueError, r"eps_root must be in"),
    (lambda: OURS.scale_by_acprop(b1=math.nan), ValueError, r"b1 must be finite"),
    (lambda: OURS.split_real_and_imaginary("sgd"), TypeError, r"inner must be a gradient"),
]


@pytest.mark.parametrize(("build", "error", "match"), BAD_ARGUMENTS)
def test_bad_arguments_raise_naming_them(build, error, match):
    with pytest.raises(error, match=match):
        build()


PARAMS = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
GRADS = {"w": jnp.full((3, 2), 0.5), "b": jnp.full(2, 0.5)}


@pytest.mark.parametrize(
    ("tx", "extra", "match"),
    [
        (OURS.reduce_on_plateau(), {}, r"reduce_on_plateau needs the monitored loss"),
        (OURS.reduce_on_plateau(), {"value": jnp.ones(2)}, r"value must be a real scalar"),
        (OURS.momo(), {}, r"momo needs the loss"),
        (OURS.momo_adam(), {}, r"momo_adam needs the loss"),
        (OURS.momo_adam(), {"value": jnp.ones(3)}, r"value must be a real scalar"),
    ],
    ids=[
        "plateau_no_value",
        "plateau_vector_value",
        "momo_no_value",
        "momo_adam_no_value",
        "momo_adam_vector_value",
    ],
)
def test_missing_or_bad_value(tx, extra, match):
    with pytest.raises(ValueError, match=match):
        tx.update(GRADS, tx.init(PARAMS), PARAMS, **extra)


@pytest.mark.parametrize(
    "name", ["dog", "dowg", "madgrad", "cocob", "momo", "momo_adam", "dadapt_adamw", "mechanize"]
)
def test_update_without_params_raises(name):
    tx = OURS.mechanize(OURS.sgd(0.1)) if name == "mechanize" else getattr(OURS, name)(0.1)
    with pytest.raises(ValueError, match=r"needs params: call update\(grads, state, params"):
        tx.update(GRADS, tx.init(PARAMS), None, value=1.0)


@pytest.mark.parametrize("name", ["dog", "madgrad", "cocob", "simplified_ademamix", "momo"])
def test_grads_of_another_shape_name_the_leaf(name):
    tx = getattr(OURS, name)(0.1)
    with pytest.raises(ValueError, match=r"grads\['w'\] has shape \(2, 3\)"):
        tx.update({**GRADS, "w": jnp.ones((2, 3))}, tx.init(PARAMS), PARAMS, value=1.0)
