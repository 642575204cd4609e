"""Compile time of an optimizer step and of ``fit``'s first call, ours against optax, as ratios.

For ``sgd`` with momentum, ``adam``, ``adamw``, ``lion``, ``adafactor`` and
``chain(clip_by_global_norm, adamw)``, on trees of N leaves (default 1, 16, 160 and 1,600;
8,000 with ``--with-8000``) of ``--leaf-size`` float32 each, one run measures:

a. **step**: trace, lower and compile of the standalone jitted step ``(params, state, grads)
   -> (params, state)`` with params and state donated, ours and optax's (the same step a user
   writes by hand around ``tx.update`` and ``apply_updates``);
b. **fit**: the first call of ``optim.fit`` for ``--fit-steps`` steps of ``loss = sum_i |x_i|^2
   / 2`` (tracing and compiling included, then the run, which is short), against the first
   call of a hand-written ``jax.jit(lax.scan)`` of optax's step on the same loss and steps;
c. **HLO per leaf**: the instructions of the lowered step before XLA's optimizations
   (``lowered.as_text(dialect="hlo")``, every instruction line of every computation) divided
   by N, ours and optax's.

Nothing is reused between samples: each sample builds a new optimizer and a new jitted
function, so JAX's and XLA's caches do not answer (the persistent compilation cache is not
enabled). The variants alternate within each round, ``--repeats`` rounds, and the table gives
the median of each and the ratio ours / optax's of the medians. Written as JSON to
``benchmarks/results/compile_time.json`` (``--output``).

    python benchmarks/compile_time.py                   # 1 to 1,600 leaves (about 20 minutes)
    python benchmarks/compile_time.py --quick           # 1 and 16 leaves, adam and lion
    python benchmarks/compile_time.py --optimizers adam --leaves 160,1600 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax

import optim

RESULTS = Path(__file__).parent / "results" / "compile_time.json"
LR = 1e-3
WEIGHT_DECAY = 1e-4
OPTIMIZERS: dict[str, Callable[[Any], Any]] = {  # lib (optim or optax) -> transformation
    "sgd+momentum": lambda lib: lib.sgd(LR, momentum=0.9),
    "adam": lambda lib: lib.adam(LR),
    "adamw": lambda lib: lib.adamw(LR, weight_decay=WEIGHT_DECAY),
    "lion": lambda lib: lib.lion(LR),
    "adafactor": lambda lib: lib.adafactor(LR),
    "clip+adamw": lambda lib: lib.chain(
        lib.clip_by_global_norm(1.0), lib.adamw(LR, weight_decay=WEIGHT_DECAY)
    ),
}
LIBRARIES = {"optax": optax, "optim": optim}
INSTRUCTION = re.compile(r"^\s*(ROOT\s+)?%?[\w.\-]+ = ")


def make_params(leaves: int, leaf_size: int) -> dict[str, jax.Array]:
    """``leaves`` float32 vectors of ``leaf_size`` entries, each a different value."""
    return {
        f"w{i:05d}": jnp.full((leaf_size,), 0.5 + i / leaves, jnp.float32) for i in range(leaves)
    }


def loss(params: Any) -> jax.Array:
    """A quadratic whose gradient is the parameters: cheap next to the optimizer."""
    return 0.5 * sum(jnp.vdot(x, x) for x in jax.tree.leaves(params))


def step_times(lib: Any, make: Callable[[Any], Any], params: Any) -> dict[str, float]:
    """Seconds to trace, lower and compile the standalone step, and its HLO instructions."""
    tx = make(lib)
    state = tx.init(params)

    def step(p: Any, s: Any, g: Any) -> Any:
        updates, s = tx.update(g, s, p)
        return lib.apply_updates(p, updates), s

    start = time.perf_counter()
    traced = jax.jit(step, donate_argnums=(0, 1)).trace(params, state, params)
    traced_at = time.perf_counter()
    lowered = traced.lower()
    lowered_at = time.perf_counter()
    lowered.compile()
    compiled_at = time.perf_counter()
    hlo = lowered.as_text(dialect="hlo")
    return {
        "trace_s": traced_at - start,
        "lower_s": lowered_at - traced_at,
        "compile_s": compiled_at - lowered_at,
        "total_s": compiled_at - start,
        "hlo_instructions": sum(1 for line in hlo.splitlines() if INSTRUCTION.match(line)),
    }


def fit_first_call(make: Callable[[Any], Any], params: Any, steps: int) -> float:
    """Seconds of ``optim.fit``'s first call (compile and run)."""
    start = time.perf_counter()
    result = optim.fit(
        lambda p, batch: loss(p), params, make(optim), jnp.zeros((1,)), steps=steps, progress=False
    )
    jax.block_until_ready(result.params)
    return time.perf_counter() - start


def scan_first_call(make: Callable[[Any], Any], params: Any, steps: int) -> float:
    """Seconds of the first call of a hand-written ``jit(scan)`` of optax's step."""
    tx = make(optax)

    @jax.jit
    def train(p: Any) -> Any:
        def body(carry: Any, _: Any) -> Any:
            p, s = carry
            value, grads = jax.value_and_grad(loss)(p)
            updates, s = tx.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), value

        (p, _), losses = jax.lax.scan(body, (p, tx.init(p)), length=steps)
        return p, losses

    start = time.perf_counter()
    jax.block_until_ready(train(params))
    return time.perf_counter() - start


def measure(
    name: str, leaves: int, args: argparse.Namespace, log: Callable[[str], None]
) -> dict[str, Any]:
    """Medians over the rounds of every quantity for one optimizer and leaf count."""
    make = OPTIMIZERS[name]
    params = make_params(leaves, args.leaf_size)
    samples: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for lib_name, lib in LIBRARIES.items():
            for key, value in step_times(lib, make, params).items():
                samples.setdefault(f"{lib_name}_{key}", []).append(value)
        if not args.no_fit:
            samples.setdefault("fit_first_s", []).append(
                fit_first_call(make, params, args.fit_steps)
            )
            samples.setdefault("scan_first_s", []).append(
                scan_first_call(make, params, args.fit_steps)
            )
    row = {key: statistics.median(values) for key, values in samples.items()}
    row["step_ratio"] = row["optim_total_s"] / row["optax_total_s"]
    row["hlo_per_leaf_optim"] = row.pop("optim_hlo_instructions") / leaves
    row["hlo_per_leaf_optax"] = row.pop("optax_hlo_instructions") / leaves
    if not args.no_fit:
        row["fit_ratio"] = row["fit_first_s"] / row["scan_first_s"]
    log(
        f"{name} at {leaves} leaves: step {row['optim_total_s']:.2f} s against "
        f"{row['optax_total_s']:.2f} s ({row['step_ratio']:.2f}x)"
        + ("" if args.no_fit else f", fit {row['fit_ratio']:.2f}x")
    )
    return row


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One line per optimizer and leaf count."""
    head = (
        f"{'optimizer':<13}{'leaves':>7}{'optax s':>9}{'optim s':>9}{'ratio':>7}"
        f"{'trace':>7}{'lower':>7}{'compile':>8}{'scan s':>8}{'fit s':>8}{'ratio':>7}"
        f"{'HLO/leaf optax':>15}{'optim':>7}"
    )
    lines = [head, "-" * len(head)]
    for name, by_leaves in results.items():
        for leaves, row in by_leaves.items():
            phase = [
                row[f"optim_{p}_s"] / row[f"optax_{p}_s"] for p in ("trace", "lower", "compile")
            ]
            fit = (
                f"{row['scan_first_s']:>8.2f}{row['fit_first_s']:>8.2f}{row['fit_ratio']:>7.2f}"
                if "fit_ratio" in row
                else f"{'':>23}"
            )
            lines.append(
                f"{name:<13}{leaves:>7}{row['optax_total_s']:>9.2f}{row['optim_total_s']:>9.2f}"
                f"{row['step_ratio']:>7.2f}{phase[0]:>7.2f}{phase[1]:>7.2f}{phase[2]:>8.2f}{fit}"
                f"{row['hlo_per_leaf_optax']:>15.1f}{row['hlo_per_leaf_optim']:>7.1f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", default="1,16,160,1600", help="comma-separated leaf counts")
    parser.add_argument("--with-8000", action="store_true", help="add 8,000 leaves")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument("--leaf-size", type=int, default=256, help="float32 entries per leaf")
    parser.add_argument("--fit-steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--no-fit", action="store_true", help="only the standalone step")
    parser.add_argument("--quick", action="store_true", help="1 and 16 leaves, adam and lion")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.leaves, args.optimizers = "1,16", "adam,lion"
    leaf_counts = [int(n) for n in args.leaves.split(",")] + ([8000] if args.with_8000 else [])
    names = args.optimizers.split(",")
    unknown = sorted(set(names) - set(OPTIMIZERS))
    if unknown:
        parser.error(f"--optimizers: unknown {unknown}; choose from {sorted(OPTIMIZERS)}")
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)

    load_start = os.getloadavg()[0]
    results = {name: {n: measure(name, n, args, log) for n in leaf_counts} for name in names}
    report = table(results)
    header = (
        f"compile time, medians of {args.repeats} rounds; jax {jax.__version__}, optax "
        f"{optax.__version__}, {jax.default_backend()}, load {load_start:.1f} -> "
        f"{os.getloadavg()[0]:.1f}; ratio = optim / optax (step), fit / hand-written scan (fit)"
    )
    print(header)
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "header": header,
                "python": platform.python_version(),
                "leaf_size": args.leaf_size,
                "fit_steps": args.fit_steps,
                "results": {
                    name: {str(n): row for n, row in rows.items()} for name, rows in results.items()
                },
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
