"""The mean and variance of per-element gradients: collected per batch (and across
microbatches), tracked with an exponential moving average, and added to an optimizer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import decay
from optim._numerics import decay_complement, decay_rate
from optim._pytree import pytree_dataclass, static
from optim._tree import PyTree, safe_increment, zero_count
from optim.base import EmptyState, Transformation, as_transformation, chain, identity
from optim.experimental.aggregating._aggregator import (
    Aggregator,
    find_field,
    process,
)
from optim.experimental.aggregating._averaging import check_axis, check_steps


def get_batch_size_from_per_elt_updates(per_elt_updates: Any, per_elt_axis: int | list[int]) -> int:
    """Get batch size from per-element updates.

    Args:
      per_elt_updates: The per-element updates.
      per_elt_axis: The axis (or axes, whose sizes multiply) of the elements.

    Returns:
      The batch size.

    Raises:
      ValueError: the leaves do not all have the same batch size.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.experimental import aggregating
      >>> aggregating.get_batch_size_from_per_elt_updates({"w": jnp.zeros((8, 3))}, 0)
      8
    """

    def size(leaf: Any) -> int:
        if isinstance(per_elt_axis, int):
            return leaf.shape[per_elt_axis]
        return math.prod(leaf.shape[a] for a in per_elt_axis)

    sizes = [size(leaf) for leaf in jax.tree.leaves(per_elt_updates)]
    if any(s != sizes[0] for s in sizes):
        raise ValueError(f"Per-element updates must have the same batch size. Got: {sizes}")
    return sizes[0]


class PerElementMeanAndSumSqDiffGradsState(NamedTuple):
    """State for the per-element mean and sum of squared differences accumulator.

    Attributes:
      micro_step: int32 scalar, the microbatches combined so far in the current accumulation
        (0 after the last one).
      ready: bool scalar, whether the last call completed an accumulation.
      mean_grads: the running mean of the per-element gradients, in the parameters'
        structure.
      sum_sq_diff_grads: the running sum of squared differences from the mean, in the
        parameters' structure.
    """

    micro_step: jax.Array  # int
    ready: jax.Array  # bool
    mean_grads: Any
    sum_sq_diff_grads: Any


@pytree_dataclass
class PerElementMeanAndSumSqDiffGrads(Transformation):
    r"""The mean :math:`\bar g` of per-element gradients and their sum of squared differences
    :math:`\sum_b (g_b - \bar g)^2`, combined across ``accumulation_steps`` microbatches by
    Chan et al.'s pairwise update. Returns ``(mean, {"sum_sq_diff_grads": ..., "sample_size":
    ...})``: the extra arguments of :func:`track_per_element_mean_and_variance_with_ema`."""

    per_elt_axis: int | tuple[int, ...] = static(0)
    accumulation_steps: int = static(1)

    def init(self, params: PyTree) -> Any:
        if self.accumulation_steps == 1:
            return EmptyState()
        return PerElementMeanAndSumSqDiffGradsState(
            micro_step=jnp.asarray(0, dtype=jnp.int32),
            ready=jnp.asarray(False),
            mean_grads=jax.tree.map(jnp.zeros_like, params),
            sum_sq_diff_grads=jax.tree.map(jnp.zeros_like, params),
        )

    def _batch_moments(self, per_elt: PyTree, squared: Any) -> tuple[PyTree, PyTree]:
        axis = self.per_elt_axis
        means = jax.tree.map(lambda x: jnp.mean(x, axis=axis, keepdims=True), per_elt)
        spreads = jax.tree.map(lambda x, m: jnp.sum(squared(x - m), axis=axis), per_elt, means)
        return jax.tree.map(lambda m: m.squeeze(axis=axis), means), spreads

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        batch_size = get_batch_size_from_per_elt_updates(updates, self.per_elt_axis)
        if self.accumulation_steps == 1:
            means, spreads = self._batch_moments(updates, lambda d: d**2)
            return (means, {"sum_sq_diff_grads": spreads, "sample_size": batch_size}), state

        means, spreads = self._batch_moments(updates, jnp.square)
        micro_step = state.micro_step + 1
        delta = jax.tree.map(lambda b, a: b - a, means, state.mean_grads)
        mean = jax.tree.map(lambda a, d: a + d / micro_step, state.mean_grads, delta)
        # Combining n_a = k B elements with n_b = B: M2 = M2_a + M2_b + d^2 n_a n_b / (n_a + n_b).
        weight = state.micro_step * batch_size / micro_step
        spread = jax.tree.map(
            lambda a, s, d: a + s + d**2 * weight, state.sum_sq_diff_grads, spreads, delta
        )
        outputs = (mean, {"sum_sq_diff_grads": spread, "sample_size": batch_size * micro_step})
        zeros = jax.tree.map(jnp.zeros_like, outputs)
        done = (
            outputs,
            PerElementMeanAndSumSqDiffGradsState(
                micro_step=jnp.asarray(0, dtype=jnp.int32),
                ready=jnp.asarray(True),
                mean_grads=jax.tree.map(jnp.zeros_like, mean),
                sum_sq_diff_grads=jax.tree.map(jnp.zeros_like, spread),
            ),
        )
        pending = (
            zeros,
            PerElementMeanAndSumSqDiffGradsState(micro_step, jnp.asarray(False), mean, spread),
        )
        complete = micro_step == self.accumulation_steps
        return jax.tree.map(lambda d, p: jnp.where(complete, d, p), done, pending)


Aggregator.register(PerElementMeanAndSumSqDiffGrads)


def get_per_element_mean_and_sum_sq_diff_grads(
    per_elt_axis: int | Sequence[int] = 0,
    accumulation_steps: int = 1,
) -> Aggregator:
    r"""Collect per-element mean and sum square diff gradients.

    For per-element gradients :math:`g_1, \dots, g_B` it returns
    ``(mean, {"sum_sq_diff_grads": s, "sample_size": n})`` with :math:`\bar g` the mean and
    :math:`s = \sum_b (g_b - \bar g)^2`; over ``accumulation_steps`` microbatches these are
    combined (Chan et al.'s parallel update) and returned on the last one (zeros on the
    others). See :func:`add_mean_variance_to_opt` for how to use it.

    Args:
      per_elt_axis: The axis to average over.
      accumulation_steps: The number of microbatches to accumulate over.

    Returns:
      An Aggregator that collects per-element mean and sum square diff gradients.

    Raises:
      TypeError: ``per_elt_axis`` is not an int or a sequence of ints, or
        ``accumulation_steps`` is not an int.
      ValueError: ``accumulation_steps`` is less than 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.experimental import aggregating
      >>> agg = aggregating.get_per_element_mean_and_sum_sq_diff_grads()
      >>> (mean, aux), _ = agg.update(jnp.array([[1.0], [3.0]]), agg.init(jnp.zeros(1)))
      >>> print(mean, aux["sum_sq_diff_grads"], aux["sample_size"])
      [2.] [2.] 2
    """
    return PerElementMeanAndSumSqDiffGrads(
        check_axis(per_elt_axis), check_steps(accumulation_steps)
    )


class PerElementMeanAndVarianceEMAState(NamedTuple):
    r"""State for the per-element mean and variance EMAs.

    Attributes:
      count: int32 scalar, the number of updates so far (for the bias correction).
      ema_decay: float scalar, the EMA decay :math:`\beta`.
      mean_grads_ema: the EMA of the mean gradient, in the parameters' structure (biased
        toward its zero start; see :func:`get_unbiased_mean_and_variance_ema`).
      variance_grads_ema: the EMA of the per-element variance, in the parameters' structure.
    """

    count: jax.Array  # int
    ema_decay: jax.Array  # float
    mean_grads_ema: Any
    variance_grads_ema: Any


@pytree_dataclass
class TrackPerElementMeanAndVarianceWithEma(Transformation):
    r"""EMAs of the mean gradient and of the per-element variance
    :math:`s / (n - 1)`, from the ``sum_sq_diff_grads`` :math:`s` and ``sample_size``
    :math:`n` extra arguments; the updates pass through unchanged."""

    ema_decay: Any = decay(closed=True)

    def init(self, params: PyTree) -> PerElementMeanAndVarianceEMAState:
        return PerElementMeanAndVarianceEMAState(
            count=zero_count(),
            ema_decay=jnp.asarray(decay_rate(self.ema_decay)),
            mean_grads_ema=jax.tree.map(jnp.zeros_like, params),
            variance_grads_ema=jax.tree.map(jnp.zeros_like, params),
        )

    def update(
        self,
        updates,
        state,
        params=None,
        *,
        sum_sq_diff_grads=None,
        sample_size=None,
        **extra_args,
    ):
        del params, extra_args
        if sum_sq_diff_grads is None or sample_size is None:
            raise TypeError(
                "track_per_element_mean_and_variance_with_ema needs the keyword arguments "
                "sum_sq_diff_grads and sample_size (what "
                "get_per_element_mean_and_sum_sq_diff_grads returns; use "
                "add_mean_variance_to_opt or process(..., aggregator_has_aux=True))"
            )
        decay = self.ema_decay

        def ema(x, y):
            return decay_complement(decay) * x + decay_rate(decay) * y

        variance = jax.tree.map(lambda s: 1 / (sample_size - 1) * s, sum_sq_diff_grads)
        return updates, state._replace(
            count=safe_increment(state.count),
            mean_grads_ema=jax.tree.map(ema, updates, state.mean_grads_ema),
            variance_grads_ema=jax.tree.map(ema, variance, state.variance_grads_ema),
        )


def track_per_element_mean_and_variance_with_ema(
    ema_decay: jax.typing.ArrayLike = 0.9,
) -> TrackPerElementMeanAndVarianceWithEma:
    r"""Track variance metrics with an EMA over time.

    .. math::

      m_t = (1 - \beta) \bar g_t + \beta m_{t-1}, \qquad
      v_t = (1 - \beta) \frac{s_t}{n_t - 1} + \beta v_{t-1},

    with :math:`\bar g_t` the incoming (mean) update, :math:`s_t` and :math:`n_t` the
    ``sum_sq_diff_grads`` and ``sample_size`` extra arguments that
    :func:`get_per_element_mean_and_sum_sq_diff_grads` provides when linked with this
    transformation by :func:`process` (see :func:`add_mean_variance_to_opt`). The updates
    pass through unchanged; :func:`get_unbiased_mean_and_variance_ema` reads the EMAs.

    Args:
      ema_decay: The EMA decay factor.

    Returns:
      A gradient transformation that tracks per-element mean and variance with an EMA over
      time.

    Raises:
      ValueError: ``ema_decay`` is not in [0, 1].

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.experimental import aggregating
      >>> tx = aggregating.track_per_element_mean_and_variance_with_ema(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> _, state = tx.update(
      ...     jnp.array([2.0]), state, sum_sq_diff_grads=jnp.array([6.0]), sample_size=4
      ... )
      >>> print(state.mean_grads_ema, state.variance_grads_ema)
      [1.] [1.]
    """
    return TrackPerElementMeanAndVarianceWithEma(ema_decay)


def get_unbiased_mean_and_variance_ema(state: Any) -> tuple[Any, Any]:
    r"""Retrieve unbiased mean and variance from the state.

    The EMAs of the ``PerElementMeanAndVarianceEMAState`` found in ``state``, divided by
    :math:`1 - \beta^t` (bias correction for their zero start).

    Args:
      state: The state of the optimizer.

    Returns:
      A tuple of unbiased mean and variance EMA.

    Raises:
      ValueError: ``state`` holds no ``PerElementMeanAndVarianceEMAState``.
      KeyError: ``state`` holds several.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.experimental import aggregating
      >>> tx = aggregating.track_per_element_mean_and_variance_with_ema(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> _, state = tx.update(
      ...     jnp.array([2.0]), state, sum_sq_diff_grads=jnp.array([6.0]), sample_size=4
      ... )
      >>> mean, variance = aggregating.get_unbiased_mean_and_variance_ema(state)
      >>> print(mean, variance)
      [2.] [2.]
    """
    found = find_field(state, "PerElementMeanAndVarianceEMAState", None)
    if found is None:
        raise ValueError(
            "State must have PerElementMeanAndVarianceEMAState to compute unbiased mean and "
            "variance EMA (the state of track_per_element_mean_and_variance_with_ema)."
        )
    correction = 1 - found.ema_decay**found.count

    def unbias(tree: Any) -> Any:
        return jax.tree.map(lambda x: x / correction, tree)

    return unbias(found.mean_grads_ema), unbias(found.variance_grads_ema)


def add_mean_variance_to_opt(
    opt: Any,
    ema_decay: jax.typing.ArrayLike = 0.9,
    per_elt_axis: int | list[int] = 0,
    accumulation_steps: int = 1,
) -> Any:
    r"""Add mean and variance to an optimizer.

    The result takes per-element gradients; it hands their mean to ``opt`` and keeps EMAs of
    the mean and of the per-element variance in its state
    (:func:`track_per_element_mean_and_variance_with_ema`), read with
    :func:`get_unbiased_mean_and_variance_ema`. With ``accumulation_steps > 1`` the moments
    are combined over that many microbatches and ``opt`` steps once per that many calls.

    Args:
      opt: The optimizer to add mean and variance to.
      ema_decay: The EMA decay factor.
      per_elt_axis: The axis to average over.
      accumulation_steps: The number of microbatches to accumulate over.

    Returns:
      A gradient transformation (an :class:`Aggregator`) that adds mean and variance to an
      optimizer.

    Raises:
      TypeError: ``opt`` is not a transformation, or ``per_elt_axis`` or
        ``accumulation_steps`` has the wrong type.
      ValueError: ``ema_decay`` is not in [0, 1], or ``accumulation_steps`` is less than 1.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import jax.random as jrd
      >>> import optim
      >>> from optim.experimental import aggregating
      >>> xs = jrd.normal(jrd.key(0), (3, 4, 2))
      >>> ys = jrd.normal(jrd.key(1), (3, 4, 2))
      >>> params = jrd.normal(jrd.key(2), (2, 2))
      >>> opt = aggregating.add_mean_variance_to_opt(optim.adam(0.01), ema_decay=0.9)
      >>> fun = lambda w, x, y: jnp.mean(jnp.sum((x.dot(w) - y) ** 2, axis=-1))
      >>> values_and_grads = jax.vmap(jax.value_and_grad(fun), (None, 0, 0))
      >>> state = opt.init(params)
      >>> for x, y in zip(xs, ys):
      ...     losses, grads = values_and_grads(params, x, y)
      ...     updates, state = opt.update(grads, state)
      ...     params = optim.apply_updates(params, updates)
      >>> mean_ema, var_ema = aggregating.get_unbiased_mean_and_variance_ema(state)
      >>> mean_ema.shape, var_ema.shape
      ((2, 2), (2, 2))
    """
    return process(
        preprocessor=identity(),
        aggregator=get_per_element_mean_and_sum_sq_diff_grads(per_elt_axis, accumulation_steps),
        postprocessor=chain(
            track_per_element_mean_and_variance_with_ema(ema_decay),
            as_transformation(opt, "opt"),
        ),
        aggregator_has_aux=True,
    )
