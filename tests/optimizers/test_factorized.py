"""Adafactor and SM3 (optim/optimizers/_factorized.py) against optax: state, signatures,
errors, and SM3 on scalar leaves. Their trajectories are compared with optax's in
tests/test_optax_parity.py (records of tests/parity_table.py's FACTORIZED).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import (
    PYTHON_FLOAT_BOUND,
    assert_signature_extends_optax,
    convex_loss,
    relative_deviation,
    trajectory,
)
from parity_table import big_params, no_scalars

import optim

# Adafactor's and SM3's public names.
FACTORIZED = (
    "FactoredState",
    "ScaleBySM3State",
    "adafactor",
    "clip_by_block_rms",
    "scale_by_factored_rms",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_sm3",
    "sm3",
)


def all_finite(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


def test_sm3_without_momentum_and_scalar_leaves():
    """momentum=None (which optax documents but fails on) is b1 = 0; a scalar leaf keeps one
    accumulator of its own, as a one-element vector does in optax."""
    scalar = {"s": jnp.asarray(0.3)}
    ours = trajectory(optim.sm3(0.1, None), optim.apply_updates, 50, scalar)
    as_vector = trajectory(
        optax.sm3(0.1, 0.0), optax.apply_updates, 50, {"s": scalar["s"].reshape(1)}
    )
    assert all_finite(ours)
    assert relative_deviation({"s": ours["s"].reshape(1)}, as_vector) < PYTHON_FLOAT_BOUND
    assert relative_deviation(ours, scalar) > 1e-3


def test_factored_state_keeps_row_and_column_statistics_only():
    state = optim.adafactor(0.01).init(big_params())[0]
    assert isinstance(state, optim.FactoredState)
    assert state.v_row["dense"]["w"].shape == (128,) and state.v_col["dense"]["w"].shape == (160,)
    assert state.v_row["wide"].shape == (128,) and state.v_col["wide"].shape == (140,)
    # conv (2, 130, 128): rows are reduced over the largest axis (130), columns over 128.
    assert state.v_row["conv"].shape == (2, 128) and state.v_col["conv"].shape == (2, 130)
    assert state.v["dense"]["w"] is None and state.v_row["dense"]["b"] is None
    assert state.v["small"][0].shape == (4, 3) and state.v["small"][1].shape == ()
    sizes = [x.size for x in jax.tree.leaves(state)]
    assert sum(sizes) < 1500  # versus 70,000 parameters


def test_state_field_names_match_optax():
    params = no_scalars(big_params())
    for ours, theirs in [
        (
            optim.adafactor(0.01, momentum=0.9, weight_decay_rate=0.1),
            optax.adafactor(0.01, momentum=0.9, weight_decay_rate=0.1),
        ),
        (optim.sm3(0.1), optax.sm3(0.1)),
    ]:
        ours_state, their_state = ours.init(params), theirs.init(params)
        assert [s._fields for s in ours_state] == [s._fields for s in their_state]
    mu = optim.sm3(0.1).init(params)[0].mu
    their_mu = optax.sm3(0.1).init(params)[0].mu
    assert jax.tree.map(jnp.shape, mu) == jax.tree.map(jnp.shape, their_mu)


def test_complex_updates_equal_optax():
    """Adafactor's statistics use |g|^2 for complex leaves (kept real), as optax's do."""
    k = jax.random.split(jax.random.PRNGKey(2), 2)
    z = jax.random.normal(k[0], (128, 130)) + 1j * jax.random.normal(k[1], (128, 130))
    params = {"m": z, "v": z[0]}
    grads = jax.tree.map(lambda x: 0.5 * x + 1j, params)
    outputs = []
    for lib in (optim, optax):
        tx = lib.adafactor(0.01)

        @jax.jit
        def two_steps(params, tx=tx):
            _, state = tx.update(grads, tx.init(params), params)
            return tx.update(grads, state, params)[0]

        outputs.append(two_steps(params))
    assert jax.tree.map(lambda x: x.dtype, outputs[0]) == jax.tree.map(lambda x: x.dtype, params)
    for a, b in zip(jax.tree.leaves(outputs[0]), jax.tree.leaves(outputs[1]), strict=True):
        assert jnp.max(jnp.abs(a - b)) <= 1e-6 * jnp.max(jnp.abs(b))
    assert optim.adafactor(0.01).init(params)[0].v_row["m"].dtype == jnp.float32
    with pytest.raises(TypeError, match=r"params\['m'\] has dtype complex"):
        optim.sm3(0.1).init(params)


def test_bf16_params_get_float32_statistics():
    params = no_scalars(jax.tree.map(lambda x: x.astype(jnp.bfloat16), big_params()))
    grads = jax.eval_shape(jax.grad(convex_loss), params)
    for tx in (optim.adafactor(0.01, momentum=0.9), optim.sm3(0.1)):
        state = jax.eval_shape(tx.init, params)
        assert {x.dtype for x in jax.tree.leaves(state) if x.ndim} == {jnp.dtype(jnp.float32)}
        updates, new_state = jax.eval_shape(tx.update, grads, state, params)
        assert jax.tree.map(lambda x: x.dtype, updates) == jax.tree.map(lambda x: x.dtype, grads)
        assert jax.tree.map(lambda x: x.dtype, new_state) == jax.tree.map(lambda x: x.dtype, state)


def test_one_compilation_for_all_hyperparameters():
    params = no_scalars(big_params())

    @jax.jit
    def step(tx, state, params):
        grads = jax.grad(convex_loss)(params)
        return tx.update(grads, state, params)

    for lr, decay, offset in [(0.01, 0.8, 0), (0.03, 0.7, 5)]:
        tx = optim.adafactor(lr, decay_rate=decay, decay_offset=offset)
        step(tx, tx.init(params), params)
        tx = optim.sm3(lr, momentum=decay)
        step(tx, tx.init(params), params)
    assert step._cache_size() == 2  # one per optimizer, not per hyperparameter


def test_state_from_other_shapes_is_rejected():
    tx = optim.scale_by_factored_rms()
    state = tx.init({"w": jnp.zeros((256, 128))})
    with pytest.raises(ValueError, match=r"state.v_row\['w'\] has shape \(128,\).*need \(130,\)"):
        tx.update({"w": jnp.zeros((256, 130))}, state)
    tx = optim.scale_by_sm3()
    state = tx.init({"w": jnp.zeros((4, 5, 6))})
    with pytest.raises(ValueError, match="grads"):
        tx.update({"w": jnp.zeros((4, 5))}, state)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: optim.adafactor(-0.1), ValueError, "learning_rate"),
        (lambda: optim.adafactor(decay_rate=-0.8), ValueError, "decay_rate"),
        (lambda: optim.adafactor(decay_offset=-1), ValueError, "decay_offset"),
        (lambda: optim.adafactor(decay_offset=1.5), TypeError, "decay_offset"),
        (lambda: optim.adafactor(min_dim_size_to_factor=-1), ValueError, "min_dim_size"),
        (lambda: optim.adafactor(clipping_threshold=0.0), ValueError, "threshold"),
        (lambda: optim.adafactor(momentum=1.5), ValueError, "momentum"),
        (lambda: optim.adafactor(dtype_momentum=jnp.int32), TypeError, "dtype_momentum"),
        (lambda: optim.adafactor(weight_decay_rate=-1.0), ValueError, "weight_decay_rate"),
        (lambda: optim.adafactor(eps=float("nan")), ValueError, "eps"),
        (lambda: optim.scale_by_factored_rms(decay_rate_fn=0.8), TypeError, "decay_rate_fn"),
        (lambda: optim.scale_by_param_block_rms(-1.0), ValueError, "min_scale"),
        (lambda: optim.sm3(0.1, momentum=2.0), ValueError, "momentum"),
        (lambda: optim.scale_by_sm3(b2=-0.5), ValueError, "b2"),
        (lambda: optim.scale_by_factored_rms(step_offset=-2), ValueError, "step_offset"),
        (lambda: optim.scale_by_factored_rms(epsilon=-1.0), ValueError, "epsilon"),
        (lambda: optim.scale_by_sm3(eps=-1.0), ValueError, "eps"),
        (lambda: optim.sm3(None), TypeError, "learning_rate"),
    ],
)
def test_bad_hyperparameters_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_scale_by_param_block_rms_needs_params():
    tx = optim.scale_by_param_block_rms()
    with pytest.raises(ValueError, match="needs params"):
        tx.update({"w": jnp.ones(3)}, tx.init({"w": jnp.ones(3)}))


def test_signatures_match_optax():
    for name in FACTORIZED:
        if name[0].isupper():
            continue
        assert_signature_extends_optax(getattr(optim, name), getattr(optax, name), name, exact=True)
    assert inspect.signature(optim.adafactor).parameters["dtype_momentum"].default is (jnp.float32)


def test_param_block_norm_errors():
    tx = optim.scale_by_param_block_norm()
    with pytest.raises(ValueError, match="scale_by_param_block_norm needs params"):
        tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))
    with pytest.raises(ValueError, match=r"min_scale must be in \[0.0, inf\)"):
        optim.scale_by_param_block_norm(-1.0)
