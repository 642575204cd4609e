"""Trust ratios (optim/optimizers/_trust_ratio.py): lars, lamb, fromage.

The comparisons of tests/test_optax_parity.py (see its docstring), over 200 float32 steps of
``convex_loss``: ours against optax, both given the same Python-float hyperparameters; bound
1e-6 relative (the arithmetic is the same, XLA's fusion choices may move last bits).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import relative_deviation

import optim

OURS = optim


def test_zero_norms_match_optax():
    """The guarded branches: trust ratio 1 where a norm is 0, no Polyak step for a 0 gradient."""
    params = {"zero": jnp.zeros(3), "w": jnp.arange(1.0, 5.0), "s": jnp.asarray(0.5)}
    grads = {"zero": jnp.ones(3), "w": jnp.zeros(4), "s": jnp.asarray(-2.0)}
    for build in [
        lambda m, f: m.scale_by_trust_ratio(),
        lambda m, f: m.scale_by_trust_ratio(f(0.7), f(0.5), f(0.1)),
        lambda m, f: m.fromage(f(0.1), f(1e-6)),
    ]:
        ours, theirs = build(OURS, float), build(optax, float)
        u, _ = ours.update(grads, ours.init(params), params)
        v, _ = theirs.update(grads, theirs.init(params), params)
        assert relative_deviation(u, v) == 0.0
    zero = jax.tree.map(jnp.zeros_like, grads)
    for build in [lambda m: m.polyak_sgd(), lambda m: m.polyak_sgd(eps=1e-3)]:
        ours, theirs = build(OURS), build(optax)
        u, _ = ours.update(zero, ours.init(params), params, value=jnp.float32(2.0))
        v, _ = theirs.update(zero, theirs.init(params), params, value=jnp.float32(2.0))
        assert relative_deviation(u, v) == 0.0


def test_trust_ratio_needs_params(params):
    for tx in (OURS.scale_by_trust_ratio(), OURS.lamb(0.1), OURS.fromage(0.1)):
        with pytest.raises(ValueError, match="params"):
            tx.update(params, tx.init(params))
