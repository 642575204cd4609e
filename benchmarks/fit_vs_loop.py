"""``optim.fit`` against the two loops a JAX user writes by hand, on the demo's linear regression.

For gradient descent (``sgd(0.5)`` on the full batch) and Adam (``adam(0.05)``), 1000 steps are
run by

* ``optim.fit``: one ``lax.scan`` compiled by ``fit`` itself;
* a Python loop calling a jitted optax step 1000 times (``block_until_ready`` at the end);
* a hand-written ``lax.scan`` over the same optax step inside one ``jax.jit``, with the
  hyperparameters as Python constants (folded into the program: a new learning rate compiles
  a new program);
* the same scan with the hyperparameters as arguments of the jitted function, as ``fit``
  compiles them (a new learning rate compiles nothing): the like-for-like program.

The variants run alternately, ``--repeats`` times, and the table reports the median (and the
minimum, steadier on a busy machine) of the calls after the first; the first call (tracing and
compiling included) is reported on its own.
All three record the loss at every step, so they do the same work; their final losses are
checked to agree before anything is timed. The table is also written as JSON to
``benchmarks/results/fit_vs_loop.json``.

Run: ``python benchmarks/fit_vs_loop.py [--repeats N]``.
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
import numpy as np
import optax

import models
import optim
from models.datasets import Dataset

STEPS = 1000
RESULTS = Path(__file__).parent / "results" / "fit_vs_loop.json"
# name: (optim's optimizer, optax's constructor, its hyperparameters), the same update rule
OPTIMIZERS = {
    "gd, lr=0.5": (optim.sgd(0.5), optax.sgd, {"learning_rate": 0.5}),
    "adam, lr=0.05": (
        optim.adam(0.05),
        optax.adam,
        {"learning_rate": 0.05, "b1": 0.9, "b2": 0.999, "eps": 1e-8},
    ),
}

Train = Callable[[Any, Dataset], Any]  # (initial params, data) -> (final params, losses)


def loss_fn(model: models.LinearRegression, batch: Dataset) -> jax.Array:
    """The mean squared error of the linear regression demo (``python -m optim``)."""
    return models.losses.mean_squared_error(model(batch.x), batch.y)


def with_fit(tx: optim.GradientTransformation) -> Train:
    """``optim.fit`` on the full batch."""

    def train(params: Any, data: Dataset) -> Any:
        result = optim.fit(loss_fn, params, tx, data, steps=STEPS, progress=False)
        return result.params, result.losses

    return train


def optax_step(tx: optax.GradientTransformation) -> Callable[..., Any]:
    """One optax step on the full batch: ``(params, state, data) -> (params, state, loss)``."""

    def step(params: Any, state: Any, data: Dataset) -> Any:
        loss, grads = jax.value_and_grad(loss_fn)(params, data)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    return step


def with_python_loop(tx: optax.GradientTransformation) -> Train:
    """A jitted optax step called ``STEPS`` times from Python."""
    step = jax.jit(optax_step(tx))

    def train(params: Any, data: Dataset) -> Any:
        state, losses = tx.init(params), []
        for _ in range(STEPS):
            params, state, loss = step(params, state, data)
            losses.append(loss)
        return params, losses

    return train


def scan_of(tx: optax.GradientTransformation, params: Any, data: Dataset) -> Any:
    """``STEPS`` optax steps in a ``lax.scan``: ``(final params, losses)``."""
    step = optax_step(tx)

    def body(carry: Any, _: None) -> Any:
        params, state, loss = step(*carry, data)
        return (params, state), loss

    (params, _), losses = jax.lax.scan(body, (params, tx.init(params)), length=STEPS)
    return params, losses


def with_hand_scan(tx: optax.GradientTransformation) -> Train:
    """The optax step in a ``lax.scan``, the whole loop inside one ``jax.jit``; the
    hyperparameters are constants of the program."""
    return jax.jit(lambda params, data: scan_of(tx, params, data))


def with_hand_scan_of_arguments(make: Callable[..., Any], hyperparameters: dict) -> Train:
    """The same scan with the hyperparameters as float32 arguments of the jitted function."""
    values = {name: np.float32(value) for name, value in hyperparameters.items()}
    scan = jax.jit(lambda params, data, values: scan_of(make(**values), params, data))
    return lambda params, data: scan(params, data, values)


VARIANTS = {
    "optim.fit": lambda ours, make, hyper: with_fit(ours),
    "python loop": lambda ours, make, hyper: with_python_loop(make(**hyper)),
    "hand scan": lambda ours, make, hyper: with_hand_scan(make(**hyper)),
    "scan, hp args": lambda ours, make, hyper: with_hand_scan_of_arguments(make, hyper),
}


def seconds(train: Train, params: Any, data: Dataset) -> tuple[float, Any]:
    """Wall time of one call, waiting for every result array; and the result."""
    start = time.perf_counter()
    out = jax.block_until_ready(train(params, data))
    return time.perf_counter() - start, out


def machine() -> dict[str, Any]:
    """Where the numbers come from."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],  # timings on a shared machine depend on it
        "python": platform.python_version(),
        "jax": jax.__version__,
        "optax": optax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def benchmark(repeats: int) -> dict[str, Any]:
    """Time every (optimizer, variant) pair, alternating them; medians after the first call."""
    data_key, init_key = jax.random.split(jax.random.PRNGKey(0))
    data = models.datasets.linear_regression_uniform(data_key)
    params = models.LinearRegression.init(init_key, in_features=1)
    trains = {
        (name, variant): build(*optimizer)
        for name, optimizer in OPTIMIZERS.items()
        for variant, build in VARIANTS.items()
    }
    first, final_loss, times = {}, {}, {pair: [] for pair in trains}
    for pair, train in trains.items():
        first[pair], (_, losses) = seconds(train, params, data)
        final_loss[pair] = float(losses[-1])
    for (name, variant), loss in final_loss.items():
        np.testing.assert_allclose(
            loss,
            final_loss[name, "hand scan"],
            rtol=1e-4,
            err_msg=f"{variant} does not train {name} like the hand scan",
        )
    for _ in range(repeats):
        for pair, train in trains.items():
            times[pair].append(seconds(train, params, data)[0])
    rows = [
        {
            "optimizer": name,
            "variant": variant,
            "first_call_ms": 1e3 * first[name, variant],
            "median_ms": 1e3 * statistics.median(times[name, variant]),
            "min_ms": 1e3 * min(times[name, variant]),
            "all_ms": [1e3 * t for t in times[name, variant]],
        }
        for name, variant in trains
    ]
    median = {(r["optimizer"], r["variant"]): r["median_ms"] for r in rows}
    ratios = [
        {
            "optimizer": name,
            "python_loop_over_fit": median[name, "python loop"] / median[name, "optim.fit"],
            "fit_over_hand_scan": median[name, "optim.fit"] / median[name, "hand scan"],
            "fit_over_scan_of_arguments": (
                median[name, "optim.fit"] / median[name, "scan, hp args"]
            ),
        }
        for name in OPTIMIZERS
    ]
    return {
        "machine": machine(),
        "steps": STEPS,
        "repeats": repeats,
        "timings": rows,
        "ratios": ratios,
    }


def report(results: dict[str, Any]) -> str:
    """The results as a plain-text table."""
    m = results["machine"]
    lines = [
        f"machine: {m['platform']}, {m['cpu_count']} CPUs (load average "
        f"{m['load_average_1min']:.1f}), python {m['python']}, jax {m['jax']}, optax "
        f"{m['optax']}, backend {m['backend']}",
        f"the demo's linear regression (100 examples), {results['steps']} steps; median of "
        f"{results['repeats']} alternating calls after the first (which includes compilation)",
        "",
        f"{'optimizer':15}{'variant':14}{'first call ms':>15}{'median ms':>12}{'min ms':>9}",
    ]
    lines += [
        f"{r['optimizer']:15}{r['variant']:14}{r['first_call_ms']:15.1f}{r['median_ms']:12.2f}"
        f"{r['min_ms']:9.2f}"
        for r in results["timings"]
    ]
    lines += [
        "",
        f"{'optimizer':15}{'python loop / fit':>19}{'fit / hand scan':>17}"
        f"{'fit / scan, hp args':>21}  (medians)",
    ]
    lines += [
        f"{r['optimizer']:15}{r['python_loop_over_fit']:18.1f}x{r['fit_over_hand_scan']:16.2f}x"
        f"{r['fit_over_scan_of_arguments']:20.2f}x"
        for r in results["ratios"]
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=30,
        help="timed calls of each variant after the first (default: %(default)s)",
    )
    args = parser.parse_args()
    results = benchmark(args.repeats)
    print(report(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
