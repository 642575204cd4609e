"""Contributed optimizers: what optax users use beyond optax's core (``optax.contrib``).

One module per algorithm; names, arguments, defaults and state fields follow
``optax.contrib`` (see each module for the paper).
"""

import sys

from optim._types import resolve_learning_rate_annotations
from optim.contrib._acprop import acprop, scale_by_acprop
from optim.contrib._ademamix import (
    ScaleByAdemamixState,
    ademamix,
    scale_by_ademamix,
)
from optim.contrib._adopt import adopt, scale_by_adopt
from optim.contrib._cocob import COCOBState, cocob, scale_by_cocob
from optim.contrib._complex_valued import (
    SplitRealAndImaginaryArrays,
    SplitRealAndImaginaryState,
    split_real_and_imaginary,
)
from optim.contrib._dadapt_adamw import DAdaptAdamWState, dadapt_adamw
from optim.contrib._dog import DoGState, DoWGState, dog, dowg, scale_by_dog, scale_by_dowg
from optim.contrib._galore import GaLoreDimensionNumbers, GaLoreState, galore, scale_by_galore
from optim.contrib._madgrad import MadgradState, madgrad, scale_by_madgrad
from optim.contrib._mechanic import MechanicState, mechanize
from optim.contrib._momo import MomoAdamState, MomoState, momo, momo_adam
from optim.contrib._muon import MuonDimensionNumbers, MuonState, muon, scale_by_muon
from optim.contrib._privacy import (
    DifferentiallyPrivateAggregateState,
    differentially_private_aggregate,
    dpsgd,
)
from optim.contrib._prodigy import ProdigyState, prodigy, scale_by_prodigy
from optim.contrib._reduce_on_plateau import ReduceLROnPlateauState, reduce_on_plateau
from optim.contrib._sam import NormalizeState, SAMState, normalize, sam
from optim.contrib._schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)
from optim.contrib._simplified_ademamix import (
    ScaleBySimplifiedAdEMAMixState,
    scale_by_simplified_ademamix,
    simplified_ademamix,
)
from optim.contrib._sophia import (
    HutchinsonState,
    SophiaState,
    hutchinson_estimator_diag_hessian,
    scale_by_sophia,
    sophia,
)

__all__ = [
    "COCOBState",
    "DAdaptAdamWState",
    "DifferentiallyPrivateAggregateState",
    "DoGState",
    "DoWGState",
    "GaLoreDimensionNumbers",
    "GaLoreState",
    "HutchinsonState",
    "MadgradState",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "MuonDimensionNumbers",
    "MuonState",
    "NormalizeState",
    "ProdigyState",
    "ReduceLROnPlateauState",
    "SAMState",
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "ScheduleFreeState",
    "SophiaState",
    "SplitRealAndImaginaryArrays",
    "SplitRealAndImaginaryState",
    "acprop",
    "ademamix",
    "adopt",
    "cocob",
    "dadapt_adamw",
    "differentially_private_aggregate",
    "dog",
    "dowg",
    "dpsgd",
    "galore",
    "hutchinson_estimator_diag_hessian",
    "madgrad",
    "mechanize",
    "momo",
    "momo_adam",
    "muon",
    "normalize",
    "prodigy",
    "reduce_on_plateau",
    "sam",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
    "scale_by_galore",
    "scale_by_madgrad",
    "scale_by_muon",
    "scale_by_prodigy",
    "scale_by_simplified_ademamix",
    "scale_by_sophia",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "simplified_ademamix",
    "sophia",
    "split_real_and_imaginary",
]

resolve_learning_rate_annotations(sys.modules[__name__])
