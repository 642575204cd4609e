"""``optim.fit``: training as compiled ``lax.scan`` chunks, with the host between chunks only.

Each step evaluates ``loss_fn`` and its gradient on a batch, asks the optimizer for updates
(passing the loss as ``value=`` for transformations that want it; a line-search optimizer
such as ``lbfgs`` also gets ``grad=`` and ``value_fn=``, the loss on the same batch) and
applies them:

.. math:: \\ell_t, g_t = \\nabla L(\\theta_t; B_t),\\quad u_t, s_{t+1} = T(g_t, s_t, \\theta_t),
    \\quad \\theta_{t+1} = \\theta_t + u_t.

The batch :math:`B_t` is

* the whole data set (``batch_size=None``: gradient descent);
* ``batch_size`` examples drawn without replacement with ``fold_in(key, t)`` (``steps=``;
  ``batch_size=1`` is the seed's stochastic gradient descent);
* the next slice of a fresh permutation each epoch (``epochs=``), dropping or keeping the
  last partial batch (``drop_last``);
* the next batch of a host iterator (``data`` an iterator), fed to the device in chunks.

The recorded loss :math:`\\ell_t` is the loss at the parameters *before* step ``t``.

The steps run as compiled chunks. Chunk boundaries fall where the host has work (evaluation,
early stopping, checkpoints, the progress bar); with none requested the whole run is one scan.
The carry is donated from chunk to chunk. Called under ``jax.jit``, ``jax.vmap`` or
``jax.grad`` (any traced input), ``fit`` is fully traceable; host work other than evaluation
is then unavailable and asking for it is an error.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._batches import EpochBatches, RandomBatches
from optim._engine import (
    Carry,
    Program,
    StepRecord,
    abstract_carry,
    final_params_and_state,
    initial_carry,
    run_chunk,
    run_chunk_undonated,
    train_step,
)
from optim._flat import FlatLayout, is_elementwise
from optim._hyper import check_flag
from optim._sharding import make_plan
from optim._tree import PyTree, check_params, keystr, leaves_with_paths
from optim.base import as_transformation
from optim.grad import split_arrays
from optim.optimizers._linesearch import keeps_line_search_record


class FitResult(NamedTuple):
    """What ``fit`` returns.

    ``losses[t]`` is the training loss before step ``t``; ``aux`` stacks ``loss_fn``'s aux per
    step (``has_aux``); ``skipped[t]`` says whether step ``t`` was skipped as non-finite
    (with ``skip_nonfinite``, else None);
    ``eval_steps`` and ``eval_metrics`` (name -> values) hold one entry per evaluation;
    ``best_step`` is the step whose parameters early stopping restored.
    """

    params: PyTree
    opt_state: Any
    losses: jax.Array
    aux: Any = None
    skipped: jax.Array | None = None
    eval_steps: Any = None
    eval_metrics: Any = None
    best_step: int | None = None


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Stop when ``metric`` on ``eval_data`` has not improved by ``min_delta`` for
    ``patience`` evaluations; with ``restore_best`` return the best parameters seen."""

    metric: str = "loss"
    patience: int = 5
    mode: str = "min"
    min_delta: float = 0.0
    restore_best: bool = True

    def improved(self, value: float, best: float) -> bool:
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta


def num_examples(data: PyTree) -> int:
    """The shared leading size of every array in ``data``; ``ValueError`` naming any other."""
    sized = [(p, leaf) for p, leaf in leaves_with_paths(data) if leaf is not None]
    if not sized:
        raise ValueError("data must contain at least one array with a leading example axis")
    sizes: dict[int, str] = {}
    for path, leaf in sized:
        shape = np.shape(leaf)
        if not shape:
            raise ValueError(
                f"data{keystr(path)} is a scalar; every data leaf needs a leading example axis"
            )
        sizes.setdefault(shape[0], keystr(path))
    if len(sizes) > 1:
        listed = ", ".join(f"data{path} has {n}" for n, path in sizes.items())
        raise ValueError(f"data leaves must share their leading (example) size: {listed}")
    return next(iter(sizes))


def sample_batch(data: PyTree, key: jax.Array, batch_size: int, step: int = 0) -> PyTree:
    """The ``batch_size`` examples ``fit(..., steps=, batch_size=, key=key)`` trains on at
    ``step``: drawn without replacement with ``jax.random.fold_in(key, step)``."""
    n = num_examples(data)
    batch_size = _check_int(batch_size, "batch_size", 1)
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the data ({n} examples)")
    _check_key(key)
    return RandomBatches(n, batch_size).batch(data, key, step, None, batch_size)


# --- metrics ------------------------------------------------------------------------------


def _accuracy(params: Any, batch: Any) -> jax.Array:
    x, y = batch
    return jnp.mean(jnp.argmax(params(x), axis=-1) == y)


BUILTIN_METRICS = ("loss", "accuracy")


@dataclasses.dataclass(frozen=True)
class _LossMetric:
    """The training loss as the metric "loss" (its value without the aux). A frozen dataclass,
    not a closure: equal metrics hash equal, so a second ``fit`` with the same ``loss_fn``
    reuses the compiled program instead of compiling it again."""

    loss_fn: Callable
    has_aux: bool

    def __call__(self, params: Any, batch: Any) -> jax.Array:
        out = self.loss_fn(params, batch)
        return out[0] if self.has_aux else out


def _metric_functions(metrics: Any, loss_fn: Callable, has_aux: bool) -> tuple:
    builtin = {"loss": _LossMetric(loss_fn, has_aux), "accuracy": _accuracy}
    if isinstance(metrics, Mapping):
        items = list(metrics.items())
    elif isinstance(metrics, str):
        raise TypeError(
            f"metrics must be a sequence of names or a dict, got the string "
            f"{metrics!r}; write [{metrics!r}]"
        )
    else:
        items = [(name, name) for name in metrics]
    functions = []
    for name, fn in items:
        if isinstance(fn, str):
            if fn not in builtin:
                raise ValueError(
                    f"unknown metric {fn!r}: built-in metrics are "
                    f"{', '.join(BUILTIN_METRICS)}; pass others as a dict "
                    "{name: fn(params, batch) -> scalar}"
                )
            fn = builtin[fn]
        elif not callable(fn):
            raise TypeError(f"metrics[{name!r}] must be callable, got {type(fn).__name__}")
        functions.append((str(name), fn))
    return tuple(functions)


# --- argument checks ----------------------------------------------------------------------


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a Python int, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_key(key: Any) -> None:
    """``key`` is one PRNG key: typed (``jax.random.key``) or raw ``uint32`` data (``PRNGKey``)."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape:
            raise ValueError(f"key must be a single PRNG key, got a key array of shape {key.shape}")
        return
    if dtype == np.uint32 and np.ndim(key) == 1:
        return
    described = f"{dtype} array of shape {np.shape(key)}" if dtype is not None else repr(key)
    raise TypeError(
        f"key must be a PRNG key such as jax.random.PRNGKey(0) or jax.random.key(0), "
        f"got {type(key).__name__} {described}"
    )


def _is_traced(*trees: Any) -> bool:
    return any(isinstance(x, jax.core.Tracer) for t in trees for x in jax.tree.leaves(t))


def _plan(data: Any, steps: Any, epochs: Any, batch_size: Any, drop_last: bool, key: Any):
    """``(total steps, sampler, iterator)`` from the batching arguments."""
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    if steps is not None:
        steps = _check_int(steps, "steps", 1)
    if batch_size is not None:
        batch_size = _check_int(batch_size, "batch_size", 1)
    if isinstance(data, Iterator):
        if epochs is not None or batch_size is not None:
            raise ValueError(
                "with an iterator of batches, give steps (or nothing: run until "
                "it is exhausted), not epochs or batch_size"
            )
        return steps, None, data
    n = num_examples(data)
    if batch_size is not None and batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the data ({n} examples)")
    if epochs is not None:
        epochs = _check_int(epochs, "epochs", 1)
        if key is None:
            raise ValueError(
                "key is required with epochs: each epoch shuffles the data, e.g. "
                "key=jax.random.PRNGKey(0)"
            )
        sampler = EpochBatches(n, batch_size or n, drop_last)
        return epochs * sampler.steps_per_epoch, sampler, None
    if steps is None:
        raise ValueError("give steps= (optimizer steps) or epochs= (passes over the data)")
    if batch_size is not None and batch_size < n and key is None:
        raise ValueError(
            "key is required when batch_size is set: minibatches are drawn at "
            "random, e.g. key=jax.random.PRNGKey(0)"
        )
    return steps, RandomBatches(n, batch_size or n), None


def _boundaries(start: int, total: int | None, intervals: Sequence[int | None]) -> Iterator[int]:
    """Steps after ``start`` where a chunk ends: multiples of each interval, and ``total``."""
    t = start
    while total is None or t < total:
        ends = [(t // i + 1) * i for i in intervals if i]
        nxt = min([*ends, total] if total is not None else ends)
        yield nxt
        t = nxt


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def hyperparameter_values(optimizer: Any) -> dict[str, float]:
    """The optimizer's scalar float leaves by path (what a checkpoint records)."""
    return {
        keystr(path): float(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(optimizer)[0]
        if np.ndim(leaf) == 0 and not isinstance(leaf, jax.core.Tracer)
    }


# --- fit ----------------------------------------------------------------------------------


def fit(
    loss_fn: Callable[..., Any],
    params: PyTree,
    optimizer: Any,
    data: Any,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    drop_last: bool = True,
    key: jax.Array | None = None,
    has_aux: bool = False,
    eval_data: PyTree | None = None,
    eval_every: int | None = None,
    metrics: Sequence[str] | Mapping[str, Any] | None = None,
    early_stopping: EarlyStopping | None = None,
    progress: bool | None = None,
    chunk_size: int | None = None,
    checkpoint_dir: Any = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    accumulate: int = 1,
    skip_nonfinite: bool = False,
    max_consecutive_skips: int = 10,
    flatten: bool | str = "auto",
    mesh: Any = None,
    data_axis: str = "data",
    sharding: str = "replicated",
) -> FitResult:
    """Train ``params`` on ``data`` with ``optimizer`` (see the module docstring).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (``-> (scalar, aux)`` with ``has_aux``).
      params: any pytree; floating arrays are trained, other leaves are passed through.
      optimizer: a gradient transformation from ``optim`` or ``optax``.
      data: a pytree of arrays sharing a leading example axis (``batch`` has its structure),
        or an iterator of batches.
      steps: optimizer steps to take. Or ``epochs``: passes over the data, reshuffled each.
      batch_size: examples per step; ``None`` uses all the data every step.
      drop_last: with ``epochs``, leave out (True) or keep (False) the last partial batch.
      key: PRNG key for shuffling and minibatch draws.
      has_aux: whether ``loss_fn`` returns ``(loss, aux)``; ``aux`` is stacked per step.
      eval_data: data to evaluate ``metrics`` on, every ``eval_every`` steps and at the end.
      metrics: built-in names (``"loss"``, ``"accuracy"`` for ``params(x)`` logits against
        integer labels ``y`` of ``eval_data = (x, y)``) and/or a dict ``{name: fn(params,
        batch) -> scalar}``; default ``["loss"]``.
      early_stopping: an ``EarlyStopping`` on one of the metrics.
      progress: a tqdm progress bar, updated between chunks; default on when interactive.
      chunk_size: at most this many steps per compiled chunk.
      checkpoint_dir, checkpoint_every: save params, optimizer state, step, key and history
        there every ``checkpoint_every`` steps and at the end (orbax-checkpoint).
      resume: continue from the latest complete checkpoint in ``checkpoint_dir`` if there is
        one (bit-identical to an uninterrupted run); warns about changed hyperparameters. A
        corrupted checkpoint is skipped with a warning naming its file (and written again when
        the run gets there); ``CorruptCheckpointError`` if every checkpoint is corrupted.
      accumulate: split each batch into this many microbatches and average their gradients.
      skip_nonfinite: skip steps whose loss or gradients are not finite (params and state
        untouched); raise ``FloatingPointError`` after ``max_consecutive_skips`` in a row.
      flatten: let the optimizer work on one flat buffer per dtype instead of one array per
        leaf (same numbers, cost independent of the number of leaves; see ``optim._flat``).
        ``"auto"`` does so for elementwise optimizers on models of ``FLATTEN_MIN_LEAVES`` or
        more trainable leaves on an accelerator (on CPU it does not pay); ``opt_state`` is
        returned in the parameters' structure either way. Not used with ``mesh``.
      mesh, data_axis, sharding: data-parallel training on a ``jax.sharding.Mesh``: batches
        split over ``data_axis``; ``sharding`` is ``"replicated"`` (parameters and state on
        every device), ``"zero1"`` (state sharded) or ``"fsdp"`` (parameters and state
        sharded); see ``optim._sharding``.

    >>> import jax.numpy as jnp, optim
    >>> result = optim.fit(lambda w, b: jnp.mean((b - w) ** 2), jnp.zeros(()), optim.sgd(0.1),
    ...                    jnp.ones(8), steps=50)
    >>> round(float(result.params), 4)
    1.0
    """
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be a function loss_fn(params, batch) -> scalar loss, got "
            f"{type(loss_fn).__name__} {loss_fn!r}"
        )
    optimizer = as_transformation(optimizer, "optimizer")
    check_params(params)
    has_aux, drop_last = check_flag(has_aux, "has_aux"), check_flag(drop_last, "drop_last")
    resume = check_flag(resume, "resume")
    skip_nonfinite = check_flag(skip_nonfinite, "skip_nonfinite")
    if progress is not None:
        progress = check_flag(progress, "progress")
    if key is not None:
        _check_key(key)
    total, sampler, iterator = _plan(data, steps, epochs, batch_size, drop_last, key)
    if chunk_size is not None:
        chunk_size = _check_int(chunk_size, "chunk_size", 1)
    accumulate = _check_int(accumulate, "accumulate", 1)
    max_consecutive_skips = _check_int(max_consecutive_skips, "max_consecutive_skips", 1)
    if eval_every is not None:
        eval_every = _check_int(eval_every, "eval_every", 1)
        if eval_data is None:
            raise ValueError("eval_every needs eval_data: the data to evaluate metrics on")
    if metrics is not None and eval_data is None:
        raise ValueError("metrics are computed on eval_data; pass eval_data=")
    metric_fns = (
        _metric_functions(["loss"] if metrics is None else metrics, loss_fn, has_aux)
        if eval_data is not None
        else ()
    )
    if early_stopping is not None:
        _check_early_stopping(early_stopping, metric_fns, eval_every)
    if checkpoint_every is not None:
        checkpoint_every = _check_int(checkpoint_every, "checkpoint_every", 1)
        if checkpoint_dir is None:
            raise ValueError("checkpoint_every needs checkpoint_dir")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    traced = _is_traced(params, optimizer, None if iterator else data, key, eval_data)
    if traced and (checkpoint_dir is not None or early_stopping is not None or progress):
        raise ValueError(
            "fit is being traced (inside jit, vmap or grad): checkpoints, early "
            "stopping and the progress bar need the host between chunks; run fit "
            "outside the transformation for those"
        )
    show_progress = (not traced) and (_interactive() if progress is None else progress)

    plan = make_plan(mesh, data_axis, sharding, _batch_size_of(sampler))
    if plan is not None and sampler is not None and getattr(sampler, "partial_size", 0):
        make_plan(mesh, data_axis, sharding, sampler.partial_size)
    split = split_arrays(params)
    layout = _layout(
        False if plan is not None and flatten == "auto" else flatten, optimizer, split.arrays
    )
    if plan is not None and layout is not None:
        raise ValueError(
            "flatten=True cannot be combined with mesh=: flat buffers are not "
            "sharded; use flatten='auto' or False"
        )
    line_search = keeps_line_search_record(
        jax.eval_shape(lambda arrays: optimizer.init(split.combine(arrays)), split.arrays)
    )
    if line_search and accumulate > 1:
        raise ValueError(
            f"accumulate={accumulate} cannot be used with a line-search optimizer (lbfgs): its "
            "line search evaluates the loss and gradient on the whole batch at trial points, "
            "which holds the activations accumulation avoids; use accumulate=1 or a smaller "
            "batch_size"
        )
    if plan is not None:
        data = data if iterator is not None else plan.place_data(data)
        eval_data = None if eval_data is None else plan.place_data(eval_data)
    program = Program(
        loss_fn=loss_fn,
        treedef=split.treedef,
        constants=split.constants,
        has_aux=has_aux,
        sampler=sampler,
        accumulate=accumulate,
        skip_nonfinite=skip_nonfinite,
        metrics=metric_fns,
        layout=layout,
        plan=plan,
        line_search=line_search,
    )
    run_key = _default_key() if key is None else key
    carry = initial_carry(optimizer, split.arrays, program=program)
    start = 0
    history = _History()
    stopper = _Stopper(early_stopping) if early_stopping is not None else None
    store = None
    if checkpoint_dir is not None:
        store = _CheckpointStore(checkpoint_dir, optimizer, bool(metric_fns), eval_every, total)
        if resume:
            if iterator is not None:
                raise ValueError(
                    "resume needs data as arrays: an iterator of batches cannot "
                    "be rewound to the checkpoint's step"
                )
            carry_shapes = abstract_carry(optimizer, split.arrays, program)
            # data is an argument, not a closure: a tracer cannot index NumPy data
            record = jax.eval_shape(
                lambda c, d: train_step(program, optimizer, d, run_key, c, None)[1],
                carry_shapes,
                data,
            )
            restored = store.restore(
                carry_shapes, run_key, history, stopper, record, [name for name, _ in metric_fns]
            )
            if restored is not None:
                start, carry, run_key = restored

    intervals = [eval_every, checkpoint_every, chunk_size]
    if show_progress and not any(intervals) and total:
        intervals.append(max(1, total // 100))
    if iterator is not None and not any(intervals):
        intervals.append(total or 100)
    bar = _progress_bar(total, start) if show_progress else None
    try:
        for end in _boundaries(start, total, intervals):
            batches = None
            if iterator is not None:
                batches = _next_batches(iterator, end - start)
                if batches is None:
                    if not history.records:
                        raise ValueError("data is an iterator that yielded no batches")
                    break
                end = start + num_examples(batches)
            with_eval = eval_data is not None and (
                end == total or (eval_every is not None and end % eval_every == 0)
            )
            carry, records, values = (run_chunk_undonated if traced else run_chunk)(
                carry,
                optimizer,
                data if iterator is None else None,
                run_key,
                batches,
                eval_data,
                program=program,
                length=end - start,
                with_eval=with_eval,
            )
            history.add(records, end, values)
            if not traced and skip_nonfinite and int(carry.skips) >= max_consecutive_skips:
                raise FloatingPointError(
                    f"{int(carry.skips)} consecutive steps had a non-finite loss or gradient "
                    f"(up to step {end}); params and optimizer state are those before them"
                )
            stop = (
                stopper is not None
                and values is not None
                and stopper.observe(end, values, carry.arrays)
            )
            if store is not None and (
                stop
                or end == total
                or (checkpoint_every is not None and end % checkpoint_every == 0)
            ):
                store.save(end, carry, run_key, history, stopper)
            if bar is not None:
                bar.update(end - start)
                bar.set_postfix(history.postfix(), refresh=False)
            start = end
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()

    arrays, best_step = carry.arrays, None
    if stopper is not None and stopper.spec.restore_best and stopper.best_arrays is not None:
        arrays, best_step = stopper.best_arrays, stopper.best_step
    leaves, opt_state = final_params_and_state(arrays, carry.opt_state, program=program)
    return FitResult(
        params=split.combine(leaves),
        opt_state=opt_state,
        losses=history.concat("loss"),
        aux=history.concat("aux") if has_aux else None,
        skipped=history.concat("skipped"),
        eval_steps=history.eval_steps() if metric_fns else None,
        eval_metrics=history.eval_values() if metric_fns else None,
        best_step=best_step,
    )


FLATTEN_MIN_LEAVES = 16


def _batch_size_of(sampler: Any) -> int | None:
    return None if sampler is None else sampler.batch_size


@functools.cache
def _default_key() -> jax.Array:
    """The key of runs that need none (full batch): made once, not on every call (and
    concretely, even when first asked for inside a trace)."""
    with jax.ensure_compile_time_eval():
        return jax.random.PRNGKey(0)


def _layout(flatten: bool | str, optimizer: Any, arrays: list[Any]) -> FlatLayout | None:
    if flatten not in (True, False, "auto"):
        raise ValueError(f"flatten must be True, False or 'auto', got {flatten!r}")
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
        return FlatLayout.of(arrays)
    return None


def _check_early_stopping(spec: Any, metric_fns: tuple, eval_every: int | None) -> None:
    if not isinstance(spec, EarlyStopping):
        raise TypeError(f"early_stopping must be an optim.EarlyStopping, got {spec!r}")
    if eval_every is None:
        raise ValueError("early_stopping needs eval_data and eval_every")
    names = [name for name, _ in metric_fns]
    if spec.metric not in names:
        raise ValueError(
            f"early_stopping.metric={spec.metric!r} is not among the metrics "
            f"computed ({', '.join(names)})"
        )
    if spec.mode not in ("min", "max"):
        raise ValueError(f"early_stopping.mode must be 'min' or 'max', got {spec.mode!r}")
    _check_int(spec.patience, "early_stopping.patience", 1)


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


def _progress_bar(total: int | None, start: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)


class _History:
    """Per-chunk records and evaluations, concatenated at the end."""

    def __init__(self) -> None:
        self.records: list[StepRecord] = []
        self.evals: list[tuple[int, dict[str, jax.Array]]] = []

    def add(self, records: StepRecord, end: int, values: dict | None) -> None:
        self.records.append(records)
        if values is not None:
            self.evals.append((end, values))

    def concat_records(self) -> StepRecord | None:
        if not self.records:
            return None
        return jax.tree.map(lambda *xs: jnp.concatenate(xs), *self.records)

    def concat(self, field: str) -> Any:
        parts = [getattr(r, field) for r in self.records]
        if len(parts) <= 1:
            return parts[0] if parts else None
        return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)

    def eval_steps(self) -> jax.Array:
        return jnp.asarray([end for end, _ in self.evals], jnp.int32)

    def eval_values(self) -> dict[str, jax.Array]:
        if not self.evals:
            return {}
        return {name: jnp.stack([v[name] for _, v in self.evals]) for name in self.evals[0][1]}

    def postfix(self) -> dict[str, str]:
        out = {"loss": f"{float(self.records[-1].loss[-1]):.4g}"}
        if self.evals:
            out.update({f"eval_{k}": f"{float(v):.4g}" for k, v in self.evals[-1][1].items()})
        return out


class _Stopper:
    """Early-stopping bookkeeping on the host (a copy of the best parameters on device)."""

    def __init__(self, spec: EarlyStopping) -> None:
        self.spec = spec
        self.best = math.inf if spec.mode == "min" else -math.inf
        self.best_step: int | None = None
        self.best_arrays: list[Any] | None = None
        self.wait = 0

    def observe(self, step: int, values: dict[str, jax.Array], arrays: list[Any]) -> bool:
        value = float(values[self.spec.metric])
        if self.spec.improved(value, self.best):
            self.best, self.best_step, self.wait = value, step, 0
            if self.spec.restore_best:  # a copy: the next chunk donates the carry
                self.best_arrays = jax.tree.map(jnp.copy, arrays)
            return False
        self.wait += 1
        return self.wait >= self.spec.patience

    def state(self, arrays: list[Any]) -> dict[str, Any]:
        """What a checkpoint keeps (the current arrays stand in until a best exists)."""
        return {
            "best": jnp.float32(self.best),
            "best_step": jnp.int32(-1 if self.best_step is None else self.best_step),
            "wait": jnp.int32(self.wait),
            "best_arrays": arrays if self.best_arrays is None else self.best_arrays,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_step = None if int(state["best_step"]) < 0 else int(state["best_step"])
        self.wait = int(state["wait"])
        self.best_arrays = state["best_arrays"] if self.best_step is not None else None


class _CheckpointStore:
    """fit's checkpoints: carry, key, history and early-stopping state, plus metadata.

    What is saved at step ``s`` has history arrays of ``s`` rows; ``restore`` rebuilds that
    shape from the program (``jax.eval_shape`` of one step) before reading it back.
    """

    def __init__(
        self,
        directory: Any,
        optimizer: Any,
        evaluates: bool,
        eval_every: int | None,
        total: int | None,
    ) -> None:
        self.directory = directory
        self.hyperparameters = hyperparameter_values(optimizer)
        self.evaluates = evaluates
        self.eval_every = eval_every
        self.total = total
        self.corrupted: set[int] = set()  # steps restore skipped; save writes them anew

    @staticmethod
    def _tree(carry: Carry, key: Any, history: _History, stopper: _Stopper | None) -> dict:
        tree = {
            "carry": carry,
            "key": key,
            "history": history.concat_records(),
            "eval_steps": history.eval_steps(),
            "eval": history.eval_values(),
        }
        if stopper is not None:
            tree["early_stopping"] = stopper.state(carry.arrays)
        return tree

    def save(
        self, step: int, carry: Carry, key: Any, history: _History, stopper: _Stopper | None
    ) -> None:
        from optim import checkpoint

        if step in self.corrupted:  # recomputed: it replaces the corrupted checkpoint
            checkpoint._discard(Path(self.directory).absolute() / f"step_{step}")
            self.corrupted.remove(step)
        elif checkpoint.latest_step(self.directory) == step:  # resumed at the end: nothing new
            return
        metadata = {"hyperparameters": self.hyperparameters, "total_steps": self.total}
        try:
            checkpoint.save(
                self.directory, step, self._tree(carry, key, history, stopper), metadata=metadata
            )
        except OSError as error:
            latest = checkpoint.latest_step(self.directory)
            kept = (
                "no earlier checkpoint"
                if latest is None
                else "the earlier checkpoints are "
                f"intact: fit(..., resume=True) continues from step {latest}"
            )
            raise OSError(
                error.errno,
                f"fit could not write the checkpoint of step {step} in "
                f"{Path(self.directory).absolute()} ({error.strerror or error}); {kept}",
            ) from error

    def _evals_up_to(self, step: int) -> int:
        if not self.evaluates:
            return 0
        regular = step // self.eval_every if self.eval_every else 0
        final = step == self.total and not (self.eval_every and step % self.eval_every == 0)
        return regular + int(final)

    def restore(
        self,
        carry: Carry,
        key: Any,
        history: _History,
        stopper: _Stopper | None,
        record: StepRecord,
        metric_names: Sequence[str],
    ):
        """Load the latest complete, intact checkpoint into ``history``/``stopper`` and return
        ``(step, carry, key)``; None when the directory holds no checkpoint yet. ``carry`` and
        ``record`` (one step's) are shapes. A corrupted checkpoint is skipped, with a warning
        naming its file, for the one before it; CorruptCheckpointError if all are corrupted."""
        from optim import checkpoint

        errors = []
        for step in reversed(checkpoint.all_steps(self.directory)):
            template = self._template(step, carry, key, stopper, record, metric_names)
            try:
                _, tree, metadata = checkpoint.restore(self.directory, template, step=step)
            except checkpoint.CorruptCheckpointError as error:
                warnings.warn(f"skipping a corrupted checkpoint: {error}", stacklevel=3)
                self.corrupted.add(step)
                errors.append(str(error))
                continue
            _warn_changed(metadata.get("hyperparameters", {}), self.hyperparameters)
            history.records.append(StepRecord(*tree["history"]))
            history.evals.extend(
                (int(s), {name: values[i] for name, values in tree["eval"].items()})
                for i, s in enumerate(np.asarray(tree["eval_steps"]))
            )
            if stopper is not None:
                stopper.load(tree["early_stopping"])
            return step, tree["carry"], tree["key"]
        if errors:
            raise checkpoint.CorruptCheckpointError(
                f"every checkpoint in {Path(self.directory).absolute()} is corrupted (move them "
                "away to train from the start): " + "; ".join(errors)
            )
        return None

    def _template(
        self,
        step: int,
        carry: Carry,
        key: Any,
        stopper: _Stopper | None,
        record: StepRecord,
        metric_names: Sequence[str],
    ) -> dict:
        """The shapes saved at ``step``: history arrays of ``step`` rows, one row per eval."""
        evals = self._evals_up_to(step)

        def rows(n: int, like: Any) -> Any:
            return jax.tree.map(lambda s: jax.ShapeDtypeStruct((n, *s.shape), s.dtype), like)

        template = {
            "carry": carry,
            "key": key,
            "history": rows(step, record),
            "eval_steps": jax.ShapeDtypeStruct((evals,), jnp.int32),
            "eval": {name: jax.ShapeDtypeStruct((evals,), jnp.float32) for name in metric_names},
        }
        if stopper is not None:
            template["early_stopping"] = stopper.state(carry.arrays)
        return template


def _warn_changed(saved: dict[str, float], current: dict[str, float]) -> None:
    changes = [
        f"{path}: {saved[path]:g} -> {value:g}"
        for path, value in current.items()
        if path in saved and saved[path] != value
    ]
    if changes:
        warnings.warn(
            "resuming with hyperparameters that differ from the checkpoint's: "
            + "; ".join(changes),
            stacklevel=3,
        )
