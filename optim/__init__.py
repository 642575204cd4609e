"""optim: functional optimizers for JAX as pytrees, with optax's names and a scan training loop.

The public API is flat, as in optax: ``optim.adamw``, ``optim.chain``, ``optim.fit``, ...
"""

import sys

from optim import checkpoint, contrib, quantized
from optim.adam_family import *  # noqa: F403
from optim.adaptive_clip import *  # noqa: F403
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
from optim.combine import (
    MultiTransformState,
    PartitionState,
    freeze,
    hyperparams,
    multi_transform,
    partition,
    with_hyperparams,
)
from optim.conditional import *  # noqa: F403
from optim.contrib import *  # noqa: F403
from optim.factorized import *  # noqa: F403
from optim.grad import value_and_grad
from optim.lbfgs import *  # noqa: F403
from optim.linesearch import *  # noqa: F403
from optim.noise import *  # noqa: F403 - each catalogue module defines its __all__
from optim.optimistic import *  # noqa: F403
from optim.per_example import *  # noqa: F403
from optim.polyak import *  # noqa: F403
from optim.precision import *  # noqa: F403
from optim.quantized import (
    Int8Blockwise,
    QuantizedArray,
    bytes_per_parameter,
    state_bytes,
    with_state_dtype,
)
from optim.sanitize import *  # noqa: F403
from optim.schedules import *  # noqa: F403
from optim.sign import *  # noqa: F403
from optim.sweep import HypergradientResult, SweepResult, hypergradient_descent, sweep
from optim.train import EarlyStopping, FitResult, fit, num_examples, sample_batch
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
from optim.trust_ratio import *  # noqa: F403
from optim.wrappers import (
    ApplyIfFiniteState,
    InjectHyperparamsState,
    LookaheadParams,
    LookaheadState,
    MaskedState,
    MultiSteps,
    MultiStepsState,
    apply_if_finite,
    flatten,
    inject_hyperparams,
    lookahead,
    masked,
    skip_large_updates,
    skip_not_finite,
)

__version__ = "0.1.0"

__all__ = [
    "Int8Blockwise",
    "QuantizedArray",
    "bytes_per_parameter",
    "quantized",
    "state_bytes",
    "with_state_dtype",
    "contrib",
    "HypergradientResult",
    "SweepResult",
    "hypergradient_descent",
    "sweep",
    "ApplyIfFiniteState",
    "InjectHyperparamsState",
    "LookaheadParams",
    "LookaheadState",
    "MultiSteps",
    "MultiStepsState",
    "MultiTransformState",
    "PartitionState",
    "apply_if_finite",
    "flatten",
    "freeze",
    "hyperparams",
    "inject_hyperparams",
    "lookahead",
    "multi_transform",
    "partition",
    "skip_large_updates",
    "skip_not_finite",
    "with_hyperparams",
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
]
# Each catalogue module lists its public names; some share a name with their module (lbfgs).
_CATALOGUE_MODULES = (
    "adam_family",
    "adaptive_clip",
    "conditional",
    "contrib",
    "factorized",
    "lbfgs",
    "linesearch",
    "noise",
    "optimistic",
    "per_example",
    "polyak",
    "precision",
    "sanitize",
    "schedules",
    "sign",
    "trust_ratio",
)
__all__ += [
    name for module in _CATALOGUE_MODULES for name in sys.modules[f"optim.{module}"].__all__
]

# --- optax's numerics, linear algebra and remaining top-level names (numerics branch) -------
# (imports after __all__ so that this block stays in one piece for merging)
from optim import distributions, linear_algebra, numerics  # noqa: E402, F401
from optim.clipping import ClipByGlobalNormState, ClipState  # noqa: E402
from optim.contrib._dog import scale_by_distance_over_gradients  # noqa: E402
from optim.distributions import multi_normal  # noqa: E402
from optim.linear_algebra import (  # noqa: E402
    global_norm,
    matrix_inverse_pth_root,
    nnls,
    power_iteration,
)
from optim.numerics import (  # noqa: E402
    safe_increment,
    safe_int32_increment,
    safe_norm,
    safe_root_mean_squares,
)
from optim.transforms._building_blocks import ScaleByRStdDevState, ScaleState  # noqa: E402

__all__ += [
    "ClipByGlobalNormState",
    "ClipState",
    "ScaleByRStdDevState",
    "ScaleState",
    "global_norm",
    "matrix_inverse_pth_root",
    "multi_normal",
    "nnls",
    "power_iteration",
    "safe_increment",
    "safe_int32_increment",
    "safe_norm",
    "safe_root_mean_squares",
    "scale_by_distance_over_gradients",
]
# --- end of the numerics branch's block ------------------------------------------------------
