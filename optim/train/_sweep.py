"""Hyperparameter search: grid sweeps as one vmapped program, and hypergradient descent.

Optimizers here are pytrees whose float hyperparameters are float32 array leaves, so
``make_optimizer(learning_rate=lr)`` works on a traced ``lr`` and a whole grid of training runs
is ``jax.vmap`` of ``optim.fit``: one compiled program whose every operation acts on a batch of
runs at once. ``sweep`` builds that program for a Cartesian grid (and a batch of seeds) and
summarises it; ``hypergradient_descent`` instead follows ``jax.grad`` of a validation loss taken
through the whole of training.
"""

from __future__ import annotations

import difflib
import functools
import html
import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._keywords import suggest_keywords
from optim._tree import PyTree, is_array
from optim._warnings import warn_user
from optim.base import apply_updates
from optim.grad import ArraySplit, split_arrays
from optim.optimizers._adam import adam
from optim.train._fit import fit
from optim.train._options import check_not_a_class, num_examples

__all__ = ["HypergradientResult", "SweepResult", "hypergradient_descent", "sweep"]


class SweepResult(NamedTuple):
    """What ``sweep`` returns: stacked results of every run, and the best grid point.

    ``P`` is the number of grid points, ``S`` the number of seeds, ``T`` the number of steps; the
    seed axis is there only when ``sweep`` was given ``seeds``. Points are in the order of
    ``itertools.product(*grid.values())`` (the last name varies fastest), so
    ``x.reshape(len(values_1), len(values_2), ...)`` lays any per-point array out on the grid.

    Attributes:
      grid: name -> float32 array ``(P,)``: the hyperparameters of each point.
      params: the trained parameters, every array with leading axes ``(P, [S,])``.
      losses: ``(P, [S,] T)``: the training loss before each step, as ``fit`` records it.
      final_loss: ``(P, [S])``: ``loss_fn`` of the trained parameters on the whole of ``data``.
      eval: ``(P, [S])``: ``eval_fn(trained params, eval_data)``; ``None`` without ``eval_fn``.
      score: ``(P,)``: what the best point is chosen by, ``eval`` (else ``final_loss``) averaged
        over seeds; NaN or infinite where any seed's run was.
      best: name -> value (as given in ``grid``) of the point with the lowest finite score
        (highest with ``mode="max"``); ``None`` when no score is finite.
      best_index: the best point's index along ``P``; ``None`` when no score is finite.
    """

    grid: dict[str, jax.Array]
    params: PyTree
    losses: jax.Array
    final_loss: jax.Array
    eval: jax.Array | None
    score: jax.Array
    best: dict[str, float] | None
    best_index: int | None

    def table(self) -> str:
        """A text table, one row per point: hyperparameters, final loss and eval, best marked.

        With seeds a cell reads ``mean ± std`` over the seeds. A value that is NaN or infinite
        (a diverging run) reads ``non-finite``, with the number of such seeds when there are
        seeds; such a point is never the best. The best row starts with ``*``.
        """
        header, rows = self._cells()
        widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in [header, *rows]
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join([*lines, self._caption()])

    def _repr_html_(self) -> str:
        """The ``table()`` as HTML for Jupyter, the best row in bold."""
        header, rows = self._cells()
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
        bold = ' style="font-weight:bold"'
        body = "".join(
            f"<tr{bold if i == self.best_index else ''}>"
            + "".join(f"<td>{html.escape(cell)}</td>" for cell in row)
            + "</tr>"
            for i, row in enumerate(rows)
        )
        caption = html.escape(self._caption())
        return (
            f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    @property
    def num_seeds(self) -> int | None:
        """The length of the seed axis, ``None`` when the sweep had no ``seeds``."""
        return self.losses.shape[1] if self.losses.ndim == 3 else None

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        """The header and rows shared by ``table`` and ``_repr_html_``."""
        names = list(self.grid)
        columns = {"final loss": np.asarray(self.final_loss)}
        if self.eval is not None:
            columns["eval"] = np.asarray(self.eval)
        if self.num_seeds is not None:
            columns = {f"{k} (mean ± std)": v for k, v in columns.items()}
        header = ["", *names, *columns]
        grid = {name: np.asarray(values) for name, values in self.grid.items()}
        rows = [
            [
                "*" if i == self.best_index else "",
                *(f"{grid[name][i]:.4g}" for name in names),
                *(_format_runs(values[i]) for values in columns.values()),
            ]
            for i in range(len(grid[names[0]]))
        ]
        return header, rows

    def _caption(self) -> str:
        by = "final training loss" if self.eval is None else "eval"
        seeds = "" if self.num_seeds is None else f", mean over {self.num_seeds} seeds"
        if self.best is None:
            return f"No point has a finite {by}{seeds}: each has a run that diverged."
        return f"* best by {by}{seeds}: " + ", ".join(f"{k}={v:.4g}" for k, v in self.best.items())


def _format_runs(values: np.ndarray) -> str:
    """One cell: a value, or ``mean ± std`` over a seed axis; ``non-finite`` for NaN/inf."""
    finite = np.isfinite(values)
    if values.ndim == 0:
        return f"{values:.4g}" if finite else "non-finite"
    if not finite.all():
        return f"non-finite ({np.sum(~finite)}/{values.size} seeds)"
    return f"{np.mean(values):.4g} ± {np.std(values):.2g}"


@suggest_keywords
def sweep(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree | Callable[[jax.Array], PyTree],
    make_optimizer: Callable[..., Any],
    data: PyTree,
    *,
    grid: Mapping[str, Sequence[float]],
    seeds: int | Sequence[int] | None = None,
    steps: int,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    eval_fn: Callable[[PyTree, PyTree], jax.Array] | None = None,
    eval_data: PyTree | None = None,
    mode: str = "min",
) -> SweepResult:
    """Train every point of a hyperparameter grid (and every seed) with ``fit``, in one program.

    Each point of the Cartesian product of ``grid`` builds its optimizer as
    ``make_optimizer(**point)`` and trains with ``fit(loss_fn, params, optimizer, data,
    steps=steps, batch_size=batch_size, key=run_key)``. All points, and all seeds, run as one
    jitted ``jax.vmap`` of ``fit`` (a nested ``vmap`` over seeds), so the sweep costs about
    one run's dispatch and compile whatever its size; a later call with the same functions,
    grid size and shapes reuses the compiled program.

    Seeds: without ``seeds`` there is no seed axis and ``run_key = key`` (the sweep then equals
    separate ``fit`` calls). With ``seeds`` (``n`` means ``range(n)``), seed ``s`` runs with
    ``run_key = jax.random.PRNGKey(s)``, or ``jax.random.fold_in(key, s)`` when ``key`` is
    given. When ``params`` is a function ``key -> params`` (callable, with no array leaves: a
    model instance is a pytree, not an initialiser), each run initialises its own parameters:
    ``init_key, run_key = jax.random.split(run_key)``, ``params = params(init_key)``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``, as for ``fit``.
      params: initial parameters shared by every run, or a function ``key -> params``.
      make_optimizer: builds a gradient transformation from keyword arguments named as in
        ``grid``, e.g. ``lambda learning_rate, weight_decay: optim.adamw(learning_rate,
        weight_decay=weight_decay)``, or ``optim.adamw`` itself.
      data: training data, as for ``fit`` (``None``: ``loss_fn(params)`` has no data).
      grid: hyperparameter name -> non-empty sequence of real numbers; the sweep trains their
        Cartesian product (passed to ``make_optimizer`` as float32 scalars).
      seeds: ``None``, a number of seeds, or a sequence of integer seeds.
      steps: optimizer steps per run.
      batch_size: examples per step (``None``: full batch), as for ``fit``.
      key: PRNG key; required with ``batch_size`` (unless ``seeds`` is given) or when
        ``params`` is a function and ``seeds`` is not given.
      eval_fn: ``eval_fn(trained_params, eval_data) -> scalar`` (a validation loss or a
        metric); when given, the best point is chosen by it. Needs ``eval_data``.
      eval_data: the data passed to ``eval_fn``.
      mode: ``"min"`` or ``"max"``: whether the best point has the lowest or highest score.
        ``"max"`` needs ``eval_fn`` (the training loss is always minimised).

    Returns:
      A ``SweepResult``. Runs that end NaN or infinite (a learning rate that diverges) are
      reported as they are, shown as ``non-finite`` by ``table()``, and never chosen as best;
      if no point is finite, ``best`` is ``None`` and a ``RuntimeWarning`` says so.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> result = optim.sweep(lambda w, b: jnp.mean((b - w) ** 2), jnp.zeros(()), optim.sgd,
      ...                      jnp.ones(8), grid={"learning_rate": [0.01, 0.1, 5.0]}, steps=20)
      >>> result.best, result.losses.shape
      ({'learning_rate': 0.1}, (3, 20))
    """
    axes = _grid_axes(grid)
    _check_accepts(make_optimizer, axes)
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if eval_fn is None and mode == "max":
        raise ValueError("mode='max' needs eval_fn: without it the training loss is minimised")
    if (eval_fn is None) != (eval_data is None):
        raise ValueError(
            "eval_fn and eval_data go together: give both to choose the best point on "
            "held-out data, or neither to choose by the final training loss"
        )
    check_not_a_class(params, "params")
    init_fn = params if _is_initialiser(params) else None
    if init_fn is not None and key is None and seeds is None:
        raise ValueError(
            "params is a function of a PRNG key: pass key= (or seeds=) to initialise it"
        )
    seed_values = _seed_values(seeds)
    if seed_values is not None and len(seed_values) > 1 and init_fn is None:
        _warn_if_identical(seeds, batch_size, data)
    run_keys = key if seed_values is None else _seed_keys(seed_values, key)

    points = list(itertools.product(*axes.values()))
    _check_points(make_optimizer, list(axes), points)
    flat = {
        name: jnp.asarray([point[i] for point in points], jnp.float32)
        for i, name in enumerate(axes)
    }
    split = split_arrays({} if init_fn is not None else params)
    trained, losses, final_loss, evals = _sweep_program(
        flat,
        run_keys,
        split.arrays,
        data,
        eval_data,
        loss_fn=loss_fn,
        make_optimizer=make_optimizer,
        eval_fn=eval_fn,
        init_fn=init_fn,
        treedef=split.treedef,
        constants=split.constants,
        steps=steps,
        batch_size=batch_size,
        seeded=seed_values is not None,
    )
    criterion = final_loss if evals is None else evals
    score = criterion if seed_values is None else jnp.mean(criterion, axis=1)
    best_index = _best_index(np.asarray(score), mode)
    best = None if best_index is None else dict(zip(axes, points[best_index], strict=True))
    return SweepResult(flat, trained, losses, final_loss, evals, score, best, best_index)


@functools.partial(
    jax.jit,
    static_argnames=(
        "loss_fn",
        "make_optimizer",
        "eval_fn",
        "init_fn",
        "treedef",
        "constants",
        "steps",
        "batch_size",
        "seeded",
    ),
)
def _sweep_program(
    grid,
    run_keys,
    arrays,
    data,
    eval_data,
    *,
    loss_fn,
    make_optimizer,
    eval_fn,
    init_fn,
    treedef,
    constants,
    steps,
    batch_size,
    seeded,
):
    """Every run of the sweep: ``vmap`` over grid points of (``vmap`` over seeds of) ``fit``."""

    def run(point, run_key):
        if init_fn is None:
            params = ArraySplit(arrays, treedef, constants).combine(arrays)
        else:
            init_key, run_key = jax.random.split(run_key)
            params = init_fn(init_key)
        result = fit(
            loss_fn,
            params,
            make_optimizer(**point),
            data,
            steps=steps,
            batch_size=batch_size,
            key=run_key,
        )
        final_loss = loss_fn(result.params) if data is None else loss_fn(result.params, data)
        evaluation = None if eval_fn is None else eval_fn(result.params, eval_data)
        if evaluation is not None and jnp.shape(evaluation) != ():
            raise ValueError(
                f"eval_fn must return a scalar, got shape {jnp.shape(evaluation)}; "
                "the best point is chosen by it"
            )
        return result.params, result.losses, final_loss, evaluation

    per_point = jax.vmap(run, in_axes=(None, 0)) if seeded else run
    return jax.vmap(per_point, in_axes=(0, None))(grid, run_keys)


def _grid_axes(grid: Any) -> dict[str, list[float]]:
    """``grid`` checked: name -> its values as Python floats, in the order given."""
    if not isinstance(grid, Mapping):
        raise TypeError(
            "grid must be a dict of hyperparameter name -> sequence of numbers, "
            f"got {type(grid).__name__}"
        )
    if not grid:
        raise ValueError(
            "grid is empty: give at least one hyperparameter, e.g. "
            "grid={'learning_rate': [1e-3, 1e-2, 1e-1]}"
        )
    axes = {}
    for name, values in grid.items():
        if not isinstance(name, str):
            raise TypeError(f"grid names must be strings, got {type(name).__name__} {name!r}")
        where = f"grid[{name!r}]"
        if isinstance(values, (str, bytes)) or np.ndim(values) == 0:
            raise TypeError(
                f"{where} must be a sequence of numbers, got {type(values).__name__} "
                f"{values!r} (for a single value write [{values!r}])"
            )
        for value in values:
            if isinstance(value, (bool, np.bool_)) or np.asarray(value).dtype.kind not in "iuf":
                raise TypeError(
                    f"{where} must hold real numbers, got {type(value).__name__} {value!r}"
                )
        array = np.asarray(values, np.float64)
        if array.ndim != 1:
            raise ValueError(f"{where} must be a flat sequence of numbers, got shape {array.shape}")
        if array.size == 0:
            raise ValueError(f"{where} is empty: give at least one value")
        if not np.isfinite(array).all():
            raise ValueError(f"{where} must hold finite numbers, got {array.tolist()}")
        axes[name] = array.tolist()
    return axes


def _check_accepts(make_optimizer: Callable[..., Any], axes: Mapping[str, Any]) -> None:
    """``TypeError`` naming a grid name ``make_optimizer`` lacks, or a required one missing."""
    if not callable(make_optimizer):
        raise TypeError(
            "make_optimizer must be a function of the grid's names returning an optimizer, "
            f"got {type(make_optimizer).__name__}"
        )
    try:
        signature = inspect.signature(make_optimizer)
    except (TypeError, ValueError):  # no introspectable signature: fit reports a bad call
        return
    label = f"make_optimizer ({getattr(make_optimizer, '__name__', type(make_optimizer).__name__)})"
    by_keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = signature.parameters.values()
    accepted = [p.name for p in parameters if p.kind in by_keyword]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        for name in axes:
            if name not in accepted:
                close = difflib.get_close_matches(name, accepted, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(
                    f"grid name {name!r} is not an argument of {label}, which accepts "
                    f"{', '.join(accepted) or 'no keyword arguments'}{hint}"
                )
    missing = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in axes
    ]
    if missing:
        raise TypeError(
            f"{label} requires {', '.join(missing)}, which grid does not give: add it to grid "
            "or fix it in make_optimizer (a lambda or functools.partial)"
        )


def _check_points(
    make_optimizer: Callable[..., Any], names: list[str], points: list[tuple[float, ...]]
) -> None:
    """Build every point's optimizer from concrete values once, so that a value its factory
    rejects (a negative learning rate, ``b1 >= 1``) is reported with its grid point: inside
    the vmapped program the values are traced and such checks are skipped."""
    for point in points:
        values = dict(zip(names, point, strict=True))
        try:  # float32 scalars, as in the program
            make_optimizer(**{name: np.float32(value) for name, value in values.items()})
        except ValueError as e:
            raise ValueError(f"grid point {values}: {e}") from e


def _is_initialiser(params: Any) -> bool:
    """A function ``key -> params``: callable and holding no arrays (a model is a pytree)."""
    return callable(params) and not any(is_array(leaf) for leaf in jax.tree.leaves(params))


def _seed_values(seeds: Any) -> list[int] | None:
    """``seeds`` checked: ``None``, or the list of integer seeds it stands for."""
    if seeds is None:
        return None
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 when a number of seeds, got {seeds}")
        return list(range(seeds))
    values = None if isinstance(seeds, (str, bytes)) else np.asarray(seeds).tolist()
    if (
        not isinstance(values, list)
        or not values
        or any(isinstance(s, bool) or not isinstance(s, int) for s in values)
    ):
        raise TypeError(
            "seeds must be None, a positive int (a number of seeds) or a non-empty sequence "
            f"of ints, got {seeds!r}"
        )
    return [int(s) for s in values]


def _warn_if_identical(seeds: Any, batch_size: int | None, data: Any) -> None:
    """Warn when every seed's run would be the same: the key draws only minibatches and, with
    ``params`` a function, initial parameters; with full batches and shared parameters it
    draws nothing. The runs are correct, only redundant (and their spread, zero, says nothing
    about robustness), so this warns rather than raises."""
    if batch_size is not None and (data is None or batch_size < num_examples(data)):
        return
    warn_user(
        f"seeds={seeds!r} trains identical copies: with full-batch steps and the same initial "
        "params, nothing in a run depends on its key. Pass params as a function key -> params "
        "(each seed initialises its own) or batch_size= (each seed draws its own minibatches), "
        "or leave seeds out",
        UserWarning,
    )


def _seed_keys(seeds: list[int], key: jax.Array | None) -> jax.Array:
    """One PRNG key per seed: ``PRNGKey(s)``, or ``fold_in(key, s)`` when ``key`` is given."""
    if key is None:
        return jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    return jnp.stack([jax.random.fold_in(key, s) for s in seeds])


def _best_index(score: np.ndarray, mode: str) -> int | None:
    """The index of the lowest (``"min"``) or highest finite score; ``None`` if none is finite."""
    finite = np.isfinite(score)
    if not finite.any():
        warn_user(
            "no grid point has a finite score (each has a run that diverged); best is None",
            RuntimeWarning,
        )
        return None
    signed = score if mode == "min" else -score
    return int(np.argmin(np.where(finite, signed, np.inf)))


class HypergradientResult(NamedTuple):
    """What ``hypergradient_descent`` returns.

    Attributes:
      hyperparams: name -> float32 scalar: the tuned values.
      history: name -> float32 ``(steps + 1,)``: the values before each step, then the tuned ones.
      losses: ``(steps,)``: the objective before each step.
    """

    hyperparams: dict[str, jax.Array]
    history: dict[str, jax.Array]
    losses: jax.Array


@suggest_keywords
def hypergradient_descent(
    objective: Callable[[dict[str, jax.Array]], jax.Array],
    hyperparams: Mapping[str, float],
    *,
    steps: int,
    learning_rate: float = 0.1,
) -> HypergradientResult:
    r"""Tune positive hyperparameters by gradient descent on ``objective``, through training.

    ``objective(hyperparams) -> scalar`` is typically a validation loss after ``optim.fit``
    with an optimizer built from ``hyperparams`` (a dict of float32 scalars); ``jax.grad``
    differentiates it through every training step, storing the whole training path (Maclaurin,
    Duvenaud & Adams, 2015, "Gradient-based Hyperparameter Optimization through Reversible
    Learning", recompute it backwards instead to save memory). The steps are Adam on the
    logarithms,

    .. math:: \log h_{k+1} = \log h_k - \alpha\,\mathrm{Adam}\big(\nabla_{\log h} f(h_k)\big),

    so each step moves a hyperparameter by a factor of about :math:`e^{\pm\alpha}` whatever its
    scale, and it stays positive. All steps run in one ``lax.scan``.

    Adam in ``objective`` needs ``eps_root > 0`` (e.g. 1e-8) when some gradient entry is exactly
    zero (a constant input feature, a dead ReLU): the derivative of :math:`\sqrt{\hat v}` at
    :math:`\hat v = 0` is infinite and makes the hypergradient NaN.

    Args:
      objective: a traceable function of a dict name -> float32 scalar, returning a scalar.
      hyperparams: name -> positive starting value.
      steps: number of hypergradient steps, at least 1.
      learning_rate: Adam's step size on the logarithms.

    Returns:
      A :class:`optim.HypergradientResult` ``(hyperparams, history, losses)``: the tuned
      values (name -> float32 scalar), each value before every step and after the last
      (name -> ``(steps + 1,)``), and the objective before each step (``(steps,)``).

    Examples:
      Tune the learning rate of three SGD steps, so that they land on the minimum:

      >>> import jax.numpy as jnp, optim
      >>> def objective(h):
      ...     loss_fn = lambda w, b: jnp.mean((b - w) ** 2)
      ...     result = optim.fit(loss_fn, jnp.zeros(()), optim.sgd(h["learning_rate"]),
      ...                        jnp.ones(4), steps=3)
      ...     return (result.params - 1.0) ** 2
      >>> tuned = optim.hypergradient_descent(objective, {"learning_rate": 0.01}, steps=20)
      >>> tuned.losses.shape, bool(tuned.losses[-1] < tuned.losses[0])
      ((20,), True)
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(hyperparams, Mapping) or not hyperparams:
        raise ValueError(
            "hyperparams must be a non-empty dict name -> positive number, "
            f"e.g. {{'learning_rate': 0.01}}, got {hyperparams!r}"
        )
    for name, value in hyperparams.items():
        if (
            isinstance(value, bool)
            or np.asarray(value).dtype.kind not in "iuf"
            or not (0 < value < np.inf)
        ):
            raise ValueError(f"hyperparams[{name!r}] must be a positive number, got {value!r}")
    log_start = {name: jnp.log(jnp.float32(value)) for name, value in hyperparams.items()}
    return _hypergradient_scan(log_start, objective, adam(learning_rate), int(steps))


@functools.partial(jax.jit, static_argnames=("objective", "steps"))
def _hypergradient_scan(log_start, objective, outer, steps):
    """``steps`` Adam steps on the log-hyperparameters, recording the path."""

    def log_objective(logs):
        return objective(jax.tree.map(jnp.exp, logs))

    def step(carry, _):
        logs, state = carry
        loss, grads = jax.value_and_grad(log_objective)(logs)
        updates, state = outer.update(grads, state, logs)
        return (apply_updates(logs, updates), state), (logs, loss)

    (logs, _), (path, losses) = jax.lax.scan(step, (log_start, outer.init(log_start)), length=steps)
    history = jax.tree.map(lambda p, last: jnp.append(p, last[None]), path, logs)
    return HypergradientResult(jax.tree.map(jnp.exp, logs), jax.tree.map(jnp.exp, history), losses)
