"""Where the matrix preconditioners pay: Shampoo, SOAP, Kron and Muon against AdamW.

Two problems, one table each:

a. **Ill-conditioned least squares.** ``0.5 * mean ||x W - y||^2`` with ``W`` of shape
   ``--dims`` (inputs x outputs), full batch. The inputs have a rotated covariance of
   condition number ``--condition`` (singular values log-spaced from 1 down to
   ``1/sqrt(condition)``, then a random rotation), so no coordinate axis is special: a
   diagonal method such as Adam cannot undo the rotation, while Shampoo's and SOAP's
   Kronecker factors on the inputs' side are the inputs' covariance itself, and Kron fits a
   whitening factor there. Every optimizer trains at each rate of ``--lsq-rates`` (one
   vmapped ``optim.sweep`` program) on ``--draws`` problems (a new rotation, scales, inputs
   and targets each). **steps to target**: the first step after which the loss is below
   ``--target`` x the initial loss, the mean over draws (and their range), at the best rate:
   the rate with the fewest mean steps among those that reach the target on every draw, else
   the lowest final loss. **final loss**: after ``--lsq-steps`` steps, the geometric mean over
   draws, as a fraction of the initial loss.

b. **A transformer language model** (``models.Transformer``, GPT-2 style, blocks kept as
   separate 2-D matrices) on the bytes of Python's standard library (``models.text``; no
   download): the same token budget (``--steps`` x ``--batch`` windows of ``--context``
   bytes) for every optimizer, a linear warmup over the first 5% of the steps and a cosine
   decay to 0, decoupled weight decay 0.1 on the weight matrices and embeddings. Per
   optimizer:

   * **tuned rate**: the peak learning rate of its grid (``GRIDS``, three rates a factor 2
     apart) with the lowest validation loss at the end, from one ``optim.sweep`` of the grid
     (initial weights and batches of run 0; SOAP's and Kron's grids run as one ``fit`` per
     rate);
   * then ``--runs`` runs at that rate, each with its own initial weights and batch order
     (``optim.fit``, the validation loss every ``--eval-every`` steps): **steps to AdamW's
     loss** is the first evaluation at which the validation loss is at or below AdamW's final
     validation loss (the mean over its runs), the mean over runs, or "not reached" (with the
     number of runs that did, if any); **final validation loss**: mean and spread (half the
     range) over the runs;
   * **time per step**: a plain jitted training step ``(params, state, batch) -> (params,
     state, loss)``, params and state donated, started from the state at the end of run 0 and
     called ``--steps-per-sample`` times per sample on a cycle of batches (so Shampoo's roots
     and SOAP's basis refresh, every 10 steps, are in each sample); the samples are taken
     optimizer after optimizer, ``--repeats`` rounds, and the table gives the median, and the
     median of the per-round ratios to AdamW's sample;
   * **state bytes per parameter**: ``optim.bytes_per_parameter`` of the optimizer state.

   Every matrix optimizer works on the blocks' weight matrices; the embeddings, biases and
   LayerNorm parameters get AdamW at AdamW's tuned rate (``optim.partition``), which is what
   ``optim.contrib.muon`` does for the leaves it does not orthogonalise, applied to all four
   so that they differ only on the same matrices. (Left to itself Shampoo, SOAP and Kron
   would also precondition the 256-row token embedding, and ``contrib.muon`` would
   orthogonalise it.)

Run as ``python benchmarks/matrix_optimizers.py`` (5.5 minutes on 2 quiet cores); the tables
are printed and written as JSON (``--output``, default
``benchmarks/results/matrix_optimizers.json``); ``--report FILE`` prints them again from such
a file. ``--part lsq`` or ``--part lm`` runs one of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import models
import optim
from models import text

RESULTS = Path(__file__).parent / "results"
WEIGHT_DECAY = 0.1
VOCAB = 256  # models.text.ByteTokenizer: one token per byte

# --- (a) least squares --------------------------------------------------------------------

LSQ_OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "sgd+momentum": lambda learning_rate: optim.sgd(learning_rate, momentum=0.9),
    "adamw": lambda learning_rate: optim.adamw(learning_rate, weight_decay=0.0),
    "muon": lambda learning_rate: optim.contrib.muon(learning_rate),
    "shampoo": lambda learning_rate: optim.shampoo(learning_rate),
    "soap": lambda learning_rate: optim.soap(learning_rate, weight_decay=0.0),
    "kron": lambda learning_rate: optim.kron(learning_rate),
}


def least_squares_draw(d_in: int, d_out: int, condition: float, draw: int):
    """Inputs ``(16 d_in, d_in)`` with a rotated covariance of condition ``condition``."""
    rng = np.random.default_rng(draw)
    rotation, _ = np.linalg.qr(rng.normal(size=(d_in, d_in)))
    scales = np.logspace(0, -0.5 * math.log10(condition), d_in)
    x = rng.normal(size=(16 * d_in, d_in)) * scales @ rotation.T
    y = x @ rng.normal(size=(d_in, d_out))
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def least_squares_loss(params: dict[str, jax.Array], batch: Any) -> jax.Array:
    x, y = batch
    return 0.5 * jnp.mean(jnp.sum((x @ params["w"] - y) ** 2, axis=-1))


def run_least_squares(args: argparse.Namespace) -> dict[str, Any]:
    d_in, d_out = (int(d) for d in args.dims.split(","))
    rates = [float(r) for r in args.lsq_rates.split(",")]
    draws = [least_squares_draw(d_in, d_out, args.condition, d) for d in range(args.draws)]
    params = {"w": jnp.zeros((d_in, d_out), jnp.float32)}
    initial = [float(least_squares_loss(params, data)) for data in draws]
    rows = []
    for name in args.lsq_optimizers.split(","):
        start = time.perf_counter()
        steps, finals = [], []
        for data, first in zip(draws, initial, strict=True):
            result = optim.sweep(
                least_squares_loss,
                params,
                LSQ_OPTIMIZERS[name],
                data,
                grid={"learning_rate": rates},
                steps=args.lsq_steps,
            )
            # losses[p, t]: the loss after t steps; the first below the target gives the count.
            relative = np.asarray(result.losses) / first
            reached = relative < args.target
            steps.append(np.where(reached.any(axis=1), reached.argmax(axis=1), np.inf))
            final = np.asarray(result.final_loss) / first
            finals.append(np.where(np.isfinite(final), final, np.inf))
        steps, finals = np.stack(steps, axis=1), np.stack(finals, axis=1)  # (rates, draws)
        with np.errstate(divide="ignore"):
            log_final = np.mean(np.log(finals), axis=1)
        best = min(range(len(rates)), key=lambda p: (np.mean(steps[p]), log_final[p]))
        hit = steps[best][np.isfinite(steps[best])]
        row = {
            "optimizer": name,
            "best_lr": rates[best],
            "steps_to_target": float(np.mean(steps[best])) if hit.size == len(draws) else None,
            "steps_range": [int(hit.min()), int(hit.max())] if hit.size else None,
            "draws_reached": int(hit.size),
            "final_loss": float(np.exp(log_final[best])),
            "seconds": time.perf_counter() - start,
        }
        rows.append(row)
        print(f"  (a) {name}: {format_lsq_row(row)}", flush=True)
    return {
        "settings": {
            "dims": [d_in, d_out],
            "examples": 16 * d_in,
            "condition": args.condition,
            "steps": args.lsq_steps,
            "target": args.target,
            "rates": rates,
            "draws": args.draws,
        },
        "rows": rows,
    }


# --- (b) the transformer ------------------------------------------------------------------

# Peak learning rates swept per optimizer, a factor 2 apart, each grid centred where trial runs
# of this model found the optimum: AdamW's around nanoGPT's small-model rates; Muon's for its
# orthogonalised matrices; Shampoo's (with Adam grafting) 30 times below AdamW's, where grids
# of Adam-sized rates found their best at the lowest; SOAP's twice AdamW's and Kron's two
# thirds of it, where grids one step lower found their best at the highest.
GRIDS = {
    "adamw": (1.5e-3, 3e-3, 6e-3),
    "muon": (2e-2, 4e-2, 8e-2),
    "shampoo": (5e-5, 1e-4, 2e-4),
    "soap": (3e-3, 6e-3, 1.2e-2),
    "kron": (1e-3, 2e-3, 4e-3),
}
REFERENCE = "adamw"
# The blocks' weight matrices (paths such as model/blocks/0/attn/qkv/w) get the matrix
# optimizer; the embeddings, biases and LayerNorms get AdamW at AdamW's tuned rate.
BLOCK_MATRICES = {"matrices": re.compile(r".*/w"), "rest": re.compile(r".*")}
MATRIX_OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "muon": lambda rate: optim.contrib.muon(rate, weight_decay=WEIGHT_DECAY),
    "shampoo": lambda rate: optim.shampoo(rate, weight_decay=WEIGHT_DECAY),
    "soap": lambda rate: optim.soap(rate, weight_decay=WEIGHT_DECAY),
    "kron": lambda rate: optim.kron(rate, weight_decay=WEIGHT_DECAY),
}
# SOAP's and Kron's grids run as one fit per rate: their vmapped sweeps of this model stall on
# XLA:CPU (jax 0.10.2: no progress, no CPU used; the sweeps of part (a) run).
TUNED_BY_SEPARATE_FITS = ("soap", "kron")


def decayed(params: Any) -> Any:
    """True for the leaves weight decay applies to: weight matrices and the embeddings."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: jax.tree_util.keystr(path).endswith((".w", ".wte", ".wpe")), params
    )


class LanguageModel:
    """The model, its data and the optimizers of part (b), built from the flags."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        train_windows = args.steps * args.batch  # one pass at most: no window seen twice
        needed = (train_windows + args.valid_windows) * args.context + 2
        corpus = text.stdlib_corpus(max_bytes=int(needed * 1.2))
        tokens = text.ByteTokenizer().encode(corpus)
        train_tokens, valid_tokens = text.train_validation_split(tokens, validation_fraction=0.1)
        self.train = text.windows(train_tokens, args.context)
        valid = text.windows(valid_tokens, args.context)
        self.valid = jax.tree.map(lambda x: x[: args.valid_windows], valid)
        self.params = self.init(0)
        self.num_params = sum(x.size for x in jax.tree.leaves(self.params))
        self.grids = GRIDS | dict(parse_grid(text) for text in args.grid or [])
        reference = self.grids[REFERENCE]
        self.adamw_rate = reference[len(reference) // 2]  # until AdamW's sweep tunes it

    def init(self, run: int) -> models.Transformer:
        a = self.args
        return models.Transformer.init(
            jax.random.PRNGKey(run),
            vocab_size=VOCAB,
            context_length=a.context,
            d_model=a.d_model,
            num_heads=a.heads,
            num_layers=a.layers,
            scan_layers=False,
        )

    loss = staticmethod(models.lm_loss)  # (model, (inputs, targets)) -> mean cross-entropy

    def schedule(self, peak: Any) -> Any:
        steps = self.args.steps
        return optim.warmup_cosine_decay_schedule(0.0, peak, max(1, steps // 20), steps)

    def optimizer(self, name: str, learning_rate: Any) -> Any:
        """AdamW; or the matrix optimizer on the blocks' matrices and AdamW for the rest."""
        adamw = optim.adamw(self.schedule(learning_rate), weight_decay=WEIGHT_DECAY, mask=decayed)
        if name == REFERENCE:
            return adamw
        if name not in MATRIX_OPTIMIZERS:
            known = ", ".join([REFERENCE, *MATRIX_OPTIMIZERS])
            raise ValueError(f"--optimizers: unknown optimizer {name!r}; known: {known}")
        rest = optim.adamw(self.schedule(self.adamw_rate), weight_decay=WEIGHT_DECAY, mask=decayed)
        matrices = MATRIX_OPTIMIZERS[name](self.schedule(learning_rate))
        return optim.partition({"matrices": matrices, "rest": rest}, BLOCK_MATRICES)

    def tune(self, name: str) -> dict[str, Any]:
        """One sweep of the optimizer's grid: the validation loss of every rate."""
        grid = self.grids[name][: self.args.grid_points]
        if name in TUNED_BY_SEPARATE_FITS:
            valid = []
            for rate in grid:
                trained = self.train_run(name, rate, run=0, evaluate=False).params
                valid.append(float(self.loss(trained, self.valid)))
            finite = [v if np.isfinite(v) else math.inf for v in valid]
            best = grid[int(np.argmin(finite))]
            return {"grid": list(grid), "valid_loss": valid, "best_lr": best, "swept": False}
        result = optim.sweep(
            self.loss,
            self.params,
            lambda learning_rate: self.optimizer(name, learning_rate),
            self.train,
            grid={"learning_rate": grid},
            steps=self.args.steps,
            batch_size=self.args.batch,
            key=jax.random.PRNGKey(1000),
            eval_fn=self.loss,
            eval_data=self.valid,
        )
        valid = [float(v) if np.isfinite(v) else None for v in np.asarray(result.eval)]
        best = grid[result.best_index] if result.best_index is not None else grid[0]
        return {"grid": list(grid), "valid_loss": valid, "best_lr": best, "swept": True}

    def train_run(
        self, name: str, learning_rate: float, run: int, evaluate: bool = True
    ) -> optim.FitResult:
        return optim.fit(
            self.loss,
            self.init(run),
            self.optimizer(name, learning_rate),
            self.train,
            steps=self.args.steps,
            batch_size=self.args.batch,
            key=jax.random.PRNGKey(1000 + run),
            eval_data=self.valid if evaluate else None,
            eval_every=self.args.eval_every if evaluate else None,
            progress=False,
        )

    def step_program(self, name: str, learning_rate: float) -> Callable[..., Any]:
        tx, loss = self.optimizer(name, learning_rate), self.loss

        def step(params: Any, state: Any, batch: Any) -> tuple[Any, Any, jax.Array]:
            value, grads = jax.value_and_grad(loss)(params, batch)
            updates, state = tx.update(grads, state, params)
            return optim.apply_updates(params, updates), state, value

        return jax.jit(step, donate_argnums=(0, 1))


class TimedStep:
    """One optimizer's donated step, run from the end of its first run on a cycle of batches."""

    def __init__(self, program: Callable[..., Any], result: Any, batches: list[Any]) -> None:
        self.program, self.batches = program, batches
        self.params, self.state = jax.tree.map(jnp.copy, (result.params, result.opt_state))
        self.sample(1)  # compiles, and runs a first step outside the timed samples

    def sample(self, steps: int) -> float:
        start = time.perf_counter()
        for i in range(steps):
            batch = self.batches[i % len(self.batches)]
            self.params, self.state, value = self.program(self.params, self.state, batch)
        jax.block_until_ready(value)
        return (time.perf_counter() - start) / steps


def run_language_model(args: argparse.Namespace) -> dict[str, Any]:
    lm = LanguageModel(args)
    names = args.optimizers.split(",")
    if names[0] != REFERENCE:
        raise ValueError(f"--optimizers must start with {REFERENCE} (the reference)")
    rows, curves, runs_of = [], {}, {}
    for name in names:
        start = time.perf_counter()
        tuned = lm.tune(name)
        if name == REFERENCE:
            lm.adamw_rate = tuned["best_lr"]  # and so does the AdamW of the others' rest
        runs = [lm.train_run(name, tuned["best_lr"], run) for run in range(args.runs)]
        runs_of[name] = runs
        finals = [float(r.eval_metrics["loss"][-1]) for r in runs]
        row = {
            "optimizer": name,
            **tuned,
            "final_valid": finals,
            "final_valid_mean": statistics.fmean(finals),
            "final_valid_spread": (max(finals) - min(finals)) / 2,
            "train_loss_last_5pct": [
                float(np.mean(np.asarray(r.losses)[-max(1, args.steps // 20) :])) for r in runs
            ],
            "state_bytes": optim.state_bytes(runs[0].opt_state),
            "state_bytes_per_param": optim.bytes_per_parameter(runs[0].opt_state, lm.params),
            "seconds": time.perf_counter() - start,
        }
        curves[name] = {
            "steps": np.asarray(runs[0].eval_steps).tolist(),
            "valid": [np.asarray(r.eval_metrics["loss"]).tolist() for r in runs],
        }
        rows.append(row)
        print(
            f"  (b) {name}: lr {row['best_lr']:g} (grid {tuned['valid_loss']}), final "
            f"{row['final_valid_mean']:.4f} ± {row['final_valid_spread']:.4f}, "
            f"{row['seconds']:.0f} s",
            flush=True,
        )
    target = rows[0]["final_valid_mean"]
    for row in rows:
        steps = [
            first_step_at_or_below(curves[row["optimizer"]]["steps"], valid, target)
            for valid in curves[row["optimizer"]]["valid"]
        ]
        reached = [s for s in steps if s is not None]
        row["steps_to_adamw_loss"] = steps
        row["steps_to_adamw_loss_mean"] = (
            statistics.fmean(reached) if len(reached) == len(steps) else None
        )
    timing = time_steps(lm, names, rows, runs_of, args)
    for row in rows:
        row.update(timing[row["optimizer"]])
    return {
        "settings": {
            key: getattr(args, key)
            for key in (
                "layers",
                "d_model",
                "heads",
                "context",
                "batch",
                "steps",
                "runs",
                "eval_every",
                "valid_windows",
                "repeats",
                "steps_per_sample",
            )
        }
        | {"params": lm.num_params, "tokens": args.steps * args.batch * args.context},
        "adamw_final_valid": target,
        "rows": rows,
        "curves": curves,
    }


def parse_grid(text: str) -> tuple[str, tuple[float, ...]]:
    name, _, rates = text.partition("=")
    if name not in GRIDS or not rates:
        raise ValueError(f"--grid: expected NAME=RATE,RATE,... with NAME in {list(GRIDS)}")
    return name, tuple(float(rate) for rate in rates.split(","))


def first_step_at_or_below(steps: list[int], values: list[float], target: float) -> int | None:
    return next((s for s, v in zip(steps, values, strict=True) if v <= target), None)


def time_steps(
    lm: LanguageModel,
    names: list[str],
    rows: list[dict[str, Any]],
    runs_of: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, dict[str, Any]]:
    """Medians of interleaved samples of each optimizer's donated step, and ratios to AdamW's."""
    batches = [jax.tree.map(lambda x, i=i: x[i::8][: args.batch], lm.train) for i in range(8)]
    timed = {
        row["optimizer"]: TimedStep(
            lm.step_program(row["optimizer"], row["best_lr"]), runs_of[row["optimizer"]][0], batches
        )
        for row in rows
    }
    samples: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            samples[name].append(timed[name].sample(args.steps_per_sample))
    reference = samples[REFERENCE]
    return {
        name: {
            "step_ms": 1e3 * statistics.median(samples[name]),
            "step_ms_samples": [1e3 * s for s in samples[name]],
            "step_ratio_to_adamw": statistics.median(
                s / r for s, r in zip(samples[name], reference, strict=True)
            ),
        }
        for name in names
    }


# --- tables -------------------------------------------------------------------------------


def format_lsq_row(row: dict[str, Any]) -> str:
    if row["steps_to_target"] is not None:
        low, high = row["steps_range"]
        steps = f"{row['steps_to_target']:.0f} ({low}-{high})"
    elif row["draws_reached"]:
        steps = f"not reached ({row['draws_reached']} reached)"
    else:
        steps = "not reached"
    return f"{row['best_lr']:>8g} {steps:>24} {row['final_loss']:>11.2e}"


def print_tables(results: dict[str, Any]) -> None:
    if "least_squares" in results:
        part = results["least_squares"]
        s = part["settings"]
        print(
            f"\n(a) least squares {s['dims'][0]}x{s['dims'][1]} ({s['examples']} examples), "
            f"condition {s['condition']:g}, {s['steps']} full-batch steps, {s['draws']} draws; "
            f"target {s['target']:g} x initial loss"
        )
        print(f"{'optimizer':<13} {'best lr':>8} {'steps to target':>24} {'final loss':>11}")
        for row in part["rows"]:
            print(f"{row['optimizer']:<13} {format_lsq_row(row)}")
    if "transformer" in results:
        part = results["transformer"]
        s = part["settings"]
        print(
            f"\n(b) models.Transformer, {s['layers']} layers, d_model {s['d_model']}, context "
            f"{s['context']}, {s['params']:,} parameters; {s['steps']} steps of {s['batch']} "
            f"windows ({s['tokens']:,} tokens); {s['runs']} runs at the tuned rate; AdamW's "
            f"final validation loss {part['adamw_final_valid']:.4f}"
        )
        print(
            f"{'optimizer':<9} {'tuned lr':>8} {'steps to AdamW loss':>20} "
            f"{'final valid loss':>17} {'ms/step':>8} {'/ AdamW':>8} {'state B/param':>13}"
        )
        for row in part["rows"]:
            reached = [s for s in row["steps_to_adamw_loss"] if s is not None]
            if row["steps_to_adamw_loss_mean"] is not None:
                steps = f"{row['steps_to_adamw_loss_mean']:.0f}"
            elif reached:
                steps = f"{len(reached)}/{len(row['steps_to_adamw_loss'])} reached"
            else:
                steps = "not reached"
            loss = f"{row['final_valid_mean']:.4f} ± {row['final_valid_spread']:.4f}"
            print(
                f"{row['optimizer']:<9} {row['best_lr']:>8g} {steps:>20} {loss:>17} "
                f"{row['step_ms']:>8.1f} {row['step_ratio_to_adamw']:>8.2f} "
                f"{row['state_bytes_per_param']:>13.2f}"
            )
    if "machine" in results:
        m = results["machine"]
        print(
            f"\n{m['cpu_count']} CPUs, jax {m['jax']}; load average {m['load_start']} at the "
            f"start, {m['load_end']} at the end; {results['seconds']:.0f} s in all"
        )


def machine(load_start: str) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "python": sys.version.split()[0],
        "load_start": load_start,
        "load_end": load_average(),
    }


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("both", "lsq", "lm"), default="both")
    parser.add_argument("--report", default=None, help="print the tables of this JSON and exit")
    parser.add_argument("--output", default=str(RESULTS / "matrix_optimizers.json"))
    lsq = parser.add_argument_group("(a) least squares")
    lsq.add_argument("--lsq-optimizers", default=",".join(LSQ_OPTIMIZERS))
    lsq.add_argument("--dims", default="32,16", help="inputs,outputs")
    lsq.add_argument("--condition", type=float, default=1e4)
    lsq.add_argument("--lsq-steps", type=int, default=1000)
    lsq.add_argument("--target", type=float, default=1e-5)
    lsq.add_argument("--draws", type=int, default=3)
    lsq.add_argument(
        "--lsq-rates", default="1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,1e-1,3e-1,1,3", help="a log grid"
    )
    lm = parser.add_argument_group("(b) the transformer")
    lm.add_argument("--optimizers", default=",".join(GRIDS), help="AdamW first")
    lm.add_argument("--layers", type=int, default=2)
    lm.add_argument("--d-model", type=int, default=64)
    lm.add_argument("--heads", type=int, default=4)
    lm.add_argument("--context", type=int, default=64)
    lm.add_argument("--batch", type=int, default=16)
    lm.add_argument("--steps", type=int, default=200)
    lm.add_argument("--grid-points", type=int, default=3, help="the first N rates of each grid")
    lm.add_argument(
        "--grid", action="append", help="NAME=RATE,RATE,...: another grid for an optimizer"
    )
    lm.add_argument("--runs", type=int, default=3, help="runs at the tuned rate")
    lm.add_argument("--eval-every", type=int, default=10)
    lm.add_argument("--valid-windows", type=int, default=256)
    lm.add_argument("--repeats", type=int, default=5, help="timed samples per optimizer")
    lm.add_argument("--steps-per-sample", type=int, default=10)
    args = parser.parse_args(argv)
    if args.report:
        print_tables(json.loads(Path(args.report).read_text()))
        return
    load_start, start = load_average(), time.perf_counter()
    results: dict[str, Any] = {}
    if args.part in ("both", "lsq"):
        results["least_squares"] = run_least_squares(args)
    if args.part in ("both", "lm"):
        results["transformer"] = run_language_model(args)
    results["seconds"] = time.perf_counter() - start
    results["machine"] = machine(load_start)
    print_tables(results)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
