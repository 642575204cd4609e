"""Rprop (optim/optimizers/_sign.py): its sign-flip logic, tested exactly on a hand-made gradient
sequence (sign-based methods are discontinuous where their argument crosses 0).

The comparisons of tests/test_optax_parity.py (see its docstring), over 200 float32 steps of
``convex_loss``: ours against optax, both given the same Python-float hyperparameters; bound
1e-6 relative (the arithmetic is the same, XLA's fusion choices may move last bits).
"""

from __future__ import annotations

import jax.numpy as jnp
import optax
import pytest

import optim

OURS = optim


def test_rprop_sign_flips_and_stale_update():
    """optax returns the previous step's update (optax PR #1725); current_update=True does not.

    Step sizes 0.1 -> 0.12 -> 0.144 on agreeing signs, halved to 0.072 on the flip (which
    moves nothing and resets the sign memory), kept at 0.072 on the next step.
    """
    grads = [1.0, 1.0, 1.0, -1.0, 1.0]

    def run(tx):
        p = jnp.zeros(1)
        state, out = tx.init(p), []
        for g in grads:
            u, state = tx.update(jnp.array([g]), state, p)
            out.append(float(u[0]))
        return out

    theirs = run(optax.scale_by_rprop(0.1, 0.5, 1.2))
    assert run(OURS.scale_by_rprop(0.1, 0.5, 1.2)) == theirs
    assert theirs == pytest.approx([0.0, 0.1, 0.12, 0.0, 0.0])
    assert run(OURS.scale_by_rprop(0.1, 0.5, 1.2, current_update=True)) == pytest.approx(
        [0.1, 0.12, 0.144, 0.0, 0.072]
    )
