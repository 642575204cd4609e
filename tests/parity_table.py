"""The parity table: every trajectory comparison of ours with optax, one record each.

A record names the comparison, builds the transformation in either library (``build(m, f)``:
``m`` is ``OURS`` or ``THEIRS``, ``f`` turns a float into what the library is given: ``float``,
Python numbers as users write them, or a traced factor under ``jax.vmap``), says which problem
the trajectories descend and how they are compared (``kind``), for how many steps, and within
what bound. tests/test_optax_parity.py runs every record; the files of the modules keep what
is not a trajectory comparison (signatures, state records, bad input) and look builders up here.

The default bound, ``PYTHON_FLOAT_BOUND`` (conftest.py), holds where both libraries are given
the same Python-float hyperparameters: the arithmetic is the same and only XLA's fusion choices
may differ. A record with another bound gives its reason next to it.
"""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest
from conftest import PYTHON_FLOAT_BOUND, convex_loss, nested_params

import optim
import optim.contrib
from optim._tree import abs_sq

# Both libraries as one namespace each: the top-level names with those of contrib, so that one
# builder serves every record.
OURS = types.SimpleNamespace(
    **{**vars(optim), **{n: getattr(optim.contrib, n) for n in optim.contrib.__all__}}
)
THEIRS = types.SimpleNamespace(
    **{
        **{n: getattr(optax, n) for n in dir(optax) if not n.startswith("_")},
        **{n: getattr(optax.contrib, n) for n in dir(optax.contrib) if not n.startswith("_")},
        # optax 0.2.8 does not export these from optax.contrib.
        "scale_by_sophia": optax.contrib._sophia.scale_by_sophia,
        "scale_by_dog": optax.contrib._dog.scale_by_dog,
        "scale_by_dowg": optax.contrib._dog.scale_by_dowg,
        "SplitRealAndImaginaryArrays": optax.contrib._complex_valued.SplitRealAndImaginaryArrays,
    }
)


# A mask over ``nested_params``: the matrices and the first block.
MASK = {"dense": {"w": True, "b": False}, "scale": False, "blocks": [True, (False,)]}


def matrices_mask(params):
    """True on the leaves of rank 2 and more."""
    return jax.tree.map(lambda x: x.ndim > 1, params)


# --- problems: the start, the loss, and what an update needs besides the gradients ---------


def no_extra(loss, params, value):
    return {}


def with_value(loss, params, value):
    """The loss at the current parameters (Polyak steps, MoMo, reduce_on_plateau)."""
    return {"value": value}


def with_obj_fn(loss, params, value):
    """The loss itself (Sophia's Hessian estimates)."""
    return {"obj_fn": loss}


def with_grad_fn(loss, params, value):
    """A gradient function (SAM's opaque mode)."""
    return {"grad_fn": lambda p, i: jax.grad(loss)(p)}


def coupled_loss(params) -> jax.Array:
    """``convex_loss`` plus 0.005 (sum of all entries)^2: a Hessian with off-diagonal entries.

    On ``convex_loss`` alone the Hessian is diagonal, so Hutchinson's estimate z * (H z) is
    exact whatever the probes z; the coupling makes Sophia's trajectory depend on them (by
    about 5% per estimate, while keeping the estimate positive).
    """
    total = sum(jnp.sum(x) for x in jax.tree.leaves(params))
    return convex_loss(params) + 0.005 * total**2


COMPLEX_TARGET = 10.0 + 5.0j


def complex_loss(params) -> jax.Array:
    """``convex_loss`` on complex leaves: 0.5 |z - (10+5i)|^2 + 0.001 |z|^4 (real leaves too)."""
    return sum(
        jnp.sum(0.5 * abs_sq(z - COMPLEX_TARGET) + 0.001 * abs_sq(z) ** 2)
        for z in jax.tree.leaves(params)
    )


def complex_tree() -> dict:
    """``nested_params`` with imaginary parts: every leaf complex64."""
    return jax.tree.map(lambda a, b: a + 1j * b, nested_params(0), nested_params(1))


def complex_pair() -> dict:
    """A complex matrix and a complex scalar (two leaves keep complex compilation short)."""
    real, imag = nested_params(0), nested_params(1)
    return {
        "w": (real["dense"]["w"] + 1j * imag["dense"]["w"]).astype(jnp.complex64),
        "s": (real["scale"] + 1j * imag["scale"]).astype(jnp.complex64),
    }


def complex_and_real() -> dict:
    """A complex matrix next to a real scalar, which an optimizer must leave real."""
    real = nested_params()
    return {
        "z": jax.lax.complex(real["dense"]["w"][:2], real["blocks"][0][:, :3]),
        "r": real["scale"],
    }


def matrices() -> dict:
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    return {
        "a": jax.random.normal(k[0], (4, 3)),
        "b": jax.random.normal(k[1], (3, 5)),
        "c": jax.random.normal(k[2], (6, 6)),
    }


def conv_tree() -> dict:
    k = jax.random.split(jax.random.PRNGKey(2), 3)
    return {
        "conv": jax.random.normal(k[0], (2, 3, 4)),
        "w": jax.random.normal(k[1], (4, 3)),
        "b": jax.random.normal(k[2], (3,)),
    }


@dataclass(frozen=True)
class Problem:
    """What a trajectory descends: the start (made outside ``jit``: drawn inside, threefry would
    be compiled too), the loss, and ``extra(loss, params, value)``, the keyword arguments every
    update gets besides the gradients. Complex parameters descend along the conjugate gradient
    (as in optax's tests)."""

    params: Callable[[], Any] = nested_params
    loss: Callable[[Any], jax.Array] = convex_loss
    extra: Callable[[Any, Any, jax.Array], dict] = no_extra
    value_and_grad: Callable = jax.value_and_grad  # (loss) -> (params -> (value, gradients))
    one_program: bool = True  # False: the scan over the steps runs outside jit


NESTED = Problem()
NESTED_WITH_VALUE = Problem(extra=with_value)
COMPLEX_TREE = Problem(complex_tree, complex_loss, with_value)
COMPLEX_PAIR = Problem(complex_pair, complex_loss)
COMPLEX_AND_REAL = Problem(complex_and_real, complex_loss)


# --- the record --------------------------------------------------------------------------

Builder = Callable[[Any, Callable[[float], Any]], Any]


@dataclass(frozen=True)
class Parity:
    """One comparison of our trajectory with optax's.

    kind: "end_point" compares the parameters after the last step; "whole_path" the parameters
    after every step (for optimizers that reach the minimum, where any two runs agree whatever
    happened on the way); "jit_and_vmap" runs ours batched, ``jax.jit(jax.vmap(...))`` over a
    factor multiplying every float hyperparameter, against optax at each factor given float32
    hyperparameters (``FLOAT32_BOUND``), and both at factor 1 given Python floats (``bound``);
    "line_search" and "line_search_from_state" run a line-search optimizer (its update takes
    value, grad and value_fn, computed afresh or read from the state), against optax given
    float32 hyperparameters (``FLOAT32_BOUND``) and given Python floats (``bound``), comparing
    the end point, the loss at every iteration and the line-search iterations of every one.
    bound: 0.0 asks for bit-for-bit equality.
    moved: the least relative distance of our end point from the start, so that the comparison
    is not between two untouched trees (None where the transformation stands still).
    check: further assertions on our and optax's ``Descent`` (conftest.py).
    """

    name: str
    build: Builder
    theirs: Builder | None = None  # optax's, where its spelling differs from ours
    problem: Problem = NESTED
    kind: str = "end_point"
    steps: int = 200
    bound: float = PYTHON_FLOAT_BOUND
    moved: float | None = 1e-3
    check: Callable[[Any, Any], None] | None = None
    slow: bool = False  # run by `pytest -m slow` only

    def build_in(self, library, f):
        """The transformation in ``library`` (OURS or THEIRS)."""
        builder = self.theirs if library is THEIRS and self.theirs is not None else self.build
        return builder(library, f)


def complex_variant(record: Parity, problem: Parity) -> Parity:
    """The same comparison on complex parameters."""
    return Parity(record.name + "_complex", record.build, record.theirs, problem, record.kind)


# --- building blocks and the core aliases (optim/transforms/, optim/optimizers/) -------------


def then_step(m, block, lr):
    """A building block followed by a plain descent step of size ``lr``, in library ``m``."""
    return m.chain(block, m.scale(-lr))


# Centered RMSProp divides by sqrt(v - m^2 + eps), a cancellation that amplifies any rounding
# difference (it needed 1e-4 while 1 - decay was computed from the float32 decay); with optax's
# complement it agrees as the others do.
CORE = [
    Parity("identity", lambda m, f: m.chain(m.identity(), m.scale(f(-0.01)))),
    Parity("set_to_zero", lambda m, f: m.set_to_zero(), moved=None),
    Parity("scale", lambda m, f: m.scale(f(-0.03))),
    Parity("scale_by_learning_rate", lambda m, f: m.scale_by_learning_rate(f(0.03))),
    Parity(
        "scale_by_learning_rate_noflip",
        lambda m, f: m.chain(m.scale_by_learning_rate(f(0.03), flip_sign=False), m.scale(f(-1.0))),
    ),
    Parity("scale_by_schedule", lambda m, f: m.scale_by_schedule(lambda c: -0.05 / (1.0 + c))),
    Parity("trace", lambda m, f: m.chain(m.trace(f(0.9)), m.scale(f(-0.01)))),
    Parity(
        "trace_nesterov", lambda m, f: m.chain(m.trace(f(0.9), nesterov=True), m.scale(f(-0.01)))
    ),
    Parity("ema", lambda m, f: m.chain(m.ema(f(0.9)), m.scale(f(-0.05)))),
    Parity("ema_nodebias", lambda m, f: m.chain(m.ema(f(0.8), debias=False), m.scale(f(-0.05)))),
    Parity(
        "scale_by_adam",
        lambda m, f: then_step(m, m.scale_by_adam(f(0.8), f(0.99), f(1e-8)), f(0.01)),
    ),
    Parity("scale_by_rms", lambda m, f: then_step(m, m.scale_by_rms(f(0.95), f(1e-8)), f(0.01))),
    Parity(
        "scale_by_rms_options",
        lambda m, f: then_step(
            m,
            m.scale_by_rms(f(0.95), f(1e-6), f(0.1), eps_in_sqrt=False, bias_correction=True),
            f(0.01),
        ),
    ),
    Parity("scale_by_rss", lambda m, f: then_step(m, m.scale_by_rss(f(0.2), f(1e-6)), f(0.1))),
    Parity(
        "scale_by_stddev",
        lambda m, f: then_step(m, m.scale_by_stddev(f(0.9), f(1e-6), f(1.0)), f(0.01)),
    ),
    Parity(
        "scale_by_stddev_bias",
        lambda m, f: then_step(
            m, m.scale_by_stddev(f(0.9), f(1e-3), f(1.0), bias_correction=True), f(0.01)
        ),
    ),
    Parity(
        "add_decayed_weights",
        lambda m, f: then_step(m, m.add_decayed_weights(f(0.1)), f(0.01)),
    ),
    Parity(
        "add_decayed_weights_mask",
        lambda m, f: then_step(m, m.add_decayed_weights(f(0.5), MASK), f(0.01)),
    ),
    Parity("clip", lambda m, f: then_step(m, m.clip(f(0.5)), f(0.01))),
    Parity("clip_by_global_norm", lambda m, f: then_step(m, m.clip_by_global_norm(f(1.0)), f(0.1))),
    Parity("sgd", lambda m, f: m.sgd(f(0.01))),
    Parity("sgd_momentum", lambda m, f: m.sgd(f(0.01), f(0.9))),
    Parity("sgd_nesterov", lambda m, f: m.sgd(f(0.01), f(0.9), nesterov=True)),
    Parity("adam", lambda m, f: m.adam(f(0.01), f(0.9), f(0.999), f(1e-8))),
    Parity("adam_options", lambda m, f: m.adam(f(0.02), f(0.8), f(0.99), f(1e-6), f(1e-10))),
    Parity("adamw", lambda m, f: m.adamw(f(0.01), f(0.9), f(0.999), f(1e-8), weight_decay=f(0.1))),
    Parity(
        "adamw_mask_tree",
        lambda m, f: m.adamw(f(0.01), f(0.9), f(0.99), f(1e-8), weight_decay=f(0.5), mask=MASK),
    ),
    Parity(
        "adamw_mask_fn",
        lambda m, f: m.adamw(
            f(0.01), f(0.9), f(0.99), f(1e-8), weight_decay=f(0.5), mask=matrices_mask
        ),
    ),
    Parity("nadam", lambda m, f: m.nadam(f(0.01), f(0.9), f(0.999), f(1e-8))),
    Parity(
        "nadamw", lambda m, f: m.nadamw(f(0.01), f(0.9), f(0.999), f(1e-8), weight_decay=f(0.1))
    ),
    Parity("rmsprop", lambda m, f: m.rmsprop(f(0.003), f(0.9), f(1e-8))),
    Parity(
        "rmsprop_centered",
        lambda m, f: m.rmsprop(f(0.003), f(0.9), f(1e-8), f(1.0), centered=True),
    ),
    Parity(
        "rmsprop_momentum",
        lambda m, f: m.rmsprop(f(0.003), f(0.9), f(1e-8), momentum=f(0.9), nesterov=True),
    ),
    Parity(
        "rmsprop_options",
        lambda m, f: m.rmsprop(f(0.003), f(0.95), f(1e-6), eps_in_sqrt=False, bias_correction=True),
    ),
    Parity("adagrad", lambda m, f: m.adagrad(f(0.1), f(0.1), f(1e-7))),
    Parity(
        "chain_clip_adamw",
        lambda m, f: m.chain(
            m.clip_by_global_norm(f(1.0)),
            m.adamw(f(0.01), f(0.9), f(0.999), f(1e-8), weight_decay=f(0.1)),
        ),
    ),
]


# --- wrappers (optim/transforms/) and inject_hyperparams --------------------------------------

LABELS = {"dense": {"w": "a", "b": "b"}, "scale": "b", "blocks": ["a", ("b",)]}
PREFIX_LABELS = {"dense": "a", "scale": "b", "blocks": "a"}


def matrix_labels(params):
    """Label "a" on the leaves of rank 2 and more, "b" on the others."""
    return jax.tree.map(lambda x: "a" if x.ndim > 1 else "b", params)


def _adam(m, f, lr=0.01):
    return m.adam(f(lr), f(0.9), f(0.999), f(1e-8))


WRAPPERS = [
    Parity(
        "partition_tree",
        lambda m, f: m.partition({"a": _adam(m, f), "b": m.sgd(f(0.02), f(0.9))}, LABELS),
    ),
    Parity(
        "partition_prefix",
        lambda m, f: m.partition({"a": _adam(m, f), "b": m.sgd(f(0.02))}, PREFIX_LABELS),
    ),
    Parity(
        "multi_transform_fn",
        lambda m, f: m.multi_transform({"a": _adam(m, f), "b": m.sgd(f(0.02))}, matrix_labels),
    ),
    Parity(
        "masked",
        lambda m, f: then_step(
            m, m.masked(m.scale_by_adam(f(0.8), f(0.99), f(1e-8), f(0.0)), MASK), f(0.01)
        ),
    ),
    Parity("freeze", lambda m, f: m.chain(m.freeze(MASK), m.sgd(f(0.01), f(0.9)))),
    Parity("apply_if_finite", lambda m, f: m.apply_if_finite(_adam(m, f), 3)),
    Parity("multi_steps_mean", lambda m, f: m.MultiSteps(_adam(m, f, 0.05), 3)),
    Parity(
        "multi_steps_sum_schedule",
        lambda m, f: m.MultiSteps(
            m.sgd(f(0.01), f(0.9)), lambda step: 2 + step % 2, use_grad_mean=False
        ),
    ),
    Parity("flatten", lambda m, f: m.flatten(_adam(m, f))),
    Parity(
        "inject_hyperparams",
        lambda m, f: m.inject_hyperparams(m.adamw)(
            f(0.01), f(0.9), f(0.999), f(1e-8), f(0.0), weight_decay=f(0.1)
        ),
    ),
    Parity(
        "inject_hyperparams_schedule",
        lambda m, f: m.inject_hyperparams(m.sgd)(
            learning_rate=lambda count: 0.02 / (1.0 + 0.01 * count), momentum=f(0.9)
        ),
    ),
]


# --- the transforms optax added lately (optim/transforms/), under jit and vmap ----------------


def even_step(step):
    return step % 2 == 0


def _momentum(m, f):
    """A cheap inner transformation with a state (the wrappers' behaviour does not depend on
    which; each compilation costs time on 2 shared cores)."""
    return m.trace(f(0.9))


def _all_zero(ours, theirs):
    """The clamp binds: every parameter ends at 0."""
    assert all(bool(jnp.all(x == 0.0)) for x in jax.tree.leaves(ours.params))


ADDED_TRANSFORMS = [
    Parity(
        "adaptive_grad_clip",
        lambda m, f: then_step(m, m.adaptive_grad_clip(f(0.05), f(1e-3)), f(0.1)),
        kind="jit_and_vmap",
    ),
    Parity(
        "adaptive_grad_clip_axis",  # rank-2 leaves only: axis=1 does not exist on vectors
        lambda m, f: then_step(
            m, m.masked(m.adaptive_grad_clip(f(0.05), f(1e-3), axis=1), matrices_mask), f(0.1)
        ),
        kind="jit_and_vmap",
    ),
    Parity("centralize", lambda m, f: then_step(m, m.centralize(), f(0.1)), kind="jit_and_vmap"),
    Parity("zero_nans", lambda m, f: then_step(m, m.zero_nans(), f(0.1)), kind="jit_and_vmap"),
    # Steps that push every parameter down: negative ones, and later all, are clamped to 0.
    Parity(
        "keep_params_nonnegative",
        lambda m, f: m.chain(m.scale(f(0.05)), m.keep_params_nonnegative()),
        kind="jit_and_vmap",
        check=_all_zero,
    ),
    Parity(
        "normalize_by_update_norm",
        lambda m, f: m.normalize_by_update_norm(f(-0.1), f(1e-6)),
        kind="jit_and_vmap",
    ),
    Parity(
        "apply_every", lambda m, f: then_step(m, m.apply_every(3), f(0.05)), kind="jit_and_vmap"
    ),
    Parity(
        "conditionally_transform",
        lambda m, f: then_step(m, m.conditionally_transform(_momentum(m, f), even_step), f(0.01)),
        kind="jit_and_vmap",
    ),
    Parity(
        "conditionally_mask",
        lambda m, f: then_step(m, m.conditionally_mask(_momentum(m, f), even_step), f(0.01)),
        kind="jit_and_vmap",
    ),
    Parity(
        "named_chain",
        lambda m, f: m.named_chain(
            ("clip", m.clip_by_global_norm(f(1.0))), ("sgd", m.sgd(f(0.05), f(0.9)))
        ),
        kind="jit_and_vmap",
    ),
    Parity(
        "selective_transform",
        lambda m, f: m.selective_transform(m.sgd(f(0.01), f(0.9)), freeze_mask=MASK),
        kind="jit_and_vmap",
    ),
]


# --- sign, trust ratio, noise, optimistic and Polyak steps (optim/optimizers/) ----------------
#
# Sign-based methods (Lion, signSGD, Signum, Rprop) are discontinuous where their argument
# crosses 0: their hyperparameters are chosen so that 200 steps stay on the descending side of
# the minimum, where no rounding difference can flip a sign. Gradient noise: ours draws the
# same random numbers as optax, bit for bit, so the noisy trajectories meet the same
# deterministic bounds.

SIGN_TRUST_NOISE_OPTIMISTIC = [
    Parity("lion", lambda m, f: m.lion(f(0.01), f(0.9), f(0.99), weight_decay=f(0.01))),
    Parity(
        "lion_mask",
        lambda m, f: m.lion(f(0.01), f(0.8), f(0.95), weight_decay=f(0.3), mask=MASK),
    ),
    Parity(
        "scale_by_lion_smooth",
        lambda m, f: then_step(
            m, m.scale_by_lion(f(0.8), f(0.95), mode="smooth", smooth_beta=f(0.3)), f(0.05)
        ),
    ),
    Parity(
        "scale_by_lion_refined",  # continuous, so it may reach the minimum: |c| < 1 is used
        lambda m, f: then_step(
            m, m.scale_by_lion(f(0.9), f(0.99), mode="refined", smooth_beta=f(1.0)), f(0.05)
        ),
    ),
    Parity("sign_sgd", lambda m, f: m.sign_sgd(f(0.01))),  # = chain(scale_by_sign, learning rate)
    Parity("signum", lambda m, f: m.signum(f(0.01), f(0.9))),
    Parity("rprop", lambda m, f: m.rprop(f(0.002), f(0.3), f(1.02), f(1e-5), f(0.05))),
    Parity(
        "scale_by_trust_ratio_options",
        lambda m, f: then_step(m, m.scale_by_trust_ratio(f(2.0), f(0.5), f(0.1)), f(0.01)),
    ),
    Parity("lamb", lambda m, f: m.lamb(f(0.003), f(0.9), f(0.999), f(1e-6), f(0.0), f(0.01))),
    Parity(
        "lamb_mask",
        lambda m, f: m.lamb(
            f(0.003), f(0.8), f(0.99), f(1e-6), f(1e-8), f(0.1), mask=matrices_mask
        ),
    ),
    Parity("lars", lambda m, f: m.lars(f(0.1), f(0.01), True, f(0.001), f(0.0), True, f(0.9))),
    Parity(
        "lars_masks",
        lambda m, f: m.lars(
            f(0.3),
            weight_decay=f(0.01),
            weight_decay_mask=MASK,
            trust_coefficient=f(0.002),
            eps=f(1e-6),
            trust_ratio_mask=matrices_mask,
            momentum=f(0.8),
            nesterov=True,
        ),
    ),
    Parity("fromage", lambda m, f: m.fromage(f(0.005), f(1e-6))),
    Parity("fromage_schedule", lambda m, f: m.fromage(lambda c: 0.005 / (1.0 + 0.01 * c), f(1e-6))),
    # = chain(add_noise, learning rate); the int-seed form of key is checked in test_optimizers.
    Parity("noisy_sgd", lambda m, f: m.noisy_sgd(f(0.01), f(0.3), f(0.2), jax.random.key(3))),
    Parity(  # = chain(scale_by_optimistic_gradient, learning rate)
        "optimistic_gradient_descent",
        lambda m, f: m.optimistic_gradient_descent(f(0.01), f(1.0), f(0.5)),
    ),
    Parity(
        "optimistic_adam_v2",
        lambda m, f: m.optimistic_adam_v2(
            f(0.01),
            alpha=f(1.0),
            beta=f(0.5),
            b1=f(0.9),
            b2=f(0.999),
            eps=f(1e-8),
            eps_root=f(0.0),
        ),
    ),
    # Polyak steps need the loss. polyak_sgd is chain(sgd(scaling), scale_by_polyak), so these
    # cover the building block too. The Polyak ratio (f - f*) / |g|^2 is below
    # max_learning_rate for 3 steps, then capped.
    Parity(
        "polyak_sgd",
        lambda m, f: m.polyak_sgd(f(1.0), f(1.0), f(150.0), f(0.0)),
        problem=NESTED_WITH_VALUE,
    ),
    # sps+ with f* = 300 above the minimum (195): the scaled step overshoots below f* on step
    # 2, after which the clipped gap (0) stops it.
    Parity(
        "polyak_sgd_plus_scaled",
        lambda m, f: m.polyak_sgd(f(1.0), f(0.7), f(300.0), f(1e-3), variant="sps+"),
        problem=NESTED_WITH_VALUE,
    ),
]

_BY_NAME = {r.name: r for r in SIGN_TRUST_NOISE_OPTIMISTIC}
# One optimizer per complex code path: sign of a complex number (lion), trust ratio with and
# without decay (lamb, fromage), complex normal noise, optimistic extrapolation, Polyak's norm.
SIGN_TRUST_NOISE_OPTIMISTIC_COMPLEX = [
    complex_variant(_BY_NAME[name], COMPLEX_TREE)
    for name in ["lion", "lamb", "fromage", "noisy_sgd", "optimistic_adam_v2", "polyak_sgd"]
]


# --- the Adam family (optim/optimizers/_adam.py, _adam_variants.py, _adagrad.py) -------------
#
# Every float hyperparameter is passed explicitly; blocks run near their defaults, the aliases
# exercise the options.

ADAM_FAMILY = [
    Parity(
        "scale_by_belief",
        lambda m, f: then_step(m, m.scale_by_belief(f(0.8), f(0.99), f(1e-16), f(1e-16)), f(0.01)),
    ),
    Parity(
        "scale_by_adamax",
        lambda m, f: then_step(m, m.scale_by_adamax(f(0.9), f(0.999), f(1e-8)), f(0.01)),
    ),
    Parity(
        "scale_by_amsgrad",
        lambda m, f: then_step(m, m.scale_by_amsgrad(f(0.9), f(0.99), f(1e-8), f(1e-10)), f(0.01)),
    ),
    Parity(
        "scale_by_radam",
        lambda m, f: then_step(
            m, m.scale_by_radam(f(0.9), f(0.999), f(1e-8), f(0.0), f(5.0)), f(0.01)
        ),
    ),
    Parity(
        "scale_by_yogi",
        lambda m, f: then_step(
            m, m.scale_by_yogi(f(0.9), f(0.999), f(1e-3), f(1e-10), f(1e-6)), f(0.01)
        ),
    ),
    Parity(
        "scale_by_adan",
        lambda m, f: then_step(
            m, m.scale_by_adan(f(0.98), f(0.92), f(0.99), f(1e-8), f(0.0)), f(0.01)
        ),
    ),
    Parity(
        "scale_by_adadelta",
        lambda m, f: then_step(m, m.scale_by_adadelta(f(0.9), f(1e-6)), f(1.0)),
    ),
    Parity(
        "scale_by_novograd",
        lambda m, f: then_step(
            m, m.scale_by_novograd(f(0.9), f(0.25), f(1e-8), f(0.0), f(0.01)), f(0.01)
        ),
    ),
    Parity(
        "adabelief_nesterov",
        lambda m, f: m.adabelief(f(0.01), f(0.9), f(0.999), f(1e-16), f(1e-14), nesterov=True),
    ),
    Parity("adamax", lambda m, f: m.adamax(f(0.01), f(0.9), f(0.99), f(1e-8))),
    Parity(
        "adamaxw_mask",
        lambda m, f: m.adamaxw(f(0.01), f(0.9), f(0.999), f(1e-8), f(0.5), mask=MASK),
    ),
    Parity(
        "amsgrad_no_bias_correction",
        lambda m, f: m.amsgrad(
            f(0.01),
            f(0.9),
            f(0.999),
            f(1e-8),
            f(0.0),
            bias_correction_mu=False,
            bias_correction_nu=False,
        ),
    ),
    Parity(
        "radam_nesterov",
        lambda m, f: m.radam(f(0.01), f(0.9), f(0.99), f(1e-8), f(1e-12), f(6.0), nesterov=True),
    ),
    Parity("yogi", lambda m, f: m.yogi(f(0.01), f(0.9), f(0.999), f(1e-3))),
    Parity(
        "adan_weight_decay_mask_fn",
        lambda m, f: m.adan(
            f(0.01), f(0.98), f(0.92), f(0.99), f(1e-8), f(1e-8), f(0.5), mask=matrices_mask
        ),
    ),
    Parity(
        "adadelta_weight_decay_mask",
        lambda m, f: m.adadelta(f(0.5), f(0.95), f(1e-6), f(0.1), weight_decay_mask=MASK),
    ),
    Parity(
        "novograd",
        lambda m, f: m.novograd(f(0.01), f(0.9), f(0.25), f(1e-6), f(1e-12), f(0.001)),
    ),
]

# The blocks whose optax counterparts are complex-safe. optax's own tests optimise complex
# parabolas with adabelief, adamax(w), amsgrad, novograd, radam and yogi; scale_by_adan's
# arithmetic is complex-safe too (|.|^2 in its second moment), although optax's test skips it.
ADAM_FAMILY_COMPLEX = [
    complex_variant(r, COMPLEX_PAIR)
    for r in ADAM_FAMILY
    if r.name.startswith("scale_by_") and "adadelta" not in r.name
]


# --- optax.contrib (optim/contrib/) ------------------------------------------------------------


def conv_dims(m):
    return {
        "conv": m.MuonDimensionNumbers(reduction_axis=(0, 1), output_axis=2),
        "w": m.MuonDimensionNumbers(),
        "b": None,
    }


def muon_full(m, f, **kw):
    """muon with every float hyperparameter given."""
    args = dict(
        ns_steps=5,
        beta=f(0.95),
        eps=f(1e-8),
        weight_decay=f(0.0),
        adam_b1=f(0.9),
        adam_b2=f(0.999),
        adam_eps_root=f(0.0),
        adam_weight_decay=f(0.0),
    )
    return m.muon(f(0.01), **{**args, **kw})


def sophia_full(m, f):
    """sophia with every float hyperparameter given (clipped steps, as by default)."""
    return m.sophia(
        f(0.01), f(0.965), f(0.99), f(1e-8), f(1e-4), gamma=f(0.01), clip_threshold=f(1.0)
    )


def sophia_noclip(m, f, seed):
    """Sophia without clipping, where every step depends on the Hessian estimates.

    b2 = 0.9 and a Hessian refresh every 3 steps let gamma * h (about 2) pass eps = 0.1 within
    a few refreshes; eps keeps the first step (taken before any estimate, with h = 0) finite.
    """
    return then_step(
        m,
        m.scale_by_sophia(
            f(0.9), f(0.9), f(0.1), f(2.0), None, 3, m.hutchinson_estimator_diag_hessian(seed)
        ),
        f(0.05),
    )


def sam_sgd(m, f, **kw):
    return m.sam(m.sgd(f(0.05)), m.chain(m.normalize(), m.sgd(f(0.05))), **kw)


SOPHIA_PROBLEM = Problem(loss=coupled_loss, extra=with_obj_fn)


def _contrib(*args, **kwargs) -> Parity:
    """A record whose trajectory moves by more than 1e-2 (relative) from the start."""
    return Parity(*args, **kwargs, moved=1e-2)


CONTRIB = [
    _contrib("adopt", lambda m, f: m.adopt(f(0.01), f(0.9), f(0.9999), f(1e-6))),
    _contrib(
        "scale_by_adopt_nesterov_clip_fn",
        lambda m, f: then_step(
            m,
            m.scale_by_adopt(
                f(0.8), f(0.99), f(1e-6), nesterov=True, clip_value_fn=lambda c: 0.5 + c**0.5
            ),
            f(0.02),
        ),
    ),
    _contrib(
        "ademamix_mask",
        lambda m, f: m.ademamix(
            f(0.01),
            f(0.9),
            f(0.999),
            f(0.9999),
            f(5.0),
            f(1e-8),
            f(1e-10),
            weight_decay=f(0.5),
            mask=MASK,
        ),
    ),
    _contrib(
        "scale_by_ademamix_schedules",
        lambda m, f: then_step(
            m,
            m.scale_by_ademamix(
                f(0.8),
                f(0.99),
                lambda c: 0.999 - 0.1 / (1.0 + c),
                lambda c: 4.0 * jnp.minimum(c / 100.0, 1.0),
                f(1e-8),
                f(0.0),
            ),
            f(0.01),
        ),
    ),
    _contrib(
        "schedule_free_sgd_warmup_decay",
        lambda m, f: m.schedule_free_sgd(f(0.05), 20, f(0.8), f(0.01), f(1.0)),
    ),
    _contrib(
        "schedule_free_adamw",
        lambda m, f: m.schedule_free_adamw(
            f(0.02), None, f(0.9), f(0.999), f(1e-8), f(0.01), f(2.0)
        ),
    ),
    _contrib(
        "schedule_free_adam_wrapper",
        lambda m, f: m.schedule_free(
            m.adam(f(0.02), f(0.0), f(0.99), f(1e-8)), f(0.02), f(0.95), f(1.5)
        ),
    ),
    _contrib(
        "prodigy_options",
        lambda m, f: m.prodigy(
            lambda c: 1.0 / (1.0 + 0.01 * c),
            (f(0.8), f(0.99)),
            f(0.9),
            f(1e-8),
            f(1e-6),
            f(0.5),
            f(0.01),
            safeguard_warmup=True,
        ),
    ),
    # scale_by_prodigy (ours only) followed by a sign flip is optax's prodigy; beta3=None
    # (sqrt(b2)) as by default.
    _contrib(
        "scale_by_prodigy",
        lambda m, f: m.chain(
            m.scale_by_prodigy(f(1.0), (f(0.9), f(0.999)), None, f(1e-8), f(1e-6), f(1.0), f(0.0)),
            m.scale(f(-1.0)),
        ),
        lambda m, f: m.prodigy(f(1.0), (f(0.9), f(0.999)), None, f(1e-8), f(1e-6), f(1.0), f(0.0)),
    ),
    _contrib("muon", muon_full),
    _contrib(
        "muon_aol_adaptive_decay",
        lambda m, f: muon_full(
            m,
            f,
            preconditioning="aol",
            adaptive=True,
            weight_decay=f(0.1),
            weight_decay_mask=MASK,
            adam_learning_rate=f(0.02),
            adam_weight_decay=f(0.01),
            consistent_rms=f(0.2),
        ),
    ),
    _contrib(
        "muon_dimension_numbers_spectral_plain",
        lambda m, f: muon_full(
            m,
            f,
            muon_weight_dimension_numbers=conv_dims(m),
            preconditioning="spectral",
            nesterov=False,
            ns_steps=3,
        ),
        problem=Problem(conv_tree),
    ),
    # optax's scale_by_muon maps over weight_dimension_numbers, so its default (None) only
    # works on a single array; ours treats None as "every leaf is a matrix".
    _contrib(
        "scale_by_muon_schatten_dion",
        lambda m, f: then_step(
            m, m.scale_by_muon("dion", 5, f(0.9), f(1e-8), preconditioning="schatten"), f(0.02)
        ),
        lambda m, f: then_step(
            m,
            m.scale_by_muon(
                optim.contrib._muon.NS_COEFFS_PRESETS["dion"],
                5,
                f(0.9),
                f(1e-8),
                preconditioning="schatten",
                weight_dimension_numbers={k: m.MuonDimensionNumbers() for k in matrices()},
            ),
            f(0.02),
        ),
        problem=Problem(matrices),
    ),
    _contrib("sophia", sophia_full, problem=SOPHIA_PROBLEM),
    _contrib(
        "scale_by_sophia_seed_noclip",
        lambda m, f: sophia_noclip(m, f, jax.random.PRNGKey(42)),
        problem=SOPHIA_PROBLEM,
    ),
    _contrib("sam", sam_sgd),
    _contrib(
        "sam_adam_sync3_keep_state",
        lambda m, f: m.sam(
            m.adam(f(0.02), f(0.9), f(0.999), f(1e-8)),
            m.chain(m.normalize(), m.sgd(f(0.02), f(0.9))),
            3,
            reset_state=False,
        ),
    ),
    _contrib(
        "sam_opaque",
        lambda m, f: sam_sgd(m, f, sync_period=3, opaque_mode=True),
        problem=Problem(extra=with_grad_fn),
    ),
]


# --- the rest of optax.contrib: whole paths, since several reach the minimum in 200 steps ----


def plateau(m, f, **kw):
    """SGD whose steps reduce_on_plateau scales: the loss falls for ~40 steps, then its
    relative improvement drops below rtol and the scale is cut (three times in 200 steps)."""
    args = dict(factor=f(0.5), patience=5, rtol=f(1e-4), atol=f(0.0), min_scale=f(0.0))
    return m.chain(m.sgd(f(0.05)), m.reduce_on_plateau(**{**args, **kw}))


def _plateau_triggered(ours, theirs):
    scale = float(ours.state[1].scale)
    assert scale < 0.5, "the plateau logic never triggered"
    assert scale == pytest.approx(float(theirs.state[1].scale), rel=1e-6)


def _path(name, build, problem=NESTED, **kw):
    return Parity(name, build, problem=problem, kind="whole_path", moved=0.05, **kw)


# slow=True: each case compiles three 200-step programs; every optimizer keeps a default case
# with its options on (the alias chains the building block, so both are compared).
CONTRIB_PATHS = [
    _path(
        "reduce_on_plateau",
        lambda m, f: plateau(m, f),
        NESTED_WITH_VALUE,
        check=_plateau_triggered,
        slow=True,
    ),
    _path(
        "reduce_on_plateau_cooldown_accumulate_min_scale",
        lambda m, f: plateau(m, f, cooldown=4, accumulation_size=3, atol=f(0.01), min_scale=f(0.2)),
        NESTED_WITH_VALUE,
        check=_plateau_triggered,
    ),
    _path("dog", lambda m, f: m.dog(f(1.0), ("heuristic", f(1e-6)), f(1e-8)), slow=True),
    _path(
        "dog_learning_rate_decay_mask",
        lambda m, f: m.dog(
            f(0.5), ("learning_rate", f(0.01)), f(1e-8), weight_decay=f(0.01), mask=MASK
        ),
    ),
    _path(
        "scale_by_dog_distance",
        lambda m, f: then_step(m, m.scale_by_dog(("distance", f(0.1)), f(1e-6)), f(1.0)),
        slow=True,
    ),
    _path("dowg", lambda m, f: m.dowg(f(1.0), None, f(1e-4)), slow=True),
    _path(
        "dowg_init_decay",
        lambda m, f: m.dowg(f(0.5), f(0.01), f(1e-4), weight_decay=f(0.01), mask=MASK),
    ),
    _path("madgrad", lambda m, f: m.madgrad(f(0.01), f(0.9), f(0.01), f(1e-6))),
    _path(
        "scale_by_madgrad_schedule",
        lambda m, f: m.scale_by_madgrad(lambda c: 0.02 / (1.0 + 0.01 * c), f(0.5), f(1e-6)),
        slow=True,
    ),
    _path("cocob", lambda m, f: m.cocob(f(1.0), f(100.0), f(1e-8), f(0.0)), slow=True),
    _path("cocob_decay_mask", lambda m, f: m.cocob(f(0.5), f(20.0), f(1e-6), f(0.01), MASK)),
    _path(
        "simplified_ademamix",
        lambda m, f: m.simplified_ademamix(
            f(0.002), f(0.99), f(0.95), f(2.0), f(1e-8), f(0.0), f(0.1), MASK
        ),
    ),
    _path(
        "scale_by_simplified_ademamix_schedule",
        lambda m, f: then_step(
            m,
            m.scale_by_simplified_ademamix(
                f(0.9), f(0.999), lambda c: 3.0 * jnp.minimum(c / 50.0, 1.0), f(1e-8), f(1e-12)
            ),
            f(0.005),
        ),
        slow=True,
    ),
    # lower_bound 200 is just below the minimum of convex_loss (about 220): a useful bound.
    _path(
        "momo",
        lambda m, f: m.momo(f(1.0), f(0.9), f(200.0), f(0.0)),
        NESTED_WITH_VALUE,
        slow=True,
    ),
    _path(
        "momo_adapt_decay_schedule",
        lambda m, f: m.momo(
            lambda c: 0.5 / (1.0 + 0.01 * c), f(0.8), f(0.0), f(0.01), adapt_lower_bound=True
        ),
        NESTED_WITH_VALUE,
    ),
    _path(
        "momo_adam",
        lambda m, f: m.momo_adam(f(0.5), f(0.9), f(0.999), f(1e-8), f(200.0)),
        NESTED_WITH_VALUE,
        slow=True,
    ),
    _path(
        "momo_adam_adapt_decay",
        lambda m, f: m.momo_adam(
            f(0.5), f(0.9), f(0.999), f(1e-8), f(0.0), f(0.01), adapt_lower_bound=True
        ),
        NESTED_WITH_VALUE,
    ),
    _path(
        "dadapt_adamw",
        lambda m, f: m.dadapt_adamw(
            lambda c: jnp.minimum(1.0, (c + 1.0) / 10.0),
            (f(0.9), f(0.999)),
            f(1e-8),
            f(1e-2),
            f(0.01),
        ),
    ),
    # Mechanic recovers Delta_t = (x_0 - x_t) / S_t from the parameters, with S_t from
    # s_init = 1e-6 upwards: a last-bit difference in x_t (ours and optax's base optimizers
    # round differently, e.g. Adam's fused division) becomes a 6e-8 / S_t relative difference
    # in Delta, and the trajectories part by 0.39 within 100 steps with Adam inside. So the
    # base optimizer is the same for both: SGD, whose arithmetic matches to the bit, or optax's
    # own Adam (float32 hyperparameters for all three runs). Either way the comparison is of
    # Mechanic itself; test_mechanize_passes_extra_args_to_the_base_optimizer covers ours.
    _path(
        "mechanize_sgd",
        lambda m, f: m.mechanize(m.sgd(f(1.0), f(0.9)), f(0.01), f(1e-8), f(1e-6)),
    ),
    _path(
        "mechanize_optax_adam",
        lambda m, f: m.mechanize(optax.adam(1.0, 0.9, 0.999, 1e-8), f(0.01), f(1e-8), f(1e-6), 4),
        slow=True,
    ),
    _path(
        "acprop",
        lambda m, f: m.acprop(f(0.01), f(0.9), f(0.999), f(1e-16), f(1e-16), f(0.1), MASK),
    ),
    # Lion takes signs and Adam squares: on complex leaves both need the split. Real leaves
    # pass through to the inner optimizer as they are.
    _path(
        "split_real_and_imaginary_lion",
        lambda m, f: m.split_real_and_imaginary(m.lion(f(0.01), f(0.9), f(0.99))),
        COMPLEX_AND_REAL,
        steps=100,
    ),
    _path(
        "split_real_and_imaginary_adam",
        lambda m, f: m.split_real_and_imaginary(m.adam(f(0.05), f(0.9), f(0.999), f(1e-8))),
        COMPLEX_AND_REAL,
        steps=100,
    ),
]


# --- Adafactor and SM3 (optim/optimizers/_factorized.py) -------------------------------------


def big_params() -> dict:
    """Factored leaves (a matrix, a wide matrix, a rank-3 tensor) whose two largest dimensions
    reach ``min_dim_size_to_factor`` = 128, and unfactored ones (a small matrix, a scalar)."""
    k = jax.random.split(jax.random.PRNGKey(1), 6)
    return {
        "dense": {"w": jax.random.normal(k[0], (160, 128)), "b": jax.random.normal(k[1], (128,))},
        "wide": jax.random.normal(k[2], (128, 140)),
        "conv": jax.random.normal(k[3], (2, 130, 128)),
        "small": [jax.random.normal(k[4], (4, 3)), jax.random.normal(k[5], ())],
    }


def no_scalars(params: dict) -> dict:
    """optax's SM3 fails on 0-d leaves (it indexes an empty list of accumulators)."""
    return {"dense": params["dense"], "wide": params["wide"], "conv": params["conv"]}


# A mask over ``big_params``: the factored leaves.
BIG_PARAMS_MASK = {
    "dense": {"w": True, "b": False},
    "wide": True,
    "conv": True,
    "small": [False, False],
}
BIG = Problem(big_params)
BIG_WITHOUT_SCALARS = Problem(lambda: no_scalars(big_params()))


def capped_decay(step, decay_rate):
    """Zhai et al. (2021)'s capped schedule, a custom ``decay_rate_fn``."""
    return jnp.minimum(decay_rate, 1.0 - (step + 1.0) ** -0.8)


FACTORIZED = [
    Parity(
        "scale_by_factored_rms_options",
        lambda m, f: then_step(
            m, m.scale_by_factored_rms(True, f(0.999), 0, 3, f(1e-6), capped_decay), f(0.01)
        ),
        problem=BIG,
    ),
    Parity(
        "clip_and_param_block_rms",
        lambda m, f: m.chain(
            m.clip_by_block_rms(f(0.5)), m.scale_by_param_block_rms(f(1e-3)), m.scale(f(-0.1))
        ),
    ),
    Parity(
        "adafactor",
        lambda m, f: m.adafactor(
            f(0.01), decay_rate=f(0.8), clipping_threshold=f(1.0), eps=f(1e-30)
        ),
        problem=BIG,
    ),
    # learning_rate=None: steps of max(rms(theta), 1e-3) times the clipped update. With the
    # default clipping_threshold=1 they are as large as the parameters (about 8 at this loss's
    # minimum) and the trajectory blows up (to NaN, in optax too).
    Parity(
        "adafactor_relative_step",
        lambda m, f: m.adafactor(decay_rate=f(0.8), clipping_threshold=f(0.01), eps=f(1e-30)),
        problem=BIG,
    ),
    Parity(
        "adafactor_momentum_decay",
        lambda m, f: m.adafactor(
            f(0.01),
            decay_rate=f(0.8),
            clipping_threshold=f(1.0),
            momentum=f(0.9),
            weight_decay_rate=f(0.1),
            eps=f(1e-30),
            weight_decay_mask=BIG_PARAMS_MASK,
        ),
        problem=BIG,
    ),
    Parity(
        "adafactor_unfactored",
        lambda m, f: m.adafactor(
            f(0.01),
            min_dim_size_to_factor=128,
            decay_rate=f(0.8),
            multiply_by_parameter_scale=False,
            clipping_threshold=None,
            eps=f(1e-30),
            factored=False,
        ),
        problem=BIG,
    ),
    Parity("sm3", lambda m, f: m.sm3(f(0.1), f(0.9)), problem=BIG_WITHOUT_SCALARS),
    # optax branches in Python on ``b2 != 1.0``, which fails under jit for an array b2: it is
    # given as a Python float (ours stays float32).
    Parity(
        "scale_by_sm3",
        lambda m, f: then_step(m, m.scale_by_sm3(f(0.5), 0.95, f(1e-6)), f(0.1)),
        problem=BIG_WITHOUT_SCALARS,
    ),
    Parity(
        "scale_by_param_block_norm",
        lambda m, f: then_step(m, m.scale_by_param_block_norm(f(1e-3)), f(0.01)),
        kind="jit_and_vmap",
        steps=100,
    ),
    Parity(
        "scale_by_param_block_norm_min_scale",
        lambda m, f: then_step(m, m.scale_by_param_block_norm(f(2.5)), f(0.01)),
        kind="jit_and_vmap",
        steps=100,
    ),
]


# --- GaLore (optim/contrib/_galore.py) ----------------------------------------------------------
#
# 30 steps, compared at every step, on ``nested_params`` (a tall (4, 3) and a wide (2, 5)
# matrix, vectors and a scalar) with a 3-d leaf where dimension numbers are given. With optax's
# own scale_by_adam as the inner optimizer of both (float32 hyperparameters), the GaLore
# arithmetic (SVD, projections, scale) alone is compared: bit for bit, the projectors too.


def galore_params() -> dict:
    return {**nested_params(), "attn": jnp.linspace(-1.0, 1.0, 24).reshape(2, 3, 4)}


def attention_dims(m):
    return m.GaLoreDimensionNumbers(reduction_axis=0, output_axis=(1, 2))


def optax_adam(m, f):
    del m
    return optax.scale_by_adam(f(0.9), f(0.999), f(1e-8))


def galore_default(m, f, base):
    return m.galore(f(0.05), base_optimizer=base)


def galore_rank1_gap3_scale_weight_decay_mask(m, f, base):
    return m.galore(
        f(0.05),
        rank=1,
        update_proj_gap=3,
        scale=f(0.5),
        base_optimizer=base,
        weight_decay=f(0.1),
        mask=lambda p: jax.tree.map(lambda x: x.ndim == 2, p),
    )


def galore_one_dims_for_all(m, f, base):
    """Every matrix, transposed (on params without the 3-d leaf)."""
    return m.galore(
        f(0.05),
        rank=2,
        update_proj_gap=5,
        base_optimizer=base,
        weight_dimension_numbers=m.GaLoreDimensionNumbers(1, 0),
    )


def galore_dims_tree(m, f, base):
    """(2, 3 * 4) for the 3-d leaf, the (4, 3) matrix transposed, no others."""
    return m.galore(
        f(0.05),
        rank=2,
        update_proj_gap=5,
        base_optimizer=base,
        weight_dimension_numbers={
            "attn": attention_dims(m),
            "dense": {"w": m.GaLoreDimensionNumbers(1, 0), "b": None},
            "scale": None,
            "blocks": [None, (None,)],
        },
    )


def galore_dims_function(m, f, base):
    return m.galore(
        f(0.05),
        rank=3,
        update_proj_gap=2,
        base_optimizer=base,
        weight_dimension_numbers=lambda p: jax.tree.map(
            lambda x: attention_dims(m) if x.ndim == 3 else None, p
        ),
    )


def _same_projectors(ours, theirs):
    projectors = [
        [x for x in jax.tree.leaves(d.state[0].projector) if x.size] for d in (ours, theirs)
    ]
    assert all(bool(jnp.array_equal(a, b)) for a, b in zip(*projectors, strict=True)), (
        "the projectors differ from optax's"
    )


def _galore_bitwise(build, params=galore_params) -> Parity:
    """``build`` with optax's scale_by_adam inside both, float32 hyperparameters."""
    return Parity(
        build.__name__ + "_optax_adam",
        lambda m, f: build(m, np.float32, optax_adam(m, np.float32)),
        problem=Problem(params),
        kind="whole_path",
        steps=30,
        bound=0.0,
        check=_same_projectors,
    )


GALORE = [
    _galore_bitwise(galore_default),
    _galore_bitwise(galore_rank1_gap3_scale_weight_decay_mask),
    _galore_bitwise(galore_one_dims_for_all, nested_params),
    _galore_bitwise(galore_dims_tree),
    _galore_bitwise(galore_dims_function),
    # Our scale_by_lion inside ours, optax's inside optax's: the same float32 operations.
    Parity(
        "scale_by_galore_lion",
        lambda m, f: then_step(
            m,
            m.scale_by_galore(
                2, 3, base_optimizer=m.scale_by_lion(np.float32(0.9), np.float32(0.99))
            ),
            np.float32(0.01),
        ),
        problem=Problem(galore_params),
        kind="whole_path",
        steps=30,
        bound=0.0,
        check=_same_projectors,
    ),
    # Each library's default inner Adam, built from Python floats (galore cannot be told
    # otherwise): the default bound (measured: 1.0e-7 and 0.0; it was 1e-5 while our Adam
    # computed 1 - b from the float32 b).
    *(
        Parity(
            build.__name__,
            lambda m, f, build=build: build(m, f, None),
            problem=Problem(galore_params),
            kind="whole_path",
            steps=30,
        )
        for build in (galore_default, galore_rank1_gap3_scale_weight_decay_mask)
    ),
]


# --- DP-SGD (optim/contrib/_privacy.py) -----------------------------------------------------
#
# The updates take per-example gradients (a batch axis on every leaf). Same key, same noise:
# optax's draws, leaf by leaf, so trajectories are compared step by step. The clipping is
# optim.per_example_global_norm_clip (within 2e-6 of optax's, tests/transforms/test_clipping.py);
# on this problem dpsgd's trajectories are bit for bit optax's (measured: 0.0; the per-example
# clipping sums in another order than optax's einsum and could part by an ulp on others). So
# they are when XLA compiles the step alone: with the 40 steps in one program it fuses ours and
# optax's otherwise (measured: 4.9e-8), hence ``one_program=False``.
# Where another of our transformations takes part (a schedule, Adam) the bound is its own.

DP_BATCH = 6


def dp_data():
    k = jax.random.split(jax.random.PRNGKey(5), 2)
    return jax.random.normal(k[0], (DP_BATCH, 3)), jax.random.normal(k[1], (DP_BATCH,)) * 4.0


def dp_params():
    return {"w": jnp.array([[0.5, -1.0], [2.0, 0.3], [-0.7, 1.1]]), "b": jnp.zeros(2)}


def _example_loss(params, x, y):
    """One example's loss: large residuals, so that some examples' gradients are clipped."""
    out = x @ params["w"] + params["b"]
    return jnp.sum((out - y) ** 2)


def per_example_grads(params):
    x, y = dp_data()
    return jax.vmap(jax.grad(_example_loss), in_axes=(None, 0, 0))(params, x, y)


def _batch_loss(params):
    x, y = dp_data()
    return jnp.mean(jax.vmap(_example_loss, in_axes=(None, 0, 0))(params, x, y))


def _per_example_value_and_grad(loss):
    return lambda params: (loss(params), per_example_grads(params))


def _same_key(ours, theirs):
    keys = [jax.random.key_data(d.state[0].rng_key) for d in (ours, theirs)]
    assert bool(jnp.array_equal(*keys)), "the noise keys differ from optax's"


def _dp(name, build, bound=0.0) -> Parity:
    problem = Problem(
        dp_params, _batch_loss, value_and_grad=_per_example_value_and_grad, one_program=False
    )
    return Parity(
        name, build, problem=problem, kind="whole_path", steps=40, bound=bound, check=_same_key
    )


PRIVACY = [
    _dp("dpsgd", lambda m, f: m.dpsgd(0.01, 1.0, 1.1, 7)),
    _dp("dpsgd_momentum", lambda m, f: m.dpsgd(0.01, 2.0, 0.5, 3, momentum=0.9)),
    _dp("dpsgd_nesterov", lambda m, f: m.dpsgd(0.01, 2.0, 0.5, 3, momentum=0.9, nesterov=True)),
    # Our linear schedule computes (T - t) / T where optax computes 1 - t / T (optim.schedules'
    # docstring): learning rates an ulp apart. Measured: 1.8e-7.
    _dp(
        "dpsgd_schedule",
        lambda m, f: m.dpsgd(m.linear_schedule(0.02, 0.001, 30), 0.5, 1.0, 11, 0.5),
        bound=1e-6,
    ),
    _dp("dpsgd_no_noise", lambda m, f: m.dpsgd(0.01, 1.0, 0.0, 0)),
    # Our Adam's float32 arithmetic against optax's (FLOAT32_BOUND). Measured: 3.0e-8.
    _dp(
        "differentially_private_aggregate_then_adam",
        lambda m, f: m.chain(
            m.differentially_private_aggregate(0.7, 1.3, key=jax.random.key(4)),
            m.adam(np.float32(0.01), np.float32(0.9), np.float32(0.999), np.float32(1e-8)),
        ),
        bound=2e-6,
    ),
]


# --- L-BFGS and the zoom line search (optim/optimizers/_lbfgs.py, _linesearch.py) ------------
#
# 50 iterations on convex_loss and on the Rosenbrock function. The line search branches on data
# (which phase, which interpolant, when to stop), so a rounding difference can change an
# iteration count and from there the whole trajectory; on Rosenbrock a 1-ulp difference in one
# gradient was measured to grow to a 17% difference in the loss by iteration 25, although both
# runs still reached the minimum. XLA contracts ``a*b + c`` into fused multiply-adds
# differently depending on how it fuses a program, so the line search evaluates the loss inside
# each phase's branch, as optax's does; measured on CPU the trajectories below are then bit for
# bit optax's (deviation 0, every iteration count equal).


def rosenbrock(params) -> jax.Array:
    x = params["x"]
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_start() -> dict:
    return {"x": jnp.array([-1.2, 1.0, -0.5, 0.8, 1.5])}


def zoom(m, f, **options):
    """lbfgs's default line search with every float hyperparameter given explicitly."""
    kwargs = dict(
        max_learning_rate=None,
        tol=f(0.0),
        increase_factor=f(2.0),
        slope_rtol=f(1e-4),
        curv_rtol=f(0.9),
        approx_dec_rtol=f(1e-6),
        stepsize_precision=f(1e-5),
        initial_guess_strategy="one",
    )
    return m.scale_by_zoom_linesearch(20, **{**kwargs, **options})


ROSENBROCK = Problem(rosenbrock_start, rosenbrock)


def _searched(name, build, problem=NESTED, from_state=True) -> Parity:
    kind = "line_search_from_state" if from_state else "line_search"
    return Parity(name, build, problem=problem, kind=kind, steps=50, moved=1e-2)


LBFGS = [
    _searched("lbfgs_convex", lambda m, f: m.lbfgs(None, 10, True, zoom(m, f))),
    _searched("lbfgs_rosenbrock", lambda m, f: m.lbfgs(None, 10, True, zoom(m, f)), ROSENBROCK),
    _searched(
        "lbfgs_options",
        lambda m, f: m.lbfgs(
            f(0.5),
            3,
            False,
            zoom(
                m,
                f,
                max_learning_rate=f(4.0),
                curv_rtol=f(0.5),
                approx_dec_rtol=None,
                tol=f(1e-7),
                increase_factor=f(1.5),
                initial_guess_strategy="keep",
            ),
        ),
        ROSENBROCK,
        from_state=False,
    ),
    # Gradient descent with a line search for the decrease condition only.
    _searched(
        "sgd_zoom_linesearch",
        lambda m, f: m.chain(
            m.sgd(f(4.0)), zoom(m, f, curv_rtol=f(math.inf), initial_guess_strategy="keep")
        ),
    ),
    # linesearch=None: the preconditioned step times the learning rate, no extra arguments.
    Parity(
        "lbfgs_without_linesearch",
        lambda m, f: m.lbfgs(f(0.3), 4, True, None),
        kind="jit_and_vmap",
        moved=1e-2,
    ),
]


# --- every optimizer optax also has, at its defaults ------------------------------------------
#
# Compared by test_optax_parity's SHARED tests: the first update bit for bit, eagerly and under
# jit, then 200 steps (bound PYTHON_FLOAT_BOUND). Least squares on two leaves (a vector and a
# matrix), full batch: well conditioned, and every optimizer still moves after 200 steps.
# Hyperparameters are the defaults (Python floats, as users write them) with learning rate
# 1e-2, or the learning-rate-free defaults.

_KEYS = jax.random.split(jax.random.PRNGKey(0), 6)
_A, _Y = jax.random.normal(_KEYS[0], (20, 10)), jax.random.normal(_KEYS[1], (20,))
_B, _C = jax.random.normal(_KEYS[2], (12, 6)), jax.random.normal(_KEYS[3], (12, 4))
LEAST_SQUARES_START = {
    "w": jax.random.normal(_KEYS[4], (10,)),
    "m": jax.random.normal(_KEYS[5], (6, 4)),
}
_LR = 1e-2


def least_squares(p):
    return 0.5 * jnp.mean((_A @ p["w"] - _Y) ** 2) + 0.5 * jnp.mean((_B @ p["m"] - _C) ** 2)


def _with_lbfgs_extras(loss, params, value):
    return {"value": value, "grad": jax.grad(loss)(params), "value_fn": loss}


# What an optimizer's update needs besides gradients and parameters (as optax's).
DEFAULTS_EXTRA = {
    "lbfgs": _with_lbfgs_extras,
    "contrib.momo": with_value,
    "contrib.momo_adam": with_value,
    "contrib.sophia": with_obj_fn,
}
# Where the numbers may differ from optax's, by how much, and why (every other name: the first
# update bit for bit, 200 steps within PYTHON_FLOAT_BOUND). Our gradient bound is a clamp in
# front of the moments (optim._numerics.square_safe): the same values, but inside the fused
# kernel it changes which multiply-adds XLA:CPU's code generator contracts into fused
# multiply-adds, so a last bit can round the other way.
SHARED_JIT_ULPS = {  # the jitted first update, in units in the last place
    "yogi": 1,  # v - (1 - b2) sign(v - g^2) g^2: 9 of 34 entries 1 ulp apart (measured)
}
SHARED_BOUNDS = {  # the 200-step deviation
    # AdaBelief's (g - m)^2 with a sign step cancels digits: last-bit differences grow to 8.9e-6
    # (measured); with identical arithmetic (no bound) it is 0.
    "contrib.acprop": 2e-5,
}
_LEARNING_RATE_FREE = {"cocob", "dadapt_adamw", "dog", "dowg", "momo", "momo_adam", "prodigy"}
_SPECIAL = {
    "lbfgs": lambda m: m.lbfgs(),
    "noisy_sgd": lambda m: m.noisy_sgd(_LR, key=1),
    "schedule_free": lambda m: m.contrib.schedule_free(m.adam(_LR, b1=0.0), _LR),
}
# Names optax has that optim leaves out on purpose: deprecated in optax (optimistic_adam: use
# optimistic_adam_v2) or differentially private / low-rank training kept for later.
_NOT_OURS = {"optimistic_adam", "dpsgd", "galore"}


def _shared_optimizers() -> list[str]:
    """Factories of optax and optax.contrib taking a learning rate that optim also has."""
    names = []
    for prefix, module in (("", optax), ("contrib.", optax.contrib)):
        for name in dir(module):
            factory = getattr(module, name)
            if name.startswith("_") or isinstance(factory, type) or not callable(factory):
                continue
            try:
                parameters = inspect.signature(factory).parameters
            except (TypeError, ValueError):
                continue
            if "learning_rate" in parameters and name not in _NOT_OURS:
                names.append(prefix + name)
    return sorted(names)


SHARED = _shared_optimizers()


def at_defaults(library, qualified: str):
    """The optimizer ``qualified`` ("adam", "contrib.muon") of ``library`` (optim or optax) at
    its defaults, with learning rate 1e-2 where it takes one."""
    name = qualified.removeprefix("contrib.")
    if name in _SPECIAL:
        return _SPECIAL[name](library)
    module = library.contrib if qualified.startswith("contrib.") else library
    factory = getattr(module, name)
    return factory() if name in _LEARNING_RATE_FREE else factory(_LR)


TABLE = [
    *CORE,
    *WRAPPERS,
    *ADDED_TRANSFORMS,
    *SIGN_TRUST_NOISE_OPTIMISTIC,
    *SIGN_TRUST_NOISE_OPTIMISTIC_COMPLEX,
    *ADAM_FAMILY,
    *ADAM_FAMILY_COMPLEX,
    *CONTRIB,
    *CONTRIB_PATHS,
    *FACTORIZED,
    *GALORE,
    *PRIVACY,
    *LBFGS,
]
BY_NAME = {record.name: record for record in TABLE}
assert len(BY_NAME) == len(TABLE), "two records share a name"
