"""Reduce the learning rate when a monitored loss stops improving (``optax.contrib``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import hyper_field, int_option, nonnegative
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass
from optim._tree import (
    INT32_MAX,
    PyTree,
    check_float_updates,
    check_params,
    compute_dtype,
    is_trainable,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim.base import Transformation

__all__ = ["ReduceLROnPlateauState", "reduce_on_plateau"]


class ReduceLROnPlateauState(NamedTuple):
    """The state of :func:`optim.contrib.reduce_on_plateau`.

    Attributes:
      scale: :math:`s`, the current multiplier of the updates, a float32 scalar (1 at first).
      best_value: :math:`f^*`, the best (lowest) mean value seen at a check (``inf`` at first),
        a scalar in the params' widest float dtype (float32 at least).
      plateau_count: :math:`p`, the number of checks since the last improvement (int32).
      cooldown_count: the number of checks of the cooldown left, during which no plateau is
        counted (int32).
      count: the number of values accumulated since the last check (int32).
      avg_value: the running mean of those values, of ``best_value``'s dtype.
    """

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array
    avg_value: jax.Array


def _value_dtype(params: PyTree) -> Any:
    """The widest real compute dtype among the trainable leaves (float32 at least)."""
    dtype = jnp.dtype(jnp.float32)
    for leaf in jax.tree.leaves(params):
        if is_trainable(leaf):
            dtype = jnp.promote_types(dtype, jnp.finfo(compute_dtype(leaf)).dtype)
    return dtype


def _call_count(default: int, low: int) -> Any:
    """A field holding a static count of calls to ``update`` in ``[low, 2**31 - 1]``."""
    return int_option(default, low=low, high=INT32_MAX, note="a number of calls to update")


@pytree_dataclass
class ReduceOnPlateau(Transformation):
    r"""Multiply the updates by a scale :math:`s` that drops by ``factor`` on a plateau.

    Every ``accumulation_size`` calls, the mean :math:`\bar f` of the ``value`` arguments
    received since the last check is compared with the best mean so far :math:`f^*`:

    .. math::
        \text{improved} \iff \bar f < (1 - r_{tol}) f^* - a_{tol}.

    An improvement sets :math:`f^* = \bar f` and the plateau count :math:`p` to 0, otherwise
    :math:`p` grows by 1. When :math:`p` reaches ``patience`` the scale becomes
    :math:`\max(s \cdot \text{factor}, s_{min})`, :math:`p` restarts from 0 and the next
    ``cooldown`` checks cannot count towards a plateau. The outgoing updates are :math:`s\,u`.

    This is the schedule of PyTorch's ``ReduceLROnPlateau`` (mode ``"min"``) as an
    ``optax.contrib.reduce_on_plateau``-compatible transformation: chain it after an
    optimizer and pass the monitored loss as ``update(..., value=loss)``. Complex updates are
    scaled like real ones; the value must be a real scalar.
    """

    factor: Any = hyper_field(low=0.0, high=1.0, low_open=True, high_open=True)
    rtol: Any = hyper_field(low=0.0, high=1.0)
    atol: Any = nonnegative()
    min_scale: Any = nonnegative()
    patience: int = _call_count(10, low=1)
    cooldown: int = _call_count(0, low=0)
    accumulation_size: int = _call_count(1, low=1)

    def __post_init__(self) -> None:
        # After the field checks (see optim._pytree): rtol and atol are float32 scalars here.
        if _is_zero(self.rtol) and _is_zero(self.atol):
            raise ValueError("at least one of rtol and atol must be positive, got rtol = atol = 0")

    def init(self, params: PyTree) -> ReduceLROnPlateauState:
        check_params(params)
        value_dtype = _value_dtype(params)
        return ReduceLROnPlateauState(
            scale=jnp.ones([], jnp.float32),
            best_value=jnp.asarray(jnp.inf, value_dtype),
            plateau_count=zero_count(),
            cooldown_count=zero_count(),
            count=zero_count(),
            avg_value=jnp.zeros([], value_dtype),
        )

    def _check(self, state: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        """The plateau logic on the accumulated mean; resets the accumulation."""
        improved = state.avg_value < (1 - self.rtol) * state.best_value - self.atol
        best_value = jnp.where(improved, state.avg_value, state.best_value)
        plateau = jnp.where(improved, 0, safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        reduce = (plateau == self.patience) & ~cooling
        scale = jnp.where(
            cooling,
            state.scale,
            jnp.maximum(jnp.where(reduce, state.scale * self.factor, state.scale), self.min_scale),
        )
        return ReduceLROnPlateauState(
            scale=scale.astype(state.scale.dtype),
            best_value=best_value,
            plateau_count=jnp.where(cooling | reduce, 0, plateau).astype(jnp.int32),
            cooldown_count=jnp.where(
                cooling, state.cooldown_count - 1, jnp.where(reduce, self.cooldown, 0)
            ).astype(jnp.int32),
            count=zero_count(),
            avg_value=jnp.zeros_like(state.avg_value),
        )

    def update(self, updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                "reduce_on_plateau needs the monitored loss: call "
                "update(grads, state, params, value=loss)"
            )
        value = jnp.asarray(value)
        if value.shape != () or jnp.iscomplexobj(value):
            raise ValueError(
                f"value must be a real scalar (the loss), got shape {value.shape} and "
                f"dtype {value.dtype}"
            )
        check_float_updates(updates)
        count = safe_increment(state.count)
        avg_value = (state.count * state.avg_value + value.astype(state.avg_value.dtype)) / count
        state = state._replace(count=count, avg_value=avg_value.astype(state.avg_value.dtype))
        checked = self._check(state)
        full = count == self.accumulation_size
        state = jax.tree.map(lambda new, old: jnp.where(full, new, old), checked, state)
        return map_arrays(lambda g: (state.scale * upcast(g)).astype(g.dtype), updates), state


@suggest_keywords
def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: int = 0,
    accumulation_size: int = 1,
    min_scale: float = 0.0,
) -> ReduceOnPlateau:
    r"""Scale updates down by ``factor`` after ``patience`` checks without improvement
    (``optax.contrib.reduce_on_plateau``).

    ``patience``, ``cooldown`` and ``accumulation_size`` count calls to ``update`` (they are
    static ints; ``patience`` and ``accumulation_size`` at least 1: optax accepts
    ``patience=0`` and then never reduces). ``accumulation_size`` > 1 averages that many
    values (minibatch losses) before each check.

    Every ``accumulation_size`` calls, the mean :math:`\bar f` of the ``value`` arguments
    received since the last check is compared with the best mean so far :math:`f^*`:

    .. math::
        \text{improved} \iff \bar f < (1 - r_{tol}) f^* - a_{tol}.

    An improvement sets :math:`f^* = \bar f` and the plateau count :math:`p` to 0, otherwise
    :math:`p` grows by 1. When :math:`p` reaches ``patience`` the scale becomes
    :math:`\max(s \cdot \text{factor}, s_{min})`, :math:`p` restarts from 0 and the next
    ``cooldown`` checks cannot count towards a plateau. The outgoing updates are :math:`s\,u`.
    Chain it after an optimizer and pass the monitored loss as
    ``update(grads, state, params, value=loss)`` (PyTorch's ``ReduceLROnPlateau``, mode
    ``"min"``).

    Args:
      factor: the factor applied to the scale on a plateau, in ``(0, 1)``.
      patience: the number of checks without improvement that make a plateau, an int >= 1.
      rtol: :math:`r_{tol}`, the relative improvement required, in ``[0, 1]``.
      atol: :math:`a_{tol} \ge 0`, the absolute improvement required (``rtol`` and ``atol``
        cannot both be 0).
      cooldown: the number of checks after a reduction during which no plateau is counted,
        an int >= 0.
      accumulation_size: the number of ``update`` calls (values) averaged before each check,
        an int >= 1.
      min_scale: :math:`s_{min} \ge 0`, the scale never drops below it.

    Returns:
      A :class:`optim.GradientTransformation` with state
      :class:`optim.contrib.ReduceLROnPlateauState`; its ``update`` takes ``value=``.

    Raises:
      ValueError: an argument out of its range, ``rtol = atol = 0``; in ``update``, no
        ``value`` or a ``value`` that is not a real scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.chain(
      ...     optim.sgd(learning_rate=0.1),
      ...     optim.contrib.reduce_on_plateau(factor=0.5, patience=2),
      ... )
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for loss in [3.0, 2.0, 2.0, 2.0]:  # no improvement in the last two checks
      ...     updates, state = tx.update(jnp.array([1.0, 1.0]), state, params, value=loss)
      >>> print(updates, state[1].scale)  # sgd's -0.1 * g, halved
      [-0.05 -0.05] 0.5
    """
    return ReduceOnPlateau(
        factor=factor,
        rtol=rtol,
        atol=atol,
        min_scale=min_scale,
        patience=patience,
        cooldown=cooldown,
        accumulation_size=accumulation_size,
    )


def _is_zero(x: jax.Array) -> bool:
    """True when ``x`` is concretely 0 (a traced value is assumed not to be)."""
    return not isinstance(x, jax.core.Tracer) and float(x) == 0.0
