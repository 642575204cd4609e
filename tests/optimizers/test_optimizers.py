"""The optimizers of optim/optimizers/ _sign, _trust_ratio, _sgd, _optimistic and _polyak against
optax: signatures, state fields, dtypes, bad input. Their trajectories, real and complex, are
compared with optax's by tests/test_optax_parity.py (records in tests/parity_table.py).

Gradient noise: ours draws the same random numbers as optax, bit for bit (the same key splits,
one sample key per leaf in tree order, the same sampler and dtype), so the noisy trajectories
meet the same deterministic bounds; no statistical tolerance is needed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import (
    PYTHON_FLOAT_BOUND,
    assert_signature_extends_optax,
    convex_loss,
    descend,
    nested_params,
    relative_deviation,
)
from parity_table import SIGN_TRUST_NOISE_OPTIMISTIC, complex_tree, with_value

import optim

# The names this file compares with optax.
NAMES = (
    "ScaleByLionState",
    "ScaleByRpropState",
    "lion",
    "rprop",
    "scale_by_lion",
    "scale_by_rprop",
    "scale_by_sign",
    "sign_sgd",
    "signum",
    "ScaleByTrustRatioState",
    "fromage",
    "lamb",
    "lars",
    "scale_by_trust_ratio",
    "AddNoiseState",
    "add_noise",
    "noisy_sgd",
    "ScaleByOptimisticGradientState",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "scale_by_optimistic_gradient",
    "polyak_sgd",
    "scale_by_polyak",
)


NEW = {name: getattr(optim, name) for name in NAMES}


# The records of tests/parity_table.py for this file's optimizers (real parameters).
BUILDERS = {record.name: record.build for record in SIGN_TRUST_NOISE_OPTIMISTIC}


def test_rprop_rejects_complex_as_optax_does():
    params = complex_tree()
    with pytest.raises(TypeError, match="complex"):
        optim.rprop(0.1).init(params)
    with pytest.raises(ValueError, match="complex"):  # optax fails in jnp.clip
        tx = optax.rprop(0.1)
        tx.update(params, tx.init(params), params)


def test_polyak_sgd_in_fit_gets_the_loss(params):
    tx = optim.polyak_sgd(1.0, 1.0, 150.0)
    result = optim.fit(lambda p, batch: convex_loss(p), params, tx, jnp.zeros((1,)), steps=20)
    expected = descend(tx, optim.apply_updates, 20, extra=with_value).params
    assert relative_deviation(result.params, expected) < PYTHON_FLOAT_BOUND


def test_signatures_match_optax():
    """Same argument names, order, kinds and defaults as optax; our extras are keyword-only."""
    shared = [n for n in NEW if n[0].islower()]
    assert len(shared) == 19  # optimistic_adam included
    for name in shared:
        assert_signature_extends_optax(NEW[name], getattr(optax, name), name)


def _field_names(state):
    """Nested NamedTuple field names, the way optax.tree.get finds them."""
    if hasattr(state, "_fields"):
        return {f: _field_names(getattr(state, f)) for f in state._fields}
    if isinstance(state, tuple):
        return tuple(_field_names(s) for s in state)
    return None


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_state_field_names_match_optax(name, params):
    build = BUILDERS[name]
    ours, theirs = build(optim, float).init(params), build(optax, float).init(params)
    assert _field_names(ours) == _field_names(theirs)


def test_optax_tree_get_finds_our_state(params):
    state = optim.lion(1e-3).init(params)
    assert optax.tree.get(state, "mu")["dense"]["w"].shape == (4, 3)
    state = optim.rprop(1e-3).init(params)
    assert float(optax.tree.get(state, "step_sizes")["scale"]) == pytest.approx(1e-3)


def test_bfloat16_params_keep_float32_state():
    """One optimizer per module: bf16 updates out, float32 slots in the state."""
    params = nested_params(dtype=jnp.bfloat16)
    grads = jax.tree.map(lambda p: p - 10, params)  # bf16, descending (eager grad is slow)
    for name in ["lion", "rprop", "lamb", "noisy_sgd", "optimistic_adam_v2", "polyak_sgd"]:
        tx = BUILDERS[name](optim, float)
        state = tx.init(params)
        updates, state = jax.jit(tx.update)(grads, state, params, value=jnp.float32(300.0))
        assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates)), name
        floats = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert all(x.dtype == jnp.float32 for x in floats), name


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: optim.scale_by_lion(b1=1.5), ValueError, "b1"),
        (lambda: optim.scale_by_lion(mode="soft"), ValueError, "mode"),
        (lambda: optim.lion(-0.1), ValueError, "learning_rate"),
        (lambda: optim.lion(0.1, weight_decay=-1.0), ValueError, "weight_decay"),
        (lambda: optim.signum(0.1, beta=2.0), ValueError, "beta"),
        (lambda: optim.rprop(0.1, eta_minus=1.5), ValueError, "eta_minus"),
        (lambda: optim.rprop(0.1, eta_plus=0.5), ValueError, "eta_plus"),
        (lambda: optim.scale_by_rprop(0.1, max_step_size=-1.0), ValueError, "max_step_size"),
        (lambda: optim.scale_by_trust_ratio(min_norm=-1.0), ValueError, "min_norm"),
        (lambda: optim.lars(0.1, momentum=float("nan")), ValueError, "momentum"),
        (lambda: optim.lamb(0.1, b2=1.0), ValueError, "b2"),
        (lambda: optim.fromage("fast"), TypeError, "learning_rate"),
        (lambda: optim.add_noise(-0.1, 0.55, 0), ValueError, "eta"),
        (lambda: optim.noisy_sgd(0.1, gamma=-1.0, key=0), ValueError, "gamma"),
        (lambda: optim.scale_by_optimistic_gradient(alpha=float("inf")), ValueError, "alpha"),
        (lambda: optim.optimistic_adam_v2(0.1, beta=None), TypeError, "beta"),
        (lambda: optim.scale_by_polyak(variant="sps++"), ValueError, "variant"),
        (lambda: optim.polyak_sgd(max_learning_rate=-1.0), ValueError, "max_learning_rate"),
        (lambda: optim.polyak_sgd(scaling=-1.0), ValueError, "scaling"),
    ],
)
def test_bad_hyperparameters_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()
