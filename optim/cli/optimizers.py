"""The optimizers ``python -m optim`` offers, each with what it needs to run on the demo's problems.

An optimizer is offered when it trains the demo's problems from its defaults here (an
``Offer``'s ``cannot_train`` names a problem it cannot train, which the command line refuses);
``tests/cli/test_cli_optimizers.py`` runs each one for 100 steps on each of its problems and checks
that the loss goes down. Three kinds need more than a learning rate, and get it here:

* an objective: ``sophia`` differentiates the loss twice (``obj_fn=``) and ``sam`` takes ascent
  gradients (``grad_fn=``); both are wrapped in ``GivenObjective``, which asks ``fit`` for the
  loss on the current batch (the ``value_fn=`` a line search gets) and hands it on;
* a base optimizer: ``mechanize``, ``schedule_free`` and ``sam`` wrap another optimizer of this
  list, named by ``base=`` (one of ``BASES``; ``lr`` then sets the base optimizer's learning
  rate);
* the loss value: ``polyak_sgd``, ``momo`` and ``momo_adam`` read ``value=``, which ``fit``
  passes to every update.

Not offered: the ``scale_by_*`` building blocks (a direction without a step size: chained alone
they ascend or barely move), state classes, combinators, and the optimizer-like names that
``NOT_OFFERED`` lists with the reason (``dpsgd`` needs per-example gradients, for one).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax

import optim
from optim import contrib
from optim._pytree import pytree_dataclass, static
from optim.base import Transformation

# The extra keyword argument through which each objective-taking update wants the loss.
_OBJECTIVE_ARGUMENTS = ("obj_fn", "grad_fn")


def _check_argument(value: Any, name: str) -> str:
    if value not in _OBJECTIVE_ARGUMENTS:
        raise ValueError(f"{name} must be one of {_OBJECTIVE_ARGUMENTS}, got {value!r}")
    return value


@pytree_dataclass
class GivenObjective(Transformation):
    """``inner`` with the loss on the current batch passed as ``obj_fn(params)`` (sophia's
    Hessian estimate) or as ``grad_fn(params, i)``, its gradient (sam's ascent steps).

    ``needs_value_fn`` makes ``fit`` pass ``value_fn=``, the loss on the step's batch as a
    function of the parameters (what a line search evaluates at its trial points).
    """

    needs_value_fn = True

    inner: Any
    argument: str = static(check=_check_argument)

    def init(self, params: Any) -> Any:
        return self.inner.init(params)

    def update(self, updates, state, params=None, *, value_fn=None, **extra_args):
        if value_fn is None:
            raise ValueError(
                f"{self.argument} comes from value_fn=, the loss as a function of the "
                "parameters: call update(grads, state, params, value_fn=lambda p: loss(p, batch))"
            )
        extra_args.pop("grad", None)  # the line-search gradient: the inner rule has its own
        given = value_fn if self.argument == "obj_fn" else lambda p, i: jax.grad(value_fn)(p)
        return self.inner.update(updates, state, params, **{self.argument: given}, **extra_args)


@dataclasses.dataclass(frozen=True)
class Offer:
    """One offered optimizer: ``factory(**defaults, **options)``, then ``wrap`` if given;
    ``cannot_train`` names the demo's problems it cannot train, and why.

    ``rate`` is the argument that ``lr`` stands for. ``base`` is the argument that receives
    another offered optimizer (named by the token's ``base=``, default ``default_base``); ``lr``
    then sets that base optimizer's rate, and the wrapper's own too with ``rate_to_wrapper``.
    ``extra`` are options of the CLI's own that ``build`` takes.
    """

    factory: Callable[..., Any]
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    rate: str = "learning_rate"
    base: str | None = None
    default_base: str = "sgd"
    rate_to_wrapper: bool = False
    wrap: Callable[[Any], Any] | None = None
    build: Callable[..., Any] | None = None  # replaces the plain factory call
    extra: tuple[str, ...] = ()
    cannot_train: Mapping[str, str] = dataclasses.field(default_factory=dict)  # problem: why

    def options(self) -> list[str]:
        """The keys a token may set: the factory's arguments (``lr`` for the rate), ``base``."""
        names = [
            name
            for name, parameter in inspect.signature(self.factory).parameters.items()
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
            and name not in (self.base, "adv_optimizer")
        ]
        if self.rate not in names:
            names.append(self.rate)
        if self.base is not None:
            names.append("base")
        return names + list(self.extra)

    def make(self, options: Mapping[str, Any]) -> Any:
        """The optimizer with ``options`` over the defaults (``lr`` already renamed)."""
        kwargs = {**self.defaults, **options}
        if self.base is not None:
            base_name = kwargs.pop("base", self.default_base)
            if base_name not in BASES:
                raise ValueError(f"base must be one of {', '.join(BASES)}, got {base_name!r}")
            base_options = {}
            if "learning_rate" in kwargs:
                rate = (
                    kwargs["learning_rate"] if self.rate_to_wrapper else kwargs.pop("learning_rate")
                )
                base_options[OPTIMIZERS[base_name].rate] = rate
            kwargs[self.base] = OPTIMIZERS[base_name].make(base_options)
        optimizer = (self.build or self.factory)(**kwargs)
        return optimizer if self.wrap is None else self.wrap(optimizer)


def _with_objective(argument: str) -> Callable[[Any], GivenObjective]:
    return lambda inner: GivenObjective(inner, argument)


def _sam(optimizer: Any, rho: float = 0.05, **options: Any) -> Any:
    """The paper's SAM: ascend to ``w + rho g / |g|``, descend from there with ``optimizer``;
    one call per step (``opaque_mode``), so each recorded loss is at the trained weights."""
    ascent = optim.chain(contrib.normalize(), optim.sgd(rho))
    return contrib.sam(optimizer, ascent, **{"opaque_mode": True, **options})


def _rates(rate: float, *names: str) -> dict[str, Offer]:
    return {name: Offer(getattr(optim, name), {"learning_rate": rate}) for name in names}


def _contrib_rates(rate: float, *names: str) -> dict[str, Offer]:
    return {name: Offer(getattr(contrib, name), {"learning_rate": rate}) for name in names}


# Defaults: a learning rate that trains all three problems of the demo from the start.
OPTIMIZERS: dict[str, Offer] = {
    **_rates(0.1, "sgd", "optimistic_gradient_descent", "adagrad", "sm3", "lars"),
    **_rates(0.01, "adam", "adamw", "nadam", "nadamw", "radam", "amsgrad", "adamax", "adamaxw"),
    **_rates(0.01, "adabelief", "yogi", "adan", "novograd", "lamb", "rmsprop"),
    **_rates(0.01, "optimistic_adam_v2", "sign_sgd", "signum", "rprop"),
    **_rates(0.001, "lion"),
    **_rates(0.01, "shampoo", "soap", "kron"),
    "fromage": Offer(
        optim.fromage,
        {"learning_rate": 0.01},
        cannot_train={
            "logreg": "its steps are relative to the weights' norm, and softmax regression's "
            "weights start at zero"
        },
    ),
    "noisy_sgd": Offer(optim.noisy_sgd, {"learning_rate": 0.1, "key": 0}),
    "adadelta": Offer(optim.adadelta, {"learning_rate": 1.0}),
    "adafactor": Offer(optim.adafactor, {"learning_rate": 0.1}),
    "lbfgs": Offer(optim.lbfgs),
    "polyak_sgd": Offer(optim.polyak_sgd, rate="max_learning_rate"),
    **_contrib_rates(0.01, "adopt", "ademamix", "simplified_ademamix", "acprop", "madgrad"),
    **_contrib_rates(0.01, "muon", "momo_adam", "galore"),
    **_contrib_rates(1.0, "prodigy", "dog", "dowg", "dadapt_adamw", "cocob", "momo"),
    "schedule_free_sgd": Offer(contrib.schedule_free_sgd, {"learning_rate": 0.1}),
    "schedule_free_adamw": Offer(contrib.schedule_free_adamw, {"learning_rate": 0.01}),
    "sophia": Offer(contrib.sophia, {"learning_rate": 0.01}, wrap=_with_objective("obj_fn")),
    "sam": Offer(
        contrib.sam,
        base="optimizer",
        build=_sam,
        extra=("rho",),
        wrap=_with_objective("grad_fn"),
    ),
    "mechanize": Offer(contrib.mechanize, base="base_optimizer", default_base="adam"),
    "schedule_free": Offer(
        contrib.schedule_free,
        {"learning_rate": 0.1},
        base="base_optimizer",
        rate_to_wrapper=True,
    ),
}

# The optimizers a wrapper's base= may name: the common ones (each is tested inside each wrapper).
BASES = ("sgd", "adam", "adamw", "rmsprop")

# Public optimizer-like names (they take a learning rate, or the README's table lists them)
# that are not offered, and why.
NOT_OFFERED: dict[str, str] = {
    "hypergradient_descent": "tunes the hyperparameters of a whole training run",
    "optimistic_adam": "deprecated: optimistic_adam_v2 replaces it",
    "dpsgd": "needs per-example gradients, which fit does not compute",
    "reduce_on_plateau": "scales another optimizer's updates; not an optimizer by itself",
    "split_real_and_imaginary": "a wrapper for complex parameters; the demo's are real",
}
