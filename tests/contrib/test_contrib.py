"""optim.contrib against optax.contrib: same names, arguments, state fields and trajectories.

Every optimizer here exists in optax 0.2.8's contrib, which is the oracle. Each case runs 200
float32 steps on a nested tree (as tests/test_optax_parity.py), ours against optax, both given
the same Python-float hyperparameters: bound 1e-6 (the same arithmetic, only XLA's fusion may
differ). Cases that need their own bound say why next to it.
"""

from __future__ import annotations

import inspect
import types

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import PYTHON_FLOAT_BOUND, convex_loss, nested_params, relative_deviation, trajectory

import optim
import optim.contrib

STEPS = 200


OURS = types.SimpleNamespace(
    **{**vars(optim), **{n: getattr(optim.contrib, n) for n in optim.contrib.__all__}}
)


THEIRS = types.SimpleNamespace(
    **{
        **{n: getattr(optax, n) for n in dir(optax) if not n.startswith("_")},
        **{n: getattr(optax.contrib, n) for n in dir(optax.contrib) if not n.startswith("_")},
        # optax 0.2.8 does not export it from optax.contrib.
        "scale_by_sophia": optax.contrib._sophia.scale_by_sophia,
    }
)


MASK = {"dense": {"w": True, "b": False}, "scale": False, "blocks": [True, (False,)]}


def coupled_loss(params) -> jax.Array:
    """``convex_loss`` plus 0.005 (sum of all entries)^2: a Hessian with off-diagonal entries.

    On ``convex_loss`` alone the Hessian is diagonal, so Hutchinson's estimate z * (H z) is
    exact whatever the probes z; the coupling makes Sophia's trajectory depend on them (by
    about 5% per estimate, while keeping the estimate positive).
    """
    total = sum(jnp.sum(x) for x in jax.tree.leaves(params))
    return convex_loss(params) + 0.005 * total**2


def trajectory_with(tx, apply_updates, loss, extra, steps=STEPS, params=None):
    """``conftest.trajectory`` on ``loss``, passing ``extra(loss)`` to every ``update``."""
    params = nested_params() if params is None else params
    state = tx.init(params)

    @jax.jit
    def step(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p, **extra(loss))
        return (apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, state), length=steps)
    return params


def no_extra(loss):
    return {}


def with_obj_fn(loss):
    return {"obj_fn": loss}


def with_grad_fn(loss):
    return {"grad_fn": lambda p, i: jax.grad(loss)(p)}


def matrices():
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    return {
        "a": jax.random.normal(k[0], (4, 3)),
        "b": jax.random.normal(k[1], (3, 5)),
        "c": jax.random.normal(k[2], (6, 6)),
    }


def conv_tree():
    k = jax.random.split(jax.random.PRNGKey(2), 3)
    return {
        "conv": jax.random.normal(k[0], (2, 3, 4)),
        "w": jax.random.normal(k[1], (4, 3)),
        "b": jax.random.normal(k[2], (3,)),
    }


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
    return m.chain(
        m.scale_by_sophia(
            f(0.9),
            f(0.9),
            f(0.1),
            f(2.0),
            None,
            3,
            m.hutchinson_estimator_diag_hessian(seed),
        ),
        m.scale(f(-0.05)),
    )


def sam_sgd(m, f, **kw):
    return m.sam(m.sgd(f(0.05)), m.chain(m.normalize(), m.sgd(f(0.05))), **kw)


# (id, builder(lib, f) -> transformation, optax builder or None for the same one, run kwargs).
# run kwargs: "params" (a tree other than nested_params), "loss" and "extra" (see
# trajectory_with).
CASES = [
    ("adopt", lambda m, f: m.adopt(f(0.01), f(0.9), f(0.9999), f(1e-6)), None, {}),
    (
        "scale_by_adopt_nesterov_clip_fn",
        lambda m, f: m.chain(
            m.scale_by_adopt(
                f(0.8), f(0.99), f(1e-6), nesterov=True, clip_value_fn=lambda c: 0.5 + c**0.5
            ),
            m.scale(f(-0.02)),
        ),
        None,
        {},
    ),
    (
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
        None,
        {},
    ),
    (
        "scale_by_ademamix_schedules",
        lambda m, f: m.chain(
            m.scale_by_ademamix(
                f(0.8),
                f(0.99),
                lambda c: 0.999 - 0.1 / (1.0 + c),
                lambda c: 4.0 * jnp.minimum(c / 100.0, 1.0),
                f(1e-8),
                f(0.0),
            ),
            m.scale(f(-0.01)),
        ),
        None,
        {},
    ),
    (
        "schedule_free_sgd_warmup_decay",
        lambda m, f: m.schedule_free_sgd(f(0.05), 20, f(0.8), f(0.01), f(1.0)),
        None,
        {},
    ),
    (
        "schedule_free_adamw",
        lambda m, f: m.schedule_free_adamw(
            f(0.02), None, f(0.9), f(0.999), f(1e-8), f(0.01), f(2.0)
        ),
        None,
        {},
    ),
    (
        "schedule_free_adam_wrapper",
        lambda m, f: m.schedule_free(
            m.adam(f(0.02), f(0.0), f(0.99), f(1e-8)), f(0.02), f(0.95), f(1.5)
        ),
        None,
        {},
    ),
    (
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
        None,
        {},
    ),
    # scale_by_prodigy (ours only) followed by a sign flip is optax's prodigy; beta3=None
    # (sqrt(b2)) as by default.
    (
        "scale_by_prodigy",
        lambda m, f: m.chain(
            m.scale_by_prodigy(f(1.0), (f(0.9), f(0.999)), None, f(1e-8), f(1e-6), f(1.0), f(0.0)),
            m.scale(f(-1.0)),
        ),
        lambda m, f: m.prodigy(f(1.0), (f(0.9), f(0.999)), None, f(1e-8), f(1e-6), f(1.0), f(0.0)),
        {},
    ),
    ("muon", muon_full, None, {}),
    (
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
        None,
        {},
    ),
    (
        "muon_dimension_numbers_spectral_plain",
        lambda m, f: muon_full(
            m,
            f,
            muon_weight_dimension_numbers=conv_dims(m),
            preconditioning="spectral",
            nesterov=False,
            ns_steps=3,
        ),
        None,
        {"params": conv_tree()},
    ),
    # optax's scale_by_muon maps over weight_dimension_numbers, so its default (None) only
    # works on a single array; ours treats None as "every leaf is a matrix".
    (
        "scale_by_muon_schatten_dion",
        lambda m, f: m.chain(
            m.scale_by_muon("dion", 5, f(0.9), f(1e-8), preconditioning="schatten"),
            m.scale(f(-0.02)),
        ),
        lambda m, f: m.chain(
            m.scale_by_muon(
                optim.contrib._muon.NS_COEFFS_PRESETS["dion"],
                5,
                f(0.9),
                f(1e-8),
                preconditioning="schatten",
                weight_dimension_numbers={k: m.MuonDimensionNumbers() for k in matrices()},
            ),
            m.scale(f(-0.02)),
        ),
        {"params": matrices()},
    ),
    ("sophia", sophia_full, None, {"loss": coupled_loss, "extra": with_obj_fn}),
    (
        "scale_by_sophia_seed_noclip",
        lambda m, f: sophia_noclip(m, f, jax.random.PRNGKey(42)),
        None,
        {"loss": coupled_loss, "extra": with_obj_fn},
    ),
    ("sam", sam_sgd, None, {}),
    (
        "sam_adam_sync3_keep_state",
        lambda m, f: m.sam(
            m.adam(f(0.02), f(0.9), f(0.999), f(1e-8)),
            m.chain(m.normalize(), m.sgd(f(0.02), f(0.9))),
            3,
            reset_state=False,
        ),
        None,
        {},
    ),
    (
        "sam_opaque",
        lambda m, f: sam_sgd(m, f, sync_period=3, opaque_mode=True),
        None,
        {"extra": with_grad_fn},
    ),
]


def _run(tx, lib, run):
    apply = optim.apply_updates if lib is OURS else optax.apply_updates
    if "extra" in run:
        return trajectory_with(tx, apply, run.get("loss", convex_loss), run["extra"])
    return trajectory(tx, apply, steps=STEPS, params=run.get("params"))


@pytest.mark.parametrize(("name", "build", "build_theirs", "run"), CASES, ids=[c[0] for c in CASES])
def test_trajectory_equals_optax(name, build, build_theirs, run):
    build_theirs = build_theirs or build
    ours = _run(build(OURS, float), OURS, run)
    theirs = _run(build_theirs(THEIRS, float), THEIRS, run)
    assert relative_deviation(ours, theirs) < PYTHON_FLOAT_BOUND
    start = run.get("params", nested_params())
    assert relative_deviation(ours, start) > 1e-2  # the trajectory moved


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
    pairs = [
        (getattr(optim.contrib, n), getattr(THEIRS, n))
        for n in optim.contrib.__all__
        if n[0].islower() and hasattr(THEIRS, n)
    ]
    lowercase = [n for n in optim.contrib.__all__ if n[0].islower()]
    assert [n for n in lowercase if not hasattr(THEIRS, n)] == [
        "scale_by_dog",
        "scale_by_dowg",
        "scale_by_prodigy",
    ]
    # Ours only: scale_by_prodigy takes prodigy's arguments; optax.contrib has scale_by_dog and
    # scale_by_dowg in its _dog module without exporting them.
    pairs += [
        (optim.contrib.scale_by_prodigy, optax.contrib.prodigy),
        (optim.contrib.scale_by_dog, optax.contrib._dog.scale_by_dog),
        (optim.contrib.scale_by_dowg, optax.contrib._dog.scale_by_dowg),
    ]
    for ours, theirs in pairs:
        p_ours = inspect.signature(ours).parameters
        p_theirs = inspect.signature(theirs).parameters
        assert list(p_ours)[: len(p_theirs)] == list(p_theirs), ours.__name__
        for arg, param in p_theirs.items():
            assert p_ours[arg].kind == param.kind, (ours.__name__, arg)
            if type(param.default) in (int, float, bool, str, tuple, type(None)):
                assert p_ours[arg].default == param.default, (ours.__name__, arg)


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
        ours = trajectory_with(build(OURS), optim.apply_updates, loss, no_extra, 5, params)
        theirs = trajectory_with(build(THEIRS), optax.apply_updates, loss, no_extra, 5, params)
        assert relative_deviation(jax.tree.map(jnp.abs, ours), jax.tree.map(jnp.abs, theirs)) < 1e-5
        assert jax.tree.leaves(ours)[0].dtype == jnp.complex64


def test_schedule_free_eval_params_match_optax(params):
    def run(lib, apply):
        tx = lib.schedule_free_adamw(0.05, warmup_steps=5, weight_decay=0.01)
        state = tx.init(params)

        def step(carry, _):
            p, s = carry
            updates, s = tx.update(jax.grad(convex_loss)(p), s, p)
            return (apply(p, updates), s), None

        (p, state), _ = jax.lax.scan(step, (params, state), length=10)
        return lib.schedule_free_eval_params(state, p), p

    (ours, ours_y), (theirs, _) = run(OURS, optim.apply_updates), run(THEIRS, optax.apply_updates)
    assert relative_deviation(ours, theirs) < 1e-5
    assert relative_deviation(ours, ours_y) > 1e-3  # x differs from the gradient point y


def test_sophia_probes_come_from_the_key():
    """Another seed changes the trajectory: the parity above checks optax's key handling."""

    def run(seed):
        tx = sophia_noclip(OURS, float, seed)
        return trajectory_with(tx, optim.apply_updates, coupled_loss, with_obj_fn, steps=30)

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
