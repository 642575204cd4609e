"""Every building block and alias against optax: same names, arguments, and trajectories.

100 float32 steps of ``convex_loss`` on a nested tree, ours against optax, both given the same
Python-float hyperparameters (what users write). A decay keeps its complement ``1 - b`` rounded
from the Python value, as optax computes it, and bias corrections are compiled as optax's, so
the arithmetic is the same: bound 1e-6 relative, room for XLA's fusion choices only. The last
part compares every optimizer optax also has: the first update bit for bit, eager and jitted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from conftest import PYTHON_FLOAT_BOUND, relative_deviation, trajectory

import optim


def _matrices(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


MASK = {"dense": {"w": True, "b": False}, "scale": False, "blocks": [True, (False,)]}

# (id, builder(lib, f) -> transformation); f turns a float into what the library is given
# (``float`` here). Centered RMSProp divides by sqrt(v - m^2 + eps), a cancellation that
# amplifies any rounding difference (it needed 1e-4 while 1 - decay was computed from the
# float32 decay); with optax's complement it agrees as the others do.
CASES = [
    ("identity", lambda m, f: m.chain(m.identity(), m.scale(f(-0.01)))),
    ("set_to_zero", lambda m, f: m.set_to_zero()),
    ("scale", lambda m, f: m.scale(f(-0.03))),
    ("scale_by_learning_rate", lambda m, f: m.scale_by_learning_rate(f(0.03))),
    (
        "scale_by_learning_rate_noflip",
        lambda m, f: m.chain(m.scale_by_learning_rate(f(0.03), flip_sign=False), m.scale(f(-1.0))),
    ),
    ("scale_by_schedule", lambda m, f: m.scale_by_schedule(lambda c: -0.05 / (1.0 + c))),
    ("trace", lambda m, f: m.chain(m.trace(f(0.9)), m.scale(f(-0.01)))),
    ("trace_nesterov", lambda m, f: m.chain(m.trace(f(0.9), nesterov=True), m.scale(f(-0.01)))),
    ("ema", lambda m, f: m.chain(m.ema(f(0.9)), m.scale(f(-0.05)))),
    ("ema_nodebias", lambda m, f: m.chain(m.ema(f(0.8), debias=False), m.scale(f(-0.05)))),
    (
        "scale_by_adam",
        lambda m, f: m.chain(m.scale_by_adam(f(0.8), f(0.99), f(1e-8)), m.scale(f(-0.01))),
    ),
    ("scale_by_rms", lambda m, f: m.chain(m.scale_by_rms(f(0.95), f(1e-8)), m.scale(f(-0.01)))),
    (
        "scale_by_rms_options",
        lambda m, f: m.chain(
            m.scale_by_rms(f(0.95), f(1e-6), f(0.1), eps_in_sqrt=False, bias_correction=True),
            m.scale(f(-0.01)),
        ),
    ),
    ("scale_by_rss", lambda m, f: m.chain(m.scale_by_rss(f(0.2), f(1e-6)), m.scale(f(-0.1)))),
    (
        "scale_by_stddev",
        lambda m, f: m.chain(m.scale_by_stddev(f(0.9), f(1e-6), f(1.0)), m.scale(f(-0.01))),
    ),
    (
        "scale_by_stddev_bias",
        lambda m, f: m.chain(
            m.scale_by_stddev(f(0.9), f(1e-3), f(1.0), bias_correction=True), m.scale(f(-0.01))
        ),
    ),
    ("add_decayed_weights", lambda m, f: m.chain(m.add_decayed_weights(f(0.1)), m.scale(f(-0.01)))),
    (
        "add_decayed_weights_mask",
        lambda m, f: m.chain(m.add_decayed_weights(f(0.5), MASK), m.scale(f(-0.01))),
    ),
    ("clip", lambda m, f: m.chain(m.clip(f(0.5)), m.scale(f(-0.01)))),
    ("clip_by_global_norm", lambda m, f: m.chain(m.clip_by_global_norm(f(1.0)), m.scale(f(-0.1)))),
    ("sgd", lambda m, f: m.sgd(f(0.01))),
    ("sgd_momentum", lambda m, f: m.sgd(f(0.01), f(0.9))),
    ("sgd_nesterov", lambda m, f: m.sgd(f(0.01), f(0.9), nesterov=True)),
    ("adam", lambda m, f: m.adam(f(0.01), f(0.9), f(0.999), f(1e-8))),
    ("adam_options", lambda m, f: m.adam(f(0.02), f(0.8), f(0.99), f(1e-6), f(1e-10))),
    ("adamw", lambda m, f: m.adamw(f(0.01), f(0.9), f(0.999), f(1e-8), weight_decay=f(0.1))),
    (
        "adamw_mask_tree",
        lambda m, f: m.adamw(f(0.01), f(0.9), f(0.99), f(1e-8), weight_decay=f(0.5), mask=MASK),
    ),
    (
        "adamw_mask_fn",
        lambda m, f: m.adamw(
            f(0.01), f(0.9), f(0.99), f(1e-8), weight_decay=f(0.5), mask=_matrices
        ),
    ),
    ("nadam", lambda m, f: m.nadam(f(0.01), f(0.9), f(0.999), f(1e-8))),
    ("nadamw", lambda m, f: m.nadamw(f(0.01), f(0.9), f(0.999), f(1e-8), weight_decay=f(0.1))),
    ("rmsprop", lambda m, f: m.rmsprop(f(0.003), f(0.9), f(1e-8))),
    ("rmsprop_centered", lambda m, f: m.rmsprop(f(0.003), f(0.9), f(1e-8), f(1.0), centered=True)),
    (
        "rmsprop_momentum",
        lambda m, f: m.rmsprop(f(0.003), f(0.9), f(1e-8), momentum=f(0.9), nesterov=True),
    ),
    (
        "rmsprop_options",
        lambda m, f: m.rmsprop(f(0.003), f(0.95), f(1e-6), eps_in_sqrt=False, bias_correction=True),
    ),
    ("adagrad", lambda m, f: m.adagrad(f(0.1), f(0.1), f(1e-7))),
    (
        "chain_clip_adamw",
        lambda m, f: m.chain(
            m.clip_by_global_norm(f(1.0)),
            m.adamw(f(0.01), f(0.9), f(0.999), f(1e-8), weight_decay=f(0.1)),
        ),
    ),
]


@pytest.mark.parametrize(("name", "build"), CASES, ids=[c[0] for c in CASES])
def test_trajectory_equals_optax(name, build):
    ours = trajectory(build(optim, float), optim.apply_updates)
    theirs = trajectory(build(optax, float), optax.apply_updates)
    assert relative_deviation(ours, theirs) < PYTHON_FLOAT_BOUND
    # The trajectory moved: the comparison is not between two untouched trees.
    start = trajectory(optim.identity(), optim.apply_updates, steps=1)
    if name != "set_to_zero":
        assert relative_deviation(ours, start) > 1e-3


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


# --- every optimizer optax also has, with Python-float hyperparameters -----------------------
#
# Least squares on two leaves (a vector and a matrix), full batch: well conditioned, and every
# optimizer still moves after 200 steps. Hyperparameters are the defaults (Python floats, as
# users write them) with learning rate 1e-2, or the learning-rate-free defaults.

_KEYS = jax.random.split(jax.random.PRNGKey(0), 6)
_A, _Y = jax.random.normal(_KEYS[0], (20, 10)), jax.random.normal(_KEYS[1], (20,))
_B, _C = jax.random.normal(_KEYS[2], (12, 6)), jax.random.normal(_KEYS[3], (12, 4))
_P0 = {"w": jax.random.normal(_KEYS[4], (10,)), "m": jax.random.normal(_KEYS[5], (6, 4))}
_LR = 1e-2


def _least_squares(p):
    return 0.5 * jnp.mean((_A @ p["w"] - _Y) ** 2) + 0.5 * jnp.mean((_B @ p["m"] - _C) ** 2)


def _extra_args(name, p):
    """What an optimizer's update needs besides gradients and parameters (as optax's)."""
    if name == "lbfgs":
        return dict(
            value=_least_squares(p), grad=jax.grad(_least_squares)(p), value_fn=_least_squares
        )
    if name in ("momo", "momo_adam"):
        return dict(value=_least_squares(p))
    if name == "sophia":
        return dict(obj_fn=_least_squares)
    return {}


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
    import inspect

    import optax.contrib

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


def _factory(lib, qualified: str):
    name = qualified.removeprefix("contrib.")
    if name in _SPECIAL:
        return _SPECIAL[name](lib)
    module = lib.contrib if qualified.startswith("contrib.") else lib
    factory = getattr(module, name)
    return factory() if name in _LEARNING_RATE_FREE else factory(_LR)


# The bound on the 200-step deviation of every shared optimizer; the first update is bitwise.
# Measured on CPU (XLA's fusion on another backend may move last bits: the bound is not a
# claim about GPUs).


def _first_update(tx, name, jit):
    state = tx.init(_P0)

    def update(p, s):
        return tx.update(jax.grad(_least_squares)(p), s, p, **_extra_args(name, p))[0]

    return (jax.jit(update) if jit else update)(_P0, state)


def _trajectory(tx, name, apply_updates, steps=200):
    @jax.jit
    def run(params, state):
        def body(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(_least_squares)(p), s, p, **_extra_args(name, p))
            return (apply_updates(p, u), s), None

        return jax.lax.scan(body, (params, state), length=steps)[0][0]

    return run(_P0, tx.init(_P0))


def _bitwise(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        x.dtype == y.dtype and bool(jnp.array_equal(x, y))
        for x, y in zip(leaves_a, leaves_b, strict=True)
    )


SHARED = _shared_optimizers()


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
    name = qualified.split(".")[-1]
    ours, theirs = _factory(optim, qualified), _factory(optax, qualified)
    for jit in (False, True):
        assert _bitwise(_first_update(ours, name, jit), _first_update(theirs, name, jit)), (
            f"{qualified}: first update differs from optax's ({'jit' if jit else 'eager'})"
        )
    reference = _trajectory(theirs, name, optax.apply_updates)
    ours_trajectory = _trajectory(ours, name, optim.apply_updates)
    assert relative_deviation(ours_trajectory, reference) <= PYTHON_FLOAT_BOUND
    assert relative_deviation(reference, _P0) > 1e-3  # it moved


@pytest.mark.slow
@pytest.mark.parametrize("qualified", SHARED)
def test_shared_optimizer_eager_trajectory_matches_optax(qualified):
    """200 steps run op by op (no jit), as a notebook would."""
    name = qualified.split(".")[-1]

    def run(tx, apply_updates):
        p, s = _P0, tx.init(_P0)
        for _ in range(200):
            u, s = tx.update(jax.grad(_least_squares)(p), s, p, **_extra_args(name, p))
            p = apply_updates(p, u)
        return p

    ours = run(_factory(optim, qualified), optim.apply_updates)
    theirs = run(_factory(optax, qualified), optax.apply_updates)
    assert relative_deviation(ours, theirs) <= PYTHON_FLOAT_BOUND
