"""Tokens per second and memory of a transformer language model, for each optimizer state kind.

One run trains the same ``models.Transformer`` (GPT-2 style) on the same batches (the bytes of
Python's standard library, ``models.text``; no download) with each of

==============  ==============================================================================
``optax``       ``optax.adamw``, float32 moments: the reference (ratios are kind / this row)
``adamw``       ``optim.adamw``, float32 moments (8 bytes per parameter)
``adamw.bf16``  ``optim.with_state_dtype(optim.adamw(...), "bfloat16")`` (4 bytes per parameter)
``adamw.int8``  ``optim.with_state_dtype(optim.adamw(...), "int8")``, block-wise 8-bit (about 2)
``adafactor``   ``optim.adafactor``, factored second moment (a row and a column per matrix)
==============  ==============================================================================

and measures, per kind:

a. **step**: the training step ``(params, state, batch) -> (params, state, loss)`` -- forward,
   backward, the optimizer's update and its application -- as one jitted program with params
   and state donated, called ``--steps-per-sample`` times per timed sample on a cycle of
   ``--batches`` batches held on the device. **tokens/s** = batch x context / step time. This
   is a plain jitted step rather than ``optim.fit``'s scan: it is the same program for optax
   and for ours, and at these sizes a step takes far longer than the per-call overhead that
   the scan removes (``benchmarks/optimizer_step.py`` times ``fit`` itself).
b. **optimizer-only step**: ``(params, state, grads) -> (params, state)``, the update and its
   application alone (donated), on fixed gradients -- those of the first batch at the initial
   parameters -- and on a copy of params and state of its own, so the training run is not
   disturbed. **share** = its time / the step's time (the median of the ratios of samples
   taken one after the other, as are the ratios to optax's row). Inside the step XLA may fuse
   the update with the end of the backward pass, so this is what the optimizer costs run on
   its own. The forward and backward pass alone (``value_and_grad``, no optimizer) is timed
   beside them.
c. **compile**: trace + lower + compile of (a) and of (b), in seconds, each program once, in
   the main process, after the forward-backward program (which takes the process's one-time
   compile costs).
d. **state**: ``optim.state_bytes`` of the optimizer state; per parameter.
e. **memory**: XLA's accounting of the compiled step (``memory_analysis()``: arguments +
   outputs not aliased to donated arguments + temporaries), on every backend; and the
   **measured peak** over the second and third training steps (``--peak``; the first one
   runs before, so that one-time costs of a first execution are left out). JAX cannot reset a
   device's peak counter, so on a GPU each kind runs its steps in a fresh process of its
   own (which loads the programs from the main process's compilation cache), and the number
   is that process's ``peak_bytes_in_use``: parameters, state, batches and the step's
   buffers. On the CPU it is taken in the main process: parameters, state and batches plus
   the growth of the resident memory over those two steps (``VmHWM``, reset through
   ``/proc/self/clear_refs`` before them, once ``malloc_trim`` has handed back to the system
   the memory that ``malloc`` keeps after ``free``, which an earlier step's buffers left).

Timing: every kind's step and optimizer-only step, and the forward-backward pass, are sampled
alternately -- kind after kind, the order rotating every repeat -- and the tables give medians
of ``--repeats`` samples. The losses of the first and the last training step are a sanity check
(every kind starts from the same parameters on the same batch, so the first is the same).

    python benchmarks/lm.py                   # the CPU sizes: 1-2 minutes on 2 cores
    python benchmarks/lm.py --device gpu      # one large GPU: 303M parameters, bf16 compute
    python benchmarks/lm.py --kinds optax,adamw,adamw.int8 --layers 2 --repeats 5
    python benchmarks/lm.py --device gpu --layers 1 --d-model 64 --heads 2 --context 32
    python benchmarks/lm.py --report benchmarks/results/lm_cpu.json     # the tables again

``--device`` chooses the sizes (each can be overridden by its flag); ``cpu`` also keeps JAX on
the CPU, ``gpu`` runs on JAX's default device (the CPU, with a note, where there is no GPU) and
keeps to a time budget (``--budget-s``, 170 s): once three quarters of it are spent the
remaining peak-memory processes are skipped, and the timed samples are cut (to 2 at least) to
what the rest of it holds, each with a note.
Progress goes to stdout as it happens; the tables follow, and the same numbers are written as
JSON (``--output``, default ``benchmarks/results/lm_<device>.json``).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax

# benchmarks/ is this script's directory, so its sibling imports as a module.
from optimizer_step import Progress, fresh_copy, machine, median_of, nbytes, table

import models
import optim

RESULTS = Path(__file__).parent / "results"
LR = 3e-4
WEIGHT_DECAY = 0.1
ADAFACTOR_LR = 1e-2  # Adafactor's step is relative to each matrix's RMS: a larger rate
REFERENCE = "optax"
CHILD_RESULT = "LM_BENCHMARK_RESULT "  # the line a measuring process prints its numbers on
MB = 1e6


@dataclasses.dataclass(frozen=True)
class Kind:
    """One optimizer state kind: what it is, how to build it, and which apply_updates."""

    label: str
    make: Callable[[], Any]
    apply_updates: Callable[[Any, Any], Any]


def _adamw_stored_as(state_dtype: str) -> Callable[[], Any]:
    return lambda: optim.with_state_dtype(optim.adamw(LR, weight_decay=WEIGHT_DECAY), state_dtype)


KINDS = {
    "optax": Kind(
        "optax.adamw, float32 state",
        lambda: optax.adamw(LR, weight_decay=WEIGHT_DECAY),
        optax.apply_updates,
    ),
    "adamw": Kind(
        "optim.adamw, float32 state",
        lambda: optim.adamw(LR, weight_decay=WEIGHT_DECAY),
        optim.apply_updates,
    ),
    "adamw.bf16": Kind(
        "optim.with_state_dtype(adamw), bfloat16 state",
        _adamw_stored_as("bfloat16"),
        optim.apply_updates,
    ),
    "adamw.int8": Kind(
        "optim.with_state_dtype(adamw), 8-bit state",
        _adamw_stored_as("int8"),
        optim.apply_updates,
    ),
    "adafactor": Kind(
        "optim.adafactor, factored state",
        lambda: optim.adafactor(ADAFACTOR_LR),
        optim.apply_updates,
    ),
}

# The sizes of each --device. cpu: a run of 1-2 minutes on 2 shared cores, most of it compiling.
# gpu: GPT-2 medium's shape (303M parameters with the byte vocabulary), 8,192 tokens a step in
# bfloat16 (matmuls of 8,192 rows: a large GPU stays busy). Without rematerialisation the step
# keeps every layer's activations for the backward pass: XLA:CPU's accounting of the gradient
# program at these sizes is 45 GB of temporaries (88 GB at batch 32), so that with every kind's
# two copies of parameters and state (25 GB) the main process needs about 75 GB of an H200's
# 141 GB, and a peak-memory process about 50 GB.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "layers": 4,
        "d_model": 128,
        "heads": 4,
        "context": 128,
        "batch": 8,
        "precision": "float32",
        "repeats": 10,
        "steps_per_sample": 1,
        "budget_s": None,
    },
    "gpu": {
        "layers": 24,
        "d_model": 1024,
        "heads": 16,
        "context": 512,
        "batch": 16,
        "precision": "params=float32,compute=bfloat16,output=float32",
        "repeats": 5,
        "steps_per_sample": 2,
        "budget_s": 170.0,
    },
}
SIZES = (
    "layers",
    "d_model",
    "heads",
    "d_ff",
    "context",
    "batch",
    "vocab_size",
    "batches",
    "repeats",
    "steps_per_sample",
)


# --- the problem: the same in every process of a run -------------------------------------


class Problem:
    """The model (built from the flags), its loss under the precision policy, and the data."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.policy = optim.Policy.from_string(args.precision)
        self.loss_fn = optim.mixed_precision_loss(models.lm_loss, self.policy)
        self.params_shape = jax.eval_shape(self.init_params)
        token = jax.ShapeDtypeStruct((args.batch, args.context), jnp.int32)
        self.batch_shape = (token, token)
        self.grads_shape = jax.eval_shape(
            jax.grad(self.loss_fn), self.params_shape, self.batch_shape
        )
        self.num_params = sum(x.size for x in jax.tree.leaves(self.params_shape))
        self.param_bytes = optim.state_bytes(self.params_shape)
        self.tokens_per_step = args.batch * args.context
        self.batch_bytes = args.batches * 2 * 4 * self.tokens_per_step  # int32 inputs, targets

    def init_params(self) -> models.Transformer:
        """GPT-2's initialisation, drawn with the "rbg" generator: on XLA:CPU the model's
        threefry draws take several times longer to compile, for numbers of the same law."""
        a = self.args
        return models.Transformer.init(
            jax.random.key(a.seed, impl="rbg"),
            vocab_size=a.vocab_size,
            context_length=a.context,
            d_model=a.d_model,
            num_heads=a.heads,
            num_layers=a.layers,
            d_ff=a.d_ff,
            param_dtype=self.policy.param_dtype,
        )

    def batches(self) -> list[tuple[jax.Array, jax.Array]]:
        """``--batches`` batches of (inputs, targets) windows, consecutive in the corpus."""
        a = self.args
        needed = a.batches * a.batch * a.context + 1
        # A few bytes more than needed: the corpus is cut at a character boundary.
        corpus = models.text.stdlib_corpus(max_bytes=needed + 64)
        tokens = models.text.ByteTokenizer().encode(corpus)[:needed]
        if tokens.size < needed:
            raise ValueError(
                f"the standard library holds {tokens.size} bytes of source, fewer "
                f"than --batches x --batch x --context + 1 = {needed}"
            )
        windows = models.text.windows(tokens, a.context)
        return [
            (
                windows.inputs[i * a.batch : (i + 1) * a.batch],
                windows.targets[i * a.batch : (i + 1) * a.batch],
            )
            for i in range(a.batches)
        ]

    def compile_gradient(self) -> tuple[Any, float]:
        """The forward and backward pass alone, ``(params, batch) -> (loss, grads)``, compiled;
        and the seconds it took."""
        start = time.perf_counter()
        compiled = (
            jax.jit(jax.value_and_grad(self.loss_fn))
            .lower(self.params_shape, self.batch_shape)
            .compile()
        )
        return compiled, time.perf_counter() - start

    def compile_kind(self, name: str) -> KindPrograms:
        """The kind's training step (a) and optimizer-only step (b), compiled from shapes (so
        that a peak-memory process lowers the very program the main process cached)."""
        kind = KINDS[name]
        tx, apply_updates, loss_fn = kind.make(), kind.apply_updates, self.loss_fn

        def train_step(params: Any, state: Any, batch: Any) -> tuple[Any, Any, jax.Array]:
            loss, grads = jax.value_and_grad(loss_fn)(params, batch)
            updates, state = tx.update(grads, state, params)
            return apply_updates(params, updates), state, loss

        def optimizer_step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
            updates, state = tx.update(grads, state, params)
            return apply_updates(params, updates), state

        state_shape = jax.eval_shape(tx.init, self.params_shape)
        step, step_s = compile_donated(train_step, self.params_shape, state_shape, self.batch_shape)
        opt, opt_s = compile_donated(
            optimizer_step, self.params_shape, state_shape, self.grads_shape
        )
        return KindPrograms(
            name,
            tx,
            step,
            opt,
            step_s,
            opt_s,
            optim.state_bytes(state_shape),
            optim.bytes_per_parameter(state_shape, self.params_shape),
        )


@dataclasses.dataclass
class KindPrograms:
    """One kind's optimizer, its compiled programs, and what is known without running them."""

    name: str
    tx: Any
    step: Any
    optimizer_step: Any
    compile_step_s: float
    compile_optimizer_step_s: float
    state_bytes: int
    state_bytes_per_param: float

    def measurements(self) -> dict[str, Any]:
        return {
            "compile_step_s": self.compile_step_s,
            "compile_optimizer_step_s": self.compile_optimizer_step_s,
            "state_bytes": self.state_bytes,
            "state_bytes_per_param": self.state_bytes_per_param,
            "xla_step": memory_analysis(self.step),
            "xla_optimizer_step": memory_analysis(self.optimizer_step),
        }


def compile_donated(fn: Callable[..., Any], *shapes: Any) -> tuple[Any, float]:
    """``fn`` compiled with its first two arguments donated, and the seconds it took."""
    start = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=(0, 1)).lower(*shapes).compile()
    return compiled, time.perf_counter() - start


def memory_analysis(compiled: Any) -> dict[str, int] | None:
    """XLA's buffer accounting of a compiled program; ``total_bytes`` is what it needs at once:
    arguments + outputs not aliased to (donated) arguments + temporaries."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    out = {
        f"{name}_bytes": int(getattr(stats, f"{name}_size_in_bytes"))
        for name in ("argument", "output", "alias", "temp")
    }
    out["total_bytes"] = (
        out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"] + out["temp_bytes"]
    )
    return out


def train(
    step: Any, params: Any, state: Any, batches: list[Any], first: int, steps: int
) -> tuple[Any, Any, jax.Array]:
    """``steps`` training steps from batch number ``first`` on; the last loss."""
    for i in range(first, first + steps):
        params, state, loss = step(params, state, batches[i % len(batches)])
    jax.block_until_ready((params, state, loss))
    return params, state, loss


# --- peak memory --------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


class PeakMemory:
    """The most memory this process uses from the creation of this object to ``read``.

    On a device with memory statistics (a GPU) that is the device's ``peak_bytes_in_use``,
    which counts from the start of the process and cannot be reset. Elsewhere (the CPU) it is
    the given live bytes plus the growth of the resident set since creation (``VmHWM``, reset
    to ``VmRSS`` here through ``/proc/self/clear_refs``). Memory that ``malloc`` keeps after
    ``free`` would let a step reuse the pages of an earlier one's buffers unseen, so it is
    handed back to the system first (glibc's ``malloc_trim``)."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.on_device = device.memory_stats() is not None
        self.rss_start: int | None = None
        if not self.on_device:
            try:
                ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
                Path("/proc/self/clear_refs").write_text("5")
                self.rss_start = _status_kb("VmRSS")
            except (OSError, AttributeError):  # not Linux, or not glibc
                pass

    def read(self, live_bytes: int) -> dict[str, Any]:
        if self.on_device:
            stats = self.device.memory_stats()
            return {
                "peak_bytes": stats["peak_bytes_in_use"],
                "peak_source": "the device's peak_bytes_in_use",
                "bytes_in_use": stats["bytes_in_use"],
                "bytes_limit": stats.get("bytes_limit"),
            }
        if self.rss_start is None:
            return {
                "peak_bytes": None,
                "peak_source": "unavailable (no device memory "
                "statistics; no /proc/self/clear_refs or no glibc malloc_trim)",
            }
        growth = 1024 * (_status_kb("VmHWM") - self.rss_start)
        return {
            "peak_bytes": live_bytes + growth,
            "peak_source": "params, state and batches + the resident memory's growth "
            "over two steps after the first (VmHWM)",
            "live_bytes": live_bytes,
            "rss_growth_bytes": growth,
        }


def peak_mode(requested: str, device: Any) -> str:
    """``process`` or ``inline`` (or ``off``) for ``--peak``: ``auto`` is ``process`` where
    the device keeps a peak counter, which only a fresh process starts at zero."""
    counter = device.memory_stats() is not None
    if requested == "auto":
        return "process" if counter else "inline"
    if requested == "inline" and counter:
        raise ValueError(
            "--peak inline: this device's peak counter (memory_stats) cannot be "
            "reset between kinds; use --peak process"
        )
    return requested


def measure_peak(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """Peak memory of two training steps of one kind, in this (fresh) process."""
    problem = Problem(args)
    start = time.perf_counter()
    programs = problem.compile_kind(name)  # from the main process's compilation cache
    load_s = time.perf_counter() - start
    params = jax.jit(problem.init_params)()
    state = programs.tx.init(params)  # not jitted: see KindRun
    batches = problem.batches()
    jax.block_until_ready((params, state, batches))
    params, state, _ = train(programs.step, params, state, batches, 0, 1)
    peak = PeakMemory(jax.devices()[0])
    params, state, _ = train(programs.step, params, state, batches, 1, 2)
    return {**peak.read(nbytes((params, state, batches))), "peak_process_load_s": load_s}


def run_peak_process(name: str, argv: Sequence[str], cache: Path) -> dict[str, Any]:
    """``measure_peak`` in a fresh Python process reading the compilation cache ``cache``."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *argv,
        "--child",
        name,
        "--cache-dir",
        str(cache),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(CHILD_RESULT):
            return json.loads(line[len(CHILD_RESULT) :])
    tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
    raise RuntimeError(f"the peak-memory process of {name} exited with {done.returncode}:\n{tail}")


def use_compilation_cache(directory: Path) -> None:
    """Cache every compiled program in ``directory`` (before this process compiles any).

    XLA's own caches stay off: they would put the directory's path into the compile options,
    which are part of the cache key."""
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_persistent_cache_enable_xla_caches", "none")


# --- the timed runs in the main process ----------------------------------------------------


class KindRun:
    """One kind's training step (a) and optimizer-only step (b), each with its own params and
    state; the first three training steps warm up (and measure the peak with ``--peak
    inline``)."""

    def __init__(
        self,
        programs: KindPrograms,
        params: Any,
        grads: Any,
        batches: list[Any],
        steps_per_sample: int,
        inline_peak: bool,
    ) -> None:
        self.programs, self.grads, self.batches = programs, grads, batches
        self.steps_per_sample, self.inline_peak = steps_per_sample, inline_peak
        self.sample_s = 0.0  # how long one sample takes, from the warm-up
        # The state is built eagerly (init is not what is measured).
        self.params = fresh_copy(params)
        self.state = programs.tx.init(self.params)
        self.opt_params = fresh_copy(params)
        self.opt_state = programs.tx.init(self.opt_params)
        self.peak: dict[str, Any] = {}
        self.steps_run = 0
        self.opt_calls = 1
        self.losses: list[float] = []
        self.step_times: list[float] = []
        self.opt_times: list[float] = []

    def _train(self, steps: int) -> float:
        start = time.perf_counter()
        self.params, self.state, loss = train(
            self.programs.step, self.params, self.state, self.batches, self.steps_run, steps
        )
        elapsed = (time.perf_counter() - start) / steps
        self.steps_run += steps
        self.losses.append(float(loss))
        return elapsed

    def _optimize(self, calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            self.opt_params, self.opt_state = self.programs.optimizer_step(
                self.opt_params, self.opt_state, self.grads
            )
        jax.block_until_ready((self.opt_params, self.opt_state))
        return (time.perf_counter() - start) / calls

    def warm_up(self, sample_s: float) -> None:
        """The first step alone (its loss is every kind's), two more (the peak memory's with
        ``--peak inline``), then one optimizer-only step, which sets how many of those a
        sample holds."""
        self._train(1)
        peak = PeakMemory(jax.devices()[0]) if self.inline_peak else None
        step_s = self._train(2)
        if peak is not None:
            self.peak = peak.read(nbytes((self.params, self.state, self.batches)))
        once = self._optimize(1)
        self.opt_calls = int(min(100, max(1, sample_s / max(once, 1e-7))))
        self.sample_s = step_s * self.steps_per_sample + once * self.opt_calls

    def sample(self) -> None:
        self.step_times.append(self._train(self.steps_per_sample))
        self.opt_times.append(self._optimize(self.opt_calls))

    def row(self) -> dict[str, Any]:
        return {
            "step_ms": 1e3 * median_of(self.step_times),
            "step_ms_all": [1e3 * t for t in self.step_times],
            "optimizer_step_ms": 1e3 * median_of(self.opt_times),
            "optimizer_step_ms_all": [1e3 * t for t in self.opt_times],
            "optimizer_steps_per_sample": self.opt_calls,
            "loss_first": self.losses[0],
            "loss_last": self.losses[-1],
            "train_steps": self.steps_run,
            **self.peak,
        }

    def release(self) -> None:
        self.params = self.state = self.opt_params = self.opt_state = None
        self.grads = self.batches = None


class GradientRun:
    """The forward and backward pass alone (no optimizer), on the first batch."""

    def __init__(self, gradient: Any, params: Any, batch: Any, steps_per_sample: int) -> None:
        self.gradient, self.params, self.batch = gradient, params, batch
        self.steps_per_sample = steps_per_sample
        self.sample_s = 0.0
        self.times: list[float] = []

    def warm_up(self, sample_s: float) -> None:
        del sample_s
        jax.block_until_ready(self.gradient(self.params, self.batch))
        self.sample()
        self.sample_s = self.times.pop() * self.steps_per_sample

    def sample(self) -> None:
        start = time.perf_counter()
        for _ in range(self.steps_per_sample):
            out = self.gradient(self.params, self.batch)
        jax.block_until_ready(out)
        self.times.append((time.perf_counter() - start) / self.steps_per_sample)


def fits_at_once(problem: Problem, programs: list[KindPrograms], device: Any) -> bool:
    """Whether every kind's two copies of params and state, and one step's buffers, fit in
    the device's memory together (assumed on the CPU, which reports no limit)."""
    stats = device.memory_stats()
    if not stats or not stats.get("bytes_limit"):
        return True
    held = sum(2 * (problem.param_bytes + p.state_bytes) for p in programs)
    temp = max((memory_analysis(p.step) or {}).get("temp_bytes", 0) for p in programs)
    need = held + 2 * problem.param_bytes + problem.batch_bytes + temp  # + params_0 and grads
    return need < 0.9 * stats["bytes_limit"]


def time_kinds(
    problem: Problem,
    programs: list[KindPrograms],
    gradient: Any,
    inline_peak: bool,
    deadline: Deadline,
    log: Progress,
    notes: list[str],
) -> tuple[dict[str, dict[str, Any]], list[float]]:
    """Timed samples of every kind (alternating), and of the forward-backward pass; fewer than
    ``--repeats`` (at least 2) where the time budget would not hold them all."""
    args = problem.args
    params = jax.jit(problem.init_params)()
    batches = problem.batches()
    _, grads = gradient(params, batches[0])
    groups = [programs]
    if not fits_at_once(problem, programs, jax.devices()[0]):
        groups = [[p] for p in programs]
        notes.append(
            "every kind's parameters and state do not fit in the device's memory at "
            "once: kinds were timed one after another (alternating only each kind's "
            "step, optimizer-only step and the forward-backward pass)"
        )
    grad_run = GradientRun(gradient, params, batches[0], args.steps_per_sample)
    rows: dict[str, dict[str, Any]] = {}
    for number, group in enumerate(groups):
        runs: list[Any] = [
            KindRun(p, params, grads, batches, args.steps_per_sample, inline_peak) for p in group
        ]
        alternating = [*runs, grad_run]
        for run in alternating:
            run.warm_up(args.opt_sample_s)
        share = deadline.left() / (len(groups) - number)  # of the time left, this group's
        fit = 0.9 * share / sum(run.sample_s for run in alternating)
        repeats = args.repeats if fit >= args.repeats else max(min(2, args.repeats), int(fit))
        if repeats < args.repeats:
            notes.append(
                f"{', '.join(p.name for p in group)}: {repeats} samples instead of "
                f"{args.repeats}, to stay within --budget-s {args.budget_s:g}"
            )
        for r in range(repeats):
            for i in range(len(alternating)):
                alternating[(r + i) % len(alternating)].sample()
        for run in runs:
            rows[run.programs.name] = {**run.row(), "timing_group": number}
            log(
                f"  {run.programs.name}: step {rows[run.programs.name]['step_ms']:.2f} ms, "
                f"optimizer alone {rows[run.programs.name]['optimizer_step_ms']:.2f} ms"
            )
            run.release()
    return rows, [1e3 * t for t in grad_run.times]


# --- the run ------------------------------------------------------------------------------


class Deadline:
    """``--budget-s`` seconds from now; no limit for ``None``."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.perf_counter() + seconds

    def left(self) -> float:
        return math.inf if self.end is None else self.end - time.perf_counter()


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of the sample-by-sample ratios of two alternated measurements.

    Samples of one round of the alternation were taken within moments of each other, under the
    same load of the machine, so a change of load between rounds cancels in their ratio; the
    ratio of two medians would mix samples from before and after it."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def combine(
    names: list[str], problem: Problem, *parts: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per kind: its measurements from each part, and the ratios (see
    ``paired_ratio``; kinds timed in different groups, one after another, are compared through
    their medians)."""
    rows = []
    for name in names:
        row: dict[str, Any] = {"kind": name, "optimizer": KINDS[name].label}
        for part in parts:
            row.update(part.get(name, {}))
        if "step_ms" in row:
            row["tokens_per_s"] = problem.tokens_per_step / (row["step_ms"] * 1e-3)
            row["optimizer_share"] = paired_ratio(row["optimizer_step_ms_all"], row["step_ms_all"])
        rows.append(row)
    reference = next((r for r in rows if r["kind"] == REFERENCE and "step_ms" in r), None)
    for row in rows:
        if reference is None or "step_ms" not in row:
            continue
        for key in ("step", "optimizer_step"):
            if row["timing_group"] == reference["timing_group"]:
                ratio = paired_ratio(row[f"{key}_ms_all"], reference[f"{key}_ms_all"])
            else:
                ratio = row[f"{key}_ms"] / reference[f"{key}_ms"]
            row[f"{key}_over_optax"] = ratio
    return rows


def run(args: argparse.Namespace, argv: Sequence[str], cache: Path) -> dict[str, Any]:
    log = Progress()
    deadline = Deadline(args.budget_s)
    info = machine()
    device = jax.devices()[0]
    notes: list[str] = []
    if args.device == "gpu" and info["backend"] != "gpu":
        notes.append(
            f"--device gpu: JAX found no GPU, ran on {info['device']} (GPU sizes unless overridden)"
        )
    peak = peak_mode(args.peak, device)
    if peak == "process":
        use_compilation_cache(cache)
    problem = Problem(args)
    log(
        f"{info['cpu_model']}, {info['cores_available']} cores, load {info['load_average']}, "
        f"{info['device']}; {problem.num_params:,} parameters, {problem.tokens_per_step:,} "
        f"tokens per step, {problem.policy}; kinds {', '.join(args.kinds)}; peak: {peak}"
    )
    compiled: dict[str, KindPrograms] = {}
    measured: dict[str, dict[str, Any]] = {}
    peaks: dict[str, dict[str, Any]] = {}
    timed: dict[str, dict[str, Any]] = {}
    grad_ms: list[float] = []

    def save(complete: bool) -> dict[str, Any]:
        results = {
            "machine": info,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "settings": {
                **{key: getattr(args, key) for key in SIZES},
                "device": args.device,
                "precision": str(problem.policy),
                "kinds": args.kinds,
                "peak": peak,
                "opt_sample_s": args.opt_sample_s,
                "budget_s": args.budget_s,
                "seed": args.seed,
                "learning_rate": LR,
                "weight_decay": WEIGHT_DECAY,
                "adafactor_learning_rate": ADAFACTOR_LR,
                "command": " ".join(["python", "benchmarks/lm.py", *argv]),
            },
            "model": {
                "params": problem.num_params,
                "param_bytes": problem.param_bytes,
                "tokens_per_step": problem.tokens_per_step,
            },
            "complete": complete,
            "gradient_compile_s": gradient_s,
            "gradient_ms": median_of(grad_ms) if grad_ms else None,
            "gradient_ms_all": grad_ms,
            "rows": combine(args.kinds, problem, measured, peaks, timed),
            "notes": notes,
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
        return results

    # The forward-backward program first: the process's one-time compile costs fall on it.
    gradient, gradient_s = problem.compile_gradient()
    log(f"compiled: forward + backward in {gradient_s:.1f} s")
    for name in args.kinds:
        try:
            compiled[name] = problem.compile_kind(name)
        except Exception as error:  # a kind that fails must not cost the others' numbers
            notes.append(f"{name}: not measured: {type(error).__name__}: {error}")
            log(f"  {name}: failed to compile: {error}")
            continue
        measured[name] = compiled[name].measurements()
        log(
            f"  {name}: step {compiled[name].compile_step_s:.1f} s, optimizer step "
            f"{compiled[name].compile_optimizer_step_s:.1f} s; state "
            f"{compiled[name].state_bytes_per_param:.2f} bytes/param"
        )
    save(complete=False)
    if peak == "process":
        log("peak memory: a fresh process per kind")
        jax.jit(problem.init_params).lower().compile()  # into the cache the processes read
        for name in compiled:
            if deadline.left() < 0.25 * (args.budget_s or 0):
                notes.append(
                    f"{name}: peak memory not measured, to stay within --budget-s "
                    f"{args.budget_s:g} (a quarter of it is kept for the timings)"
                )
                continue
            try:
                peaks[name] = run_peak_process(name, argv, cache)
            except RuntimeError as error:
                notes.append(f"{name}: {error}")
                log(f"  {name}: failed: {error}")
                continue
            log(f"  {name}: {_fmt(peaks[name]['peak_bytes'], ',.1f', MB)} MB")
        save(complete=False)
    if compiled:
        log(f"timing: {args.repeats} alternating samples")
        timed, grad_ms = time_kinds(
            problem, list(compiled.values()), gradient, peak == "inline", deadline, log, notes
        )
    results = save(complete=True)
    print("\n" + report(results), flush=True)
    print(f"\nwritten to {args.output}")
    return results


# --- the tables ---------------------------------------------------------------------------


def _fmt(value: Any, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value / scale, spec)


def report(results: dict[str, Any]) -> str:
    m, s, model, rows = (results["machine"], results["settings"], results["model"], results["rows"])
    gradient = results["gradient_ms"]
    timed = [r for r in rows if "step_ms" in r]
    samples = sorted({len(r["step_ms_all"]) for r in timed}) or [0]
    head = [
        f"machine: {m['cpu_model']}, {m['cores_available']} cores (load average "
        f"{' '.join(map(str, m['load_average']))} at the start, "
        f"{' '.join(map(str, results['load_average_end']))} at the end); {m['device']}; "
        f"jax {m['jax']}, optax {m['optax']}",
        f"model: models.Transformer, {s['layers']} layers, d_model {s['d_model']}, "
        f"{s['heads']} heads, d_ff {s['d_ff']}, vocab {s['vocab_size']}: "
        f"{model['params']:,} parameters; batch {s['batch']} x context {s['context']} = "
        f"{model['tokens_per_step']:,} tokens per step; precision {s['precision']}",
        f"medians of {'-'.join(map(str, samples))} alternating samples of "
        f"{s['steps_per_sample']} training "
        f"step(s); forward + backward alone (value_and_grad): {_fmt(gradient, '.2f')} ms, "
        f"compiled in {results['gradient_compile_s']:.1f} s",
    ]
    speed = table(
        "(a) training step (forward, backward, update; params and state donated) and the "
        "optimizer-only step (update and apply on fixed gradients): medians; share = "
        "optimizer-only / step, and the ratios to optax: medians of sample-by-sample ratios; "
        "compile: trace + lower + compile",
        [
            "kind",
            "optimizer",
            "tokens/s",
            "step ms",
            "step / optax",
            "optimizer ms",
            "optimizer / optax",
            "share",
            "compile s (step / optimizer)",
        ],
        [
            [
                r["kind"],
                r["optimizer"],
                f"{r['tokens_per_s']:,.0f}",
                f"{r['step_ms']:.2f}",
                _fmt(r.get("step_over_optax"), ".2f"),
                f"{r['optimizer_step_ms']:.2f}",
                _fmt(r.get("optimizer_step_over_optax"), ".2f"),
                f"{100 * r['optimizer_share']:.1f}%",
                f"{r['compile_step_s']:.1f} / {r['compile_optimizer_step_s']:.1f}",
            ]
            for r in timed
        ],
    )
    memory = table(
        "(b) optimizer state; XLA's accounting of the compiled step (arguments + outputs not "
        "aliased + temporaries; the temporaries alone); measured peak (see below); loss of "
        "the first and the last training step",
        [
            "kind",
            "optimizer",
            "state MB",
            "state B/param",
            "XLA step MB",
            "XLA temp MB",
            "measured peak MB",
            "loss first -> last (steps)",
        ],
        [
            [
                r["kind"],
                r["optimizer"],
                f"{r['state_bytes'] / MB:,.2f}",
                f"{r['state_bytes_per_param']:.2f}",
                _fmt((r["xla_step"] or {}).get("total_bytes"), ",.1f", MB),
                _fmt((r["xla_step"] or {}).get("temp_bytes"), ",.1f", MB),
                _fmt(r.get("peak_bytes"), ",.1f", MB),
                f"{r['loss_first']:.3f} -> {r['loss_last']:.3f} ({r['train_steps']})"
                if "loss_first" in r
                else "-",
            ]
            for r in rows
            if "state_bytes" in r
        ],
    )
    sources = sorted({r["peak_source"] for r in rows if "peak_source" in r})
    out = [*head]
    if results.get("complete") is False:
        out.append("(an incomplete run: stopped before the timings)")
    out += ["", speed, "", memory]
    where = {
        "process": "in a fresh process per kind",
        "inline": "in the main process, reset after each kind's first step",
    }
    out += [f"measured peak: {source}, {where.get(s['peak'], s['peak'])}" for source in sources]
    out += [f"note: {note}" for note in results["notes"]]
    return "\n".join(out)


# --- the command line ---------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        choices=sorted(PRESETS),
        default="cpu",
        help="the sizes to use (cpu: also keep JAX on the CPU); default cpu",
    )
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="comma-separated, from: " + ", ".join(KINDS)
    )

    def size(flag: str, what: str) -> None:
        defaults = ", ".join(f"{d}: {PRESETS[d].get(flag.replace('-', '_'))}" for d in PRESETS)
        parser.add_argument(f"--{flag}", type=int, default=None, help=f"{what} ({defaults})")

    size("layers", "transformer blocks")
    size("d-model", "width of the residual stream")
    size("heads", "attention heads (a divisor of --d-model)")
    size("context", "tokens per sequence")
    size("batch", "sequences per step")
    parser.add_argument("--d-ff", type=int, default=None, help="MLP width (4 x --d-model)")
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=256,
        help="at least 256, the byte tokenizer's ids; more adds embedding rows "
        "and logit columns (the cost of a larger vocabulary)",
    )
    parser.add_argument(
        "--precision",
        default=None,
        help="an optim.Policy string (cpu: float32; gpu: "
        "params=float32,compute=bfloat16,output=float32)",
    )
    size("repeats", "timed samples per kind")
    size("steps-per-sample", "training steps per timed sample")
    parser.add_argument(
        "--batches", type=int, default=4, help="distinct batches the training steps cycle through"
    )
    parser.add_argument(
        "--opt-sample-s",
        type=float,
        default=0.1,
        help="at least this long per sample of the optimizer-only step (it is repeated)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="the run's time budget: past three quarters of it the peak-memory "
        "processes are skipped, and the samples are cut to what fits (at "
        "least 2); cpu: none, gpu: 170. 0 for none",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the model's initialisation")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="the JSON file to write (default benchmarks/results/lm_<device>.json)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="print the tables of this JSON file of an earlier run, and exit",
    )
    parser.add_argument(
        "--peak",
        choices=("auto", "process", "inline", "off"),
        default="auto",
        help="how to measure peak memory: a fresh process per kind (process; "
        "auto on a GPU), in this process around each kind's first steps "
        "(inline; auto on the CPU), or not at all",
    )
    # Internal: how the main process runs one kind in a process of its own.
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for key, value in PRESETS[args.device].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.d_ff = 4 * args.d_model if args.d_ff is None else args.d_ff
    if args.budget_s is not None and args.budget_s < 0:
        parser.error(f"--budget-s must be positive (or 0 for none), got {args.budget_s}")
    args.budget_s = args.budget_s or None
    args.output = args.output or RESULTS / f"lm_{args.device}.json"
    args.kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown or not args.kinds:
        parser.error(f"--kinds: unknown {unknown} or none given; known: {list(KINDS)}")
    for key in SIZES:
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1, got {getattr(args, key)}")
    if args.d_model % args.heads:
        parser.error(f"--heads ({args.heads}) must divide --d-model ({args.d_model})")
    if args.vocab_size < 256:
        parser.error(
            f"--vocab-size must be at least 256 (the byte tokenizer's ids), got {args.vocab_size}"
        )
    if args.opt_sample_s <= 0:
        parser.error(f"--opt-sample-s must be positive, got {args.opt_sample_s}")
    try:
        optim.Policy.from_string(args.precision)
    except (TypeError, ValueError) as error:
        parser.error(f"--precision: {error}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    # Read when the GPU client starts: each process takes memory as it needs it instead of 75%
    # of the device up front, so a peak-memory process finds the device free.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.report is not None:
        results = json.loads(args.report.read_text())
        print(f"$ {results['settings']['command']}\n{report(results)}")
        return results
    if args.device == "cpu":
        jax.config.update("jax_platforms", "cpu")
    warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
    if args.child is not None:
        use_compilation_cache(args.cache_dir)
        result = measure_peak(args, args.child)
        print(CHILD_RESULT + json.dumps(result), flush=True)
        return result
    with tempfile.TemporaryDirectory(prefix="lm_benchmark_cache_") as cache:
        return run(args, argv, Path(cache))


if __name__ == "__main__":
    main()
