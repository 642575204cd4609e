"""optim: functional optimizers for JAX as pytrees, with optax's names and a scan training loop.

The public API is flat, as in optax: ``optim.adamw``, ``optim.chain``, ``optim.fit``, ...
"""

import importlib
import sys
from typing import TYPE_CHECKING

from optim import contrib, losses, projections  # losses (sparsemax) use projections
from optim._types import (
    MaskOrFn,
    OptState,
    Params,
    ScalarOrSchedule,
    Schedule,
    TransformInitFn,
    TransformUpdateExtraArgsFn,
    TransformUpdateFn,
    Updates,
)
from optim.adam_family import *  # noqa: F403
from optim.adaptive_clip import *  # noqa: F403
from optim.alias import adagrad, adam, adamw, nadam, nadamw, rmsprop, sgd
from optim.base import (
    Chain,
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptaxTransform,
    Transformation,
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

# losses: the names optax also exports at its top level (all are in optim.losses)
from optim.losses import (
    convex_kl_divergence,
    cosine_distance,
    cosine_similarity,
    ctc_loss,
    ctc_loss_with_forward_probs,
    generalized_kl_divergence,
    hinge_loss,
    huber_loss,
    kl_divergence,
    l2_loss,
    log_cosh,
    ntxent,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
    squared_error,
)
from optim.noise import *  # noqa: F403 - each catalogue module defines its __all__
from optim.optimistic import *  # noqa: F403
from optim.per_example import *  # noqa: F403
from optim.polyak import *  # noqa: F403
from optim.precision import *  # noqa: F403
from optim.sanitize import *  # noqa: F403
from optim.schedules import *  # noqa: F403
from optim.sign import *  # noqa: F403
from optim.train import (
    EarlyStopping,
    FitResult,
    HypergradientResult,
    SweepResult,
    fit,
    hypergradient_descent,
    num_examples,
    sample_batch,
    sweep,
)
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

# --- optax's remaining core names: monitoring, stateless transformations, parameter averages
# (inject_stateful_hyperparams, WrappedSchedule and the states come with optim.schedules) ---
from optim.transforms._incremental import *  # noqa: F403
from optim.transforms._monitoring import *  # noqa: F403
from optim.transforms._stateless import *  # noqa: F403

# --- end of optax's remaining core names ---
from optim.trust_ratio import *  # noqa: F403
from optim.wrappers import (
    ApplyIfFiniteState,
    InjectHyperparamsState,
    LookaheadParams,
    LookaheadState,
    MaskedState,
    MultiSteps,
    MultiStepsState,
    ShouldSkipUpdateFunction,
    apply_if_finite,
    flatten,
    inject_hyperparams,
    lookahead,
    masked,
    skip_large_updates,
    skip_not_finite,
)

# --- lazily imported: subpackages and modules that `import optim` does not load until first used
# (PEP 562), so that it stays about as cheap as `import optax`. Each resolves as before, as
# `optim.<name>`, `from optim import <name>` and `import optim.<name>`, and is listed by dir().
# The optax subpackages (second_order, perturbations, assignment, microbatching, experimental;
# optax also has optax.microbatch; projections is imported above, for the losses),
# checkpoints (orbax is imported by a save or restore only) and quantized optimizer state.
if TYPE_CHECKING:  # for type checkers and linters; at run time __getattr__ below imports them
    from optim import (
        assignment,
        checkpoint,
        experimental,
        microbatching,
        perturbations,
        quantized,
        second_order,
    )
    from optim.microbatching import microbatch
    from optim.quantized import (
        Int8Blockwise,
        QuantizedArray,
        bytes_per_parameter,
        state_bytes,
        with_state_dtype,
    )

_LAZY_SUBMODULES = frozenset(
    {
        "assignment",
        "checkpoint",
        "experimental",
        "microbatching",
        "perturbations",
        "quantized",
        "second_order",
    }
)
_LAZY_NAMES = {  # public name -> the submodule that defines it
    "Int8Blockwise": "quantized",
    "QuantizedArray": "quantized",
    "bytes_per_parameter": "quantized",
    "state_bytes": "quantized",
    "with_state_dtype": "quantized",
    "microbatch": "microbatching",
}


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"optim.{name}")  # importing binds it here too
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f"optim.{_LAZY_NAMES[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_SUBMODULES, *_LAZY_NAMES})


# --- end lazily imported ---

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
    "ShouldSkipUpdateFunction",
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
    "GradientTransformationExtraArgs",
    "MaskOrFn",
    "OptState",
    "Params",
    "ScalarOrSchedule",
    "Schedule",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "Transformation",
    "Updates",
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
# --- losses ---
__all__ += [
    "losses",
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "generalized_kl_divergence",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "l2_loss",
    "log_cosh",
    "ntxent",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "squared_error",
]
# --- end losses ---
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
    "transforms._incremental",
    "transforms._monitoring",
    "transforms._stateless",
)
__all__ += [
    name for module in _CATALOGUE_MODULES for name in sys.modules[f"optim.{module}"].__all__
]

# --- pytree utilities (optax.tree, optax.tree_utils and optax's top-level aliases) ---
from optim import tree, tree_utils  # noqa: E402
from optim.tree import (  # noqa: E402
    bias_correction,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
)
from optim.tree import map_params as tree_map_params  # noqa: E402
from optim.wrappers import MaskedNode  # noqa: E402

__all__ += [
    "MaskedNode",
    "bias_correction",
    "tree",
    "tree_map_params",
    "tree_utils",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
]
# --- end pytree utilities ---

# optax subpackages (the block above)
__all__ += [
    "assignment",
    "experimental",
    "microbatch",
    "microbatching",
    "perturbations",
    "projections",
    "second_order",
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
__all__ = list(dict.fromkeys(__all__))  # a name re-exported by two modules, listed once

from optim._types import resolve_learning_rate_annotations  # noqa: E402

resolve_learning_rate_annotations(sys.modules[__name__], contrib)
del resolve_learning_rate_annotations
