"""GaLore (optim.contrib._galore) against optax.contrib 0.2.8 (the oracle): state, signatures,
projections, dtypes, jit, bad arguments. Its trajectories are compared with optax's in
tests/test_optax_parity.py (records of tests/parity_table.py's GALORE).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_signature_extends_optax, convex_loss, nested_params
from parity_table import galore_params

import optim
from optim.contrib import GaLoreDimensionNumbers, GaLoreState, galore, scale_by_galore


def test_state_matches_optax():
    """GaLoreState's fields; the projectors' shapes (the left singular vectors of tall
    matrices, the right ones of wide matrices, (0, 0) for leaves not projected), and an inner
    Adam state of the projected shapes, as optax's."""

    def attention_only(p):
        return jax.tree.map(lambda x: GaLoreDimensionNumbers(0, (1, 2)) if x.ndim == 3 else None, p)

    cases = [
        (lambda m: None, galore_params()),
        (lambda m: attention_only, galore_params()),
        # Every matrix, transposed; optax needs its own class to apply one to every leaf.
        (lambda m: m.contrib.GaLoreDimensionNumbers(-1, 0), nested_params()),
    ]
    for dims, params in cases:
        ours = galore(0.1, rank=2, weight_dimension_numbers=dims(optim)).init(params)[0]
        theirs = optax.contrib.galore(0.1, rank=2, weight_dimension_numbers=dims(optax))
        theirs = theirs.init(params)[0]
        assert isinstance(ours, GaLoreState)
        assert GaLoreState._fields == type(theirs)._fields
        for field in ("projector", "base_optimizer_state"):
            shapes = [jax.tree.map(jnp.shape, getattr(s, field)) for s in (ours, theirs)]
            assert shapes[0] == shapes[1], field
        assert ours.count.dtype == jnp.int32
    theirs_dims = optax.contrib.GaLoreDimensionNumbers(-1, 0)  # optax's class is accepted too
    with_theirs = galore(0.1, rank=2, weight_dimension_numbers=theirs_dims).init(params)[0]
    assert jax.tree.map(jnp.shape, with_theirs) == jax.tree.map(jnp.shape, ours)
    ours = galore(0.1, rank=2).init(galore_params())[0]
    assert ours.projector["dense"]["w"].shape == (4, 2)  # tall (4, 3): P is 4 x r
    assert ours.projector["blocks"][0].shape == (5, 2)  # wide (2, 5): P is 5 x r
    assert ours.base_optimizer_state.mu["blocks"][0].shape == (2, 2)
    assert ours.projector["attn"].shape == (0, 0)  # 3-d: not projected by default


def test_signatures_match_optax():
    for ours, theirs in (
        (galore, optax.contrib.galore),
        (scale_by_galore, optax.contrib.scale_by_galore),
    ):
        assert_signature_extends_optax(ours, theirs, ours.__name__, exact=True)
    assert GaLoreDimensionNumbers._fields == optax.contrib.GaLoreDimensionNumbers._fields
    assert GaLoreDimensionNumbers() == optax.contrib.GaLoreDimensionNumbers()


def test_projector_refreshes_every_update_proj_gap_steps():
    """The projector is the SVD basis of the gradients at steps 0, T, 2T, ... and held
    in between."""
    gap = 3
    tx = scale_by_galore(rank=2, update_proj_gap=gap)
    params = {"w": jnp.zeros((4, 3))}
    state = tx.init(params)
    projectors = []
    for t in range(2 * gap + 1):
        grads = {"w": jnp.sin(jnp.arange(12.0).reshape(4, 3) * (t + 1))}
        _, state = tx.update(grads, state)
        projectors.append(state.projector["w"])
        if t % gap == 0:
            u = np.linalg.svd(np.asarray(grads["w"]), full_matrices=False)[0][:, :2]
            np.testing.assert_allclose(np.abs(projectors[-1]), np.abs(u), atol=1e-5)
    for t in range(1, 2 * gap + 1):
        held = t % gap != 0
        assert np.array_equal(projectors[t], projectors[t - 1]) is held, t


@pytest.mark.parametrize("shape", [(5, 3), (3, 5)], ids=["tall", "wide"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64])
def test_full_rank_projection_returns_the_gradient(shape, dtype):
    """With the rank at the matrix's shorter side and an identity inner optimizer the update
    is P P^* G (or G P P^*) = G: the complex singular vectors and the conjugate transpose
    make it so for complex gradients too (optax takes the SVD of the real part and
    transposes without conjugating: not G)."""
    rows, cols = shape
    g = jnp.arange(1.0, rows * cols + 1).reshape(shape) ** 1.5 % 7.0
    if dtype == jnp.complex64:
        g = g + 1j * (jnp.arange(rows * cols).reshape(shape) % 5.0)
    g = g.astype(dtype)
    tx = scale_by_galore(rank=min(shape), base_optimizer=optim.identity())
    updates, _ = tx.update({"w": g}, tx.init({"w": jnp.zeros_like(g)}))
    assert updates["w"].dtype == dtype
    np.testing.assert_allclose(updates["w"], g, rtol=0, atol=2e-5 * float(jnp.max(jnp.abs(g))))


def test_bfloat16_params():
    """The projector is stored in the parameter's dtype (optax's layout), the inner Adam's
    moments in float32 (ours), the updates in bfloat16."""
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), galore_params())
    tx = galore(0.01, rank=2)
    state = tx.init(params)
    assert state[0].projector["dense"]["w"].dtype == jnp.bfloat16
    assert state[0].base_optimizer_state.mu["dense"]["w"].dtype == jnp.float32
    updates, state = jax.jit(lambda p, s: tx.update(jax.grad(convex_loss)(p), s, p))(params, state)
    assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates))
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_non_array_leaves_and_empty_params():
    params = {"w": jnp.ones((3, 2)), "fn": None, "n": 3}
    tx = galore(0.1, rank=1)
    state = tx.init(params)
    grads = {"w": jnp.full((3, 2), 0.5), "fn": None, "n": None}
    updates, _ = tx.update(grads, state, params)
    assert updates["fn"] is None and updates["n"] is None and updates["w"].shape == (3, 2)
    empty = galore(0.1).init({})
    assert galore(0.1).update({}, empty, {})[0] == {}


def test_jit_compiles_once_for_new_float_hyperparameters():
    traces = []

    @jax.jit
    def step(tx, params, state):
        traces.append(1)
        return tx.update(jax.grad(convex_loss)(params), state, params)

    params = galore_params()
    for lr, scale in ((0.1, 1.0), (0.01, 0.25)):
        tx = galore(lr, rank=2, scale=scale)
        step(tx, params, tx.init(params))
    assert len(traces) == 1


def test_hypergradient_through_a_zero_gradient_matrix_is_finite():
    """d loss / d learning rate through three updates, the projectors refreshed at each, where
    a matrix's gradient is exactly 0: the SVD of a zero matrix has coinciding singular values,
    where its derivative is infinite (NaN here without the stop_gradient, and optax's is NaN).
    The projector is a basis, not differentiated."""
    target = {"w": jnp.ones((3, 2)), "v": jnp.ones((2, 4))}
    start = {"w": jnp.ones((3, 2)), "v": jnp.zeros((2, 4))}  # w starts at its target

    def loss(p):
        return sum(jnp.sum((p[k] - target[k]) ** 2) for k in p)

    def final_loss(lr):
        tx = galore(lr, rank=1, update_proj_gap=1)
        params, state = start, tx.init(start)
        for _ in range(3):
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            params = optim.apply_updates(params, updates)
        return loss(params)

    grad = jax.jit(jax.grad(final_loss))(jnp.float32(0.1))
    assert np.isfinite(float(grad)) and float(grad) != 0


BAD_ARGUMENTS = [
    (lambda: galore(-0.1), ValueError, "learning_rate"),
    (lambda: galore(0.1, rank=0), ValueError, "rank"),
    (lambda: galore(0.1, rank=2.0), TypeError, "rank"),
    (lambda: galore(0.1, rank=True), TypeError, "rank"),
    (lambda: galore(0.1, update_proj_gap=0), ValueError, "update_proj_gap"),
    (lambda: galore(0.1, update_proj_gap=1.5), TypeError, "update_proj_gap"),
    (lambda: galore(0.1, scale=float("nan")), ValueError, "scale"),
    (lambda: galore(0.1, weight_decay=-1.0), ValueError, "weight_decay"),
    (lambda: galore(0.1, base_optimizer=object()), TypeError, "base_optimizer"),
    (lambda: galore(0.1, base_optimizer=optim.adam), TypeError, "base_optimizer"),
    (
        lambda: galore(0.1, weight_dimension_numbers={"w": 3}),
        TypeError,
        r"weight_dimension_numbers\['w'\]",
    ),
    (
        lambda: galore(0.1, weight_dimension_numbers=GaLoreDimensionNumbers(0, "x")),
        TypeError,
        "output_axis",
    ),
]


@pytest.mark.parametrize(("build", "error", "match"), BAD_ARGUMENTS)
def test_bad_arguments_raise_naming_them(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize(
    ("dims", "params", "match"),
    [
        ({"w": GaLoreDimensionNumbers(0, 1)}, {"w": jnp.ones((2, 3, 4))}, r"\['w'\].*every axis"),
        ({"w": GaLoreDimensionNumbers(0, 0)}, {"w": jnp.ones((2, 3))}, r"\['w'\].*distinct"),
        ({"w": GaLoreDimensionNumbers(0, 1)}, {"w": jnp.ones(3)}, r"\['w'\]"),
        ({"w": GaLoreDimensionNumbers(0, 5)}, {"w": jnp.ones((2, 3))}, r"\['w'\]"),
        ({"v": None}, {"w": jnp.ones((2, 3))}, "prefix of the params"),
        (lambda p: lambda q: q, {"w": jnp.ones((2, 3))}, "must return dimension numbers"),
    ],
    ids=["axis_left_out", "same_axis", "vector", "axis_out_of_range", "other_tree", "function"],
)
def test_dimension_numbers_that_do_not_fit_name_the_leaf(dims, params, match):
    tx = galore(0.1, weight_dimension_numbers=dims)
    with pytest.raises((ValueError, TypeError), match=match):
        tx.init(params)


def test_grads_of_another_shape_or_structure_name_the_leaf():
    params = {"w": jnp.ones((4, 3)), "b": jnp.ones(3)}
    tx = galore(0.1, rank=2)
    state = tx.init(params)
    # Given the params (as galore's weight decay needs), the grads are checked against them.
    with pytest.raises(ValueError, match=r"grads\['w'\] has shape \(3, 4\) but params\['w'\]"):
        tx.update({"w": jnp.ones((3, 4)), "b": jnp.ones(3)}, state, params)
    with pytest.raises(ValueError, match=r"grads.*\['b'\]"):
        tx.update({"w": jnp.ones((4, 3))}, state, params)
    with pytest.raises(TypeError, match=r"grads\['b'\]"):
        tx.update({"w": jnp.ones((4, 3)), "b": jnp.ones(3, jnp.int32)}, state, params)
    # Without them, against the projector's shape.
    inner = scale_by_galore(rank=2)
    inner_state = inner.init(params)
    with pytest.raises(ValueError, match=r"grads\['w'\].*projector"):
        inner.update({"w": jnp.ones((5, 3)), "b": jnp.ones(3)}, inner_state)
    # The transposed matrix needs a projector of the same shape: the inner Adam names the leaf.
    with pytest.raises(ValueError, match=r"grads\['w'\]"):
        inner.update({"w": jnp.ones((3, 4)), "b": jnp.ones(3)}, inner_state)
    with pytest.raises(ValueError, match=r"missing from grads: \['b'\]"):
        inner.update({"w": jnp.ones((4, 3))}, inner_state)
