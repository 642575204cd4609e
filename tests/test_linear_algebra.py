"""optim.linear_algebra (global_norm, power_iteration, matrix_inverse_pth_root, nnls) against
optax: the same arithmetic in the same order, so the values are compared bit for bit (under
jit, where XLA fuses both programs alike) unless a test says otherwise."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from optim import linear_algebra

RNG = np.random.default_rng(0)


def _spd(n: int, seed: int = 0) -> jax.Array:
    """A symmetric positive definite matrix with eigenvalues spread over [0.5, 5]."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return jnp.asarray(q @ np.diag(np.linspace(0.5, 5.0, n)) @ q.T, jnp.float32)


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return fn(*args)


# --- global_norm --------------------------------------------------------------------------


def test_global_norm_is_optax_bit_for_bit(params):
    tree = {**params, "none": None, "c": jnp.asarray(RNG.normal(size=3) + 1j, jnp.complex64)}
    ours = jax.jit(lambda t: _quiet(optim.global_norm, t))(tree)
    theirs = jax.jit(lambda t: _quiet(optax.global_norm, t))(tree)
    assert ours.dtype == theirs.dtype == jnp.float32
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(_quiet(optim.global_norm, {}), 0.0)


def test_global_norm_warns_as_optax_does():
    with pytest.warns(DeprecationWarning, match="optax.tree.norm"):
        optim.global_norm({"a": jnp.ones(2)})


def test_global_norm_is_the_one_clip_by_global_norm_uses(params):
    """One implementation: the private norm of clip_by_global_norm (which does not warn)."""
    from optim import _tree

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        tx = optim.clip_by_global_norm(1.0)
        updates, _ = tx.update(params, tx.init(params))
    np.testing.assert_allclose(_tree.global_norm(updates), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(_quiet(optim.global_norm, params), _tree.global_norm(params))


def test_global_norm_rejects_integer_arrays():
    with pytest.raises(TypeError, match=r"updates\['n'\] is an array of dtype int32"):
        _quiet(optim.global_norm, {"n": jnp.array([3, 4]), "x": jnp.ones(2)})


# --- power_iteration ----------------------------------------------------------------------


def test_power_iteration_is_optax_bit_for_bit():
    matrix = _spd(6)
    for kwargs in ({}, {"num_iters": 3}, {"key": jax.random.PRNGKey(7)}, {"v0": jnp.ones(6)}):
        ours = jax.jit(lambda m, kw=kwargs: optim.power_iteration(m, **kw))(matrix)
        theirs = jax.jit(lambda m, kw=kwargs: optax.power_iteration(m, **kw))(matrix)
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1])
    value, vector = optim.power_iteration(matrix, num_iters=1000, error_tolerance=1e-7)
    np.testing.assert_allclose(value, 5.0, rtol=1e-5)
    np.testing.assert_allclose(jnp.abs(matrix @ vector), jnp.abs(5.0 * vector), atol=1e-4)


def test_power_iteration_with_a_matrix_vector_product_on_a_tree():
    a, b = _spd(3, 1), _spd(2, 2) * 2.0

    def product(v):
        return {"a": a @ v["a"], "b": b @ v["b"]}

    v0 = {"a": jnp.ones(3), "b": jnp.ones(2)}
    ours = optim.power_iteration(product, v0=v0, num_iters=500)
    theirs = optax.power_iteration(product, v0=v0, num_iters=500)
    np.testing.assert_array_equal(ours[0], theirs[0])
    for leaf in ("a", "b"):
        np.testing.assert_array_equal(ours[1][leaf], theirs[1][leaf])
    np.testing.assert_allclose(ours[0], 10.0, rtol=1e-4)  # the block of b: eigenvalue 2 * 5


def test_power_iteration_errors():
    with pytest.raises(ValueError, match="v0 must be given when matrix is a callable"):
        optim.power_iteration(lambda v: v)
    with pytest.raises(ValueError, match=r"matrix must be a square matrix .* got shape \(2, 3\)"):
        optim.power_iteration(jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="v0 must be a floating array"):
        optim.power_iteration(lambda v: v, v0=jnp.array([1, 2]))


# --- matrix_inverse_pth_root --------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 2, 4, 8])
def test_matrix_inverse_pth_root_is_optax_bit_for_bit(p):
    matrix = _spd(5, p)
    ours = jax.jit(lambda m: optim.matrix_inverse_pth_root(m, p))(matrix)
    theirs = jax.jit(lambda m: optax.matrix_inverse_pth_root(m, p))(matrix)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    # And it is the root: (A + ridge)^(-1/p), to float32 accuracy.
    w, q = np.linalg.eigh(np.asarray(matrix, np.float64))
    exact = q @ np.diag(w ** (-1.0 / p)) @ q.T
    np.testing.assert_allclose(ours[0], exact, atol=2e-4)


def test_matrix_inverse_pth_root_for_any_positive_integer_p():
    """optax computes T^4 where p = 3 is asked for (the power of two nearest p), so its result
    is not A^(-1/3); ours is."""
    matrix = _spd(4, 3)
    w, q = np.linalg.eigh(np.asarray(matrix, np.float64))
    for p in (3, 6):
        root, error = optim.matrix_inverse_pth_root(matrix, p)
        np.testing.assert_allclose(root, q @ np.diag(w ** (-1.0 / p)) @ q.T, atol=2e-4)
        assert error < 1e-4
    traced = jax.jit(optim.matrix_inverse_pth_root)(matrix, 3)[0]
    np.testing.assert_allclose(traced, optim.matrix_inverse_pth_root(matrix, 3)[0], atol=1e-6)


def test_matrix_inverse_pth_root_of_a_1x1_matrix():
    ours = optim.matrix_inverse_pth_root(jnp.array([[4.0]]), 2)
    theirs = optax.matrix_inverse_pth_root(jnp.array([[4.0]]), 2)
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert ours[1] == theirs[1] == 0


def test_matrix_inverse_pth_root_errors():
    with pytest.raises(ValueError, match=r"matrix must be a square matrix .* got shape \(3,\)"):
        optim.matrix_inverse_pth_root(jnp.ones(3), 2)
    for p in (0, -2, 2.5):
        with pytest.raises(ValueError, match=rf"p must be a positive integer, got {p}"):
            optim.matrix_inverse_pth_root(jnp.eye(2), p)
    for p in (True, "2"):
        with pytest.raises(TypeError, match="p must be a positive integer"):
            optim.matrix_inverse_pth_root(jnp.eye(2), p)


# --- nnls ---------------------------------------------------------------------------------


def test_nnls_is_optax_bit_for_bit():
    a = jnp.asarray(RNG.normal(size=(6, 4)), jnp.float32)
    vector, matrix = jnp.asarray(RNG.normal(size=6)), jnp.asarray(RNG.normal(size=(6, 3)))
    for b, kwargs in ((vector, {}), (vector, {"unroll": 4, "L": 50.0}), (matrix, {})):
        ours = jax.jit(lambda a, b, kw=kwargs: optim.nnls(a, b, 200, **kw))(a, b)
        theirs = jax.jit(lambda a, b, kw=kwargs: optax.nnls(a, b, 200, **kw))(a, b)
        assert ours.shape == theirs.shape == (4, *b.shape[1:])
        np.testing.assert_array_equal(ours, theirs)
        assert jnp.all(ours >= 0)
    np.testing.assert_array_equal(optim.nnls(jnp.zeros((2, 2)), jnp.ones(2), 5), jnp.zeros(2))


def test_nnls_solves_the_docstring_problem():
    x = optim.nnls(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([5.0, 6.0]), 1000)
    np.testing.assert_allclose(x, [0.0, 1.7], atol=1e-5)


def test_nnls_errors():
    with pytest.raises(ValueError, match=r"A must be a matrix \(M, N\), got shape \(3,\)"):
        optim.nnls(jnp.ones(3), jnp.ones(3), 5)
    with pytest.raises(ValueError, match=r"b must have shape \(M,\) or \(M, K\) with M = 3"):
        optim.nnls(jnp.ones((3, 2)), jnp.ones(2), 5)
    with pytest.raises(ValueError, match="iters must be an int >= 0, got -1"):
        optim.nnls(jnp.ones((3, 2)), jnp.ones(3), -1)
    for iters in (2.5, True):
        with pytest.raises(TypeError, match="iters must be an int, got"):
            optim.nnls(jnp.ones((3, 2)), jnp.ones(3), iters)


def test_public_names():
    for name in linear_algebra.__all__:
        assert getattr(optim, name) is getattr(linear_algebra, name)
