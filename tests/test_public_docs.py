"""Every public callable documents itself: arguments, what it returns, and an example that runs.

A public callable is any function, ``functools.partial`` or class reachable under a public name of
``optim`` (its ``__all__``), of each of its public subpackages, or of ``models`` and its public
modules (the list the documentation site's reference is written from), and defined in
``optim`` or ``models`` (optax's own classes that we re-export are optax's to document). The
examples themselves run as doctests (``--doctest-modules``); this test checks that they exist.

Rules, in optax's docstring style (Google sections, two-space indented entries):
- functions and partials: an ``Args:`` section naming every parameter of the signature (``*args``
  and ``**kwargs`` by their bare names), a ``Returns:`` section (``Yields:`` for generators), and an
  ``Examples:`` section with a ``>>>`` line;
- classes: an ``Attributes:`` or ``Args:`` section naming every field (dataclass field or
  ``NamedTuple`` field) of the class.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import re

import conftest
import pytest

PACKAGES = conftest.api_reference().PACKAGES


def _public_callables() -> dict[str, object]:
    found: dict[int, tuple[str, object]] = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n in dir(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if not (
                inspect.isfunction(obj)
                or inspect.isclass(obj)
                or isinstance(obj, functools.partial)
            ):
                continue
            home = (
                getattr(obj.func if isinstance(obj, functools.partial) else obj, "__module__", "")
                or ""
            )
            if home.split(".")[0] not in ("optim", "models"):
                continue
            found.setdefault(id(obj), (f"{package}.{name}", obj))
    return dict(sorted(found.values(), key=lambda item: item[0]))


PUBLIC = _public_callables()


def _section(doc: str, title: str) -> str | None:
    """The body of a Google-style section (``Args:``), up to the next section or the end."""
    match = re.search(rf"^\s*{title}:\s*$(.*?)(?=^\s*[A-Z][A-Za-z ]+:\s*$|\Z)", doc, re.M | re.S)
    return None if match is None else match.group(1)


def _documented_names(body: str) -> set[str]:
    return set(re.findall(r"^\s*\**([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?\s*:", body, re.M))


def _parameters(obj) -> list[str]:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [name for name in signature.parameters if name not in ("self", "cls")]


def _fields(cls) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return list(getattr(cls, "_fields", ()))


def _problems(obj) -> list[str]:
    doc = inspect.getdoc(obj) or ""
    if not doc.strip():
        return ["no docstring"]
    problems = []
    if inspect.isclass(obj):
        fields = _fields(obj)
        if fields:
            body = _section(doc, "Attributes") or _section(doc, "Args")
            if body is None:
                return ["no Attributes: (or Args:) section"]
            missing = [f for f in fields if f not in _documented_names(body)]
            if missing:
                problems.append(f"fields not documented: {missing}")
        return problems
    parameters = _parameters(obj)
    if parameters:
        body = _section(doc, "Args")
        if body is None:
            problems.append("no Args: section")
        else:
            missing = [p for p in parameters if p not in _documented_names(body)]
            if missing:
                problems.append(f"arguments not documented: {missing}")
    if _section(doc, "Returns") is None and _section(doc, "Yields") is None:
        problems.append("no Returns: section")
    examples = _section(doc, "Examples")
    if examples is None or ">>>" not in examples:
        problems.append("no Examples: section with a >>> line")
    return problems


@pytest.mark.parametrize("name", list(PUBLIC))
def test_public_callable_is_documented(name):
    problems = _problems(PUBLIC[name])
    assert not problems, f"{name}: " + "; ".join(problems)


if __name__ == "__main__":  # python test_public_docs.py [prefix ...]: list what is missing
    import sys

    prefixes = tuple(sys.argv[1:]) or ("",)
    missing = 0
    for name, obj in PUBLIC.items():
        home = getattr(obj.func if isinstance(obj, functools.partial) else obj, "__module__", "")
        if not (name.startswith(prefixes) or home.startswith(prefixes)):
            continue
        problems = _problems(obj)
        if problems:
            missing += 1
            print(f"{name} [{home}]: " + "; ".join(problems))
    print(f"{missing} of {len(PUBLIC)} public callables lack documentation")
