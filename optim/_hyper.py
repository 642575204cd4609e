"""Float hyperparameters (validated once from Python values, then stored as float32 array leaves)
and static options (flags, integers, dtypes: checked once, then kept as pytree metadata).

A hyperparameter is a float32 scalar array or a schedule (a pytree whose ``__call__(count)``
returns a float32 scalar). Plain Python callables, optax schedules included, are wrapped in
``FunctionSchedule`` so the optimizer stays a pytree of arrays (the function becomes static
metadata, compared by identity).

Checks that need a concrete value (sign, finiteness, range) run on Python and NumPy numbers
only; a traced value (inside ``jit``/``vmap``/``grad``) is accepted as it is, since its value
is unknown until run time.

A transformation declares each hyperparameter's constraint once, on its dataclass field
(``b1: Any = decay()``, ``eps: Any = nonnegative()``, ``x: Any = hyper_field(low=1.0)``); the
value is checked and converted by ``hyper`` when the object is built, so a factory passes its
arguments through as they are. A static option declares its check the same way (``nesterov: bool
= flag(False)``, ``mu_dtype: Any = dtype_option()``, ``rank: int = int_option(low=1)``), so a
transformation built directly from its class is checked as its factory's is. Unflattening never
re-checks (see ``optim._pytree``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._pytree import checked, pytree_dataclass, static


@pytree_dataclass
class FunctionSchedule:
    """A plain function of the step count used as a schedule; the function is static.

    ``name`` is the hyperparameter it stands for, named in the error when the function
    returns something other than a scalar.
    """

    fn: Callable[[jax.Array], Any] = static()
    name: str = static("schedule")

    def __call__(self, count: jax.Array) -> jax.Array:
        value = jnp.asarray(self.fn(count), jnp.float32)
        if value.shape != ():
            raise ValueError(
                f"{self.name} is a schedule that returned an array of shape {value.shape}; "
                "a schedule must return a scalar (the value at the given step)"
            )
        return value


@pytree_dataclass
class Decay:
    r"""A decay rate :math:`\beta` kept with its complement :math:`1 - \beta`: two float32 leaves.

    A moving average weighs the new value by :math:`1 - \beta`. Computed in float32 from the
    float32 :math:`\beta`, that weight loses digits: for :math:`\beta = 0.999` it is
    0.00099998713, not 0.001 (and 0.14% off for 0.99999). Given a Python number, both are
    rounded to float32 from the exact values, as optax computes them, so trajectories agree
    with optax's; given an array (a NumPy or JAX scalar, or a traced value under ``jit`` or
    ``vmap``) the complement is computed in its precision, as optax does too. Use
    ``_numerics.decay_rate`` and ``decay_complement`` (they accept a plain array too).
    """

    rate: Any
    complement: Any


def decay_hyper(value: Any, name: str, *, closed: bool = False, low_open: bool = False) -> Decay:
    """Validate a decay rate in ``[0, 1)`` (``[0, 1]`` with ``closed``, 0 excluded with
    ``low_open``) and keep it with its complement (see ``Decay``). A ``Decay`` is returned as
    it is (a factory rebuilding an optimizer from its own fields, as ``with_hyperparams``
    does, passes them back)."""
    if isinstance(value, Decay):
        return value
    rate = hyper(
        value, name, schedule=False, low=0.0, high=1.0, low_open=low_open, high_open=not closed
    )
    if isinstance(value, (int, float)):
        return Decay(rate, np.float32(1.0 - float(value)))
    return Decay(rate, 1 - rate)


def decay_or_schedule(value: Any, name: str) -> Any:
    """A decay rate in ``[0, 1]`` that may also be a schedule: a ``Decay`` for a number (see
    ``decay_hyper``), the schedule itself otherwise (read it with ``decay_at``)."""
    if is_schedule(value) and not isinstance(value, Decay):
        return hyper(value, name, low=0.0, high=1.0)
    return decay_hyper(value, name, closed=True)


def decay_at(hyperparameter: Any, count: Any) -> Any:
    """A ``Decay`` as it is, a schedule's value at ``count``, any other value as it is."""
    if isinstance(hyperparameter, Decay):
        return hyperparameter
    return value_at(hyperparameter, count)


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool if it is True or False (NumPy's too), else a TypeError naming it: a
    truthy string or number is not quietly taken for True."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def check_int(
    value: Any, name: str, *, low: int | None = None, high: int | None = None, note: str = ""
) -> int:
    """``value`` as a Python int if it is a static integer (Python's or NumPy's; not a bool, a
    float or a traced array) in ``[low, high]``: else a TypeError (another type) or a
    ValueError (out of range) naming it. ``note``, in the TypeError, says why an int."""
    index = None
    if not isinstance(value, (bool, np.bool_, jax.core.Tracer)):
        with contextlib.suppress(TypeError):
            index = operator.index(value)
    hint = f" ({note})" if note else ""
    if index is None:
        raise TypeError(f"{name} must be an int{hint}, got {type(value).__name__} {value!r}")
    if (low is not None and index < low) or (high is not None and index > high):
        if high is None:
            expected = f">= {low}"
        elif low is None:
            expected = f"<= {high}"
        else:
            expected = f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an int {expected}, got {index}")
    return index


def canonical_dtype(dtype: Any, name: str) -> Any:
    """Canonical static dtype (hashable) or None; rejects non-float dtypes."""
    if dtype is None:
        return None
    try:
        canonical = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be a dtype, got {dtype!r}") from None
    if not jnp.issubdtype(canonical, jnp.inexact):
        raise TypeError(f"{name} must be a floating or complex dtype, got {canonical}")
    return canonical


def is_schedule(value: Any) -> bool:
    return callable(value)


def _concrete(value: Any) -> float | None:
    """The Python value of a scalar, or None when it is traced."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.shape != ():
        raise ValueError(f"must be a scalar, got an array of shape {array.shape}")
    return complex(array).real if np.iscomplexobj(array) else float(array)


def hyper(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    schedule: bool = True,
    allow_inf: bool = False,
) -> Any:
    """Validate a float hyperparameter and return it as a float32 scalar or a schedule.

    A concrete value becomes a NumPy ``float32`` scalar; a traced one stays traced.

    ``low``/``high`` bound the value (closed unless ``low_open``/``high_open``); the error
    names ``name`` and the range expected. ``allow_inf`` admits +inf (a condition switched
    off).
    """
    if value is None:
        raise TypeError(f"{name} must be a number, got None")
    if is_schedule(value):
        if not schedule:
            raise TypeError(f"{name} must be a number, not a schedule")
        return value if is_pytree_schedule(value) else FunctionSchedule(value, name)
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    try:
        concrete = _concrete(value)
    except ValueError as e:
        raise ValueError(f"{name} {e}") from None
    if concrete is not None:
        if not math.isfinite(concrete) and not (allow_inf and concrete == math.inf):
            raise ValueError(f"{name} must be finite, got {concrete}")
        below = low is not None and (concrete <= low if low_open else concrete < low)
        above = high is not None and (concrete >= high if high_open else concrete > high)
        if below or above:
            raise ValueError(
                f"{name} must be in {_interval(low, high, low_open, high_open)}, got {concrete}"
            )
    array = jnp.asarray(value) if concrete is None else np.asarray(value)
    if array.shape != ():
        raise ValueError(f"{name} must be a scalar, got shape {array.shape}")
    if jnp.issubdtype(array.dtype, jnp.complexfloating):
        dtype = jax.dtypes.canonicalize_dtype(array.dtype)  # complex64 unless x64 is on
        raise TypeError(f"{name} must be real, got dtype {dtype}")
    if concrete is None:
        return array.astype(jnp.float32)
    # A NumPy scalar, not a device array: a jitted function taking the optimizer as an argument
    # still traces it (no recompile for a new value), and frameworks that keep the optimizer as
    # static metadata (flax NNX's ``nnx.Optimizer``) accept it, since it holds no array data.
    return np.float32(array)


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def is_pytree_schedule(value: Any) -> bool:
    """A schedule that is a pytree node (ours), not an opaque function that is itself a leaf."""
    leaves = jax.tree.leaves(value)
    return not (len(leaves) == 1 and leaves[0] is value)


def value_at(hyperparameter: Any, count: jax.Array) -> jax.Array:
    """The hyperparameter's value at step ``count`` (its own value when it is not a schedule;
    the rate of a ``Decay``)."""
    if isinstance(hyperparameter, Decay):
        return hyperparameter.rate
    if is_schedule(hyperparameter):
        return jnp.asarray(hyperparameter(count), jnp.float32)
    return hyperparameter


# --- constraints declared on a dataclass field ----------------------------------------------


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The constraint of a float hyperparameter field: ``hyper``'s keyword arguments; with
    ``optional`` the field may also be None (an option switched off)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    schedule: bool = False
    optional: bool = False
    allow_inf: bool = False

    def __call__(self, value: Any, name: str) -> Any:
        if value is None and self.optional:
            return None
        return hyper(
            value,
            name,
            low=self.low,
            high=self.high,
            low_open=self.low_open,
            high_open=self.high_open,
            schedule=self.schedule,
            allow_inf=self.allow_inf,
        )


@dataclasses.dataclass(frozen=True)
class DecayBounds:
    """The constraint of a decay-rate field: ``[0, 1)``, or ``[0, 1]`` when ``closed``, kept
    with its complement (``decay_hyper``); with ``schedule`` a schedule is taken as it is
    (``decay_or_schedule``, closed)."""

    closed: bool = False
    schedule: bool = False
    low_open: bool = False

    def __call__(self, value: Any, name: str) -> Any:
        if self.schedule:
            return decay_or_schedule(value, name)
        return decay_hyper(value, name, closed=self.closed, low_open=self.low_open)


def hyper_field(
    default: Any = dataclasses.MISSING,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    schedule: bool = False,
    name: str | None = None,
    optional: bool = False,
    allow_inf: bool = False,
    kw_only: bool = False,
) -> Any:
    """A float hyperparameter field: a finite real number (or, with ``schedule``, a schedule)
    bounded by ``low``/``high`` (closed unless ``low_open``/``high_open``), checked and converted
    by ``hyper`` when the object is built; ``optional`` admits None, ``allow_inf`` +inf, and
    ``name`` is the argument errors name where the factory's differs from the field's."""
    bounds = Bounds(low, high, low_open, high_open, schedule, optional, allow_inf)
    return checked(bounds, default, name=name, kw_only=kw_only)


def nonnegative(default: Any = dataclasses.MISSING, *, schedule: bool = False, **kw: Any) -> Any:
    """A float hyperparameter field in ``[0, inf)`` (epsilons, weight decays, thresholds)."""
    return hyper_field(default, low=0.0, schedule=schedule, **kw)


def positive(default: Any = dataclasses.MISSING, *, schedule: bool = False, **kw: Any) -> Any:
    """A float hyperparameter field in ``(0, inf)``."""
    return hyper_field(default, low=0.0, low_open=True, schedule=schedule, **kw)


def decay(
    default: Any = dataclasses.MISSING,
    *,
    closed: bool = False,
    schedule: bool = False,
    name: str | None = None,
    low_open: bool = False,
    kw_only: bool = False,
) -> Any:
    """A decay-rate field (see ``DecayBounds``): ``[0, 1)``, or ``[0, 1]`` when ``closed``
    (where no bias correction divides by :math:`1 - \\beta^t`); with ``schedule`` also a
    schedule; with ``low_open`` 0 is excluded. ``name`` as in ``hyper_field``."""
    return checked(DecayBounds(closed, schedule, low_open), default, name=name, kw_only=kw_only)


def flag(
    default: Any = dataclasses.MISSING, *, name: str | None = None, kw_only: bool = False
) -> Any:
    """A static True/False option field, checked by ``check_flag`` when the object is built (a
    string or a number is a TypeError); ``name`` as in ``hyper_field``.

    >>> from optim._pytree import pytree_dataclass
    >>> @pytree_dataclass
    ... class Example:
    ...     nesterov: bool = flag(False)
    >>> Example(nesterov="no")
    Traceback (most recent call last):
    TypeError: nesterov must be True or False, got str 'no'
    """
    return static(default, check=check_flag, name=name, kw_only=kw_only)


def int_option(
    default: Any = dataclasses.MISSING,
    *,
    low: int | None = None,
    high: int | None = None,
    note: str = "",
    name: str | None = None,
    kw_only: bool = False,
) -> Any:
    """A static integer option field in ``[low, high]``, checked by ``check_int`` when the object
    is built (a float or a bool is a TypeError, a value out of range a ValueError); ``note`` and
    ``name`` as there and in ``hyper_field``.

    >>> from optim._pytree import pytree_dataclass
    >>> @pytree_dataclass
    ... class Example:
    ...     rank: int = int_option(low=1)
    >>> Example(rank=0)
    Traceback (most recent call last):
    ValueError: rank must be an int >= 1, got 0
    """
    check = functools.partial(check_int, low=low, high=high, note=note)
    return static(default, check=check, name=name, kw_only=kw_only)


def dtype_option(default: Any = None, *, name: str | None = None, kw_only: bool = False) -> Any:
    """A static dtype option field: None (the default dtype) or a floating or complex dtype,
    stored canonical (``canonical_dtype``) when the object is built; ``name`` as in
    ``hyper_field``.

    >>> from optim._pytree import pytree_dataclass
    >>> @pytree_dataclass
    ... class Example:
    ...     mu_dtype: Any = dtype_option()
    >>> Example(mu_dtype="bfloat16").mu_dtype
    dtype(bfloat16)
    >>> Example(mu_dtype="int32")
    Traceback (most recent call last):
    TypeError: mu_dtype must be a floating or complex dtype, got int32
    """
    return static(default, check=canonical_dtype, name=name, kw_only=kw_only)
