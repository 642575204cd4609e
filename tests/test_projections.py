"""optim.projections against optax.projections: the same numbers, bit for bit, on random
trees (the arithmetic is the same operations in the same order), eager and under jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_trees_identical

import optim
from optim import projections as P


def public(module) -> set[str]:
    return {n for n in dir(module) if not n.startswith("_")}


def random_tree(seed: int, scale: float = 1.0, dtype=jnp.float32) -> dict:
    k = jax.random.split(jax.random.key(seed), 3)
    return {
        "w": scale * jax.random.normal(k[0], (4, 3), dtype),
        "b": scale * jax.random.normal(k[1], (3,), dtype),
        "s": [scale * jax.random.normal(k[2], (), dtype)],
    }


def test_names_match_optax():
    assert public(P) == public(optax.projections)
    assert sorted(P.__all__) == P.__all__ == sorted(public(optax.projections))
    assert optim.projections is P


# (name, extra args) for the projections with a scalar scale; trees in and outside the set.
SCALED = [
    ("projection_simplex", (1.0,)),
    ("projection_simplex", (2.5,)),
    ("projection_l1_sphere", (1.0,)),
    ("projection_l1_ball", (1.0,)),
    ("projection_l1_ball", (100.0,)),  # inside: returned as it is
    ("projection_l2_sphere", (1.5,)),
    ("projection_l2_ball", (1.0,)),
    ("projection_l2_ball", (100.0,)),
    ("projection_linf_ball", (0.5,)),
]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize(("name", "args"), SCALED)
def test_scaled_projections_bitwise(name, args, jit):
    ours, theirs = getattr(P, name), getattr(optax.projections, name)
    if jit:
        ours, theirs = jax.jit(ours), jax.jit(theirs)
    for seed in range(3):
        x = random_tree(seed, scale=2.0)
        assert_trees_identical(ours(x, *args), theirs(x, *args))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_non_negative_box_hypercube_bitwise(jit):
    def run(module):
        def f(x, lower, upper):
            return (
                module.projection_non_negative(x),
                module.projection_box(x, lower, upper),
                module.projection_hypercube(x["w"], 0.7),
            )

        return jax.jit(f) if jit else f

    x = random_tree(0, scale=2.0)
    lower = jax.tree.map(lambda v: -jnp.abs(v) * 0.5, random_tree(1))
    upper = jax.tree.map(lambda v: jnp.abs(v), random_tree(2))
    assert_trees_identical(run(P)(x, lower, upper), run(optax.projections)(x, lower, upper))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_affine_projections_bitwise(jit):
    for seed in range(3):
        x, a = random_tree(seed), random_tree(seed + 10)
        # b on both sides of <x, a>, so that the halfspace projection moves x or not.
        for b in (-1.0, 3.0, jnp.float32(0.25)):
            for name, args in [
                ("projection_vector", (x, a)),
                ("projection_hyperplane", (x, a, b)),
                ("projection_halfspace", (x, a, b)),
            ]:
                ours, theirs = getattr(P, name), getattr(optax.projections, name)
                if jit:
                    ours, theirs = jax.jit(ours), jax.jit(theirs)
                assert_trees_identical(ours(*args), theirs(*args))


def test_complex_and_bfloat16_leaves_bitwise():
    k1, k2 = jax.random.split(jax.random.key(3))
    z = {"z": jax.random.normal(k1, (5,), jnp.complex64)}
    a = {"z": jax.random.normal(k2, (5,), jnp.complex64)}
    assert_trees_identical(P.projection_vector(z, a), optax.projections.projection_vector(z, a))
    assert_trees_identical(P.projection_l2_ball(z), optax.projections.projection_l2_ball(z))
    x16 = random_tree(4, scale=3.0, dtype=jnp.bfloat16)
    for name in ("projection_l2_ball", "projection_l1_sphere", "projection_linf_ball"):
        assert_trees_identical(getattr(P, name)(x16), getattr(optax.projections, name)(x16))


def test_l1_ball_bfloat16():
    # optax 0.2.8 raises here (its cond's branches return bf16 and float32); ours returns the
    # sphere's projection (computed in float32, as optax's projection_l1_sphere) in bf16.
    x16 = random_tree(4, scale=3.0, dtype=jnp.bfloat16)
    sphere = optax.projections.projection_l1_sphere(x16)
    assert_trees_identical(
        P.projection_l1_ball(x16), jax.tree.map(lambda p: p.astype(jnp.bfloat16), sphere)
    )
    inside = jax.tree.map(lambda v: v / 100, x16)
    assert_trees_identical(P.projection_l1_ball(inside), inside)


def test_simplex_python_number_leaf_as_optax_doc():
    data = {"w": jnp.array([2.5, 3.2]), "b": 0.5}
    assert_trees_identical(P.projection_simplex(data), optax.projections.projection_simplex(data))
    assert_trees_identical(P.projection_l1_ball(data), optax.projections.projection_l1_ball(data))


def test_simplex_derivatives_bitwise():
    x = jax.random.normal(jax.random.key(5), (7,))
    v = jax.random.normal(jax.random.key(6), (7,))
    ours = jax.jvp(P.projection_simplex, (x,), (v,))
    theirs = jax.jvp(optax.projections.projection_simplex, (x,), (v,))
    assert_trees_identical(ours, theirs)
    assert_trees_identical(
        jax.jacobian(P.projection_l1_ball)(x * 3),
        jax.jacobian(optax.projections.projection_l1_ball)(x * 3),
    )


def test_projections_satisfy_their_constraints():
    x = random_tree(7, scale=3.0)
    flat = lambda t: jax.flatten_util.ravel_pytree(t)[0]
    np.testing.assert_allclose(jnp.sum(flat(P.projection_simplex(x, 2.0))), 2.0, rtol=1e-6)
    assert jnp.all(flat(P.projection_simplex(x)) >= 0)
    np.testing.assert_allclose(jnp.sum(jnp.abs(flat(P.projection_l1_ball(x)))), 1.0, rtol=1e-6)
    np.testing.assert_allclose(jnp.linalg.norm(flat(P.projection_l2_sphere(x, 2.0))), 2.0, 1e-6)
    assert jnp.max(jnp.abs(flat(P.projection_linf_ball(x, 0.3)))) <= 0.3


def test_box_scalar_bounds_on_a_tree():
    # optax 0.2.8 raises for a tree with scalar bounds (jax.tree.map needs the tree's
    # structure); ours broadcasts the scalar, which equals optax with full trees of bounds.
    x = random_tree(8, scale=2.0)
    lower = jax.tree.map(lambda v: jnp.full_like(v, -0.5), x)
    upper = jax.tree.map(lambda v: jnp.full_like(v, 0.5), x)
    assert_trees_identical(
        P.projection_box(x, -0.5, 0.5), optax.projections.projection_box(x, lower, upper)
    )
    ones = jax.tree.map(jnp.ones_like, x)
    zeros = jax.tree.map(jnp.zeros_like, x)
    assert_trees_identical(
        P.projection_hypercube(x), optax.projections.projection_box(x, zeros, ones)
    )
    # A prefix: one bound per subtree.
    out = P.projection_box(x, {"w": -0.1, "b": -0.2, "s": -0.3}, 0.0)
    assert jnp.min(out["w"]) == jnp.float32(-0.1) and jnp.min(out["s"][0]) >= jnp.float32(-0.3)


def test_errors_name_the_argument():
    x = random_tree(9)
    with pytest.raises(ValueError, match=r"^a does not have the structure of x"):
        P.projection_vector(x, {"w": x["w"]})
    with pytest.raises(ValueError, match=r"^a\['w'\] has shape"):
        P.projection_hyperplane(x, {**x, "w": jnp.ones((3, 4))}, 1.0)
    with pytest.raises(ValueError, match=r"^b must be a scalar"):
        P.projection_halfspace(x, x, jnp.ones(2))
    with pytest.raises(TypeError, match=r"^b must be a scalar number"):
        P.projection_hyperplane(x, x, "1")
    with pytest.raises(ValueError, match=r"^lower must have the structure of tree"):
        P.projection_box(x, {"w": 0.0}, 1.0)
    with pytest.raises(ValueError, match=r"^upper must have the structure of tree"):
        P.projection_box(x, 0.0, [1.0, 2.0])
    for name in ("projection_simplex", "projection_l1_ball", "projection_l2_ball"):
        with pytest.raises(ValueError, match=r"^scale must be a scalar"):
            getattr(P, name)(x, jnp.ones(3))
    with pytest.raises(TypeError, match=r"^scale must be a scalar number"):
        P.projection_linf_ball(x, None)
