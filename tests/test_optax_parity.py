"""Every trajectory comparison with optax, driven by tests/parity_table.py, and every optimizer
optax also has against optax's: same names, arguments, state fields, and first update bit for bit.

A record of the table runs ours and optax's transformation on its problem, both given the same
Python-float hyperparameters (what users write): a decay keeps its complement ``1 - b`` rounded
from the Python value, as optax computes it, and bias corrections are compiled as optax's, so
the arithmetic is the same and the default bound, 1e-6 relative, leaves room for XLA's fusion
choices only. One runner per kind of comparison (see ``Parity``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import (
    FLOAT32_BOUND,
    PYTHON_FLOAT_BOUND,
    Descent,
    descend,
    descend_with_line_search,
    real_and_imaginary,
    relative_deviation,
)
from parity_table import (
    DEFAULTS_EXTRA,
    LEAST_SQUARES_START,
    OURS,
    SHARED,
    SHARED_BOUNDS,
    SHARED_JIT_ULPS,
    TABLE,
    THEIRS,
    at_defaults,
    least_squares,
    no_extra,
)

import optim


def _descend(record, library, f=float, params=None) -> Descent:
    """The record's trajectory in ``library`` (OURS or THEIRS), hyperparameters through ``f``."""
    problem = record.problem
    return descend(
        record.build_in(library, f),
        library.apply_updates,
        record.steps,
        problem.params() if params is None else params,
        problem.loss,
        problem.extra,
        whole_path=record.kind == "whole_path",
        value_and_grad=problem.value_and_grad,
        one_program=problem.one_program,
    )


def _assert_agrees(record, ours: Descent, theirs: Descent, bound: float) -> None:
    """Ours within ``bound`` of optax's (complex leaves as real and imaginary parts), and the
    record's own check."""
    whole_path = record.kind == "whole_path"
    compared = (ours.path, theirs.path) if whole_path else (ours.params, theirs.params)
    deviation = relative_deviation(*map(real_and_imaginary, compared))
    within = deviation == 0.0 if bound == 0.0 else deviation < bound  # 0.0: bit for bit
    assert within, f"{record.name}: deviation {deviation:.3g} from optax's"
    if record.check is not None:
        record.check(ours, theirs)


def _assert_moved(record, ours: Descent, start) -> None:
    """The comparison is not between two untouched trees; complex leaves stay complex and
    descend in both parts (the loss fell, every imaginary part rose towards the target's)."""
    if record.moved is not None:
        moved = relative_deviation(real_and_imaginary(ours.params), real_and_imaginary(start))
        assert moved > record.moved, f"{record.name} barely moved ({moved:.3g})"
    pairs = zip(jax.tree.leaves(ours.params), jax.tree.leaves(start), strict=True)
    complex_pairs = [(z, z0) for z, z0 in pairs if jnp.iscomplexobj(z0)]
    for z, z0 in complex_pairs:
        assert z.dtype == z0.dtype, record.name
        assert float(jnp.min(jnp.imag(z) - jnp.imag(z0))) > 1e-2, record.name
    if complex_pairs:
        assert record.problem.loss(ours.params) < record.problem.loss(start), record.name


def _python_floats(record) -> None:
    start = record.problem.params()
    ours = _descend(record, OURS, params=start)
    _assert_agrees(record, ours, _descend(record, THEIRS, params=start), record.bound)
    _assert_moved(record, ours, start)


def _jit_and_vmap(record) -> None:
    """Ours batched over a factor multiplying every float hyperparameter, one compiled program;
    optax at each factor given float32 hyperparameters (one jitted program for both factors),
    then both at factor 1 given Python floats. Three compilations per record."""
    start = record.problem.params()  # outside jit: drawn inside, threefry would compile too

    def run(library):
        return lambda factor: _descend(record, library, lambda v: v * factor, start).params

    factors = jnp.array([1.0, 0.7], jnp.float32)
    batched = jax.jit(jax.vmap(run(OURS)))(factors)
    theirs = jax.jit(run(THEIRS))
    for i, factor in enumerate(factors):
        ours = Descent(jax.tree.map(lambda x, i=i: x[i], batched), None)
        _assert_agrees(record, ours, Descent(theirs(factor), None), FLOAT32_BOUND)
        _assert_moved(record, ours, start)
    _python_floats(record)


def _line_search(record, from_state: bool) -> None:
    """Ours given Python floats against optax given float32 hyperparameters, then Python
    floats: the end point, the loss at every iteration, the line-search iterations of each."""
    problem = record.problem
    start = problem.params()

    def run(library, f):
        tx = record.build_in(library, f)
        return descend_with_line_search(library, tx, problem.loss, start, from_state, record.steps)

    ours, ours_values, ours_searches = run(OURS, float)
    for f, bound in [(lambda v: jnp.asarray(v, jnp.float32), FLOAT32_BOUND), (float, record.bound)]:
        theirs, values, searches = run(THEIRS, f)
        _assert_agrees(record, Descent(ours, None), Descent(theirs, None), bound)
        deviation = relative_deviation(ours_values, values)
        assert deviation < bound, f"{record.name}: losses {deviation:.3g} from optax's"
        assert jnp.array_equal(ours_searches, searches), (ours_searches, searches)
    _assert_moved(record, Descent(ours, None), start)


RUNNERS = {
    "end_point": _python_floats,
    "whole_path": _python_floats,
    "jit_and_vmap": _jit_and_vmap,
    "line_search": lambda record: _line_search(record, from_state=False),
    "line_search_from_state": lambda record: _line_search(record, from_state=True),
}


@pytest.mark.parametrize(
    "record",
    [pytest.param(r, id=r.name, marks=[pytest.mark.slow] if r.slow else []) for r in TABLE],
)
def test_trajectory_equals_optax(record):
    RUNNERS[record.kind](record)


def test_state_field_names_match_optax(params):
    """Named records with optax's field names, so optax.tree.get(state, "mu") works on ours."""
    for ours, theirs in [
        (optim.adam(1e-3), optax.adam(1e-3)),
        (optim.sgd(1e-3, 0.9), optax.sgd(1e-3, 0.9)),
        (optim.adagrad(1e-3), optax.adagrad(1e-3)),
    ]:
        ours_state, their_state = ours.init(params), theirs.init(params)
        for o, t in zip(ours_state, their_state, strict=True):
            if t._fields:
                assert set(t._fields) <= set(o._fields), (o, t)


def test_signatures_match_optax():
    """Same argument names, order and defaults as optax for every public name we share."""
    import inspect

    shared = [n for n in optim.__all__ if n[0].islower() and hasattr(optax, n) and n != "chain"]
    assert len(shared) >= 30
    for name in shared:
        ours, theirs = getattr(optim, name), getattr(optax, name)
        if not callable(ours) or isinstance(ours, type):
            continue
        p_ours = inspect.signature(ours).parameters
        p_theirs = inspect.signature(theirs).parameters
        assert list(p_ours)[: len(p_theirs)] == list(p_theirs), name
        for arg, param in p_theirs.items():
            if param.default is not inspect.Parameter.empty and isinstance(
                param.default, (int, float, bool, type(None))
            ):
                assert p_ours[arg].default == param.default, (name, arg)


# --- every optimizer optax also has, at its defaults (the table's SHARED) --------------------
#
# The first update is bitwise; the bound on the 200-step deviation is measured on CPU (XLA's
# fusion on another backend may move last bits: the bound is not a claim about GPUs).


def _update_kwargs(qualified, params):
    """The gradients and what else an update needs on the least-squares problem."""
    value, grads = jax.value_and_grad(least_squares)(params)
    return grads, DEFAULTS_EXTRA.get(qualified, no_extra)(least_squares, params, value)


def _first_update(tx, qualified, jit):
    def update(p, s):
        grads, extra = _update_kwargs(qualified, p)
        return tx.update(grads, s, p, **extra)[0]

    return (jax.jit(update) if jit else update)(LEAST_SQUARES_START, tx.init(LEAST_SQUARES_START))


def _within_ulps(a, b, ulps: int = 0) -> bool:
    """The same structure and dtypes, every float at most ``ulps`` units in the last place
    apart (0: bit for bit)."""
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    if len(leaves_a) != len(leaves_b):
        return False
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if x.dtype != y.dtype:
            return False
        if not ulps:
            if not bool(jnp.array_equal(x, y)):
                return False
            continue
        bits = np.dtype(f"int{np.dtype(x.dtype).itemsize * 8}")
        gap = np.abs(np.asarray(x).view(bits).astype(np.int64) - np.asarray(y).view(bits))
        if gap.max(initial=0) > ulps:
            return False
    return True


def test_every_shared_optimizer_is_covered():
    """Each optax optimizer we also have is in the comparison below; a new one joins it."""
    import optim.contrib

    missing = [
        n
        for n in SHARED
        if not hasattr(optim.contrib if n.startswith("contrib.") else optim, n.split(".")[-1])
    ]
    assert not missing, f"optax has these, optim does not: {missing}"
    assert len(SHARED) >= 45


@pytest.mark.parametrize("qualified", SHARED)
def test_shared_optimizer_matches_optax_with_python_floats(qualified):
    ours, theirs = at_defaults(optim, qualified), at_defaults(optax, qualified)
    for jit in (False, True):
        ulps = SHARED_JIT_ULPS.get(qualified, 0) if jit else 0
        assert _within_ulps(
            _first_update(ours, qualified, jit), _first_update(theirs, qualified, jit), ulps
        ), f"{qualified}: first update differs from optax's ({'jit' if jit else 'eager'})"
    extra = DEFAULTS_EXTRA.get(qualified)
    reference, ours_trajectory = (
        descend(tx, apply, 200, LEAST_SQUARES_START, least_squares, extra).params
        for tx, apply in ((theirs, optax.apply_updates), (ours, optim.apply_updates))
    )
    bound = SHARED_BOUNDS.get(qualified, PYTHON_FLOAT_BOUND)
    assert relative_deviation(ours_trajectory, reference) <= bound
    assert relative_deviation(reference, LEAST_SQUARES_START) > 1e-3  # it moved


@pytest.mark.slow
@pytest.mark.parametrize("qualified", SHARED)
def test_shared_optimizer_eager_trajectory_matches_optax(qualified):
    """200 steps run op by op (no jit), as a notebook would."""

    def run(tx, apply_updates):
        p, s = LEAST_SQUARES_START, tx.init(LEAST_SQUARES_START)
        for _ in range(200):
            grads, extra = _update_kwargs(qualified, p)
            u, s = tx.update(grads, s, p, **extra)
            p = apply_updates(p, u)
        return p

    ours = run(at_defaults(optim, qualified), optim.apply_updates)
    theirs = run(at_defaults(optax, qualified), optax.apply_updates)
    assert relative_deviation(ours, theirs) <= PYTHON_FLOAT_BOUND
