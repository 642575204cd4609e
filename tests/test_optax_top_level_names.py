"""optax's remaining top-level transformations and state records, against optax.

scale_by_distance_over_gradients (layer-wise DoG), scale_by_param_block_norm and
optimistic_adam: trajectories of 100 jitted steps of ``convex_loss`` compared with optax's
given the same float32 hyperparameters (bound 2e-6: the arithmetic is the same, XLA may fuse
it differently). The state records optax aliases to ``EmptyState`` are aliases here too, and
``scale_by_stddev`` keeps optax's records.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import nested_params, relative_deviation, trajectory

import optim

STRICT = 2e-6
NAMES = [
    "ClipByGlobalNormState",
    "ClipState",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByRStdDevState",
    "ScaleByTrustRatioState",
    "ScaleState",
    "global_norm",
    "matrix_inverse_pth_root",
    "multi_normal",
    "nnls",
    "optimistic_adam",
    "power_iteration",
    "safe_increment",
    "safe_int32_increment",
    "safe_norm",
    "safe_root_mean_squares",
    "scale_by_backtracking_linesearch",
    "scale_by_distance_over_gradients",
    "scale_by_param_block_norm",
]


def _f32(x):
    return jnp.asarray(x, jnp.float32)


def _no_scalars():
    """nested_params without its scalar leaf: optax's layer-wise DoG turns a scalar leaf's
    update into shape (1,) (its per-leaf sum of squares has shape (1,)), which breaks its
    own trajectory; ours keeps the leaf's shape (tested below)."""
    params = nested_params()
    del params["scale"]
    return params


def test_every_name_is_exported():
    for name in NAMES:
        assert hasattr(optax, name), name
        assert name in optim.__all__, name
        assert callable(getattr(optim, name)), name


@pytest.mark.parametrize(
    "name", ["ClipByGlobalNormState", "ClipState", "ScaleByTrustRatioState", "ScaleState"]
)
def test_empty_state_aliases_as_in_optax(name):
    assert getattr(optax, name) is optax.EmptyState
    assert getattr(optim, name) is optim.EmptyState


def test_transforms_return_the_aliased_states(params):
    for tx in (optim.clip(1.0), optim.clip_by_global_norm(1.0), optim.scale(0.5)):
        assert tx.init(params) == optim.EmptyState()
    assert optim.scale_by_trust_ratio().init(params) == optim.ScaleByTrustRatioState()


def _record_shape(state):
    """Record class names and field names, nested (the classes are ours and optax's)."""
    if hasattr(state, "_fields"):
        return type(state).__name__, {f: _record_shape(getattr(state, f)) for f in state._fields}
    if isinstance(state, tuple):
        return tuple(_record_shape(s) for s in state)
    return None


def test_scale_by_stddev_keeps_optax_records(params):
    ours = optim.scale_by_stddev().init(params)
    theirs = optax.scale_by_stddev().init(params)
    assert type(ours) is optim.ScaleByRStdDevState
    assert ours._fields == theirs._fields == optax.ScaleByRStdDevState._fields == ("mu", "nu")
    assert str(jax.tree.structure(ours)) == str(jax.tree.structure(theirs))
    with_count = optim.scale_by_stddev(bias_correction=True).init(params)
    their_count = optax.scale_by_stddev(bias_correction=True).init(params)
    assert with_count._fields == their_count._fields == ("count", "mu", "nu")
    # rmsprop(centered=True) therefore has optax's state, record for record.
    centered = optim.rmsprop(0.01, centered=True).init(params)
    their_centered = optax.rmsprop(0.01, centered=True).init(params)
    assert _record_shape(centered) == _record_shape(their_centered)
    # And it still updates as optax does (bias correction or not).
    for bias_correction in (False, True):
        tx = optim.scale_by_stddev(0.9, 1e-6, 1.0, bias_correction=bias_correction)
        ref = optax.scale_by_stddev(0.9, 1e-6, 1.0, bias_correction=bias_correction)
        bound = STRICT if not bias_correction else 1e-5  # step 1: v - m^2 cancels to rounding
        ours_t = trajectory(optim.chain(tx, optim.scale(-0.01)), optim.apply_updates)
        theirs_t = trajectory(optax.chain(ref, optax.scale(-0.01)), optax.apply_updates)
        assert relative_deviation(ours_t, theirs_t) < bound


# --- scale_by_distance_over_gradients -----------------------------------------------------


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
    assert relative_deviation(a, b) < STRICT
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


# --- scale_by_param_block_norm ------------------------------------------------------------


@pytest.mark.parametrize("min_scale", [1e-3, 2.5])
def test_param_block_norm_trajectory(min_scale):
    ours = optim.chain(optim.scale_by_param_block_norm(min_scale), optim.scale(-0.01))
    theirs = optax.chain(optax.scale_by_param_block_norm(_f32(min_scale)), optax.scale(_f32(-0.01)))
    a = trajectory(ours, optim.apply_updates)
    b = trajectory(theirs, optax.apply_updates)
    assert relative_deviation(a, b) < STRICT


def test_param_block_norm_errors():
    tx = optim.scale_by_param_block_norm()
    with pytest.raises(ValueError, match="scale_by_param_block_norm needs params"):
        tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))
    with pytest.raises(ValueError, match=r"min_scale must be in \[0.0, inf\)"):
        optim.scale_by_param_block_norm(-1.0)


# --- optimistic_adam ----------------------------------------------------------------------


def test_optimistic_adam_trajectory_and_deprecation():
    with pytest.warns(DeprecationWarning, match="optimistic_adam_v2"):
        ours = optim.optimistic_adam(0.01, 0.5, 0.8, 0.99, nesterov=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = optax.optimistic_adam(_f32(0.01), _f32(0.5), _f32(0.8), _f32(0.99), nesterov=False)
        default = optim.optimistic_adam(0.01)
    a = trajectory(ours, optim.apply_updates)
    assert relative_deviation(a, trajectory(theirs, optax.apply_updates)) < STRICT
    # It is optimistic_adam_v2 with the optimism as beta (None: the learning rate).
    v2 = optim.optimistic_adam_v2(1.0, alpha=0.01, beta=0.01)
    assert (
        relative_deviation(
            trajectory(default, optim.apply_updates), trajectory(v2, optim.apply_updates)
        )
        == 0.0
    )


def test_optimistic_adam_errors():
    with pytest.raises(ValueError, match="learning_rate of optimistic_adam must be a number"):
        optim.optimistic_adam(optim.constant_schedule(0.1))
    with pytest.raises(ValueError, match=r"learning_rate must be in \[0.0, inf\)"):
        optim.optimistic_adam(-0.1)
    with pytest.raises(ValueError, match="optimism must be finite"):
        optim.optimistic_adam(0.1, float("nan"))


# --- integer updates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.scale(2.0),
        lambda: optim.scale_by_learning_rate(0.5),
        lambda: optim.scale_by_learning_rate(optim.constant_schedule(0.5)),
        lambda: optim.scale_by_schedule(optim.constant_schedule(0.5)),
        lambda: optim.clip(1.0),
        lambda: optim.clip_by_global_norm(1.0),
    ],
    ids=["scale", "scale_by_learning_rate", "lr_schedule", "scale_by_schedule", "clip", "gnorm"],
)
def test_integer_updates_are_an_error(make):
    """optax promotes integer updates to float (``scale(2.).update(jnp.array([1, 2]))`` gives
    float32 [2., 4.]); these used to return None for the leaf, silently. Integer gradients
    are an error everywhere in optim (``chain`` and every stateful transformation raise the
    same TypeError), so these raise it too."""
    tx = make()
    updates = {"w": jnp.array([1, 2]), "f": jnp.ones(2)}
    with pytest.raises(TypeError, match=r"\['w'\] is an array of dtype int32"):
        tx.update(updates, tx.init({"w": jnp.ones(2), "f": jnp.ones(2)}))
    floats, _ = tx.update({"f": jnp.ones(2)}, tx.init({"f": jnp.ones(2)}))
    assert floats["f"].dtype == jnp.float32
