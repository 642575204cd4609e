"""scale_by_distance_over_gradients, layer-wise DoG (optim/contrib/_dog.py), against optax.

Trajectories of 100 jitted steps of ``convex_loss`` compared with optax's given the same float32
hyperparameters (bound 2e-6: the arithmetic is the same, XLA may fuse it differently).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import FLOAT32_BOUND, nested_params, relative_deviation, trajectory

import optim


def _f32(x):
    return jnp.asarray(x, jnp.float32)


def _no_scalars():
    """nested_params without its scalar leaf: optax's layer-wise DoG turns a scalar leaf's
    update into shape (1,) (its per-leaf sum of squares has shape (1,)), which breaks its
    own trajectory; ours keeps the leaf's shape (tested below)."""
    params = nested_params()
    del params["scale"]
    return params


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"reps_rel": 1e-4, "eps": 1e-6, "global_scale": -1.0}],
    ids=["defaults", "options"],
)
def test_distance_over_gradients_trajectory(kwargs):
    sign = -1.0 if kwargs.get("global_scale", 1.0) > 0 else 1.0
    ours = optim.chain(optim.scale_by_distance_over_gradients(**kwargs), optim.scale(sign))
    f32 = {k: _f32(v) for k, v in kwargs.items()}
    theirs = optax.chain(optax.scale_by_distance_over_gradients(**f32), optax.scale(_f32(sign)))
    params = _no_scalars()
    a = trajectory(ours, optim.apply_updates, params=params)
    b = trajectory(theirs, optax.apply_updates, params=params)
    assert relative_deviation(a, b) < FLOAT32_BOUND
    assert relative_deviation(a, params) > 1e-3  # it moved


def test_distance_over_gradients_state_is_optax_record():
    params = _no_scalars()
    ours = optim.scale_by_distance_over_gradients().init(params)
    theirs = optax.scale_by_distance_over_gradients().init(params)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours._fields == theirs._fields == ("max_dist", "grad_sum_of_squares", "init_params")
    for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def test_distance_over_gradients_keeps_scalar_leaves_scalar():
    tx = optim.scale_by_distance_over_gradients()
    params = {"s": jnp.array(2.0), "v": jnp.ones(3), "frozen": None}
    grads = {"s": jnp.array(0.5), "v": jnp.ones(3), "frozen": None}
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    assert updates["s"].shape == () and updates["frozen"] is None
    # One step size per leaf: reps (1 + |theta_0|) / sqrt(|g|^2 + eps).
    np.testing.assert_allclose(updates["s"], 1e-6 * 3.0 / 0.5 * 0.5, rtol=1e-6)
    np.testing.assert_allclose(updates["v"], 1e-6 * (1 + 3**0.5) / 3**0.5, rtol=1e-6)


def test_distance_over_gradients_param_dtype():
    params = {"w": jnp.ones(3, jnp.bfloat16), "c": jnp.ones(2, jnp.complex64)}
    state = optim.scale_by_distance_over_gradients().init(params)
    assert state.init_params["w"].dtype == jnp.float32
    assert state.init_params["c"].dtype == jnp.complex64  # not cast to a real dtype
    kept = optim.scale_by_distance_over_gradients(param_dtype=None).init(params)
    assert kept.init_params["w"].dtype == jnp.float32  # the compute dtype of bf16


def test_distance_over_gradients_errors():
    with pytest.raises(ValueError, match=r"reps_rel must be in \(0.0, inf\)"):
        optim.scale_by_distance_over_gradients(reps_rel=0.0)
    with pytest.raises(ValueError, match=r"eps must be in \[0.0, inf\)"):
        optim.scale_by_distance_over_gradients(eps=-1.0)
    with pytest.raises(TypeError, match="param_dtype must be a floating or complex dtype"):
        optim.scale_by_distance_over_gradients(param_dtype=jnp.int32)
    tx = optim.scale_by_distance_over_gradients()
    with pytest.raises(ValueError, match="scale_by_distance_over_gradients needs params"):
        tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))


def test_distance_over_gradients_shares_dog_rule():
    """Layer-wise DoG on a single leaf is DoG with the heuristic initial distance."""
    params = {"w": jnp.array([1.0, -2.0, 0.5])}
    grads = {"w": jnp.array([0.3, 0.1, -0.2])}
    ldog = optim.scale_by_distance_over_gradients(reps_rel=1e-3)
    dog = optim.contrib.scale_by_dog(("heuristic", 1e-3))
    a, b = (
        ldog.update(grads, ldog.init(params), params)[0],
        dog.update(grads, dog.init(params), params)[0],
    )
    np.testing.assert_array_equal(a["w"], b["w"])
