"""optim.perturbations against optax.perturbations: for the same key, the same noise and the
same values and derivatives, bit for bit (the same operations in the same order)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_trees_identical

import optim
from optim import perturbations as PT


def argmax_one_hot(tree):
    """Piecewise constant (no useful derivative): the one-hot argmax of each leaf, and a sum."""
    return {
        "hot": jax.tree.map(lambda x: jax.nn.one_hot(jnp.argmax(x), x.size), tree),
        "total": jnp.sum(jnp.maximum(tree["a"], 0.0)) + jnp.sum(tree["b"] ** 2),
    }


def inputs(seed: int) -> dict:
    k1, k2 = jax.random.split(jax.random.key(seed))
    return {"a": jax.random.normal(k1, (4,)), "b": jax.random.normal(k2, (3,))}


def test_names_match_optax():
    public = {n for n in dir(optax.perturbations) if not n.startswith("_")}
    assert set(PT.__all__) == public and sorted(PT.__all__) == PT.__all__
    assert optim.perturbations is PT


@pytest.mark.parametrize("key", [jax.random.key(3), jax.random.PRNGKey(3)], ids=["key", "raw"])
def test_noise_samples_and_log_probs_bitwise(key):
    z = jnp.linspace(-2.0, 3.0, 7)
    pairs = [
        (PT.Normal(), optax.perturbations.Normal()),
        (PT.Gumbel(), optax.perturbations.Gumbel()),
    ]
    for ours, theirs in pairs:
        assert_trees_identical(ours.sample(key, (5, 2)), theirs.sample(key, (5, 2)))
        assert_trees_identical(
            ours.sample(key, (3,), jnp.bfloat16), theirs.sample(key, (3,), jnp.bfloat16)
        )
        assert_trees_identical(ours.log_prob(z), theirs.log_prob(z))


@pytest.mark.parametrize(
    ("noise", "use_baseline"),
    [("Gumbel", True), ("Normal", True), ("Normal", False)],
)
def test_values_and_gradients_bitwise(noise, use_baseline):
    def build(module):
        return module.make_perturbed_fun(
            argmax_one_hot,
            num_samples=64,
            sigma=0.5,
            noise=getattr(module, noise)(),
            use_baseline=use_baseline,
        )

    def value_and_grad(f):
        def scalar(key, x):
            out = f(key, x)
            return out["total"] + out["hot"]["a"][0], out

        # The score-function gradient through the magic box, and the values, under jit.
        return jax.jit(jax.value_and_grad(scalar, argnums=1, has_aux=True))

    ours = value_and_grad(build(PT))
    theirs = value_and_grad(build(optax.perturbations))
    key, x = jax.random.key(7), inputs(7)
    assert_trees_identical(ours(key, x), theirs(key, x))


def test_default_arguments_as_optax_doc():
    key, x = jax.random.key(0), jnp.zeros(3)
    f = lambda x: jnp.sum(jnp.maximum(x, 0.0))
    assert_trees_identical(
        jax.grad(PT.make_perturbed_fun(f), argnums=1)(key, x),
        jax.grad(optax.perturbations.make_perturbed_fun(f), argnums=1)(key, x),
    )


def test_smooths_towards_the_expectation():
    # E[max(x + sigma z, 0)] at x = 0 with Normal noise is sigma / sqrt(2 pi); 4000 samples
    # estimate it to within a few standard errors (sd of max(z, 0) is 0.58, so 0.58/63 sigma).
    f = PT.make_perturbed_fun(lambda x: jnp.maximum(x, 0.0), 4000, 1.0, PT.Normal())
    estimate = f(jax.random.key(1), jnp.zeros(()))
    np.testing.assert_allclose(estimate, 1 / np.sqrt(2 * np.pi), atol=0.04)


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match=r"^fun must be a function"):
        PT.make_perturbed_fun(None)
    with pytest.raises(TypeError, match=r"^num_samples must be an int"):
        PT.make_perturbed_fun(jnp.sum, num_samples=10.0)
    with pytest.raises(ValueError, match=r"^num_samples must be an int >= 1"):
        PT.make_perturbed_fun(jnp.sum, num_samples=0)
    with pytest.raises(TypeError, match=r"^noise must have sample and log_prob"):
        PT.make_perturbed_fun(jnp.sum, noise=jax.random.normal)
