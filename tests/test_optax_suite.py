"""optax's own test modules, run against optim (tests/optax_suite).

Each module runs in its own pytest process with optax's modules replaced by optim's. A test
here fails when an optax test that passes on optax fails on optim and is neither a deliberate
difference (optax_suite/expected_failures.py) nor a known failure
(optax_suite/results/known_failures.txt), and when a known failure has started to pass (the
list only shrinks: regenerate it with ``python -m tests.optax_suite --update-known``).
"""

from __future__ import annotations

import importlib
import importlib.util

import optax
import pytest
from optax_suite import _proxy, runner

import optim

_KNOWN = runner.read_known_failures()
# One module on optim takes at most about a minute here (the slow ones are marked); a module
# that hangs must not hold the suite.
_TIMEOUT_S = 300.0


def _module_param(module: str):
    marks = [pytest.mark.slow] if module in runner.SLOW_MODULES else []
    return pytest.param(module, id=module, marks=marks)


@pytest.mark.parametrize("module", [_module_param(m) for m in runner.all_modules()])
def test_optax_module_on_optim(module):
    check = runner.check_module(module, _KNOWN, timeout_s=_TIMEOUT_S)
    ours = check.optim_run
    assert not ours.timed_out, f"{module} did not finish in {_TIMEOUT_S} s on optim"
    new = "\n".join(
        f"  {t} ({o['outcome']}): {' '.join(o['message'].split())[:300]}"
        for t, o in sorted(check.new_failures.items())
    )
    assert not check.new_failures, f"pass on optax, fail on optim, not listed:\n{new}"
    assert not check.now_passing, (
        "listed as failing but pass on optim now; run `python -m tests.optax_suite "
        f"{module} --update-known` (or remove the expected_failures entry): {check.now_passing}"
    )
    assert not check.stale, f"known failures this module no longer reports: {check.stale}"


def test_public_homes_map_private_modules_to_the_public_module_that_exports_them():
    assert _proxy.public_homes("optax._src.alias") == ["optax"]
    assert _proxy.public_homes("optax.transforms._masking") == ["optax.transforms", "optax"]
    assert _proxy.public_homes("optax.contrib") == ["optax.contrib", "optax"]
    assert _proxy.optim_counterpart("optax.tree_utils") == "optim.tree_utils"


def test_private_names_resolve_to_optim_public_names():
    alias = importlib.import_module("optax._src.alias")
    masking = importlib.import_module("optax.transforms._masking")
    assert _proxy.resolve(alias, "adam") is optim.adam
    assert _proxy.resolve(masking, "masked") is optim.transforms.masked
    assert isinstance(_proxy.resolve(optax, "contrib"), _proxy.OptaxProxy)


def test_a_name_falls_back_to_optax_only_where_optim_lacks_it_and_is_counted():
    transform = importlib.import_module("optax._src.transform")
    # A private helper of optax's that optim does not define under that name.
    name = "_reject_complex"
    assert not hasattr(optim, name)
    assert _proxy.resolve(transform, name) is getattr(transform, name)
    assert ("optax._src.transform", name) in _proxy.RECORD.fallbacks


def test_a_broader_module_is_only_used_for_the_same_optax_object():
    # optax.tree.scale multiplies a tree by a scalar; optim.scale is a transformation.
    tree_scale = _proxy.resolve(importlib.import_module("optax.tree"), "scale")
    assert tree_scale is not optim.scale
    if tree_scale is not optax.tree.scale:  # optim.tree exists and has its own
        assert tree_scale is importlib.import_module("optim.tree").scale


def test_a_missing_optim_module_is_recorded_not_raised():
    assert _proxy._optim_module("optim.no_such_module") is None
    assert "optim.no_such_module" in _proxy.RECORD.missing_modules


def test_only_modules_of_the_optim_package_under_test_count_as_optim():
    # An editable install of another optim checkout serves the submodules this one lacks.
    assert _proxy._within_optim(importlib.util.find_spec("optim.contrib"))
    assert not _proxy._within_optim(importlib.util.find_spec("optax.contrib"))
    assert not _proxy._within_optim(None)
