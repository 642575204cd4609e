"""One optimizer step, ours against optax (and torch.optim), on trees of 1 to 8,000 leaves.

For ``sgd`` with momentum, ``adam``, ``adamw``, ``lion``, ``adafactor`` and
``chain(clip_by_global_norm, adamw)``, on trees of N equal leaves that hold the same total
number of parameters (default 8,192,000 float32; ``--params`` to change it), this measures, in
one run, alternating the variants and taking medians:

a. **step**: the standalone jitted step ``(params, state, grads) -> (params, state)`` with
   params and state donated, gradients passed in (ms per step, and effective GB/s);
b. **scan**: the same step inside a ``lax.scan`` of ``--scan-steps`` K steps, gradients passed in
   as one loop-invariant argument (ms per step, GB/s);
c. **compile**: trace + lower + compile of (a) and of (b), in seconds (the compiled program is
   not reused from any cache: each variant is lowered and compiled once, fresh);
d. **kernels**: in the optimized HLO of (a) (``compiled.as_text()``), the computations that run
   as kernels are ENTRY and those it reaches through control flow (``while`` body and
   condition, ``conditional`` branches, ``call``); *fusions* counts their ``fusion``
   instructions (one fused kernel each), *kernels* counts all their instructions except
   ``parameter``, ``constant``, ``tuple``, ``get-tuple-element``, ``bitcast`` and control flow
   (so an unfused ``copy`` or ``add`` is a kernel too). The same rule for every variant;
e. **state bytes/param**: bytes of the optimizer state's arrays per parameter; **temp
   bytes/param**: the compiled step's temporary buffers (XLA memory analysis) per parameter,
   a hidden copy shows here; **aliased**: outputs that reuse a donated input buffer;
f. **GB/s**: the bytes the algorithm must move per step divided by the step time, where a
   step must read the parameters and gradients, write the parameters, and read and write the
   state: ``(3 * param bytes + 2 * state bytes) * params`` (plus one more read of the
   gradients for ``clip_by_global_norm``, whose norm is needed before the update). The ceiling
   is the machine's copy bandwidth, measured as ``x + 1`` in place (donated) on a large array,
   counting a read and a write of each byte. With ``--peak-bandwidth`` (a GPU's HBM figure)
   the tables also give the fraction of that peak.

Variants: ``optax``; ``optim`` (our optimizer on the tree, one set of kernels per leaf);
``optim.flatten`` (the ``optim.flatten`` wrapper: raveled inside the step, the tree outside);
``optax.flatten`` (only when asked for with ``--variants``); ``torch.foreach`` and
``torch.fused`` (``torch.optim`` with that flag, where torch is installed and has the
optimizer; step time only); ``fit.flat`` and ``fit.tree`` (``optim.fit`` with ``flatten=True``
and ``False`` on ``loss = sum_i |x_i|^2 / 2``: per-step time as the slope between a run of K
and of 3K steps in chunks of K, so one compiled chunk and no per-call costs; the per-call
overhead and the first call (compile included) are reported beside it).

    python benchmarks/optimizer_step.py                      # the full run (long at 8,000 leaves)
    python benchmarks/optimizer_step.py --quick              # 1M parameters, up to 160 leaves
    python benchmarks/optimizer_step.py --optimizers adam --max-leaves 1600
    python benchmarks/optimizer_step.py --params 1e6 --leaves 1,16 --variants optax,optim
    python benchmarks/optimizer_step.py --report benchmarks/results/optimizer_step.json

Progress goes to stdout as each measurement completes; the tables follow, and the same
numbers are written as JSON (``--output``, default ``benchmarks/results/optimizer_step.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optim

torch: Any = None  # imported by main() when a torch variant is asked for and torch is installed

RESULTS = Path(__file__).parent / "results" / "optimizer_step.json"
LEAVES = (1, 16, 160, 1600, 8000)
PARAMS = 8_192_000  # 8000 * 1024: every leaf count divides it
LR = 1e-3
WEIGHT_DECAY = 1e-4
JAX_VARIANTS = ("optax", "optim", "optim.flatten", "optax.flatten")
TORCH_VARIANTS = ("torch.foreach", "torch.fused")
FIT_VARIANTS = ("fit.flat", "fit.tree")
DEFAULT_VARIANTS = ("optax", "optim", "optim.flatten", *TORCH_VARIANTS, *FIT_VARIANTS)


def _adafactor(lib: Any) -> Any:
    """``lib.adafactor(LR)``, or None for a library without it."""
    factory = getattr(lib, "adafactor", None)
    return None if factory is None else factory(LR)


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """One row family: how to build it from optim or optax, and what torch calls it."""

    make: Callable[[Any], Any]  # lib (the optim or optax module) -> transformation or None
    elementwise: bool  # may run raveled (optim.flatten, fit.flat) with unchanged numbers
    extra_grad_reads: int = 0  # reads of the gradients beyond the update's own
    torch: Callable[..., Any] | None = None  # (params, **flags) -> torch.optim.Optimizer
    torch_fused: bool = True  # torch.optim has fused=True for it (on this device)
    torch_clip: bool = False  # clip_grad_norm_ before each step


def _torch_optimizer(name: str, **kwargs: Any) -> Callable[..., Any]:
    return lambda params, **flags: getattr(torch.optim, name)(params, lr=LR, **kwargs, **flags)


OPTIMIZERS = {
    "sgd+momentum": Optimizer(
        lambda lib: lib.sgd(LR, momentum=0.9), True, torch=_torch_optimizer("SGD", momentum=0.9)
    ),
    "adam": Optimizer(lambda lib: lib.adam(LR), True, torch=_torch_optimizer("Adam")),
    "adamw": Optimizer(
        lambda lib: lib.adamw(LR, weight_decay=WEIGHT_DECAY),
        True,
        torch=_torch_optimizer("AdamW", weight_decay=WEIGHT_DECAY),
    ),
    "lion": Optimizer(lambda lib: lib.lion(LR), True),  # torch.optim has no Lion
    "adafactor": Optimizer(
        _adafactor, False, torch=_torch_optimizer("Adafactor"), torch_fused=False
    ),
    "clip+adamw": Optimizer(
        lambda lib: lib.chain(
            lib.clip_by_global_norm(1.0), lib.adamw(LR, weight_decay=WEIGHT_DECAY)
        ),
        True,
        extra_grad_reads=1,
        torch=_torch_optimizer("AdamW", weight_decay=WEIGHT_DECAY),
        torch_clip=True,
    ),
}


# --- the machine -------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Where the numbers come from (the load average says how busy the machine was)."""
    device = jax.devices()[0]
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "jax": jax.__version__,
        "optax": optax.__version__,
        "torch": None if torch is None else torch.__version__,
        "backend": jax.default_backend(),
        "device": f"{device.platform} ({device.device_kind})",
        "device_count": jax.device_count(),
    }


def copy_bandwidth(nbytes: int, repeats: int) -> float:
    """Bytes per second of ``x + 1`` in place on a donated float32 array of ``nbytes``."""
    bump = jax.jit(lambda x: x + 1.0, donate_argnums=0)
    x = jnp.zeros(nbytes // 4, jnp.float32)
    x = jax.block_until_ready(bump(x))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        x = jax.block_until_ready(bump(x))
        times.append(time.perf_counter() - start)
    return 2 * x.nbytes / statistics.median(times)


# --- compiled-program inspection ---------------------------------------------------------

_NOT_KERNELS = frozenset(
    {
        "parameter",
        "constant",
        "tuple",
        "get-tuple-element",
        "bitcast",
        "while",
        "conditional",
        "call",
        "after-all",
        "add-dependency",
        "opt-barrier",
        "partition-id",
        "replica-id",
        "domain",
    }
)
_CONTROL_FLOW = re.compile(
    r"(?:condition|body|true_computation|false_computation)=%?([\w.\-]+)"
    r"|branch_computations=\{([^}]*)\}"
)


def _opcode(instruction: str) -> str | None:
    """The opcode of one HLO instruction line (``%x = f32[2]{0} add(%a, %b), ...``)."""
    head = re.match(r"\s*(?:ROOT\s+)?%?[^\s=]+\s*=\s*", instruction)
    if head is None:
        return None
    rest = instruction[head.end() :]
    if rest.startswith("("):  # a tuple type, possibly nested
        depth = 0
        for i, char in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                rest = rest[i + 1 :]
                break
    else:
        rest = rest.split(" ", 1)[1] if " " in rest else ""
    match = re.match(r"\s*([\w\-]+)\(", rest)
    return match.group(1) if match else None


def count_kernels(hlo_text: str) -> dict[str, int]:
    """``{"fusions": n, "kernels": m}`` of an optimized HLO module (rule in the docstring)."""
    computations: dict[str, list[str]] = {}
    entry, current = None, None
    for line in hlo_text.splitlines():
        if current is None:
            header = re.match(r"(ENTRY\s+)?%([\w.\-]+)\s.*\{\s*$", line)
            if header:
                current = header.group(2)
                computations[current] = []
                if header.group(1):
                    entry = current
        elif line.strip() == "}":
            current = None
        else:
            computations[current].append(line)
    if entry is None:
        raise ValueError("no ENTRY computation in the HLO text")
    reached, todo = set(), [entry]
    while todo:
        name = todo.pop()
        if name in reached or name not in computations:
            continue
        reached.add(name)
        for line in computations[name]:
            for single, branches in _CONTROL_FLOW.findall(line):
                todo += [single] if single else [b.strip().lstrip("%") for b in branches.split(",")]
            if _opcode(line) == "call":
                todo += re.findall(r"to_apply=%?([\w.\-]+)", line)
    opcodes = [_opcode(line) for name in reached for line in computations[name]]
    return {
        "fusions": sum(op == "fusion" for op in opcodes),
        "kernels": sum(op is not None and op not in _NOT_KERNELS for op in opcodes),
    }


def aliased_outputs(hlo_text: str) -> int:
    """How many outputs reuse a donated input's buffer (``input_output_alias`` entries)."""
    header = hlo_text[: hlo_text.find("\n")]
    return len(re.findall(r"(?:may|must)-alias", header))


def nbytes(tree: Any) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(tree) if hasattr(x, "nbytes"))


# --- the problem -------------------------------------------------------------------------


def leaf_shape(size: int) -> tuple[int, ...]:
    """Matrices of 128 columns where the size allows (so Adafactor can factor), else vectors."""
    return (size // 128, 128) if size % 128 == 0 and size >= 128 else (size,)


def make_tree(leaves: int, total: int, seed: int) -> dict[str, jax.Array]:
    shape = leaf_shape(total // leaves)
    keys = jax.random.split(jax.random.PRNGKey(seed), leaves)
    make = jax.jit(lambda k: 0.01 * jax.random.normal(k, shape, jnp.float32))
    return {f"w{i:05d}": make(k) for i, k in enumerate(keys)}


def fresh_copy(tree: Any) -> Any:
    """A copy in new buffers (donation consumes them), made in one compiled call."""
    return jax.jit(lambda t: jax.tree.map(jnp.copy, t))(tree)


def median_of(times: Sequence[float]) -> float:
    return statistics.median(times) if times else float("nan")


# --- variants ----------------------------------------------------------------------------


class JaxVariant:
    """A jitted step (a) and a scan of K steps (b) of one transformation, with its buffers."""

    def __init__(
        self,
        name: str,
        tx: Any,
        apply: Callable[..., Any],
        params: Any,
        grads: Any,
        scan_steps: int,
        with_scan: bool,
    ) -> None:
        self.name, self.grads, self.k = name, grads, scan_steps

        def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
            updates, state = tx.update(grads, state, params)
            return apply(params, updates), state

        def scan(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
            def body(carry: Any, _: None) -> tuple[Any, None]:
                return step(*carry, grads), None

            return jax.lax.scan(body, (params, state), length=scan_steps)[0]

        self.params = fresh_copy(params)
        self.state = jax.jit(tx.init)(self.params)
        self.state_bytes = nbytes(self.state)
        start = time.perf_counter()
        compiled = (
            jax.jit(step, donate_argnums=(0, 1)).lower(self.params, self.state, grads).compile()
        )
        self.compile_s = time.perf_counter() - start
        self.step = compiled
        text = compiled.as_text()
        self.kernels = count_kernels(text)
        self.aliased = aliased_outputs(text)
        self.donated = len(jax.tree.leaves((self.params, self.state)))
        memory = compiled.memory_analysis()
        self.temp_bytes = getattr(memory, "temp_size_in_bytes", None) if memory else None
        self.scan = None
        self.scan_compile_s = None
        if with_scan:
            start = time.perf_counter()
            self.scan = (
                jax.jit(scan, donate_argnums=(0, 1)).lower(self.params, self.state, grads).compile()
            )
            self.scan_compile_s = time.perf_counter() - start
        self.calls = 1
        self.step_times: list[float] = []
        self.scan_times: list[float] = []

    def warm_up(self, target_s: float) -> None:
        """Run each program once; choose how many steps one timed sample holds."""
        once = self._time_steps(1)
        self.calls = int(min(50, max(1, target_s / max(once, 1e-7))))
        if self.scan is not None:
            self._time_scan()

    def _time_steps(self, calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            self.params, self.state = self.step(self.params, self.state, self.grads)
        jax.block_until_ready((self.params, self.state))
        return (time.perf_counter() - start) / calls

    def _time_scan(self) -> float:
        start = time.perf_counter()
        self.params, self.state = self.scan(self.params, self.state, self.grads)
        jax.block_until_ready((self.params, self.state))
        return (time.perf_counter() - start) / self.k

    def sample(self) -> None:
        self.step_times.append(self._time_steps(self.calls))
        if self.scan is not None:
            self.scan_times.append(self._time_scan())

    def release(self) -> None:
        self.params = self.state = self.step = self.scan = None

    def row(self) -> dict[str, Any]:
        return {
            "step_ms": 1e3 * median_of(self.step_times),
            "step_ms_all": [1e3 * t for t in self.step_times],
            "steps_per_sample": self.calls,
            "scan_ms": 1e3 * median_of(self.scan_times) if self.scan_times else None,
            "scan_ms_all": [1e3 * t for t in self.scan_times],
            "compile_s": self.compile_s,
            "scan_compile_s": self.scan_compile_s,
            **self.kernels,
            "state_bytes": self.state_bytes,
            "temp_bytes": self.temp_bytes,
            "aliased_outputs": self.aliased,
            "donated_inputs": self.donated,
        }


def torch_device() -> str | None:
    """Where torch runs beside JAX: the CPU, or CUDA when JAX is on a GPU (None: cannot)."""
    if jax.default_backend() == "cpu":
        return "cpu"
    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else None


class TorchVariant:
    """``torch.optim`` with ``foreach=True`` or ``fused=True``, gradients set once."""

    def __init__(
        self, name: str, spec: Optimizer, shapes: list[tuple[int, ...]], flag: str
    ) -> None:
        self.name, self.clip = name, spec.torch_clip
        self.device = torch_device()
        generator = torch.Generator().manual_seed(0)
        self.params = [
            torch.nn.Parameter((0.01 * torch.randn(s, generator=generator)).to(self.device))
            for s in shapes
        ]
        for p in self.params:
            p.grad = torch.full_like(p, 1e-3)
        self.optimizer = spec.torch(self.params, **{flag: True})
        start = time.perf_counter()
        self._step()  # allocates the state
        self.compile_s = time.perf_counter() - start
        self.state_bytes = sum(
            v.numel() * v.element_size()
            for state in self.optimizer.state.values()
            for v in state.values()
            if torch.is_tensor(v) and v.numel() > 1
        )
        self.calls = 1
        self.step_times: list[float] = []

    def _step(self) -> None:
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.params, 1.0, foreach=True)
        self.optimizer.step()

    def _time_steps(self, calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            self._step()
        if self.device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / calls

    def warm_up(self, target_s: float) -> None:
        self.calls = int(min(50, max(1, target_s / max(self._time_steps(1), 1e-7))))

    def sample(self) -> None:
        self.step_times.append(self._time_steps(self.calls))

    def release(self) -> None:
        self.params = self.optimizer = None

    def row(self) -> dict[str, Any]:
        return {
            "step_ms": 1e3 * median_of(self.step_times),
            "step_ms_all": [1e3 * t for t in self.step_times],
            "steps_per_sample": self.calls,
            "first_step_s": self.compile_s,
            "state_bytes": self.state_bytes,
        }


def fit_loss(params: Any, batch: jax.Array) -> jax.Array:
    """A quadratic whose gradient is the parameters: cheap next to the optimizer."""
    del batch
    return 0.5 * sum(jnp.vdot(x, x) for x in jax.tree.leaves(params))


class FitVariant:
    """``optim.fit`` with ``flatten=True``/``False``; per step from runs of K and 3K steps."""

    def __init__(self, name: str, tx: Any, params: Any, steps: int) -> None:
        self.name, self.tx, self.params, self.k = name, tx, params, steps
        self.flatten = name == "fit.flat"
        self.data = jnp.zeros((1,))
        self.kernels: dict[str, int] | None = None
        self.compile_s = self._first_call()
        self.short: list[float] = []
        self.long: list[float] = []

    def _first_call(self) -> float:
        """The first call (tracing and compiling included), counting the chunk's kernels.

        ``fit`` runs its chunks with the jitted functions ``optim.train._run.run_chunk*``; a spy
        on them lowers and compiles the first chunk (the call then reuses that executable)
        and counts the kernels of the whole step: loss, gradient and optimizer, per step."""
        import optim.train._run as train

        originals = {
            name: fn
            for name, fn in vars(train).items()
            if name.startswith("run_chunk") and hasattr(fn, "lower")
        }

        def spying(original: Any) -> Callable[..., Any]:
            def spy(*args: Any, **kwargs: Any) -> Any:
                if self.kernels is None:
                    compiled = original.lower(*args, **kwargs).compile()
                    self.kernels = count_kernels(compiled.as_text())
                return original(*args, **kwargs)

            return spy

        for name, original in originals.items():
            setattr(train, name, spying(original))
        try:
            return self._run(self.k)
        finally:
            for name, original in originals.items():
                setattr(train, name, original)

    def _run(self, steps: int) -> float:
        start = time.perf_counter()
        result = optim.fit(
            fit_loss,
            self.params,
            self.tx,
            self.data,
            steps=steps,
            chunk_size=self.k,
            progress=False,
            flatten=self.flatten,
        )
        jax.block_until_ready(result)
        return time.perf_counter() - start

    def warm_up(self, target_s: float) -> None:
        del target_s
        self._run(3 * self.k)

    def sample(self) -> None:
        self.short.append(self._run(self.k))
        self.long.append(self._run(3 * self.k))

    def release(self) -> None:
        self.params = None

    def row(self) -> dict[str, Any]:
        short, long = median_of(self.short), median_of(self.long)
        per_step = (long - short) / (2 * self.k)
        return {
            "fit_step_ms": 1e3 * per_step,
            "fit_call_overhead_ms": 1e3 * (short - self.k * per_step),
            "fit_first_call_s": self.compile_s,
            "fit_short_ms_all": [1e3 * t for t in self.short],
            "fit_long_ms_all": [1e3 * t for t in self.long],
            "fit_chunk_steps": self.k,
            **({} if self.kernels is None else {f"fit_{k}": v for k, v in self.kernels.items()}),
        }


# --- the run -----------------------------------------------------------------------------


class Progress:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.start:7.1f} s] {message}", flush=True)


def build_variants(
    name: str,
    spec: Optimizer,
    params: Any,
    grads: Any,
    variants: Sequence[str],
    args: argparse.Namespace,
    log: Progress,
) -> tuple[list[Any], list[str]]:
    """The variants of one (optimizer, tree) cell, compiled; and notes on those skipped."""
    ours, theirs = spec.make(optim), spec.make(optax)
    built, notes = [], []
    for variant in variants:
        if variant in ("optim.flatten", "optax.flatten", "fit.flat") and not spec.elementwise:
            notes.append(f"{variant}: {name} is not elementwise (per-leaf statistics)")
            continue
        if variant.startswith("torch.") and (
            torch is None
            or spec.torch is None
            or torch_device() is None
            or (variant == "torch.fused" and not spec.torch_fused)
        ):
            if torch is not None and torch_device() is not None:
                notes.append(f"{variant}: torch.optim has no {name} with that flag")
            continue
        start = time.perf_counter()
        if variant == "optax":
            v = JaxVariant(
                variant, theirs, optax.apply_updates, params, grads, args.scan_steps, args.scan
            )
        elif variant == "optax.flatten":
            v = JaxVariant(
                variant,
                optax.flatten(theirs),
                optax.apply_updates,
                params,
                grads,
                args.scan_steps,
                args.scan,
            )
        elif variant == "optim":
            v = JaxVariant(
                variant, ours, optim.apply_updates, params, grads, args.scan_steps, args.scan
            )
        elif variant == "optim.flatten":
            v = JaxVariant(
                variant,
                optim.flatten(ours),
                optim.apply_updates,
                params,
                grads,
                args.scan_steps,
                args.scan,
            )
        elif variant.startswith("torch."):
            shapes = [tuple(x.shape) for x in jax.tree.leaves(params)]
            v = TorchVariant(variant, spec, shapes, variant.split(".")[1])
        else:
            v = FitVariant(variant, ours, params, args.fit_steps)
        built.append(v)
        detail = ""
        if isinstance(v, JaxVariant):
            scan = "" if v.scan_compile_s is None else f", scan {v.scan_compile_s:.1f} s"
            detail = (
                f": compile {v.compile_s:.1f} s{scan}, {v.kernels['fusions']} fusions, "
                f"{v.kernels['kernels']} kernels"
            )
        elif isinstance(v, FitVariant):
            detail = f": first call {v.compile_s:.1f} s"
        log(f"  {variant} ready in {time.perf_counter() - start:.1f} s{detail}")
    return built, notes


def measure(
    name: str, spec: Optimizer, leaves: int, args: argparse.Namespace, log: Progress
) -> tuple[list[dict[str, Any]], list[str]]:
    """All variants of one cell, alternating (the order rotates every repeat)."""
    params = make_tree(leaves, args.params, seed=0)
    grads = jax.tree.map(lambda x: jnp.full_like(x, 1e-3), params)
    total = sum(x.size for x in jax.tree.leaves(params))
    variants, notes = build_variants(name, spec, params, grads, args.variants, args, log)
    for v in variants:
        v.warm_up(args.sample_s)
    for r in range(args.repeats):
        for i in range(len(variants)):
            variants[(r + i) % len(variants)].sample()
    rows = []
    for v in variants:
        row = {"optimizer": name, "leaves": leaves, "params": total, "variant": v.name, **v.row()}
        for key in ("state_bytes", "temp_bytes"):
            if row.get(key) is not None:
                row[key + "_per_param"] = row[key] / total
        rows.append(row)
        v.release()
    # The bytes a step must move: the reference algorithm's state (optax's; ours when absent).
    state = next(
        (r["state_bytes"] for r in rows if r["variant"] == "optax"),
        next((r["state_bytes"] for r in rows if "state_bytes" in r), 0),
    )
    moved = (3 + spec.extra_grad_reads) * 4 * total + 2 * state
    for row in rows:
        row["bytes_moved_per_step"] = moved
        for key in ("step", "scan"):
            ms = row.get(f"{key}_ms")
            if ms:
                row[f"{key}_GBps"] = moved / (ms * 1e-3) / 1e9
                if args.peak_bandwidth:
                    row[f"{key}_fraction_of_peak"] = moved / (ms * 1e-3) / args.peak_bandwidth
    return rows, notes


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each variant's medians over optax's in the same cell (< 1: faster than optax), and
    ``fit`` at N leaves over ``fit`` at 1 leaf."""
    out = []
    by_cell: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_cell.setdefault((row["optimizer"], row["leaves"]), {})[row["variant"]] = row
    for (name, leaves), cell in by_cell.items():
        base = cell.get("optax")
        for variant, row in cell.items():
            if variant == "optax":
                continue
            entry: dict[str, Any] = {"optimizer": name, "leaves": leaves, "variant": variant}
            if base is not None:
                for key in ("step_ms", "scan_ms", "compile_s", "scan_compile_s", "fusions"):
                    if row.get(key) is not None and base.get(key):
                        entry[f"{key}_over_optax"] = row[key] / base[key]
            one = by_cell.get((name, 1), {}).get(variant)
            if row.get("fit_step_ms") is not None and one is not None and one["fit_step_ms"] > 0:
                entry["fit_step_over_1_leaf"] = row["fit_step_ms"] / one["fit_step_ms"]
            if len(entry) > 3:
                out.append(entry)
    return out


# --- the tables --------------------------------------------------------------------------


def table(title: str, header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]

    def line(cells: list[str]) -> str:  # the first two columns to the left, numbers right
        return "  ".join(
            str(c).ljust(w) if i < 2 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-" * len(line(header))
    return "\n".join([title, line(header), rule, *(line(r) for r in body)])


def _fmt(value: Any, spec: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and np.isnan(value))
        else (format(value, spec))
    )


Cells = dict[tuple[str, int], dict[str, dict[str, Any]]]


def _cell_rows(cells: Cells, fmt: Callable[[dict[str, Any]], list[str]]) -> list[list[str]]:
    return [[name, f"{leaves:,}", *fmt(cell)] for (name, leaves), cell in cells.items()]


def _ratio(cell: dict[str, Any], variant: str, key: str) -> str:
    a, b = cell.get(variant, {}).get(key), cell.get("optax", {}).get(key)
    return f"{a / b:.2f}" if a and b else "-"


def _time_cell(row: dict[str, Any] | None, key: str, peak: float | None) -> str:
    if row is None or row.get(f"{key}_ms") is None:
        return "-"
    text = f"{row[f'{key}_ms']:.2f} ({row[f'{key}_GBps']:.0f})"
    if peak:
        text += f" {100 * row[f'{key}_fraction_of_peak']:.0f}%"
    return text


def _header_lines(results: dict[str, Any]) -> list[str]:
    m, peak = results["machine"], results["settings"]["peak_bandwidth"]
    return [
        f"machine: {m['cpu_model']}, {m['cores_available']} cores (load average "
        f"{' '.join(map(str, m['load_average']))} at the start, "
        f"{' '.join(map(str, results['load_average_end']))} at the end); {m['device']}; "
        f"jax {m['jax']}, optax {m['optax']}, torch {m['torch'] or 'not installed'}",
        f"{results['settings']['params']:,} float32 parameters in N equal leaves; medians of "
        f"{results['settings']['repeats']} alternating samples; copy bandwidth (ceiling) "
        f"{results['copy_bandwidth_GBps']:.1f} GB/s"
        + (f"; peak given {peak / 1e9:.0f} GB/s" if peak else ""),
    ]


def _time_tables(results: dict[str, Any], cells: Cells, present: list[str]) -> list[str]:
    """Tables (a) and (b): step times, ours against optax."""
    rows, peak = results["rows"], results["settings"]["peak_bandwidth"]
    jax_present = [v for v in present if v in JAX_VARIANTS]
    unit = "ms (GB/s" + (", % of peak)" if peak else ")")
    out = []
    for key, title in (
        ("step", "(a) standalone jitted step, params and state donated"),
        (
            "scan",
            f"(b) inside lax.scan of {results['settings']['scan_steps']}"
            " steps, gradients passed in, per step",
        ),
    ):
        variants = present if key == "step" else jax_present
        if key == "scan" and not any(r.get("scan_ms") for r in rows):
            continue
        others = [v for v in variants if v != "optax"]
        out += [
            "",
            table(
                f"{title}: {unit}; ratio = ours / optax",
                ["optimizer", "leaves", *variants, *(f"{v}/optax" for v in others)],
                _cell_rows(
                    cells,
                    lambda c, k=key, vs=variants, os_=others: [
                        *(_time_cell(c.get(v), k, peak) for v in vs),
                        *(_ratio(c, v, f"{k}_ms") for v in os_),
                    ],
                ),
            ),
        ]
    return out


def _compile_tables(cells: Cells, jax_present: list[str]) -> list[str]:
    """Tables (c) and (d): compile times and kernel counts."""

    def compile_cell(c: dict[str, Any], v: str) -> str:
        if v not in c:
            return "-"
        return f"{_fmt(c[v]['compile_s'], '.2f')} / {_fmt(c[v]['scan_compile_s'], '.2f')}"

    others = [v for v in jax_present if v != "optax"]
    return [
        "",
        table(
            "(c) compile (trace + lower + compile), s: standalone step / scan of K steps",
            ["optimizer", "leaves", *jax_present, *(f"{v}/optax" for v in others)],
            _cell_rows(
                cells,
                lambda c: [
                    *(compile_cell(c, v) for v in jax_present),
                    *(_ratio(c, v, "compile_s") for v in others),
                ],
            ),
        ),
        "",
        table(
            "(d) kernels in the compiled standalone step: fusions (all kernels)",
            ["optimizer", "leaves", *jax_present],
            _cell_rows(
                cells,
                lambda c: [
                    f"{c[v]['fusions']} ({c[v]['kernels']})" if v in c else "-" for v in jax_present
                ],
            ),
        ),
    ]


def _state_table(cells: Cells, present: list[str]) -> list[str]:
    """Table (e): state and temporary bytes per parameter, donation."""
    jax_present = [v for v in present if v in JAX_VARIANTS]
    states = [v for v in present if v != "torch.fused"]  # foreach's state is fused's

    def row(c: dict[str, Any]) -> list[str]:
        return [
            *(_fmt(c[v].get("state_bytes_per_param"), ".1f") if v in c else "-" for v in states),
            *(
                _fmt(c[v].get("temp_bytes_per_param"), ".1f") if v in c else "-"
                for v in jax_present
            ),
            *(
                f"{c[v]['aliased_outputs']}/{c[v]['donated_inputs']}" if v in c else "-"
                for v in jax_present
            ),
        ]

    return [
        "",
        table(
            "(e) optimizer state, bytes per parameter; compiled step's temporaries, bytes per "
            "parameter; outputs aliased to donated inputs",
            [
                "optimizer",
                "leaves",
                *(f"{v} state" for v in states),
                *(f"{v} temp" for v in jax_present),
                *(f"{v} aliased" for v in jax_present),
            ],
            _cell_rows(cells, row),
        ),
    ]


def _fit_table(results: dict[str, Any], cells: Cells) -> list[str]:
    """The optim.fit table, where fit variants ran."""
    fits = [v for v in FIT_VARIANTS if any(r["variant"] == v for r in results["rows"])]
    if not fits:
        return []

    def fit_cells(c: dict[str, Any], name: str) -> list[str]:
        out_cells = []
        for v in fits:
            row = c.get(v)
            if row is None:
                out_cells += ["-"] * 5
                continue
            one = cells.get((name, 1), {}).get(v)
            rel = (
                f"{row['fit_step_ms'] / one['fit_step_ms']:.2f}"
                if one and one["fit_step_ms"] > 0
                else "-"
            )
            out_cells += [
                f"{row['fit_step_ms']:.2f}",
                rel,
                f"{row['fit_call_overhead_ms']:.0f}",
                f"{row['fit_first_call_s']:.1f}",
                _fmt(row.get("fit_fusions"), "d"),
            ]
        return out_cells

    header = ["optimizer", "leaves"]
    for v in fits:
        header += [f"{v} ms/step", "vs 1 leaf", "ms/call", "first s", "fusions"]
    steps = results["settings"]["fit_steps"]
    return [
        "",
        table(
            f"optim.fit on sum |x|^2/2 (flat: flatten=True; tree: flatten=False): ms per step "
            f"(slope between {steps} and {3 * steps} steps), its ratio to 1 leaf, the per-call "
            "overhead, the first call (compile included), fusions per step of the compiled "
            "chunk (loss, gradient and optimizer)",
            header,
            [
                [name, f"{leaves:,}", *fit_cells(c, name)]
                for (name, leaves), c in cells.items()
                if any(v in c for v in fits)
            ],
        ),
    ]


def report(results: dict[str, Any]) -> str:
    cells: Cells = {}
    for row in results["rows"]:
        cells.setdefault((row["optimizer"], row["leaves"]), {})[row["variant"]] = row
    present = [
        v
        for v in (*JAX_VARIANTS, *TORCH_VARIANTS)
        if any(r["variant"] == v for r in results["rows"])
    ]
    jax_present = [v for v in present if v in JAX_VARIANTS]
    out = _header_lines(results)
    if results.get("complete") is False:
        out.append("(an incomplete run: stopped before its last cell)")
    if present:
        out += _time_tables(results, cells, present)
        if jax_present:
            out += _compile_tables(cells, jax_present)
        out += _state_table(cells, present)
    out += _fit_table(results, cells)
    out += [f"note: {note}" for note in results["notes"]]
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--params",
        type=float,
        default=None,
        help=f"total parameters (default {PARAMS:,}; --quick: 1e6)",
    )
    parser.add_argument(
        "--leaves", default=None, help="comma-separated leaf counts (default 1,16,160,1600,8000)"
    )
    parser.add_argument(
        "--max-leaves", type=int, default=None, help="drop leaf counts above this (--quick: 160)"
    )
    parser.add_argument(
        "--optimizers",
        default=",".join(OPTIMIZERS),
        help="comma-separated, from: " + ", ".join(OPTIMIZERS),
    )
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help="comma-separated, from: " + ", ".join((*JAX_VARIANTS, *TORCH_VARIANTS, *FIT_VARIANTS)),
    )
    parser.add_argument(
        "--fit-optimizers",
        default="adam",
        help="optimizers that also run the fit.* variants (default adam)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed samples per variant (default 10; --quick: 5)",
    )
    parser.add_argument("--scan-steps", type=int, default=10, help="K of the scan (b)")
    parser.add_argument("--fit-steps", type=int, default=20, help="chunk length K of fit")
    parser.add_argument(
        "--no-scan", dest="scan", action="store_false", help="skip (b), halving the compiles"
    )
    parser.add_argument(
        "--sample-s",
        type=float,
        default=0.05,
        help="at least this long per timed sample of (a) (steps are repeated)",
    )
    parser.add_argument(
        "--peak-bandwidth",
        type=float,
        default=None,
        help="bytes/s to report the fraction of (a GPU's HBM peak)",
    )
    parser.add_argument(
        "--copy-bytes",
        type=float,
        default=None,
        help="size of the copy-bandwidth array (default max(256 MB, the "
        "parameters' bytes), at most 4 GB)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch's intra-op threads (default: the cores available; 1 keeps "
        "torch from waiting on descheduled threads on a busy machine)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1M parameters, up to 160 leaves, 5 repeats"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON file to write")
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="print the tables of this JSON file of an earlier run, and exit",
    )
    args = parser.parse_args(argv)
    args.params = int(args.params or (1e6 if args.quick else PARAMS))
    leaves = LEAVES if args.leaves is None else [int(x) for x in args.leaves.split(",")]
    limit = args.max_leaves or (160 if args.quick else None)
    args.leaves = [n for n in leaves if limit is None or n <= limit]
    args.repeats = args.repeats or (5 if args.quick else 10)
    for field, known in (
        ("optimizers", OPTIMIZERS),
        ("fit_optimizers", OPTIMIZERS),
        ("variants", (*JAX_VARIANTS, *TORCH_VARIANTS, *FIT_VARIANTS)),
    ):
        values = [x for x in getattr(args, field).split(",") if x]
        unknown = [x for x in values if x not in known]
        if unknown:
            parser.error(f"--{field.replace('_', '-')}: unknown {unknown}; known: {list(known)}")
        setattr(args, field, values)
    if any(n < 1 or args.params // n < 1 for n in args.leaves):
        parser.error("every leaf count must be between 1 and --params")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.report is not None:
        results = json.loads(args.report.read_text())
        print(f"$ {results['settings']['command']}\n{report(results)}")
        return results
    warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
    log = Progress()
    info = machine()
    log(
        f"{info['cpu_model']}, {info['cores_available']} cores, load {info['load_average']}, "
        f"{info['device']}; {args.params:,} parameters, leaves {args.leaves}"
    )
    copy_bytes = int(args.copy_bytes or min(max(256e6, 4 * args.params), 4e9))
    bandwidth = copy_bandwidth(copy_bytes, repeats=max(5, args.repeats))
    log(f"copy bandwidth: {bandwidth / 1e9:.1f} GB/s ({copy_bytes / 1e6:.0f} MB in place)")
    rows, notes = [], []

    def save(complete: bool = True) -> dict[str, Any]:
        """Write what is measured so far (after every cell: a long run can be stopped)."""
        results = {
            "machine": info,
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "settings": {
                "params": args.params,
                "leaves": args.leaves,
                "repeats": args.repeats,
                "scan_steps": args.scan_steps,
                "fit_steps": args.fit_steps,
                "peak_bandwidth": args.peak_bandwidth,
                "copy_bytes": copy_bytes,
                "torch_threads": None if torch is None else torch.get_num_threads(),
                "command": " ".join(
                    [
                        "python",
                        "benchmarks/optimizer_step.py",
                        *(sys.argv[1:] if argv is None else argv),
                    ]
                ),
            },
            "complete": complete,
            "copy_bandwidth_GBps": bandwidth / 1e9,
            "rows": rows,
            "ratios": ratios(rows),
            "notes": notes,
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
        return results

    if any(v.startswith("torch.") for v in args.variants):
        global torch
        try:
            import torch
        except ImportError:
            notes.append("torch is not installed: no torch columns")
        else:
            torch.set_num_threads(args.torch_threads or len(os.sched_getaffinity(0)))
    for name in args.optimizers:
        spec = OPTIMIZERS[name]
        if spec.make(optim) is None:
            notes.append(f"{name}: optim has no {name} yet, skipped")
            log(f"{name}: not in optim, skipped")
            continue
        variants = [
            v for v in args.variants if not v.startswith("fit.") or name in args.fit_optimizers
        ]
        for leaves in args.leaves:
            log(f"{name}, {leaves:,} leaves")
            cell_args = argparse.Namespace(**{**vars(args), "variants": variants})
            cell_rows, cell_notes = measure(name, spec, leaves, cell_args, log)
            rows += cell_rows
            notes += [f"{name}, {leaves} leaves: {n}" for n in cell_notes if leaves == 1]
            summary = ", ".join(
                f"{r['variant']} {r['step_ms']:.2f} ms"
                if "step_ms" in r
                else f"{r['variant']} {r['fit_step_ms']:.2f} ms/step"
                for r in cell_rows
            )
            log(f"  {summary}")
            save(complete=False)
    results = save()
    print("\n" + report(results), flush=True)
    print(f"\nwritten to {args.output}")
    return results


if __name__ == "__main__":
    main()
