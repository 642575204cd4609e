"""Schedules: functions of the step count that are pytrees, with optax's names and arguments.

A schedule is a frozen dataclass whose float arguments (``init_value``, ``decay_rate``, scales,
...) are float32 scalar array leaves and whose step arguments (``transition_steps``,
``boundaries``, ...) are static metadata. So a jitted step that takes the schedule as an argument
compiles once for every choice of float values, ``jax.vmap`` over a float argument needs no
wrapper, and ``jax.grad`` flows into it. Calling ``schedule(count)`` with an int step count (a
traced int32 array included) returns a float32 scalar.

The factories carry optax's names, argument names, order and defaults, and compute the same
values in the same float32 operations. Where this module differs from optax, it is on purpose:

- Bad arguments raise at construction with the argument's name: step counts must be ints
  (``1e4`` is refused rather than used as a float; lengths beyond int32's range are accepted,
  as optax accepts them, and computed with in float arithmetic), ``warmup_steps``,
  ``decay_steps`` and boundaries may not be negative, ``decay_rate`` and scales may not be
  negative, ``join_schedules`` needs exactly one boundary fewer than schedules, in order, and the
  one-cycle ``pct_*`` fractions must lie in [0, 1].
- Where optax falls back silently (it logs at info level), the same fallback emits a
  ``UserWarning``: ``transition_steps <= 0`` holds ``init_value``, a negative ``transition_begin``
  becomes 0, ``decay_rate == 0`` holds ``init_value``.
- ``polynomial_schedule`` computes ``(T - t) / T`` where optax computes ``1 - t / T``: under
  ``jit`` optax's can be slightly negative at the end of the transition, which makes a
  fractional ``power`` give NaN from then on (``optax.polynomial_schedule(0., 3., 0.5, 7)``
  jitted is NaN at step 7); ours is exactly 0 there.
- Where optax branches in Python on a float value (``decay_rate == 0``, ``decay_rate < 1``,
  ``peak_value == 0``), a ``jnp.where`` gives the same value, so the argument may be traced.

``wsd_schedule`` (warmup-stable-decay) is not in optax.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim.schedules import linear_schedule
    >>> schedule = linear_schedule(init_value=1.0, end_value=0.0, transition_steps=100)
    >>> jax.tree.leaves(schedule)  # init_value, end_value, power
    [np.float32(1.0), np.float32(0.0), np.float32(1.0)]
    >>> print(schedule(25))
    0.75
    >>> sweep = jax.vmap(lambda v: linear_schedule(v, 0.0, 100)(jnp.asarray(50)))
    >>> print(sweep(jnp.array([1.0, 2.0])))
    [0.5 1. ]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optim._hyper import check_flag, check_int, hyper, hyper_field, nonnegative
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass, static
from optim._tree import INT32_MAX
from optim._warnings import warn_user

# The type of a schedule: a function of the step count returning the value at that step
# (optax.schedules.Schedule). Not in __all__: a typing alias, not a function to call.
Schedule = Callable[[ArrayLike], ArrayLike]


@pytree_dataclass
class ConstantSchedule:
    """``value`` at every step.

    Attributes:
      value: the value, a float32 scalar array leaf.
    """

    value: jax.Array = hyper_field()

    def __call__(self, count: ArrayLike) -> jax.Array:
        return self.value


@pytree_dataclass
class PolynomialSchedule:
    r"""Polynomial transition from ``init_value`` (I) to ``end_value`` (E).

    With B = ``transition_begin``, T = ``transition_steps`` and P = ``power``::

        t' = clip(t - B, 0, T)
        value(t) = (I - E) * ((T - t') / T) ** P + E

    so the value is I up to step B and E from step B + T on.

    Attributes:
      init_value: I, the value up to step B (a float32 scalar array leaf).
      end_value: E, the value from step B + T on (a float32 scalar array leaf).
      power: P, the power of the polynomial (a float32 scalar array leaf; 1 is linear).
      transition_steps: T, the length of the transition, a positive int (static).
      transition_begin: B, the step at which the transition starts, a non-negative int
        (static).
    """

    init_value: jax.Array = hyper_field()
    end_value: jax.Array = hyper_field()
    power: jax.Array = hyper_field()
    transition_steps: int = static()
    transition_begin: int = static()

    def __call__(self, count: ArrayLike) -> jax.Array:
        steps = _length(self.transition_steps)
        count = jnp.clip(_offset(jnp.asarray(count), self.transition_begin), 0, steps)
        # optax's 1 - t' / T, floored at 0: under jit XLA turns the division into a product with
        # 1 / T, so at t' = T that is -4e-8 for T = 7, and a fractional power of it NaN (optax's
        # value there). Elsewhere the same float32 operations as optax's, so the same values.
        frac = jnp.maximum(1 - count / steps, 0)
        return (self.init_value - self.end_value) * frac**self.power + self.end_value


@pytree_dataclass
class CosineDecaySchedule:
    r"""Cosine decay from ``init_value`` (I) to ``alpha * init_value`` over ``decay_steps`` (T).

    With p = ``exponent`` (Loshchilov & Hutter, SGDR, https://arxiv.org/abs/1608.03983)::

        t' = min(t, T)
        value(t) = I * ((1 - alpha) * (0.5 * (1 + cos(pi * t' / T))) ** p + alpha)

    Attributes:
      init_value: I, the value at step 0 (a float32 scalar array leaf).
      alpha: the final value as a fraction of I (a float32 scalar array leaf).
      exponent: p, the power applied to the cosine factor (a float32 scalar array leaf).
      decay_steps: T, a positive int (static): the step from which the value is
        ``alpha * I``.
    """

    init_value: jax.Array = hyper_field()
    alpha: jax.Array = hyper_field()
    exponent: jax.Array = hyper_field()
    decay_steps: int = static()

    def __call__(self, count: ArrayLike) -> jax.Array:
        # Float step arithmetic, as in optax: the same float32 values for any count dtype.
        decay_steps = float(self.decay_steps)
        count = jnp.minimum(jnp.asarray(count), decay_steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * count / decay_steps))
        return self.init_value * ((1 - self.alpha) * cosine**self.exponent + self.alpha)


@pytree_dataclass
class ExponentialDecaySchedule:
    r"""Exponential decay of ``init_value`` (I) by ``decay_rate`` (r) every ``transition_steps``.

    With B = ``transition_begin`` and T = ``transition_steps``::

        p = (t - B) / T             (floor((t - B) / T) when staircase)
        value(t) = I                for t <= B
                   I * r ** p       for t > B

    then bounded by ``end_value`` E when given: ``max(value, E)`` if r < 1, else
    ``min(value, E)``. When r = 0 the value is I at every step (as in optax).

    Attributes:
      init_value: I, the value up to step B (a float32 scalar array leaf).
      decay_rate: r, the non-negative factor per T steps (a float32 scalar array leaf).
      end_value: E, the bound on the value (a float32 scalar array leaf), or None: unbounded.
      transition_steps: T, a positive int (static).
      transition_begin: B, a non-negative int (static).
      staircase: whether the exponent is floored to whole multiples of T (static).
    """

    init_value: jax.Array = hyper_field()
    decay_rate: jax.Array = nonnegative()
    end_value: jax.Array | None = hyper_field(optional=True)
    transition_steps: int = static()
    transition_begin: int = static()
    staircase: bool = static()

    def __call__(self, count: ArrayLike) -> jax.Array:
        count = _offset(jnp.asarray(count), self.transition_begin)
        # A float length: the same float32 quotient, and no int32 overflow for T > 2^31 - 1.
        p = count / float(self.transition_steps)
        if self.staircase:
            p = jnp.floor(p)
        value = jnp.where(count <= 0, self.init_value, self.init_value * self.decay_rate**p)
        if self.end_value is not None:
            value = jnp.where(
                self.decay_rate < 1,
                jnp.maximum(value, self.end_value),
                jnp.minimum(value, self.end_value),
            )
        # optax returns a constant schedule when decay_rate == 0 (a Python branch on the value);
        # the where gives the same values and lets decay_rate be traced.
        return jnp.where(self.decay_rate == 0, self.init_value, value)


@pytree_dataclass
class PiecewiseConstantSchedule:
    r"""``init_value`` times every scale whose boundary the step has reached.

    With boundaries b_1 < ... < b_n and scales s_1, ..., s_n::

        value(t) = init_value * prod(s_i for i with t >= b_i)

    Attributes:
      init_value: the value before the first boundary (a float32 scalar array leaf).
      scales: s_1, ..., s_n, a tuple of non-negative float32 scalar array leaves.
      boundaries: b_1 < ... < b_n, a tuple of non-negative ints (static), one per scale.
    """

    init_value: jax.Array = hyper_field()
    scales: tuple[jax.Array, ...]
    boundaries: tuple[int, ...] = static()

    def __call__(self, count: ArrayLike) -> jax.Array:
        values = _cumulative_products(self.init_value, self.scales)
        return _select(jnp.asarray(count), self.boundaries, values)


@pytree_dataclass
class PiecewiseInterpolateSchedule:
    r"""Interpolation between ``init_value`` and its running products with the scales.

    With b_0 = 0, boundaries b_1 < ... < b_n, scales s_i and knot values v_0 = ``init_value``,
    v_i = v_{i-1} * s_i::

        pct = (t - b_i) / max(b_{i+1} - b_i, 1)               for b_i <= t < b_{i+1}
        value(t) = v_i + (v_{i+1} - v_i) * pct                 ('linear')
                   v_{i+1} + (v_i - v_{i+1}) / 2 * (cos(pi * pct) + 1)   ('cosine')
        value(t) = v_n                                        for t >= b_n

    Attributes:
      init_value: v_0, the value at step 0 (a float32 scalar array leaf).
      scales: s_1, ..., s_n, a tuple of non-negative float32 scalar array leaves.
      boundaries: b_1 < ... < b_n, a tuple of non-negative ints (static), one per scale.
      interpolate_type: ``'linear'`` or ``'cosine'`` (static).
    """

    init_value: jax.Array = hyper_field()
    scales: tuple[jax.Array, ...]
    boundaries: tuple[int, ...] = static()
    interpolate_type: str = static()

    def __call__(self, count: ArrayLike) -> jax.Array:
        values = _cumulative_products(self.init_value, self.scales)
        kinds = (self.interpolate_type,) * len(self.scales)
        return _interpolate(jnp.asarray(count), (0, *self.boundaries), values, kinds)


@pytree_dataclass
class WarmupStableDecaySchedule:
    r"""Warmup-stable-decay: linear warmup, a constant phase, then a decay to ``end_value``.

    With I = ``init_value``, P = ``peak_value``, E = ``end_value``, W = ``warmup_steps``,
    S = ``stable_steps``, D = ``decay_steps`` and pct = (t - W - S) / D::

        value(t) = I + (P - I) * t / W                   for t < W
                   P                                     for W <= t < W + S
                   E + (P - E) * (1 - pct)               for W + S <= t < W + S + D ('linear')
                   E + (P - E) / 2 * (cos(pi * pct) + 1)                             ('cosine')
                   E + (P - E) * (1 - sqrt(pct))                                     ('1-sqrt')
                   E                                     for t >= W + S + D

    References: Hu et al., MiniCPM, https://arxiv.org/abs/2404.06395 (the schedule); Hägele et
    al., Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations,
    https://arxiv.org/abs/2405.18392 (the '1-sqrt' decay).

    Attributes:
      init_value: I, the value at step 0 (a float32 scalar array leaf).
      peak_value: P, the value after the warmup and in the stable phase (a float32 scalar
        array leaf).
      end_value: E, the value at the end of the decay and after it (a float32 scalar array
        leaf).
      warmup_steps: W, a non-negative int (static).
      stable_steps: S, a non-negative int (static).
      decay_steps: D, a non-negative int (static).
      decay_type: ``'linear'``, ``'cosine'`` or ``'1-sqrt'`` (static).
    """

    init_value: jax.Array = hyper_field()
    peak_value: jax.Array = hyper_field()
    end_value: jax.Array = hyper_field()
    warmup_steps: int = static()
    stable_steps: int = static()
    decay_steps: int = static()
    decay_type: str = static()

    def __call__(self, count: ArrayLike) -> jax.Array:
        warmup_end = self.warmup_steps
        decay_begin = warmup_end + self.stable_steps
        steps = (0, warmup_end, decay_begin, decay_begin + self.decay_steps)
        values = (self.init_value, self.peak_value, self.peak_value, self.end_value)
        kinds = ("linear", "linear", self.decay_type)
        return _interpolate(jnp.asarray(count), steps, values, kinds)


def _cumulative_products(init_value: jax.Array, scales: Sequence[jax.Array]) -> list[jax.Array]:
    values = [init_value]
    for scale in scales:
        values.append(values[-1] * scale)
    return values


def _select(count: jax.Array, boundaries: Sequence[int], values: Sequence[jax.Array]) -> jax.Array:
    """``values[0]`` before ``boundaries[0]``, ``values[i]`` from ``boundaries[i - 1]`` on."""
    value = values[0]
    for later, boundary in _reachable(values[1:], boundaries):
        value = jnp.where(count < boundary, value, later)
    return value


def _reachable(items: Sequence[Any], boundaries: Sequence[int]) -> list[tuple[Any, int]]:
    """The (item, boundary) pairs whose boundary an int32 step count can reach.

    Beyond 2^31 - 1 a boundary is never reached (and as a Python int it would overflow int32
    in ``count < boundary``); ``items`` may be shorter than ``boundaries`` then.
    """
    return [(item, b) for item, b in zip(items, boundaries, strict=False) if b <= INT32_MAX]


def _offset(count: jax.Array, step: int) -> jax.Array:
    """``count - step``: in the count's integers when ``step`` fits int32, else in float32 (a
    step beyond int32's range is never reached: the offset is then negative)."""
    if step <= INT32_MAX:
        return count - step
    return count.astype(jnp.float32) - float(step)


def _length(steps: int) -> Any:
    """A length to divide or clip by: the int itself when it fits int32, else a float (an int
    beyond int32's range would overflow when JAX converts it)."""
    return steps if steps <= INT32_MAX else float(steps)


def _interpolate_linear(start: jax.Array, end: jax.Array, pct: jax.Array) -> jax.Array:
    return (end - start) * pct + start


def _interpolate_cosine(start: jax.Array, end: jax.Array, pct: jax.Array) -> jax.Array:
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)


def _interpolate_one_minus_sqrt(start: jax.Array, end: jax.Array, pct: jax.Array) -> jax.Array:
    return end + (start - end) * (1 - jnp.sqrt(pct))


_INTERPOLATIONS = {
    "linear": _interpolate_linear,
    "cosine": _interpolate_cosine,
    "1-sqrt": _interpolate_one_minus_sqrt,
}


def _interpolate(
    count: jax.Array, steps: Sequence[int], values: Sequence[jax.Array], kinds: Sequence[str]
) -> jax.Array:
    """Interpolate ``values[i]`` to ``values[i + 1]`` on [steps[i], steps[i + 1]) by ``kinds[i]``.

    The value is ``values[-1]`` from ``steps[-1]`` on. ``pct`` is clipped to [0, 1] so that the
    pieces :func:`_select` discards stay finite and so do their gradients (sqrt of a negative).
    """
    pieces = []
    for i, kind in enumerate(kinds):
        length = _length(max(steps[i + 1] - steps[i], 1))
        pct = jnp.clip(_offset(count, steps[i]) / length, 0, 1)
        pieces.append(_INTERPOLATIONS[kind](values[i], values[i + 1], pct))
    return _select(count, steps[1:], [*pieces, values[-1]])


def _float(value: Any, name: str, **bounds: Any) -> jax.Array:
    """A float argument as a float32 scalar array (checked by ``hyper`` unless traced)."""
    return hyper(value, name, schedule=False, **bounds)


def _steps(value: Any, name: str, low: int | None = 0) -> int:
    """A static step count: an int (not a bool, a float or a traced array).

    Step counts are int32, so a length or boundary beyond 2^31 - 1 is never reached; it is
    accepted (optax accepts ``cosine_decay_schedule(1.0, decay_steps=10**10)``), and the
    schedules compute with it in float arithmetic.
    """
    low = -INT32_MAX if low is None else low
    return check_int(value, name, low=low, note="step counts are static, like array shapes")


def _fraction(value: Any, name: str) -> float:
    """A static fraction in [0, 1] (it places step boundaries, so it cannot be traced)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a Python float in [0, 1] (it sets static step "
            f"boundaries), got {type(value).__name__} {value!r}"
        )
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def _choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _transition_begin(value: Any) -> int:
    begin = _steps(value, "transition_begin", low=None)
    if begin < 0:
        warn_user(f"transition_begin={begin} is negative; using 0, as optax does")
        return 0
    return begin


def _held_constant(transition_steps: int, init_value: jax.Array) -> ConstantSchedule:
    warn_user(
        f"transition_steps={transition_steps} is not positive: the schedule holds init_value "
        "at every step, as in optax"
    )
    return ConstantSchedule(init_value)


def _boundaries_and_scales(
    boundaries_and_scales: Mapping[int, ArrayLike] | None,
) -> tuple[tuple[int, ...], tuple[jax.Array, ...]]:
    """Sorted static boundaries and their float32 scales (each non-negative)."""
    if boundaries_and_scales is None:
        return (), ()
    if not isinstance(boundaries_and_scales, Mapping):
        raise TypeError(
            "boundaries_and_scales must be a dict {step: scale} or None, got "
            f"{type(boundaries_and_scales).__name__}"
        )
    items = sorted(
        (
            (_steps(boundary, f"boundaries_and_scales key {boundary!r}"), scale)
            for boundary, scale in boundaries_and_scales.items()
        ),
        key=lambda item: item[0],
    )
    boundaries = tuple(boundary for boundary, _ in items)
    scales = tuple(
        _float(scale, f"boundaries_and_scales[{boundary}]", low=0.0) for boundary, scale in items
    )
    return boundaries, scales


@suggest_keywords
def constant_schedule(value: ArrayLike) -> ConstantSchedule:
    """A schedule that is ``value`` at every step.

    Args:
      value: the value, a float (or a float scalar array, which may be traced).

    Returns:
      A :class:`ConstantSchedule`.

    Examples:
      >>> import optim
      >>> schedule = optim.constant_schedule(0.1)
      >>> [round(float(schedule(t)), 4) for t in (0, 100)]
      [0.1, 0.1]
    """
    return ConstantSchedule(value)


@suggest_keywords
def polynomial_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    power: ArrayLike,
    transition_steps: int,
    transition_begin: int = 0,
) -> PolynomialSchedule | ConstantSchedule:
    """Polynomial transition from ``init_value`` to ``end_value`` (see :class:`PolynomialSchedule`).

    Args:
      init_value: value up to step ``transition_begin``.
      end_value: value from step ``transition_begin + transition_steps`` on.
      power: power of the polynomial (1 is linear).
      transition_steps: length of the transition. If not positive, the schedule holds
        ``init_value`` at every step (with a warning), as in optax.
      transition_begin: step at which the transition starts. A negative value becomes 0 (with a
        warning), as in optax.

    Returns:
      A :class:`PolynomialSchedule`; a :class:`ConstantSchedule` of ``init_value`` when
      ``transition_steps`` is not positive.

    Examples:
      >>> import optim
      >>> schedule = optim.polynomial_schedule(1.0, 0.0, power=2, transition_steps=10)
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 20)]
      [1.0, 0.25, 0.0, 0.0]
    """
    init_value = _float(init_value, "init_value")
    end_value = _float(end_value, "end_value")
    power = _float(power, "power")
    transition_steps = _steps(transition_steps, "transition_steps", low=None)
    transition_begin = _transition_begin(transition_begin)
    if transition_steps <= 0:
        return _held_constant(transition_steps, init_value)
    return PolynomialSchedule(init_value, end_value, power, transition_steps, transition_begin)


@suggest_keywords
def linear_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    transition_steps: int,
    transition_begin: int = 0,
) -> PolynomialSchedule | ConstantSchedule:
    """Linear transition from ``init_value`` to ``end_value``: a polynomial schedule of power 1.

    ::

        value(t) = I + (E - I) * clip(t - transition_begin, 0, T) / T

    Args:
      init_value: I, the value up to step ``transition_begin``.
      end_value: E, the value from step ``transition_begin + transition_steps`` on.
      transition_steps: T, the length of the transition. If not positive, the schedule holds
        ``init_value`` at every step (with a warning), as in optax.
      transition_begin: step at which the transition starts. A negative value becomes 0 (with a
        warning), as in optax.

    Returns:
      A :class:`PolynomialSchedule` of power 1; a :class:`ConstantSchedule` of
      ``init_value`` when ``transition_steps`` is not positive.

    Examples:
      >>> import optim
      >>> schedule = optim.linear_schedule(1.0, 0.0, transition_steps=10, transition_begin=5)
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 15, 20)]
      [1.0, 1.0, 0.5, 0.0, 0.0]
    """
    return polynomial_schedule(init_value, end_value, 1.0, transition_steps, transition_begin)


@suggest_keywords
def cosine_decay_schedule(
    init_value: ArrayLike,
    decay_steps: int,
    alpha: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> CosineDecaySchedule:
    """Cosine decay from ``init_value`` to ``alpha * init_value``; see :class:`CosineDecaySchedule`.

    Args:
      init_value: value at step 0.
      decay_steps: positive; the step from which the value is ``alpha * init_value``.
      alpha: the final value as a fraction of ``init_value``.
      exponent: power applied to the cosine factor ``0.5 * (1 + cos(pi * t / decay_steps))``.

    Returns:
      A :class:`CosineDecaySchedule`.

    Examples:
      >>> import optim
      >>> schedule = optim.cosine_decay_schedule(1.0, decay_steps=10, alpha=0.1)
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 20)]
      [1.0, 0.55, 0.1, 0.1]
    """
    return CosineDecaySchedule(
        init_value,
        alpha,
        exponent,
        _steps(decay_steps, "decay_steps", low=1),
    )


@suggest_keywords
def exponential_decay(
    init_value: ArrayLike,
    transition_steps: int,
    decay_rate: ArrayLike,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
) -> ExponentialDecaySchedule | ConstantSchedule:
    """``init_value * decay_rate ** ((t - transition_begin) / transition_steps)``.

    See :class:`ExponentialDecaySchedule`.

    Args:
      init_value: value up to step ``transition_begin``.
      transition_steps: steps over which the value is multiplied by ``decay_rate``. If not
        positive, the schedule holds ``init_value`` at every step (with a warning), as in optax.
      decay_rate: non-negative factor per ``transition_steps``; 0 holds ``init_value`` at every
        step (with a warning when the value is known), as in optax.
      transition_begin: step at which the decay starts. A negative value becomes 0 (with a
        warning), as in optax.
      staircase: decay in whole steps of ``transition_steps`` (``floor`` the exponent).
      end_value: bound on the value: a lower bound when ``decay_rate < 1``, else an upper bound;
        None: unbounded.

    Returns:
      An :class:`ExponentialDecaySchedule`; a :class:`ConstantSchedule` of ``init_value``
      when ``transition_steps`` is not positive.

    Examples:
      >>> import optim
      >>> schedule = optim.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
      >>> [round(float(schedule(t)), 4) for t in (0, 10, 15, 20)]
      [1.0, 0.5, 0.3536, 0.25]
      >>> stairs = optim.exponential_decay(1.0, 10, 0.5, staircase=True)
      >>> [round(float(stairs(t)), 4) for t in (0, 10, 15, 20)]
      [1.0, 0.5, 0.5, 0.25]
    """
    init_value = _float(init_value, "init_value")
    decay_rate = _float(decay_rate, "decay_rate", low=0.0)
    if end_value is not None:
        end_value = _float(end_value, "end_value")
    transition_steps = _steps(transition_steps, "transition_steps", low=None)
    transition_begin = _transition_begin(transition_begin)
    staircase = check_flag(staircase, "staircase")
    if transition_steps <= 0:
        return _held_constant(transition_steps, init_value)
    if not isinstance(decay_rate, jax.core.Tracer) and decay_rate == 0:
        warn_user("decay_rate=0: the schedule holds init_value at every step, as in optax")
    return ExponentialDecaySchedule(
        init_value, decay_rate, end_value, transition_steps, transition_begin, staircase
    )


@suggest_keywords
def piecewise_constant_schedule(
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
) -> PiecewiseConstantSchedule:
    """``init_value`` scaled by every scale whose step the count has reached.

    See :class:`PiecewiseConstantSchedule`.

    Args:
      init_value: value before the first boundary.
      boundaries_and_scales: ``{step: scale}``; from ``step`` on, the value is multiplied by
        ``scale``. Steps are non-negative ints, scales non-negative floats. None: constant.

    Returns:
      A :class:`PiecewiseConstantSchedule`.

    Examples:
      >>> import optim
      >>> schedule = optim.piecewise_constant_schedule(1.0, {10: 0.1, 20: 0.5})
      >>> [round(float(schedule(t)), 4) for t in (0, 10, 20, 30)]
      [1.0, 0.1, 0.05, 0.05]
    """
    boundaries, scales = _boundaries_and_scales(boundaries_and_scales)
    return PiecewiseConstantSchedule(init_value, scales, boundaries)


@suggest_keywords
def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
) -> PiecewiseInterpolateSchedule:
    """Linear or cosine interpolation between the running products of the scales.

    See :class:`PiecewiseInterpolateSchedule`.

    Args:
      interpolate_type: ``'linear'`` or ``'cosine'``.
      init_value: value at step 0.
      boundaries_and_scales: ``{step: scale}``; the value reaches ``init_value`` times the product
        of the scales up to ``step`` at ``step``. Steps are non-negative ints, scales
        non-negative floats. None: constant.

    Returns:
      A :class:`PiecewiseInterpolateSchedule`.

    Examples:
      >>> import optim
      >>> schedule = optim.piecewise_interpolate_schedule("linear", 1.0, {10: 0.5, 20: 0.0})
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 15, 20)]
      [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    interpolate_type = _choice(interpolate_type, "interpolate_type", ("linear", "cosine"))
    boundaries, scales = _boundaries_and_scales(boundaries_and_scales)
    return PiecewiseInterpolateSchedule(init_value, scales, boundaries, interpolate_type)


def _onecycle_arguments(
    transition_steps: int, peak_value: ArrayLike, div_factor: ArrayLike, final_div_factor: ArrayLike
) -> tuple[int, jax.Array, jax.Array, jax.Array]:
    return (
        _steps(transition_steps, "transition_steps", low=1),
        _float(peak_value, "peak_value"),
        _float(div_factor, "div_factor", low=0.0, low_open=True),
        _float(final_div_factor, "final_div_factor", low=0.0, low_open=True),
    )


@suggest_keywords
def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: ArrayLike,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: ArrayLike = 25.0,
    final_div_factor: ArrayLike = 1e4,
) -> PiecewiseInterpolateSchedule:
    """One-cycle schedule with three linear phases (Smith & Topin, https://arxiv.org/abs/1708.07120).

    With T = ``transition_steps``, P = ``peak_value``, I = P / ``div_factor``:

    1. from step 0 to ``int(pct_start * T)``, up from I to P;
    2. to step ``int(pct_final * T)``, down from P to I;
    3. to step T, down from I to I / ``final_div_factor``, held from then on.

    A :func:`piecewise_interpolate_schedule`, built as optax builds it (if two phase boundaries
    fall on the same step, the later phase's scale wins, as in optax).

    Args:
      transition_steps: positive length of the cycle.
      peak_value: the largest value.
      pct_start: static fraction of the cycle spent rising, in ``[0, 1]``.
      pct_final: static fraction of the cycle at which the value is back at I, in ``[0, 1]``.
      div_factor: positive; I = ``peak_value / div_factor``.
      final_div_factor: positive; the final value is I / ``final_div_factor``.

    Returns:
      A :class:`PiecewiseInterpolateSchedule` (``'linear'``).

    Examples:
      >>> import optim
      >>> schedule = optim.linear_onecycle_schedule(100, peak_value=1.0)
      >>> [round(float(schedule(t)), 4) for t in (0, 30, 85, 100)]
      [0.04, 1.0, 0.04, 0.0]
    """
    transition_steps, peak_value, div_factor, final_div_factor = _onecycle_arguments(
        transition_steps, peak_value, div_factor, final_div_factor
    )
    boundaries_and_scales = {
        int(_fraction(pct_start, "pct_start") * transition_steps): div_factor,
        int(_fraction(pct_final, "pct_final") * transition_steps): 1.0 / div_factor,
        transition_steps: 1.0 / final_div_factor,
    }
    return piecewise_interpolate_schedule("linear", peak_value / div_factor, boundaries_and_scales)


@suggest_keywords
def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: ArrayLike,
    pct_start: float = 0.3,
    div_factor: ArrayLike = 25.0,
    final_div_factor: ArrayLike = 1e4,
) -> PiecewiseInterpolateSchedule:
    """One-cycle schedule with cosine phases (Smith & Topin, https://arxiv.org/abs/1708.07120).

    With T = ``transition_steps``, P = ``peak_value``, I = P / ``div_factor``: a cosine rise from
    I to P until step ``int(pct_start * T)``, then a cosine fall to I / ``final_div_factor`` at
    step T, held from then on. A :func:`piecewise_interpolate_schedule`, built as optax builds it.

    Args:
      transition_steps: positive length of the cycle.
      peak_value: P, the largest value.
      pct_start: static fraction of the cycle spent rising, in ``[0, 1]``.
      div_factor: positive; the initial value is I = ``peak_value / div_factor``.
      final_div_factor: positive; the final value is I / ``final_div_factor``.

    Returns:
      A :class:`PiecewiseInterpolateSchedule` (``'cosine'``).

    Examples:
      >>> import optim
      >>> schedule = optim.cosine_onecycle_schedule(100, peak_value=1.0)
      >>> [round(float(schedule(t)), 4) for t in (0, 30, 100)]
      [0.04, 1.0, 0.0]
    """
    transition_steps, peak_value, div_factor, final_div_factor = _onecycle_arguments(
        transition_steps, peak_value, div_factor, final_div_factor
    )
    boundaries_and_scales = {
        int(_fraction(pct_start, "pct_start") * transition_steps): div_factor,
        transition_steps: 1.0 / (div_factor * final_div_factor),
    }
    return piecewise_interpolate_schedule("cosine", peak_value / div_factor, boundaries_and_scales)


@suggest_keywords
def wsd_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    end_value: ArrayLike = 0.0,
    decay_type: str = "linear",
) -> WarmupStableDecaySchedule:
    """Warmup-stable-decay (see :class:`WarmupStableDecaySchedule`); not in optax.

    Linear warmup from ``init_value`` to ``peak_value``, ``peak_value`` for ``stable_steps``,
    then a decay to ``end_value``; the whole schedule lasts
    ``warmup_steps + stable_steps + decay_steps`` steps and holds ``end_value`` after that.

    Args:
      init_value: value at step 0.
      peak_value: value at the end of the warmup and during the stable phase.
      warmup_steps: non-negative length of the warmup (0 starts at ``peak_value``).
      stable_steps: non-negative length of the stable phase.
      decay_steps: non-negative length of the decay (0 drops to ``end_value`` at once).
      end_value: value at the end of the decay and after it.
      decay_type: shape of the decay: ``'linear'``, ``'cosine'`` (half a cosine period) or
        ``'1-sqrt'`` (``1 - sqrt(pct)``, Hägele et al. 2024).

    Returns:
      A :class:`WarmupStableDecaySchedule`.

    Examples:
      >>> from optim.schedules import wsd_schedule
      >>> schedule = wsd_schedule(0.0, 1.0, warmup_steps=10, stable_steps=80, decay_steps=10)
      >>> [round(float(schedule(t)), 3) for t in (0, 5, 10, 50, 90, 95, 100)]
      [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0]
    """
    return WarmupStableDecaySchedule(
        init_value,
        peak_value,
        end_value,
        _steps(warmup_steps, "warmup_steps"),
        _steps(stable_steps, "stable_steps"),
        _steps(decay_steps, "decay_steps"),
        _choice(decay_type, "decay_type", tuple(_INTERPOLATIONS)),
    )
