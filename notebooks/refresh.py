"""Executes the notebooks in place, so that they are stored with their outputs and plots.

    python notebooks/refresh.py                      # every notebook, in order
    python notebooks/refresh.py 01 03_classification # those whose names start so

Each notebook runs top to bottom in a fresh kernel of this interpreter, from this folder (so
that a file it writes lands next to it), as the full run: ``OPTIM_QUICK``, with which the test
suite asks for a shortened run, is removed from the kernel's environment. The outputs are
written back into the ``.ipynb`` only when every cell succeeded; a failing notebook keeps its
previous outputs, and the script names it and exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

FOLDER = Path(__file__).resolve().parent


def notebooks(prefixes: list[str]) -> list[Path]:
    """The notebooks of this folder whose names start with one of ``prefixes`` (all without)."""
    every = sorted(FOLDER.glob("*.ipynb"))
    if not prefixes:
        return every
    chosen = [path for path in every if any(path.name.startswith(p) for p in prefixes)]
    unknown = [p for p in prefixes if not any(path.name.startswith(p) for path in every)]
    if unknown:
        names = ", ".join(path.name for path in every)
        raise SystemExit(f"no notebook starts with {', '.join(unknown)}; there are: {names}")
    return chosen


def refresh(path: Path, timeout: int) -> float:
    """Executes ``path`` and writes its outputs into it; returns the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},
        # No per-cell timestamps: a refresh that changes no result changes no line of the file.
        record_timing=False,
    ).execute()
    seconds = time.perf_counter() - start
    nbformat.write(notebook, path)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="name prefixes, e.g. 01 05; default: all")
    parser.add_argument(
        "--timeout", type=int, default=3600, help="seconds a single cell may run (default 3600)"
    )
    args = parser.parse_args()
    # The kernel inherits this environment: the stored outputs come from the full run.
    os.environ.pop("OPTIM_QUICK", None)
    failed = []
    for path in notebooks(args.prefixes):
        print(f"{path.name} ...", end=" ", flush=True)
        try:
            seconds = refresh(path, args.timeout)
        except CellExecutionError as error:
            print(f"failed, outputs left as they were:\n{error}", flush=True)
            failed.append(path.name)
            continue
        print(f"{seconds:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
