"""The type names optax exports for annotations, shared with optax so that they agree.

``Params``, ``Updates`` and ``OptState`` are pytrees; ``Schedule`` maps a step count to a
value; ``ScalarOrSchedule`` is a number or a schedule; ``MaskOrFn`` a tree of booleans or a
function of the parameters returning one; the ``Transform*Fn`` names are the signatures of
``init`` and ``update``.
"""

from optax import (
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

__all__ = [
    "MaskOrFn",
    "OptState",
    "Params",
    "ScalarOrSchedule",
    "Schedule",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "Updates",
]
