"""benchmarks/lm.py runs end to end at a tiny size, prints its tables and writes its JSON.

The script runs in a subprocess from the repository root, as a user runs it; its JSON goes to a
temporary directory, never over benchmarks/results/. ``test_gpu_path_on_the_cpu`` takes the
path of the one GPU run (``--device gpu`` with every size overridden: bfloat16 compute, peak
memory measured in a fresh process per kind that loads the main process's compiled programs
from its cache), with one kind: three programs to compile. ``test_cpu_path`` takes the CPU's
(peak memory measured in the main process) with three kinds and optax's ratios; seven programs
to compile, which on XLA:CPU take seconds each however small the model: marked slow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--layers",
    "1",
    "--d-model",
    "32",
    "--heads",
    "2",
    "--context",
    "16",
    "--batch",
    "2",
    "--batches",
    "2",
    "--repeats",
    "2",
    "--steps-per-sample",
    "1",
    "--opt-sample-s",
    "0.001",
]
TOKENS_PER_STEP = 2 * 16
TRAIN_STEPS = 3 + 2 * 1  # three warm-up steps, then --repeats x --steps-per-sample


def run_lm(tmp_path: Path, *args: str) -> tuple[str, dict]:
    output = tmp_path / "lm.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "benchmarks/lm.py", *TINY, *args, "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"lm.py {args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout, json.loads(output.read_text())


def check_run(stdout: str, results: dict, kinds: list[str]) -> dict[str, dict]:
    """What every run must get right; returns the rows by kind."""
    for title in ("machine:", "(a) training step", "(b) optimizer state", "measured peak:"):
        assert title in stdout
    assert results["complete"] is True
    assert results["machine"]["load_average"] and results["load_average_end"]
    assert results["model"]["tokens_per_step"] == TOKENS_PER_STEP
    assert results["gradient_ms"] > 0 and len(results["gradient_ms_all"]) == 2
    rows = {row["kind"]: row for row in results["rows"]}
    assert list(rows) == kinds
    params = results["model"]["params"]
    first_losses = []
    for kind, row in rows.items():
        assert f"\n{kind} " in stdout  # a row of each table
        assert len(row["step_ms_all"]) == len(row["optimizer_step_ms_all"]) == 2
        assert row["step_ms"] > 0 and row["optimizer_step_ms"] > 0
        assert row["compile_step_s"] > 0 and row["compile_optimizer_step_s"] > 0
        assert row["tokens_per_s"] == pytest.approx(TOKENS_PER_STEP / (row["step_ms"] * 1e-3))
        assert row["optimizer_share"] == pytest.approx(
            statistics.median(  # sample by sample
                o / s for o, s in zip(row["optimizer_step_ms_all"], row["step_ms_all"], strict=True)
            )
        )
        assert row["state_bytes_per_param"] == pytest.approx(row["state_bytes"] / params)
        assert row["train_steps"] == TRAIN_STEPS
        assert row["loss_last"] < row["loss_first"]  # it trains
        first_losses.append(row["loss_first"])
        # The compiled step's arguments: the parameters, the state and one batch.
        batch_bytes = 2 * 4 * TOKENS_PER_STEP  # int32 inputs and targets
        held = results["model"]["param_bytes"] + row["state_bytes"]
        assert row["xla_step"]["argument_bytes"] == held + batch_bytes
        assert row["xla_step"]["total_bytes"] >= held + batch_bytes
        # On the CPU the peak is what the process holds (every batch) plus the growth of its
        # resident memory: small at this size, and even slightly below zero (Linux sums its
        # per-CPU counts of resident pages lazily).
        assert row["live_bytes"] == held + 2 * batch_bytes
        assert row["peak_bytes"] == row["live_bytes"] + row["rss_growth_bytes"]
        assert abs(row["rss_growth_bytes"]) < 100e6
    # Every kind's first step starts from the same parameters on the same batch; the programs
    # differ only after the loss, so up to float32 rounding of differently fused programs.
    assert first_losses == pytest.approx([first_losses[0]] * len(first_losses), rel=1e-6)
    return rows


def test_gpu_path_on_the_cpu(tmp_path):
    # No time budget (the GPU's is 170 s): a slow test machine must not skip the peak.
    stdout, results = run_lm(
        tmp_path, "--device", "gpu", "--kinds", "adamw.int8", "--peak", "process", "--budget-s", "0"
    )
    rows = check_run(stdout, results, ["adamw.int8"])
    assert results["settings"]["precision"] == "params=float32,compute=bfloat16,output=float32"
    assert any("JAX found no GPU" in note for note in results["notes"])
    assert "in a fresh process per kind" in stdout
    # 8-bit codes, but leaves under 4,096 elements keep float32 moments (min_size)
    assert 2.0 < rows["adamw.int8"]["state_bytes_per_param"] < 4.0
    # The peak-memory process loaded the programs from the main process's compilation cache
    # (the GPU run's time budget counts on it): far faster than compiling them.
    assert rows["adamw.int8"]["peak_process_load_s"] < rows["adamw.int8"]["compile_step_s"]


@pytest.mark.slow
def test_cpu_path(tmp_path):
    # d_model 128: Adafactor factors matrices whose two largest dimensions are 128 or more.
    # A budget of 1 s is spent by the compiles: 3 samples asked for, the 2 at least are taken.
    stdout, results = run_lm(
        tmp_path,
        "--kinds",
        "optax,adamw.bf16,adafactor",
        "--d-model",
        "128",
        "--repeats",
        "3",
        "--budget-s",
        "1",
    )
    rows = check_run(stdout, results, ["optax", "adamw.bf16", "adafactor"])
    assert results["settings"]["precision"] == "params=float32,compute=float32,output=float32"
    assert "in the main process" in stdout
    assert results["notes"] == [
        "optax, adamw.bf16, adafactor: 2 samples instead of 3, to stay within --budget-s 1"
    ]
    params = results["model"]["params"]
    assert rows["optax"]["state_bytes"] == 8 * params + 4  # float32 mu, nu; an int32 count
    assert rows["adamw.bf16"]["state_bytes"] == 4 * params + 4  # bfloat16 mu, nu
    assert rows["adafactor"]["state_bytes_per_param"] < 0.5  # rows and columns
    assert rows["optax"]["step_over_optax"] == 1.0
    for row in rows.values():
        assert row["step_over_optax"] == pytest.approx(
            statistics.median(
                a / b for a, b in zip(row["step_ms_all"], rows["optax"]["step_ms_all"], strict=True)
            )
        )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--heads", "3", "--d-model", "32"], "--heads (3) must divide --d-model (32)"),
        (["--kinds", "adamw,sgd"], "--kinds: unknown ['sgd']"),
        (["--vocab-size", "100"], "--vocab-size must be at least 256"),
        (["--batch", "0"], "--batch must be at least 1, got 0"),
        (["--precision", "compute=int8"], "--precision: compute_dtype must be a real floating"),
    ],
)
def test_bad_flags_name_the_flag(monkeypatch, capsys, args, message):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # lm.py imports its sibling
    spec = importlib.util.spec_from_file_location("lm", ROOT / "benchmarks" / "lm.py")
    lm = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "lm", lm)  # dataclasses look their module up there
    spec.loader.exec_module(lm)
    with pytest.raises(SystemExit) as exit_info:
        lm.parse_args(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
