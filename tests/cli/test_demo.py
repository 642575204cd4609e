"""``python -m optim``: the GD / SGD / Adam comparison on independent copies."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import numpy as np
import pytest

import optim
from optim.cli import demo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_main(*argv: str) -> tuple[list[demo.Run], str]:
    """``demo.main(argv)``'s runs and printed output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runs = demo.main(list(argv))
    return runs, out.getvalue()


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default experiment (linreg, 1000 steps), run once for the tests below."""
    path = tmp_path_factory.mktemp("demo") / "plot.png"
    runs, output = run_main("--output", str(path))
    return runs, output, path


def test_default_table(default_run):
    runs, output, _ = default_run
    lines = output.splitlines()
    assert lines[0].startswith("linreg: ") and "1000 steps, seed 0" in lines[0]
    assert lines[1].startswith("closed-form least-squares optimum L* = ")
    for title in [
        "optimizer",
        "final train loss",
        "gap to L*",
        "rel. gap",
        "steps to 1% of L*",
        "fit ms (compile excluded)",
    ]:
        assert title in lines[2]
    labels = [line.split()[0] for line in lines[3:6]]
    assert labels == ["gd:lr=0.5", "sgd:lr=0.1", "adam:lr=0.05"] == [r.label for r in runs]
    assert lines[6].startswith("Note: ") and "StochasticGradientDescentOptimizer" in output
    assert lines[-1] == f"plot saved to {default_run[2]}"


def test_default_runs_reach_the_one_percent_band(default_run):
    runs, _, _ = default_run
    optimum = demo.make_problem("linreg", seed=0).optimum
    for run in runs:
        assert len(run.losses) == 1001
        assert demo.steps_to_reach(run.losses, 1.01 * optimum) is not None, run.label
    gd, _, adam = runs
    for run in (gd, adam):
        assert run.losses[-1] <= 1.01 * optimum, run.label


def test_runs_are_independent(default_run):
    """Each curve is that of its optimizer alone: no weights shared between the three runs."""
    runs, _, _ = default_run
    problem = demo.make_problem("linreg", seed=0)
    for run, optimizer in [(runs[0], optim.sgd(0.5)), (runs[2], optim.adam(0.05))]:
        alone = optim.fit(problem.loss_fn, problem.params, optimizer, problem.data, steps=1000)
        np.testing.assert_allclose(run.losses[:-1], alone.losses, rtol=1e-5, err_msg=run.label)


def test_plot_is_a_png(default_run):
    _, _, path = default_run
    assert path.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("problem", ["logreg", "mlp"])
def test_classification_reports_test_accuracy(problem):
    runs, output = run_main("--problem", problem, "--steps", "20", "--no-plot")
    header = output.splitlines()[1]
    assert "test accuracy" in header and "L*" not in output and "plot saved" not in output
    assert [r.label.split(":")[0] for r in runs] == ["gd", "sgd", "adam"]
    assert all(r.losses[-1] < r.losses[0] for r in runs)


def test_parse_optimizer():
    gd = demo.parse_optimizer("gd:lr=0.5")
    assert gd.batch_size is None and gd.label == "gd:lr=0.5"
    assert demo.parse_optimizer("sgd:lr=0.1").batch_size == 1
    momentum = demo.parse_optimizer("sgd:lr=0.1,momentum=0.9,nesterov=true,batch=8")
    assert momentum.batch_size == 8
    adamw = demo.parse_optimizer("adamw:lr=1e-3,weight_decay=0.1")
    assert adamw.batch_size is None
    assert isinstance(demo.parse_optimizer("rmsprop:learning_rate=0.01").optimizer, optim.Chain)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("adamzz:lr=0.1", "unknown optimizer 'adamzz'"),
        ("adam:lr=0.1,beta1=0.9", "unknown key 'beta1'"),
        ("gd:lr=0.1,batch=4", "unknown key 'batch'"),
        ("sgd:lr=fast", "bad value 'fast'"),
        ("sgd:lr=0.1,batch=0", "batch must be a positive int"),
        ("adam:b1=2", "b1 must be in [0.0, 1.0)"),
    ],
)
def test_bad_optimizer_token_is_an_argparse_error(token, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--optimizers", "gd:lr=0.5", token, "--no-plot"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument --optimizers" in error and repr(token) in error and message in error


def test_module_help():
    result = subprocess.run(
        [sys.executable, "-m", "optim", "--help"], capture_output=True, text=True, check=True
    )
    for option in ["--problem", "--optimizers", "--steps", "--seed", "--output", "--no-plot"]:
        assert option in result.stdout
    assert "linreg: gd:lr=0.5 sgd:lr=0.1 adam:lr=0.05" in " ".join(result.stdout.split())


def test_module_entry_point(tmp_path):
    path = tmp_path / "curves.png"
    result = subprocess.run(
        [sys.executable, "-m", "optim", "--steps", "50", "--output", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert "50 steps" in result.stdout and "adam:lr=0.05" in result.stdout
    assert path.read_bytes().startswith(PNG_SIGNATURE)
