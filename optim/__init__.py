"""optim: functional optimizers for JAX as pytrees, with optax's names and a scan training loop.

The public API is flat, as in optax: ``optim.adamw``, ``optim.chain``, ``optim.fit``, ...
"""

from optim import checkpoint
from optim.alias import adagrad, adam, adamw, nadam, nadamw, rmsprop, sgd
from optim.base import (
    Chain,
    EmptyState,
    GradientTransformation,
    OptaxTransform,
    apply_updates,
    chain,
    identity,
    set_to_zero,
)
from optim.clipping import clip, clip_by_global_norm
from optim.grad import value_and_grad
from optim.schedules import *  # noqa: F403 - the schedules module defines its __all__
from optim.schedules import __all__ as _schedules_all
from optim.train import EarlyStopping, FitResult, fit, num_examples, sample_batch
from optim.transforms import (
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
from optim.wrappers import MaskedState, masked

__version__ = "0.1.0"

__all__ = [
    "AddDecayedWeightsState",
    "Chain",
    "EmaState",
    "EmptyState",
    "EarlyStopping",
    "FitResult",
    "GradientTransformation",
    "MaskedState",
    "OptaxTransform",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "ScaleByStddevState",
    "TraceState",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "checkpoint",
    "clip",
    "clip_by_global_norm",
    "ema",
    "fit",
    "identity",
    "masked",
    "nadam",
    "nadamw",
    "num_examples",
    "rmsprop",
    "sample_batch",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_stddev",
    "set_to_zero",
    "sgd",
    "trace",
    "value_and_grad",
    *_schedules_all,
]
