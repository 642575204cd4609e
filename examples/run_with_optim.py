"""Run a program written for optax with optim in optax's place, unchanged.

    python examples/run_with_optim.py [--everywhere] examples/lookahead_mnist.py [ARGS...]

is ``python examples/lookahead_mnist.py [ARGS...]`` as if the program's ``import optax`` read
``import optim as optax``, its submodule imports included (``import optax.tree``,
``from optax.losses import ...``, ``from optax import contrib``): the module ``optax.X`` is
``optim.X``, the same module object; where optim has no ``X`` the import fails with
``ModuleNotFoundError`` naming it.

Libraries keep their own optax, as they would if the program's import line were edited: flax's
modules that import optax (``nnx.Optimizer`` calls ``optax.apply_updates``) are imported
before the switch. With ``--everywhere`` they are not, and get optim too: optim standing in for
optax in the whole process. Modules of optax already imported keep working either way: their
private ``optax._src`` modules stay as they are.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import runpy
import sys


def _optim_name(optax_name: str) -> str | None:
    """``optax`` -> ``optim``, ``optax.X.Y`` -> ``optim.X.Y``; None for names not optax's
    public modules (optax's private ``optax._src`` stays optax's own)."""
    if optax_name == "optax":
        return "optim"
    if optax_name.startswith("optax.") and not optax_name.startswith("optax._src"):
        return "optim" + optax_name[len("optax") :]
    return None


class OptaxAsOptim(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """An import hook that answers ``import optax...`` with optim's module of the same name."""

    def find_spec(self, fullname, path=None, target=None):
        name = _optim_name(fullname)
        if name is None:
            return None
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # optim.X exists but failed to import something else
                raise
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: optim, standing in for optax, has no {name!r}",
                name=fullname,
            ) from None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        # The existing optim module itself, so that optax.X is optim.X (one set of classes).
        return sys.modules[_optim_name(spec.name)]

    def exec_module(self, module):
        pass  # already executed when optim imported it


# Libraries' modules that import optax at their top: imported with optax before the switch.
LIBRARIES_USING_OPTAX = ("flax.training.train_state", "flax.nnx")


def use_optim_as_optax(*, everywhere: bool = False) -> None:
    """From now on, ``import optax`` (and ``optax.X``) in this process gives optim; unless
    ``everywhere``, the installed ``LIBRARIES_USING_OPTAX`` keep optax (imported first)."""
    if not everywhere:
        for name in LIBRARIES_USING_OPTAX:
            if importlib.util.find_spec(name.split(".")[0]) is not None:
                importlib.import_module(name)
    import optim

    for name in list(sys.modules):
        if _optim_name(name) is not None:
            del sys.modules[name]  # a later import goes through the hook
    sys.meta_path.insert(0, OptaxAsOptim())
    sys.modules["optax"] = optim


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    everywhere = argv[0] == "--everywhere"
    if everywhere:
        argv = argv[1:]
    program = argv[0]
    use_optim_as_optax(everywhere=everywhere)
    sys.argv = list(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
    runpy.run_path(program, run_name="__main__")


if __name__ == "__main__":
    # This file's folder is first on sys.path; the program's folder replaces it in main().
    sys.path.pop(0)
    main(sys.argv[1:])
