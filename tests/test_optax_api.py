"""Every public name of optax resolves in optim at the same path.

optax's public API is enumerated at test time: the top-level package and every public
subpackage (``dir()`` of each, names without a leading underscore). A name missing from the
module of the same path in optim fails the test unless it is in ``EXCLUDED`` with its reason.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import optax
import pytest

# (optax module, name) -> why optim does not have it.
EXCLUDED = {
    # optax's test base class and what its module imports: test scaffolding, not library API.
    ("optax.optax_test", "*"): "optax's own test scaffolding (an absltest base class)",
    # Modules that optax's subpackages import for their own use and so appear in dir().
    ("optax.tree_utils", "typing"): "the standard library's typing module, imported by optax",
    ("optax.tree_utils", "functools"): "the standard library's functools, imported by optax",
}


def _public_modules() -> list[str]:
    names = ["optax"]
    for info in pkgutil.iter_modules(optax.__path__):
        if not info.name.startswith("_"):
            names.append(f"optax.{info.name}")
    return names


def _public_names(module: types.ModuleType) -> list[str]:
    return sorted(name for name in dir(module) if not name.startswith("_"))


def _excluded(module: str, name: str) -> bool:
    return (module, name) in EXCLUDED or (module, "*") in EXCLUDED


CASES = [
    (module, name)
    for module in _public_modules()
    for name in _public_names(importlib.import_module(module))
    if not _excluded(module, name)
]


def test_optax_has_the_api_we_enumerate():
    assert len(_public_modules()) >= 14
    assert len(CASES) >= 450


@pytest.mark.parametrize(("module", "name"), CASES, ids=[f"{m}.{n}" for m, n in CASES])
def test_optax_name_resolves_in_optim(module, name):
    ours = importlib.import_module("optim" + module[len("optax") :])
    assert hasattr(ours, name), f"optim{module[len('optax') :]}.{name} is missing"


def test_exclusions_are_still_needed():
    """An exclusion whose name optim now has (or optax no longer has) must leave the table."""
    for module, name in EXCLUDED:
        if name == "*":
            continue
        assert name in dir(importlib.import_module(module)), (module, name)
