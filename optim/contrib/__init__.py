"""Contributed optimizers: what optax users use beyond optax's core (``optax.contrib``).

One module per algorithm; names, arguments, defaults and state fields follow
``optax.contrib`` (see each module for the paper).
"""

from optim.contrib._ademamix import (
    ScaleByAdemamixState,
    ademamix,
    scale_by_ademamix,
)
from optim.contrib._adopt import adopt, scale_by_adopt
from optim.contrib._muon import MuonDimensionNumbers, MuonState, muon, scale_by_muon
from optim.contrib._prodigy import ProdigyState, prodigy, scale_by_prodigy
from optim.contrib._sam import NormalizeState, SAMState, normalize, sam
from optim.contrib._schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)
from optim.contrib._sophia import (
    HutchinsonState,
    SophiaState,
    hutchinson_estimator_diag_hessian,
    scale_by_sophia,
    sophia,
)

__all__ = [
    "HutchinsonState",
    "MuonDimensionNumbers",
    "MuonState",
    "NormalizeState",
    "ProdigyState",
    "SAMState",
    "ScaleByAdemamixState",
    "ScheduleFreeState",
    "SophiaState",
    "ademamix",
    "adopt",
    "hutchinson_estimator_diag_hessian",
    "muon",
    "normalize",
    "prodigy",
    "sam",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_muon",
    "scale_by_prodigy",
    "scale_by_sophia",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "sophia",
]
