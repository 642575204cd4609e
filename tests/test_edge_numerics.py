"""Numerics at the edges, each against optax where optax misbehaves.

(a) float16 parameters, whose dtype cannot hold eps = 1e-8 (optax#1754).
(b) float32 gradients of 1e30 (the square overflows) and 1e-30 (the square underflows).
(c) all-zero gradients for 10,000 steps, every optimizer of the catalogue.
(d) step counters past 2**31 - 1, where they saturate.
(e) ``jax.grad`` through updates (hypergradients) where some gradients are exactly 0.

The catalogue is ``tests/test_catalogue.py``'s, so a new entry there is covered here too. Its
runs share one compiled 10,030-step scan per optimizer (``_catalogue_run``): 10,000 steps of
zero gradients, 9 steps of unit gradients, a spike of 1e30 and 20 more unit steps.
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_catalogue import CATALOGUE, EXTRAS, GRAD_VARIANTS

import optim
from optim._tree import INT32_MAX

# --- the shared catalogue run ---------------------------------------------------------------

LR = 1e-2
ZERO_STEPS = 10_000
SPIKE = 1e30
# Scale of the gradient at each step (see _linear_loss): exactly 0 for ZERO_STEPS steps.
SCALES = np.array([0.0] * ZERO_STEPS + [1.0] * 9 + [SPIKE] + [1.0] * 20, np.float32)
# A matrix (muon, adafactor and sm3 treat matrices apart) and a scalar: tiny, to compile fast.
PARAMS = {"w": jnp.array([[1.0, -2.0, 0.5], [0.25, 3.0, -0.75]]), "s": jnp.array(2.0)}
SIGNS = {"w": jnp.array([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]]), "s": jnp.array(1.0)}
# State fields that count steps (lbfgs's num_linesearch_steps and sam's steps_since_sync are
# int32 as well, but not step counters).
COUNTER_NAMES = ("count", "count_m2", "t", "step_count")


def _linear_loss(params, scale):
    """``scale * <SIGNS, params>``: its gradient is ``scale * SIGNS``, exactly 0 for scale 0."""
    pairs = zip(jax.tree.leaves(SIGNS), jax.tree.leaves(params), strict=True)
    return scale * sum(jnp.sum(s * p) for s, p in pairs)


def _step(tx, name, params, state, loss):
    """One update of ``tx`` on ``loss``, with the extra arguments ``name`` asks for."""
    value, grads = jax.value_and_grad(loss)(params)
    available = {"value": value, "grad": grads, "value_fn": loss, "obj_fn": loss}
    extras = {k: available[k] for k in EXTRAS.get(name, ())}
    updates, state = tx.update(grads, state, params, **extras)
    return optim.apply_updates(params, updates), state, updates


@functools.cache
def _compiled_run(name):
    """``CATALOGUE[name](LR)`` and a jitted scan of it over ``SCALES`` from a given state."""
    tx = CATALOGUE[name](LR)

    @jax.jit
    def run(state):
        def body(carry, scale):
            loss = functools.partial(_linear_loss, scale=scale)
            params, state, updates = _step(tx, name, *carry, loss)
            return (params, state), (params, updates)

        (_, state), (params, updates) = jax.lax.scan(body, (PARAMS, state), SCALES)
        return state, params, updates

    return tx, run


def _is_counter(path) -> bool:
    return getattr(path[-1], "name", None) in COUNTER_NAMES


def _counters(state) -> list:
    return [x for p, x in jax.tree_util.tree_leaves_with_path(state) if _is_counter(p)]


@functools.cache
def _catalogue_run(name, start_count=None):
    """(final state, params after each step, updates of each step), as NumPy trees, from the
    initial state, or from it with every step counter replaced by ``start_count``."""
    tx, run = _compiled_run(name)
    state = tx.init(PARAMS)
    if start_count is not None:
        state = jax.tree_util.tree_map_with_path(
            lambda p, x: jnp.asarray(start_count, jnp.int32) if _is_counter(p) else x, state
        )
    return jax.device_get(run(state))


def _all_finite(tree) -> bool:
    """Every float leaf finite (integer counters and PRNG keys are skipped)."""
    return all(
        bool(np.all(np.isfinite(x)))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.inexact)
    )


def _at_step(trajectory, i):
    return jax.tree.map(lambda x: x[i], trajectory)


def _default(factory, argument):
    return inspect.signature(factory).parameters[argument].default


# --- (a) float16 parameters -----------------------------------------------------------------

FP16_PARAMS = jnp.array([1.0, -2.0, 0.5, 3.0], jnp.float16)
# 0 (0/0 in optax), 1e-4 (its square, 1e-8, is 0 in float16), -2e-3, and an ordinary 1.
FP16_GRADS = jnp.array([0.0, 1e-4, -2e-3, 1.0], jnp.float16)


def _first_update(tx, params, grads):
    return jax.jit(lambda p, g: tx.update(g, tx.init(p), p)[0])(params, grads)


def _fp16_trajectory(tx, steps=100):
    """The float16 parameters after ``steps`` steps with the constant ``FP16_GRADS``."""

    def body(carry, _):
        params, state = carry
        updates, state = tx.update(FP16_GRADS, state, params)
        return (optim.apply_updates(params, updates), state), None

    run = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), length=steps)[0][0])
    return run(FP16_PARAMS)


def test_float16_params_with_an_eps_that_underflows():
    """optax#1754: eps = 1e-8 is 0 in float16, so optax's Adam on float16 parameters (moments
    in float16) divides 0 by 0 where the gradient is 0, and m by an underflowed v where
    |g| < 2.4e-4: its first update is [nan, -inf, inf, -1e-3] eagerly, [nan, -inf, 1e-3,
    -1e-3] under jit on CPU (XLA keeps some float16 intermediates in float32). Ours stores the
    moments in float32 and computes in float32; the float16 update is the float32 one rounded
    (by each transformation of the chain): [0, -1e-3, 1e-3, -1e-3].

    Float16 moments (``mu_dtype``/``nu_dtype``) are accepted: the arithmetic stays float32
    and only the storage rounds, so every step is finite; but a float16 second moment cannot
    hold an increment (1-b2) g^2 below 6e-8 (|g| < 7.7e-3 at b2 = 0.999) and stays 0 there,
    which makes those steps larger than Adam's (the user's trade: pick float32 or bfloat16
    moments for small gradients).
    """
    fp32 = _first_update(
        optim.adam(1e-3), FP16_PARAMS.astype(jnp.float32), FP16_GRADS.astype(jnp.float32)
    )
    ours = _first_update(optim.adam(1e-3), FP16_PARAMS, FP16_GRADS)
    assert ours.dtype == jnp.float16
    # Rounded to float16 twice: out of scale_by_adam and out of the learning-rate scaling.
    np.testing.assert_allclose(np.asarray(ours, np.float32), fp32, rtol=2**-10)
    np.testing.assert_array_equal(np.sign(ours), -np.sign(FP16_GRADS))
    adam_state = optim.adam(1e-3).init(FP16_PARAMS)[0]
    assert adam_state.mu.dtype == adam_state.nu.dtype == jnp.float32

    half = optim.adam(1e-3, mu_dtype=jnp.float16, nu_dtype=jnp.float16)
    assert half.init(FP16_PARAMS)[0].nu.dtype == jnp.float16
    np.testing.assert_array_equal(_first_update(half, FP16_PARAMS, FP16_GRADS), ours)
    for tx in (optim.adam(1e-3), half):
        moved = np.asarray(_fp16_trajectory(tx), np.float32) - np.asarray(FP16_PARAMS, np.float32)
        assert np.all(np.isfinite(moved))
        assert moved[0] == 0  # zero gradient: the coordinate never moves
        np.testing.assert_array_equal(np.sign(moved[1:]), -np.sign(FP16_GRADS[1:]))


# --- (b) gradients of 1e30 and 1e-30 in float32 -------------------------------------------

# b2 = 0.99 so that Adam forgets the spike within the 10,000 steps (see the test below).
SPIKE_ADAM = {"b1": 0.9, "b2": 0.99, "eps": 1e-8}
SPIKE_STEPS = 10_000
BOUND = 2.0**62  # optim._numerics.square_safe's bound for float32


def _spike_gradients() -> np.ndarray:
    """Columns: +1e30 and -1e30 once (step 10) and +-1 otherwise; 1e-30 always; 1 always."""
    grads = np.tile(np.array([1.0, -1.0, 1e-30, 1.0], np.float32), (SPIKE_STEPS, 1))
    grads[9, :2] = [SPIKE, -SPIKE]
    return grads


def _float64_adam(grads: np.ndarray, b1: float, b2: float, eps: float) -> np.ndarray:
    """scale_by_adam's updates in float64 (where 1e30 squared is representable), with the
    hyperparameters rounded to float32 as ours and optax's are here (b2^t in float32 and float64
    would part by 1e-8 t relative)."""
    b1, b2, eps = (float(np.float32(x)) for x in (b1, b2, eps))
    m = v = np.zeros(grads.shape[1])
    out = np.empty(grads.shape)
    for t, g in enumerate(grads.astype(np.float64), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out[t - 1] = m / (1 - b1**t) / (np.sqrt(v / (1 - b2**t)) + eps)
    return out


def _adam_updates_and_nu(lib, grads):
    tx = lib.scale_by_adam(**{k: np.float32(v) for k, v in SPIKE_ADAM.items()})

    def body(state, g):
        updates, state = tx.update(g, state)
        return state, (updates, state.nu)

    run = jax.jit(lambda gs: jax.lax.scan(body, tx.init(gs[0]), gs)[1])
    return jax.device_get(run(jnp.asarray(grads)))


def test_gradient_spike_does_not_freeze_adam():
    """A float32 gradient of 1e30 has a square (1e60) beyond float32. optax's second moment
    becomes inf and stays inf (b2 * inf = inf), so the coordinate's step m / inf is exactly 0
    from the spike on, for ever. A state that holds the EMA of g^2 in float32 cannot hold
    1e57 either; of the options measured (500,000-step runs, b2 = 0.999, spike at step 10):

    - keep the semantics and saturate v at float32's max: v stays finite, but m (1e29 is
      representable) is then out of scale with sqrt(v): steps of 8e9 instead of Adam's 0.48;
    - clip v after overflow, or compute the step with hypot: the spike step is right, the
      stored v is still inf and the coordinate frozen for good;
    - (chosen) bound |g| at 2^62 = 4.6e18 in *both* moments (``square_safe``): no square can
      overflow (v_hat <= 2^124), the state keeps optax's meaning below the bound (the parity
      tests pass unchanged), and the step is exactly Adam's on the bounded gradient: the
      spike step equals float64 Adam's to float32 precision (0.4844 at b2 = 0.999), and the
      coordinate comes back once v forgets the spike (to 1% of the unit step after 82,900
      steps at b2 = 0.999; float64 Adam on the unbounded 1e30 needs 135,000; optax never).

    Here b2 = 0.99, 10,000 steps: ours is float64 Adam on the bounded gradients and has
    recovered (after 8,481 steps; float64 Adam on the raw 1e30 needs 13,676); optax is frozen.
    The 1e-30 column (square 0 in float32, far below eps) gives optax's step, to rounding.
    """
    grads = _spike_gradients()
    theirs, their_nu = _adam_updates_and_nu(optax, grads)
    ours, our_nu = _adam_updates_and_nu(optim, grads)

    assert np.all(np.isinf(their_nu[9:, :2])) and np.all(theirs[9:, :2] == 0)
    assert np.all(np.isfinite(our_nu)) and np.all(np.isfinite(ours))

    bounded = _float64_adam(np.clip(grads, -BOUND, BOUND), **SPIKE_ADAM)
    # float32 against float64 arithmetic: 10,000 roundings of the EMAs, 2.5e-6 measured.
    np.testing.assert_allclose(ours, bounded, rtol=1e-5)
    unbounded = _float64_adam(grads, **SPIKE_ADAM)
    np.testing.assert_allclose(ours[9], unbounded[9], rtol=1e-6)  # the spike step itself
    np.testing.assert_allclose(ours[-1, :2], [1.0, -1.0], rtol=1e-2)  # recovered
    np.testing.assert_allclose(ours[:, 2], theirs[:, 2], rtol=1e-6)  # the 1e-30 column


SPIKE_BUILDERS = {
    "adam": lambda m: m.adam(LR),
    "rmsprop": lambda m: m.rmsprop(LR),
    "adagrad": lambda m: m.adagrad(LR),
    "adabelief": lambda m: m.adabelief(LR),
    "yogi": lambda m: m.yogi(LR),
    "adafactor": lambda m: m.adafactor(LR),
}


@pytest.mark.parametrize("name", sorted(SPIKE_BUILDERS))
def test_gradient_spike_second_moment_stays_finite_unlike_optax(name):
    """One step with a gradient of 1e30 puts inf into optax's second moment; ours stays finite
    (and so do the update and the parameters in both). Eager: a single step, no compile."""
    build = SPIKE_BUILDERS[name]
    params = jnp.array([1.0, -2.0])
    grads = jnp.array([SPIKE, 1.0])
    for lib, finite in ((optax, False), (optim, True)):
        tx = build(lib)
        updates, state = tx.update(grads, tx.init(params), params)
        assert np.all(np.isfinite(updates))
        assert _all_finite(state) is finite, f"{lib.__name__}: {state}"


# Optimizers that stop after a 1e30 spike by their own rule (finite, but the last step is 0).
STOPS_AFTER_A_SPIKE = {
    "cocob": "COCOB divides by the largest gradient magnitude seen (L_t = 1e30 from then on) "
    "and bets a fraction of its wealth: the steps after the spike are 1e-30 of their size",
    "momo": "MoMo's Polyak step size divides by ||d_t||^2, the averaged gradient that holds "
    "the spike: tau_t is 0 in float32 for the 20 steps after it",
}

# Known limitations (each a strict xfail: it fails loudly once fixed; then delete the entry).
KNOWN_LIMITS = {
    ("saturate", "madgrad"): "lambda_k = lr sqrt(k + 1) is 4.6e2 at the saturated count and "
    "multiplies the bounded g^2 (2^124): the sum of squares overflows float32",
}


def _catalogue_names(test: str) -> list:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_LIMITS[test, name]))
        if (test, name) in KNOWN_LIMITS
        else name
        for name in sorted(CATALOGUE)
    ]


@pytest.mark.parametrize("name", _catalogue_names("spike"))
def test_gradient_spike_keeps_every_optimizer_finite_and_moving(name):
    """After 10,000 zero steps, 9 unit steps, one step of 1e30 and 20 unit steps: the state,
    the parameters and every update are finite, and every coordinate still moves in the last
    step (optax's Adam family is frozen there: see the test above)."""
    state, params, updates = _catalogue_run(name)
    assert _all_finite(state), state
    assert _all_finite(params) and _all_finite(updates)
    if name in STOPS_AFTER_A_SPIKE:
        return
    for leaf in jax.tree.leaves(_at_step(updates, -1)):
        assert np.all(leaf != 0), f"{name} stopped moving after the spike: {leaf}"


# (lib, f, eps, eps_root) -> optimizer; f turns a float into what the library is given.
TINY_BUILDERS = {
    "adam": lambda m, f, eps, eps_root: m.adam(LR, f(0.9), f(0.999), f(eps), f(eps_root)),
    "rmsprop": lambda m, f, eps, eps_root: m.rmsprop(LR, f(0.9), f(eps)),  # eps inside the root
}
TINY_CASES = [
    ("adam", 0.0, 0.0),
    ("adam", 0.0, 1e-8),
    ("adam", 1e-8, 0.0),
    ("rmsprop", 0.0, 0.0),
    ("rmsprop", 1e-8, 0.0),
]


@pytest.mark.parametrize("name, eps, eps_root", TINY_CASES)
def test_tiny_and_zero_gradients_never_divide_by_zero(name, eps, eps_root):
    """Gradients [1e-30, 0, 1] for three steps: 1e-30 squared underflows to 0 in float32.
    With eps = eps_root = 0 optax divides m = 1e-31 by 0 (inf) and 0 by 0 (NaN); ours takes
    no step where the denominator is 0 (a gradient whose square underflows counts as 0). With
    either eps positive both agree (both given Python floats: the same float32 arithmetic,
    with 1 - b rounded from the Python number)."""
    build = TINY_BUILDERS[name]
    params = jnp.array([1.0, -2.0, 0.5])
    grads = jnp.array([1e-30, 0.0, 1.0])

    def three_steps(tx):  # jitted: eagerly, optax's np.float32 ** count is NumPy's float64
        def body(state, _):
            updates, state = tx.update(grads, state, params)
            return state, updates

        return np.asarray(jax.jit(lambda: jax.lax.scan(body, tx.init(params), length=3)[1])())

    theirs = three_steps(build(optax, float, eps, eps_root))
    ours = three_steps(build(optim, float, eps, eps_root))
    assert np.all(np.isfinite(ours))
    if eps == eps_root == 0:
        assert not np.any(np.isfinite(theirs[:, :2]))
        np.testing.assert_array_equal(ours[:, :2], 0.0)
        np.testing.assert_allclose(ours[:, 2], theirs[:, 2], rtol=1e-6)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


# --- (c) all-zero gradients for 10,000 steps --------------------------------------------------

DECOUPLED_WEIGHT_DECAY = ("adamaxw", "adamw", "lion", "nadamw", "sophia")
# The algorithms that move parameters without gradients, with what they do.
MOVES_WITHOUT_GRADIENTS = {
    **{name: "decoupled weight decay, theta (1 - lr wd)^t" for name in DECOUPLED_WEIGHT_DECAY},
    "fromage": "theta (1 + lr^2)^(-t/2): Fromage rescales the parameters every step",
    "yogi": "m_0 = v_0 = initial_accumulator_value (1e-6, as in optax): steps decay as b1^t",
    "noisy_sgd": "annealed gradient noise, N(0, eta / t^gamma)",
    "dpsgd": "the Gaussian mechanism's noise, N(0, (sigma C / B)^2) (C = sigma = B = 1 here)",
    "schedule_free_adamw": "float32 rounding of the interpolation y = (1-b1) z + b1 x",
    "schedule_free_sgd": "float32 rounding of the interpolation y = (1-b1) z + b1 x",
}


def _yogi_drift() -> float:
    """How far Yogi moves every coordinate in ZERO_STEPS zero-gradient steps (float64)."""
    b1, b2, eps = (_default(optim.yogi, k) for k in ("b1", "b2", "eps"))
    v0 = _default(optim.scale_by_yogi, "initial_accumulator_value")
    t = np.arange(1, ZERO_STEPS + 1, dtype=np.float64)
    m_hat = b1**t * v0 / (1 - b1**t)  # v stays v0: Yogi's v moves by (1-b2) g^2 = 0
    return float(np.sum(LR * m_hat / (np.sqrt(v0 / (1 - b2**t)) + eps)))


def _noise_std() -> float:
    """Standard deviation of noisy_sgd's total displacement after ZERO_STEPS steps."""
    eta, gamma = _default(optim.noisy_sgd, "eta"), _default(optim.noisy_sgd, "gamma")
    t = np.arange(1, ZERO_STEPS + 1, dtype=np.float64)
    return float(LR * np.sqrt(np.sum(eta / t**gamma)))


def _dpsgd_noise_std() -> float:
    """Standard deviation of dpsgd's total displacement after ZERO_STEPS steps: a sum of
    ZERO_STEPS draws of lr N(0, (sigma C / B)^2), with test_catalogue's C = sigma = B = 1."""
    return LR * np.sqrt(ZERO_STEPS)


def _public(name):
    """A public factory: at the top level, or in optim.contrib (sophia)."""
    return getattr(optim, name) if hasattr(optim, name) else getattr(optim.contrib, name)


def _expected_after_zero_gradients(name, p0):
    if name in DECOUPLED_WEIGHT_DECAY:
        weight_decay = _default(_public(name), "weight_decay")
        return p0 * (1 - LR * weight_decay) ** ZERO_STEPS
    if name == "fromage":
        return p0 * (1 + LR**2) ** (-ZERO_STEPS / 2)
    if name == "yogi":
        return p0 - _yogi_drift()
    return p0


@pytest.mark.parametrize("name", _catalogue_names("zero"))
def test_zero_gradients_for_10000_steps(name):
    """10,000 steps of exactly zero gradients (jitted scan): the parameters stay finite, and
    bit-for-bit unchanged unless the algorithm moves them without gradients
    (``MOVES_WITHOUT_GRADIENTS`` says how; those are checked against that rule). optax agrees
    everywhere except prodigy, where it is NaN (see the next test)."""
    state, trajectory, _ = _catalogue_run(name)
    params = _at_step(trajectory, ZERO_STEPS - 1)
    assert _all_finite(params) and _all_finite(state)
    for p, p0 in zip(jax.tree.leaves(params), jax.tree.leaves(PARAMS), strict=True):
        p0 = np.asarray(p0, np.float64)
        if name not in MOVES_WITHOUT_GRADIENTS:
            np.testing.assert_array_equal(p, p0)
        elif name == "noisy_sgd":
            assert np.all(np.abs(p - p0) < 6 * _noise_std())  # deterministic key; 6 sigma
        elif name == "dpsgd":
            assert np.all(np.abs(p - p0) < 6 * _dpsgd_noise_std())  # as noisy_sgd
        elif name.startswith("schedule_free"):
            # 10,000 interpolations, each rounding to within half an ulp of |p| <= 3.
            np.testing.assert_allclose(p, p0, rtol=0, atol=ZERO_STEPS * 2.0**-23)
        else:
            # Each step adds an update of ~1e-6 |p| to p and rounds the sum to float32: half an
            # ulp, 2**-24 relative. The roundings of a near-constant increment do not cancel,
            # so the bound is their sum (measured: 1.8e-4 for the weight decays, 4.8e-4 for
            # Fromage).
            expected = _expected_after_zero_gradients(name, p0)
            np.testing.assert_allclose(p, expected, rtol=ZERO_STEPS * 2.0**-24)


def test_prodigy_without_gradients_unlike_optax():
    """Prodigy's distance estimate divides by the l1 norm of its sum of past gradients, 0
    while every gradient was 0: optax's estimate is 0/0 = NaN after one step, and so is every
    parameter from then on. Ours keeps the estimate until a gradient arrives."""
    params = jnp.array([1.0, -2.0])
    tx = optim.contrib.prodigy(LR)
    updates, state = tx.update(jnp.zeros_like(params), tx.init(params), params)
    assert float(state.estim_lr) == float(tx.init(params).estim_lr)
    assert bool(jnp.all(jnp.isfinite(updates)))


# --- (d) step counters past 2**31 - 1 -----------------------------------------------------


@pytest.mark.parametrize("name", _catalogue_names("saturate"))
def test_step_counters_saturate(name):
    """The catalogue run started with every step counter at 2**31 - 6: the counters stop at
    2**31 - 1 (int32's max; they never wrap to negative; RMSProp's counts only with
    bias_correction and stays put), everything stays finite, and parameters the algorithm
    leaves alone without gradients stay bit-for-bit unchanged."""
    start = INT32_MAX - 5
    state, trajectory, updates = _catalogue_run(name, start)
    counters = _counters(state)
    assert all(int(c) in (INT32_MAX, start) for c in counters), counters
    if counters and name != "rmsprop":
        assert any(int(c) == INT32_MAX for c in counters), counters
    assert _all_finite(state) and _all_finite(trajectory) and _all_finite(updates)
    if name not in MOVES_WITHOUT_GRADIENTS:
        zero_phase_end = _at_step(trajectory, ZERO_STEPS - 1)
        for p, p0 in zip(jax.tree.leaves(zero_phase_end), jax.tree.leaves(PARAMS), strict=True):
            np.testing.assert_array_equal(p, p0)


def test_adafactor_at_the_saturated_count_unlike_optax():
    """Adafactor's decay 1 - (t+1)^-0.8: optax adds the 1 in int32, which wraps to -2**31 at
    the saturated count, and (-2**31)^-0.8 is NaN: its second moment, and every step after,
    is NaN. Ours adds it in float32 (decay 1 - 3.5e-8, finite)."""
    params = jnp.ones((2, 3))
    for lib, finite in ((optax, False), (optim, True)):
        tx = lib.adafactor(LR)
        state = jax.tree.map(
            lambda x: jnp.asarray(INT32_MAX, jnp.int32) if x.dtype == jnp.int32 else x,
            tx.init(params),
        )
        updates, state = tx.update(jnp.ones_like(params), state, params)
        assert _all_finite(state) is finite and bool(jnp.all(jnp.isfinite(updates))) is finite


# (name, factory(lib), value once the schedule is over)
SCHEDULES = [
    ("polynomial", lambda m: m.polynomial_schedule(1.0, 0.1, 2.0, 1000, 50), 0.1),
    ("linear", lambda m: m.linear_schedule(1.0, 0.1, 1000), 0.1),
    ("cosine_decay", lambda m: m.cosine_decay_schedule(1.0, 1000, alpha=0.1), 0.1),
    ("exponential_decay", lambda m: m.exponential_decay(1.0, 100, 0.5), 0.0),
    ("exponential_decay_end", lambda m: m.exponential_decay(1.0, 100, 0.5, end_value=0.01), 0.01),
    (
        "piecewise_constant",
        lambda m: m.piecewise_constant_schedule(1.0, {100: 0.5, 1000: 0.1}),
        0.05,
    ),
    (
        "piecewise_interpolate",
        lambda m: m.piecewise_interpolate_schedule("cosine", 1.0, {100: 0.5, 1000: 0.1}),
        0.05,
    ),
    (
        "warmup_cosine_decay",
        lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 100, 1000, end_value=0.05),
        0.05,
    ),
    (
        "warmup_exponential_decay",
        lambda m: m.warmup_exponential_decay_schedule(0.0, 1.0, 100, 200, 0.5, end_value=0.02),
        0.02,
    ),
    ("warmup_constant", lambda m: m.warmup_constant_schedule(0.0, 1.0, 100), 1.0),
    ("linear_onecycle", lambda m: m.linear_onecycle_schedule(1000, 1.0), 1.0 / 25 / 1e4),
    ("cosine_onecycle", lambda m: m.cosine_onecycle_schedule(1000, 1.0), 1.0 / 25 / 1e4),
    (
        "sgdr",
        lambda m: m.sgdr_schedule(
            [dict(init_value=1.0, peak_value=1.0, warmup_steps=10, decay_steps=100, end_value=0.1)]
            * 3
        ),
        0.1,
    ),
    (
        "join",
        lambda m: m.join_schedules(
            [m.constant_schedule(1.0), m.linear_schedule(1.0, 0.2, 100)], [50]
        ),
        0.2,
    ),
]


@pytest.mark.parametrize("name, build, end", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_schedules_at_the_saturated_count(name, build, end):
    """A saturated counter evaluates the schedule at 2**31 - 1: every decaying schedule is at
    its end value there (to a rounding; 0 for an exponential decay without end_value, where
    init * rate^(t/T) underflows), and optax's too (to 1e-6: its linear schedule ends at
    0.09999996, ours at 0.1). Eager: two values, nothing worth compiling."""
    del name
    counts = [jnp.asarray(INT32_MAX - 1, jnp.int32), jnp.asarray(INT32_MAX, jnp.int32)]
    ours = np.array([build(optim)(c) for c in counts])
    theirs = np.array([build(optax)(c) for c in counts])
    np.testing.assert_allclose(ours, np.float32(end), rtol=1e-7)
    np.testing.assert_allclose(theirs, np.float32(end), rtol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_adam_bias_correction_and_schedule_after_saturation(nesterov):
    """Adam with a warmup-cosine learning rate, its counter set to 2**31 - 3, four steps: the
    counter saturates, the learning rate is the schedule's end value (1e-3), and the bias
    corrections 1 - b^t are exactly 1 in float32 (b^t underflows), so each update is
    -1e-3 * m / (sqrt(v) + eps) from the new state's moments (Nadam: with b1 m + (1-b1) g),
    to a rounding. optax saturates the same way: equal to 1e-6."""
    f32 = np.float32
    params = jnp.array([1.0, -2.0, 0.5])
    grads = jnp.array([0.3, -1.0, 2.0])

    def run(lib):
        schedule = lib.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 100, end_value=1e-3)
        tx = lib.adam(schedule, f32(0.9), f32(0.999), f32(1e-8), nesterov=nesterov)
        state = jax.tree.map(
            lambda x: jnp.asarray(INT32_MAX - 3, jnp.int32) if x.dtype == jnp.int32 else x,
            tx.init(params),
        )
        out = []
        for _ in range(4):
            updates, state = tx.update(grads, state, params)
            out.append((updates, state))
        return out

    counts = []
    for (ours, state), (theirs, _) in zip(run(optim), run(optax), strict=True):
        adam = state[0]
        counts.append(int(adam.count))
        m = f32(0.9) * adam.mu + f32(0.1) * grads if nesterov else adam.mu
        expected = -f32(1e-3) * m / (jnp.sqrt(adam.nu) + f32(1e-8))
        np.testing.assert_allclose(ours, expected, rtol=3e-7)  # one or two roundings apart
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert counts == [INT32_MAX - 2, INT32_MAX - 1, INT32_MAX, INT32_MAX]


# --- (e) hypergradients through updates with zero gradients --------------------------------

HYPER_STEPS = 5
TARGET = jnp.array([3.0, -1.0, 0.5, 2.0])
# The last two coordinates start at the target: gradient exactly 0 (not structurally: the
# Hessian is 2 there, so a NaN in the backward pass reaches the result).
HYPER_START = jnp.array([1.0, 1.0, 0.5, 2.0])


def _loss_after_adam_steps(lib, lr, b1, eps, moving_only=False):
    """sum((p - target)^2) after HYPER_STEPS Adam steps (eps_root = 0, optax's default)."""
    keep = slice(0, 2) if moving_only else slice(None)
    target, params = TARGET[keep], HYPER_START[keep]

    def loss(p):
        return jnp.sum((p - target) ** 2)

    tx = lib.adam(lr, b1, np.float32(0.999), eps)

    def body(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return (lib.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(body, (params, tx.init(params)), length=HYPER_STEPS)
    return loss(params)


def _hypergradients(lib, moving_only=False):
    """d loss / d (learning rate, b1, eps) at (0.1, 0.9, 1e-8)."""
    hyper = (jnp.float32(0.1), jnp.float32(0.9), jnp.float32(1e-8))
    grad = jax.grad(lambda h: _loss_after_adam_steps(lib, *h, moving_only=moving_only), argnums=0)
    return np.array(jax.jit(grad)(hyper))


def test_hypergradients_through_adam_with_zero_gradients():
    """d loss(after 5 Adam steps) / d (lr, b1, eps) where two coordinates have gradient 0:
    sqrt'(0) = inf meets a zero cotangent in optax (NaN); ours takes the derivative of the
    square root at 0 as 0 (``safe_sqrt``), which is right: the coordinates never move, so the
    hypergradients equal those of the problem without them (to rounding: 1e-6), and those
    equal optax's (same float32 arithmetic: 1e-5)."""
    assert np.all(np.isnan(_hypergradients(optax)))
    ours = _hypergradients(optim)
    assert np.all(np.isfinite(ours)) and np.all(ours != 0)
    np.testing.assert_allclose(ours, _hypergradients(optim, moving_only=True), rtol=1e-6)
    np.testing.assert_allclose(ours, _hypergradients(optax, moving_only=True), rtol=1e-5)


# Every optimizer at its defaults (eps_root = 0 where optax's default is 0: the catalogue adds
# eps_root for test_catalogue's grad check, which this test shows is no longer needed).
WITH_EPS_ROOT = ("adam", "adamw", "amsgrad", "lamb", "nadam", "nadamw", "radam")
DEFAULTS = {**CATALOGUE, **{n: getattr(optim, n) for n in WITH_EPS_ROOT}, **GRAD_VARIANTS}
# One optimizer per code path that gave NaN here before the fix (Adam's square root is
# test_hypergradients_through_adam_with_zero_gradients's); the others, ademamix, amsgrad, lamb,
# muon, nadam(w), optimistic_adam_v2 and prodigy among them (NaN before, as optax's still
# are), run with the slow tests.
FAST = {"adafactor", "adopt", "radam", "schedule_free_adamw"}


@pytest.mark.parametrize(
    "name",
    [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in sorted(DEFAULTS)],
)
def test_grad_through_updates_with_zero_gradients(name):
    """d loss(after 3 updates) / d learning rate is finite for every optimizer at its
    defaults when some gradients are exactly 0 (the Adam family, RAdam's rectification,
    Adafactor's 1e-30 floor and Prodigy used to give NaN, as optax's do)."""
    make = DEFAULTS[name]
    target = jax.tree.map(lambda p, s: jnp.where(s > 0, p, p + 2.0), PARAMS, SIGNS)

    def loss(params):  # zero gradient wherever SIGNS > 0: params start at the target there
        pairs = zip(jax.tree.leaves(params), jax.tree.leaves(target), strict=True)
        return sum(jnp.sum((p - t) ** 2) for p, t in pairs)

    def final_loss(lr):
        tx = make(lr)

        def body(carry, _):
            return _step(tx, name, *carry, loss)[:2], None

        (params, _), _ = jax.lax.scan(body, (PARAMS, tx.init(PARAMS)), length=3)
        return loss(params)

    grad = jax.jit(jax.grad(final_loss))(jnp.float32(LR))
    assert np.isfinite(float(grad)) and float(grad) != 0, f"{name}: d loss / d lr = {grad}"
