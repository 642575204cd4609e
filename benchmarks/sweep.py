"""A 32-point learning-rate sweep: one vmapped ``optim.sweep`` against 32 sequential ``optim.fit``.

Two problems: the linear regression of ``python -m optim`` (``LinearRegression`` on
``linear_regression_uniform``, gradient descent, 1000 full-batch steps) and a small MLP on
scikit-learn's digits (``MLP([64, 32, 10])``, Adam, 300 steps of minibatches of 64). Both ways
train the same 32 runs with the same minibatches; the script reports how far their losses
differ. The largest learning rate of the regression diverges (gradient descent there is stable
below 2 / lambda_max, about 0.79), as some point of a real sweep often does.

Timing: each way is called once to compile (``fit`` compiles once and reuses its program for
every learning rate; ``sweep`` compiles one program for all 32), then timed ``--repeats`` times
with the results ready on the device; the table gives the medians and the speedup of the
medians. "compile" is the first call's time minus the median, so it includes tracing.

    python benchmarks/sweep.py [--repeats 5] [--output benchmarks/results/sweep.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import models
import optim
from optim.train import sweep

POINTS = 32
KEY = jax.random.PRNGKey(0)


def regression_loss(model: models.LinearRegression, batch: models.datasets.Dataset) -> jax.Array:
    return models.losses.mean_squared_error(model(batch.x), batch.y)


def classification_loss(model: models.MLP, batch: models.datasets.Dataset) -> jax.Array:
    logits = model(batch.x)
    return models.losses.softmax_cross_entropy_with_integer_labels(logits, batch.y).mean()


def problems() -> dict[str, dict[str, Any]]:
    """Each problem's ``fit`` arguments and its 32 learning rates."""
    data_key, init_key = jax.random.split(KEY)
    return {
        "linear regression (GD, 1000 steps)": {
            "loss_fn": regression_loss,
            "params": models.LinearRegression.init(init_key, 1),
            "make_optimizer": optim.sgd,
            "data": models.datasets.linear_regression_uniform(data_key),
            "learning_rates": np.geomspace(1e-3, 1.0, POINTS),
            "fit": {"steps": 1000},
        },
        "MLP [64, 32, 10] on digits (Adam, 300 steps of 64)": {
            "loss_fn": classification_loss,
            "params": models.MLP.init(init_key, [64, 32, 10]),
            "make_optimizer": optim.adam,
            "data": models.datasets.digits().train,
            "learning_rates": np.geomspace(1e-4, 1e-1, POINTS),
            "fit": {"steps": 300, "batch_size": 64, "key": data_key},
        },
    }


def time_calls(run: Callable[[], jax.Array], repeats: int) -> tuple[float, float, jax.Array]:
    """(first call's seconds, median of ``repeats`` later calls, the losses) of ``run``."""

    def timed() -> tuple[float, jax.Array]:
        start = time.perf_counter()
        losses = jax.block_until_ready(run())
        return time.perf_counter() - start, losses

    first, losses = timed()
    median = statistics.median(timed()[0] for _ in range(repeats))
    return first, median, losses


def benchmark(problem: dict[str, Any], repeats: int) -> dict[str, float]:
    """Time both ways of training the problem's 32 runs; the numbers for one row."""
    loss_fn, params, data = problem["loss_fn"], problem["params"], problem["data"]
    make_optimizer, fit_kwargs = problem["make_optimizer"], problem["fit"]
    learning_rates = problem["learning_rates"].tolist()

    def swept() -> jax.Array:
        grid = {"learning_rate": learning_rates}
        return sweep(loss_fn, params, make_optimizer, data, grid=grid, **fit_kwargs).losses

    def sequential() -> jax.Array:
        return jnp.stack(
            [
                optim.fit(loss_fn, params, make_optimizer(lr), data, **fit_kwargs).losses
                for lr in learning_rates
            ]
        )

    sweep_first, sweep_median, sweep_losses = time_calls(swept, repeats)
    fit_first, fit_median, fit_losses = time_calls(sequential, repeats)
    return {
        "sweep_s": sweep_median,
        "sweep_compile_s": sweep_first - sweep_median,
        "sequential_s": fit_median,
        "sequential_compile_s": fit_first - fit_median,
        "speedup": fit_median / sweep_median,
        **compare(np.asarray(sweep_losses), np.asarray(fit_losses)),
    }


def compare(swept: np.ndarray, sequential: np.ndarray) -> dict[str, float]:
    """How far the sweep's losses are from the sequential runs', and how many runs diverged.

    The deviation is max |difference| / max |loss| over the losses finite in both, for the
    first 10 steps and for all steps. Both ways compute the same steps, but rounding differs
    (a batched matrix product sums in another order; a GPU may use TF32), and training
    amplifies it: Adam's first steps are nearly sign(g), which flips for entries of g near
    zero, and a minibatch MLP run is chaotic, so later losses drift apart.
    """
    finite = np.isfinite(swept) & np.isfinite(sequential)

    def deviation(steps: slice) -> float:
        both = finite[:, steps]
        reference = sequential[:, steps][both]
        difference = np.abs(swept[:, steps][both] - reference)
        return float(np.max(difference) / np.max(np.abs(reference)))

    return {
        "loss_deviation_first_10_steps": deviation(slice(0, 10)),
        "loss_deviation": deviation(slice(None)),
        "diverged_sweep": int(np.sum(~np.isfinite(swept[:, -1]))),
        "diverged_sequential": int(np.sum(~np.isfinite(sequential[:, -1]))),
    }


def machine() -> dict[str, Any]:
    device = jax.devices()[0]
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)),  # the ones this process may run on
        "load_average_1min": round(os.getloadavg()[0], 2),  # other work competing for them
        "jax": jax.__version__,
        "device": f"{device.platform} ({device.device_kind})",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).parent / "results" / "sweep.json",
        help="where to write the JSON results",
    )
    args = parser.parse_args(argv)

    info = machine()
    print(", ".join(f"{k}: {v}" for k, v in info.items()))
    print(f"{POINTS} learning rates, medians of {args.repeats} calls\n")
    header = f"{'problem':<52} {'sweep':>9} {'32 x fit':>9} {'speedup':>8} {'compile':>16}"
    print(header)
    print("-" * len(header))
    results = {}
    for name, problem in problems().items():
        row = results[name] = benchmark(problem, args.repeats)
        compile_times = f"{row['sweep_compile_s']:.2f} / {row['sequential_compile_s']:.2f} s"
        print(
            f"{name:<52} {row['sweep_s'] * 1e3:>7.1f}ms {row['sequential_s'] * 1e3:>7.1f}ms "
            f"{row['speedup']:>7.1f}x {compile_times:>16}"
        )
    print("\ncompile: first call minus median (sweep / sequential fit)")
    print("sweep vs fit, max |loss difference| / max |loss| (first 10 steps, all steps):")
    for name, row in results.items():
        print(
            f"  {name}: {row['loss_deviation_first_10_steps']:.1e}, {row['loss_deviation']:.1e}; "
            f"diverged runs: {row['diverged_sweep']} (sweep), {row['diverged_sequential']} (fit)"
        )
    report = {"machine": info, "points": POINTS, "repeats": args.repeats, "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
