"""Every public name of optax resolves in optim at the same path.

optax's public API is enumerated at test time: the top-level package and every public
subpackage (``dir()`` of each, names without a leading underscore). A name missing from the
module of the same path in optim fails the test unless it is in ``EXCLUDED`` with its reason.
The state records optax aliases to ``EmptyState`` are aliases here too, and integer updates
are an error.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import jax.numpy as jnp
import optax
import pytest

import optim

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


NAMES = [
    "ClipByGlobalNormState",
    "ClipState",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByRStdDevState",
    "ScaleByTrustRatioState",
    "ScaleState",
    "global_norm",
    "matrix_inverse_pth_root",
    "multi_normal",
    "nnls",
    "optimistic_adam",
    "power_iteration",
    "safe_increment",
    "safe_int32_increment",
    "safe_norm",
    "safe_root_mean_squares",
    "scale_by_backtracking_linesearch",
    "scale_by_distance_over_gradients",
    "scale_by_param_block_norm",
]


def test_every_name_is_exported():
    for name in NAMES:
        assert hasattr(optax, name), name
        assert name in optim.__all__, name
        assert callable(getattr(optim, name)), name


@pytest.mark.parametrize(
    "name", ["ClipByGlobalNormState", "ClipState", "ScaleByTrustRatioState", "ScaleState"]
)
def test_empty_state_aliases_as_in_optax(name):
    assert getattr(optax, name) is optax.EmptyState
    assert getattr(optim, name) is optim.EmptyState


def test_transforms_return_the_aliased_states(params):
    for tx in (optim.clip(1.0), optim.clip_by_global_norm(1.0), optim.scale(0.5)):
        assert tx.init(params) == optim.EmptyState()
    assert optim.scale_by_trust_ratio().init(params) == optim.ScaleByTrustRatioState()


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.scale(2.0),
        lambda: optim.scale_by_learning_rate(0.5),
        lambda: optim.scale_by_learning_rate(optim.constant_schedule(0.5)),
        lambda: optim.scale_by_schedule(optim.constant_schedule(0.5)),
        lambda: optim.clip(1.0),
        lambda: optim.clip_by_global_norm(1.0),
    ],
    ids=["scale", "scale_by_learning_rate", "lr_schedule", "scale_by_schedule", "clip", "gnorm"],
)
def test_integer_updates_are_an_error(make):
    """optax promotes integer updates to float (``scale(2.).update(jnp.array([1, 2]))`` gives
    float32 [2., 4.]); these used to return None for the leaf, silently. Integer gradients
    are an error everywhere in optim (``chain`` and every stateful transformation raise the
    same TypeError), so these raise it too."""
    tx = make()
    updates = {"w": jnp.array([1, 2]), "f": jnp.ones(2)}
    with pytest.raises(TypeError, match=r"\['w'\] is an array of dtype int32"):
        tx.update(updates, tx.init({"w": jnp.ones(2), "f": jnp.ones(2)}))
    floats, _ = tx.update({"f": jnp.ones(2)}, tx.init({"f": jnp.ones(2)}))
    assert floats["f"].dtype == jnp.float32
