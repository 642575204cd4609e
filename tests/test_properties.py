"""Property-based tests: every optimizer of the catalogue on random pytrees (hypothesis).

For each optimizer and each drawn problem (params and grads of one random tree, see
``tests/pytree_strategies.py``: nested dicts, lists, tuples, NamedTuples and dataclasses;
``None`` leaves; shapes (), (0,), (1,), vectors, matrices, 3-d arrays; float16, bfloat16,
float32, float64 and complex64; magnitudes from tiny to large):

1. Layout. The updates have the structure of the params (``None`` where a param is ``None``),
   their shapes and dtypes; the new state has the structure, shapes and dtypes of the one
   ``init`` made (so it can be a ``lax.scan`` carry); ``apply_updates`` gives params of the
   old structure, shapes and dtypes.
2. ``jit`` equals no ``jit``: ``init`` bitwise; ``update`` (updates and state) within
   ``JIT_ULPS`` units in the last place of each leaf's dtype times the leaf's largest
   magnitude (see ``assert_close`` and the tables below it for the exceptions).
3. Zero gradients from a fresh state leave the params bitwise unchanged, except for the
   optimizers of ``ZERO_GRADIENT_MOVES`` (the term of the update rule that moves them;
   ``test_zero_gradient_movers_move`` checks that they do) and ``ZERO_GRADIENT_ROUNDING``.
4. Finite input gives finite updates, state and params; zero gradients too.
5. Complex leaves: the optimizers of ``REJECTS_COMPLEX`` raise ``ValueError`` or
   ``TypeError`` (``test_complex_rejected_naming_the_leaf``: naming a complex leaf's path);
   the problem is then checked with the complex leaves replaced by their real parts. The
   others satisfy 1-4 on complex leaves.

float64 leaves need x64: an example with one runs inside ``jax.enable_x64(True)`` (the
context manager in jax 0.10; ``jax.experimental.enable_x64`` no longer exists), the others
with x64 off. The optimizer is built inside the context, as a user in x64 mode would.

The optimizers: every public factory of ``optim.__all__`` and ``optim.contrib.__all__`` that
takes a ``learning_rate`` (or ``max_learning_rate``), so a new one is covered automatically
(``scale_by_*`` building blocks and ``NOT_OPTIMIZERS`` aside), called with ``LEARNING_RATE``
when the learning rate has no default and with all defaults otherwise, unless
``ALIAS_ARGUMENTS`` says otherwise; plus ``COMBINATORS`` (sam, ``with_state_dtype``,
wrappers). Those that need extra arguments of
``update`` (lbfgs: ``value``, ``grad``, ``value_fn``; polyak_sgd: ``value``; sophia:
``obj_fn``) get them from a quadratic whose gradient at the params is the drawn gradient;
every optimizer gets all of them (unknown extras are ignored, DESIGN.md). None is excluded.

Cost: every new tree structure compiles, for every optimizer (about 0.1 s of CPU per leaf
per optimizer, and as much again for the eager path's first run of each operation on a new
shape and dtype). Profiles (environment variable ``HYPOTHESIS_PROFILE``, default "ci"):
"ci" runs the two small fixed problems of ``pytree_strategies`` (``kitchen_sink``: every
container, the required shapes, every dtype but float64; ``x64_sink``) and ``CI_EXAMPLES``
random tree of up to ``MAX_LEAVES["ci"]`` leaves whose (shape, dtype) pairs are those of the
fixed problems, derandomized with a seed per optimizer (each optimizer meets another tree;
runs are reproducible) and without shrinking (each shrink step recompiles; the failing
example is printed as drawn). "thorough" draws ``THOROUGH_EXAMPLES`` trees of up to
``MAX_LEAVES["thorough"]`` leaves of any shape and dtype per optimizer, new ones each run, and
shrinks; it runs under ``pytest -m slow`` or with ``HYPOTHESIS_PROFILE=thorough``. The
examples run per optimizer are counted, checked against the profile and printed at the end
of the session.
"""

from __future__ import annotations

import collections
import inspect
import os
import zlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import dpsgd_on_one_example
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from pytree_strategies import ALL_LEAVES, Problem, kitchen_sink, problems, to_jax, x64_sink

import optim
from optim._tree import keystr

PyTree = Any

LEARNING_RATE = 1e-2

# --- hypothesis profiles ------------------------------------------------------------------------

# Explicit examples for every optimizer in both profiles, then random ones. "ci" is sized to
# the file's budget (about 90 s on two cores): three examples per optimizer cost about 2 s of
# CPU each, mostly compilation.
KITCHEN_SINKS = (kitchen_sink(), x64_sink())
CI_EXAMPLES = 1
THOROUGH_EXAMPLES = 25
MAX_LEAVES = {"ci": 2, "thorough": 8}
LEAVES = {
    "ci": tuple(dict.fromkeys(spec for p in KITCHEN_SINKS for spec in p.leaf_specs)),
    "thorough": ALL_LEAVES,
}
# HealthCheck.too_slow times data generation, which on a loaded 2-core CI machine can exceed
# its one-second budget through no fault of the strategy (a few small NumPy arrays); the time
# that matters, compilation, is spent in the test body.
_SUPPRESSED = [HealthCheck.too_slow]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=CI_EXAMPLES,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=_SUPPRESSED,
)
settings.register_profile(
    "thorough",
    database=None,
    deadline=None,
    max_examples=THOROUGH_EXAMPLES,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=_SUPPRESSED,
    print_blob=True,
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in MAX_LEAVES:
    PROFILE = "ci"  # a profile meant for another test suite: ours keep their budget

# --- the catalogue ------------------------------------------------------------------------------

# Public functions with a learning_rate argument that are not gradient transformations.
NOT_OPTIMIZERS = {"hypergradient_descent": "a training routine (optim.sweep), not an optimizer"}

# Aliases whose default arguments are not the case to test.
ALIAS_ARGUMENTS: dict[str, Callable[[], Any]] = {
    # Factored second moments for matrices of the sizes drawn here (by default only dimensions
    # >= 128 are factored): the path that differs from per-element statistics.
    "adafactor": lambda: optim.adafactor(LEARNING_RATE, min_dim_size_to_factor=2),
    "noisy_sgd": lambda: optim.noisy_sgd(LEARNING_RATE, key=jax.random.PRNGKey(0)),
    # dpsgd's update takes per-example gradients (a batch axis on every leaf), and its seed has
    # no default: the drawn gradients as those of a batch of one example (conftest.BatchOfOne).
    "dpsgd": lambda: dpsgd_on_one_example(LEARNING_RATE),
    # The base optimizer without momentum, as schedule_free's docstring asks.
    "schedule_free": lambda: optim.contrib.schedule_free(optim.sgd(LEARNING_RATE), LEARNING_RATE),
}


def _matrices(params: PyTree) -> PyTree:
    """Mask: True for leaves of two or more dimensions (as weight-decay masks do)."""
    return jax.tree.map(lambda x: x.ndim >= 2, params)


def _matrix_labels(params: PyTree) -> PyTree:
    return jax.tree.map(lambda x: "matrix" if x.ndim >= 2 else "other", params)


def _with_state_dtype(name: str, state_dtype: str) -> Callable[[], Any]:
    """``optim.<name>`` with its moments stored as ``state_dtype``; int8 in blocks of 4 with no
    minimum size, so the small leaves drawn here are quantized (by default leaves under 4096
    elements keep float32 moments)."""
    factory = getattr(optim, name)
    momentum = {"momentum": 0.9} if name == "sgd" else {}  # sgd has no state without momentum
    storage = {"block_size": 4, "min_size": 0} if state_dtype == "int8" else {}
    return lambda: optim.with_state_dtype(
        factory(LEARNING_RATE, **momentum), state_dtype, **storage
    )


COMBINATORS: dict[str, Callable[[], Any]] = {
    # The paper's ascent: a step of rho along the normalized gradient.
    "sam": lambda: optim.contrib.sam(
        optim.sgd(LEARNING_RATE), optim.chain(optim.contrib.normalize(), optim.sgd(0.05))
    ),
    "chain(clip_by_global_norm, adamw)": lambda: optim.chain(
        optim.clip_by_global_norm(1.0), optim.adamw(LEARNING_RATE)
    ),
    "masked(adamw)": lambda: optim.masked(optim.adamw(LEARNING_RATE), _matrices),
    "multi_transform(adam, sgd)": lambda: optim.multi_transform(
        {"matrix": optim.adam(LEARNING_RATE), "other": optim.sgd(LEARNING_RATE)},
        _matrix_labels,
    ),
    "MultiSteps(adam)": lambda: optim.MultiSteps(optim.adam(LEARNING_RATE), 2),
    "lookahead(sgd)": lambda: optim.lookahead(optim.sgd(LEARNING_RATE, momentum=0.9), 2, 0.5),
    "apply_if_finite(adam)": lambda: optim.apply_if_finite(optim.adam(LEARNING_RATE), 3),
    "flatten(adam)": lambda: optim.flatten(optim.adam(LEARNING_RATE)),
    "inject_hyperparams(adamw)": lambda: optim.inject_hyperparams(optim.adamw)(
        learning_rate=LEARNING_RATE
    ),
    # Mechanic's learned scale around SGD (its name alone: test_catalogue's entry).
    "mechanize": lambda: optim.contrib.mechanize(optim.sgd(LEARNING_RATE)),
    "kahan_summation(adam)": lambda: optim.kahan_summation(optim.adam(LEARNING_RATE)),
    "stochastic_rounding(adam)": lambda: optim.stochastic_rounding(optim.adam(LEARNING_RATE)),
    **{
        f"with_state_dtype({name})[{state_dtype}]": _with_state_dtype(name, state_dtype)
        for name in ("adam", "adamw", "amsgrad", "adabelief", "lion", "rmsprop", "signum", "sgd")
        for state_dtype in ("int8", "bfloat16")
    },
}

# Params are LookaheadParams(fast, slow); the gradient is taken at the fast ones.
LOOKAHEAD = {"lookahead(sgd)"}
# Updates in at least float32, which apply_updates adds exactly (their docstrings).
WIDE_UPDATES = {"kahan_summation(adam)", "stochastic_rounding(adam)"}


# The public factories, top level and contrib (optax's contrib optimizers are there only).
PUBLIC = {
    **{name: getattr(optim.contrib, name) for name in optim.contrib.__all__},
    **{name: getattr(optim, name) for name in optim.__all__},
}


def catalogue_aliases() -> list[str]:
    """Public factories (``PUBLIC``) that take a learning rate, minus building blocks."""
    names = []
    for name in sorted(PUBLIC):
        factory = PUBLIC[name]  # a function, or a functools.partial (nadamw)
        if not callable(factory) or inspect.isclass(factory) or name.startswith("scale_by_"):
            continue
        if name in NOT_OPTIMIZERS:
            continue
        try:
            parameters = inspect.signature(factory).parameters
        except (TypeError, ValueError):  # a type alias (optim.Schedule), not a factory
            continue
        if {"learning_rate", "max_learning_rate"} & set(parameters):
            names.append(name)
    return names


def _alias_maker(name: str) -> Callable[[], Any]:
    if name in ALIAS_ARGUMENTS:
        return ALIAS_ARGUMENTS[name]
    factory = PUBLIC[name]
    first = next(iter(inspect.signature(factory).parameters.values()))
    if first.default is inspect.Parameter.empty:
        return lambda: factory(LEARNING_RATE)
    return factory


CASES: dict[str, Callable[[], Any]] = {
    **{name: _alias_maker(name) for name in catalogue_aliases()},
    **COMBINATORS,
}

# --- what each optimizer's update rule says -------------------------------------------------

_WEIGHT_DECAY = "decoupled weight decay: the update has a term -lr * weight_decay * theta"
# Optimizers whose update moves the params when the gradient is zero (from a fresh state).
ZERO_GRADIENT_MOVES = {
    "adamw": _WEIGHT_DECAY,
    "adamaxw": _WEIGHT_DECAY,
    "nadamw": _WEIGHT_DECAY,
    "lion": _WEIGHT_DECAY + " (default weight_decay=1e-3)",
    "soap": _WEIGHT_DECAY + " (default weight_decay=0.01)",
    "sophia": _WEIGHT_DECAY + " (default weight_decay=1e-4)",
    "fromage": "theta shrinks by 1/sqrt(1 + lr^2) every step (add_decayed_weights(mult - 1))",
    "noisy_sgd": "it adds Gaussian noise to the gradient",
    "dpsgd": "it adds Gaussian noise (sigma C / B) to the clipped gradients",
    "yogi": "its first moment starts at initial_accumulator_value=1e-6, as optax's",
    "chain(clip_by_global_norm, adamw)": _WEIGHT_DECAY,
    "masked(adamw)": _WEIGHT_DECAY + " (on the matrices)",
    "inject_hyperparams(adamw)": _WEIGHT_DECAY,
    "with_state_dtype(adamw)[int8]": _WEIGHT_DECAY,
    "with_state_dtype(adamw)[bfloat16]": _WEIGHT_DECAY,
    "with_state_dtype(lion)[int8]": _WEIGHT_DECAY,
    "with_state_dtype(lion)[bfloat16]": _WEIGHT_DECAY,
}

# Optimizers whose zero-gradient step is zero in exact arithmetic but a difference of
# param-sized terms in floating point: the params stay within JIT_ULPS float32 ulps of their
# size (the coefficients are float32 hyperparameters).
_INTERPOLATION = (
    "the step is b1 x + (1 - b1) z - y with the average x recomputed from y and z (as optax): "
    "zero in exact arithmetic at the first step, rounded to an ulp of y"
)
ZERO_GRADIENT_ROUNDING = {
    "madgrad": "the step is (1 - c) z + c x - x (as optax): zero in exact arithmetic at the first "
    "step, rounded to an ulp of x",
    "schedule_free": _INTERPOLATION,
    "schedule_free_adamw": _INTERPOLATION,
    "schedule_free_sgd": _INTERPOLATION,
}

# Optimizers that reject complex parameters, and why.
_CANNOT_ORDER = "complex numbers have no order (optax raises too: jnp.clip refuses them)"
_QUANTIZED = "8-bit and bfloat16 codes store real moments only (use state_dtype=None)"
REJECTS_COMPLEX = {
    "adadelta": "optax squares g, not |g|^2, on complex g (its tests leave complex Adadelta "
    "out); optim rejects rather than return that",
    "adopt": "use_clipping=True (the default) clips the normalized gradient: " + _CANNOT_ORDER,
    "cocob": "it takes maxima of per-coordinate magnitudes (optax squares without conj)",
    "dadapt_adamw": "it squares gradients and its estimate d is a maximum (optax: no conj)",
    "kron": "its preconditioner is fitted to real Gaussian probes",
    "madgrad": "its denominator is a cube root of squared gradients (optax: no conj)",
    "mechanize": "its inner product h is clipped (optax: no conj)",
    "momo": "its step size compares inner products and clips (optax: no conj)",
    "momo_adam": "its step size compares inner products and clips (optax: no conj)",
    "simplified_ademamix": "its second moment squares g, not |g|^2, as optax's",
    "prodigy": "its distance estimate d is a maximum of inner products; optax does not check",
    "rprop": "it clips step sizes chosen by the signs of successive gradients: " + _CANNOT_ORDER,
    "shampoo": "its Kronecker factors and their inverse roots are real symmetric matrices",
    "sm3": "its cover-set accumulators take maxima (optax raises too)",
    "sophia": "it clips the preconditioned step: " + _CANNOT_ORDER,
    "stochastic_rounding(adam)": "stochastic rounding to a complex dtype is not defined",
    **{name: _QUANTIZED for name in COMBINATORS if name.startswith("with_state_dtype(")},
}

# Eager and jitted updates may differ in rounding: XLA rewrites x / sqrt(y) as x * rsqrt(y) and
# fuses elementwise chains (eager runs one operation at a time). Bound: this many units in the
# last place of the leaf's dtype times the leaf's largest magnitude (per leaf, as conftest's
# relative_deviation: a difference of terms cancels to values far below their size). Measured
# over the examples of both profiles: at most 3 ulps.
JIT_ULPS = 4
JIT_ULPS_FOR = {
    # Five Newton-Schulz iterations X <- aX + b(XX^T)X + c(XX^T)^2 X, each multiplying a
    # rounding difference of the (eager or fused) matrix products by up to a = 3.4445 at small
    # singular values. Measured: up to 17 ulps.
    "muon": 64,
    # The zoom line search evaluates value_fn (a sum: eager and fused reductions round
    # differently) at step sizes interpolated from earlier values, over several iterations;
    # its state keeps the last value. Measured: up to 9 ulps.
    "lbfgs": 64,
    # optax's lerp form n <- g^2 + b2 (n - g^2): the difference cancels where n is near g^2, and
    # eager and fused (FMA-contracted) code round it differently. Measured: 6 ulps (float64).
    "simplified_ademamix": 16,
}
# Optimizers whose init computes (a reduction over the params), so a jitted init may round
# differently; the others' init must equal the eager one exactly.
INIT_COMPUTES = {"dog": "the initial distance estimate r_eps (1 + ||x_0||) is a norm"}
# Updates that are a difference of param-sized terms (new point minus old): their rounding is
# in ulps of the params, not of the (much smaller) update.
UPDATES_AT_PARAM_SCALE = {
    **ZERO_GRADIENT_ROUNDING,
    "lookahead(sgd)": "the slow update alpha (fast + u - slow) is a difference of params",
    "sam": "the outer step starts from the cached params: cache - params + u",
    "kahan_summation(adam)": "the update is the rounded new params minus the old ones",
    "stochastic_rounding(adam)": "the update is the rounded new params minus the old ones",
}
# State leaves that are differences of update-sized terms, compared at the scale of the
# updates: a function of (state, updates) giving the tree of those scales.
STATE_AT_UPDATE_SCALE = {
    # compensation = y - (new params - old params): the rounding residue of the update y.
    "kahan_summation(adam)": lambda state, updates: state._replace(compensation=updates),
}

# --- comparing trees ----------------------------------------------------------------------------


def _is_none(x: Any) -> bool:
    return x is None


def _dtype(x: Any) -> Any:
    return x.dtype if hasattr(x, "dtype") else np.result_type(x)  # PRNG keys: key<fry>


def layout(tree: PyTree) -> tuple[Any, list[Any]]:
    """The structure (``None`` counted as a leaf) and each leaf's shape and dtype."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_none)
    return treedef, [None if x is None else (np.shape(x), _dtype(x)) for x in leaves]


def _paths(tree: PyTree) -> list[str]:
    return [keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_none)[0]]


def assert_same_layout(got: PyTree, want: PyTree, what: str) -> None:
    got_def, got_leaves = layout(got)
    want_def, want_leaves = layout(want)
    assert got_def == want_def, f"{what}: structure {got_def} instead of {want_def}"
    for path, g, w in zip(_paths(want), got_leaves, want_leaves, strict=True):
        assert g == w, f"{what}{path}: (shape, dtype) {g} instead of {w}"


def _numeric_leaves(tree: PyTree) -> list[tuple[str, np.ndarray]]:
    """(path, value as NumPy) for every array leaf (PRNG keys as their key data)."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        out.append((keystr(path), np.asarray(leaf)))
    return out


def _max_abs(tree: PyTree) -> list[float]:
    """Per array leaf: the largest finite magnitude (0 for an empty leaf)."""
    out = []
    for _, x in _numeric_leaves(tree):
        magnitudes = np.abs(x.astype(np.complex128))
        magnitudes = magnitudes[np.isfinite(magnitudes)]
        out.append(float(magnitudes.max()) if magnitudes.size else 0.0)
    return out


def _at_hyperparameter_precision(tree: PyTree) -> list[float]:
    """Per array leaf: its largest finite magnitude in ulps of float32 expressed in the leaf's
    own ulps (hyperparameters are float32 scalars, so a float64 leaf that meets two of them
    summing to one, b and 1 - b each rounded from the Python float, keeps their float32
    rounding)."""
    out = []
    for (_, x), size in zip(_numeric_leaves(tree), _max_abs(tree), strict=True):
        leaf_eps = float(jnp.finfo(x.dtype).eps) if jnp.issubdtype(x.dtype, jnp.inexact) else 1.0
        out.append(size * max(1.0, float(np.finfo(np.float32).eps / leaf_eps)))
    return out


def assert_close(
    want: PyTree, got: PyTree, what: str, ulps: int, floors: list[float] | None = None
) -> None:
    """Same layout; integers and booleans equal; non-finite values (an initial ``inf``) equal;
    finite floats within ``ulps`` units in the last place of their dtype times the leaf's
    largest finite magnitude, or ``floors[i]`` for array leaf ``i`` when that is larger."""
    assert_same_layout(got, want, what)
    floors = floors or [0.0] * len(_numeric_leaves(want))
    pairs = zip(_numeric_leaves(want), _numeric_leaves(got), _max_abs(want), floors, strict=True)
    for (path, a), (_, b), size, floor in pairs:
        if not jnp.issubdtype(a.dtype, jnp.inexact):
            np.testing.assert_array_equal(b, a, err_msg=f"{what}{path}")
            continue
        scale = max(size, floor)
        bound = ulps * float(jnp.finfo(a.dtype).eps) * scale
        a, b = a.astype(np.complex128), b.astype(np.complex128)
        finite = np.isfinite(a)
        np.testing.assert_array_equal(b[~finite], a[~finite], err_msg=f"{what}{path}")
        error = float(np.max(np.abs(a[finite] - b[finite]), initial=0.0))
        assert error <= bound, (
            f"{what}{path}: {error:.3g} apart, more than {ulps} ulps x {scale:.3g} = {bound:.3g}"
        )


def assert_finite(tree: PyTree, what: str) -> None:
    for path, x in _numeric_leaves(tree):
        if np.issubdtype(x.dtype, np.inexact):
            bad = ~np.isfinite(x.astype(np.complex128))
            assert not bad.any(), f"{what}{path} has {bad.sum()} non-finite values: {x[bad][:3]}"


# --- one step of an optimizer ---------------------------------------------------------------


def _upcast(x: jax.Array) -> jax.Array:
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _quadratic(params: PyTree, grads: PyTree) -> Callable[..., jax.Array]:
    """:math:`f(p) = \\tfrac12 \\sum |p - c|^2` with ``c = params - grads``: its gradient at
    ``params`` is ``grads`` (up to the rounding of ``c``)."""
    center = jax.tree.map(lambda p, g: _upcast(p) - _upcast(g), params, grads)

    def value_fn(p: PyTree, *args: Any, **kwargs: Any) -> jax.Array:
        del args, kwargs
        leaves = zip(jax.tree.leaves(p), jax.tree.leaves(center), strict=True)
        return sum((jnp.sum(jnp.abs(_upcast(x) - c) ** 2) for x, c in leaves), jnp.float32(0))

    return value_fn


def step(tx: Any, params: PyTree, grads: PyTree, state: Any) -> tuple[PyTree, Any]:
    """``tx.update`` with every extra argument an optimizer of the catalogue asks for."""
    at = params.fast if isinstance(params, optim.LookaheadParams) else params
    value_fn = _quadratic(at, grads)
    extras = {"value": value_fn(at), "grad": grads, "value_fn": value_fn, "obj_fn": value_fn}
    return tx.update(grads, state, params, **extras)


@jax.jit
def jit_init_and_step(tx: Any, params: PyTree, grads: PyTree, state: Any) -> Any:
    """``init`` and ``step`` (from the given state) in one program: one compilation."""
    return tx.init(params), step(tx, params, grads, state)


# --- the properties -----------------------------------------------------------------------------


def _complex_paths(tree: PyTree) -> list[str]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [keystr(path) for path, x in leaves if jnp.iscomplexobj(x)]


def _real_part(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda x: x.real if jnp.iscomplexobj(x) else x, tree)


def rejection_message(name: str, params: PyTree, grads: PyTree) -> str:
    """The ValueError or TypeError that ``init`` or ``update`` raises."""
    tx = CASES[name]()
    with pytest.raises((ValueError, TypeError)) as info:
        step(tx, params, grads, tx.init(params))
    return str(info.value)


def check_properties(name: str, params: PyTree, grads: PyTree) -> None:
    """Properties 1-4 of the module docstring for one optimizer and one problem."""
    tx = CASES[name]()
    if name in LOOKAHEAD:
        params = optim.LookaheadParams.init_synced(params)

    state = tx.init(params)
    updates, new_state = step(tx, params, grads, state)
    want = jax.tree.map(_upcast, params) if name in WIDE_UPDATES else params
    assert_same_layout(updates, want, "updates")
    assert_same_layout(new_state, state, "new state")
    new_params = optim.apply_updates(params, updates)
    assert_same_layout(new_params, params, "new params")
    assert_finite(updates, "updates")
    assert_finite(new_state, "new state")
    assert_finite(new_params, "new params")

    jit_state, (jit_updates, jit_new_state) = jit_init_and_step(tx, params, grads, state)
    assert_close(state, jit_state, "jit init", ulps=JIT_ULPS if name in INIT_COMPUTES else 0)
    ulps = JIT_ULPS_FOR.get(name, JIT_ULPS)
    floors = _max_abs(params) if name in UPDATES_AT_PARAM_SCALE else None
    assert_close(updates, jit_updates, "jit updates", ulps, floors)
    if name in STATE_AT_UPDATE_SCALE:
        floors = _max_abs(STATE_AT_UPDATE_SCALE[name](new_state, updates))
    else:
        floors = None
    assert_close(new_state, jit_new_state, "jit state", ulps, floors)

    zero_grads = jax.tree.map(jnp.zeros_like, grads)
    _, (zero_updates, zero_state) = jit_init_and_step(tx, params, zero_grads, state)
    assert_finite(zero_updates, "updates for zero gradients")
    assert_finite(zero_state, "state after zero gradients")
    if name not in ZERO_GRADIENT_MOVES:
        exact = name not in ZERO_GRADIENT_ROUNDING
        assert_close(
            params,
            optim.apply_updates(params, zero_updates),
            f"{name}: zero gradients moved params",
            ulps=0 if exact else JIT_ULPS,
            floors=None if exact else _at_hyperparameter_precision(params),
        )


def check_problem(name: str, problem: Problem) -> None:
    with jax.enable_x64(problem.needs_x64):
        params, grads = to_jax(problem.params), to_jax(problem.grads)
        if name in REJECTS_COMPLEX and _complex_paths(params):
            rejection_message(name, params, grads)  # what it says: test_complex_rejected...
            params, grads = _real_part(params), _real_part(grads)
        check_properties(name, params, grads)


# --- the tests ----------------------------------------------------------------------------------

EXAMPLES: collections.Counter = collections.Counter()


class _ExampleCounts:
    """A pytest plugin: the number of examples run per optimizer, at the end of the session."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for profile in sorted({p for p, _ in EXAMPLES}):
            counts = {n: c for (p, n), c in sorted(EXAMPLES.items()) if p == profile}
            terminalreporter.section(f"test_properties: hypothesis examples ({profile})")
            terminalreporter.write_line(
                f"{sum(counts.values())} examples over {len(counts)} optimizers: "
                + ", ".join(f"{n} {c}" for n, c in counts.items())
            )


@pytest.fixture(scope="module", autouse=True)
def _report_example_counts(request: pytest.FixtureRequest) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("optim-property-example-counts"):
        manager.register(_ExampleCounts(), "optim-property-example-counts")


def run_examples(name: str, profile: str) -> None:
    """Hypothesis over random problems and the kitchen sinks for one optimizer."""
    profile_settings = settings.get_profile(profile)

    def check(problem: Problem) -> None:
        EXAMPLES[profile, name] += 1
        check_problem(name, problem)

    for problem in reversed(KITCHEN_SINKS):
        check = example(problem=problem)(check)
    strategy = problems(leaves=LEAVES[profile], max_leaves=MAX_LEAVES[profile])
    check = settings(profile_settings)(given(problem=strategy)(check))
    if profile_settings.derandomize:
        check = seed(zlib.crc32(name.encode()))(check)  # each optimizer meets other trees
    check()


@pytest.mark.parametrize(
    "profile", [PROFILE, pytest.param("thorough", marks=pytest.mark.slow, id="slow-thorough")]
)
@pytest.mark.parametrize("name", sorted(CASES))
def test_properties(name: str, profile: str) -> None:
    before = EXAMPLES[profile, name]
    run_examples(name, profile)
    ran = EXAMPLES[profile, name] - before
    wanted = len(KITCHEN_SINKS) + settings.get_profile(profile).max_examples
    assert ran >= wanted, f"{name}: {ran} examples ran, the {profile} profile asks for {wanted}"


@pytest.mark.parametrize("name", sorted(REJECTS_COMPLEX))
def test_complex_rejected_naming_the_leaf(name: str) -> None:
    """The error names the path of a complex leaf (the kitchen sink has two; the optimizers
    not in REJECTS_COMPLEX run on them in test_properties)."""
    problem = KITCHEN_SINKS[0]
    params, grads = to_jax(problem.params), to_jax(problem.grads)
    message = rejection_message(name, params, grads)
    paths = _complex_paths(params)
    assert any(path in message for path in paths), f"no leaf of {paths} in: {message}"


@pytest.mark.parametrize("name", sorted(ZERO_GRADIENT_MOVES))
def test_zero_gradient_movers_move(name: str) -> None:
    """The optimizers said to move params with zero gradients do (the table is not stale).

    On the kitchen sink, as test_properties: the step is compiled already.
    """
    problem = KITCHEN_SINKS[0]
    params, grads = to_jax(problem.params), to_jax(problem.grads)
    if name in REJECTS_COMPLEX:
        params, grads = _real_part(params), _real_part(grads)
    grads = jax.tree.map(jnp.zeros_like, grads)
    tx = CASES[name]()
    _, (updates, _) = jit_init_and_step(tx, params, grads, tx.init(params))
    moved = jax.tree.leaves(optim.apply_updates(params, updates))
    assert any(
        not np.array_equal(a, b) for a, b in zip(moved, jax.tree.leaves(params), strict=True)
    ), f"{name} left params unchanged with zero gradients; remove it from ZERO_GRADIENT_MOVES"


@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_flatten_mixes_real_and_complex_leaves() -> None:
    """Real and complex leaves ravel into one complex vector; the updates of the real leaves
    come back real without a cast that JAX is about to forbid."""
    params = {"real": jnp.ones((2,), jnp.float32), "complex": jnp.ones((2,), jnp.complex64)}
    tx = optim.flatten(optim.adam(LEARNING_RATE))
    updates, _ = tx.update(params, tx.init(params), params)
    assert_same_layout(updates, params, "updates")


@pytest.mark.parametrize("size", [0.0, 1e-30])
def test_normalize_is_finite(size: float) -> None:
    """Zero gradients, and gradients whose squares underflow float32, normalize to finite
    values (the ascent step of SAM as the paper sets it up)."""
    grads = {"w": jnp.full((3,), size, jnp.float32)}
    tx = optim.contrib.normalize()
    updates, _ = tx.update(grads, tx.init(grads))
    assert_finite(updates, "normalize(grads)")


@pytest.mark.parametrize("size", [1e-19, 1e-24])
def test_lars_step_does_not_depend_on_the_gradient_size(size: float) -> None:
    """LARS's step, lr c ||theta|| g / ||g||, is the same for g and a tiny multiple of g (found
    by the thorough profile: the squares of tiny gradients underflowed, jit and eager disagreed)."""
    params = {"w": jnp.linspace(-1.0, 2.0, 6, dtype=jnp.float32).reshape(2, 3)}
    direction = jnp.linspace(0.5, -1.5, 6, dtype=jnp.float32).reshape(2, 3)
    tx = optim.lars(LEARNING_RATE)
    unit, _ = tx.update({"w": direction}, tx.init(params), params)
    tiny, _ = tx.update({"w": direction * size}, tx.init(params), params)
    # Both round g * size, the norms and the products in float32: a few ulps (1.2e-7 each).
    np.testing.assert_allclose(tiny["w"], unit["w"], rtol=1e-6)


def test_tables_name_known_optimizers() -> None:
    """Every table names optimizers tested here; test_catalogue's optimizers are all here."""
    from test_catalogue import CATALOGUE

    tables = (
        ALIAS_ARGUMENTS,
        ZERO_GRADIENT_MOVES,
        ZERO_GRADIENT_ROUNDING,
        REJECTS_COMPLEX,
        LOOKAHEAD,
        WIDE_UPDATES,
        JIT_ULPS_FOR,
        UPDATES_AT_PARAM_SCALE,
        STATE_AT_UPDATE_SCALE,
        INIT_COMPUTES,
    )
    for table in tables:
        assert set(table) <= set(CASES), set(table) - set(CASES)
    assert not set(ZERO_GRADIENT_MOVES) & set(ZERO_GRADIENT_ROUNDING)
    assert set(CATALOGUE) <= set(CASES), set(CATALOGUE) - set(CASES)
    for name, make in CASES.items():
        tx = make()
        assert callable(tx.init) and callable(tx.update), name
