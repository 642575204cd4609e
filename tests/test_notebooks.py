"""Every notebook in notebooks/ runs top to bottom without an error."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(path, as_version=4)
    # The kernel inherits this process's environment: OPTIM_QUICK=1 asks notebooks that train
    # for minutes (05, 06) for a shortened run that still executes every cell.
    monkeypatch.setenv("OPTIM_QUICK", "1")
    # Runs in tmp_path so that any file a notebook writes lands there; a failing cell raises
    # CellExecutionError with its source and traceback.
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
