"""Shampoo (optim/optimizers/_shampoo.py): trajectories against the reference, the update rule
on one step, the schedule of roots and preconditioning, and the catalogue's guarantees.

The reference trajectories (tests/data/shampoo_reference.npz) come from pytorch-optimizer's
``ScalableShampoo`` (a port of Distributed Shampoo) in float64 on CPU torch, written by
tests/scripts/shampoo_reference.py (its docstring gives the settings). Ours run in float32:
``REFERENCE_BOUND`` bounds the deviation.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import convex_loss, relative_deviation

import optim
from optim.optimizers._shampoo import ScaleByShampoo

REFERENCE = pathlib.Path(__file__).resolve().parents[1] / "data" / "shampoo_reference.npz"
# Largest relative deviation (max |ours - reference| / max |reference| per leaf) over the 12
# steps of every problem. Measured: 6.6e-6 (blocked), 5.0e-6 (matrix), 2.5e-7 (sgd_graft).
# Ours run in float32 against the reference's float64: the statistics of inputs with condition
# number 1e3 have condition numbers up to 1e6, whose inverse fourth roots the Newton iterations
# give to a few float32 ulps times that conditioning; and our solver sees every factor padded
# with zeros (to the block size within a leaf, to the largest factor across leaves; the
# reference cuts smaller blocks), which changes the iterations' path, not their limit. The
# reference's other difference (its norm ratio 1 - 1e-16 / |D| on the bias) is far below this.
REFERENCE_BOUND = 2e-5


def _least_squares(x, y):
    def loss(params):
        prediction = x @ params["w"] + (params["b"] if "b" in params else 0.0)
        return 0.5 * jnp.mean((prediction - y) ** 2)

    return loss


def _path(tx, loss, params, steps):
    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p)
        p = optim.apply_updates(p, u)
        return (p, s), p

    run = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), length=steps))
    (params, state), path = run(params)
    return params, state, path


@pytest.mark.parametrize("problem", ["matrix", "blocked", "sgd_graft"])
def test_trajectories_match_the_reference(problem):
    data = np.load(REFERENCE)
    hyper = json.loads(str(data[f"{problem}/hyper"]))
    loss = _least_squares(jnp.asarray(data[f"{problem}/x"]), jnp.asarray(data[f"{problem}/y"]))
    params = {
        k: jnp.asarray(data[f"{problem}/{k}"]) for k in ("w", "b") if f"{problem}/{k}" in data
    }
    reference = {k: data[f"{problem}/path_{k}"] for k in params}
    _, _, path = _path(optim.shampoo(**hyper), loss, params, len(reference["w"]))
    for step in range(len(reference["w"])):
        ours = jax.tree.map(lambda x, step=step: x[step], path)
        theirs = jax.tree.map(lambda x, step=step: x[step], reference)
        assert relative_deviation(ours, theirs) < REFERENCE_BOUND, step
    # The parameters moved far beyond the bound: the comparison is not of the start alone.
    assert relative_deviation(params, reference) > 100 * REFERENCE_BOUND


def _inverse_root(matrix, p):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * values ** (-1.0 / p)) @ vectors.T


# One jitted update taking the optimizer as an argument: tests that share a tree structure and
# the static options share its compiled program.
_update = jax.jit(lambda tx, grads, state, params: tx.update(grads, state, params))
SMALL = {"w": jnp.ones((4, 3)), "b": jnp.ones(3)}


def test_one_step_is_the_grafted_kronecker_preconditioned_gradient():
    """L^{-1/4} G R^{-1/4} (computed in float64 with eigh), scaled to the SGD graft's norm; its
    roots are optax's ``matrix_inverse_pth_root`` of the statistics (the solver is
    ``optim.matrix_inverse_pth_root``, which matches optax's where both apply: p = 4)."""
    g = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    tx = optim.scale_by_shampoo(
        b1=0.0,
        b2=0.5,
        matrix_eps=1e-6,
        precondition_every=1,
        start_preconditioning_step=1,
        graft_type="sgd",
        nesterov=False,
    )
    updates, state = _update(tx, g, tx.init(g), None)
    g64 = np.asarray(g, np.float64)
    roots = []
    for stat in (0.5e-6 * np.eye(5) + 0.5 * g64 @ g64.T, 0.5e-6 * np.eye(3) + 0.5 * g64.T @ g64):
        ridge = 1e-6 * np.linalg.eigvalsh(stat).max()
        roots.append(_inverse_root(stat + ridge * np.eye(len(stat)), 4))
    expected = roots[0] @ g64 @ roots[1]
    expected *= np.linalg.norm(g64) / np.linalg.norm(expected)
    np.testing.assert_allclose(updates, expected, rtol=2e-4, atol=2e-5 * np.abs(expected).max())
    # R (full rank) is well conditioned; L (rank 3 + the ridge) is not, and its root's
    # near-null part is accurate only to float32 over its condition number, 1e6.
    np.testing.assert_allclose(state.roots[1], roots[1][None], rtol=1e-4, atol=1e-5)
    for stats, ours in zip(state.stats, state.roots, strict=True):
        theirs, _ = _optax_root(stats[0])
        np.testing.assert_allclose(ours[0], theirs, rtol=1e-5, atol=1e-6 * np.abs(theirs).max())


@jax.jit
def _optax_root(matrix):
    return optax.matrix_inverse_pth_root(matrix, 4, ridge_epsilon=1e-6)


def test_roots_are_recomputed_every_precondition_every_steps():
    tx = optim.scale_by_shampoo(precondition_every=3, start_preconditioning_step=1)
    state = tx.init(SMALL)
    eye = [np.eye(4)[None], np.eye(3)[None]]
    for step in range(1, 8):
        grads = {"w": jnp.sin(jnp.arange(12.0).reshape(4, 3) * step), "b": jnp.ones(3)}
        old_roots = state.roots["w"]
        _, state = _update(tx, grads, state, None)
        new = state.roots["w"]
        if step % 3:
            for a, b in zip(new, old_roots, strict=True):
                np.testing.assert_array_equal(a, b)
        else:
            assert not np.allclose(new[0], old_roots[0])
        if step < 3:
            for a, b in zip(new, eye, strict=True):
                np.testing.assert_array_equal(a, b)


def test_steps_before_start_preconditioning_step_are_the_grafting_optimizers():
    """Before the start, a matrix takes Adam-grafting's own momentum step (a vector does so
    always); from the start on, the grafted Shampoo step."""
    w = jax.random.normal(jax.random.PRNGKey(2), (4, 3))
    params = {"w": w, "b": w[0]}
    grads = jax.tree.map(lambda x: 0.1 * x + 0.05, params)
    tx = optim.scale_by_shampoo(b1=0.9, b2=0.99, precondition_every=1, start_preconditioning_step=3)
    adam_like = optim.chain(
        optim.scale_by_rms(decay=0.99, eps=0.0, eps_in_sqrt=False, bias_correction=True),
        optim.trace(0.9, nesterov=True),
    )
    state, reference_state = tx.init(params), adam_like.init(params)
    for step in range(1, 5):
        updates, state = _update(tx, grads, state, None)
        expected, reference_state = _update(adam_like, grads, reference_state, None)
        np.testing.assert_allclose(updates["b"], expected["b"], rtol=1e-5)
        if step < 3:
            np.testing.assert_allclose(updates["w"], expected["w"], rtol=1e-5)
        else:
            assert not np.allclose(updates["w"], expected["w"], rtol=1e-3)


def test_large_dimensions_are_split_into_blocks():
    params = {"w": jnp.zeros((300, 130)), "t": jnp.zeros((3, 5, 7)), "b": jnp.zeros(300)}
    state = optim.scale_by_shampoo(block_size=128).init(params)
    # 300 = 128 + 128 + 44 (padded), 130 = 128 + 2 (padded): 3 x 2 blocks.
    assert [s.shape for s in state.stats["w"]] == [(6, 128, 128), (6, 128, 128)]
    assert [s.shape for s in state.stats["t"]] == [(1, 3, 3), (1, 5, 5), (1, 7, 7)]
    assert state.stats["b"] is None and state.graft_momentum["b"] is None
    # Blocked (here in blocks of 8), a matrix's step moves every element and stays finite;
    # a three-dimensional leaf takes roots p = 6 (2k).
    params = {"w": jax.random.normal(jax.random.PRNGKey(3), (20, 9)), "t": jnp.ones((3, 5, 7))}
    tx = optim.scale_by_shampoo(block_size=8, precondition_every=1, start_preconditioning_step=1)
    updates, state = _update(tx, params, tx.init(params), None)
    assert [s.shape for s in state.stats["w"]] == [(6, 8, 8), (6, 8, 8)]
    for u in jax.tree.leaves(updates):
        assert bool(jnp.all(jnp.isfinite(u))) and float(jnp.min(jnp.abs(u))) > 0
    # The cube's statistics are those of its unfoldings: their roots are the p = 6 roots.
    cube = np.ones((3, 5, 7))
    stat = 0.999e-6 * np.eye(3) + 0.001 * np.einsum("ijk,ljk->il", cube, cube)
    ridge = 1e-6 * np.linalg.eigvalsh(stat).max()
    root = _inverse_root(stat + ridge * np.eye(3), 6)
    np.testing.assert_allclose(state.roots["t"][0][0], root, rtol=1e-3, atol=1e-3 * root.max())


def test_b2_one_sums_and_exponent_override():
    """b2 = 1 sums the statistics (the paper's rule; the reference refuses it) and the
    grafting optimizer's squares; exponent_override sets p (here the inverse square root)."""
    tx = optim.scale_by_shampoo(
        b2=1.0,
        graft_type="rmsprop",
        precondition_every=1,
        start_preconditioning_step=1,
        exponent_override=2,
    )
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    grads = [{"w": jax.random.normal(k, (4, 3)), "b": jnp.ones(3)} for k in keys]
    state = tx.init(SMALL)
    for g in grads:
        _, state = _update(tx, g, state, None)
    g64 = [np.asarray(g["w"], np.float64) for g in grads]
    right = 1e-6 * np.eye(3) + sum(g.T @ g for g in g64)
    np.testing.assert_allclose(state.stats["w"][1][0], right, rtol=1e-5)
    np.testing.assert_allclose(state.graft_nu["w"], sum(g**2 for g in g64), rtol=1e-5)
    ridge = 1e-6 * np.linalg.eigvalsh(right).max()
    root = _inverse_root(right + ridge * np.eye(3), 2)
    np.testing.assert_allclose(state.roots["w"][1][0], root, rtol=1e-4, atol=1e-6)


def test_zero_and_non_finite_gradients():
    """Zero gradients from a fresh state leave the params where they are (and the roots of
    the initial statistics, matrix_eps I, are finite); a NaN or inf gives a non-finite step."""
    tx = optim.scale_by_shampoo(precondition_every=1, start_preconditioning_step=1)
    zeros = jax.tree.map(jnp.zeros_like, SMALL)
    updates, state = _update(tx, zeros, tx.init(SMALL), None)
    for u in jax.tree.leaves(updates):
        np.testing.assert_array_equal(u, jnp.zeros_like(u))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state))
    grads = {"w": jnp.ones((4, 3)).at[0, 0].set(jnp.nan), "b": jnp.array([1.0, jnp.inf, 0.0])}
    updates, _ = _update(tx, grads, tx.init(SMALL), None)
    assert not bool(jnp.all(jnp.isfinite(updates["w"])))
    assert not bool(jnp.all(jnp.isfinite(updates["b"])))


@pytest.mark.parametrize(
    "graft_type",
    ["adam", pytest.param("rmsprop", marks=pytest.mark.slow), "adagrad", "sgd"],
)
def test_every_graft_descends(graft_type):
    tx = optim.shampoo(
        0.05, graft_type=graft_type, precondition_every=5, start_preconditioning_step=5
    )

    def loss(params):
        return convex_loss(params) + jnp.sum(params["w"][0] * params["w"][1])

    final, _, _ = _path(tx, loss, SMALL, 30)
    assert float(loss(final)) < 0.6 * float(loss(SMALL))


def test_dtypes_and_state_storage():
    params = {"w": jnp.ones((4, 3), jnp.bfloat16), "s": jnp.ones((), jnp.bfloat16)}
    tx = optim.shampoo(0.1)
    state = tx.init(params)[0]
    assert {x.dtype for x in jax.tree.leaves(state) if x.ndim} == {jnp.dtype(jnp.float32)}
    updates, _ = _update(tx, params, tx.init(params), params)
    assert jax.tree.map(lambda x: x.dtype, updates) == jax.tree.map(lambda x: x.dtype, params)
    # Momenta and the graft's second moment may be stored in bfloat16; the factors stay float32.
    stored = optim.with_state_dtype(optim.shampoo(0.1), "bfloat16")
    s = stored.init(SMALL)[0]
    assert s.momentum["w"].dtype == jnp.bfloat16 and s.graft_nu["w"].dtype == jnp.bfloat16
    assert s.stats["w"][0].dtype == jnp.float32 and s.roots["w"][1].dtype == jnp.float32


def test_complex_params_are_refused():
    with pytest.raises(TypeError, match=r"shampoo does not support complex params.*\['z'\]"):
        optim.shampoo(0.1).init({"z": jnp.ones((2, 2), jnp.complex64)})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"graft_type": "lion"}, ValueError, r"graft_type must be one of 'adam'.*got 'lion'"),
        ({"block_size": 0}, ValueError, r"block_size must be an int >= 1"),
        ({"block_size": 2.5}, TypeError, r"block_size must be an int"),
        ({"b2": 1.5}, ValueError, r"b2 must be in \[0\.0, 1\.0\]"),
        ({"b1": 1.0}, ValueError, r"b1 must be in \[0\.0, 1\.0\)"),
        ({"matrix_eps": 0.0}, ValueError, r"matrix_eps must be in \(0\.0, inf\)"),
        ({"precondition_every": 0}, ValueError, r"precondition_every must be an int >= 1"),
        ({"start_preconditioning_step": 1.0}, TypeError, r"start_preconditioning_step"),
        ({"exponent_override": -1}, ValueError, r"exponent_override must be an int >= 0"),
        ({"nesterov": "yes"}, TypeError, r"nesterov must be True or False"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        optim.shampoo(0.1, **kwargs)
    with pytest.raises(error, match=match):
        ScaleByShampoo(**kwargs)


def test_mismatched_gradients_are_refused():
    tx = optim.scale_by_shampoo()
    state = tx.init({"w": jnp.ones((3, 2))})
    with pytest.raises(ValueError, match="grads"):
        tx.update({"w": jnp.ones((3, 3))}, state)


def test_one_compilation_for_all_hyperparameters_and_vmap_over_the_learning_rate():
    traces = []

    @jax.jit
    def step(tx, params, state):
        traces.append(1)
        updates, state = tx.update(jax.grad(convex_loss)(params), state, params)
        return optim.apply_updates(params, updates), state

    for lr, b1, b2, eps in [(0.01, 0.9, 0.999, 1e-10), (0.1, 0.5, 0.9, 1e-8)]:
        tx = optim.shampoo(lr, b1=b1, b2=b2, eps=eps, matrix_eps=eps)
        step(tx, SMALL, tx.init(SMALL))
    assert len(traces) == 1

    @jax.jit
    def run(lr):
        tx = optim.shampoo(lr, precondition_every=2, start_preconditioning_step=2)
        return _path(tx, convex_loss, SMALL, 4)[0]

    lrs = jnp.array([0.01, 0.05])
    batched = jax.vmap(run)(lrs)
    for i, lr in enumerate(lrs):
        single = run(lr)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(a[i], b, rtol=2e-5, atol=1e-6)


def _regression_data():
    kx, kn = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (64, 6)) * jnp.logspace(0, -1, 6)
    w = jnp.arange(12.0).reshape(6, 2) / 10
    return x, x @ w + 0.01 * jax.random.normal(kn, (64, 2))


def _mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


RUN = dict(steps=24, batch_size=16, key=jax.random.PRNGKey(1))
PARAMS = {"w": jnp.zeros((6, 2)), "b": jnp.zeros(2)}
TX = optim.shampoo(0.05, precondition_every=4, start_preconditioning_step=4)


def test_inside_fit():
    result = optim.fit(_mse, PARAMS, TX, _regression_data(), **RUN)
    assert float(result.losses[-1]) < 0.2 * float(result.losses[0])
    assert type(result.opt_state[0]).__name__ == "ScaleByShampooState"


@pytest.mark.slow  # three fits, each compiling its own program: 25 s on a loaded machine
def test_checkpoint_resume_is_bit_identical(tmp_path):
    run = {**RUN, "checkpoint_every": 8}
    whole = optim.fit(_mse, PARAMS, TX, _regression_data(), checkpoint_dir=tmp_path / "a", **run)
    first = optim.fit(
        _mse, PARAMS, TX, _regression_data(), checkpoint_dir=tmp_path / "b", **{**run, "steps": 16}
    )
    assert first.losses.shape == (16,)
    resumed = optim.fit(
        _mse, PARAMS, TX, _regression_data(), checkpoint_dir=tmp_path / "b", resume=True, **run
    )
    for a, b in zip(
        jax.tree.leaves((resumed.params, resumed.opt_state)),
        jax.tree.leaves((whole.params, whole.opt_state)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert type(resumed.opt_state[0]).__name__ == "ScaleByShampooState"
