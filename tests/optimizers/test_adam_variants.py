"""The Adam family (optim/optimizers/_adam.py, _adam_variants.py, _adagrad.py) against optax:
names, state, dtypes, bad input. Their trajectories, real and complex, are compared with optax's
by tests/test_optax_parity.py (records in tests/parity_table.py).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import (
    assert_signature_extends_optax,
    convex_loss,
    nested_params,
    relative_deviation,
    trajectory,
)
from parity_table import then_step

import optim

# The Adam family's public names (Adam, AdamW and NAdam themselves: test_alias.py).
FAMILY = (
    "ScaleByAdaDeltaState",
    "ScaleByAdanState",
    "ScaleByAmsgradState",
    "ScaleByBeliefState",
    "ScaleByNovogradState",
    "adabelief",
    "adadelta",
    "adamax",
    "adamaxw",
    "adan",
    "amsgrad",
    "novograd",
    "radam",
    "scale_by_adadelta",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_amsgrad",
    "scale_by_belief",
    "scale_by_novograd",
    "scale_by_radam",
    "scale_by_yogi",
    "yogi",
)


STEPS = 200


def test_real_mu_dtype_for_complex_params_is_rejected():
    params = {"w": jnp.ones(2, jnp.complex64)}
    with pytest.raises(TypeError, match=r"mu_dtype=float32 is real but params\['w'\]"):
        optim.amsgrad(0.1, mu_dtype=jnp.float32).init(params)
    # A real dtype for a second moment (|g|^2 is real) is fine.
    state = optim.amsgrad(0.1, nu_dtype=jnp.float32).init(params)
    assert state[0].nu["w"].dtype == jnp.float32 and state[0].mu["w"].dtype == jnp.complex64


BLOCKS = [n for n in FAMILY if n.startswith("scale_by_")]


ALIASES = [n for n in FAMILY if n[0].islower() and not n.startswith("scale_by_")]


@pytest.mark.parametrize("name", BLOCKS)
def test_state_matches_optax(name, params):
    """optax's field names (optax.tree.get(state, "nu") works), leaf shapes and dtypes."""
    ours = getattr(optim, name)().init(params)
    theirs = getattr(optax, name)().init(params)
    assert ours._fields == theirs._fields
    for field in ours._fields:
        o, t = getattr(ours, field), getattr(theirs, field)
        assert jax.tree.structure(o) == jax.tree.structure(t), field
        for a, b in zip(jax.tree.leaves(o), jax.tree.leaves(t), strict=True):
            assert (a.shape, a.dtype) == (b.shape, b.dtype), field
    assert optax.tree.get(ours, ours._fields[-1]) is not None


def test_signatures_match_optax():
    """optax's arguments (names, order, defaults) first; our extras keyword-only, default None."""
    assert len(BLOCKS) == 8 and len(ALIASES) == 9
    for name in BLOCKS + ALIASES:
        assert_signature_extends_optax(getattr(optim, name), getattr(optax, name), name)
        ours = inspect.signature(getattr(optim, name)).parameters
        theirs = inspect.signature(getattr(optax, name)).parameters
        extras = [ours[a] for a in list(ours)[len(theirs) :]]
        assert all(p.default is None for p in extras), name
        assert "nu_dtype" in ours, name


@pytest.mark.parametrize("name", ALIASES)
def test_hyperparameters_are_float32_leaves(name):
    """So a jitted step taking the optimizer compiles once for every learning rate."""
    leaves = jax.tree.leaves(getattr(optim, name)(1e-3))
    assert leaves and all(x.dtype == jnp.float32 and x.shape == () for x in leaves)


BF16 = jnp.bfloat16


# block -> (its factory with low-precision slots, the state fields they govern)
LOW_PRECISION = {
    "scale_by_belief": (lambda: optim.scale_by_belief(nu_dtype=BF16), {"nu"}),
    "scale_by_adamax": (lambda: optim.scale_by_adamax(nu_dtype=BF16), {"nu"}),
    "scale_by_amsgrad": (
        lambda: optim.scale_by_amsgrad(mu_dtype=BF16, nu_dtype=BF16),
        {"mu", "nu", "nu_max"},
    ),
    "scale_by_radam": (lambda: optim.scale_by_radam(nu_dtype=BF16), {"nu"}),
    "scale_by_yogi": (lambda: optim.scale_by_yogi(nu_dtype=BF16), {"nu"}),
    "scale_by_adan": (lambda: optim.scale_by_adan(nu_dtype=BF16), {"n"}),
    "scale_by_adadelta": (
        lambda: optim.scale_by_adadelta(nu_dtype=BF16),
        {"e_g", "e_x"},
    ),
    "scale_by_novograd": (
        lambda: optim.scale_by_novograd(mu_dtype=BF16, nu_dtype=BF16),
        {"mu", "nu"},
    ),
}


def _dtypes(tree) -> set[str]:
    return {x.dtype.name for x in jax.tree.leaves(tree)}


def _to_float32(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float32) if x.dtype == BF16 else x, tree)


def _small_params(dtype=jnp.float32) -> dict:
    """Two leaves of ``nested_params``: the eager (un-jitted) tests compile each op per shape."""
    tree = nested_params(dtype=dtype)
    return {"w": tree["dense"]["w"], "s": tree["scale"]}


@pytest.mark.parametrize("name", sorted(LOW_PRECISION))
def test_low_precision_slots_keep_their_dtype_and_float32_arithmetic(name):
    build, fields = LOW_PRECISION[name]
    low, full = build(), getattr(optim, name)()
    params = _small_params()
    grads = jax.grad(convex_loss)(params)
    # One step first, so every slot holds a history (Adan's previous gradient, NovoGrad's
    # second step).
    _, state = low.update(grads, low.init(params), params)
    for field in state._fields:
        want = "bfloat16" if field in fields else "float32"
        assert _dtypes(getattr(state, field)) <= {want, "int32"}, field

    # Float32 arithmetic: from the same (bf16-representable) state, the bf16-slot optimizer
    # gives exactly the float32 optimizer's updates, and its new state is theirs rounded.
    grads = jax.tree.map(lambda g: 0.7 * g, grads)
    updates, new = low.update(grads, state, params)
    updates32, new32 = full.update(grads, _to_float32(state), params)
    for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(updates32), strict=True):
        assert a.dtype == jnp.float32
        np.testing.assert_array_equal(a, b)
    for field in fields:
        rounded = jax.tree.map(lambda x: x.astype(BF16), getattr(new32, field))
        for a, b in zip(
            jax.tree.leaves(getattr(new, field)), jax.tree.leaves(rounded), strict=True
        ):
            assert a.dtype == BF16
            np.testing.assert_array_equal(a, b)

    # And the trajectory stays close to float32's: bf16 keeps 8 significant bits, and rounding
    # a slot each step moves the parameters by up to 2.5% over 200 steps (0.02% for Adadelta).
    # Adamax's max(|g|, b2 v) with b2 = 0.999 drifts further (5%): 0.999 v rounds back to v in
    # bf16, so the maximum never decays -- why slots default to float32.
    close = relative_deviation(
        trajectory(then_step(optim, low, 0.01), optim.apply_updates, STEPS, params),
        trajectory(then_step(optim, full, 0.01), optim.apply_updates, STEPS, params),
    )
    assert close < (0.08 if name == "scale_by_adamax" else 0.04), close


@pytest.mark.parametrize("name", ALIASES)
def test_bf16_params_and_non_array_leaves(name):
    """bf16 parameters: float32 state, bf16 updates. Non-array leaves: no state, untouched."""
    params = {**_small_params(BF16), "act": jax.nn.relu, "depth": 3, "bias": None}
    grads = {**jax.grad(convex_loss)(_small_params(BF16)), "act": None, "depth": None, "bias": None}
    tx = getattr(optim, name)(0.1)
    updates, state = tx.update(grads, tx.init(params), params)
    assert _dtypes(state) <= {"float32", "int32"}
    assert _dtypes(updates) == {"bfloat16"}
    new = optim.apply_updates(params, updates)
    assert new["act"] is jax.nn.relu and new["depth"] == 3 and new["bias"] is None
    assert float(jnp.min(updates["w"])) > 0.0  # towards the minimum at 6.8


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: optim.adabelief(-0.1), ValueError, "learning_rate"),
        (lambda: optim.adabelief(0.1, b1=1.0), ValueError, r"b1 must be in \[0.0, 1"),
        (lambda: optim.adamax(0.1, b2=1.5), ValueError, r"b2 must be in \[0.0, 1.0\]"),
        (lambda: optim.adamaxw(0.1, weight_decay=-1.0), ValueError, "weight_decay"),
        (lambda: optim.amsgrad(0.1, eps=-1.0), ValueError, "eps must be"),
        (lambda: optim.amsgrad(0.1, mu_dtype=jnp.int32), TypeError, "mu_dtype"),
        (lambda: optim.radam(0.1, threshold=3.0), ValueError, "threshold"),
        (lambda: optim.radam(0.1, eps_root=float("nan")), ValueError, "eps_root"),
        (lambda: optim.yogi(0.1, nu_dtype="int8"), TypeError, "nu_dtype"),
        (
            lambda: optim.scale_by_yogi(initial_accumulator_value=0.0),
            ValueError,
            "initial_accumulator_value",
        ),
        (lambda: optim.adan(0.1, b3=1.0), ValueError, "b3"),
        (lambda: optim.adadelta(rho=-0.1), ValueError, "rho"),
        (lambda: optim.adadelta(eps=0.0), ValueError, r"eps must be in \(0.0"),
        (lambda: optim.novograd(0.1, b2="0.25"), TypeError, "b2 must be a number"),
        (
            lambda: optim.scale_by_novograd(weight_decay=lambda c: 0.1),
            TypeError,
            "weight_decay must be a number, not a schedule",
        ),
    ],
)
def test_bad_hyperparameters_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_novograd_needs_params(params):
    tx = optim.novograd(0.1)
    with pytest.raises(ValueError, match="scale_by_novograd needs params"):
        tx.update(params, tx.init(params))


def test_gradient_structure_mismatch_names_the_path(params):
    tx = optim.adan(0.1)
    missing = {k: v for k, v in params.items() if k != "scale"}
    with pytest.raises(ValueError, match=r"missing from grads: \['scale'\]"):
        tx.update(missing, tx.init(params), params)
