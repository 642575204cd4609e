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


def resolve_learning_rate_annotations(*namespaces: object) -> None:
    """Put the ``ScalarOrSchedule`` object back where a public factory's ``learning_rate`` is
    annotated with it.

    Our modules postpone annotations (``from __future__ import annotations``), so
    ``inspect.signature(optim.adam).parameters["learning_rate"].annotation`` would be the string
    ``"ScalarOrSchedule"``. optax's tests and tools compare that annotation with the object to
    learn whether a factory takes a schedule; with the object they read ours as optax's.
    """
    for namespace in namespaces:
        defined = vars(namespace)  # not getattr: that would import the lazy submodules
        for name in getattr(namespace, "__all__", ()):
            annotations = getattr(defined.get(name), "__annotations__", None)
            if isinstance(annotations, dict) and (
                annotations.get("learning_rate") == "ScalarOrSchedule"
            ):
                annotations["learning_rate"] = ScalarOrSchedule
