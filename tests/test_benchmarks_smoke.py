"""The benchmark scripts run end to end at a tiny size, print their tables and write valid JSON.

Each script runs in a subprocess as a user would run it (from the repository root); results
go to a temporary directory, never over the recorded ones in benchmarks/results/.
``benchmarks/gpu.sh`` runs on the CPU here (it says so), which is how it is tested before the
one short GPU run. ``sweep.py`` has no size option (32 runs of two problems), so it is marked
slow, as is ``matrix_optimizers.py`` with its transformer part (compiling a sweep, a fit and a
step per optimizer takes 35 s even at a tiny size); its least-squares part runs by default.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
TINY = [
    "--params",
    "2e4",
    "--leaves",
    "1,4",
    "--repeats",
    "2",
    "--scan-steps",
    "2",
    "--fit-steps",
    "2",
    "--sample-s",
    "0.001",
    "--copy-bytes",
    "4e6",
]


def run(args: list[str], cwd: Path = ROOT, timeout: float = 120) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def load_step_module():
    path = BENCHMARKS / "optimizer_step.py"
    spec = importlib.util.spec_from_file_location("optimizer_step", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_optimizer_step(tmp_path):
    output = tmp_path / "step.json"
    stdout = run(
        [
            sys.executable,
            "benchmarks/optimizer_step.py",
            *TINY,
            "--optimizers",
            "adam",
            "--variants",
            "optax,optim,optim.flatten,fit.flat",
            "--output",
            str(output),
        ]
    )
    for title in (
        "(a) standalone jitted step",
        "(b) inside lax.scan",
        "(c) compile",
        "(d) kernels",
        "(e) optimizer state",
        "optim.fit on",
    ):
        assert title in stdout
    results = json.loads(output.read_text())
    cells = {(r["leaves"], r["variant"]): r for r in results["rows"]}
    assert set(cells) == {
        (n, v) for n in (1, 4) for v in ("optax", "optim", "optim.flatten", "fit.flat")
    }
    for n in (1, 4):
        for variant in ("optax", "optim", "optim.flatten"):
            row = cells[n, variant]
            assert row["step_ms"] > 0 and row["scan_ms"] > 0 and row["compile_s"] > 0
            assert row["state_bytes_per_param"] == pytest.approx(8.0, abs=0.01)  # mu, nu
            assert row["aliased_outputs"] == row["donated_inputs"]  # everything donated
            assert row["bytes_moved_per_step"] == 28 * row["params"] + 8  # + the count's 2 x 4
        assert cells[n, "optim"]["fusions"] == cells[n, "optax"]["fusions"]
    assert cells[4, "optax"]["fusions"] > cells[1, "optax"]["fusions"]  # kernels per leaf
    assert all("fit_step_ms" in cells[n, "fit.flat"] for n in (1, 4))
    assert results["machine"]["cpu_count"] >= 1 and results["copy_bandwidth_GBps"] > 0


def test_optimizer_step_skips_what_does_not_apply(tmp_path):
    """adafactor is not elementwise: no flat variant, said in a note (or absent: skipped)."""
    output = tmp_path / "adafactor.json"
    stdout = run(
        [
            sys.executable,
            "benchmarks/optimizer_step.py",
            *TINY,
            "--leaves",
            "1",
            "--optimizers",
            "adafactor",
            "--variants",
            "optim.flatten,fit.flat",
            "--fit-optimizers",
            "adafactor",
            "--output",
            str(output),
        ]
    )
    assert "note: adafactor" in stdout
    assert json.loads(output.read_text())["rows"] == []


def test_gpu_script_on_cpu(tmp_path):
    stdout = run(
        [
            "bash",
            "benchmarks/gpu.sh",
            "--params",
            "2e4",
            "--big-params",
            "1e5",
            "--leaves",
            "1,4",
            "--repeats",
            "2",
            "--peak",
            "1e11",
            "--out",
            str(tmp_path),
            "--",
            "--copy-bytes",
            "4e6",
            "--sample-s",
            "0.001",
            "--fit-steps",
            "2",
        ]
    )
    assert "== 1." in stdout and "== 2." in stdout and "gpu.sh done" in stdout
    step = json.loads((tmp_path / "gpu_step.json").read_text())
    assert {r["variant"] for r in step["rows"]} == {
        "optax",
        "optim.flatten",
        "fit.flat",
        "fit.tree",
    }
    hbm = json.loads((tmp_path / "gpu_hbm.json").read_text())
    assert hbm["settings"]["peak_bandwidth"] == 1e11
    for row in hbm["rows"]:
        assert (
            0
            < row["step_fraction_of_peak"]
            == pytest.approx(row["bytes_moved_per_step"] / (row["step_ms"] * 1e-3) / 1e11)
        )
    assert "% of peak" in stdout


def test_fit_vs_loop(tmp_path):
    # The script writes next to itself: run a copy, so the recorded results stay untouched.
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(BENCHMARKS / "fit_vs_loop.py", tmp_path / "benchmarks")
    stdout = run([sys.executable, "benchmarks/fit_vs_loop.py", "--repeats", "1"], cwd=tmp_path)
    assert "python loop / fit" in stdout
    results = json.loads((tmp_path / "benchmarks/results/fit_vs_loop.json").read_text())
    assert len(results["timings"]) == 8 and len(results["ratios"]) == 2


@pytest.mark.slow
def test_sweep(tmp_path):
    output = tmp_path / "sweep.json"
    stdout = run(
        [sys.executable, "benchmarks/sweep.py", "--repeats", "1", "--output", str(output)],
        timeout=600,
    )
    assert "speedup" in stdout
    assert len(json.loads(output.read_text())["results"]) == 2


def test_kernel_count_follows_control_flow():
    """count_kernels: fusions of ENTRY and of a while body; more leaves, more kernels."""
    count = load_step_module().count_kernels

    def kernels(fn, *args):
        return count(jax.jit(fn).lower(*args).compile().as_text())

    x = jnp.arange(64.0)
    plain = kernels(lambda x: jnp.sin(x) * 2 + 1, x)
    looped = kernels(lambda x: jax.lax.fori_loop(0, 3, lambda i, y: jnp.sin(y) * 2 + i, x), x)
    assert plain["fusions"] >= 1 and looped["kernels"] >= plain["kernels"]
    tx = optax.adam(1e-3)

    def step(p):
        return tx.update(p, tx.init(p), p)[0]

    one, four = kernels(step, [x]), kernels(step, [x, x + 1, x + 2, x + 3])
    assert four["fusions"] > one["fusions"]


MATRIX_LEAST_SQUARES = [
    *("--lsq-optimizers", "adamw,shampoo", "--dims", "8,4", "--lsq-steps", "20"),
    *("--lsq-rates", "0.01,0.1", "--draws", "1", "--target", "0.5"),
]


def test_matrix_optimizers_least_squares(tmp_path):
    """Part (a) at a tiny size, and --report prints its table again from the JSON."""
    output = tmp_path / "matrix.json"
    script = "benchmarks/matrix_optimizers.py"
    stdout = run(
        [sys.executable, script, "--part", "lsq", *MATRIX_LEAST_SQUARES, "--output", str(output)]
    )
    assert "(a) least squares" in stdout and "(b)" not in stdout
    results = json.loads(output.read_text())
    rows = results["least_squares"]["rows"]
    assert [r["optimizer"] for r in rows] == ["adamw", "shampoo"]
    assert all(r["best_lr"] in (0.01, 0.1) and r["final_loss"] > 0 for r in rows)
    report = run([sys.executable, script, "--report", str(output)])
    assert report.split("\n(a)")[1] == stdout.split("\n(a)")[1].split("written to")[0]


@pytest.mark.slow  # compiles a sweep, a fit and a step of a transformer per optimizer: 35 s
def test_matrix_optimizers(tmp_path):
    """Both tables at a tiny size: AdamW, and Muon on the blocks' matrices (AdamW on the rest)."""
    output = tmp_path / "matrix.json"
    tiny = [
        *MATRIX_LEAST_SQUARES,
        *("--optimizers", "adamw,muon", "--layers", "1", "--d-model", "16", "--heads", "2"),
        *("--context", "8", "--batch", "2", "--steps", "4", "--grid-points", "2", "--runs", "2"),
        *("--eval-every", "2", "--valid-windows", "4", "--repeats", "2"),
        *("--steps-per-sample", "1", "--output", str(output)),
    ]
    stdout = run([sys.executable, "benchmarks/matrix_optimizers.py", *tiny], timeout=300)
    assert "(a) least squares" in stdout and "(b) models.Transformer" in stdout
    rows = json.loads(output.read_text())["transformer"]["rows"]
    assert [r["optimizer"] for r in rows] == ["adamw", "muon"]
    for row in rows:
        assert len(row["final_valid"]) == 2 and row["step_ms"] > 0
        assert row["best_lr"] in row["grid"]
    assert rows[0]["step_ratio_to_adamw"] == 1.0
    assert rows[0]["state_bytes_per_param"] == pytest.approx(8.0, abs=0.01)  # mu, nu
