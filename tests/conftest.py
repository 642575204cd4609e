"""Shared fixtures: a nested parameter tree and a smooth convex loss on it."""

from __future__ import annotations

import functools
import importlib.util
import inspect
import math
import pathlib
import sys
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optim
from optim._pytree import pytree_dataclass
from optim._tree import map_arrays


def nested_params(seed: int = 0, dtype=jnp.float32) -> dict:
    """A tree of matrices, vectors and scalars inside dicts, a list and a tuple."""
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    return {
        "dense": {
            "w": jax.random.normal(k[0], (4, 3), dtype),
            "b": jax.random.normal(k[1], (3,), dtype),
        },
        "scale": jax.random.normal(k[2], (), dtype),
        "blocks": [jax.random.normal(k[3], (2, 5), dtype), (jax.random.normal(k[4], (6,), dtype),)],
    }


def convex_loss(params) -> jax.Array:
    """Strongly convex, quartic-tailed: 0.5 (x - 10)^2 + 0.001 x^4 summed over all leaves.

    Its minimum (x = 7.97) is far from the standard-normal initial values, so 100 steps of every
    optimizer in the tests are still descending: trajectories do not sit in an oscillation
    about the minimum, where a rounding difference flips the sign of a step.
    """
    return sum(
        jnp.sum(0.5 * (x.astype(jnp.float32) - 10.0) ** 2 + 0.001 * x.astype(jnp.float32) ** 4)
        for x in jax.tree.leaves(params)
    )


# The two bounds of the trajectory comparisons with optax: relative_deviation of the parameters
# after 100 to 200 float32 steps of the same optimizer in both libraries. A comparison that needs
# another bound states it, with its numerical reason, where it is checked.
# Given the same Python-float hyperparameters (what users write): a decay keeps its complement
# 1 - b rounded from the Python value, as optax computes it, and bias corrections are compiled
# as optax's, so the arithmetic is the same; the bound leaves room for XLA's fusion choices.
PYTHON_FLOAT_BOUND = 1e-6
# Given the same float32 hyperparameters: the arithmetic is the same, and XLA may fuse the two
# programs differently.
FLOAT32_BOUND = 2e-6


class Descent(NamedTuple):
    """Where ``descend`` ended: the parameters, the optimizer's state, and the parameters after
    every step stacked along a leading axis (``None`` unless asked for)."""

    params: Any
    state: Any
    path: Any = None


def assert_signature_extends_optax(ours, theirs, name: str, *, exact: bool = False) -> None:
    """``ours`` takes optax's arguments first, in ``theirs``' order, with the same kinds and
    equal defaults where those are values (a default function or transformation is built anew
    by each library, so it is not compared); any argument of ours beyond them is keyword-only
    (none with ``exact``)."""
    p_ours = inspect.signature(ours).parameters
    p_theirs = inspect.signature(theirs).parameters
    if exact:
        assert list(p_ours) == list(p_theirs), name
    assert list(p_ours)[: len(p_theirs)] == list(p_theirs), name
    for arg, param in p_theirs.items():
        assert p_ours[arg].kind == param.kind, (name, arg)
        if type(param.default) in (int, float, bool, str, tuple, type(None)):
            assert p_ours[arg].default == param.default, (name, arg)
    extras = list(p_ours)[len(p_theirs) :]
    assert all(p_ours[a].kind == inspect.Parameter.KEYWORD_ONLY for a in extras), name


def descend(
    tx,
    apply_updates,
    steps=100,
    params=None,
    loss=convex_loss,
    extra=None,
    whole_path=False,
    value_and_grad=jax.value_and_grad,
    one_program=True,
) -> Descent:
    """``steps`` jitted steps of ``tx`` on ``loss`` from ``params`` (``nested_params()`` by
    default). ``extra(loss, params, value)`` gives the keyword arguments every update gets
    besides the gradients (``value`` is the loss at the current ``params``);
    ``value_and_grad(loss)`` the loss and the gradients an update is given (per-example
    gradients, say). ``one_program=False`` runs the scan outside ``jit`` (XLA then compiles
    the step alone and fuses it otherwise). Complex parameters descend along the conjugate
    gradient (as in optax's tests); on real ones ``conj`` does nothing."""
    params = nested_params() if params is None else params

    def step(carry, _):
        p, s = carry
        value, g = value_and_grad(loss)(p)
        g = jax.tree.map(jnp.conj, g)
        u, s = tx.update(g, s, p, **(extra(loss, p, value) if extra else {}))
        p = apply_updates(p, u)
        return (p, s), p if whole_path else None

    def run(carry):
        return jax.lax.scan(step, carry, length=steps)

    run = jax.jit(run) if one_program else run
    (params, state), path = run((params, tx.init(params)))
    return Descent(params, state, path)


def descend_with_line_search(lib, tx, loss, params, from_state: bool, steps: int):
    """(params, loss per iteration, line-search iterations per iteration) after ``steps``
    jitted iterations of ``tx`` in library ``lib`` (optim or optax), the loss and gradient
    either reused from the state (``lib.value_and_grad_from_state``, as optax's docs show) or
    computed afresh."""
    value_and_grad = lib.value_and_grad_from_state(loss) if from_state else None

    @jax.jit
    def step(carry, _):
        p, s = carry
        v, g = value_and_grad(p, state=s) if from_state else jax.value_and_grad(loss)(p)
        u, s = tx.update(g, s, p, value=v, grad=g, value_fn=loss)
        searches = optim.tree.get(s, "num_linesearch_steps", jnp.zeros([], jnp.int32))
        return (lib.apply_updates(p, u), s), (v, searches)

    (params, _), (values, searches) = jax.lax.scan(step, (params, tx.init(params)), length=steps)
    return params, values, searches


def trajectory(tx, apply_updates, steps: int = 100, params=None):
    """Parameters after ``steps`` jitted steps of ``tx`` on ``convex_loss``."""
    return descend(tx, apply_updates, steps, params).params


def relative_deviation(ours, reference) -> float:
    """max over leaves of max|ours - ref| / max|ref| (what parity bounds bound); NaN if any
    leaf's deviation is NaN (Python's max would skip it)."""
    deviations = [
        float(
            jnp.max(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)))
            / jnp.maximum(jnp.max(jnp.abs(b.astype(jnp.float32))), 1e-30)
        )
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(reference), strict=True)
    ]
    return math.nan if any(math.isnan(d) for d in deviations) else max(deviations)


@pytest.fixture
def params():
    return nested_params()


@pytree_dataclass
class BatchOfOne:
    """Gradients as per-example gradients of a batch of one example: a leading axis of size 1
    on every leaf, which is what ``dpsgd``'s update takes. Lets the generic catalogue tests,
    which hand an optimizer ordinary gradients, run DP-SGD (B = 1: each step clips the
    gradient to ``l2_norm_clip`` and adds noise of standard deviation ``l2_norm_clip *
    noise_multiplier``)."""

    def init(self, params):
        del params
        return optim.EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        return map_arrays(lambda g: g[None], updates), state


def dpsgd_on_one_example(learning_rate):
    """``dpsgd`` behind ``BatchOfOne``, with C = 1 and sigma = 1."""
    return optim.chain(BatchOfOne(), optim.contrib.dpsgd(learning_rate, 1.0, 1.0, seed=0))


# --doctest-modules imports every module under tests/ as well: the scripts run their work at
# import (they are started as subprocesses by the tests) and the optax suite's runner patches
# imports, so neither is collected.
collect_ignore = ["scripts", "optax_suite"]


def jitted_update(tx, grads, params, state=None, **extra):
    """One jitted update from ``tx.init(params)`` or ``state`` (eager, each operation would
    compile on its own)."""
    return jax.jit(tx.update)(grads, tx.init(params) if state is None else state, params, **extra)


def assert_trees_identical(ours, theirs) -> None:
    """Same structure, shapes, dtypes and values, bit for bit (NaN equals NaN)."""
    ours, theirs = jax.tree.map(jnp.asarray, ours), jax.tree.map(jnp.asarray, theirs)
    chex.assert_trees_all_equal_structs(ours, theirs)
    chex.assert_trees_all_equal_shapes_and_dtypes(ours, theirs)
    chex.assert_trees_all_equal(ours, theirs)


def tree_bytes(tree) -> list[bytes]:
    """The leaves' bytes, for comparisons that must be bit-identical (NaNs included)."""
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def real_and_imaginary(tree):
    """Real and imaginary parts side by side (``relative_deviation`` compares real arrays)."""
    return jax.tree.map(lambda x: jnp.stack([x.real, x.imag]), tree)


@functools.cache
def api_reference():
    """``docs/_ext/api_reference.py``, the site's reference generator: its ``PACKAGES`` is the
    one list of public packages (the docstring check and the site's tests read it)."""
    path = pathlib.Path(__file__).resolve().parent.parent / "docs" / "_ext" / "api_reference.py"
    spec = importlib.util.spec_from_file_location("api_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module
