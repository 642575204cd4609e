"""Import time of ``optim`` and ``models`` against ``optax``, after ``import jax``.

Each sample is a fresh interpreter that imports jax (not timed), then times one import:
``optax``; ``optim`` (which imports optax itself, so its time includes optax's); ``models``
after ``optim``. Bytecode is cached first (``compileall`` into a private prefix), as it is for
an installed package, so the times are those a user sees from the second run on. The variants
alternate, ``--repeats`` rounds, and the table gives the median and the minimum (steadier on a
busy machine). Also written as JSON to ``benchmarks/results/import_time.json``.

Run: ``python benchmarks/import_time.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "import_time.json"
VARIANTS = {  # name: (imported first, untimed; the import timed)
    "optax": ("jax, jax.numpy", "optax"),
    "optim": ("jax, jax.numpy", "optim"),
    "models": ("jax, jax.numpy, optim", "models"),
}
TIMER = (
    "import time\nimport {before}\nstart = time.perf_counter()\nimport {timed}\n"
    "print(time.perf_counter() - start)"
)


def sample(before: str, timed: str, env: dict[str, str]) -> float:
    """Seconds one fresh interpreter takes to ``import timed`` after ``import before``."""
    code = TIMER.format(before=before, timed=timed)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def measure(repeats: int) -> dict[str, dict[str, float]]:
    """Median and minimum seconds per variant, variants alternating round by round."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache, "JAX_PLATFORMS": "cpu"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for before, timed in VARIANTS.values():  # the first run writes the bytecode
            sample(before, timed, env)
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(repeats):
            for name, (before, timed) in VARIANTS.items():
                times[name].append(sample(before, timed, env))
    return {
        name: {"median_s": statistics.median(ts), "min_s": min(ts)} for name, ts in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    table = measure(args.repeats)
    print(f"after `import jax`, fresh interpreters, {args.repeats} rounds, load {load:.1f}")
    print(f"{'import':<8} {'median s':>9} {'min s':>7} {'median - optax s':>17}")
    for name, row in table.items():
        over = row["median_s"] - table["optax"]["median_s"] if name == "optim" else float("nan")
        print(f"{name:<8} {row['median_s']:>9.3f} {row['min_s']:>7.3f} {over:>17.3f}")
    RESULTS.write_text(
        json.dumps(
            {
                "repeats": args.repeats,
                "load_at_start": load,
                "python": platform.python_version(),
                "times": table,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
