"""``python -m optim``: a GD / SGD / Adam comparison on independent copies of one model.

The classic TensorFlow 1 example fits a line to 100 points (``x`` and ``y`` both uniform on
[0, 1)) with three optimizers. Here every optimizer trains its own copy of the same initial
weights with ``optim.fit``, and the table compares each run with the closed-form least-squares
optimum. ``--problem logreg`` and ``--problem mlp`` run the same comparison on scikit-learn's
digits, where there is no closed form and the table reports test accuracy instead.
``--optimizers`` takes any optimizer of ``optim.cli.optimizers.OPTIMIZERS``, the ones that train
these problems.

This module (with ``optim/cli/__init__.py`` and ``optim/__main__.py``) is the one place where
``optim`` imports ``models``.
"""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import models
import optim
from models.datasets import Dataset
from optim.cli.optimizers import BASES, OPTIMIZERS

DEFAULT_OPTIMIZERS = {
    "linreg": ["gd:lr=0.5", "sgd:lr=0.1", "adam:lr=0.05"],
    "logreg": ["gd:lr=0.5", "sgd:lr=0.05", "adam:lr=0.01"],
    "mlp": ["gd:lr=0.5", "sgd:lr=0.02", "adam:lr=0.01"],
}

TUTORIAL_NOTE = (
    "Note: the textbook TensorFlow 1 version of this experiment runs its three minimize ops "
    "on shared variables W and b (each epoch moves the same weights three times) and calls "
    "tf.train.StochasticGradientDescentOptimizer, which does not exist. Here each optimizer "
    "trains its own copy from the same initial weights, SGD is optim.sgd on one random example "
    "per step, and Adam has bias correction with eps outside the square root (its "
    "formula has neither). SGD's final loss is noisy: at a constant rate, one example a step "
    "keeps it a few percent above L* on average. Its rates (0.01, 0.01, 0.001) leave "
    "all three well above L* after 1000 steps: the loss's slowest curvature is about 0.12, so "
    "gradient descent at 0.01 shrinks the error along it by only ~0.1% a step. The defaults "
    f"here are {' '.join(DEFAULT_OPTIMIZERS['linreg'])}; pass --optimizers gd:lr=0.01 "
    "sgd:lr=0.01 adam:lr=0.001 to see its rates."
)


class OptimizerSpec(NamedTuple):
    """One ``--optimizers`` token: its text, the optimizer, and the minibatch size (None: all)."""

    label: str
    optimizer: Any
    batch_size: int | None


@dataclasses.dataclass(frozen=True)
class Problem:
    """What every run shares: data, initial weights, loss and the minibatch key."""

    name: str
    description: str
    params: Any
    data: Dataset
    loss_fn: Callable[[Any, Dataset], jax.Array]
    batch_key: jax.Array
    optimum: float | None = None  # the closed-form optimal training loss, where there is one
    test: Dataset | None = None  # held-out data for test accuracy (classification)


class Run(NamedTuple):
    """One trained copy: ``losses[t]`` is the full training-set loss after ``t`` steps."""

    label: str
    params: Any
    losses: np.ndarray
    seconds: float


def squared_error_loss(model: Any, batch: Dataset) -> jax.Array:
    """The mean squared error ``mean((model(x) - y) ** 2)``."""
    return models.losses.mean_squared_error(model(batch.x), batch.y)


def cross_entropy_loss(model: Any, batch: Dataset) -> jax.Array:
    """Mean softmax cross-entropy of the model's logits against integer labels."""
    logits = model(batch.x)
    return jnp.mean(models.losses.softmax_cross_entropy_with_integer_labels(logits, batch.y))


def make_problem(name: str, seed: int) -> Problem:
    """The ``linreg``, ``logreg`` or ``mlp`` problem, with data and weights drawn from ``seed``."""
    data_key, init_key, batch_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    if name == "linreg":
        data = models.datasets.linear_regression_uniform(data_key)
        optimum = squared_error_loss(models.LinearRegression.closed_form(data.x, data.y), data)
        return Problem(
            name=name,
            description=f"linear regression on {len(data.x)} points, x and y ~ U[0, 1) as in "
            "the TensorFlow 1 tutorial; MSE loss",
            params=models.LinearRegression.init(init_key, in_features=1),
            data=data,
            loss_fn=squared_error_loss,
            batch_key=batch_key,
            optimum=float(optimum),
        )
    digits = models.datasets.digits(seed=seed)
    if name == "logreg":
        description, params = "softmax regression", models.LogisticRegression.init(init_key, 64, 10)
    elif name == "mlp":
        description, params = "MLP [64, 64, 10]", models.MLP.init(init_key, [64, 64, 10])
    else:
        raise ValueError(f"unknown problem {name!r}; choose from {', '.join(DEFAULT_OPTIMIZERS)}")
    return Problem(
        name=name,
        description=f"{description} on scikit-learn's digits ({len(digits.train.x)} train / "
        f"{len(digits.test.x)} test images); cross-entropy loss",
        params=params,
        data=digits.train,
        loss_fn=cross_entropy_loss,
        batch_key=batch_key,
        test=digits.test,
    )


def _parse_value(text: str) -> bool | int | float | None:
    words = {"true": True, "false": False, "none": None}
    if text.lower() in words:
        return words[text.lower()]
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_optimizer(token: str) -> OptimizerSpec:
    """Parse ``name:key=value,...`` into an optimizer; ``ArgumentTypeError`` names a bad token.

    ``name`` is ``gd`` (``optim.sgd`` on the full batch) or an optimizer of
    ``optim.cli.optimizers.OPTIMIZERS``; ``sgd`` and the others are minibatch runs when
    ``batch=N`` is given (``sgd`` defaults to ``batch=1``, the others to the full batch). ``lr``
    stands for the learning rate (``max_learning_rate`` for ``polyak_sgd``).
    """
    name, _, options = token.partition(":")
    if name != "gd" and name not in OPTIMIZERS:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {name!r} in {token!r}; choose from gd, "
            + ", ".join(sorted(OPTIMIZERS))
        )
    offer = OPTIMIZERS["sgd" if name == "gd" else name]
    allowed = {"lr", *offer.options(), *([] if name == "gd" else ["batch"])}
    kwargs = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        if key not in allowed:
            raise argparse.ArgumentTypeError(
                f"unknown key {key!r} in {token!r}; {name} takes {', '.join(sorted(allowed))}"
            )
        try:
            kwargs[offer.rate if key == "lr" else key] = (
                value if key == "base" else _parse_value(value)
            )
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad value {value!r} for {key!r} in {token!r}: expected a number, true, false "
                "or none"
            ) from None
    batch_size = kwargs.pop("batch", 1 if name == "sgd" else None)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise argparse.ArgumentTypeError(f"batch must be a positive int in {token!r}")
    try:
        optimizer = offer.make(kwargs)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(f"invalid optimizer {token!r}: {error}") from None
    return OptimizerSpec(token, optimizer, batch_size)


def unsupported(token: str, problem: str) -> str | None:
    """Why the optimizer of ``token`` cannot train ``problem``, or None when it can."""
    name = token.partition(":")[0]
    return OPTIMIZERS["sgd" if name == "gd" else name].cannot_train.get(problem)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _exceptions() -> str:
    """The problems some optimizers cannot train, for ``--help``."""
    notes = [
        f"{name} (not on {problem}: {reason})"
        for name, offer in OPTIMIZERS.items()
        for problem, reason in offer.cannot_train.items()
    ]
    return f"; except {', '.join(notes)}" if notes else ""


def _wrappers() -> str:
    """The optimizers that wrap another, for ``--help``."""
    wrappers = [
        f"{name} (default base={offer.default_base})"
        for name, offer in OPTIMIZERS.items()
        if offer.base is not None
    ]
    return (
        f"base=NAME ({', '.join(BASES)}) picks the optimizer that {', '.join(wrappers)} wraps, "
        "and lr is its rate"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of ``python -m optim``; ``--optimizers`` defaults per problem."""
    defaults = "; ".join(f"{p}: {' '.join(specs)}" for p, specs in DEFAULT_OPTIMIZERS.items())
    parser = argparse.ArgumentParser(
        prog="python -m optim",
        description="Train independent copies of one model with several optimizers (by default "
        "gradient descent, SGD and Adam on a 100-point linear regression) and "
        "compare their loss curves.",
    )
    parser.add_argument(
        "--problem",
        choices=list(DEFAULT_OPTIMIZERS),
        default="linreg",
        help="linreg: a 100-point linear regression (compared with its closed-form optimum); "
        "logreg: softmax regression on scikit-learn's digits; mlp: an MLP [64, 64, 10] on "
        "digits (default: %(default)s)",
    )
    parser.add_argument(
        "--optimizers",
        nargs="+",
        type=parse_optimizer,
        metavar="NAME:KEY=VALUE,...",
        help="optimizers to compare, e.g. adamw:lr=1e-3,weight_decay=0.1 or "
        "sgd:lr=0.1,momentum=0.9,batch=8. NAME is gd (sgd on the full batch) or one of "
        f"{', '.join(sorted(OPTIMIZERS))}{_exceptions()}. KEY is an argument of the optimizer's "
        "function in optim or optim.contrib; lr is the learning rate (max_learning_rate for "
        f"polyak_sgd); {_wrappers()}; batch=N draws N random examples a step (sgd default 1, "
        f"others the full batch). Default per problem: {defaults}",
    )
    parser.add_argument(
        "--steps",
        type=_positive_int,
        default=1000,
        help="optimizer steps per run (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for data, initial weights and minibatches (default: %(default)s)",
    )
    parser.add_argument(
        "--output",
        default="optim_demo.png",
        help="where to save the plot of the loss curves (default: %(default)s)",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not save the plot")
    args = parser.parse_args(argv)
    if args.optimizers is None:
        args.optimizers = [parse_optimizer(t) for t in DEFAULT_OPTIMIZERS[args.problem]]
    for spec in args.optimizers:
        reason = unsupported(spec.label, args.problem)
        if reason is not None:
            parser.error(
                f"argument --optimizers: {spec.label!r} cannot train --problem {args.problem}: "
                f"{reason}"
            )
    return args


def train(problem: Problem, spec: OptimizerSpec, steps: int) -> Run:
    """Train a fresh copy of ``problem.params`` with ``optim.fit``; time a compiled call."""

    def loss_and_full_loss(params: Any, batch: Dataset) -> tuple[jax.Array, jax.Array]:
        # The minibatch loss drives the step; the full training-set loss (aux) is what the
        # table and plot compare, so that one-example SGD is judged like the others.
        return problem.loss_fn(params, batch), problem.loss_fn(params, problem.data)

    def fit() -> optim.FitResult:
        key = None if spec.batch_size is None else problem.batch_key
        # No progress bar: it would interleave with the table and split the run into chunks.
        return optim.fit(
            loss_and_full_loss,
            problem.params,
            spec.optimizer,
            problem.data,
            steps=steps,
            batch_size=spec.batch_size,
            key=key,
            has_aux=True,
            progress=False,
        )

    jax.block_until_ready(fit())  # compiles; the timed call below reuses the executable
    start = time.perf_counter()
    result = jax.block_until_ready(fit())
    seconds = time.perf_counter() - start
    final = problem.loss_fn(result.params, problem.data)
    return Run(spec.label, result.params, np.append(result.aux, final), seconds)


def steps_to_reach(losses: np.ndarray, target: float) -> int | None:
    """The first ``t`` with ``losses[t] <= target``, or None."""
    hits = np.flatnonzero(losses <= target)
    return int(hits[0]) if hits.size else None


def format_table(problem: Problem, runs: Sequence[Run]) -> str:
    """One row per run; optimum columns for linreg, test accuracy for classification."""
    columns: list[tuple[str, Callable[[Run], str]]] = [
        ("optimizer", lambda r: r.label),
        ("final train loss", lambda r: f"{r.losses[-1]:.6f}"),
    ]
    if problem.optimum is not None:
        optimum = problem.optimum

        def reached(run: Run) -> str:
            step = steps_to_reach(run.losses, 1.01 * optimum)
            return "not reached" if step is None else str(step)

        columns += [
            ("gap to L*", lambda r: f"{r.losses[-1] - optimum:+.2e}"),
            ("rel. gap", lambda r: f"{(r.losses[-1] - optimum) / optimum:+.2%}"),
            ("steps to 1% of L*", reached),
        ]
    if problem.test is not None:
        test = problem.test
        columns.append(
            ("test accuracy", lambda r: f"{models.losses.accuracy(r.params(test.x), test.y):.2%}")
        )
    columns.append(("fit ms (compile excluded)", lambda r: f"{1e3 * r.seconds:.1f}"))
    rows = [[title for title, _ in columns]] + [[cell(r) for _, cell in columns] for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def plot(problem: Problem, runs: Sequence[Run], path: str) -> None:
    """Save the loss curves (log scale) with the optimum as a dashed line, as a PNG at ``path``."""
    # matplotlib is imported only when a plot is asked for: it is slow to import.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for run in runs:
        axes.plot(run.losses, label=run.label, linewidth=1)
    if problem.optimum is not None:
        axes.axhline(
            problem.optimum,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"closed-form optimum L* = {problem.optimum:.4f}",
        )
    axes.set(
        yscale="log",
        xlabel="step",
        ylabel="training loss (all examples)",
        title=f"python -m optim --problem {problem.name}",
    )
    axes.legend()
    figure.savefig(path, format="png", dpi=120)


def main(argv: Sequence[str] | None = None) -> list[Run]:
    """Run the comparison for the command line ``argv``, print the table, save the plot."""
    args = parse_args(argv)
    problem = make_problem(args.problem, args.seed)
    runs = [train(problem, spec, args.steps) for spec in args.optimizers]
    print(f"{problem.name}: {problem.description}; {args.steps} steps, seed {args.seed}")
    if problem.optimum is not None:
        print(f"closed-form least-squares optimum L* = {problem.optimum:.6f}")
    print(format_table(problem, runs))
    if problem.name == "linreg":
        print(textwrap.fill(TUTORIAL_NOTE, width=100))
    if not args.no_plot:
        plot(problem, runs, args.output)
        print(f"plot saved to {args.output}")
    return runs
