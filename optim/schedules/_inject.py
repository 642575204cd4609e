"""Hyperparameters from schedules: ``inject_hyperparams`` evaluates schedule arguments of an
optimizer factory at each step and keeps their values in the state, where they can be read
and changed; ``inject_stateful_hyperparams`` does the same for schedules with a state.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import (
    FunctionSchedule,
    canonical_dtype,
    hyper,
    is_pytree_schedule,
    value_at,
)
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    is_array,
    safe_increment,
    zero_count,
)
from optim._warnings import warn_user
from optim.base import Transformation, as_transformation
from optim.transforms._common import StaticTree


class InjectHyperparamsState(NamedTuple):
    """optax's record without schedule states, kept for code that names it.

    optax deprecated it in 0.1.9; ``inject_hyperparams`` returns an
    ``InjectStatefulHyperparamsState``, as optax's does.

    Attributes:
      count: int32 scalar, the number of updates made so far.
      hyperparams: name -> the hyperparameter's value (a scalar array).
      inner_state: the state of the wrapped transformation.
    """

    count: jax.Array
    hyperparams: dict[str, jax.Array]
    inner_state: Any


class InjectStatefulHyperparamsState(NamedTuple):
    """The step count, the hyperparameters used by the last update (change the numeric ones
    between steps), each schedule's state and the inner state (optax's fields).

    Attributes:
      count: int32 scalar, the number of updates made so far.
      hyperparams: name -> the value of each numeric or scheduled hyperparameter used by the
        last update (a scalar array; the initial values after ``init``). Replace a numeric
        one between steps to change it, e.g. ``state.hyperparams["learning_rate"] = 0.01``.
      hyperparams_states: name -> the state of each scheduled hyperparameter's schedule
        (a :class:`WrappedSchedule`'s state for a function of the step count).
      inner_state: the state of the wrapped transformation.
    """

    count: jax.Array
    hyperparams: dict[str, jax.Array]
    hyperparams_states: dict[str, Any]
    inner_state: Any


@runtime_checkable
class StatefulSchedule(Protocol):
    """A schedule with a state of its own, as optax's ``StatefulSchedule``.

    ``init()`` returns the first state; ``schedule(state, **extra_args)`` the value for the
    coming update; ``update(state, **extra_args)`` the next state. ``extra_args`` are the
    keyword arguments given to the optimizer's ``update`` (a loss value, for example).
    """

    def init(self) -> Any: ...

    def update(self, state: Any, **extra_args: Any) -> Any: ...

    def __call__(self, state: Any, **extra_args: Any) -> Any: ...


class WrappedScheduleState(NamedTuple):
    """The step count a ``WrappedSchedule`` is evaluated at."""

    count: jax.Array


@pytree_dataclass
class WrappedSchedule(Transformation):
    r"""A function of the step count as a ``StatefulSchedule``: :math:`v_t = f(t)`, the state
    being :math:`t`, the number of updates made so far.

    ``schedule_fn`` is one of our schedules (its floats stay pytree leaves) or a plain
    function (optax's schedules included), which is held as static metadata.

    Args:
      schedule_fn: a function of the step count returning the value (one of ours or any
        other).

    Examples:
      >>> import optim
      >>> wrapped = optim.WrappedSchedule(optim.linear_schedule(1.0, 0.0, 10))
      >>> state = wrapped.update(wrapped.init())
      >>> round(float(wrapped(state)), 4)
      0.9
    """

    schedule_fn: Any

    def __post_init__(self) -> None:
        # Only a plain function is wrapped; an already wrapped subtree is kept (unflatten
        # does not run __post_init__, see optim._pytree).
        fn = self.schedule_fn
        if callable(fn) and not is_pytree_schedule(fn):
            object.__setattr__(self, "schedule_fn", FunctionSchedule(fn, "schedule_fn"))

    def init(self) -> WrappedScheduleState:
        return WrappedScheduleState(count=zero_count())

    def update(self, state: WrappedScheduleState, **extra_args: Any) -> WrappedScheduleState:
        del extra_args
        return WrappedScheduleState(count=safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> jax.Array:
        del extra_args
        return value_at(self.schedule_fn, state.count)


@dataclasses.dataclass(frozen=True, eq=False)
class _Held:
    """An object kept as static metadata, hashed and compared by identity whatever its own
    ``__eq__`` (so that an unhashable one can be metadata too)."""

    obj: Any


@pytree_dataclass
class _OpaqueStatefulSchedule(Transformation):
    """A stateful schedule that is not a pytree of arrays (optax's ``WrappedSchedule``, a plain
    class), held by identity as static metadata so that the optimizer stays a pytree of
    arrays; a new one recompiles a jitted step, as a new optax schedule does."""

    held: _Held = static()

    def init(self) -> Any:
        return self.held.obj.init()

    def update(self, state: Any, **extra_args: Any) -> Any:
        return self.held.obj.update(state, **extra_args)

    def __call__(self, state: Any, **extra_args: Any) -> Any:
        return self.held.obj(state, **extra_args)


def _as_schedule(value: Any, name: str) -> Any:
    """A stateful schedule as it is when it is a pytree of arrays (ours), else held
    (``_OpaqueStatefulSchedule``); a function of the count validated by ``hyper`` and wrapped
    in a ``WrappedSchedule``."""
    if isinstance(value, StatefulSchedule):
        leaves = jax.tree.leaves(value)
        if is_pytree_schedule(value) and all(is_array(leaf) for leaf in leaves):
            return value
        return _OpaqueStatefulSchedule(_Held(value))
    return WrappedSchedule(hyper(value, name))


def _hashable(value: Any) -> Any:
    """``value`` itself when hashable, else a pytree of hashable leaves as a ``StaticTree``."""
    try:
        hash(value)
        return value
    except TypeError:
        leaves, treedef = jax.tree.flatten(value)
        try:
            hash(tuple(leaves))
        except TypeError:
            raise TypeError(f"a static argument must be hashable, got {value!r}") from None
        return StaticTree(treedef, tuple(leaves))


@pytree_dataclass
class InjectHyperparams(Transformation):
    r"""``inner_factory(**hyperparams)`` rebuilt at every step from the state's hyperparameters.

    Numeric arguments are kept in ``state.hyperparams`` (change them between steps). A
    schedule :math:`s` with state :math:`\sigma_t` gives :math:`v_t = s(\sigma_t)` for update
    :math:`t` and then :math:`\sigma_{t+1} = s.\mathrm{update}(\sigma_t)`; a function of the
    count is the ``WrappedSchedule`` whose state is the count.
    """

    numeric: dict[str, Any]
    schedules: dict[str, Any]
    inner_factory: Any = static()
    static_kwargs: tuple[tuple[str, Any], ...] = static(())
    hyperparam_dtype: Any = static(None)

    def _cast(self, value: Any) -> jax.Array:
        array = jnp.asarray(value)
        if jnp.issubdtype(array.dtype, jnp.floating):
            return array.astype(self.hyperparam_dtype or jnp.float32)
        return array

    def inner(self, hyperparams: dict[str, Any]) -> Any:
        """The inner transformation with these hyperparameter values."""
        kwargs = {k: v.value() if isinstance(v, StaticTree) else v for k, v in self.static_kwargs}
        return as_transformation(
            self.inner_factory(**kwargs, **hyperparams), "the result of inner_factory"
        )

    def schedule_states(self) -> dict[str, Any]:
        """Each schedule's first state."""
        return {k: s.init() for k, s in self.schedules.items()}

    def _schedule_state(self, name: str, states: dict[str, Any], count: jax.Array) -> Any:
        """``states[name]``; for a schedule with no state there (one set by ``with_hyperparams``
        after ``init``) the state of the count, or its first state."""
        if name in states:
            return states[name]
        schedule = self.schedules[name]
        return (
            WrappedScheduleState(count)
            if isinstance(schedule, WrappedSchedule)
            else schedule.init()
        )

    def current(
        self,
        numeric: dict[str, Any],
        schedule_states: dict[str, Any],
        count: jax.Array,
        **extra_args: Any,
    ) -> dict[str, jax.Array]:
        """``numeric`` cast to the hyperparameter dtype, with the schedules evaluated at their
        states (``count``: the step count, for a schedule without one in ``schedule_states``)."""
        values = {k: self._cast(v) for k, v in numeric.items()}
        for name, schedule in self.schedules.items():
            state = self._schedule_state(name, schedule_states, count)
            values[name] = self._cast(schedule(state, **extra_args))
        return values

    def _untraceable(self, numeric: dict[str, jax.Array]) -> set[str]:
        """The numeric arguments that ``inner_factory`` cannot take as traced arrays.

        The state's hyperparameters are traced inside ``jit``; a factory that needs a Python
        number (our step counts and intervals are static, like shapes) raises then. Such
        arguments are kept static, as if named in ``static_args``. One abstract trace of the
        factory tells whether all can be traced; only if not, one per argument finds which.
        """
        values = self.current(numeric, self.schedule_states(), zero_count())

        def builds(names: Iterable[str]) -> bool:
            def build(traced: dict[str, jax.Array]) -> jax.Array:
                self.inner({**values, **traced})
                return jnp.zeros([])

            try:
                with warnings.catch_warnings():  # the concrete call warns, once
                    warnings.simplefilter("ignore")
                    jax.eval_shape(build, {k: values[k] for k in names})
            except Exception:  # any failure under tracing means "keep it static"
                return False
            return True

        if builds(numeric):
            return set()
        return {name for name in numeric if not builds([name])}

    def replaced(self, changes: dict[str, Any]) -> InjectHyperparams:
        """A copy with some hyperparameters (numbers or schedules) replaced, validated by
        calling the factory once."""
        numeric = {k: v for k, v in self.numeric.items() if k not in changes}
        schedules = {k: v for k, v in self.schedules.items() if k not in changes}
        for name, value in changes.items():
            if callable(value):
                schedules[name] = _as_schedule(value, name)
            else:
                numeric[name] = self._cast(hyper(value, name))
        new = dataclasses.replace(self, numeric=numeric, schedules=schedules)
        new.inner(new.current(numeric, new.schedule_states(), zero_count()))
        return new

    def init(self, params: PyTree) -> InjectStatefulHyperparamsState:
        count = zero_count()
        states = self.schedule_states()
        hyperparams = self.current(self.numeric, states, count)
        return InjectStatefulHyperparamsState(
            count, hyperparams, states, self.inner(hyperparams).init(params)
        )

    def update(self, updates, state, params=None, **extra_args):
        states = state.hyperparams_states
        hyperparams = self.current(state.hyperparams, states, state.count, **extra_args)
        new_states = dict(states)
        for name, schedule in self.schedules.items():
            if name in states:
                new_states[name] = schedule.update(states[name], **extra_args)
        updates, inner_state = self.inner(hyperparams).update(
            updates, state.inner_state, params, **extra_args
        )
        return updates, InjectStatefulHyperparamsState(
            safe_increment(state.count), hyperparams, new_states, inner_state
        )


@suggest_keywords
def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., InjectHyperparams]:
    """Keep ``inner_factory``'s numeric arguments in the optimizer state (optax's name).

    ``inject_hyperparams(optim.adam)(learning_rate=1e-3)`` behaves as ``optim.adam(1e-3)``,
    with ``state.hyperparams["learning_rate"]`` changeable between steps. Any numeric argument
    may be given as a schedule instead: a function of the step count, or a
    ``StatefulSchedule`` (``init()``, ``update(state, **extra_args)``,
    ``__call__(state, **extra_args)``), whose state is kept in ``state.hyperparams_states``
    and which sees the extra keyword arguments of ``update`` (a loss value, say). Callables
    are schedules unless named in ``static_args``; booleans and non-numbers are passed as
    they are. Numeric arguments that the factory needs as Python numbers (our step counts
    and intervals, e.g. ``sophia``'s ``update_interval``) are found by tracing the factory
    once and kept static too, so no ``static_args`` is needed for them (optax keeps them in
    the state). Values are validated by calling the factory once.

    Our optimizers need no such wrapper for sweeps: their float hyperparameters are already
    pytree leaves, so ``jax.vmap`` over them, or re-creating them inside a jitted step,
    works directly; see also ``hyperparams`` and ``with_hyperparams``.

    Differences from optax: hyperparameters are float32 (``hyperparam_dtype`` when given)
    whatever the parameters' dtype, where optax uses the parameters' dtype (bf16 parameters
    would round ``b2=0.999`` to 1.0); arguments kept static by the tracing above are not in
    ``state.hyperparams``.

    Args:
      inner_factory: a function returning a gradient transformation (ours or optax's).
      static_args: names of arguments never to treat as hyperparameters (callables that are
        not schedules, for example).
      hyperparam_dtype: the dtype of float hyperparameters (default float32).

    Returns:
      A function with ``inner_factory``'s arguments returning the transformation.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> tx = optim.inject_hyperparams(optim.sgd)(learning_rate=optim.linear_schedule(1., 0., 4))
      >>> state = tx.init(jnp.zeros(2))
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.ones(2), state)
      >>> schedule_state = state.hyperparams_states["learning_rate"]
      >>> float(state.hyperparams["learning_rate"]), int(schedule_state.count)
      (0.75, 2)
    """
    static_names = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    if not static_names <= set(signature.parameters):
        raise ValueError(
            f"static_args must name parameters of inner_factory; got {sorted(static_names)}, "
            f"parameters are {list(signature.parameters)}"
        )
    dtype = canonical_dtype(hyperparam_dtype, "hyperparam_dtype")

    @functools.wraps(inner_factory)
    def wrapped(*args: Any, **kwargs: Any) -> InjectHyperparams:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        numeric, schedules, static_kwargs = {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static_names or isinstance(value, bool):
                static_kwargs[name] = value
            elif callable(value):
                schedules[name] = _as_schedule(value, name)
            elif isinstance(value, (int, float, jax.Array, np.ndarray, np.generic)):
                numeric[name] = value
            else:
                static_kwargs[name] = value

        def static(kwargs: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
            return tuple((k, _hashable(v)) for k, v in kwargs.items())

        tx = InjectHyperparams({}, schedules, inner_factory, static(static_kwargs), dtype)
        for name in tx._untraceable({k: tx._cast(v) for k, v in numeric.items()}):
            static_kwargs[name] = numeric.pop(name)
        tx = dataclasses.replace(
            tx,
            numeric={k: tx._cast(v) for k, v in numeric.items()},
            static_kwargs=static(static_kwargs),
        )
        tx.inner(tx.current(tx.numeric, tx.schedule_states(), zero_count()))  # validates
        return tx

    return wrapped


@suggest_keywords
def inject_stateful_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., InjectHyperparams]:
    """``inject_hyperparams``, under optax's older name (deprecated there since 0.1.9).

    Warns with a ``DeprecationWarning``, as optax does, and returns
    ``inject_hyperparams(inner_factory, static_args, hyperparam_dtype)``.

    Args:
      inner_factory: a function returning a gradient transformation.
      static_args: names of arguments never to treat as hyperparameters.
      hyperparam_dtype: the dtype of float hyperparameters (default float32).

    Returns:
      What ``inject_hyperparams`` returns.

    Examples:
      >>> import warnings, optim
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     tx = optim.inject_stateful_hyperparams(optim.sgd)(learning_rate=0.1, momentum=0.9)
      >>> sorted(tx.init({}).hyperparams)
      ['learning_rate', 'momentum']
    """
    warn_user(
        "inject_stateful_hyperparams is deprecated, use inject_hyperparams instead",
        DeprecationWarning,
    )
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)
