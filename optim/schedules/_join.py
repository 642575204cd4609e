"""Joined schedules: one schedule after another at given boundaries, and the schedules built
that way (a warmup before constant, cosine or exponential decay; SGDR's warm restarts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optim._hyper import hyper
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass, static
from optim.schedules._schedules import (
    ConstantSchedule,
    PolynomialSchedule,
    _float,
    _reachable,
    _select,
    _steps,
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
)


@pytree_dataclass
class JoinSchedule:
    r"""``schedules[0]`` until ``boundaries[0]``, then ``schedules[i]`` counted from its boundary.

    ::

        value(t) = schedules[0](t)                     for t < b_1
                   schedules[i](t - b_i)               for b_i <= t < b_{i+1}

    Attributes:
      schedules: the schedules, a tuple; schedules of this module are pytrees (their floats are
        leaves), other functions of the step count are static metadata.
      boundaries: b_1 <= ... <= b_n, ``len(schedules) - 1`` non-negative ints (static).
    """

    schedules: tuple[Callable[[jax.Array], jax.Array], ...]
    boundaries: tuple[int, ...] = static()

    def __call__(self, count: ArrayLike) -> jax.Array:
        count = jnp.asarray(count)
        first, *rest = self.schedules
        values = [first(count), *(s(count - b) for s, b in _reachable(rest, self.boundaries))]
        return _select(count, self.boundaries, values)


@suggest_keywords
def join_schedules(
    schedules: Sequence[Callable[[jax.Array], ArrayLike]], boundaries: Sequence[int]
) -> JoinSchedule:
    """One schedule after another (see :class:`JoinSchedule`).

    Args:
      schedules: schedules of this module or any function of the step count (an optax schedule,
        a lambda), which is kept as static metadata. ``schedules[i]`` counts its steps from
        ``boundaries[i - 1]``.
      boundaries: ``len(schedules) - 1`` non-negative, non-decreasing ints: the steps at which
        the next schedule takes over.

    Returns:
      A :class:`JoinSchedule`.

    Examples:
      >>> import optim
      >>> schedule = optim.join_schedules(
      ...     [optim.constant_schedule(1.0), optim.linear_schedule(1.0, 0.0, 10)], [5])
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 15)]
      [1.0, 1.0, 0.5, 0.0]
    """
    schedules = tuple(schedules)
    if not schedules:
        raise ValueError("schedules must hold at least one schedule")
    for i, schedule in enumerate(schedules):
        if not callable(schedule):
            raise TypeError(
                f"schedules[{i}] must be a schedule (a function of the step count), "
                f"got {type(schedule).__name__} {schedule!r}"
            )
    boundaries = tuple(_steps(b, f"boundaries[{i}]") for i, b in enumerate(boundaries))
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries must hold one int fewer than schedules ({len(schedules)}), "
            f"got {len(boundaries)}"
        )
    if list(boundaries) != sorted(boundaries):
        raise ValueError(f"boundaries must be non-decreasing, got {list(boundaries)}")
    return JoinSchedule(
        tuple(hyper(s, f"schedules[{i}]") for i, s in enumerate(schedules)), boundaries
    )


def _warmup_then(
    init_value: jax.Array, peak_value: jax.Array, warmup_steps: int, schedule: Callable
) -> JoinSchedule:
    """Linear warmup from ``init_value`` to ``peak_value``, then ``schedule``."""
    # With no warmup the first piece is never used (its boundary is 0): a constant avoids the
    # warning linear_schedule gives for zero transition steps.
    warmup = (
        linear_schedule(init_value, peak_value, warmup_steps)
        if warmup_steps
        else constant_schedule(init_value)
    )
    return join_schedules((warmup, schedule), (warmup_steps,))


@suggest_keywords
def warmup_constant_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: int,
) -> PolynomialSchedule | ConstantSchedule:
    """Linear warmup from ``init_value`` to ``peak_value`` over ``warmup_steps``, then constant.

    ``warmup_steps=0`` holds ``init_value`` (with a warning), as in optax.

    Args:
      init_value: value at step 0.
      peak_value: value from step ``warmup_steps`` on.
      warmup_steps: length of the warmup, an int; if not positive, the schedule holds
        ``init_value`` at every step (with a warning), as in optax.

    Returns:
      A :class:`PolynomialSchedule` (a :func:`linear_schedule`); a :class:`ConstantSchedule`
      of ``init_value`` when ``warmup_steps`` is not positive.

    Examples:
      >>> import optim
      >>> schedule = optim.warmup_constant_schedule(0.0, 1.0, warmup_steps=10)
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 100)]
      [0.0, 0.5, 1.0, 1.0]
    """
    warmup_steps = _steps(warmup_steps, "warmup_steps", low=None)
    return linear_schedule(init_value, _float(peak_value, "peak_value"), warmup_steps)


@suggest_keywords
def warmup_cosine_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: int,
    decay_steps: int,
    end_value: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> JoinSchedule:
    """Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    The join of :func:`linear_schedule` and :func:`cosine_decay_schedule` with
    ``alpha = end_value / peak_value`` (0 when ``peak_value`` is 0, as in optax)::

        value(t) = I + (P - I) * t / W                                        for t < W
                   P * ((1 - alpha) * (0.5 * (1 + cos(pi * (t - W) / (D - W)))) ** p + alpha)

    Args:
      init_value: value at step 0.
      peak_value: value at the end of the warmup.
      warmup_steps: non-negative length of the warmup.
      decay_steps: total length of the schedule, warmup included; more than ``warmup_steps``.
      end_value: value from step ``decay_steps`` on.
      exponent: power applied to the cosine factor.

    Returns:
      A :class:`JoinSchedule` of the warmup and the decay.

    Examples:
      >>> import optim
      >>> schedule = optim.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=10, decay_steps=110)
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 60, 110)]
      [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    init_value = _float(init_value, "init_value")
    peak_value = _float(peak_value, "peak_value")
    end_value = _float(end_value, "end_value")
    warmup_steps = _steps(warmup_steps, "warmup_steps")
    decay_steps = _steps(decay_steps, "decay_steps")
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"decay_steps ({decay_steps}) must exceed warmup_steps ({warmup_steps}): "
            "it is the length of the whole schedule, warmup included"
        )
    # optax branches in Python on peak_value == 0; the inner where keeps the gradient finite.
    zero_peak = peak_value == 0
    alpha = jnp.where(zero_peak, 0.0, end_value / jnp.where(zero_peak, 1.0, peak_value))
    decay = cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)
    return _warmup_then(init_value, peak_value, warmup_steps, decay)


@suggest_keywords
def warmup_exponential_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: ArrayLike,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
) -> JoinSchedule:
    """Linear warmup to ``peak_value``, then :func:`exponential_decay` from ``peak_value``.

    The decay's step count starts at ``warmup_steps``; its arguments are those of
    :func:`exponential_decay`, ``peak_value`` in the place of ``init_value``.

    Args:
      init_value: value at step 0.
      peak_value: value at the end of the warmup, where the decay starts.
      warmup_steps: non-negative length of the warmup (0: no warmup).
      transition_steps: steps over which the value is multiplied by ``decay_rate``; if not
        positive, the decay holds ``peak_value`` (with a warning), as in optax.
      decay_rate: non-negative factor per ``transition_steps``.
      transition_begin: steps after the warmup before the decay starts (a negative value
        becomes 0, with a warning, as in optax).
      staircase: decay in whole steps of ``transition_steps`` (``floor`` the exponent).
      end_value: bound on the value: a lower bound when ``decay_rate < 1``, else an upper
        bound; None: unbounded.

    Returns:
      A :class:`JoinSchedule` of the warmup and the decay.

    Examples:
      >>> import optim
      >>> schedule = optim.warmup_exponential_decay_schedule(
      ...     0.0, 1.0, warmup_steps=10, transition_steps=10, decay_rate=0.5)
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 10, 20, 30)]
      [0.0, 0.5, 1.0, 0.5, 0.25]
    """
    init_value = _float(init_value, "init_value")
    peak_value = _float(peak_value, "peak_value")
    warmup_steps = _steps(warmup_steps, "warmup_steps")
    decay = exponential_decay(
        peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )
    return _warmup_then(init_value, peak_value, warmup_steps, decay)


@suggest_keywords
def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, Any]]) -> JoinSchedule:
    """SGD with warm restarts (Loshchilov & Hutter, https://arxiv.org/abs/1608.03983).

    One :func:`warmup_cosine_decay_schedule` per cycle, joined: cycle i starts at the sum of the
    ``decay_steps`` of the cycles before it.

    Args:
      cosine_kwargs: one dict of :func:`warmup_cosine_decay_schedule` arguments per cycle
        (at least one), each with ``decay_steps``.

    Returns:
      A :class:`JoinSchedule` of the cycles.

    Examples:
      >>> import optim
      >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=20)
      >>> schedule = optim.sgdr_schedule([cycle, cycle])
      >>> [round(float(schedule(t)), 4) for t in (0, 5, 20, 25, 40)]
      [0.0, 1.0, 0.0, 1.0, 0.0]
    """
    schedules, boundaries, step = [], [], 0
    for i, kwargs in enumerate(cosine_kwargs):
        try:
            schedules.append(warmup_cosine_decay_schedule(**kwargs))
        except (TypeError, ValueError) as e:
            raise type(e)(f"cosine_kwargs[{i}]: {e}") from e
        step += kwargs["decay_steps"]
        boundaries.append(step)
    if not schedules:
        raise ValueError("cosine_kwargs must hold at least one cycle")
    return join_schedules(schedules, boundaries[:-1])
