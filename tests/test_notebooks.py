"""Every notebook in notebooks/ runs top to bottom without an error, and is stored with the
outputs of such a run (``python notebooks/refresh.py`` writes them), so that a reader of the
repository sees its printouts and plots."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
REFRESH = "run `python notebooks/refresh.py {}` and commit the result"

# What a progress bar leaves in a stored notebook: tqdm's text bar ("  0%|    | 0/1000"), its
# rate ("12.3step/s"), the warning it gives without ipywidgets, or a widget of the bar.
PROGRESS_RESIDUE = re.compile(r"\d+%\|| \d+(\.\d+)?(it|step)/s|\?(it|step)/s|TqdmWarning")
WIDGET = "application/vnd.jupyter.widget-view+json"


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


def output_text(output: nbformat.NotebookNode) -> str:
    if output.output_type == "stream":
        return output.text
    return "".join(str(value) for key, value in output.get("data", {}).items() if "text" in key)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_is_stored_with_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    refresh = REFRESH.format(path.name[:2])
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: its code cells were not run once each, top to bottom (execution counts "
        f"{counts}); {refresh}"
    )
    for number, cell in enumerate(code, start=1):
        where = f"{path.name}, code cell {number}"
        kinds = [output.output_type for output in cell.outputs]
        assert "error" not in kinds, f"{where} is stored with an error; {refresh}"
        if "plt.show()" in cell.source:
            assert any("image/png" in output.get("data", {}) for output in cell.outputs), (
                f"{where} draws a plot but is stored without it; {refresh}"
            )
        for output in cell.outputs:
            assert WIDGET not in output.get("data", {}), (
                f"{where} stores a widget (a progress bar?), which a reader sees frozen"
            )
            residue = PROGRESS_RESIDUE.search(output_text(output))
            assert residue is None, (
                f"{where} stores a progress bar ({residue.group()!r} in its output), which a "
                "reader sees frozen: pass progress=False to fit"
            )
