"""Float hyperparameters: validated once from Python values, then stored as float32 array leaves.

A hyperparameter is a float32 scalar array or a schedule (a pytree whose ``__call__(count)``
returns a float32 scalar). Plain Python callables, optax schedules included, are wrapped in
``FunctionSchedule`` so the optimizer stays a pytree of arrays (the function becomes static
metadata, compared by identity).

Checks that need a concrete value (sign, finiteness, range) run on Python and NumPy numbers
only; a traced value (inside ``jit``/``vmap``/``grad``) is accepted as it is, since its value
is unknown until run time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._pytree import pytree_dataclass, static


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


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool if it is True or False (NumPy's too), else a TypeError naming it: a
    truthy string or number is not quietly taken for True."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


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
) -> Any:
    """Validate a float hyperparameter and return it as a float32 scalar array or a schedule.

    ``low``/``high`` bound the value (closed unless ``low_open``/``high_open``); the error
    names ``name`` and the range expected.
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
        if not math.isfinite(concrete):
            raise ValueError(f"{name} must be finite, got {concrete}")
        below = low is not None and (concrete <= low if low_open else concrete < low)
        above = high is not None and (concrete >= high if high_open else concrete > high)
        if below or above:
            raise ValueError(
                f"{name} must be in {_interval(low, high, low_open, high_open)}, got {concrete}"
            )
    array = jnp.asarray(value)
    if array.shape != ():
        raise ValueError(f"{name} must be a scalar, got shape {array.shape}")
    if jnp.issubdtype(array.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {array.dtype}")
    return array.astype(jnp.float32)


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def is_pytree_schedule(value: Any) -> bool:
    """A schedule that is a pytree node (ours), not an opaque function that is itself a leaf."""
    leaves = jax.tree.leaves(value)
    return not (len(leaves) == 1 and leaves[0] is value)


def value_at(hyperparameter: Any, count: jax.Array) -> jax.Array:
    """The hyperparameter's value at step ``count`` (its own value when it is not a schedule)."""
    if is_schedule(hyperparameter):
        return jnp.asarray(hyperparameter(count), jnp.float32)
    return hyperparameter
