"""Dataclasses that are pytrees: array-valued fields are children, ``static()`` fields are metadata.

Every optimizer, schedule and model in this project is such a dataclass. Children are what a
jitted function traces (float hyperparameters, weights, nested transforms); metadata is part of
the compiled program's identity (flags, dtypes, step counts). Construction from user values and
their validation happen in the public factory functions, never in ``__init__``: JAX rebuilds
these objects on every flatten/unflatten with tracers, ``None`` or sentinels as children.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax

T = TypeVar("T")

_STATIC = "optim_static"


def static(default: Any = dataclasses.MISSING, *, kw_only: bool = False) -> Any:
    """A dataclass field kept as static pytree metadata (must be hashable)."""
    return dataclasses.field(default=default, metadata={_STATIC: True}, kw_only=kw_only)


def is_static(field: dataclasses.Field) -> bool:
    """Whether a field of a ``pytree_dataclass`` is static metadata."""
    return bool(field.metadata.get(_STATIC, False))


def pytree_dataclass(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen dataclass registered as a pytree (see module docstring)."""
    cls = dataclasses.dataclass(frozen=True, eq=False)(cls)
    fields = dataclasses.fields(cls)
    data = [f.name for f in fields if not is_static(f)]
    meta = [f.name for f in fields if is_static(f)]
    jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)
    return cls


def replace(obj: T, **changes: Any) -> T:
    """A copy of a pytree dataclass with some fields replaced."""
    return dataclasses.replace(obj, **changes)
