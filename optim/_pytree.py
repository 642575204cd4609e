"""Dataclasses that are pytrees: array-valued fields are children, ``static()`` fields are metadata.

Every optimizer, schedule and model in this project is such a dataclass. Children are what a
jitted function traces (float hyperparameters, weights, nested transforms); metadata is part of
the compiled program's identity (flags, dtypes, step counts).

A field may declare how a user's value is checked and converted (``checked`` for a child,
``static(check=...)`` for metadata; the float hyperparameters' constraints and the static
options' checks in ``optim._hyper`` are built on them): the check runs once, when the object is
built through its ``__init__``. JAX rebuilds these objects on every unflatten with
tracers, ``None`` or sentinels as children, so unflattening bypasses ``__init__`` (and
``__post_init__``) altogether, as equinox does: ``cls.__new__(cls)`` and the fields set as they are.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any, TypeVar

import jax

T = TypeVar("T")

_STATIC = "optim_static"
_CHECK = "optim_check"
_CHECKS = "__optim_checks__"


def static(
    default: Any = dataclasses.MISSING,
    *,
    check: Callable[[Any, str], Any] | None = None,
    name: str | None = None,
    kw_only: bool = False,
) -> Any:
    """A dataclass field kept as static pytree metadata (must be hashable); with ``check``, the
    value is checked and converted as a ``checked`` field's is (``name`` as there)."""
    metadata: dict[str, Any] = {_STATIC: True}
    if check is not None:
        metadata[_CHECK] = (check, name)
    return dataclasses.field(default=default, metadata=metadata, kw_only=kw_only)


def checked(
    check: Callable[[Any, str], Any],
    default: Any = dataclasses.MISSING,
    *,
    name: str | None = None,
    kw_only: bool = False,
) -> Any:
    """A child field whose value is passed through ``check(value, name)`` when the object is
    built (never on unflatten); ``check`` raises for a bad value and returns the stored one.
    ``name``, the argument that errors name, is the field's own unless given."""
    return dataclasses.field(default=default, metadata={_CHECK: (check, name)}, kw_only=kw_only)


def is_static(field: dataclasses.Field) -> bool:
    """Whether a field of a ``pytree_dataclass`` is static metadata."""
    return bool(field.metadata.get(_STATIC, False))


def _run_checks(self: Any) -> None:
    for field, (check, name) in getattr(type(self), _CHECKS):
        object.__setattr__(self, field, check(getattr(self, field), name or field))


def _with_checks(post_init: Callable[[Any], None] | None) -> Callable[[Any], None]:
    """A ``__post_init__`` that runs the field checks, then the class's own one (if any)."""

    def __post_init__(self: Any) -> None:
        _run_checks(self)
        if post_init is not None:
            post_init(self)

    __post_init__.runs_field_checks = True  # type: ignore[attr-defined]
    return __post_init__


def pytree_dataclass(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen dataclass registered as a pytree (see module docstring)."""
    own = getattr(cls, "__post_init__", None)
    if not getattr(own, "runs_field_checks", False):
        cls.__post_init__ = _with_checks(own)  # type: ignore[attr-defined]
    cls = dataclasses.dataclass(frozen=True, eq=False)(cls)
    fields = dataclasses.fields(cls)
    checks = tuple((f.name, f.metadata[_CHECK]) for f in fields if _CHECK in f.metadata)
    setattr(cls, _CHECKS, checks)
    data = tuple(f.name for f in fields if not is_static(f))
    meta = tuple(f.name for f in fields if is_static(f))
    keys = tuple(jax.tree_util.GetAttrKey(name) for name in data)
    children_of, aux_of = _getter(data), _getter(meta)

    def flatten(obj: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        return children_of(obj), aux_of(obj)

    def flatten_with_keys(obj: Any) -> tuple[list[Any], tuple[Any, ...]]:
        children, aux = flatten(obj)
        return list(zip(keys, children, strict=True)), aux

    def unflatten(aux: tuple[Any, ...], children: Any) -> Any:
        obj = cls.__new__(cls)
        for name, value in zip(meta, aux, strict=True):
            object.__setattr__(obj, name, value)
        for name, value in zip(data, children, strict=True):
            object.__setattr__(obj, name, value)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    return cls


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """``obj -> tuple(getattr(obj, name) for name in names)``, as fast as Python allows: every
    jitted call flattens its optimizer and model arguments with it."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        one = operator.attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def with_fields(obj: T, **changes: Any) -> T:
    """A copy of a pytree dataclass with some fields set as they are, unchecked: for values that
    a check has already produced (the fields kept are not checked again either)."""
    new = type(obj).__new__(type(obj))
    for field in dataclasses.fields(obj):
        object.__setattr__(new, field.name, changes.get(field.name, getattr(obj, field.name)))
    return new


def replace(obj: T, **changes: Any) -> T:
    """A copy of a pytree dataclass with some fields replaced (checked as when it was built)."""
    return dataclasses.replace(obj, **changes)
