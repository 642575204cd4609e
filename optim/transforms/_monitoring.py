"""Monitoring: record measurements of the updates in the state, leaving the updates unchanged.

``snapshot`` stores one measurement of the updates it sees; ``monitor`` several, each a function
of the updates or a transformation whose output is the measurement (``measure_with_ema``: an
exponential moving average of one). In a chain they see the updates as transformed so far;
read them back with ``optax.tree.get(state, name)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import dtype_option, flag, hyper_field
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads, debias, ema_update, store_like
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_same_structure,
    full_like,
    map_arrays,
    safe_increment,
    zero_count,
)
from optim.base import EmptyState, Transformation, as_transformation
from optim.transforms._accumulation import EmaState

__all__ = ["MonitorState", "SnapshotState", "measure_with_ema", "monitor", "snapshot"]


def _check_measure(measure: Any, name: str) -> None:
    if not callable(measure):
        raise TypeError(
            f"{name} must be a function of the updates returning the measurement, got "
            f"{type(measure).__name__} {measure!r}"
        )


# --- snapshot -----------------------------------------------------------------------------


class SnapshotState(NamedTuple):
    """``{measure_name: measurement}``: of the params after ``init``, of the updates after
    each ``update``.

    Attributes:
      measurement: a dict with one entry, ``measure_name`` -> the measurement (what
        ``measure`` returned: a pytree of arrays).
    """

    measurement: dict[str, Any]


@pytree_dataclass
class Snapshot(Transformation):
    r"""Store :math:`m(g_t)` in the state and pass :math:`u_t = g_t` on unchanged. Built by
    :func:`optim.snapshot`.

    Attributes:
      measure_name: the key of the measurement in the state (static).
      measure: :math:`m`, the function of the updates (static).
    """

    measure_name: str = static()
    measure: Callable[[PyTree], Any] = static()

    def init(self, params: PyTree) -> SnapshotState:
        return SnapshotState({self.measure_name: self.measure(params)})

    def update(self, updates, state, params=None, **extra_args):
        del state, params, extra_args
        return updates, SnapshotState({self.measure_name: self.measure(updates)})


@suggest_keywords
def snapshot(measure_name: str, measure: Callable[[PyTree], Any]) -> Snapshot:
    """Store a measurement of the updates in the state (``optax.snapshot``).

    Useful to look at intermediate updates inside a chain: the measurement is of the updates
    as transformed by the blocks before it. ``init`` stores the measurement of the params,
    so the state has the same structure before and after the first update.

    Args:
      measure_name: the key of the measurement, for ``optax.tree.get(state, measure_name)``.
      measure: a function of the updates returning the measurement (a pytree of arrays).

    Returns:
      The transformation; its state is a ``SnapshotState``.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, optim
      >>> tx = optim.chain(
      ...     optim.sgd(learning_rate=0.1, momentum=0.9),
      ...     optim.snapshot("norm_before_clip", optax.tree.norm),
      ...     optim.clip_by_global_norm(0.05),
      ... )
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jax.grad(lambda x: jnp.sum(x**2))(params), state)
      >>> print(f"{optax.tree.get(state, 'norm_before_clip'):.2e}")
      7.48e-01
    """
    if not isinstance(measure_name, str):
        raise TypeError(
            f"measure_name must be a string, got {type(measure_name).__name__} {measure_name!r}"
        )
    _check_measure(measure, "measure")
    return Snapshot(measure_name, measure)


# --- monitor ------------------------------------------------------------------------------


class MonitorState(NamedTuple):
    """The last measurements, by name, and the state of each measuring transformation.

    Attributes:
      measurements: a dict from measurement names to the measurements of the last
        ``update`` (after ``init``: zeros of their shapes, see :func:`optim.monitor`).
      measure_states: the states of the measures, in the order of ``measures``
        (``EmptyState()`` for a plain function).
    """

    measurements: dict[str, Any]
    measure_states: tuple[Any, ...]


@pytree_dataclass
class _Measure(Transformation):
    """A function of the updates as a transformation whose output is the measurement."""

    measure: Callable[[PyTree], Any] = static()

    def init(self, params: PyTree) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        return self.measure(updates), state


@pytree_dataclass
class Monitor(Transformation):
    r"""Record measurements :math:`m_k = T_k(g_t)` (the outputs of transformations ``measures``,
    each with its own state) and pass :math:`u_t = g_t` on unchanged. Built by
    :func:`optim.monitor`.

    Attributes:
      names: the measurement names (static), in the order of ``measures``.
      measures: the measuring transformations (plain functions wrapped as transformations
        whose output is the measurement).
    """

    names: tuple[str, ...] = static()
    measures: tuple[Any, ...]

    def _measure(self, updates, states, params, extra_args):
        measurements, new_states = {}, []
        for name, measure, state in zip(self.names, self.measures, states, strict=True):
            measurements[name], new_state = measure.update(updates, state, params, **extra_args)
            new_states.append(new_state)
        return measurements, tuple(new_states)

    def init(self, params: PyTree) -> MonitorState:
        states = tuple(measure.init(params) for measure in self.measures)
        # Zeros shaped as the measurements the first update will make (optax starts from {}):
        # the state keeps one structure, as jax.lax.scan and our training loop need. A
        # measure that cannot run without the extra arguments of update is left out, as in
        # optax.
        zeros = {}
        for name, measure, state in zip(self.names, self.measures, states, strict=True):
            try:
                shapes = jax.eval_shape(lambda m=measure, s=state: m.update(params, s, params)[0])
            except (TypeError, KeyError):  # a missing keyword argument, or extra_args["loss"]
                continue
            zeros[name] = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return MonitorState(zeros, states)

    def update(self, updates, state, params=None, **extra_args):
        if len(state.measure_states) != len(self.measures):
            raise ValueError(
                f"state does not belong to this monitor of {len(self.measures)} measures (it "
                f"has {len(state.measure_states)} measure states); create it with init"
            )
        measurements, states = self._measure(updates, state.measure_states, params, extra_args)
        return updates, MonitorState(measurements, states)


@suggest_keywords
def monitor(measures: Mapping[str, Any]) -> Monitor:
    """Record several measurements of the updates, stateful ones included (``optax.monitor``).

    Each measure is a function of the updates (as in ``snapshot``) or a transformation whose
    output is the measurement, with its own state (``measure_with_ema``); transformations
    get the params and the extra keyword arguments of ``update``. The updates pass through
    unchanged.

    Unlike optax, whose ``init`` starts with no measurements (``{}``), ``init`` stores zeros
    shaped as the measurements, so the state keeps one structure (``jax.lax.scan``); only a
    measuring transformation that needs the extra arguments of ``update`` (a loss value)
    has no entry before the first update.

    Args:
      measures: a dict from measurement names to functions or transformations.

    Returns:
      The transformation; its state is a ``MonitorState``.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, optim
      >>> tx = optim.chain(
      ...     optim.sgd(learning_rate=0.1, momentum=0.9),
      ...     optim.monitor({
      ...         "norm_before_clip": optax.tree.norm,
      ...         "is_clipped_ema": optim.measure_with_ema(
      ...             lambda x: optax.tree.norm(x) > 1.0, decay=0.9
      ...         ),
      ...     }),
      ...     optim.clip_by_global_norm(1.0),
      ... )
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> state = tx.init(params)
      >>> for step in range(2):
      ...     updates, state = tx.update(jax.grad(lambda x: jnp.sum(x**2))(params), state)
      ...     params = optim.apply_updates(params, updates)
      >>> print(f"{optax.tree.get(state, 'is_clipped_ema'):.2e}")
      5.26e-01
    """
    if not isinstance(measures, Mapping):
        raise TypeError(
            f"measures must be a dict from names to functions or transformations, got "
            f"{type(measures).__name__}"
        )
    transformations = []
    for name, measure in measures.items():
        if callable(measure):  # a function of the updates, as optax decides (first)
            transformations.append(_Measure(measure))
        else:
            transformations.append(as_transformation(measure, f"measures[{name!r}]"))
    return Monitor(tuple(measures), tuple(transformations))


# --- measure_with_ema ---------------------------------------------------------------------


def _as_float(measurement: PyTree) -> PyTree:
    """Every leaf as a floating array: booleans and integers (a count, "was it clipped") as
    float32, so that their average is one."""

    def to_float(x: Any) -> jax.Array:
        x = jnp.asarray(x)
        return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)

    return jax.tree.map(to_float, measurement)


@pytree_dataclass
class MeasureWithEma(Transformation):
    r"""Exponential moving average of a measurement :math:`x_t = m(g_t)`:
    :math:`e_t = (1-\beta) x_t + \beta e_{t-1}`, output :math:`e_t / (1-\beta^t)` with
    ``debias=True``, else :math:`e_t`. The state is optax's: ``(EmptyState(), EmaState)``.
    Built by :func:`optim.measure_with_ema`.

    Attributes:
      measure: :math:`m`, the function of the updates (static).
      decay: :math:`\beta`, in ``[0, 1]`` (float32).
      debias: divide by :math:`1 - \beta^t` (static).
      accumulator_dtype: the dtype of the stored average (static); ``None``: float32, or the
        measurement's dtype when wider.
    """

    measure: Callable[[PyTree], Any] = static()
    decay: Any = hyper_field(low=0.0, high=1.0)
    debias: bool = flag(True)
    accumulator_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> tuple[EmptyState, EmaState]:
        average = full_like(_as_float(self.measure(params)), 0.0, self.accumulator_dtype)
        return EmptyState(), EmaState(count=zero_count(), ema=average)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        measurement = _as_float(self.measure(updates))
        _, ema_state = state
        check_same_structure(
            measurement, ema_state.ema, "the measurement", "its average (measured at init)"
        )
        average = map_arrays(lambda x, e: ema_update(x, e, self.decay), measurement, ema_state.ema)
        count = safe_increment(ema_state.count)
        out = average
        if self.debias:
            out = map_arrays(lambda e: debias(e, self.decay, count), average)
        new_state = EmaState(count=count, ema=store_like(average, ema_state.ema))
        return cast_like_grads(out, measurement), (EmptyState(), new_state)


@suggest_keywords
def measure_with_ema(
    measure: Callable[[PyTree], Any],
    decay: Any,
    debias: bool = True,
    accumulator_dtype: Any | None = None,
) -> MeasureWithEma:
    r"""An exponential moving average of a measurement of the updates, for ``monitor``
    (``optax.measure_with_ema``).

    With :math:`x_t = m(g_t)`: :math:`e_t = (1-\beta) x_t + \beta e_{t-1}`, :math:`e_0 = 0`;
    the output (the measurement ``monitor`` records) is :math:`e_t / (1 - \beta^t)` with
    ``debias``, else :math:`e_t`. Boolean and integer measurements are averaged as float32
    (the fraction of steps where a condition held), from ``init`` on (optax's average starts
    as a boolean and turns float at the first update).

    Args:
      measure: a function of the updates returning the measurement (a pytree of scalars or
        arrays; ``init`` measures the params to shape the average).
      decay: :math:`\beta`, in [0, 1].
      debias: whether to divide by :math:`1 - \beta^t`.
      accumulator_dtype: the dtype of the stored average (default: float32, or the
        measurement's dtype when wider).

    Returns:
      The transformation; its output is the average, its state ``(EmptyState(), EmaState)``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> tx = optim.measure_with_ema(lambda g: jnp.max(jnp.abs(g)), decay=0.5)
      >>> state = tx.init(jnp.zeros(2))
      >>> for g in (jnp.array([1.0, -2.0]), jnp.array([4.0, 0.0])):
      ...     average, state = tx.update(g, state)
      >>> float(average)  # (0.5 * 2 * 0.5 + 0.5 * 4) / (1 - 0.5**2)
      3.3333332538604736
    """
    _check_measure(measure, "measure")
    return MeasureWithEma(
        measure,
        decay,
        debias=debias,
        accumulator_dtype=accumulator_dtype,
    )
