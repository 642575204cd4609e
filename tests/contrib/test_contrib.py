"""optim.contrib against optax.contrib: same names, arguments and state fields, bad input.

Every optimizer here exists in optax 0.2.8's contrib, which is the oracle. Their trajectories
are compared with optax's by tests/test_optax_parity.py (records in tests/parity_table.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import (
    assert_signature_extends_optax,
    convex_loss,
    descend,
    nested_params,
    relative_deviation,
)
from parity_table import OURS, THEIRS, coupled_loss, sophia_noclip, with_obj_fn

import optim
import optim.contrib


def _records(state):
    """The field tuples of every named record in a state, containers walked through."""
    found = set()

    def walk(node):
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            found.add(node._fields)
        if isinstance(node, (tuple, list)):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            for child in node.values():
                walk(child)

    walk(state)
    return found


STATE_CASES = [
    ("adopt", lambda m: m.adopt(1e-3)),
    ("ademamix", lambda m: m.ademamix(1e-3)),
    ("muon", lambda m: m.muon(1e-3)),
    ("prodigy", lambda m: m.prodigy()),
    ("schedule_free_adamw", lambda m: m.schedule_free_adamw()),
    ("schedule_free_sgd", lambda m: m.schedule_free_sgd()),
    ("sophia", lambda m: m.sophia(1e-3)),
    ("sam", lambda m: m.sam(m.sgd(1e-3), m.chain(m.normalize(), m.sgd(1e-3)))),
]


@pytest.mark.parametrize(("name", "build"), STATE_CASES, ids=[c[0] for c in STATE_CASES])
def test_state_field_names_match_optax(name, build, params):
    """Named records with optax's field names, so optax.tree.get(state, field) works on ours."""
    ours, theirs = build(OURS).init(params), build(THEIRS).init(params)
    missing = _records(theirs) - _records(ours)
    assert not missing, missing
    if name in ("muon", "prodigy", "sam") or name.startswith("schedule_free"):
        assert type(ours).__name__ == type(theirs).__name__  # the record itself, not a chain
    for field in ("estim_lr", "z", "key", "count_m2"):
        if any(field in r for r in _records(theirs)):
            shapes = [jax.tree.map(jnp.shape, optax.tree.get(st, field)) for st in (ours, theirs)]
            assert shapes[0] == shapes[1], field


def test_signatures_match_optax():
    """Same argument names, order and defaults as optax.contrib for every name we share."""
    lowercase = [n for n in optim.contrib.__all__ if n[0].islower()]
    # Ours only: scale_by_prodigy, taking prodigy's arguments. optax.contrib has scale_by_dog,
    # scale_by_dowg and scale_by_sophia in its modules without exporting them (THEIRS has them).
    unexported = ["scale_by_dog", "scale_by_dowg", "scale_by_prodigy", "scale_by_sophia"]
    assert [n for n in lowercase if not hasattr(optax.contrib, n)] == unexported
    pairs = [
        (getattr(optim.contrib, n), getattr(THEIRS, n)) for n in lowercase if hasattr(THEIRS, n)
    ]
    pairs.append((optim.contrib.scale_by_prodigy, optax.contrib.prodigy))
    for ours, theirs in pairs:
        assert_signature_extends_optax(ours, theirs, ours.__name__)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: optim.contrib.adopt(-0.1), ValueError, "learning_rate"),
        (lambda: optim.contrib.adopt(0.1, b2=1.0), ValueError, "b2"),
        (lambda: optim.contrib.scale_by_adopt(eps=-1.0), ValueError, "eps"),
        (lambda: optim.contrib.ademamix(0.1, b3=1.5), ValueError, "b3"),
        (lambda: optim.contrib.ademamix(0.1, alpha=-1.0), ValueError, "alpha"),
        (lambda: optim.contrib.ademamix(0.1, mu_dtype=jnp.int32), TypeError, "mu_dtype"),
        (lambda: optim.contrib.muon(0.1, ns_coeffs=(1.0, 2.0)), ValueError, "ns_coeffs"),
        (lambda: optim.contrib.muon(0.1, ns_coeffs="fast"), ValueError, "ns_coeffs"),
        (lambda: optim.contrib.muon(0.1, ns_coeffs="dion", ns_steps=6), ValueError, "ns_steps"),
        (lambda: optim.contrib.muon(0.1, ns_steps=0), ValueError, "ns_steps"),
        (lambda: optim.contrib.muon(0.1, ns_steps=2.5), TypeError, "ns_steps"),
        (lambda: optim.contrib.muon(0.1, beta=1.0), ValueError, "beta"),
        (lambda: optim.contrib.muon(0.1, preconditioning="qr"), ValueError, "preconditioning"),
        (lambda: optim.contrib.muon(0.1, consistent_rms=-0.2), ValueError, "consistent_rms"),
        (
            lambda: optim.contrib.muon(0.1, muon_weight_dimension_numbers={"w": 3}),
            TypeError,
            r"muon_weight_dimension_numbers\['w'\]",
        ),
        (lambda: optim.contrib.prodigy(betas=(0.9,)), TypeError, "betas"),
        (lambda: optim.contrib.prodigy(betas=(0.9, 1.2)), ValueError, r"betas\[1\]"),
        (lambda: optim.contrib.prodigy(estim_lr0=0.0), ValueError, "estim_lr0"),
        (lambda: optim.contrib.schedule_free_sgd(b1=0.0), ValueError, "b1"),
        (lambda: optim.contrib.schedule_free_adamw(warmup_steps=0), ValueError, "warmup_steps"),
        (lambda: optim.contrib.schedule_free(optim.sgd(0.1), "0.1"), TypeError, "learning_rate"),
        (lambda: optim.contrib.schedule_free(object(), 0.1), TypeError, "base_optimizer"),
        (lambda: optim.contrib.sophia(0.1, gamma=-1.0), ValueError, "gamma"),
        (lambda: optim.contrib.sophia(0.1, update_interval=0), ValueError, "update_interval"),
        (lambda: optim.contrib.sophia(0.1, clip_threshold=-1.0), ValueError, "clip_threshold"),
        (lambda: optim.contrib.hutchinson_estimator_diag_hessian(7), TypeError, "random_seed"),
        (lambda: optim.contrib.sam(optim.sgd(0.1), optim.sgd(0.1), 0), ValueError, "sync_period"),
        (lambda: optim.contrib.sam(optim.sgd(0.1), None), TypeError, "adv_optimizer"),
    ],
)
def test_bad_hyperparameters_raise(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bad_use_raises(params):
    """Errors raised while tracing, checked with eval_shape (nothing is computed)."""
    grads = jax.grad(convex_loss)(params)

    def update(tx, *args, **kwargs):
        return jax.eval_shape(lambda: tx.update(grads, tx.init(params), *args, **kwargs))

    with pytest.raises(ValueError, match="obj_fn"):
        update(optim.contrib.sophia(0.1), params)
    with pytest.raises(ValueError, match="grad_fn"):
        update(optim.contrib.sam(optim.sgd(0.1), optim.sgd(0.1), opaque_mode=True), params)
    for tx in (optim.contrib.prodigy(), optim.contrib.schedule_free_sgd()):
        with pytest.raises(ValueError, match="needs params"):
            update(tx)
    with pytest.raises(ValueError, match=r"updates\['blocks'\]\[1\]\[0\] has shape \(6,\)"):
        update(optim.contrib.scale_by_muon())
    with pytest.raises(TypeError, match="schedule_free_eval_params needs the state"):
        optim.contrib.schedule_free_eval_params(optim.adam(0.1).init(params), params)


def test_complex_parameters():
    """Rejected where the rule orders or clips values; elsewhere optax's complex results."""
    params = {"w": (1 + 2j) * jnp.ones((3, 4), jnp.complex64), "b": jnp.ones(3, jnp.complex64)}
    for tx, match in [
        (optim.contrib.adopt(0.1), "adopt with use_clipping=True"),
        (optim.contrib.prodigy(), "prodigy"),
        (optim.contrib.sophia(0.1), "sophia"),
    ]:
        with pytest.raises(TypeError, match=match + r".*params\['b'\] has dtype complex64"):
            tx.init(params)

    def loss(p):
        return sum(jnp.sum(jnp.abs(x - 3.0) ** 2) for x in jax.tree.leaves(p))

    for build in [
        lambda m: m.adopt(0.1, use_clipping=False),
        lambda m: m.muon(0.1),
        lambda m: m.schedule_free_adamw(0.1),
    ]:
        ours = descend(build(OURS), optim.apply_updates, 5, params, loss).params
        theirs = descend(build(THEIRS), optax.apply_updates, 5, params, loss).params
        assert relative_deviation(jax.tree.map(jnp.abs, ours), jax.tree.map(jnp.abs, theirs)) < 1e-5
        assert jax.tree.leaves(ours)[0].dtype == jnp.complex64


def test_schedule_free_eval_params_match_optax(params):
    def run(lib):
        tx = lib.schedule_free_adamw(0.05, warmup_steps=5, weight_decay=0.01)
        end = descend(tx, lib.apply_updates, 10, params)
        return lib.schedule_free_eval_params(end.state, end.params), end.params

    (ours, ours_y), (theirs, _) = run(OURS), run(THEIRS)
    assert relative_deviation(ours, theirs) < 1e-5
    assert relative_deviation(ours, ours_y) > 1e-3  # x differs from the gradient point y


def test_sophia_probes_come_from_the_key():
    """Another seed changes the trajectory: the parity table checks optax's key handling."""

    def run(seed):
        tx = sophia_noclip(OURS, float, seed)
        return descend(tx, optim.apply_updates, 30, loss=coupled_loss, extra=with_obj_fn).params

    assert relative_deviation(run(jax.random.PRNGKey(0)), run(jax.random.PRNGKey(1))) > 1e-4


def test_recreated_optimizers_reuse_the_compiled_step(params):
    """Float hyperparameters are leaves and masks/dimension numbers hash by value."""
    traces = []

    @jax.jit
    def step(tx, p):
        traces.append(1)
        g = jax.grad(convex_loss)(p)
        return tx.update(g, tx.init(p), p, obj_fn=convex_loss)[0]

    dims = {
        "dense": {"w": optim.contrib.MuonDimensionNumbers(), "b": None},
        "scale": None,
        "blocks": [optim.contrib.MuonDimensionNumbers(), (None,)],
    }
    for build in [
        lambda lr: optim.contrib.muon(lr, muon_weight_dimension_numbers=dims),
        lambda lr: optim.contrib.sophia(lr),
        lambda lr: optim.contrib.schedule_free_adamw(lr, warmup_steps=10),
    ]:
        traces.clear()
        step(build(0.01), params)
        step(build(0.02), params)
        assert len(traces) == 1


@pytest.mark.parametrize(
    "build",
    [
        lambda: optim.contrib.muon(1e-2),
        lambda: optim.contrib.prodigy(),
        lambda: optim.contrib.schedule_free_adamw(1e-2),
    ],
)
def test_bf16_parameters_keep_float32_state(build):
    params = nested_params(dtype=jnp.bfloat16)
    tx = build()
    state = tx.init(params)
    updates, state = jax.jit(tx.update)(jax.grad(convex_loss)(params), state, params)
    assert {x.dtype for x in jax.tree.leaves(updates)} == {jnp.dtype(jnp.bfloat16)}
    slots = [x for x in jax.tree.leaves(state) if jnp.ndim(x) > 0 and x.dtype != jnp.uint32]
    assert slots and {x.dtype for x in slots} == {jnp.dtype(jnp.float32)}
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(updates))
