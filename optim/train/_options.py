"""``fit``'s options, grouped in small records that check themselves when built.

``fit`` takes its options as keyword arguments and builds these records from them; every rule
that relates two arguments of one group lives in that group's ``__post_init__``, so a bad
combination fails before anything is compiled, with a message naming the arguments. Rules
that relate a group to the data, the parameters or the optimizer are in ``optim.train._plan``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import check_flag, check_int
from optim._keywords import suggest_keywords
from optim._tree import PyTree, keystr, leaves_with_paths
from optim.train._batches import EpochBatches, RandomBatches
from optim.train._sharding import ShardingPlan, make_plan

R = TypeVar("R")


def _set(record: Any, **values: Any) -> None:
    """Store normalised values on a frozen record (from its ``__post_init__``)."""
    for name, value in values.items():
        object.__setattr__(record, name, value)


@functools.lru_cache(maxsize=256, typed=True)
def _shared(cls: type, *args: Any) -> Any:
    return cls(*args)


def shared(cls: type[R], *args: Any) -> R:
    """``cls(*args)``, built and checked once for arguments of equal values and types, then
    shared by every call with them (records are frozen); built each time when an argument
    cannot be hashed. A repeated ``fit`` call pays no checks for options it checked before."""
    try:
        return _shared(cls, *args)
    except TypeError:  # an argument that cannot be hashed (or the record's own TypeError)
        return cls(*args)


def _optional_int(value: Any, name: str, low: int) -> int | None:
    return None if value is None else check_int(value, name, low=low)


def check_key(key: Any) -> None:
    """``key`` is one PRNG key: typed (``jax.random.key``) or raw ``uint32`` data (``PRNGKey``).

    Raises ``ValueError`` for a key array of several keys, ``TypeError`` for anything else.
    """
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


@suggest_keywords
def num_examples(data: PyTree) -> int:
    """The shared leading size of every array in ``data``; ``ValueError`` naming any other.

    Args:
      data: a pytree of arrays (``None`` leaves are ignored), each with a leading example
        axis.

    Returns:
      The number of examples, an ``int``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.num_examples({"x": jnp.zeros((5, 3)), "y": jnp.zeros(5)})
      5
    """
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


def check_not_a_class(tree: Any, name: str) -> None:
    """``TypeError`` when ``tree`` (or a leaf of it) is a class where an instance belongs:
    ``models.MLP`` passed for ``models.MLP.init(key, sizes)``."""
    for path, leaf in leaves_with_paths(tree):
        if isinstance(leaf, type):
            where = name + (keystr(path) if path else "")
            raise TypeError(
                f"{where} is the class {leaf.__qualname__}, not an instance of it: "
                f"build one first, e.g. {_how_to_build(leaf)}"
            )


def _how_to_build(cls: type) -> str:
    """``package.Class.init(key, sizes)`` (its required arguments) or ``package.Class(...)``."""
    package = cls.__module__.partition(".")[0]
    path = f"{package}.{cls.__qualname__}"
    if getattr(importlib.import_module(package), cls.__qualname__, None) is not cls:
        path = f"{cls.__module__}.{cls.__qualname__}"
    init = getattr(cls, "init", None)
    if not isinstance(inspect.getattr_static(cls, "init", None), classmethod):
        return f"{path}(...)"
    required = [
        p.name
        for p in inspect.signature(init).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return f"{path}.init({', '.join(required)})"


@dataclasses.dataclass(frozen=True)
class DataFree:
    """A loss of the parameters alone, ``loss_fn(params)``, called as ``fit`` calls a loss,
    ``(params, batch)``, for ``data=None``. Equal for equal ``loss_fn`` (a ``jit`` static
    argument), so that repeated fits of one objective reuse their compiled step."""

    loss_fn: Callable[..., Any]

    def __call__(self, params: PyTree, batch: Any) -> Any:
        del batch  # the one empty example of NO_DATA
        return self.loss_fn(params)


# What fit trains a data-free objective on: one example with no features, the whole batch
# of every step (each step is full-batch: there is nothing to sample).
NO_DATA = np.zeros((1, 0), np.float32)


def without_data(loss_fn: Callable[..., Any], batching: Batching, accumulate: int) -> DataFree:
    """``loss_fn(params)`` for ``fit(..., data=None)``, checked against the options that need
    data."""
    if batching.epochs is not None or batching.batch_size is not None or accumulate != 1:
        raise ValueError(
            "data=None trains loss_fn(params), an objective without data: give steps=, not "
            "epochs, batch_size or accumulate (there are no examples to split)"
        )
    try:
        inspect.signature(loss_fn).bind(None)
    except TypeError:
        raise TypeError(
            f"data=None calls loss_fn(params) without a batch, but loss_fn takes "
            f"{inspect.signature(loss_fn)}: pass the data, or a loss_fn of the parameters alone"
        ) from None
    except ValueError:  # no signature to read (a builtin): the call will tell
        pass
    return DataFree(loss_fn)


# --- batching -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Batching:
    """How many steps, and which examples each one trains on (``steps``/``epochs``,
    ``batch_size``, ``drop_last``, ``key``); see ``optim.train._batches``.

    Attributes:
      steps: ``fit``'s ``steps``: optimizer steps, an int >= 1, or None (with ``epochs``, or
        an iterator run until exhausted).
      epochs: ``fit``'s ``epochs``: passes over the data (needs ``key``), or None.
      batch_size: examples per step, an int >= 1, or None for the whole data set.
      drop_last: with ``epochs``, leave out the last partial batch of each epoch.
      key: the PRNG key of shuffling and minibatch draws, or None.
    """

    steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    drop_last: bool = True
    key: Any = None

    def __post_init__(self) -> None:
        _set(self, drop_last=check_flag(self.drop_last, "drop_last"))
        if self.key is not None:
            check_key(self.key)
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give steps or epochs, not both")
        _set(
            self,
            steps=_optional_int(self.steps, "steps", 1),
            batch_size=_optional_int(self.batch_size, "batch_size", 1),
        )

    def plan(self, data: Any) -> tuple[int | None, Any, Iterator | None]:
        """``(total steps, sampler, iterator)`` for ``data``: arrays are sampled on device,
        an iterator's batches are fed in chunks."""
        steps, batch_size = self.steps, self.batch_size
        if isinstance(data, Iterator):
            if self.epochs is not None or batch_size is not None:
                raise ValueError(
                    "with an iterator of batches, give steps (or nothing: run until "
                    "it is exhausted), not epochs or batch_size"
                )
            return steps, None, data
        n = num_examples(data)
        if batch_size is not None and batch_size > n:
            raise ValueError(f"batch_size={batch_size} is larger than the data ({n} examples)")
        if self.epochs is not None:
            epochs = check_int(self.epochs, "epochs", low=1)
            if self.key is None:
                raise ValueError(
                    "key is required with epochs: each epoch shuffles the data, e.g. "
                    "key=jax.random.PRNGKey(0)"
                )
            sampler = EpochBatches(n, batch_size or n, self.drop_last)
            return epochs * sampler.steps_per_epoch, sampler, None
        if steps is None:
            raise ValueError("give steps= (optimizer steps) or epochs= (passes over the data)")
        if batch_size is not None and batch_size < n and self.key is None:
            raise ValueError(
                "key is required when batch_size is set: minibatches are drawn at "
                "random, e.g. key=jax.random.PRNGKey(0)"
            )
        return steps, RandomBatches(n, batch_size or n), None


# --- the step -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """What each step computes besides the update: ``loss_fn``'s aux, gradient accumulation
    over microbatches, skipping non-finite steps.

    Attributes:
      has_aux: whether ``loss_fn`` returns ``(loss, aux)``.
      accumulate: microbatches per batch whose gradients are averaged, an int >= 1.
      skip_nonfinite: skip steps whose loss or gradients are not finite.
      max_consecutive_skips: skipped steps in a row before ``FloatingPointError``, an int
        >= 1.
    """

    has_aux: bool = False
    accumulate: int = 1
    skip_nonfinite: bool = False
    max_consecutive_skips: int = 10

    def __post_init__(self) -> None:
        _set(
            self,
            has_aux=check_flag(self.has_aux, "has_aux"),
            skip_nonfinite=check_flag(self.skip_nonfinite, "skip_nonfinite"),
            accumulate=check_int(self.accumulate, "accumulate", low=1),
            max_consecutive_skips=check_int(
                self.max_consecutive_skips, "max_consecutive_skips", low=1
            ),
        )


# --- evaluation and early stopping --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Stop when ``metric`` on ``eval_data`` has not improved by ``min_delta`` for
    ``patience`` evaluations; with ``restore_best`` return the best parameters seen.

    Pass it to :func:`optim.fit` as ``early_stopping=`` together with ``eval_data`` and
    ``eval_every``.

    Args:
      metric: the name of one of ``fit``'s ``metrics`` to watch (default ``"loss"``).
      patience: evaluations without improvement before stopping, an int >= 1.
      mode: ``"min"`` (lower is better) or ``"max"`` (higher is better).
      min_delta: the least change that counts as an improvement (a float >= 0).
      restore_best: return the parameters of the best evaluation (``result.best_step`` says
        which) instead of the last ones.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> stop = optim.EarlyStopping(metric="loss", patience=2)
      >>> result = optim.fit(lambda w, b: jnp.mean((b - w) ** 2), jnp.zeros(()),
      ...                    optim.sgd(0.5), jnp.ones(4), steps=100, eval_data=jnp.ones(4),
      ...                    eval_every=5, early_stopping=stop)
      >>> int(result.eval_steps[-1]) < 100
      True
    """

    metric: str = "loss"
    patience: int = 5
    mode: str = "min"
    min_delta: float = 0.0
    restore_best: bool = True

    def improved(self, value: float, best: float) -> bool:
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta


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


def _metric_items(metrics: Any) -> list[tuple[str, Any]]:
    """``(name, built-in name or function)`` pairs, each checked."""
    if isinstance(metrics, Mapping):
        items = list(metrics.items())
    elif isinstance(metrics, str):
        raise TypeError(
            f"metrics must be a sequence of names or a dict, got the string "
            f"{metrics!r}; write [{metrics!r}]"
        )
    else:
        items = [(name, name) for name in metrics]
    for name, fn in items:
        if isinstance(fn, str) and fn not in BUILTIN_METRICS:
            raise ValueError(
                f"unknown metric {fn!r}: built-in metrics are "
                f"{', '.join(BUILTIN_METRICS)}; pass others as a dict "
                "{name: fn(params, batch) -> scalar}"
            )
        if not isinstance(fn, str) and not callable(fn):
            raise TypeError(f"metrics[{name!r}] must be callable, got {type(fn).__name__}")
    return [(str(name), fn) for name, fn in items]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """``metrics`` on ``data`` every ``every`` steps and at the end, and early stopping on one
    of them. ``data=None``: no evaluation.

    Attributes:
      data: ``fit``'s ``eval_data``, or None.
      every: ``fit``'s ``eval_every``: steps between evaluations (an int >= 1), or None: at
        the end only.
      metrics: ``fit``'s ``metrics``: built-in names and/or ``{name: fn(params, batch)}``;
        None means ``["loss"]``.
      early_stopping: an :class:`optim.EarlyStopping` on one of the metrics, or None.
    """

    data: Any = None
    every: int | None = None
    metrics: Any = None
    early_stopping: EarlyStopping | None = None

    def __post_init__(self) -> None:
        if self.every is not None:
            _set(self, every=check_int(self.every, "eval_every", low=1))
            if self.data is None:
                raise ValueError("eval_every needs eval_data: the data to evaluate metrics on")
        if self.metrics is not None and self.data is None:
            raise ValueError("metrics are computed on eval_data; pass eval_data=")
        items = () if self.data is None else _metric_items(self.metrics or ["loss"])
        if self.early_stopping is not None:
            _check_early_stopping(self.early_stopping, [name for name, _ in items], self.every)

    def metric_functions(self, loss_fn: Callable, has_aux: bool) -> tuple:
        """``((name, fn(params, batch) -> scalar), ...)``; empty without evaluation."""
        if self.data is None:
            return ()
        builtin = {"loss": _LossMetric(loss_fn, has_aux), "accuracy": _accuracy}
        return tuple(
            (name, builtin[fn] if isinstance(fn, str) else fn)
            for name, fn in _metric_items(self.metrics or ["loss"])
        )

    def due(self, end: int, total: int | None) -> bool:
        """Whether the chunk ending at step ``end`` ends with an evaluation."""
        return self.data is not None and (
            end == total or (self.every is not None and end % self.every == 0)
        )


def _check_early_stopping(spec: Any, names: list[str], eval_every: int | None) -> None:
    if not isinstance(spec, EarlyStopping):
        raise TypeError(f"early_stopping must be an optim.EarlyStopping, got {spec!r}")
    if eval_every is None:
        raise ValueError("early_stopping needs eval_data and eval_every")
    if spec.metric not in names:
        raise ValueError(
            f"early_stopping.metric={spec.metric!r} is not among the metrics "
            f"computed ({', '.join(names)})"
        )
    if spec.mode not in ("min", "max"):
        raise ValueError(f"early_stopping.mode must be 'min' or 'max', got {spec.mode!r}")
    check_int(spec.patience, "early_stopping.patience", low=1)


# --- checkpoints --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """Save to ``directory`` every ``every`` steps and at the end; with ``resume`` continue
    from its latest intact checkpoint. ``directory=None``: no checkpoints.

    Attributes:
      directory: ``fit``'s ``checkpoint_dir``, or None.
      every: ``fit``'s ``checkpoint_every`` (an int >= 1), or None: at the end only.
      resume: continue from the latest intact checkpoint in ``directory``.
    """

    directory: Any = None
    every: int | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        _set(self, resume=check_flag(self.resume, "resume"))
        if self.every is not None:
            _set(self, every=check_int(self.every, "checkpoint_every", low=1))
            if self.directory is None:
                raise ValueError("checkpoint_every needs checkpoint_dir")
        if self.resume and self.directory is None:
            raise ValueError("resume=True needs checkpoint_dir")

    def due(self, end: int, total: int | None, stopping: bool) -> bool:
        """Whether the chunk ending at step ``end`` ends with a save."""
        return self.directory is not None and (
            stopping or end == total or (self.every is not None and end % self.every == 0)
        )


# --- placement: flat buffers and meshes ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the arrays live: one flat buffer per dtype or one array per leaf (``flatten``),
    on one device or laid out on a mesh (``mesh``, ``data_axis``, ``sharding``).

    Attributes:
      flatten: True, False or ``"auto"``, as ``fit``'s ``flatten``.
      mesh: a ``jax.sharding.Mesh``, or None: one device.
      data_axis: the mesh axis batches are split over.
      sharding: ``"replicated"``, ``"zero1"`` or ``"fsdp"``.
      plan: the :class:`~optim.train._sharding.ShardingPlan` made from ``mesh``,
        ``data_axis`` and ``sharding`` (None without ``mesh``); not an argument.
    """

    flatten: bool | str = "auto"
    mesh: Any = None
    data_axis: str = "data"
    sharding: str = "replicated"
    plan: ShardingPlan | None = dataclasses.field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.flatten not in (True, False, "auto"):
            raise ValueError(f"flatten must be True, False or 'auto', got {self.flatten!r}")
        _set(self, plan=make_plan(self.mesh, self.data_axis, self.sharding))
        if self.plan is not None and self.flatten is True:
            raise ValueError(
                "flatten=True cannot be combined with mesh=: flat buffers are not "
                "sharded; use flatten='auto' or False"
            )


# --- the host between chunks --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Chunking:
    """The host's part: at most ``chunk_size`` steps per compiled chunk, and a progress bar
    (``progress=None``: shown when a notebook or terminal is watching).

    Attributes:
      chunk_size: at most this many steps per compiled chunk (an int >= 1), or None.
      progress: show a progress bar (True/False), or None: when a notebook or terminal is
        watching.
    """

    chunk_size: int | None = None
    progress: bool | None = None

    def __post_init__(self) -> None:
        _set(self, chunk_size=_optional_int(self.chunk_size, "chunk_size", 1))
        if self.progress is not None:
            _set(self, progress=check_flag(self.progress, "progress"))
