"""PSGD Kron: checked against psgd-jax (live, same keys), and the catalogue's guarantees."""

from __future__ import annotations

import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optim
from optim.train import _history


def _reference():
    """psgd-jax's kron module. Its 0.2.9 release imports ``optax._src.clipping``, which optax
    0.2.8 no longer has and which kron.py never uses: an empty module stands in for it."""
    import optax._src

    if not hasattr(optax._src, "clipping"):
        stand_in = types.ModuleType("optax._src.clipping")
        sys.modules["optax._src.clipping"] = stand_in
        optax._src.clipping = stand_in
    return pytest.importorskip("psgd_jax.kron")


@jax.jit
def _update(tx, grads, state, params=None):
    """One update, compiled once per optimizer configuration (the optimizer is an argument)."""
    return tx.update(grads, state, params)


def _least_squares(shapes: dict, rows: int = 32):
    """A least-squares loss over ``x @ w (+ b) (+ s)`` and small random starting params."""
    kx, ky, kp = jax.random.split(jax.random.PRNGKey(0), 3)
    fan_in, fan_out = shapes["w"]
    x = jax.random.normal(kx, (rows, fan_in))
    # ill-conditioned inputs, so the preconditioner has something to learn
    x = x * jnp.logspace(0, 1, fan_in)
    y = jax.random.normal(ky, (rows, fan_out))

    def loss(params):
        prediction = x @ params["w"] + params.get("b", 0.0) + params.get("s", 0.0)
        return jnp.mean((prediction - y) ** 2)

    params = {
        name: 0.1 * jax.random.normal(jax.random.fold_in(kp, i), shape)
        for i, (name, shape) in enumerate(shapes.items())
    }
    return loss, params


def _trajectory(tx, loss, params, steps: int):
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optim.apply_updates(params, updates), state

    path = []
    for _ in range(steps):
        params, state = step(params, state)
        path.append(params)
    return path, state


ORACLE_CASES = {
    # a matrix with triangular factors, a bias and a scalar (diagonal), decay on w only
    "matrix_bias_scalar": (
        {"w": (6, 4), "b": (4,), "s": ()},
        dict(weight_decay=0.01, weight_decay_mask={"w": True, "b": False, "s": False}),
        5e-6,
    ),
    # a dimension (8) above the triangular limit gets a diagonal factor, the other (3) not
    "above_triangular_limit": ({"w": (8, 3)}, dict(max_size_triangular=5), 5e-6),
    # the largest dimension made diagonal, and a schedule past its flat start
    "one_diag": ({"w": (5, 4)}, dict(memory_save_mode="one_diag"), 5e-6),
    # the preconditioner fitted to the raw gradients, without momentum: steps of RMS ~lr that
    # do not shrink near the minimum make the path sensitive to rounding (measured 2.6e-5; the
    # reference against itself from params nudged by one ulp drifts 1e-5 by step 15)
    "no_momentum": ({"w": (5, 4)}, dict(b1=0.0, momentum_into_precond_update=False), 1e-4),
}


@pytest.mark.parametrize(
    "case",
    [
        "matrix_bias_scalar",
        "above_triangular_limit",
        pytest.param("one_diag", marks=pytest.mark.slow),
        pytest.param("no_momentum", marks=pytest.mark.slow),
    ],
)
def test_trajectories_match_psgd_jax(case):
    """30 steps from the same params, same keys (psgd-jax folds the step into
    ``PRNGKey(5318008)``, our default key): the parameters agree to 5e-6 relative to each
    leaf's largest entry (measured on CPU: at most 7.5e-7; the factors to 4e-7 absolute;
    without momentum see ``ORACLE_CASES``).
    Both run in float32 at full matmul precision (the reference is asked for it: its default
    is TF32 on GPUs); the difference is rounding alone: einsum contractions against our
    mode-wise tensordots and triangular solves in another order, amplified a little by the
    data-dependent normalisation of each fitting step. During the default schedule's first 500
    steps both update the preconditioner at every step (psgd-jax 0.2.9 decides by a counter,
    we by a draw: at probability 1 the same)."""
    reference = _reference()
    shapes, options, tolerance = ORACLE_CASES[case]
    loss, params = _least_squares(shapes)
    full_precision = dict(precond_update_precision="float32", precond_grads_precision="float32")
    theirs, their_state = _trajectory(
        reference.kron(0.02, **options, **full_precision), loss, params, 30
    )
    ours, our_state = _trajectory(optim.kron(0.02, **options), loss, params, 30)
    for a, b in zip(theirs, ours, strict=True):
        for name in shapes:
            scale = float(jnp.max(jnp.abs(a[name])))
            np.testing.assert_allclose(b[name], a[name], rtol=0, atol=tolerance * scale)
    assert float(loss(ours[-1])) < 0.9 * float(loss(params))
    for name in shapes:
        their_factors = their_state[0]["Qs_preconditioners"][name]
        our_factors = our_state[0].preconditioners[name]
        for q_theirs, q_ours in zip(their_factors, our_factors, strict=True):
            np.testing.assert_allclose(
                q_ours.reshape(q_theirs.shape),
                q_theirs,
                atol=tolerance * float(jnp.max(jnp.abs(q_theirs))),
            )


@pytest.mark.slow
def test_no_preconditioner_update_matches_psgd_jax():
    """At probability 0 neither ever fits Q: momentum, Q = I and the RMS cap alone."""
    reference = _reference()
    loss, params = _least_squares({"w": (5, 4)})
    never = lambda count: jnp.float32(0.0)
    theirs, _ = _trajectory(
        reference.kron(0.02, preconditioner_update_probability=never), loss, params, 10
    )
    ours, state = _trajectory(
        optim.kron(0.02, preconditioner_update_probability=0.0), loss, params, 10
    )
    np.testing.assert_allclose(ours[-1]["w"], theirs[-1]["w"], rtol=1e-6)
    np.testing.assert_array_equal(state[0].preconditioners["w"][0], jnp.eye(5))


def test_schedule_matches_psgd_jax():
    reference = _reference().precond_update_prob_schedule()
    ours = optim.precond_update_prob_schedule()
    counts = jnp.array([1, 250, 500, 501, 1000, 2000, 4000, 10_000])
    np.testing.assert_allclose(ours(counts), reference(counts), rtol=1e-6)


def test_random_update_decision_is_a_reproducible_draw_from_the_key():
    params = {"w": jnp.ones((3, 2))}
    grads = {"w": jnp.array([[1.0, -2.0], [0.5, 0.3], [0.0, 1.0]])}

    def updated_steps(key):
        tx = optim.scale_by_kron(preconditioner_update_probability=0.5, key=key)
        state = tx.init(params)
        changed = []
        for _ in range(30):
            before = state.preconditioners["w"][0]
            _, state = _update(tx, grads, state)
            changed.append(not np.array_equal(before, state.preconditioners["w"][0]))
        return changed

    first = updated_steps(None)
    assert 6 <= sum(first) <= 24
    assert updated_steps(None) == first
    assert updated_steps(jax.random.key(1)) != first
    assert updated_steps(1) == updated_steps(jax.random.PRNGKey(1))


def test_factor_shapes_follow_the_limits():
    params = {
        "matrix": jnp.zeros((4, 3)),
        "wide": jnp.zeros((2, 9)),
        "bias": jnp.zeros(5),
        "scalar": jnp.zeros(()),
        "tensor": jnp.zeros((2, 3, 4)),
        "frozen": None,
    }
    state = optim.scale_by_kron(max_size_triangular=8).init(params)
    shapes = {k: [q.shape for q in v] for k, v in state.preconditioners.items() if v}
    assert shapes == {
        "matrix": [(4, 4), (3, 3)],
        "wide": [(2, 2), (9,)],
        "bias": [(5,)],
        "scalar": [(1,)],
        "tensor": [(2, 2), (3, 3), (4, 4)],
    }
    assert state.preconditioners["frozen"] is None
    one = optim.scale_by_kron(memory_save_mode="one_diag").init(params)
    assert [q.shape for q in one.preconditioners["tensor"]] == [(2, 2), (3, 3), (4,)]
    assert [q.shape for q in one.preconditioners["wide"]] == [(2, 2), (9,)]
    diag = optim.scale_by_kron(memory_save_mode="all_diag").init(params)
    assert [q.shape for q in diag.preconditioners["matrix"]] == [(4,), (3,)]
    init = optim.scale_by_kron(preconditioner_init_scale=8.0).init(params)
    np.testing.assert_allclose(init.preconditioners["tensor"][0], 2.0 * jnp.eye(2))


def test_edge_cases_zero_non_finite_and_frozen_leaves():
    tx = optim.kron(0.1)
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2), "s": jnp.ones(()), "frozen": None}
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, state = _update(tx, zeros, state, params)
    for name in ("w", "b", "s"):
        np.testing.assert_array_equal(updates[name], 0.0)
        assert updates[name].shape == params[name].shape
    assert updates["frozen"] is None
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state))
    bad = dict(zeros, w=zeros["w"].at[0, 0].set(jnp.nan), s=jnp.array(jnp.inf))
    updates, _ = _update(tx, bad, state, params)
    assert not bool(jnp.all(jnp.isfinite(updates["w"])))
    assert not bool(jnp.isfinite(updates["s"]))


def test_update_rms_is_capped_and_bf16_params_keep_their_dtype():
    tx = optim.scale_by_kron()
    grads = {"w": 1e3 * jnp.arange(12.0, dtype=jnp.bfloat16).reshape(4, 3)}
    state = tx.init(grads)
    updates, state = _update(tx, grads, state)
    assert updates["w"].dtype == jnp.bfloat16
    assert state.mu["w"].dtype == jnp.float32
    assert float(jnp.sqrt(jnp.mean(updates["w"].astype(jnp.float32) ** 2))) <= 1.11


def test_normalize_grads_makes_the_step_scale_free():
    grads = {"w": jnp.array([[1.0, -2.0], [0.5, 0.3]])}
    tx = optim.scale_by_kron(normalize_grads=True)
    small, _ = _update(tx, grads, tx.init(grads))
    large, _ = _update(tx, jax.tree.map(lambda g: 1e4 * g, grads), tx.init(grads))
    np.testing.assert_allclose(small["w"], large["w"], rtol=1e-5)


def test_one_compilation_across_learning_rates_and_vmap():
    loss, params = _least_squares({"w": (4, 3)})
    traces = []

    def step(tx, params, state):
        traces.append(1)
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optim.apply_updates(params, updates), state

    compiled = jax.jit(step)
    lrs = jnp.array([0.0, 0.01, 0.03])
    one_by_one = []
    for lr in lrs:
        tx = optim.kron(lr)
        p, s = params, tx.init(params)
        for _ in range(2):
            p, s = compiled(tx, p, s)
        one_by_one.append(loss(p))
    assert len(traces) == 1

    @jax.jit
    @jax.vmap
    def final_loss(lr):
        tx = optim.kron(lr)
        p, s = params, tx.init(params)
        for _ in range(2):
            p, s = step(tx, p, s)
        return loss(p)

    batched = final_loss(lrs)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5)
    assert float(batched[0]) == pytest.approx(float(loss(params)))
    assert float(batched[1]) < float(batched[0])


def _data(n: int = 48):
    kx, kn = jax.random.split(jax.random.PRNGKey(1))
    x = jax.random.normal(kx, (n, 4)) * jnp.array([1.0, 3.0, 0.3, 1.0])
    w = jnp.arange(8.0).reshape(4, 2) / 8
    return x, x @ w + 0.05 * jax.random.normal(kn, (n, 2))


def _mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


FIT = dict(epochs=5, batch_size=8, key=jax.random.PRNGKey(3), checkpoint_every=5)
START = {"w": jnp.zeros((4, 2)), "b": jnp.zeros(2)}


def test_fit_trains_and_resumes_bit_identically(tmp_path, monkeypatch):
    tx = optim.kron(0.02, weight_decay=1e-3, weight_decay_mask={"w": True, "b": False})
    whole = optim.fit(_mse, START, tx, _data(), checkpoint_dir=tmp_path / "whole", **FIT)
    assert float(whole.losses[-5:].mean()) < 0.5 * float(whole.losses[:5].mean())
    original, calls = _history.History.add, []

    def interrupted(self, *args):
        original(self, *args)
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(_history.History, "add", interrupted)
        with pytest.raises(KeyboardInterrupt):
            optim.fit(_mse, START, tx, _data(), checkpoint_dir=tmp_path / "cut", **FIT)
    resumed = optim.fit(
        _mse, START, tx, _data(), checkpoint_dir=tmp_path / "cut", resume=True, **FIT
    )
    for field in ("opt_state", "params", "losses"):
        ours, theirs = getattr(resumed, field), getattr(whole, field)
        assert jax.tree.structure(ours) == jax.tree.structure(theirs)
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
            np.testing.assert_array_equal(a, b)


def test_momentum_stored_in_bfloat16():
    tx = optim.with_state_dtype(optim.kron(0.01), "bfloat16")
    loss, params = _least_squares({"w": (4, 3), "b": (3,)})
    path, state = _trajectory(tx, loss, params, 5)
    inner = state.inner_state if hasattr(state, "inner_state") else state
    dtypes = {x.dtype for x in jax.tree.leaves(inner)}
    assert jnp.dtype(jnp.bfloat16) in dtypes  # the momentum
    assert jnp.dtype(jnp.float32) in dtypes  # the factors stay float32
    assert float(loss(path[-1])) < float(loss(params))


def test_complex_params_are_refused():
    with pytest.raises(TypeError, match=r"kron does not support complex params.*\['w'\]"):
        optim.kron(0.1).init({"w": jnp.ones((2, 2), jnp.complex64)})


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: optim.kron(0.1, b1=1.5), ValueError, "b1"),
        (lambda: optim.kron(0.1, preconditioner_lr=0.0), ValueError, "preconditioner_lr"),
        (
            lambda: optim.kron(0.1, preconditioner_init_scale=-1.0),
            ValueError,
            "preconditioner_init_scale",
        ),
        (
            lambda: optim.kron(0.1, preconditioner_update_probability=1.5),
            ValueError,
            "preconditioner_update_probability",
        ),
        (lambda: optim.kron(0.1, max_size_triangular=2.5), TypeError, "max_size_triangular"),
        (lambda: optim.kron(0.1, min_ndim_triangular=-1), ValueError, "min_ndim_triangular"),
        (lambda: optim.kron(0.1, memory_save_mode="some"), ValueError, "memory_save_mode"),
        (lambda: optim.kron(0.1, normalize_grads="yes"), TypeError, "normalize_grads"),
        (lambda: optim.kron(0.1, key="abc"), TypeError, "key"),
        (lambda: optim.kron(0.1, weight_decay=-1.0), ValueError, "weight_decay"),
        (lambda: optim.precond_update_prob_schedule(min_prob=2.0), ValueError, "min_prob"),
    ],
)
def test_bad_arguments_raise_naming_them(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_grads_of_another_shape_name_the_leaf():
    tx = optim.kron(0.1)
    state = tx.init({"w": jnp.ones((3, 2))})
    with pytest.raises((TypeError, ValueError), match=r"\['w'\]"):
        tx.update({"w": jnp.ones((2, 3))}, state)
