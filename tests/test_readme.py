"""The README runs as written: its Python blocks, in order, as one script.

A block that cannot run on one machine (the several-hosts example) is preceded by the line
``<!-- not run -->`` and says in its text that it is a sketch. Shell and output blocks are not
Python and are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
NOT_RUN = "<!-- not run -->"
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """Every ```python block as (line number of its first code line, code, whether it is run)."""
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1) != "python":
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        line = text.count("\n", 0, match.start(2)) + 1
        blocks.append((line, match.group(2), before != NOT_RUN))
    return blocks


def readme_script(text: str) -> str:
    """The blocks that run, each headed by the README line it starts on (for tracebacks)."""
    return "\n".join(
        f"# README.md, line {line}\n{code}" for line, code, run in python_blocks(text) if run
    )


def run_python(code: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run ``code`` as the script ``cwd/script.py``, from ``cwd``, in a fresh interpreter."""
    (cwd / "script.py").write_text(code)
    env = {**os.environ, "MPLBACKEND": "Agg", "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)  # one CPU device, as on a reader's machine
    return subprocess.run(
        [sys.executable, "script.py"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# Around the README's blocks: record every optim.sweep they run, then check that a sweep over
# several seeds trained different runs (identical seeds would be a misleading example).
RECORD_SWEEPS = """\
import optim

SWEEPS = []
_sweep = optim.sweep


def _recording_sweep(*args, **kwargs):
    SWEEPS.append(_sweep(*args, **kwargs))
    return SWEEPS[-1]


optim.sweep = _recording_sweep
"""
CHECK_SWEEPS = """
import numpy as np

for sweep_result in SWEEPS:
    losses = np.asarray(sweep_result.losses)
    if losses.ndim == 3:  # (points, seeds, steps)
        spread = np.ptp(losses, axis=1).max(axis=-1)
        assert (spread > 0).all(), f"seeds trained identical runs: spread {spread}"
print(f"checked {len(SWEEPS)} sweep(s)")
"""


def test_readme_python_blocks_run_in_order_as_one_script(tmp_path):
    script = "\n".join([RECORD_SWEEPS, readme_script(README.read_text()), CHECK_SWEEPS])
    # A fresh directory: what the README writes (checkpoints) lands there.
    completed = run_python(script, tmp_path, timeout=600)
    assert completed.returncode == 0, (
        f"the README's Python blocks failed (script: {tmp_path / 'script.py'}):\n"
        f"{completed.stderr[-4000:]}"
    )
    assert re.search(r"^checked [1-9]\d* sweep", completed.stdout, re.MULTILINE), completed.stdout


def test_blocks_left_out_are_said_to_be_sketches():
    text = README.read_text()
    left_out = [line for line, _, run in python_blocks(text) if not run]
    lines = text.splitlines()
    for line in left_out:
        # The sentence before the block (up to the preceding paragraph) says it is not run.
        preceding = " ".join(lines[max(0, line - 8) : line - 1])
        assert "sketch" in preceding and "not run" in preceding, (
            f"README.md line {line}: a block left out of the test must say it is a sketch "
            "that is not run"
        )


def test_the_block_parser_sees_python_blocks_only():
    text = "\n".join(
        [
            "```bash",
            "pip install .",
            "```",
            "```python",
            "a = 1",
            "```",
            NOT_RUN,
            "```python",
            "b = undefined",
            "```",
            "```",
            "plain text",
            "```",
        ]
    )
    assert python_blocks(text) == [(5, "a = 1\n", True), (9, "b = undefined\n", False)]
    assert readme_script(text) == "# README.md, line 5\na = 1\n"


# The README's "A project with a `models` module of its own", both layouts.


def test_a_models_module_of_your_own_comes_first_and_optim_still_imports(tmp_path):
    (tmp_path / "models.py").write_text("OWNER = 'the user'\n")
    completed = run_python(
        "import jax.numpy as jnp, models, optim\n"
        "assert models.OWNER == 'the user', models.__file__\n"
        "tx = optim.adam(0.1)\n"
        "updates, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))\n"
        "assert updates.shape == (2,)\n",
        tmp_path,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]


def test_a_models_module_inside_your_package_lives_next_to_ours(tmp_path):
    package = tmp_path / "myproject"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text("OWNER = 'the user'\n")
    (package / "train.py").write_text(
        "import models\n"
        "from myproject import models as my_models\n"
        "assert my_models.OWNER == 'the user'\n"
        "assert models.MLP.__module__ == 'models.mlp', models.__file__\n"
    )
    completed = run_python("import runpy\nrunpy.run_module('myproject.train')\n", tmp_path, 300)
    assert completed.returncode == 0, completed.stderr[-4000:]
