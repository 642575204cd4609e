"""A planned ``fit`` run: ``plan`` checks the options against the data, parameters and
optimizer and builds the compiled program; ``Run.advance`` runs one chunk (the first builds
the first carry: inside its own program when the run is that one chunk) and does the host's
work after it; ``Run.collect`` makes the ``FitResult``."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from optim._tree import PyTree, any_traced, check_params
from optim.grad import ArraySplit, split_arrays
from optim.train._flat import FlatLayout, is_elementwise
from optim.train._history import History, Stopper
from optim.train._options import (
    Batching,
    Checkpointing,
    Chunking,
    Evaluation,
    Placement,
    StepOptions,
    check_not_a_class,
    num_examples,
)
from optim.train._progress import interactive, progress_bar
from optim.train._result import FitPath, FitResult
from optim.train._resume import CheckpointStore
from optim.train._reuse import RecentPlans, plan_key
from optim.train._step import (
    Carry,
    Program,
    final_params_and_state,
    initial_carry,
    run_chunk,
    run_chunk_undonated,
    run_whole,
    step_program,
)

FLATTEN_MIN_LEAVES = 16


@dataclasses.dataclass
class Run:
    """A ``fit`` run between chunks: the program, the carry, and the host's bookkeeping."""

    program: Program
    optimizer: Any
    split: ArraySplit
    data: Any  # arrays (sampled on device) or None with an iterator
    iterator: Iterator | None
    total: int | None
    key: Any
    carry: Carry | None  # None until the first chunk (which may build it in its own program)
    start: int
    evaluation: Evaluation
    checkpointing: Checkpointing
    step_options: StepOptions
    intervals: list[int | None]
    traced: bool
    progress: bool
    history: History = dataclasses.field(default_factory=History)
    stopper: Stopper | None = None
    store: CheckpointStore | None = None
    bar: Any = None
    chunks: int = 0
    contexts: contextlib.ExitStack = dataclasses.field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Run:
        if self.progress:
            self.bar = self.contexts.enter_context(progress_bar(self.total, self.start))
        if self.program.plan is not None and not self.traced:
            # The mesh is current while the step is traced: an optimizer with many small
            # independent problems (Shampoo's roots, SOAP's bases) gives each device a share.
            # Inside a user's jit, jax.set_mesh cannot be called: their own mesh is current.
            self.contexts.enter_context(jax.set_mesh(self.program.plan.mesh))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.contexts.close()

    def boundaries(self) -> Iterator[int]:
        """Steps after ``start`` where a chunk ends: multiples of each interval, and ``total``."""
        t, total = self.start, self.total
        while total is None or t < total:
            ends = [(t // i + 1) * i for i in self.intervals if i]
            t = min([*ends, total] if total is not None else ends)
            yield t

    def advance(self, end: int) -> bool:
        """Run the steps up to ``end`` as one compiled chunk, then evaluate, stop early, save
        and show progress as due; False when the run ends here."""
        batches = None
        if self.iterator is not None:
            batches = _next_batches(self.iterator, end - self.start)
            if batches is None:
                if not self.history.records:
                    raise ValueError("data is an iterator that yielded no batches")
                return False
            end = self.start + num_examples(batches)
        if self.carry is None and end == self.total:  # the run is one chunk: one program
            run, carry = run_whole, self.split.arrays
        else:
            run, carry = (run_chunk_undonated if self.traced else run_chunk), self.first_carry()
        self.carry, records, values = run(
            carry,
            self.optimizer,
            self.data,
            self.key,
            batches,
            self.evaluation.data,
            program=self.program,
            length=end - self.start,
            with_eval=self.evaluation.due(end, self.total),
        )
        self.chunks += 1
        self.history.add(records, end, values)
        self._check_skips(end)
        stop = self.stopper is not None and values is not None
        stop = stop and self.stopper.observe(end, values, self.carry.arrays)
        if self.checkpointing.due(end, self.total, stop):
            self.store.save(end, self.carry, self.key, self.history, self.stopper)
        if self.bar is not None:
            self.bar.update(end - self.start)
            self.bar.set_postfix(self.history.postfix(), refresh=False)
        self.start = end
        return not stop

    def _check_skips(self, end: int) -> None:
        skips = self.step_options.max_consecutive_skips
        if not self.traced and self.program.skip_nonfinite and int(self.carry.skips) >= skips:
            raise FloatingPointError(
                f"{int(self.carry.skips)} consecutive steps had a non-finite loss or gradient "
                f"(up to step {end}); params and optimizer state are those before them"
            )

    def first_carry(self) -> Carry:
        """The carry, built (in its own small program) before the first chunk."""
        if self.carry is None:
            self.carry = initial_carry(self.optimizer, self.split.arrays, program=self.program)
        return self.carry

    def collect(self) -> FitResult:
        """The result: final (or best) parameters, state in the parameters' structure, history."""
        arrays, best_step, stopper = self.first_carry().arrays, None, self.stopper
        if stopper is not None and stopper.spec.restore_best and stopper.best_arrays is not None:
            arrays, best_step = stopper.best_arrays, stopper.best_step
        leaves, opt_state = final_params_and_state(
            arrays, self.carry.opt_state, program=self.program
        )
        evaluates = bool(self.program.metrics)
        return FitResult(
            params=self.split.combine(leaves),
            opt_state=opt_state,
            losses=self.history.concat("loss"),
            aux=self.history.concat("aux") if self.program.has_aux else None,
            skipped=self.history.concat("skipped"),
            eval_steps=self.history.eval_steps() if evaluates else None,
            eval_metrics=self.history.eval_values() if evaluates else None,
            best_step=best_step,
            path=FitPath(
                flat=self.program.layout is not None,
                progress=self.progress,
                traced=self.traced,
                line_search=self.program.line_search,
                chunks=self.chunks,
            ),
        )


def plan(
    loss_fn: Callable[..., Any],
    params: PyTree,
    optimizer: Any,
    data: Any,
    batching: Batching,
    step_options: StepOptions,
    evaluation: Evaluation,
    checkpointing: Checkpointing,
    placement: Placement,
    chunking: Chunking,
) -> Run:
    """Check the options against the data, parameters and optimizer, and build the run: the
    compiled step's program (and, with ``resume``, the carry restored from a checkpoint).

    The checks and the program depend on structures, shapes, dtypes and options only: a call
    matching an earlier one in those reuses its plan (``optim.train._reuse``)."""
    split = split_arrays(params)
    options = RunOptions(batching, step_options, evaluation, checkpointing, placement, chunking)
    key = plan_key(loss_fn, split, optimizer, data, *options)
    iterator = data if isinstance(data, Iterator) else None
    traced = key is None and any_traced(  # a key is made for untraced calls only
        (params, optimizer, None if iterator else data, batching.key, evaluation.data)
    )
    planned = _PLANS.get(key)
    if planned is None:
        planned = _plan_program(loss_fn, params, split, optimizer, data, options, traced)
        _PLANS.put(key, planned)
    total, program = planned
    if program.plan is not None:
        data = data if iterator is not None else program.plan.place_data(data)
        if evaluation.data is not None:
            evaluation = dataclasses.replace(
                evaluation, data=program.plan.place_data(evaluation.data)
            )
    run = Run(
        program=program,
        optimizer=optimizer,
        split=split,
        data=None if iterator is not None else data,
        iterator=iterator,
        total=total,
        key=_default_key() if batching.key is None else batching.key,
        carry=None,
        start=0,
        evaluation=evaluation,
        checkpointing=checkpointing,
        step_options=step_options,
        intervals=[],
        traced=traced,
        progress=not traced and (interactive() if chunking.progress is None else chunking.progress),
        stopper=None if evaluation.early_stopping is None else Stopper(evaluation.early_stopping),
    )
    if checkpointing.directory is not None:
        _open_store(run, checkpointing)
    run.intervals = _intervals(run, chunking)
    return run


# Plans of recent calls, reused by a call with the same structures, shapes and options.
_PLANS = RecentPlans()


class RunOptions(NamedTuple):
    """``fit``'s option records, as ``plan`` hands them on."""

    batching: Batching
    step_options: StepOptions
    evaluation: Evaluation
    checkpointing: Checkpointing
    placement: Placement
    chunking: Chunking


def _plan_program(
    loss_fn: Callable[..., Any],
    params: PyTree,
    split: ArraySplit,
    optimizer: Any,
    data: Any,
    options: RunOptions,
    traced: bool,
) -> tuple[int | None, Program]:
    """``(total steps, program)``: every check of the options against the data, parameters
    and optimizer (``traced``: whether ``fit`` runs inside a trace), and the step's static
    program."""
    batching, step_options, evaluation, checkpointing, placement, chunking = options
    check_not_a_class(params, "params")
    check_params(params)
    total, sampler, iterator = batching.plan(data)
    _check_host_work(traced, checkpointing, evaluation, chunking)
    if checkpointing.resume and iterator is not None:
        raise ValueError(
            "resume needs data as arrays: an iterator of batches cannot "
            "be rewound to the checkpoint's step"
        )
    sharding = placement.plan
    if sharding is not None and sampler is not None:  # each batch splits over the devices
        for size in (sampler.batch_size, sampler.partial_size):
            if size:
                sharding.check_batch(size)
    program = step_program(
        loss_fn,
        optimizer,
        params,
        has_aux=step_options.has_aux,
        accumulate=step_options.accumulate,
        skip_nonfinite=step_options.skip_nonfinite,
        sampler=sampler,
        metrics=evaluation.metric_functions(loss_fn, step_options.has_aux),
        layout=_layout(placement, optimizer, split.arrays),
        plan=sharding,
    )
    return total, program


def _open_store(run: Run, checkpointing: Checkpointing) -> None:
    """The run's checkpoint store; with ``resume`` the run continues from its latest."""
    run.store = CheckpointStore(
        checkpointing.directory,
        run.optimizer,
        bool(run.program.metrics),
        run.evaluation.every,
        run.total,
    )
    if checkpointing.resume:
        restored = run.store.restore(
            run.program, run.optimizer, run.split.arrays, run.data, run.key, run.history,
            run.stopper,
        )  # fmt: skip
        if restored is not None:
            run.start, run.carry, run.key = restored


def _intervals(run: Run, chunking: Chunking) -> list[int | None]:
    """Where chunks end: at evaluations, checkpoints and ``chunk_size``; with none of those,
    every hundredth of the run for the progress bar, and every 100 batches of an iterator."""
    intervals = [run.evaluation.every, run.checkpointing.every, chunking.chunk_size]
    if run.progress and not any(intervals) and run.total:
        intervals.append(max(1, run.total // 100))
    if run.iterator is not None and not any(intervals):
        intervals.append(run.total or 100)
    return intervals


def _check_host_work(
    traced: bool, checkpointing: Checkpointing, evaluation: Evaluation, chunking: Chunking
) -> None:
    if traced and (
        checkpointing.directory is not None
        or evaluation.early_stopping is not None
        or chunking.progress
    ):
        raise ValueError(
            "fit is being traced (inside jit, vmap or grad): checkpoints, early "
            "stopping and the progress bar need the host between chunks; run fit "
            "outside the transformation for those"
        )


@functools.cache
def _default_key() -> np.ndarray:
    """The key of runs that need none (full batch): made once, not on every call, and without
    compiling a seeding program (a first ``fit`` would pay 0.1 s for a key it never uses):
    zeros of a raw key's shape, which is ``jax.random.PRNGKey(0)`` for the default threefry
    keys. A NumPy array, so it is concrete even when first asked for inside a trace."""
    shape = jax.eval_shape(jax.random.PRNGKey, 0)
    return np.zeros(shape.shape, shape.dtype)


def _layout(placement: Placement, optimizer: Any, arrays: Sequence[Any]) -> FlatLayout | None:
    """Flat buffers (one per dtype) or per-leaf arrays: ``flatten=True`` asks for them (for an
    elementwise optimizer only); ``"auto"`` takes them where they pay."""
    flatten = placement.flatten
    if placement.plan is not None and flatten == "auto":  # flat buffers are not sharded
        flatten = False
    elementwise = is_elementwise(optimizer)
    if flatten is True and not elementwise:
        raise ValueError(
            "flatten=True needs an elementwise optimizer (per-leaf statistics such "
            "as trust ratios, factored moments or masks would change); "
            f"{type(optimizer).__name__} is not known to be one"
        )
    leaves = sum(a is not None for a in arrays)
    # On XLA:CPU the slices of a flat buffer compile and run slower than per-leaf kernels
    # (benchmarks/README.md); the flat path pays where each kernel is a launch: GPU, TPU.
    pays = jax.default_backend() != "cpu" and leaves >= FLATTEN_MIN_LEAVES
    if flatten is True or (flatten == "auto" and elementwise and pays):
        return FlatLayout.of(list(arrays))
    return None


def _next_batches(iterator: Iterator, count: int) -> PyTree | None:
    """Up to ``count`` batches from the iterator, stacked on a new leading axis."""
    batches = []
    for batch in iterator:
        batches.append(batch)
        if len(batches) == count:
            break
    if not batches:
        return None
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *batches)
