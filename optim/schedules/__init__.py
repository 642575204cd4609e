"""Schedules: functions of the step count that are pytrees, with optax's names and arguments.

The schedules themselves (``optim.schedules._schedules``: constant, polynomial, cosine,
exponential, piecewise, one-cycle, warmup-stable-decay), schedules joined one after another
(``_join``: ``join_schedules``, the warmup schedules, SGDR), and hyperparameters of an optimizer
driven by schedules (``_inject``: ``inject_hyperparams``), as in ``optax.schedules``.
"""

from optim.schedules._inject import (
    InjectHyperparamsState,
    InjectStatefulHyperparamsState,
    StatefulSchedule,
    WrappedSchedule,
    inject_hyperparams,
    inject_stateful_hyperparams,
)
from optim.schedules._join import (
    JoinSchedule,
    join_schedules,
    sgdr_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
)
from optim.schedules._schedules import (
    ConstantSchedule,
    CosineDecaySchedule,
    ExponentialDecaySchedule,
    PiecewiseConstantSchedule,
    PiecewiseInterpolateSchedule,
    PolynomialSchedule,
    WarmupStableDecaySchedule,
    constant_schedule,
    cosine_decay_schedule,
    cosine_onecycle_schedule,
    exponential_decay,
    linear_onecycle_schedule,
    linear_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
    wsd_schedule,
)

# The type of a schedule, as optax.schedules.Schedule: a typing alias, not a function to call,
# so not in __all__.
from optim.schedules._schedules import Schedule as Schedule

__all__ = [
    "ConstantSchedule",
    "CosineDecaySchedule",
    "ExponentialDecaySchedule",
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "JoinSchedule",
    "PiecewiseConstantSchedule",
    "PiecewiseInterpolateSchedule",
    "PolynomialSchedule",
    "StatefulSchedule",
    "WarmupStableDecaySchedule",
    "WrappedSchedule",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "wsd_schedule",
]
