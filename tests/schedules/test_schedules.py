"""Schedules: optax as the oracle, pytree behaviour (jit once, vmap, grad), argument checks."""

from __future__ import annotations

import doctest
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optim import schedules
from optim._hyper import FunctionSchedule

# Counts before, at and after every boundary of the cases below (all boundaries are < 120),
# then large counts up to int32's maximum, where a careless ``count - boundary`` or int cast
# would overflow.
COUNTS = jnp.concatenate([jnp.arange(130), jnp.array([1_000, 10**6, 2**31 - 1])]).astype(jnp.int32)

# optax and optim both compute in float32 and optim repeats optax's formulas operation for
# operation, so most values agree bit for bit. The rest differ by a few ulps (float32's eps is
# 1.2e-7, hence rtol 1e-6): arguments that optax derives in Python float64 and optim in float32
# (``end_value / peak_value`` in warmup_cosine_decay, ``peak_value / div_factor`` and the scales
# of the one-cycle schedules), cumprod against a running product in piecewise_interpolate,
# ``(T - t) / T`` against ``1 - t / T`` in polynomial_schedule, and divisions by a constant that
# XLA turns into products with its reciprocal in one compiled program and not in another. atol
# covers values that cancel to near 0, where a few ulps of the terms are a large relative error.
RTOL, ATOL = 1e-6, 1e-7

# Float arguments that are static because they place step boundaries.
STATIC_FLOATS = {"pct_start", "pct_final"}


@dataclass(frozen=True)
class Case:
    """A factory (same name in optax and optim) with keyword arguments."""

    name: str
    kwargs: dict[str, Any]
    warns: str | None  # a match for the UserWarning optim gives (optax only logs)

    @property
    def id(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.kwargs.items())})"

    def build(self, module: Any, **kwargs: Any) -> Callable:
        """The schedule from ``module`` (optim.schedules or optax), with ``kwargs`` if given."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return getattr(module, self.name)(**(kwargs or self.kwargs))


def case(name: str, warns: str | None = None, **kwargs: Any) -> Case:
    return Case(name, kwargs, warns)


CASES = [
    case("constant_schedule", value=0.5),
    case("constant_schedule", value=-2.0),
    case(
        "polynomial_schedule",
        init_value=1.0,
        end_value=0.01,
        power=2.0,
        transition_steps=100,
        transition_begin=5,
    ),
    case("polynomial_schedule", init_value=0.0, end_value=3.0, power=0.5, transition_steps=7),
    case(
        "polynomial_schedule",
        init_value=1.0,
        end_value=0.0,
        power=2.0,
        transition_steps=0,
        warns="transition_steps",
    ),
    case(
        "polynomial_schedule",
        init_value=2.0,
        end_value=1.0,
        power=3.0,
        transition_steps=10,
        transition_begin=-3,
        warns="transition_begin",
    ),
    case("linear_schedule", init_value=1.0, end_value=0.0, transition_steps=10),
    case(
        "linear_schedule", init_value=-1.0, end_value=1.0, transition_steps=20, transition_begin=3
    ),
    case("linear_schedule", init_value=0.1, end_value=0.1, transition_steps=1),
    case("cosine_decay_schedule", init_value=1.0, decay_steps=100),
    case("cosine_decay_schedule", init_value=2.0, decay_steps=37, alpha=0.1, exponent=2.0),
    case("cosine_decay_schedule", init_value=0.5, decay_steps=1, alpha=-0.5),
    case("cosine_decay_schedule", init_value=1.0, decay_steps=10, exponent=0.5),
    case("exponential_decay", init_value=1.0, transition_steps=10, decay_rate=0.5),
    case(
        "exponential_decay",
        init_value=1.0,
        transition_steps=10,
        decay_rate=0.5,
        transition_begin=5,
        staircase=True,
    ),
    case("exponential_decay", init_value=0.1, transition_steps=3, decay_rate=0.9, end_value=0.05),
    case("exponential_decay", init_value=1.0, transition_steps=10, decay_rate=1.5, end_value=3.0),
    case(
        "exponential_decay",
        init_value=2.0,
        transition_steps=7,
        decay_rate=0.3,
        transition_begin=4,
        staircase=True,
        end_value=0.5,
    ),
    case(
        "exponential_decay",
        init_value=1.0,
        transition_steps=10,
        decay_rate=0.0,
        end_value=2.0,
        warns="decay_rate",
    ),
    case(
        "exponential_decay",
        init_value=1.0,
        transition_steps=0,
        decay_rate=0.5,
        warns="transition_steps",
    ),
    case("piecewise_constant_schedule", init_value=1.0, boundaries_and_scales={10: 0.1, 20: 0.01}),
    case(
        "piecewise_constant_schedule",
        init_value=2.0,
        boundaries_and_scales={30: 0.5, 0: 0.5, 5: 2.0, 6: 0.0},
    ),
    case("piecewise_constant_schedule", init_value=1.0),
    case(
        "piecewise_interpolate_schedule",
        interpolate_type="linear",
        init_value=1.0,
        boundaries_and_scales={4: 0.1, 8: 0.01},
    ),
    case(
        "piecewise_interpolate_schedule",
        interpolate_type="cosine",
        init_value=2.0,
        boundaries_and_scales={25: 0.1, 0: 0.5, 10: 3.0},
    ),
    case(
        "piecewise_interpolate_schedule",
        interpolate_type="cosine",
        init_value=1.0,
        boundaries_and_scales={5: 2.0, 6: 0.5},
    ),
    case("piecewise_interpolate_schedule", interpolate_type="linear", init_value=1.0),
    case("warmup_constant_schedule", init_value=0.0, peak_value=1.0, warmup_steps=10),
    case(
        "warmup_constant_schedule",
        init_value=0.5,
        peak_value=1.0,
        warmup_steps=0,
        warns="transition_steps",
    ),
    case(
        "warmup_cosine_decay_schedule",
        init_value=0.0,
        peak_value=1.0,
        warmup_steps=10,
        decay_steps=100,
    ),
    case(
        "warmup_cosine_decay_schedule",
        init_value=0.1,
        peak_value=1.0,
        warmup_steps=0,
        decay_steps=50,
        end_value=0.01,
        exponent=2.0,
    ),
    case(
        "warmup_cosine_decay_schedule",
        init_value=0.0,
        peak_value=0.0,
        warmup_steps=5,
        decay_steps=20,
        end_value=0.1,
    ),
    case(
        "warmup_cosine_decay_schedule",
        init_value=1.0,
        peak_value=2.0,
        warmup_steps=3,
        decay_steps=4,
        end_value=-1.0,
    ),
    case(
        "warmup_exponential_decay_schedule",
        init_value=0.0,
        peak_value=1.0,
        warmup_steps=10,
        transition_steps=5,
        decay_rate=0.5,
    ),
    case(
        "warmup_exponential_decay_schedule",
        init_value=0.0,
        peak_value=1.0,
        warmup_steps=5,
        transition_steps=3,
        decay_rate=0.9,
        transition_begin=4,
        staircase=True,
        end_value=0.5,
    ),
    case(
        "warmup_exponential_decay_schedule",
        init_value=0.1,
        peak_value=1.0,
        warmup_steps=0,
        transition_steps=10,
        decay_rate=2.0,
        end_value=4.0,
    ),
    case("linear_onecycle_schedule", transition_steps=100, peak_value=1.0),
    case(
        "linear_onecycle_schedule",
        transition_steps=20,
        peak_value=2.0,
        pct_start=0.25,
        pct_final=0.75,
        div_factor=10.0,
        final_div_factor=100.0,
    ),
    # int(0.3 * 1) == int(0.85 * 1) == 0: the second phase's scale replaces the first's.
    case("linear_onecycle_schedule", transition_steps=1, peak_value=1.0),
    case("cosine_onecycle_schedule", transition_steps=100, peak_value=1.0),
    case(
        "cosine_onecycle_schedule",
        transition_steps=20,
        peak_value=0.5,
        pct_start=0.5,
        div_factor=5.0,
        final_div_factor=50.0,
    ),
    case("cosine_onecycle_schedule", transition_steps=7, peak_value=1.0, pct_start=0.0),
    case(
        "sgdr_schedule",
        cosine_kwargs=[
            dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=20),
            dict(init_value=0.5, peak_value=0.8, warmup_steps=0, decay_steps=10, end_value=0.1),
            dict(init_value=0.0, peak_value=0.4, warmup_steps=3, decay_steps=30, exponent=2.0),
        ],
    ),
]
CASE_PARAMS = [pytest.param(c, id=c.id) for c in CASES]


@jax.jit
def evaluate(schedule: Callable, counts: jax.Array) -> jax.Array:
    """The schedule at every count: traced counts, and the schedule itself a jit argument."""
    return jax.vmap(schedule)(counts)


@jax.jit
def evaluate_all(fns: Any, counts: jax.Array) -> Any:
    """Every schedule (or FunctionSchedule) in a pytree of them, in one program."""
    return jax.tree.map(lambda f: jax.vmap(f)(counts), fns, is_leaf=callable)


def is_float_argument(path: tuple, leaf: Any) -> bool:
    """A float leaf of a factory's keyword arguments (scales and sgdr cycles included)."""
    return type(leaf) is float and path[-1].key not in STATIC_FLOATS


def float_arguments(kwargs: dict[str, Any]) -> list[tuple[str, Callable[[Any], dict]]]:
    """``(path, replace)`` for every float argument; ``replace(x)`` sets it to ``x``."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(kwargs)
    values = [leaf for _, leaf in leaves]

    def replacer(i: int) -> Callable[[Any], dict]:
        return lambda x: jax.tree.unflatten(treedef, [*values[:i], x, *values[i + 1 :]])

    return [
        (jax.tree_util.keystr(path), replacer(i))
        for i, (path, leaf) in enumerate(leaves)
        if is_float_argument(path, leaf)
    ]


def other_floats(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with every float argument moved (to a value the factories still accept)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, x: 0.5 * x + 0.25 if is_float_argument(path, x) else x, kwargs
    )


@pytest.fixture(scope="module")
def optax_values() -> dict[str, tuple[jax.Array, jax.Array]]:
    """optax's values for each case's arguments and for its ``other_floats``.

    Computed in one jitted program, as a training step computes them (and twice as fast as op
    by op), except for polynomial_schedule: jitted, XLA turns optax's ``1 - t / T`` into
    ``1 - t * (1 / T)``, which is -4e-8 at t = T = 7, so a fractional power is NaN from the end
    of the transition on. We compute ``(T - t) / T`` (a deliberate difference, see the module
    docstring), so we compare with optax's op-by-op values there.
    """
    op_by_op, jitted = {}, {}
    for c in CASES:
        fns = [getattr(optax, c.name)(**kwargs) for kwargs in (c.kwargs, other_floats(c.kwargs))]
        if c.name == "polynomial_schedule":
            op_by_op[c.id] = tuple(jax.vmap(fn)(COUNTS) for fn in fns)
        else:
            jitted[c.id] = tuple(FunctionSchedule(fn) for fn in fns)
    return {**op_by_op, **evaluate_all(jitted, COUNTS)}


@pytest.mark.parametrize("c", CASE_PARAMS)
def test_matches_optax(c: Case, optax_values: dict) -> None:
    expected, _ = optax_values[c.id]
    if c.warns:
        with pytest.warns(UserWarning, match=c.warns):
            schedule = getattr(schedules, c.name)(**c.kwargs)
    else:
        schedule = c.build(schedules)
    np.testing.assert_allclose(evaluate(schedule, COUNTS), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("c", CASE_PARAMS)
def test_is_a_pytree_of_float32_scalars_and_jit_compiles_once(c: Case, optax_values: dict) -> None:
    schedule, other = c.build(schedules), c.build(schedules, **other_floats(c.kwargs))
    leaves = jax.tree.leaves(schedule)
    assert leaves and all(leaf.dtype == jnp.float32 and leaf.shape == () for leaf in leaves)
    assert jax.tree.structure(other) == jax.tree.structure(schedule)
    evaluate(schedule, COUNTS)
    compiled = evaluate._cache_size()
    np.testing.assert_allclose(evaluate(other, COUNTS), optax_values[c.id][1], rtol=RTOL, atol=ATOL)
    assert evaluate._cache_size() == compiled
    assert schedule(7).dtype == jnp.float32  # a Python int count


# Each factory's case with the most float arguments.
VMAP_CASES = {c.name: c for c in sorted(CASES, key=lambda c: len(float_arguments(c.kwargs)))}


@pytest.mark.parametrize("c", [pytest.param(c, id=c.name) for c in VMAP_CASES.values()])
def test_vmap_over_each_float_argument(c: Case) -> None:
    xs = jnp.array([1.0, 0.5])
    arguments = float_arguments(c.kwargs)

    @jax.jit  # one program for all of the factory's arguments
    def batched(xs: jax.Array) -> list[jax.Array]:
        return [
            jax.vmap(lambda x, r=replace: jax.vmap(c.build(schedules, **r(x)))(COUNTS))(xs)
            for _, replace in arguments
        ]

    for (path, replace), rows in zip(arguments, batched(xs), strict=True):
        for x, row in zip(xs, rows, strict=True):
            expected = evaluate(c.build(schedules, **replace(float(x))), COUNTS)
            np.testing.assert_allclose(row, expected, rtol=RTOL, atol=ATOL, err_msg=path)


def test_join_schedules_matches_optax_and_wraps_plain_functions() -> None:
    ramp = lambda count: 0.01 * count
    ours = schedules.join_schedules(
        [schedules.linear_schedule(0.0, 1.0, 10), optax.cosine_decay_schedule(1.0, 20), ramp],
        [10, 30],
    )
    theirs = optax.join_schedules(
        [optax.linear_schedule(0.0, 1.0, 10), optax.cosine_decay_schedule(1.0, 20), ramp], [10, 30]
    )
    assert isinstance(ours.schedules[1], FunctionSchedule)
    assert len(jax.tree.leaves(ours)) == 3  # the linear schedule's; functions are static
    np.testing.assert_allclose(
        evaluate(ours, COUNTS), jax.vmap(theirs)(COUNTS), rtol=RTOL, atol=ATOL
    )


def wsd_reference(
    t: int,
    init: float,
    peak: float,
    warmup: int,
    stable: int,
    decay: int,
    end: float,
    decay_type: str,
) -> float:
    """Warmup-stable-decay in plain Python floats, phase by phase."""
    if t < warmup:
        return init + (peak - init) * t / warmup
    if t < warmup + stable:
        return peak
    if t >= warmup + stable + decay:
        return end
    pct = (t - warmup - stable) / decay
    shape = {
        "linear": 1 - pct,
        "cosine": 0.5 * (1 + math.cos(math.pi * pct)),
        "1-sqrt": 1 - math.sqrt(pct),
    }[decay_type]
    return end + (peak - end) * shape


@pytest.mark.parametrize(
    "args",
    [
        (0.0, 1.0, 10, 20, 30, 0.1),
        (0.5, 1.0, 0, 40, 60, 0.0),  # no warmup
        (0.0, 2.0, 15, 0, 1, 0.5),  # no stable phase, one decay step
        (1.0, 0.5, 7, 3, 0, 2.0),  # warmup down, no decay: a jump up to end_value
    ],
    ids=str,
)
def test_wsd_matches_reference(args: tuple) -> None:
    decay_types = ["linear", "cosine", "1-sqrt"]
    values = evaluate_all(
        [schedules.wsd_schedule(*args, decay_type=d) for d in decay_types], COUNTS
    )
    for decay_type, value in zip(decay_types, values, strict=True):
        expected = [wsd_reference(int(t), *args, decay_type) for t in COUNTS]
        # float32 against float64: atol also covers float32's rounding of pi * pct inside cos
        # (2.4e-7 near pi), scaled by |peak - end| / 2 <= 1.
        np.testing.assert_allclose(value, expected, rtol=RTOL, atol=3e-7, err_msg=decay_type)


def test_wsd_is_a_pytree_and_jit_compiles_once() -> None:
    args = (10, 20, 30)
    schedule = schedules.wsd_schedule(0.0, 1.0, *args, end_value=0.1, decay_type="1-sqrt")
    assert len(jax.tree.leaves(schedule)) == 3
    evaluate(schedule, COUNTS)
    compiled = evaluate._cache_size()
    other = schedules.wsd_schedule(0.5, 2.0, *args, end_value=0.2, decay_type="1-sqrt")
    expected = [wsd_reference(int(t), 0.5, 2.0, *args, 0.2, "1-sqrt") for t in COUNTS]
    np.testing.assert_allclose(evaluate(other, COUNTS), expected, rtol=RTOL, atol=3e-7)
    assert evaluate._cache_size() == compiled


GRAD_PARAMS = [
    pytest.param(
        lambda r: schedules.exponential_decay(2.0, 10, r),
        0.7,
        25,
        id="exponential_decay.decay_rate",
    ),
    pytest.param(
        lambda p: schedules.warmup_cosine_decay_schedule(0.0, p, 10, 100, 0.1, 2.0),
        1.0,
        40,
        id="warmup_cosine_decay.peak_value",
    ),
    pytest.param(
        lambda a: schedules.cosine_decay_schedule(1.0, 100, 0.1, a),
        1.5,
        30,
        id="cosine_decay.exponent",
    ),
    pytest.param(
        lambda s: schedules.piecewise_interpolate_schedule("cosine", 1.0, {10: s}),
        0.3,
        4,
        id="piecewise_interpolate.scale",
    ),
    pytest.param(
        lambda p: schedules.wsd_schedule(0.0, p, 10, 20, 30, 0.1, "1-sqrt"),
        1.0,
        45,
        id="wsd.peak_value",
    ),
]


@pytest.mark.parametrize(("make", "x", "count"), GRAD_PARAMS)
def test_grad_matches_finite_difference(make: Callable, x: float, count: int) -> None:
    value = lambda x: make(x)(jnp.asarray(count))
    h = 1e-3
    # Central difference in float32: truncation error O(h**2), rounding error ~eps / h ~ 1e-4.
    finite_difference = (value(x + h) - value(x - h)) / (2 * h)
    np.testing.assert_allclose(jax.grad(value)(x), finite_difference, rtol=2e-3)


@pytest.mark.parametrize(
    ("make", "x"),
    [
        (
            lambda p: schedules.warmup_cosine_decay_schedule(0.0, p, 10, 100, 0.1),
            0.0,
        ),  # alpha's 0/0
        # the pieces _select drops: sqrt of a negative pct unless it is clipped
        (lambda p: schedules.wsd_schedule(0.0, p, 10, 20, 30, 0.1, "1-sqrt"), 1.0),
        (lambda r: schedules.exponential_decay(1.0, 10, r, end_value=0.1), 0.5),
    ],
)
def test_gradients_are_finite_at_every_count(make: Callable, x: float) -> None:
    grads = jax.jit(jax.vmap(lambda count: jax.grad(lambda x: make(x)(count))(x)))(COUNTS)
    assert bool(jnp.isfinite(grads).all())


def test_warning_points_at_caller_and_is_not_given_for_a_warmup_of_zero() -> None:
    with pytest.warns(UserWarning, match="transition_steps") as record:
        schedule = schedules.warmup_constant_schedule(0.5, 1.0, 0)
    assert record[0].filename == __file__
    assert isinstance(schedule, schedules.ConstantSchedule)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schedules.warmup_cosine_decay_schedule(0.0, 1.0, 0, 10)
        schedules.warmup_exponential_decay_schedule(0.0, 1.0, 0, 10, 0.5)


def _constant() -> schedules.ConstantSchedule:
    return schedules.constant_schedule(1.0)


CYCLE = dict(init_value=0.0, peak_value=1.0, warmup_steps=5)
ERRORS = [
    (lambda: schedules.constant_schedule(None), TypeError, "value"),
    (lambda: schedules.constant_schedule(float("nan")), ValueError, "value"),
    (lambda: schedules.linear_schedule("a", 0.0, 10), TypeError, "init_value"),
    (lambda: schedules.linear_schedule(1.0, 0.0, 1e4), TypeError, "transition_steps"),
    (lambda: schedules.linear_schedule(1.0, 0.0, -(2**31)), ValueError, "transition_steps"),
    (lambda: schedules.linear_schedule(1.0, 0.0, 10, 2.5), TypeError, "transition_begin"),
    (lambda: schedules.polynomial_schedule(1.0, 0.0, jnp.ones(2), 10), ValueError, "power"),
    (lambda: schedules.cosine_decay_schedule(1.0, 0), ValueError, "decay_steps"),
    (lambda: schedules.cosine_decay_schedule(1.0, 10, alpha=math.inf), ValueError, "alpha"),
    (lambda: schedules.cosine_decay_schedule(1.0, 10, exponent=1j), TypeError, "exponent"),
    (lambda: schedules.exponential_decay(1.0, 10, -0.5), ValueError, "decay_rate"),
    (lambda: schedules.exponential_decay(1.0, 10, 0.5, staircase=1), TypeError, "staircase"),
    (lambda: schedules.exponential_decay(1.0, 10, 0.5, end_value="x"), TypeError, "end_value"),
    (
        lambda: schedules.piecewise_constant_schedule(1.0, {10: -0.1}),
        ValueError,
        r"boundaries_and_scales\[10\]",
    ),
    (
        lambda: schedules.piecewise_constant_schedule(1.0, {-5: 0.1}),
        ValueError,
        "boundaries_and_scales key -5",
    ),
    (
        lambda: schedules.piecewise_constant_schedule(1.0, {2.5: 0.1}),
        TypeError,
        "boundaries_and_scales key 2.5",
    ),
    (
        lambda: schedules.piecewise_constant_schedule(1.0, [(10, 0.1)]),
        TypeError,
        "boundaries_and_scales",
    ),
    (
        lambda: schedules.piecewise_interpolate_schedule("quadratic", 1.0),
        ValueError,
        "interpolate_type",
    ),
    (lambda: schedules.join_schedules([], []), ValueError, "schedules"),
    (lambda: schedules.join_schedules([_constant(), 0.5], [10]), TypeError, r"schedules\[1\]"),
    (lambda: schedules.join_schedules([_constant()] * 2, []), ValueError, "boundaries"),
    (lambda: schedules.join_schedules([_constant()] * 3, [10, 5]), ValueError, "non-decreasing"),
    (lambda: schedules.join_schedules([_constant()] * 2, [-1]), ValueError, r"boundaries\[0\]"),
    (lambda: schedules.warmup_constant_schedule(0.0, "peak", 10), TypeError, "peak_value"),
    (lambda: schedules.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10), ValueError, "decay_steps"),
    (lambda: schedules.warmup_cosine_decay_schedule(0.0, 1.0, -1, 10), ValueError, "warmup_steps"),
    (
        lambda: schedules.warmup_exponential_decay_schedule(0.0, None, 5, 10, 0.5),
        TypeError,
        "peak_value",
    ),
    (
        lambda: schedules.warmup_exponential_decay_schedule(0.0, 1.0, 5, 10, -1.0),
        ValueError,
        "decay_rate",
    ),
    (lambda: schedules.linear_onecycle_schedule(0, 1.0), ValueError, "transition_steps"),
    (lambda: schedules.linear_onecycle_schedule(100, 1.0, pct_start=1.5), ValueError, "pct_start"),
    (
        lambda: schedules.linear_onecycle_schedule(100, 1.0, pct_final=jnp.float32(0.5)),
        TypeError,
        "pct_final",
    ),
    (
        lambda: schedules.linear_onecycle_schedule(100, 1.0, div_factor=0.0),
        ValueError,
        "div_factor",
    ),
    (
        lambda: schedules.cosine_onecycle_schedule(100, 1.0, final_div_factor=-1.0),
        ValueError,
        "final_div_factor",
    ),
    (lambda: schedules.sgdr_schedule([]), ValueError, "cosine_kwargs"),
    (lambda: schedules.sgdr_schedule([CYCLE]), TypeError, r"cosine_kwargs\[0\].*decay_steps"),
    (
        lambda: schedules.sgdr_schedule([{**CYCLE, "decay_steps": 3}]),
        ValueError,
        r"cosine_kwargs\[0\].*decay_steps",
    ),
    (lambda: schedules.wsd_schedule(0.0, 1.0, 10, -1, 10), ValueError, "stable_steps"),
    (lambda: schedules.wsd_schedule(0.0, 1.0, True, 10, 10), TypeError, "warmup_steps"),
    (
        lambda: schedules.wsd_schedule(0.0, 1.0, 10, 10, 10, decay_type="exp"),
        ValueError,
        "decay_type",
    ),
]


@pytest.mark.parametrize(("make", "error", "match"), ERRORS)
def test_bad_argument_is_named(make: Callable, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()


def test_traced_step_count_is_refused() -> None:
    with pytest.raises(TypeError, match="transition_steps"):
        jax.jit(lambda n: schedules.linear_schedule(1.0, 0.0, n))(10)


def test_docstring_examples() -> None:
    assert doctest.testmod(schedules).failed == 0


# --- lengths beyond int32's range ----------------------------------------------------------
#
# Step counts are int32, so a length of 10^10 steps is never reached; optax accepts it where its
# arithmetic allows (cosine decays) and so do we, everywhere, computing with it in float32.

BIG = 10**10
BIG_COUNTS = [0, 5, 1_000, 2**31 - 1]


@pytest.mark.parametrize(
    "build",
    [
        lambda m: m.cosine_decay_schedule(1.0, decay_steps=BIG),
        lambda m: m.cosine_decay_schedule(2.0, decay_steps=BIG, alpha=0.1, exponent=2.0),
        lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 100, BIG),
        lambda m: m.sgdr_schedule(
            [dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=BIG)]
        ),
    ],
    ids=["cosine", "cosine_alpha_exponent", "warmup_cosine", "sgdr"],
)
def test_lengths_beyond_int32_equal_optax(build):
    ours, theirs = build(schedules), build(optax)
    for count in BIG_COUNTS:
        c = jnp.int32(count)
        assert float(ours(c)) == float(theirs(c)), count
        assert float(jax.jit(ours)(c)) == float(jax.jit(theirs)(c)), count


def _ramp(start, end, length):
    """start -> end linearly over ``length`` steps, in float64."""
    return lambda c: start + (end - start) * min(c, length) / length


@pytest.mark.parametrize(
    ("build", "reference"),
    [
        (lambda: schedules.linear_schedule(1.0, 0.1, BIG), _ramp(1.0, 0.1, BIG)),
        (lambda: schedules.linear_schedule(1.0, 0.1, BIG, transition_begin=BIG), lambda c: 1.0),
        (
            lambda: schedules.polynomial_schedule(1.0, 0.1, 2.0, BIG),
            lambda c: 0.9 * ((BIG - c) / BIG) ** 2 + 0.1,
        ),
        (lambda: schedules.exponential_decay(1.0, BIG, 0.5), lambda c: 0.5 ** (c / BIG)),
        (lambda: schedules.exponential_decay(1.0, BIG, 0.5, staircase=True), lambda c: 1.0),
        (lambda: schedules.warmup_constant_schedule(0.0, 1.0, BIG), _ramp(0.0, 1.0, BIG)),
        (
            lambda: schedules.warmup_exponential_decay_schedule(0.0, 1.0, 100, BIG, 0.5),
            lambda c: c / 100 if c < 100 else 0.5 ** ((c - 100) / BIG),
        ),
        (
            lambda: schedules.warmup_cosine_decay_schedule(0.0, 1.0, BIG, 2 * BIG),
            _ramp(0.0, 1.0, BIG),
        ),
        (lambda: schedules.linear_onecycle_schedule(BIG, 1.0), _ramp(0.04, 1.0, 0.3 * BIG)),
        (
            lambda: schedules.piecewise_constant_schedule(1.0, {10: 0.5, BIG: 0.1}),
            lambda c: 1.0 if c < 10 else 0.5,
        ),
        (
            lambda: schedules.join_schedules(
                [schedules.constant_schedule(1.0), schedules.constant_schedule(2.0)], [BIG]
            ),
            lambda c: 1.0,
        ),
        (
            lambda: schedules.wsd_schedule(0.0, 1.0, 10, 20, BIG),
            lambda c: c / 10 if c < 10 else 1.0 if c < 30 else 1.0 - (c - 30) / BIG,
        ),
    ],
    ids=[
        "linear",
        "linear_late",
        "polynomial",
        "exponential",
        "exponential_staircase",
        "warmup_constant",
        "warmup_exponential",
        "warmup_cosine_long_warmup",
        "linear_onecycle",
        "piecewise_constant",
        "join",
        "wsd",
    ],
)
def test_lengths_beyond_int32_compute_in_float(build, reference):
    """optax overflows int32 converting such a length in these; ours give the float values."""
    schedule = build()
    for count in BIG_COUNTS:
        c = jnp.int32(count)
        for value in (schedule(c), jax.jit(schedule)(c)):
            assert np.isfinite(float(value))
            np.testing.assert_allclose(float(value), reference(count), rtol=1e-6, atol=1e-7)
