"""The optimizers of optim/optimizers/ _sign, _trust_ratio, _sgd, _optimistic and _polyak against
optax over one table: trajectories (real and complex), signatures, state fields, bad input.

The comparisons of tests/test_optax_parity.py (see its docstring), over 200 float32 steps of
``convex_loss``: ours against optax, both given the same Python-float hyperparameters; bound
1e-6 relative (the arithmetic is the same, XLA's fusion choices may move last bits).

Sign-based methods (Lion, signSGD, Signum, Rprop) are discontinuous where their argument
crosses 0: their hyperparameters are chosen so that 200 steps stay on the descending side of
the minimum, where no rounding difference can flip a sign. Rprop's sign-flip logic is tested
exactly on a hand-made gradient sequence instead.

Gradient noise: ours draws the same random numbers as optax, bit for bit (the same key splits,
one sample key per leaf in tree order, the same sampler and dtype), so the noisy trajectories
meet the same deterministic bounds; no statistical tolerance is needed.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import PYTHON_FLOAT_BOUND, convex_loss, nested_params, relative_deviation, trajectory

import optim

# The names this file compares with optax.
NAMES = (
    "ScaleByLionState",
    "ScaleByRpropState",
    "lion",
    "rprop",
    "scale_by_lion",
    "scale_by_rprop",
    "scale_by_sign",
    "sign_sgd",
    "signum",
    "ScaleByTrustRatioState",
    "fromage",
    "lamb",
    "lars",
    "scale_by_trust_ratio",
    "AddNoiseState",
    "add_noise",
    "noisy_sgd",
    "ScaleByOptimisticGradientState",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "scale_by_optimistic_gradient",
    "polyak_sgd",
    "scale_by_polyak",
)


NEW = {name: getattr(optim, name) for name in NAMES}


OURS = optim


STEPS = 200


MASK = {"dense": {"w": True, "b": False}, "scale": False, "blocks": [True, (False,)]}


def _matrices(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


# (id, builder(lib, f) -> transformation); f turns a float into what the library is given
# (here always ``float``: Python numbers, as users write them).
CASES = [
    ("lion", lambda m, f: m.lion(f(0.01), f(0.9), f(0.99), weight_decay=f(0.01))),
    (
        "lion_mask",
        lambda m, f: m.lion(f(0.01), f(0.8), f(0.95), weight_decay=f(0.3), mask=MASK),
    ),
    (
        "scale_by_lion_smooth",
        lambda m, f: m.chain(
            m.scale_by_lion(f(0.8), f(0.95), mode="smooth", smooth_beta=f(0.3)),
            m.scale(f(-0.05)),
        ),
    ),
    (
        "scale_by_lion_refined",  # continuous, so it may reach the minimum: |c| < 1 is used
        lambda m, f: m.chain(
            m.scale_by_lion(f(0.9), f(0.99), mode="refined", smooth_beta=f(1.0)),
            m.scale(f(-0.05)),
        ),
    ),
    ("sign_sgd", lambda m, f: m.sign_sgd(f(0.01))),  # = chain(scale_by_sign, learning rate)
    ("signum", lambda m, f: m.signum(f(0.01), f(0.9))),
    ("rprop", lambda m, f: m.rprop(f(0.002), f(0.3), f(1.02), f(1e-5), f(0.05))),
    (
        "scale_by_trust_ratio_options",
        lambda m, f: m.chain(m.scale_by_trust_ratio(f(2.0), f(0.5), f(0.1)), m.scale(f(-0.01))),
    ),
    ("lamb", lambda m, f: m.lamb(f(0.003), f(0.9), f(0.999), f(1e-6), f(0.0), f(0.01))),
    (
        "lamb_mask",
        lambda m, f: m.lamb(f(0.003), f(0.8), f(0.99), f(1e-6), f(1e-8), f(0.1), mask=_matrices),
    ),
    ("lars", lambda m, f: m.lars(f(0.1), f(0.01), True, f(0.001), f(0.0), True, f(0.9))),
    (
        "lars_masks",
        lambda m, f: m.lars(
            f(0.3),
            weight_decay=f(0.01),
            weight_decay_mask=MASK,
            trust_coefficient=f(0.002),
            eps=f(1e-6),
            trust_ratio_mask=_matrices,
            momentum=f(0.8),
            nesterov=True,
        ),
    ),
    ("fromage", lambda m, f: m.fromage(f(0.005), f(1e-6))),
    ("fromage_schedule", lambda m, f: m.fromage(lambda c: 0.005 / (1.0 + 0.01 * c), f(1e-6))),
    # = chain(add_noise, learning rate); the int-seed form of key is checked further down.
    ("noisy_sgd", lambda m, f: m.noisy_sgd(f(0.01), f(0.3), f(0.2), jax.random.key(3))),
    (  # = chain(scale_by_optimistic_gradient, learning rate)
        "optimistic_gradient_descent",
        lambda m, f: m.optimistic_gradient_descent(f(0.01), f(1.0), f(0.5)),
    ),
    (
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
]


# Polyak steps need the loss: trajectories with value= (see _polyak_trajectory). polyak_sgd is
# chain(sgd(scaling), scale_by_polyak), so these cover the building block too.
POLYAK_CASES = [
    # The Polyak ratio (f - f*) / |g|^2 is below max_learning_rate for 3 steps, then capped.
    ("polyak_sgd", lambda m, f: m.polyak_sgd(f(1.0), f(1.0), f(150.0), f(0.0))),
    (
        # sps+ with f* = 300 above the minimum (195): the scaled step overshoots below f* on
        # step 2, after which the clipped gap (0) stops it.
        "polyak_sgd_plus_scaled",
        lambda m, f: m.polyak_sgd(f(1.0), f(0.7), f(300.0), f(1e-3), variant="sps+"),
    ),
]


def _polyak_trajectory(tx, apply_updates, steps=STEPS, params=None, loss=convex_loss):
    """``conftest.trajectory``, passing the loss to ``update`` as ``value=``."""
    params = nested_params() if params is None else params
    state = tx.init(params)

    def step(carry, _):
        p, s = carry
        value, g = jax.value_and_grad(loss)(p)
        g = jax.tree.map(jnp.conj, g)  # the descent direction for complex parameters
        u, s = tx.update(g, s, p, value=value)
        return (apply_updates(p, u), s), None

    (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))((params, state))
    return params


def _check_parity(build, run):
    ours = run(build(OURS, float), optim.apply_updates)
    theirs = run(build(optax, float), optax.apply_updates)
    deviation = relative_deviation(ours, theirs)
    assert deviation < PYTHON_FLOAT_BOUND, deviation
    # The trajectory moved: the comparison is not between two untouched trees.
    assert relative_deviation(ours, nested_params()) > 1e-3


@pytest.mark.parametrize(("name", "build"), CASES, ids=[c[0] for c in CASES])
def test_trajectory_equals_optax(name, build):
    _check_parity(build, lambda tx, apply: trajectory(tx, apply, steps=STEPS))


@pytest.mark.parametrize(("name", "build"), POLYAK_CASES, ids=[c[0] for c in POLYAK_CASES])
def test_polyak_trajectory_equals_optax(name, build):
    _check_parity(build, _polyak_trajectory)


def _complex_params():
    return jax.tree.map(lambda a, b: a + 1j * b, nested_params(0), nested_params(1))


def _complex_loss(params):
    """0.5 |z - (10 + 5i)|^2 + 0.001 |z|^4 summed; descent uses conj of jax.grad."""
    return sum(
        jnp.sum(0.5 * jnp.abs(z - (10 + 5j)) ** 2 + 0.001 * jnp.abs(z) ** 4)
        for z in jax.tree.leaves(params)
    )


# One optimizer per complex code path: sign of a complex number (lion), trust ratio with and
# without decay (lamb, fromage), complex normal noise, optimistic extrapolation, Polyak's norm.
COMPLEX = ["lion", "lamb", "fromage", "noisy_sgd", "optimistic_adam_v2", "polyak_sgd"]


def _parts(tree):
    """Real and imaginary parts side by side (relative_deviation compares real arrays)."""
    return jax.tree.map(lambda z: jnp.stack([z.real, z.imag]), tree)


@pytest.mark.parametrize("name", COMPLEX)
def test_complex_trajectory_equals_optax(name):
    build = dict(CASES + POLYAK_CASES)[name]

    def run(tx, apply_updates):
        return _polyak_trajectory(tx, apply_updates, params=_complex_params(), loss=_complex_loss)

    ours = run(build(OURS, float), optim.apply_updates)
    theirs = run(build(optax, float), optax.apply_updates)
    assert all(jnp.iscomplexobj(x) for x in jax.tree.leaves(ours))
    assert relative_deviation(_parts(ours), _parts(theirs)) < PYTHON_FLOAT_BOUND
    assert relative_deviation(_parts(ours), _parts(_complex_params())) > 1e-3


def test_rprop_rejects_complex_as_optax_does():
    params = _complex_params()
    with pytest.raises(TypeError, match="complex"):
        OURS.rprop(0.1).init(params)
    with pytest.raises(ValueError, match="complex"):  # optax fails in jnp.clip
        tx = optax.rprop(0.1)
        tx.update(params, tx.init(params), params)


def test_polyak_sgd_in_fit_gets_the_loss(params):
    tx = OURS.polyak_sgd(1.0, 1.0, 150.0)
    result = optim.fit(lambda p, batch: convex_loss(p), params, tx, jnp.zeros((1,)), steps=20)
    expected = _polyak_trajectory(tx, optim.apply_updates, steps=20)
    assert relative_deviation(result.params, expected) < PYTHON_FLOAT_BOUND


def test_signatures_match_optax():
    """Same argument names, order, kinds and defaults as optax; our extras are keyword-only."""
    shared = [n for n in NEW if n[0].islower()]
    assert len(shared) == 19  # optimistic_adam included
    for name in shared:
        p_ours = inspect.signature(NEW[name]).parameters
        p_theirs = inspect.signature(getattr(optax, name)).parameters
        assert list(p_ours)[: len(p_theirs)] == list(p_theirs), name
        for arg, param in p_theirs.items():
            assert p_ours[arg].kind == param.kind, (name, arg)
            assert p_ours[arg].default == param.default, (name, arg)
        extras = list(p_ours)[len(p_theirs) :]
        assert all(p_ours[a].kind == inspect.Parameter.KEYWORD_ONLY for a in extras), name


def _field_names(state):
    """Nested NamedTuple field names, the way optax.tree.get finds them."""
    if hasattr(state, "_fields"):
        return {f: _field_names(getattr(state, f)) for f in state._fields}
    if isinstance(state, tuple):
        return tuple(_field_names(s) for s in state)
    return None


@pytest.mark.parametrize(
    "build",
    [c[1] for c in CASES + POLYAK_CASES],
    ids=[c[0] for c in CASES + POLYAK_CASES],
)
def test_state_field_names_match_optax(build, params):
    ours, theirs = build(OURS, float).init(params), build(optax, float).init(params)
    assert _field_names(ours) == _field_names(theirs)


def test_optax_tree_get_finds_our_state(params):
    state = OURS.lion(1e-3).init(params)
    assert optax.tree.get(state, "mu")["dense"]["w"].shape == (4, 3)
    state = OURS.rprop(1e-3).init(params)
    assert float(optax.tree.get(state, "step_sizes")["scale"]) == pytest.approx(1e-3)


def test_bfloat16_params_keep_float32_state():
    """One optimizer per module: bf16 updates out, float32 slots in the state."""
    params = nested_params(dtype=jnp.bfloat16)
    grads = jax.tree.map(lambda p: p - 10, params)  # bf16, descending (eager grad is slow)
    builders = dict(CASES + POLYAK_CASES)
    for name in ["lion", "rprop", "lamb", "noisy_sgd", "optimistic_adam_v2", "polyak_sgd"]:
        tx = builders[name](OURS, float)
        state = tx.init(params)
        updates, state = jax.jit(tx.update)(grads, state, params, value=jnp.float32(300.0))
        assert all(u.dtype == jnp.bfloat16 for u in jax.tree.leaves(updates)), name
        floats = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert all(x.dtype == jnp.float32 for x in floats), name


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: OURS.scale_by_lion(b1=1.5), ValueError, "b1"),
        (lambda: OURS.scale_by_lion(mode="soft"), ValueError, "mode"),
        (lambda: OURS.lion(-0.1), ValueError, "learning_rate"),
        (lambda: OURS.lion(0.1, weight_decay=-1.0), ValueError, "weight_decay"),
        (lambda: OURS.signum(0.1, beta=2.0), ValueError, "beta"),
        (lambda: OURS.rprop(0.1, eta_minus=1.5), ValueError, "eta_minus"),
        (lambda: OURS.rprop(0.1, eta_plus=0.5), ValueError, "eta_plus"),
        (lambda: OURS.scale_by_rprop(0.1, max_step_size=-1.0), ValueError, "max_step_size"),
        (lambda: OURS.scale_by_trust_ratio(min_norm=-1.0), ValueError, "min_norm"),
        (lambda: OURS.lars(0.1, momentum=float("nan")), ValueError, "momentum"),
        (lambda: OURS.lamb(0.1, b2=1.0), ValueError, "b2"),
        (lambda: OURS.fromage("fast"), TypeError, "learning_rate"),
        (lambda: OURS.add_noise(-0.1, 0.55, 0), ValueError, "eta"),
        (lambda: OURS.noisy_sgd(0.1, gamma=-1.0, key=0), ValueError, "gamma"),
        (lambda: OURS.scale_by_optimistic_gradient(alpha=float("inf")), ValueError, "alpha"),
        (lambda: OURS.optimistic_adam_v2(0.1, beta=None), TypeError, "beta"),
        (lambda: OURS.scale_by_polyak(variant="sps++"), ValueError, "variant"),
        (lambda: OURS.polyak_sgd(max_learning_rate=-1.0), ValueError, "max_learning_rate"),
        (lambda: OURS.polyak_sgd(scaling=-1.0), ValueError, "scaling"),
    ],
)
def test_bad_hyperparameters_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()
