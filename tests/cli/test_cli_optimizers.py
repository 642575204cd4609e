"""The optimizers ``python -m optim`` offers: each trains each problem it is offered on."""

from __future__ import annotations

import functools
import inspect

import pytest

import optim
from optim import contrib
from optim.cli import demo
from optim.cli.optimizers import BASES, NOT_OFFERED, OPTIMIZERS

STEPS = 100
PROBLEMS = ["linreg", "logreg", "mlp"]
WRAPPERS = [name for name, offer in OPTIMIZERS.items() if offer.base is not None]


@functools.cache
def problem(name: str) -> demo.Problem:
    return demo.make_problem(name, seed=0)


def assert_trains(token: str, problem_name: str) -> None:
    """``token`` run as the CLI runs it for ``STEPS`` steps cuts the training loss by 10%."""
    spec = demo.parse_optimizer(token)
    p = problem(problem_name)
    key = None if spec.batch_size is None else p.batch_key
    result = optim.fit(
        p.loss_fn,
        p.params,
        spec.optimizer,
        p.data,
        steps=STEPS,
        batch_size=spec.batch_size,
        key=key,
        progress=False,
    )
    initial, final = float(result.losses[0]), float(p.loss_fn(result.params, p.data))
    assert final <= 0.9 * initial, f"{token} on {problem_name}: loss {initial:.4g} -> {final:.4g}"


# The linreg problem runs in the default tier: about a second per optimizer (its compilation);
# the digits problems repeat that at a larger model and run with -m slow.
CASES = [
    pytest.param(name, p, marks=[pytest.mark.slow] if p != "linreg" else [], id=f"{name}-{p}")
    for name, offer in OPTIMIZERS.items()
    for p in PROBLEMS
    if p not in offer.cannot_train
]


@pytest.mark.parametrize(("name", "problem_name"), CASES)
def test_every_offered_optimizer_trains(name, problem_name):
    assert_trains(name, problem_name)


@pytest.mark.slow
@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_wrappers_train_with_each_base(wrapper, base):
    assert_trains(f"{wrapper}:base={base}", "linreg")


def test_optimizers_that_need_more_than_gradients_get_it():
    """sophia gets its objective, sam its gradient function; no traceback on either."""
    for token, argument in [("sophia", "obj_fn"), ("sam", "grad_fn")]:
        optimizer = demo.parse_optimizer(token).optimizer
        assert optimizer.needs_value_fn and optimizer.argument == argument
    mechanize = demo.parse_optimizer("mechanize:base=sgd,lr=0.3").optimizer
    rate = optim.hyperparams(mechanize)["scale_by_learning_rate.learning_rate"]
    assert rate == pytest.approx(0.3)


def test_every_optimizer_like_name_is_offered_or_explained():
    """A public function that takes a learning rate is an optimizer offered here, or it is in
    NOT_OFFERED with the reason; the ``scale_by_*`` building blocks are neither."""
    public = {name: getattr(module, name) for module in (optim, contrib) for name in module.__all__}
    takes_rate = {
        name
        for name, value in public.items()
        if inspect.isfunction(value)
        and not name.startswith("scale_by_")
        and "learning_rate" in inspect.signature(value).parameters
    }
    assert takes_rate - set(OPTIMIZERS) - set(NOT_OFFERED) == set()
    assert set(OPTIMIZERS) & set(NOT_OFFERED) == set()
    assert (set(OPTIMIZERS) | set(NOT_OFFERED)) <= set(public)
    assert not [name for name in OPTIMIZERS if name.startswith("scale_by_")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizers", "scale_by_rprop:lr=0.1"], "unknown optimizer 'scale_by_rprop'"),
        (["--optimizers", "ScaleByZoomLinesearchState"], "unknown optimizer"),
        (["--optimizers", "hypergradient_descent"], "unknown optimizer"),
        (["--optimizers", "mechanize:base=sophia"], "base must be one of sgd, adam"),
        (["--problem", "logreg", "--optimizers", "fromage"], "cannot train --problem logreg"),
    ],
)
def test_what_is_not_offered_is_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args([*argv, "--no-plot"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
