"""Gradient transformations: the building blocks and combinators optimizers are made of.

The same public names as ``optax.transforms``, plus the building blocks optax keeps at its top
level (``scale_by_adam``, ``trace``, ...). The combinators are defined in the modules of their
concern and re-exported here on first access, so importing this package loads nothing else.
"""

import importlib

from optim.transforms._building_blocks import (
    AddDecayedWeightsState,
    EmaState,
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRssState,
    ScaleByScheduleState,
    ScaleByStddevState,
    TraceState,
    add_decayed_weights,
    ema,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_schedule,
    scale_by_stddev,
    trace,
)

# name -> the module that defines it (loaded on first access).
_ELSEWHERE = {
    "AddNoiseState": "optim.noise",
    "add_noise": "optim.noise",
    "ApplyIfFiniteState": "optim.wrappers",
    "MaskedNode": "optim.wrappers",
    "MaskedState": "optim.wrappers",
    "MultiSteps": "optim.wrappers",
    "MultiStepsState": "optim.wrappers",
    "apply_if_finite": "optim.wrappers",
    "flatten": "optim.wrappers",
    "masked": "optim.wrappers",
    "skip_large_updates": "optim.wrappers",
    "skip_not_finite": "optim.wrappers",
    "ConditionallyMaskState": "optim.conditional",
    "ConditionallyTransformState": "optim.conditional",
    "conditionally_mask": "optim.conditional",
    "conditionally_transform": "optim.conditional",
    "named_chain": "optim.conditional",
    "selective_transform": "optim.conditional",
    "NonNegativeParamsState": "optim.base",
    "chain": "optim.base",
    "PartitionState": "optim.combine",
    "freeze": "optim.combine",
    "partition": "optim.combine",
    "ZeroNansState": "optim.sanitize",
    "keep_params_nonnegative": "optim.sanitize",
    "zero_nans": "optim.sanitize",
    "adaptive_grad_clip": "optim.adaptive_clip",
    "clip": "optim.clipping",
    "clip_by_global_norm": "optim.clipping",
    "clip_by_block_rms": "optim.factorized",
    "per_example_global_norm_clip": "optim.per_example",
    "per_example_layer_norm_clip": "optim.per_example",
}

__all__ = [
    "AddDecayedWeightsState",
    "AddNoiseState",
    "ApplyIfFiniteState",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "EmaState",
    "MaskedNode",
    "MaskedState",
    "MultiSteps",
    "MultiStepsState",
    "NonNegativeParamsState",
    "PartitionState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "ScaleByStddevState",
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
    "trace",
    "zero_nans",
]


def __getattr__(name: str):
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module 'optim.transforms' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ELSEWHERE))
