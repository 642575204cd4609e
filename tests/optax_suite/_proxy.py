"""Proxy modules that make optax's own test modules run against optim.

optax's tests import optax's public modules (``import optax``, ``from optax import contrib``)
and its private ones (``from optax._src import alias``, ``from optax.transforms import
_masking``), then call ``alias.adam(...)``. Replacing those modules in ``sys.modules`` would
also replace them under optax itself, so instead :func:`install` wraps ``builtins.__import__``:
an ``import`` statement executed in a test module (a module named ``*_test``) receives, for
every optax module, an :class:`OptaxProxy`. Every other importer, optax included, still sees
the real modules.

A proxy resolves each attribute by name (:func:`resolve`):

* an optax submodule becomes the proxy of that submodule (test helpers stay real);
* any other name is looked up in optim, first in the counterpart of the nearest public optax
  module (``optax.transforms._masking`` -> ``optim.transforms``, ``optax._src.alias`` ->
  ``optim``), then in top-level ``optim``;
* only where optim has no such name (or the optim module does not exist yet) is optax's own
  object returned, and that fallback is counted in :data:`RECORD`.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import types
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# Accesses made while a test module is imported or collected, before any test runs.
COLLECTION = "<collection>"


@dataclass
class Record:
    """What the proxies resolved, for the report.

    ``fallbacks`` and ``resolved`` map ``(optax module, attribute)`` to the set of test ids that
    made the access (:data:`COLLECTION` for module-level code); ``resolved`` also remembers the
    optim module each name came from. ``missing_modules`` are optim modules that do not exist.
    """

    current_test: str = COLLECTION
    fallbacks: dict = field(default_factory=lambda: defaultdict(set))
    resolved: dict = field(default_factory=lambda: defaultdict(set))
    resolved_from: dict = field(default_factory=dict)
    missing_modules: set = field(default_factory=set)

    def as_json(self) -> dict:
        def rows(table):
            return [
                {"module": module, "name": name, "tests": sorted(tests)}
                for (module, name), tests in sorted(table.items())
            ]

        resolved = rows(self.resolved)
        for row in resolved:
            row["optim_module"] = self.resolved_from[row["module"], row["name"]]
        return {
            "fallbacks": rows(self.fallbacks),
            "resolved": resolved,
            "missing_optim_modules": sorted(self.missing_modules),
        }


RECORD = Record()


def is_test_support(module_name: str) -> bool:
    """Test modules and optax's test helpers are used as they are, never proxied."""
    leaf = module_name.rsplit(".", 1)[-1]
    return leaf.endswith("_test") or leaf == "test_utils"


def public_homes(optax_name: str) -> list[str]:
    """The public optax modules a name of ``optax_name`` may be exported from, nearest first.

    ``optax.transforms._masking`` -> [``optax.transforms``, ``optax``];
    ``optax._src.alias`` -> [``optax``]; ``optax.contrib`` -> [``optax.contrib``, ``optax``].
    """
    parts = optax_name.split(".")
    public = 1
    while public < len(parts) and not parts[public].startswith("_"):
        public += 1
    return [".".join(parts[:k]) for k in range(public, 0, -1)]


def optim_counterpart(optax_public_name: str) -> str:
    return "optim" + optax_public_name[len("optax") :]


_MISSING = object()
_optim_modules: dict[str, types.ModuleType | None] = {}


def _optim_module(name: str) -> types.ModuleType | None:
    """The optim module ``name``, or None (recorded) where optim has no such module yet."""
    if name not in _optim_modules:
        try:
            found = _within_optim(importlib.util.find_spec(name))
        except ModuleNotFoundError as error:
            # Only the module itself being absent is a fallback; a broken import inside an
            # existing optim module is a failure the tests must show.
            if error.name is None or not name.startswith(error.name):
                raise
            found = False
        _optim_modules[name] = importlib.import_module(name) if found else None
        if not found:
            RECORD.missing_modules.add(name)
    return _optim_modules[name]


def _within_optim(spec) -> bool:
    """Whether a module found for an optim name belongs to the optim package under test.

    An editable install of another optim checkout adds a finder that serves the submodules
    this one lacks from that checkout; those would mix two versions of optim.
    """
    if spec is None:
        return False
    import optim

    root = Path(optim.__file__).resolve().parent
    locations = [spec.origin] if spec.origin else list(spec.submodule_search_locations or ())
    return any(Path(p).resolve().is_relative_to(root) for p in locations if p)


# Private optax names whose optim counterpart is public elsewhere: a test that checks a public
# function's result against the private class (``utils.MultiNormalDiagFromLogScale`` for
# ``utils.multi_normal``) must see ours, or it compares our object with optax's class.
PRIVATE_COUNTERPARTS = {
    ("optax._src.utils", "MultiNormalDiagFromLogScale"): "optim.distributions",
}


def _optax_submodule(
    optax_module: types.ModuleType, name: str, real: object
) -> types.ModuleType | None:
    """The optax module ``optax_module.name`` stands for, if it is one."""
    if isinstance(real, types.ModuleType) and real.__name__.startswith("optax"):
        return real
    if real is not _MISSING:
        return None
    # optax may import the submodule lazily; the import statement asked for it by name.
    try:
        return importlib.import_module(f"{optax_module.__name__}.{name}")
    except ModuleNotFoundError:
        return None


def resolve(optax_module: types.ModuleType, name: str):
    """What ``optax_module.name`` means when the test runs against optim (see module doc)."""
    real = getattr(optax_module, name, _MISSING)
    module = _optax_submodule(optax_module, name, real)
    if module is not None:
        return module if is_test_support(module.__name__) else proxy_for(module)
    if name.startswith("__") and name.endswith("__"):
        if real is _MISSING:
            raise AttributeError(name)
        return real

    key = (optax_module.__name__, name)
    if key in PRIVATE_COUNTERPARTS:
        RECORD.resolved[key].add(RECORD.current_test)
        RECORD.resolved_from[key] = PRIVATE_COUNTERPARTS[key]
        return getattr(importlib.import_module(PRIVATE_COUNTERPARTS[key]), name)
    homes = public_homes(optax_module.__name__)
    for rank, home in enumerate(homes):
        if rank > 0:
            # A broader module is only consulted for a name optax exports there too, as the
            # same object: optax.tree.scale must not become optim.scale (a transformation).
            optax_home = importlib.import_module(home)
            if real is _MISSING or getattr(optax_home, name, _MISSING) is not real:
                continue
        optim_module = _optim_module(optim_counterpart(home))
        if optim_module is not None and hasattr(optim_module, name):
            RECORD.resolved[key].add(RECORD.current_test)
            RECORD.resolved_from[key] = optim_module.__name__
            return getattr(optim_module, name)
    if real is _MISSING:
        raise AttributeError(f"neither optim nor {optax_module.__name__} has {name!r}")
    RECORD.fallbacks[key].add(RECORD.current_test)
    return real


class OptaxProxy(types.ModuleType):
    """Stands for one optax module inside a test module; attributes come from :func:`resolve`.

    Nothing is cached on the instance, so every access is resolved and recorded.
    """

    def __init__(self, real: types.ModuleType):
        super().__init__(real.__name__, real.__doc__)
        self.__dict__["_optax_suite_real"] = real

    def __getattr__(self, name: str):
        return resolve(self.__dict__["_optax_suite_real"], name)

    def __dir__(self):
        real = self.__dict__["_optax_suite_real"]
        names = set(dir(real))
        for home in public_homes(real.__name__)[:1]:
            optim_module = _optim_module(optim_counterpart(home))
            if optim_module is not None:
                names.update(dir(optim_module))
        return sorted(names)

    def __repr__(self) -> str:
        return f"<optax module {self.__name__!r} resolved against optim>"


_proxies: dict[str, OptaxProxy] = {}


def proxy_for(real: types.ModuleType) -> OptaxProxy:
    if real.__name__ not in _proxies:
        _proxies[real.__name__] = OptaxProxy(real)
    return _proxies[real.__name__]


def _is_test_module(importer_globals) -> bool:
    name = (importer_globals or {}).get("__name__", "")
    return isinstance(name, str) and name.rsplit(".", 1)[-1].endswith("_test")


def install() -> None:
    """Route optax imports made by test modules to proxies (for the rest of this process)."""
    original_import = builtins.__import__

    def import_for_tests(name, globals=None, locals=None, fromlist=(), level=0):
        module = original_import(name, globals, locals, fromlist, level)
        if level != 0 or not (name == "optax" or name.startswith("optax.")):
            return module
        if not _is_test_module(globals):
            return module
        # With a fromlist the statement gets the named module itself, otherwise the top level.
        if is_test_support(module.__name__):
            return module
        return proxy_for(module)

    builtins.__import__ = import_for_tests
