"""Schedule-Free learning (Defazio et al., 2024): averaging and interpolation instead of a decay."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import decay, decay_hyper, dtype_option, hyper_field, nonnegative, value_at
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads, decay_complement, decay_rate
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_params,
    check_same_structure,
    compute_dtype,
    map_arrays,
    safe_increment,
    upcast,
)
from optim._types import ScalarOrSchedule
from optim.base import Transformation, as_transformation, chain, check_updates, require_params
from optim.optimizers._rmsprop import scale_by_rms
from optim.optimizers._sgd import sgd
from optim.schedules._join import warmup_constant_schedule
from optim.schedules._schedules import _steps
from optim.transforms._adding import add_decayed_weights
from optim.transforms._masking import MaskedNode
from optim.transforms._scaling import scale_by_learning_rate


class ScheduleFreeState(NamedTuple):
    r"""The state of :func:`optim.contrib.schedule_free` (and of ``schedule_free_sgd``,
    ``schedule_free_adamw``).

    Attributes:
      b1: :math:`\beta_1`, the interpolation weight, a float32 scalar (kept here so that
        :func:`optim.contrib.schedule_free_eval_params` needs the state only).
      weight_sum: :math:`\sum_{i \le t} w_i`, the sum of the averaging weights so far, a
        float32 scalar.
      step_count: :math:`t`, the step number, from 1 (int32).
      max_lr: the largest learning rate so far, a float32 scalar.
      base_optimizer_state: the base optimizer's state.
      z: the sequence :math:`z` the base optimizer moves, a pytree like the params (in
        ``state_dtype``).
    """

    b1: jax.Array
    weight_sum: jax.Array
    step_count: jax.Array
    max_lr: jax.Array
    base_optimizer_state: Any
    z: PyTree


def _average(y: jax.Array, z: jax.Array, b1: jax.Array) -> jax.Array:
    r"""The averaged iterate recovered from :math:`y = \beta_1 x + (1-\beta_1) z`."""
    return (upcast(y) - decay_complement(b1) * upcast(z)) / decay_rate(b1)


@pytree_dataclass
class ScheduleFree(Transformation):
    r"""Schedule-Free wrapper (Defazio et al., 2024, "The Road Less Scheduled").

    The parameters the caller holds are the gradient points :math:`y_t`; the base optimizer
    (without momentum) moves the sequence :math:`z`, and :math:`x` is its weighted average:

    .. math::
        z_{t+1} = z_t + \mathrm{base}(\nabla f(y_t)),\quad
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1},\quad
        y_{t+1} = \beta_1 x_{t+1} + (1-\beta_1) z_{t+1},

    with :math:`c_{t+1} = w_t / \sum_{i \le t} w_i`, :math:`w_t = \max_{i\le t}\gamma_i^{p}`
    (:math:`\gamma_t` = ``learning_rate`` at ``step_count`` :math:`t`, from 1; :math:`p` =
    ``weight_lr_power``). :math:`x_t` is not stored: it is recomputed from :math:`y_t` and
    :math:`z_t`, and ``schedule_free_eval_params`` returns it for evaluation.
    """

    base_optimizer: Any
    learning_rate: Any = nonnegative(schedule=True)
    b1: Any = decay(closed=True, low_open=True)
    weight_lr_power: Any = hyper_field()
    state_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScheduleFreeState:
        check_params(params)
        z = map_arrays(
            lambda p: jnp.array(p, dtype=self.state_dtype or compute_dtype(p), copy=True), params
        )
        return ScheduleFreeState(
            b1=decay_rate(self.b1),
            weight_sum=jnp.zeros([], jnp.float32),
            step_count=jnp.ones([], jnp.int32),
            max_lr=jnp.zeros([], jnp.float32),
            base_optimizer_state=self.base_optimizer.init(params),
            z=z,
        )

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "schedule_free")
        check_updates(updates, state.z)
        check_same_structure(params, state.z, "params", "the optimizer state")
        lr = value_at(self.learning_rate, state.step_count)
        max_lr = jnp.maximum(state.max_lr, lr)
        weight = max_lr**self.weight_lr_power
        weight_sum = state.weight_sum + weight
        # 0/0 (a zero learning rate so far) averages nothing in; a NaN weight stays NaN.
        ck = jnp.where(
            jnp.isnan(weight) | jnp.isnan(weight_sum),
            jnp.nan,
            jnp.nan_to_num(weight / weight_sum, nan=0.0, posinf=jnp.inf),
        )
        base_updates, base_state = self.base_optimizer.update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        z = map_arrays(lambda z, u: (z + upcast(u)).astype(z.dtype), state.z, base_updates)

        def step(y: jax.Array, z_old: jax.Array, z_new: jax.Array) -> jax.Array:
            x = (1 - ck) * _average(y, z_old, self.b1) + ck * upcast(z_new)
            return decay_rate(self.b1) * x + decay_complement(self.b1) * upcast(z_new) - upcast(y)

        out = map_arrays(step, params, state.z, z)
        new_state = ScheduleFreeState(
            b1=state.b1,
            weight_sum=weight_sum,
            step_count=safe_increment(state.step_count),
            max_lr=max_lr,
            base_optimizer_state=base_state,
            z=z,
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def schedule_free_eval_params(state: ScheduleFreeState, params: PyTree) -> PyTree:
    r"""The averaged iterate :math:`x = (y - (1-\beta_1) z) / \beta_1` to evaluate the model at.

    ``state`` is the state of ``schedule_free`` (or of ``schedule_free_sgd``/``_adamw``);
    ``params`` the parameters being trained. The result has the parameters' dtypes; leaves
    that are not floating arrays are returned as they are, and so are the parameters that a
    ``masked`` or ``partition`` around the optimizer hid from it (``MaskedNode`` in ``z``).

    Args:
      state: the state of a schedule-free optimizer (a
        :class:`optim.contrib.ScheduleFreeState`, or one with its fields ``b1`` and ``z``).
      params: the parameters being trained (the points :math:`y`), a pytree of the
        structure of ``state.z``.

    Returns:
      The averaged parameters :math:`x`, a pytree like ``params`` with its dtypes.

    Raises:
      TypeError: ``state`` has no fields ``b1`` and ``z``.
      ValueError: ``params`` does not have the structure of ``state.z``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.schedule_free_sgd(learning_rate=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> eval_params = optim.contrib.schedule_free_eval_params(state, params)
      >>> print(round(float(loss(params)), 4), round(float(loss(eval_params)), 4))  # y, x
      11.5481 12.0972
    """
    b1, z = getattr(state, "b1", None), getattr(state, "z", None)
    if b1 is None or z is None:
        raise TypeError(
            "schedule_free_eval_params needs the state of a schedule_free optimizer "
            f"(a ScheduleFreeState with fields b1 and z), got {type(state).__name__}"
        )
    untrained = lambda x: x is None or isinstance(x, MaskedNode)
    if any(isinstance(x, MaskedNode) for x in jax.tree.leaves(z, is_leaf=untrained)):
        # Inside masked or partition: the parameters hidden from it are returned as they are.
        try:
            return jax.tree.map(
                lambda zi, y: y if untrained(zi) else _average(y, zi, b1).astype(y.dtype),
                z,
                params,
                is_leaf=untrained,
            )
        except ValueError as error:
            raise ValueError(
                f"params does not have the structure of the state's z: {error}"
            ) from None
    check_same_structure(params, z, "params", "the state's z")
    averaged = map_arrays(lambda y, zi: _average(y, zi, b1).astype(y.dtype), params, z)
    return jax.tree.map(
        lambda a, p: p if a is None else a, averaged, params, is_leaf=lambda x: x is None
    )


@suggest_keywords
def schedule_free(
    base_optimizer: Any,
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> ScheduleFree:
    r"""Make ``base_optimizer`` schedule-free (``optax.contrib.schedule_free``).

    Turn the base optimizer's momentum off (``b1=0`` for Adam): the interpolation replaces
    it. ``learning_rate`` weights the average (give the base optimizer's warmup schedule);
    ``state_dtype`` is the dtype of ``z`` (default: float32, or the parameters' dtype when
    wider). Evaluate at ``schedule_free_eval_params(state, params)``.

    The parameters the caller holds are the gradient points :math:`y_t`; the base optimizer
    moves the sequence :math:`z`, and :math:`x` is its weighted average:

    .. math::
        z_{t+1} = z_t + \mathrm{base}(\nabla f(y_t)),\quad
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1},\quad
        y_{t+1} = \beta_1 x_{t+1} + (1-\beta_1) z_{t+1},

    with :math:`c_{t+1} = w_t / \sum_{i \le t} w_i`, :math:`w_t = \max_{i\le t}\gamma_i^{p}`.

    Args:
      base_optimizer: the optimizer that moves :math:`z` (ours or optax's), without momentum.
        Extra ``update`` keyword arguments reach it.
      learning_rate: :math:`\gamma_t \ge 0`, a number or a schedule ``count -> float`` (of the
        step number, from 1): the learning rate that weights the average (the base
        optimizer's own, warmup included).
      b1: :math:`\beta_1`, the interpolation weight of the average :math:`x` in the
        gradient point :math:`y`, in ``(0, 1]``.
      weight_lr_power: :math:`p`, the power of the (running maximum) learning rate in the
        averaging weights :math:`w_t = \max_{i\le t}\gamma_i^p`.
      state_dtype: the dtype of the sequence :math:`z` (``None``: float32, or the parameters'
        dtype where wider).

    Returns:
      A :class:`optim.GradientTransformation` with state
      :class:`optim.contrib.ScheduleFreeState`; ``update`` needs the params (the points
      :math:`y`), and :func:`optim.contrib.schedule_free_eval_params` gives the average
      :math:`x` to evaluate at.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.schedule_free(optim.sgd(learning_rate=0.1), learning_rate=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> eval_params = optim.contrib.schedule_free_eval_params(state, params)
      >>> print(round(float(loss(params)), 4), round(float(loss(eval_params)), 4))  # y, x
      11.5481 12.0972

    References:
      Defazio et al., 2024, `The Road Less Scheduled <https://arxiv.org/abs/2405.15682>`_.
    """
    return ScheduleFree(
        base_optimizer=as_transformation(base_optimizer, "base_optimizer"),
        learning_rate=learning_rate,
        b1=b1,
        weight_lr_power=weight_lr_power,
        state_dtype=state_dtype,
    )


def _warmup(learning_rate: Any, warmup_steps: Any) -> Any:
    """``learning_rate`` behind a linear warmup from 0 over ``warmup_steps`` (if not None)."""
    if warmup_steps is None:
        return learning_rate
    return warmup_constant_schedule(0.0, learning_rate, _steps(warmup_steps, "warmup_steps", 1))


@suggest_keywords
def schedule_free_sgd(
    learning_rate: Any = 1.0,
    warmup_steps: int | None = None,
    b1: Any = 0.9,
    weight_decay: Any = None,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> ScheduleFree:
    r"""Schedule-Free SGD (Defazio et al., 2024): ``schedule_free(sgd(lr))``.

    :math:`z_{t+1} = z_t - \gamma_t (\nabla f(y_t) + \lambda y_t)`, with a linear warmup of
    ``warmup_steps`` and the weight decay (at :math:`y`) when given.

    Args:
      learning_rate: :math:`\gamma \ge 0`, the peak learning rate, a number or a schedule.
      warmup_steps: the number of steps of a linear warmup from 0 to ``learning_rate``, an
        int >= 1 (``None``: no warmup).
      b1: :math:`\beta_1`, the interpolation weight of the average :math:`x` in the
        gradient point :math:`y`, in ``(0, 1]``.
      weight_decay: :math:`\lambda`, the weight decay added to the gradient at :math:`y`
        (``None``: none).
      weight_lr_power: :math:`p`, the power of the (running maximum) learning rate in the
        averaging weights :math:`w_t = \max_{i\le t}\gamma_i^p`.
      state_dtype: the dtype of the sequence :math:`z` (``None``: float32, or the parameters'
        dtype where wider).

    Returns:
      A :class:`optim.GradientTransformation` with state
      :class:`optim.contrib.ScheduleFreeState`; ``update`` needs the params (the points
      :math:`y`), and :func:`optim.contrib.schedule_free_eval_params` gives the average
      :math:`x` to evaluate at.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.schedule_free_sgd(learning_rate=0.1)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> eval_params = optim.contrib.schedule_free_eval_params(state, params)
      >>> print(round(float(loss(params)), 4), round(float(loss(eval_params)), 4))  # y, x
      11.5481 12.0972

    References:
      Defazio et al., 2024, `The Road Less Scheduled <https://arxiv.org/abs/2405.15682>`_.
    """
    learning_rate = _warmup(learning_rate, warmup_steps)
    optimizer = sgd(learning_rate)
    if weight_decay is not None:
        optimizer = chain(add_decayed_weights(weight_decay), optimizer)
    return schedule_free(optimizer, learning_rate, b1, weight_lr_power, state_dtype)


@suggest_keywords
def schedule_free_adamw(
    learning_rate: Any = 0.0025,
    warmup_steps: int | None = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> ScheduleFree:
    r"""Schedule-Free AdamW (Defazio et al., 2024).

    The base optimizer is AdamW without momentum,
    :math:`z_{t+1} = z_t - \gamma_t(g_t / (\sqrt{\hat v_t} + \epsilon) + \lambda y_t)`
    (``scale_by_rms`` with bias correction, as in optax).

    Args:
      learning_rate: :math:`\gamma \ge 0`, the peak learning rate, a number or a schedule.
      warmup_steps: the number of steps of a linear warmup from 0 to ``learning_rate``, an
        int >= 1 (``None``: no warmup).
      b1: :math:`\beta_1`, the interpolation weight of the average :math:`x` in the
        gradient point :math:`y`, in ``(0, 1]``.
      b2: :math:`\beta_2`, the decay of the second moment :math:`\hat v`, in ``[0, 1]``.
      eps: :math:`\epsilon \ge 0`, added to the root of the second moment.
      weight_decay: :math:`\lambda \ge 0`, the weight decay at :math:`y`.
      weight_lr_power: :math:`p`, the power of the (running maximum) learning rate in the
        averaging weights :math:`w_t = \max_{i\le t}\gamma_i^p`.
      state_dtype: the dtype of the sequence :math:`z` (``None``: float32, or the parameters'
        dtype where wider).

    Returns:
      A :class:`optim.GradientTransformation` with state
      :class:`optim.contrib.ScheduleFreeState`; ``update`` needs the params (the points
      :math:`y`), and :func:`optim.contrib.schedule_free_eval_params` gives the average
      :math:`x` to evaluate at.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.schedule_free_adamw(learning_rate=0.5)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> eval_params = optim.contrib.schedule_free_eval_params(state, params)
      >>> print(round(float(loss(params)), 4), round(float(loss(eval_params)), 4))  # y, x
      16.9685 17.4275

    References:
      Defazio et al., 2024, `The Road Less Scheduled <https://arxiv.org/abs/2405.15682>`_.
    """
    learning_rate = _warmup(learning_rate, warmup_steps)
    b2 = decay_hyper(b2, "b2", closed=True)  # named here, not as rms's decay
    optimizer = chain(
        scale_by_rms(b2, eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(learning_rate),
    )
    return schedule_free(optimizer, learning_rate, b1, weight_lr_power, state_dtype)
