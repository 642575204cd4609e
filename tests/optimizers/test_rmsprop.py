"""scale_by_stddev (optim/optimizers/_rmsprop.py) keeps optax's state records."""

from __future__ import annotations

import jax
import optax
from conftest import FLOAT32_BOUND, relative_deviation, trajectory

import optim


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
        bound = (
            FLOAT32_BOUND if not bias_correction else 1e-5
        )  # step 1: v - m^2 cancels to rounding
        ours_t = trajectory(optim.chain(tx, optim.scale(-0.01)), optim.apply_updates)
        theirs_t = trajectory(optax.chain(ref, optax.scale(-0.01)), optax.apply_updates)
        assert relative_deviation(ours_t, theirs_t) < bound
