"""Gradient transformations: the building blocks and combinators optimizers are made of.

The same public names as ``optax.transforms``, plus the building blocks optax keeps at its top
level (``scale``, ``trace``, ``scale_by_adam``, ...). One concern a module: scaling,
accumulation, adding, clipping, combining, conditionality, constraining, freezing, layouts,
masking, lookahead, monitoring, normalizing and stateless transformations. The maths of an
optimizer family (``scale_by_adam``, ``scale_by_rms``, ``scale_by_rss``) lives with its
optimizers in ``optim.optimizers`` and is re-exported here on first access.
"""

import importlib

from optim.base import (
    chain,
)
from optim.transforms._accumulation import (
    EmaState,
    MultiSteps,
    MultiStepsState,
    ShouldSkipUpdateFunction,
    TraceState,
    ema,
    skip_large_updates,
    skip_not_finite,
    trace,
)
from optim.transforms._adding import (
    AddDecayedWeightsState,
    AddNoiseState,
    add_decayed_weights,
    add_noise,
)
from optim.transforms._clipping import (
    adaptive_grad_clip,
    clip,
    clip_by_block_rms,
    clip_by_global_norm,
    per_example_global_norm_clip,
    per_example_layer_norm_clip,
    unitwise_clip,
    unitwise_norm,
)
from optim.transforms._combining import (
    PartitionState,
    named_chain,
    partition,
)
from optim.transforms._conditionality import (
    ApplyIfFiniteState,
    ConditionallyMaskState,
    ConditionallyTransformState,
    ConditionFn,
    apply_if_finite,
    conditionally_mask,
    conditionally_transform,
)
from optim.transforms._constraining import (
    NonNegativeParamsState,
    ZeroNansState,
    keep_params_nonnegative,
    zero_nans,
)
from optim.transforms._freezing import (
    freeze,
    selective_transform,
)
from optim.transforms._layouts import (
    flatten,
)
from optim.transforms._masking import (
    MaskedNode,
    MaskedState,
    masked,
)
from optim.transforms._monitoring import (
    MonitorState,
    SnapshotState,
    measure_with_ema,
    monitor,
    snapshot,
)
from optim.transforms._scaling import (
    ScaleByScheduleState,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
)

# name -> the optimizer-family module that defines it (loaded on first access: those modules
# import this package).
_ELSEWHERE = {
    "ScaleByAdamState": "optim.optimizers._adam",
    "ScaleByRmsState": "optim.optimizers._rmsprop",
    "ScaleByRssState": "optim.optimizers._adagrad",
    "ScaleByStddevState": "optim.optimizers._rmsprop",
    "scale_by_adam": "optim.optimizers._adam",
    "scale_by_rms": "optim.optimizers._rmsprop",
    "scale_by_rss": "optim.optimizers._adagrad",
    "scale_by_stddev": "optim.optimizers._rmsprop",
}

__all__ = [
    "AddDecayedWeightsState",
    "AddNoiseState",
    "ApplyIfFiniteState",
    "ConditionFn",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "EmaState",
    "MaskedNode",
    "MaskedState",
    "MonitorState",
    "MultiSteps",
    "MultiStepsState",
    "NonNegativeParamsState",
    "PartitionState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "ScaleByStddevState",
    "ShouldSkipUpdateFunction",
    "SnapshotState",
    "TraceState",
    "ZeroNansState",
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_noise",
    "apply_if_finite",
    "chain",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "conditionally_mask",
    "conditionally_transform",
    "ema",
    "flatten",
    "freeze",
    "keep_params_nonnegative",
    "masked",
    "measure_with_ema",
    "monitor",
    "named_chain",
    "partition",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_stddev",
    "selective_transform",
    "skip_large_updates",
    "skip_not_finite",
    "snapshot",
    "trace",
    "unitwise_clip",
    "unitwise_norm",
    "zero_nans",
]


def __getattr__(name: str):
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module 'optim.transforms' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ELSEWHERE))
