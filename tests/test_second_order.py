"""optim.second_order against optax.second_order: the same numbers, bit for bit (the same
derivative programs), on a small network with a tree of parameters; eager and under jit."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import assert_trees_identical

import optim
from optim import second_order as S

# optax 0.2.7+ marks these three deprecated (removed in 0.2.9) and warns on each call.
pytestmark = pytest.mark.filterwarnings("ignore:The function .* is deprecated")


def net_loss(params, inputs, targets):
    hidden = jnp.tanh(inputs @ params["w1"] + params["b1"])
    logits = hidden @ params["w2"]
    return jnp.mean(optax.losses.softmax_cross_entropy_with_integer_labels(logits, targets))


def problem(seed: int):
    k = jax.random.split(jax.random.key(seed), 5)
    params = {
        "w1": jax.random.normal(k[0], (3, 4)),
        "b1": jax.random.normal(k[1], (4,)),
        "w2": jax.random.normal(k[2], (4, 2)),
    }
    inputs = jax.random.normal(k[3], (6, 3))
    targets = jax.random.randint(k[4], (6,), 0, 2)
    return params, inputs, targets


def test_names_match_optax():
    public = {n for n in dir(optax.second_order) if not n.startswith("_")}
    assert set(S.__all__) == public and sorted(S.__all__) == S.__all__
    assert optim.second_order is S


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_bitwise_against_optax(jit):
    wrap = jax.jit if jit else (lambda f: f)
    for seed in (0,):
        params, inputs, targets = problem(seed)
        n = jax.flatten_util.ravel_pytree(params)[0].size
        v = jax.random.normal(jax.random.key(100 + seed), (n,))
        for name, args in [
            ("hvp", (v, params, inputs, targets)),
            ("hessian_diag", (params, inputs, targets)),
            ("fisher_diag", (params, inputs, targets)),
        ]:
            ours = wrap(functools.partial(getattr(S, name), net_loss))
            theirs = wrap(functools.partial(getattr(optax.second_order, name), net_loss))
            assert_trees_identical(ours(*args), theirs(*args))


def test_hessian_diag_is_the_hessians_diagonal():
    params, inputs, targets = problem(3)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    hessian = jax.hessian(lambda f: net_loss(unravel(f), inputs, targets))(flat)
    # Same quantity by another program (a dense Hessian): rounding differs, rtol 1e-5.
    np.testing.assert_allclose(
        S.hessian_diag(net_loss, params, inputs, targets), jnp.diag(hessian), rtol=1e-5, atol=1e-6
    )


def test_errors_name_the_argument():
    params, inputs, targets = problem(0)
    with pytest.raises(ValueError, match=r"^v must be a vector of the parameters' total size"):
        S.hvp(net_loss, jnp.ones(3), params, inputs, targets)
    with pytest.raises(TypeError, match=r"^loss must be a function"):
        S.hvp("loss", jnp.ones(32), params, inputs, targets)
    with pytest.raises(TypeError, match=r"^loss must be a function"):
        S.hessian_diag(None, params, inputs, targets)
    with pytest.raises(TypeError, match=r"^negative_log_likelihood must be a function"):
        S.fisher_diag(1.0, params, inputs, targets)
