"""Aggregators (``optax.experimental.aggregating``): transformations that take per-element
gradients (per example, per microbatch) of shape ``[*batch_shape, *params_shape]`` and return
one update, and ``process`` to run them between a preprocessor and an optimizer: averaging,
accumulation over microbatches, and the gradients' per-element mean and variance."""

from optim.experimental.aggregating._aggregator import (
    AggregatedUpdates,
    Aggregator,
    AggregatorUpdateFn,
    MaybeAxis,
    PerElementUpdates,
    process,
)
from optim.experimental.aggregating._averaging import (
    AccumulateAvgUpdatesState,
    accumulate_avg_updates,
    average_incrementally_updates,
    average_per_element_updates,
)
from optim.experimental.aggregating._variance import (
    PerElementMeanAndSumSqDiffGradsState,
    PerElementMeanAndVarianceEMAState,
    add_mean_variance_to_opt,
    get_batch_size_from_per_elt_updates,
    get_per_element_mean_and_sum_sq_diff_grads,
    get_unbiased_mean_and_variance_ema,
    track_per_element_mean_and_variance_with_ema,
)

__all__ = [
    "AccumulateAvgUpdatesState",
    "AggregatedUpdates",
    "Aggregator",
    "AggregatorUpdateFn",
    "MaybeAxis",
    "PerElementMeanAndSumSqDiffGradsState",
    "PerElementMeanAndVarianceEMAState",
    "PerElementUpdates",
    "accumulate_avg_updates",
    "add_mean_variance_to_opt",
    "average_incrementally_updates",
    "average_per_element_updates",
    "get_batch_size_from_per_elt_updates",
    "get_per_element_mean_and_sum_sq_diff_grads",
    "get_unbiased_mean_and_variance_ema",
    "process",
    "track_per_element_mean_and_variance_with_ema",
]
