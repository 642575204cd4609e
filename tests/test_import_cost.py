"""`import optim` and `import models` load no heavy optional library until it is used.

orbax (with tensorstore), matplotlib, scikit-learn and tqdm each take from a tenth of a second to
a second to import; checkpoints, the demo's plot, the digits dataset and the progress bar import
them when called. Each check runs in a fresh interpreter, since this process has imported them
all already. Names that ``optim`` imports lazily (PEP 562) must resolve exactly as eager ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("orbax", "tensorstore", "matplotlib", "sklearn", "tqdm")


def run_fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter; it ends by printing one JSON value, returned here."""
    prelude = textwrap.dedent(
        f"""
        import json, sys
        HEAVY = {HEAVY!r}

        def heavy_loaded():
            return sorted({{m.split(".")[0] for m in sys.modules}} & set(HEAVY))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_optim_and_models_load_no_heavy_library():
    result = run_fresh(
        """
        import optim
        after_optim = heavy_loaded()
        import models
        after_models = heavy_loaded()
        print(json.dumps({"optim": after_optim, "models": after_models}))
        """
    )
    assert result == {"optim": [], "models": []}


def test_each_heavy_library_is_imported_by_what_uses_it(tmp_path):
    result = run_fresh(
        f"""
        import types
        import numpy as np
        import jax.numpy as jnp
        import optim, optim.cli.demo, models
        seen = {{"imported": heavy_loaded()}}

        path = optim.checkpoint.save({str(tmp_path / "ckpt")!r}, 1, {{"w": jnp.ones(3)}})
        step, tree, _ = optim.checkpoint.restore({str(tmp_path / "ckpt")!r}, {{"w": jnp.zeros(3)}})
        assert step == 1 and np.array_equal(tree["w"], np.ones(3))
        seen["checkpoint"] = heavy_loaded()

        models.datasets.digits()
        seen["digits"] = heavy_loaded()

        run = optim.cli.demo.Run(label="sgd", params=None, losses=np.ones(3), seconds=0.0)
        problem = types.SimpleNamespace(name="linear", optimum=None)
        optim.cli.demo.plot(problem, [run], {str(tmp_path / "plot.png")!r})
        seen["plot"] = heavy_loaded()

        optim.train._progress.progress_bar(total=2, start=0).close()
        seen["progress"] = heavy_loaded()
        print(json.dumps(seen))
        """
    )
    assert result["imported"] == []
    assert {"orbax", "tensorstore"} <= set(result["checkpoint"])
    assert "sklearn" not in result["checkpoint"]
    assert "sklearn" in result["digits"]
    assert "matplotlib" in result["plot"]
    assert result["progress"] == sorted(HEAVY)
    assert (tmp_path / "plot.png").stat().st_size > 0


def test_lazy_names_resolve_like_eager_ones():
    result = run_fresh(
        """
        import importlib, types
        import optim

        loaded = [n for n in optim._LAZY_SUBMODULES if f"optim.{n}" in sys.modules]
        from optim import microbatch, second_order  # from-imports resolve too

        lazy = optim._LAZY_SUBMODULES | set(optim._LAZY_NAMES)
        checks = {
            "not_loaded_by_import": loaded == [],
            "all_in_dir": set(optim.__all__) <= set(dir(optim)),
            "lazy_in_all": set(lazy) <= set(optim.__all__),
            "all_resolve": all(hasattr(optim, n) for n in optim.__all__),
            "submodules": all(
                getattr(optim, n) is importlib.import_module(f"optim.{n}")
                for n in optim._LAZY_SUBMODULES
            ),
            "names": all(
                getattr(optim, n) is getattr(importlib.import_module(f"optim.{m}"), n)
                for n, m in optim._LAZY_NAMES.items()
            ),
            "microbatch": microbatch is optim.microbatching.microbatch,
            "second_order": isinstance(second_order, types.ModuleType),
            "quantized_module": isinstance(optim.quantized, types.ModuleType),
        }
        try:
            optim.no_such_name
        except AttributeError as e:
            checks["missing"] = str(e) == "module 'optim' has no attribute 'no_such_name'"
        print(json.dumps(checks))
        """
    )
    assert all(result.values()), result


@pytest.mark.parametrize("submodule", ["quantized", "microbatching"])
def test_importing_a_lazy_submodule_first_keeps_its_names(submodule):
    # `import optim.quantized` before any attribute access binds the module, and the names
    # it defines still resolve from optim's top level.
    result = run_fresh(
        f"""
        import optim.{submodule}
        import optim
        names = [n for n, m in optim._LAZY_NAMES.items() if m == {submodule!r}]
        print(json.dumps(all(getattr(optim, n) is getattr(optim.{submodule}, n) for n in names)))
        """
    )
    assert result is True
