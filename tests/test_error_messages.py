"""Error-message audit: bad input raises an exception that names the argument and what was
expected (DESIGN.md principle 6, "fail loudly and early").

Every row of the table is one call with one bad argument, the exception type it must raise
and two regular expressions its message must contain: ``names`` (the argument, and the leaf
path where a tree is involved, e.g. ``grads['w']``) and ``expects`` (what was expected). A
raw JAX error is never good enough: the exception must not come from a ``jax`` module.

The hyperparameter rows are generated from the signature of every public factory of
``optim`` (each float hyperparameter given NaN, a string and a list; known non-negative and
``[0, 1]`` hyperparameters given values outside; step counts given a float); the optimizer
rows run every optimizer of the catalogue (``tests/test_catalogue.py``); the rest are written
out by area.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import tempfile
import types
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh
from test_catalogue import CATALOGUE, EXTRAS

import models
import optim
from models import losses
from optim import checkpoint
from optim import quantized as Q

# --- the table ----------------------------------------------------------------------------


def row(id: str, call: Callable[[], Any], error: Any, names: str, expects: str) -> Any:
    """One table row: ``call()`` raises ``error`` whose message matches both patterns."""
    return pytest.param(call, error, names, expects, id=id)


def path(text: str) -> str:
    """A regular expression matching a leaf path such as ``grads['w']`` literally."""
    return re.escape(text)


# --- hyperparameters of every public factory, from the signatures -------------------------

# Public functions that are not factories of optimizers or schedules (training, tree and
# precision helpers): the rows written out below cover their arguments.
NOT_FACTORIES = {
    "apply_updates", "apply_updates_kahan", "apply_updates_stochastic", "bytes_per_parameter",
    "fit", "hyperparams", "hypergradient_descent", "inject_hyperparams", "join_schedules",
    "kahan_compensation", "microbatch", "mixed_precision_loss", "num_examples",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip", "sample_batch", "scale_gradient",
    "schedule_free_eval_params", "sgdr_schedule", "skip_large_updates", "skip_not_finite",
    "state_bytes", "stochastic_round", "sweep", "value_and_grad", "value_and_grad_from_state",
    "with_hyperparams",
    # optax's helpers of the same kind (tests/transforms/test_incremental.py, test_stateless.py and
    # test_monitoring.py check their arguments):
    "incremental_update", "init_empty_state", "inject_stateful_hyperparams", "monitor",
    "periodic_update", "snapshot", "stateless", "stateless_with_tree_map",
    "with_extra_args_support",
    # pytree utilities (optim.tree), not optimizers
    "bias_correction", "tree_map_params", "update_infinity_moment", "update_moment",
    "update_moment_per_elem_norm",
    # numerics and linear algebra (tests/test_numerics.py, test_linear_algebra.py,
    # test_distributions.py cover their arguments)
    "global_norm", "matrix_inverse_pth_root", "multi_normal", "nnls", "power_iteration",
    "safe_increment", "safe_int32_increment", "safe_norm", "safe_root_mean_squares",
}  # fmt: skip

# A valid value for each required argument of a factory; floats among them are hyperparameters.
REQUIRED = {
    "learning_rate": 0.1, "step_size": 0.1, "max_delta": 1.0, "max_norm": 1.0, "threshold": 1.0,
    "decay": 0.9, "eta": 0.01, "gamma": 0.55, "slow_step_size": 0.5, "value": 0.1,
    "init_value": 0.1, "peak_value": 0.2, "end_value": 0.0, "power": 1.0, "decay_rate": 0.5,
    "decay_steps": 10, "transition_steps": 10, "warmup_steps": 5, "stable_steps": 5,
    "max_linesearch_steps": 5, "sync_period": 2, "max_consecutive_errors": 3,
    "interpolate_type": "linear", "mask": {"w": True}, "param_labels": "a", "state_dtype": "int8",
    "transforms": {"a": optim.identity()}, "step_size_fn": optim.constant_schedule(0.1),
    "inner": optim.identity(), "fast_optimizer": optim.identity(), "tx": optim.adam(0.1),
    "optimizer": optim.identity(), "adv_optimizer": optim.identity(),
    "base_optimizer": optim.identity(), "clipping": 1.0, "freeze_mask": {"w": True},
    "should_transform_fn": lambda step: step % 2 == 0, "init_step": ("heuristic", 1e-6),
    "l2_norm_clip": 1.0, "noise_multiplier": 1.0, "seed": 0,
    "measure": jnp.sum,
    "max_backtracking_steps": 5,
}  # fmt: skip

# Hyperparameters that every factory having them bounds below by 0, or to [0, 1] (or [0, 1)).
NON_NEGATIVE = (
    "learning_rate",
    "eps",
    "eps_root",
    "weight_decay",
    "initial_accumulator_value",
    "max_norm",
    "max_delta",
    "min_norm",
    "trust_coefficient",
    "eta",
    "gamma",
    "clipping_threshold",
    "adam_eps_root",
    "adam_weight_decay",
    "momentum",
)
UNIT_INTERVAL = ("b1", "b2", "b3", "rho", "slow_step_size", "adam_b1", "adam_b2")
# Float arguments that are static (they place step boundaries), checked as fractions.
STATIC_FRACTIONS = ("pct_start", "pct_final")

BAD_FLOATS = [
    (math.nan, ValueError, r"must be finite, got nan"),
    ("abc", TypeError, r"must be a number, got str 'abc'"),
    ([0.1, 0.2], ValueError, r"must be a scalar, got an array of shape \(2,\)"),
]


# The public names, top level and contrib (optax's contrib optimizers are there only).
PUBLIC = {
    **{name: getattr(optim.contrib, name) for name in optim.contrib.__all__},
    **{name: getattr(optim, name) for name in optim.__all__},
}


def public_functions() -> list[str]:
    """The public names of optim that are functions (``nadam``, ``nadamw``: partials)."""
    kinds = (types.FunctionType, functools.partial)
    return sorted(name for name, value in PUBLIC.items() if isinstance(value, kinds))


def factories() -> dict[str, tuple[Callable, dict[str, Any], inspect.Signature]]:
    """name -> (factory, valid required arguments, signature) for every public factory."""
    found = {}
    for name in public_functions():
        if name in NOT_FACTORIES or name in optim.losses.__all__:  # losses: own rows
            continue
        factory = PUBLIC[name]
        signature = inspect.signature(factory)
        required = {
            p.name: REQUIRED[p.name]
            for p in signature.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        found[name] = (factory, required, signature)
    return found


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def hyperparameter_rows() -> list[Any]:
    rows = []
    for name, (factory, required, signature) in factories().items():
        for p in signature.parameters.values():
            valid = required.get(p.name, p.default)
            bad_values: list[tuple[Any, Any, str]] = []
            if p.name in STATIC_FRACTIONS:
                bad_values = [
                    (math.nan, ValueError, r"must be in \[0, 1\]"),
                    ("abc", TypeError, r"must be a Python float in \[0, 1\]"),
                ]
            elif _is_float(valid):
                bad_values = list(BAD_FLOATS)
                if p.name in NON_NEGATIVE:
                    bad_values.append(
                        (-1.0, ValueError, r"must be in [\[(]0\.0, (inf\)|1\.0\]), got -1\.0")
                    )
                if p.name in UNIT_INTERVAL:
                    bad_values += [
                        (value, ValueError, rf"must be in [\[(]0\.0, 1\.0[\])], got {value}")
                        for value in (-0.5, 1.5)
                    ]
            elif _is_int(valid):
                bad_values = [(2.5, TypeError, r"must be an int")]  # a wrong type
            elif isinstance(valid, bool) and not p.name.endswith("mask"):
                # A flag: a truthy string or number is not quietly taken for True.
                bad_values = [
                    (value, TypeError, rf"must be True or False, got {kind} {value!r}")
                    for value, kind in (("no", "str"), (1, "int"))
                ]
            for value, error, expects in bad_values:
                id = f"{name}.{p.name}={value!r}"
                rows.append(
                    row(
                        id,
                        functools.partial(factory, **{**required, p.name: value}),
                        error,
                        rf"\b{p.name}\b",
                        expects,
                    )
                )
    return rows


# --- optimizers of the catalogue at init and update ---------------------------------------

PARAMS = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
GRADS = {"w": jnp.full((3, 2), 0.5), "b": jnp.full(2, 0.5)}

# Optimizers whose update reads the params (they raise without them).
NEEDS_PARAMS = {
    "adadelta",
    "adafactor",
    "adamaxw",
    "adamw",
    "adan",
    "ademamix",
    "fromage",
    "galore",  # its add_decayed_weights, as optax's (even at weight_decay=0)
    "lamb",
    "lars",
    "lbfgs",
    "lion",
    "muon",
    "nadamw",
    "novograd",
    "prodigy",
    "sam",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "sophia",
}
# Optimizers that keep no per-leaf state: nothing to compare the gradients' structure with
# (a mismatch is caught by apply_updates instead).
NO_LEAF_STATE = {"dpsgd", "noisy_sgd", "polyak_sgd", "sign_sgd"}


def _loss(params: Any) -> jax.Array:
    return sum(jnp.sum(x**2) for x in jax.tree.leaves(params))


def _extras(name: str) -> dict[str, Any]:
    available = {"value": jnp.float32(1.0), "grad": GRADS, "value_fn": _loss, "obj_fn": _loss}
    return {k: available[k] for k in EXTRAS.get(name, ())}


def _update(name: str, grads: Any = GRADS, params: Any = PARAMS) -> Callable[[], Any]:
    """Catalogue optimizer ``name``'s update (see ``update``), with the extras it needs."""
    return lambda: update(CATALOGUE[name](0.1), grads, params=params, **_extras(name))()


def optimizer_rows() -> list[Any]:
    rows = []
    int_params = {"w": jnp.ones((3, 2), jnp.int32), "b": jnp.zeros(2)}
    for name in sorted(CATALOGUE):
        rows.append(
            row(
                f"{name}.init integer params",
                lambda n=name: CATALOGUE[n](0.1).init(int_params),
                TypeError,
                path("params['w']"),
                r"dtype int32; .*floating",
            )
        )
        rows.append(
            row(
                f"{name}.update integer grads",
                _update(name, {**GRADS, "w": GRADS["w"].astype(int)}),
                TypeError,
                path("grads['w']"),
                r"dtype int32; grads must be floating",
            )
        )
        if name not in NO_LEAF_STATE:
            rows.append(
                row(
                    f"{name}.update grads missing a leaf",
                    _update(name, {"w": GRADS["w"]}),
                    ValueError,
                    path("['b']"),
                    r"missing from grads",
                )
            )
            rows.append(
                row(
                    f"{name}.update grads leaf of another shape",
                    _update(name, {**GRADS, "w": jnp.ones((2, 3))}),
                    ValueError,
                    path("grads['w']"),
                    r"has shape \(2, 3\) but .*\['w'\] has shape \(3, 2\)",
                )
            )
        if name in NEEDS_PARAMS:
            rows.append(
                row(
                    f"{name}.update without params",
                    _update(name, params=None),
                    ValueError,
                    r"needs params",
                    r"update\(grads, state, params",
                )
            )
            id = f"{name}.update params shape"
            rows.append(
                row(
                    id,
                    _update(name, params={**PARAMS, "w": jnp.ones((2, 3))}),
                    ValueError,
                    path("['w']"),
                    r"has shape \((2, 3|3, 2)\) but .* has shape \((3, 2|2, 3)\)",
                )
            )
    return rows


# --- everything else, by area -------------------------------------------------------------

X, Y = jnp.ones((8, 3)), jnp.ones((8, 2))
DATA = (X, Y)
KEY = jax.random.PRNGKey(0)
# A mesh whose data axis has two devices (the same one twice): enough for fit's argument
# checks, which only read its shape, on a machine with one device.
TWO_DEVICE_MESH = Mesh(np.array([jax.devices()[0]] * 2), ("data",))


def mse(params: Any, batch: Any) -> jax.Array:
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


def fit(**kwargs: Any) -> Callable[[], Any]:
    """``optim.fit(mse, PARAMS, sgd, DATA, steps=2)`` with ``kwargs`` replacing arguments."""
    arguments = {
        "loss_fn": mse,
        "params": PARAMS,
        "optimizer": optim.sgd(0.1),
        "data": DATA,
        "steps": 2,
    } | kwargs
    arguments = {k: v for k, v in arguments.items() if v is not None}
    return lambda: optim.fit(**arguments)


def sweep(**kwargs: Any) -> Callable[[], Any]:
    arguments = {
        "loss_fn": mse,
        "params": PARAMS,
        "make_optimizer": optim.sgd,
        "data": DATA,
        "grid": {"learning_rate": [0.1]},
        "steps": 2,
    } | kwargs
    return lambda: optim.sweep(**arguments)


EVAL = {"eval_data": DATA, "eval_every": 1}


_CHECKPOINT_DIR = tempfile.TemporaryDirectory()  # removed when the interpreter exits


@functools.cache
def _checkpoints() -> str:
    """``_CHECKPOINT_DIR`` holding one checkpoint, of PARAMS at step 1 (the rows below write
    nothing: each fails before it would)."""
    checkpoint.save(_CHECKPOINT_DIR.name, 1, PARAMS)
    return _CHECKPOINT_DIR.name


def abstract(call: Callable[[], Any]) -> Callable[[], Any]:
    """``call`` traced only: its checks run (the inputs are constants), its maths does not."""
    return lambda: jax.eval_shape(call)


@functools.cache
def _transformer() -> models.Transformer:
    """A Transformer of abstract arrays (shapes only): its input checks, which run before any
    weight is used, need none."""
    return jax.eval_shape(
        lambda: models.Transformer.init(
            KEY, vocab_size=16, context_length=4, d_model=8, num_heads=2, num_layers=1
        )
    )


def _partition(labels: Any) -> Any:
    return optim.partition({"a": optim.sgd(0.1), "b": optim.adam(0.1)}, labels)


_OWN_STATE = object()


def update(
    tx: Any,
    grads: Any = GRADS,
    *,
    params: Any = PARAMS,
    state: Any = _OWN_STATE,
    state_of: Any = None,
    init: Any = PARAMS,
    **extras: Any,
) -> Callable[[], Any]:
    """``tx.update(grads, state, params, **extras)`` with the state ``(state_of or
    tx).init(init)`` unless given, traced only (``jax.eval_shape``): the checks run as they
    do eagerly, the inputs being constants, without running the maths of the blocks before
    the one that fails."""

    def call() -> Any:
        def traced() -> Any:
            own = (state_of or tx).init(init) if state is _OWN_STATE else state
            return tx.update(grads, own, params, **extras)

        return jax.eval_shape(traced)

    return call


def _vector_schedule(count: jax.Array) -> jax.Array:
    return jnp.full(3, 0.1)


AREA_ROWS = [
    # hyperparameters: what the generated rows do not cover
    row(
        "adam.b1=1.0",
        lambda: optim.adam(0.1, b1=1.0),
        ValueError,
        r"\bb1\b",
        r"must be in \[0\.0, 1\.0\), got 1\.0",
    ),
    row(
        "adam.b2=1.0",
        lambda: optim.adam(0.1, b2=1.0),
        ValueError,
        r"\bb2\b",
        r"must be in \[0\.0, 1\.0\), got 1\.0",
    ),
    row(
        "adam.b1=inf",
        lambda: optim.adam(0.1, b1=math.inf),
        ValueError,
        r"\bb1\b",
        r"must be finite, got inf",
    ),
    row(
        "sgd.learning_rate=1j",
        lambda: optim.sgd(1j),
        TypeError,
        r"learning_rate",
        r"must be real, got dtype complex64",
    ),
    row(
        "sgd.learning_rate=True",
        lambda: optim.sgd(True),
        TypeError,
        r"learning_rate",
        r"must be a number, got bool",
    ),
    row(
        "sgd.learning_rate=array",
        lambda: optim.sgd(jnp.ones(2)),
        ValueError,
        r"learning_rate",
        r"must be a scalar, got an array of shape \(2,\)",
    ),
    row(
        "sgd.momentum=nan",
        lambda: optim.sgd(0.1, momentum=math.nan),
        ValueError,
        r"\bmomentum\b",
        r"must be finite",
    ),
    row(
        "rmsprop.momentum=nan",
        lambda: optim.rmsprop(0.1, momentum=math.nan),
        ValueError,
        r"\bmomentum\b",
        r"must be finite",
    ),
    row(
        "muon.adam_learning_rate=nan",
        lambda: optim.contrib.muon(0.1, adam_learning_rate=math.nan),
        ValueError,
        r"\badam_learning_rate\b",
        r"must be finite",
    ),
    row(
        "adafactor.decay_offset='abc'",
        lambda: optim.adafactor(decay_offset="abc"),
        TypeError,
        r"decay_offset",
        r"must be an integer",
    ),
    row(
        "scale_by_factored_rms.step_offset='abc'",
        lambda: optim.scale_by_factored_rms(step_offset="abc"),
        TypeError,
        r"step_offset",
        r"must be an integer",
    ),
    row(
        "adafactor.weight_decay_rate=nan",
        lambda: optim.adafactor(weight_decay_rate=math.nan),
        ValueError,
        r"weight_decay_rate",
        r"must be finite",
    ),
    row(
        "prodigy.betas[1]=1.5",
        lambda: optim.contrib.prodigy(betas=(0.9, 1.5)),
        ValueError,
        path("betas[1]"),
        r"must be in \[0\.0, 1\.0\)",
    ),
    row(
        "scale_by_zoom_linesearch.max_learning_rate=nan",
        lambda: optim.scale_by_zoom_linesearch(3, max_learning_rate=math.nan),
        ValueError,
        r"max_learning_rate",
        r"must be finite",
    ),
    row(
        "adam.mu_dtype=int8",
        lambda: optim.adam(0.1, mu_dtype=jnp.int8),
        TypeError,
        r"mu_dtype",
        r"must be a floating or complex dtype, got int8",
    ),
    row(
        "adam.nu_dtype='floaty'",
        lambda: optim.adam(0.1, nu_dtype="floaty"),
        TypeError,
        r"nu_dtype",
        r"must be a dtype, got 'floaty'",
    ),
    row(
        "noisy_sgd.key='abc'",
        lambda: optim.noisy_sgd(0.1, key="abc"),
        TypeError,
        r"\bkey\b",
        r"must be an int seed or a jax.random key",
    ),
    row(
        "noisy_sgd.key and seed",
        lambda: optim.noisy_sgd(0.1, key=0, seed=1),
        ValueError,
        r"key or seed",
        r"not both",
    ),
    row(
        "polyak_sgd.variant",
        lambda: optim.polyak_sgd(variant="x"),
        ValueError,
        r"variant",
        r"must be one of \('sps', 'sps\+'\), got 'x'",
    ),
    row(
        "scale_by_zoom_linesearch.initial_guess_strategy",
        lambda: optim.scale_by_zoom_linesearch(5, initial_guess_strategy="two"),
        ValueError,
        r"initial_guess_strategy",
        r"must be 'one' or 'keep', got 'two'",
    ),
    row(
        "scale_by_schedule.step_size_fn=0.1",
        lambda: optim.scale_by_schedule(0.1),
        TypeError,
        r"step_size_fn",
        r"must be a schedule \(callable\)",
    ),
    row(
        "inject_hyperparams(adam)(-1.0)",
        lambda: optim.inject_hyperparams(optim.adam)(-1.0),
        ValueError,
        r"learning_rate",
        r"must be in \[0\.0, inf\)",
    ),
    row(
        "inject_hyperparams.static_args",
        lambda: optim.inject_hyperparams(optim.adam, static_args=("zzz",))(0.1),
        ValueError,
        r"static_args",
        r"must name parameters of inner_factory; got \['zzz'\]",
    ),
    row(
        "with_hyperparams.lr",
        lambda: optim.with_hyperparams(optim.adam(0.1), lr=0.1),
        ValueError,
        r"named lr",
        r"its float hyperparameters are \['b1'",
    ),
    row(
        "with_hyperparams.b1=1.0",
        lambda: optim.with_hyperparams(optim.adam(0.1), b1=1.0),
        ValueError,
        r"\bb1\b",
        r"must be in \[0\.0, 1\.0\)",
    ),
    row(
        "with_hyperparams.optimizer",
        lambda: optim.with_hyperparams("adam", learning_rate=0.1),
        TypeError,
        r"optimizer",
        r"must have init and update",
    ),
    row(
        "hyperparams.state with a state",
        lambda: optim.hyperparams({"a": 1}, state={}),
        TypeError,
        r"\bx\b",
        r"must be an optimizer when state is given",
    ),
    # the learning rate as a schedule that does not return a scalar
    row(
        "sgd.learning_rate schedule returns a vector",
        update(optim.sgd(_vector_schedule)),
        ValueError,
        r"learning_rate is a schedule",
        r"must return a scalar",
    ),
    # states that belong to another optimizer
    row(
        "sgd.update adam's state",
        update(optim.sgd(0.1, momentum=0.9), state_of=optim.adam(0.1)),
        TypeError,
        r"state\[0\] is a ScaleByAdamState",
        r"pass the state this optimizer's init returned",
    ),
    row(
        "adam.update sgd's state",
        update(optim.adam(0.1), state_of=optim.sgd(0.1, momentum=0.9)),
        TypeError,
        r"state\[0\] is a TraceState",
        r"ScaleByAdam cannot use \(it has no field 'mu'\)",
    ),
    row(
        "adamw.update state of another length",
        update(optim.adamw(0.1), state_of=optim.adam(0.1)),
        ValueError,
        r"\bstate\b",
        r"does not belong to this chain of 3 transformations",
    ),
    row(
        "adam.update state=None",
        update(optim.adam(0.1), state=None),
        ValueError,
        r"\bstate\b",
        r"create it with init",
    ),
    row(
        "adamw.update params shape names params",
        update(optim.adamw(0.1), params={**PARAMS, "w": jnp.ones((2, 3))}),
        ValueError,
        path("grads['w']"),
        path("but params['w'] has shape (2, 3)"),
    ),
    row(
        "adam.update grads as a list",
        update(optim.adam(0.1), [GRADS["w"], GRADS["b"]]),
        ValueError,
        path("missing from grads: ['b'], ['w']"),
        path("not in the optimizer state"),
    ),
    row(
        "adam.update grads with an extra leaf",
        update(optim.adam(0.1), {**GRADS, "c": jnp.ones(1)}),
        ValueError,
        path("['c']"),
        r"not in the optimizer state",
    ),
    row(
        "scale_by_adam.update integer grads",
        update(optim.scale_by_adam(), {**GRADS, "b": jnp.ones(2, jnp.int32)}),
        TypeError,
        path("grads['b']"),
        r"must be floating",
    ),
    row(
        "polyak_sgd.update without value",
        update(optim.polyak_sgd()),
        TypeError,
        r"value=loss",
        r"needs the loss",
    ),
    row(
        "polyak_sgd.update vector value",
        update(optim.polyak_sgd(), value=jnp.ones(2)),
        ValueError,
        r"\bvalue\b",
        r"must be the scalar loss, got shape \(2,\)",
    ),
    row(
        "lbfgs.update without value",
        update(optim.lbfgs()),
        TypeError,
        r"\['value', 'grad', 'value_fn'\]",
        r"needs the keyword arguments",
    ),
    row(
        "lookahead.update plain params",
        update(
            optim.lookahead(optim.sgd(0.1), 2, 0.5), init=optim.LookaheadParams.init_synced(PARAMS)
        ),
        ValueError,
        r"LookaheadParams",
        r"needs params=LookaheadParams\(fast=\.\.\., slow=\.\.\.\)",
    ),
    # apply_updates
    row(
        "apply_updates missing leaf",
        lambda: optim.apply_updates(PARAMS, {"w": GRADS["w"]}),
        ValueError,
        path("missing from updates: ['b']"),
        r"structure of params",
    ),
    row(
        "apply_updates extra leaf",
        lambda: optim.apply_updates(PARAMS, {**GRADS, "c": jnp.ones(1)}),
        ValueError,
        path("not in params: ['c']"),
        r"structure of params",
    ),
    row(
        "apply_updates leaf shape",
        lambda: optim.apply_updates(PARAMS, {**GRADS, "w": jnp.ones((2, 3))}),
        ValueError,
        path("updates['w']"),
        path("has shape (2, 3) but params['w'] has shape (3, 2)"),
    ),
    row(
        "apply_updates list for dict",
        lambda: optim.apply_updates(PARAMS, [GRADS["b"], GRADS["w"]]),
        ValueError,
        path("missing from updates: ['b'], ['w']"),
        path("not in params: [0], [1]"),
    ),
    row(
        "apply_updates tuple for list",
        lambda: optim.apply_updates([PARAMS["w"]], (GRADS["w"],)),
        ValueError,
        r"\bupdates\b",
        r"leaf paths of params but other container types",
    ),
    row(
        "apply_updates integer params",
        lambda: optim.apply_updates({"w": jnp.ones(2, jnp.int32)}, {"w": jnp.ones(2)}),
        TypeError,
        path("params['w']"),
        r"dtype int32; optimizers update floating or complex arrays only",
    ),
    row(
        "apply_updates integer updates",
        lambda: optim.apply_updates(PARAMS, {**GRADS, "w": jnp.ones((3, 2), jnp.int32)}),
        TypeError,
        path("updates['w']"),
        r"dtype int32; updates must be floating",
    ),
    row(
        "apply_updates complex updates",
        lambda: optim.apply_updates(PARAMS, {**GRADS, "w": jnp.ones((3, 2), jnp.complex64)}),
        TypeError,
        path("updates['w']"),
        path("but params['w'] is real (float32)"),
    ),
    row(
        "apply_updates_kahan leaf shape",
        lambda: optim.apply_updates_kahan(
            PARAMS, {**GRADS, "w": jnp.ones((2, 3))}, optim.kahan_compensation(PARAMS)
        ),
        ValueError,
        path("updates['w']"),
        path("but params['w'] has shape (3, 2)"),
    ),
    row(
        "apply_updates_kahan compensation",
        lambda: optim.apply_updates_kahan(PARAMS, GRADS, {"w": PARAMS["w"]}),
        ValueError,
        r"compensation",
        path("missing from compensation: ['b']"),
    ),
    row(
        "apply_updates_stochastic leaf shape",
        lambda: optim.apply_updates_stochastic(PARAMS, {**GRADS, "w": jnp.ones((2, 3))}, KEY),
        ValueError,
        path("updates['w']"),
        path("but params['w'] has shape (3, 2)"),
    ),
    # chain, partition, masked, freeze and the other wrappers
    row(
        "chain argument a string",
        lambda: optim.chain(optim.sgd(0.1), "adam"),
        TypeError,
        r"chain argument 1",
        r"must be a gradient transformation with init and update",
    ),
    row(
        "chain argument a factory",
        lambda: optim.chain(optim.adam),
        TypeError,
        r"chain argument 0",
        r"got function adam; call the factory",
    ),
    row(
        "chain argument an optax factory",
        lambda: optim.chain(optax.adam),
        TypeError,
        r"chain argument 0",
        r"call the factory to build one",
    ),
    row(
        "partition transforms a list",
        lambda: optim.partition([optim.sgd(0.1)], "a"),
        TypeError,
        r"transforms",
        r"must be a dict from labels to transformations, got list",
    ),
    row(
        "partition transform a string",
        lambda: optim.partition({"a": "sgd"}, "a"),
        TypeError,
        path("transforms['a']"),
        r"must be a gradient transformation",
    ),
    row(
        "partition label without transform",
        lambda: _partition({"w": "a", "b": "c"}),
        ValueError,
        r"param_labels",
        r"labels with no transformation: \[\"'c'\"\]",
    ),
    row(
        "partition labels of another structure",
        lambda: _partition({"w": "a", "x": "b"}).init(PARAMS),
        ValueError,
        path("param_labels['x']"),
        path("no entry in param_labels for params['b']"),
    ),
    row(
        "partition label function",
        lambda: _partition(lambda p: {"w": "a", "b": "z"}).init(PARAMS),
        ValueError,
        r"param_labels",
        r"labels with no transformation: \[\"'z'\"\]",
    ),
    row(
        "partition regex matches no leaf",
        lambda: _partition({"a": r"w"}).init(PARAMS),
        ValueError,
        r"leaf 'b'",
        r"matches none of the patterns \['w'\]",
    ),
    row(
        "partition invalid regex",
        lambda: _partition({"a": r"w("}),
        ValueError,
        path("param_labels['a']"),
        r"is not a valid regular expression",
    ),
    row(
        "partition.update grads missing a leaf",
        update(_partition({"w": "a", "b": "b"}), {"w": GRADS["w"]}),
        ValueError,
        path("missing from grads: ['b']"),
        r"structure of params",
    ),
    row(
        "masked mask of another structure",
        lambda: optim.masked(optim.adam(0.1), {"w": True, "x": False}).init(PARAMS),
        ValueError,
        path("mask['x']"),
        path("no entry in mask for params['b']"),
    ),
    row(
        "masked mask not a bool",
        lambda: optim.masked(optim.adam(0.1), {"w": 1, "b": False}).init(PARAMS),
        TypeError,
        path("mask['w']"),
        r"must be a Python bool \(masks are static\), got 1",
    ),
    row(
        "masked inner a string",
        lambda: optim.masked("adam", {"w": True, "b": False}),
        TypeError,
        r"\binner\b",
        r"must be a gradient transformation",
    ),
    row(
        "masked.update grads missing a leaf",
        update(optim.masked(optim.adam(0.1), {"w": True, "b": False}), {"w": GRADS["w"]}),
        ValueError,
        path("missing from grads: ['b']"),
        r"structure of params",
    ),
    row(
        "adamw mask missing a leaf",
        lambda: optim.adamw(0.1, mask={"w": True}).init(PARAMS),
        ValueError,
        r"\bmask\b",
        path("no entry in mask for params['b']"),
    ),
    row(
        "freeze mask not a bool",
        lambda: optim.freeze({"w": "yes", "b": False}).init(PARAMS),
        TypeError,
        path("mask['w']"),
        r"must be a Python bool",
    ),
    row(
        "lookahead.sync_period=0",
        lambda: optim.lookahead(optim.sgd(0.1), 0, 0.5),
        ValueError,
        r"sync_period",
        r"must be an int >= 1, got 0",
    ),
    row(
        "MultiSteps.every_k_schedule=0",
        lambda: optim.MultiSteps(optim.sgd(0.1), 0),
        ValueError,
        r"every_k_schedule",
        r"must be an int >= 1, got 0",
    ),
    row(
        "apply_if_finite.max_consecutive_errors=-1",
        lambda: optim.apply_if_finite(optim.sgd(0.1), -1),
        ValueError,
        r"max_consecutive_errors",
        r"must be an int >= 0",
    ),
    row(
        "flatten.inner=None",
        lambda: optim.flatten(None),
        TypeError,
        r"\binner\b",
        r"must be a gradient transformation",
    ),
    row(
        "stochastic_rounding.seed",
        lambda: optim.stochastic_rounding(optim.sgd(0.1), "0"),
        TypeError,
        r"\bseed\b",
        r"must be an int, got str",
    ),
    # schedules
    row(
        "join_schedules empty",
        lambda: optim.join_schedules([], []),
        ValueError,
        r"schedules",
        r"must hold at least one schedule",
    ),
    row(
        "join_schedules boundaries count",
        lambda: optim.join_schedules([optim.constant_schedule(1.0)] * 2, [1, 2]),
        ValueError,
        r"boundaries",
        r"must hold one int fewer than schedules \(2\), got 2",
    ),
    row(
        "join_schedules boundaries decreasing",
        lambda: optim.join_schedules([optim.constant_schedule(1.0)] * 3, [5, 2]),
        ValueError,
        r"boundaries",
        r"must be non-decreasing, got \[5, 2\]",
    ),
    row(
        "join_schedules not callable",
        lambda: optim.join_schedules([1.0, 2.0], [3]),
        TypeError,
        path("schedules[0]"),
        r"must be a schedule \(a function of the step count\)",
    ),
    row(
        "piecewise_constant_schedule key a string",
        lambda: optim.piecewise_constant_schedule(0.1, {"a": 0.1}),
        TypeError,
        r"boundaries_and_scales key 'a'",
        r"must be an int",
    ),
    row(
        "piecewise_constant_schedule negative key",
        lambda: optim.piecewise_constant_schedule(0.1, {-5: 0.1}),
        ValueError,
        r"boundaries_and_scales key -5",
        r"must be an int >= 0, got -5",
    ),
    row(
        "piecewise_constant_schedule scale nan",
        lambda: optim.piecewise_constant_schedule(0.1, {5: math.nan}),
        ValueError,
        path("boundaries_and_scales[5]"),
        r"must be finite",
    ),
    row(
        "piecewise_constant_schedule not a dict",
        lambda: optim.piecewise_constant_schedule(0.1, [5, 0.1]),
        TypeError,
        r"boundaries_and_scales",
        r"must be a dict \{step: scale\}",
    ),
    row(
        "piecewise_interpolate_schedule type",
        lambda: optim.piecewise_interpolate_schedule("cubic", 0.1, {5: 0.1}),
        ValueError,
        r"interpolate_type",
        r"must be one of 'linear', 'cosine', got 'cubic'",
    ),
    row(
        "wsd_schedule.decay_type",
        lambda: optim.wsd_schedule(0.0, 1.0, 5, 5, 5, decay_type="exp"),
        ValueError,
        r"decay_type",
        r"must be one of 'linear', 'cosine', '1-sqrt', got 'exp'",
    ),
    row(
        "wsd_schedule.stable_steps=-1",
        lambda: optim.wsd_schedule(0.0, 1.0, 5, -1, 5),
        ValueError,
        r"stable_steps",
        r"must be an int >= 0, got -1",
    ),
    row(
        "exponential_decay.staircase",
        lambda: optim.exponential_decay(0.1, 10, 0.5, staircase="yes"),
        TypeError,
        r"staircase",
        r"must be True or False, got str",
    ),
    row(
        "sgdr_schedule cycle missing arguments",
        lambda: optim.sgdr_schedule([{"init_value": 0.1}]),
        TypeError,
        path("cosine_kwargs[0]"),
        r"missing 3 required positional arguments",
    ),
    row(
        "sgdr_schedule empty",
        lambda: optim.sgdr_schedule([]),
        ValueError,
        r"cosine_kwargs",
        r"must hold at least one cycle",
    ),
    row(
        "warmup_cosine_decay_schedule decay before warmup",
        lambda: optim.warmup_cosine_decay_schedule(0.0, 1.0, 10, 5),
        ValueError,
        r"decay_steps \(5\)",
        r"must exceed warmup_steps \(10\)",
    ),
    row(
        "cosine_decay_schedule.decay_steps=-3",
        lambda: optim.cosine_decay_schedule(0.1, -3),
        ValueError,
        r"decay_steps",
        r"must be an int >= 1, got -3",
    ),
    row(
        "linear_schedule.transition_steps=2.5",
        lambda: optim.linear_schedule(0.1, 0.0, 2.5),
        TypeError,
        r"transition_steps",
        r"must be an int \(step counts are static, like array shapes\), got float 2.5",
    ),
    row(
        "warmup_constant_schedule.warmup_steps traced",
        lambda: jax.jit(lambda n: optim.warmup_constant_schedule(0.0, 1.0, n))(3),
        TypeError,
        r"warmup_steps",
        r"must be an int \(step counts are static",
    ),
    # fit
    row("fit.steps=0", fit(steps=0), ValueError, r"\bsteps\b", r"must be an int >= 1, got 0"),
    *[
        row(
            f"fit.{flag}='no'",
            fit(**{flag: "no"}),
            TypeError,
            rf"\b{flag}\b",
            r"must be True or False, got str 'no'",
        )
        for flag in ("has_aux", "drop_last", "resume", "skip_nonfinite", "progress")
    ],
    row(
        "value_and_grad.has_aux=1",
        lambda: optim.value_and_grad(mse, has_aux=1),
        TypeError,
        r"\bhas_aux\b",
        r"must be True or False, got int 1",
    ),
    row(
        "mixed_precision_loss.has_aux='no'",
        lambda: optim.mixed_precision_loss(
            mse, "params=float32,compute=bfloat16,output=float32", has_aux="no"
        ),
        TypeError,
        r"\bhas_aux\b",
        r"must be True or False, got str 'no'",
    ),
    row(
        "sgd.momentum=-0.5",
        lambda: optim.sgd(0.1, momentum=-0.5),
        ValueError,
        r"\bmomentum\b",
        r"must be in \[0\.0, inf\), got -0\.5",
    ),
    *[
        row(
            f"{name}.nesterov without momentum",
            lambda f=f: f(0.1, nesterov=True),
            ValueError,
            r"nesterov=True",
            r"needs a momentum",
        )
        for name, f in (("sgd", optim.sgd), ("rmsprop", optim.rmsprop))
    ],
    row(
        "sgd.nesterov='no'",
        lambda: optim.sgd(0.1, 0.9, nesterov="no"),
        TypeError,
        r"\bnesterov\b",
        r"must be True or False, got str 'no'",
    ),
    row("fit.steps=2.5", fit(steps=2.5), TypeError, r"\bsteps\b", r"must be an int, got float 2.5"),
    row(
        "fit.steps and epochs", fit(epochs=1, key=KEY), ValueError, r"steps or epochs", r"not both"
    ),
    row("fit without steps or epochs", fit(steps=None), ValueError, r"steps=", r"or epochs="),
    row(
        "fit.epochs=0",
        fit(steps=None, epochs=0, key=KEY),
        ValueError,
        r"\bepochs\b",
        r"must be an int >= 1",
    ),
    row(
        "fit.epochs without key",
        fit(steps=None, epochs=1),
        ValueError,
        r"key is required",
        r"key=jax.random.PRNGKey\(0\)",
    ),
    row(
        "fit.batch_size=0",
        fit(batch_size=0, key=KEY),
        ValueError,
        r"batch_size",
        r"must be an int >= 1, got 0",
    ),
    row(
        "fit.batch_size larger than data",
        fit(batch_size=9, key=KEY),
        ValueError,
        r"batch_size=9",
        r"is larger than the data \(8 examples\)",
    ),
    row(
        "fit.batch_size without key",
        fit(batch_size=4),
        ValueError,
        r"key is required",
        r"when batch_size is set",
    ),
    row(
        "fit.key an int",
        fit(batch_size=4, key=0),
        TypeError,
        r"\bkey\b",
        r"must be a PRNG key such as jax.random.PRNGKey\(0\)",
    ),
    row(
        "fit.key a batch of keys",
        fit(batch_size=4, key=jax.random.split(KEY, 3)),
        TypeError,
        r"\bkey\b",
        r"uint32 array of shape \(3, 2\)",
    ),
    row(
        "fit.key a typed key array",
        fit(batch_size=4, key=jax.random.split(jax.random.key(0))),
        ValueError,
        r"\bkey\b",
        r"must be a single PRNG key, got a key array of shape \(2,\)",
    ),
    row(
        "fit.data leading sizes differ",
        fit(data=(X, Y[:7])),
        ValueError,
        path("data[0] has 8, data[1] has 7"),
        r"must share their leading \(example\) size",
    ),
    row(
        "fit.data scalar leaf",
        fit(data=(X, jnp.float32(1))),
        ValueError,
        path("data[1]"),
        r"needs a leading example axis",
    ),
    row(
        "fit.data empty", fit(data={}), ValueError, r"\bdata\b", r"must contain at least one array"
    ),
    row(
        "fit.data iterator with epochs",
        fit(data=iter([DATA]), steps=None, epochs=1),
        ValueError,
        r"iterator of batches",
        r"give steps",
    ),
    row(
        "fit.loss_fn a string",
        fit(loss_fn="mse"),
        TypeError,
        r"loss_fn",
        r"must be a function loss_fn\(params, batch\)",
    ),
    row(
        "fit.loss_fn not scalar",
        fit(loss_fn=lambda p, b: b[0] @ p["w"]),
        ValueError,
        r"loss_fn",
        r"must return a scalar loss, got shape \(8, 2\)",
    ),
    row(
        "fit.has_aux with a scalar loss",
        fit(has_aux=True),
        ValueError,
        r"has_aux=True",
        r"must return a pair \(loss, aux\), got an array of shape \(\)",
    ),
    row(
        "fit.optimizer a string",
        fit(optimizer="adam"),
        TypeError,
        r"optimizer",
        r"must be a gradient transformation",
    ),
    row(
        "fit.optimizer a factory",
        fit(optimizer=optim.adam),
        TypeError,
        r"optimizer",
        r"call the factory to build one",
    ),
    row(
        "fit.params integer",
        fit(params={**PARAMS, "w": jnp.ones((3, 2), jnp.int32)}),
        TypeError,
        path("params['w']"),
        r"dtype int32",
    ),
    row("fit.accumulate=0", fit(accumulate=0), ValueError, r"accumulate", r"must be an int >= 1"),
    row(
        "fit.accumulate not dividing the batch",
        fit(accumulate=3),
        ValueError,
        r"accumulate=3",
        r"must divide the batch size, got a batch of 8",
    ),
    row(
        "fit.chunk_size=0",
        fit(chunk_size=0),
        ValueError,
        r"chunk_size",
        r"must be an int >= 1, got 0",
    ),
    row(
        "fit.max_consecutive_skips=0",
        fit(max_consecutive_skips=0),
        ValueError,
        r"max_consecutive_skips",
        r"must be an int >= 1",
    ),
    row(
        "fit.eval_every=0",
        fit(**EVAL | {"eval_every": 0}),
        ValueError,
        r"eval_every",
        r"must be an int >= 1",
    ),
    row(
        "fit.eval_every without eval_data",
        fit(eval_every=1),
        ValueError,
        r"eval_every",
        r"needs eval_data",
    ),
    row(
        "fit.metrics without eval_data",
        fit(metrics=["loss"]),
        ValueError,
        r"metrics",
        r"pass eval_data=",
    ),
    row(
        "fit.metrics a string",
        fit(eval_data=DATA, metrics="loss"),
        TypeError,
        r"metrics",
        r"must be a sequence of names or a dict, got the string 'loss'",
    ),
    row(
        "fit.metrics unknown name",
        fit(eval_data=DATA, metrics=["acc"]),
        ValueError,
        r"unknown metric 'acc'",
        r"built-in metrics are loss, accuracy",
    ),
    row(
        "fit.metrics not callable",
        fit(eval_data=DATA, metrics={"m": 3}),
        TypeError,
        path("metrics['m']"),
        r"must be callable",
    ),
    row(
        "fit.early_stopping a string",
        fit(**EVAL, early_stopping="loss"),
        TypeError,
        r"early_stopping",
        r"must be an optim.EarlyStopping",
    ),
    row(
        "fit.early_stopping unknown metric",
        fit(**EVAL, early_stopping=optim.EarlyStopping(metric="acc")),
        ValueError,
        r"early_stopping.metric='acc'",
        r"is not among the metrics computed \(loss\)",
    ),
    row(
        "fit.early_stopping.mode",
        fit(**EVAL, early_stopping=optim.EarlyStopping(mode="low")),
        ValueError,
        r"early_stopping.mode",
        r"must be 'min' or 'max', got 'low'",
    ),
    row(
        "fit.early_stopping.patience=0",
        fit(**EVAL, early_stopping=optim.EarlyStopping(patience=0)),
        ValueError,
        r"early_stopping.patience",
        r"must be an int >= 1",
    ),
    row(
        "fit.early_stopping without eval_every",
        fit(eval_data=DATA, early_stopping=optim.EarlyStopping()),
        ValueError,
        r"early_stopping",
        r"needs eval_data and eval_every",
    ),
    row(
        "fit.checkpoint_every without checkpoint_dir",
        fit(checkpoint_every=1),
        ValueError,
        r"checkpoint_every",
        r"needs checkpoint_dir",
    ),
    row(
        "fit.resume without checkpoint_dir",
        fit(resume=True),
        ValueError,
        r"resume=True",
        r"needs checkpoint_dir",
    ),
    row(
        "fit.flatten='yes'",
        fit(flatten="yes"),
        ValueError,
        r"flatten",
        r"must be True, False or 'auto', got 'yes'",
    ),
    row(
        "fit.flatten=True with lamb",
        fit(optimizer=optim.lamb(0.1), flatten=True),
        ValueError,
        r"flatten=True",
        r"needs an elementwise optimizer",
    ),
    row(
        "fit.sharding without mesh",
        fit(sharding="zero1"),
        ValueError,
        r"sharding='zero1'",
        r"needs mesh=",
    ),
    row(
        "fit.mesh a string",
        fit(mesh="data"),
        TypeError,
        r"\bmesh\b",
        r"must be a jax.sharding.Mesh, got str",
    ),
    row(
        "fit.data_axis not in mesh",
        fit(mesh=TWO_DEVICE_MESH, data_axis="batch"),
        ValueError,
        r"data_axis='batch'",
        r"is not an axis of the mesh \{'data': 2\}",
    ),
    row(
        "fit.sharding unknown",
        fit(mesh=TWO_DEVICE_MESH, sharding="zero3"),
        ValueError,
        r"\bsharding\b",
        r"must be one of replicated, zero1, fsdp, got 'zero3'",
    ),
    row(
        "fit.mesh not dividing the batch",
        fit(mesh=TWO_DEVICE_MESH, batch_size=3, key=KEY),
        ValueError,
        r"data axis 'data' has 2 devices",
        r"does not divide the batch of 3 examples; choose batch_size as a multiple of 2",
    ),
    row(
        "fit.mesh not dividing the last partial batch",
        fit(
            mesh=TWO_DEVICE_MESH,
            data=(X[:7], Y[:7]),
            steps=None,
            epochs=1,
            batch_size=4,
            drop_last=False,
            key=KEY,
        ),
        ValueError,
        r"data axis 'data' has 2 devices",
        r"does not divide the batch of 3 examples",
    ),
    row(
        "fit.flatten=True with mesh",
        fit(mesh=TWO_DEVICE_MESH, flatten=True),
        ValueError,
        r"flatten=True",
        r"cannot be combined with mesh=",
    ),
    row(
        "sample_batch.batch_size larger than data",
        lambda: optim.sample_batch(DATA, KEY, 9),
        ValueError,
        r"batch_size=9",
        r"is larger than the data \(8 examples\)",
    ),
    row(
        "sample_batch.key",
        lambda: optim.sample_batch(DATA, 0, 2),
        TypeError,
        r"\bkey\b",
        r"must be a PRNG key",
    ),
    row(
        "num_examples leading sizes differ",
        lambda: optim.num_examples((X, Y[:3])),
        ValueError,
        path("data[1] has 3"),
        r"must share their leading",
    ),
    row(
        "value_and_grad.loss_fn a string",
        lambda: optim.value_and_grad("mse"),
        TypeError,
        r"loss_fn",
        r"must be a function of \(model, \*args\)",
    ),
    row(
        "value_and_grad_from_state.value_fn",
        lambda: optim.value_and_grad_from_state(3),
        TypeError,
        r"value_fn",
        r"must be the loss function",
    ),
    row(
        "bytes_per_parameter without float params",
        lambda: optim.bytes_per_parameter({}, {"n": 3}),
        ValueError,
        r"\bparams\b",
        r"holds no floating-point array to count",
    ),
    row(
        "schedule_free_eval_params adam's state",
        lambda: optim.contrib.schedule_free_eval_params(optim.adam(0.1).init(PARAMS), PARAMS),
        TypeError,
        r"schedule_free_eval_params",
        r"needs the state of a schedule_free optimizer",
    ),
    row(
        "kahan_compensation integer params",
        lambda: optim.kahan_compensation({"n": jnp.arange(3)}),
        TypeError,
        path("params['n']"),
        r"dtype int32",
    ),
    # checkpoint
    row(
        "checkpoint.save step=-1",
        lambda: checkpoint.save(_checkpoints(), -1, PARAMS),
        ValueError,
        r"\bstep\b",
        r"must be a non-negative int, got -1",
    ),
    row(
        "checkpoint.save step=1.5",
        lambda: checkpoint.save(_checkpoints(), 1.5, PARAMS),
        ValueError,
        r"\bstep\b",
        r"must be a non-negative int, got 1.5",
    ),
    row(
        "checkpoint.save step exists",
        lambda: checkpoint.save(_checkpoints(), 1, PARAMS),
        FileExistsError,
        r"step_1",
        r"already holds a complete checkpoint for step 1",
    ),
    row(
        "checkpoint.save max_to_keep=0",
        lambda: checkpoint.save(_checkpoints(), 2, PARAMS, max_to_keep=0),
        ValueError,
        r"max_to_keep",
        r"must be None or a positive int, got 0",
    ),
    row(
        "checkpoint.save metadata with an array",
        lambda: checkpoint.save(_checkpoints(), 2, PARAMS, metadata={"a": jnp.ones(2)}),
        TypeError,
        r"metadata",
        r"must be JSON-serialisable \(convert arrays with .tolist\(\)\)",
    ),
    row(
        "checkpoint.save metadata a list",
        lambda: checkpoint.save(_checkpoints(), 2, PARAMS, metadata=[1]),
        TypeError,
        r"metadata",
        r"must be a dict or None, got list",
    ),
    row(
        "checkpoint.save under jit",
        lambda: jax.jit(lambda p: checkpoint.save(_checkpoints(), 3, p))(PARAMS),
        TypeError,
        path("tree['b']"),
        r"is a traced value .*call save outside the transformation",
    ),
    row(
        "checkpoint.restore missing directory",
        lambda: checkpoint.restore(_checkpoints() + "/missing", PARAMS),
        FileNotFoundError,
        r"checkpoint directory",
        r"/missing does not exist",
    ),
    row(
        "checkpoint.restore missing step",
        lambda: checkpoint.restore(_checkpoints(), PARAMS, step=7),
        FileNotFoundError,
        r"for step 7",
        r"complete steps: \[1\]",
    ),
    row(
        "checkpoint.restore other structure",
        lambda: checkpoint.restore(_checkpoints(), {"w": PARAMS["w"]}),
        ValueError,
        path("['b']"),
        r"does not match the template's structure",
    ),
    row(
        "checkpoint.restore other shape",
        lambda: checkpoint.restore(_checkpoints(), {**PARAMS, "w": jnp.ones((2, 3))}),
        ValueError,
        path("['w']: checkpoint has float32[3,2]"),
        r"template has float32\[2,3\]",
    ),
    # sweep and hypergradient descent
    row(
        "sweep.grid a list",
        sweep(grid=[0.1]),
        TypeError,
        r"\bgrid\b",
        r"must be a dict of hyperparameter name -> sequence of numbers, got list",
    ),
    row(
        "sweep.grid empty",
        sweep(grid={}),
        ValueError,
        r"\bgrid\b",
        r"give at least one hyperparameter",
    ),
    row(
        "sweep.grid a scalar",
        sweep(grid={"learning_rate": 0.1}),
        TypeError,
        path("grid['learning_rate']"),
        r"must be a sequence of numbers",
    ),
    row(
        "sweep.grid nan",
        sweep(grid={"learning_rate": [math.nan]}),
        ValueError,
        path("grid['learning_rate']"),
        r"must hold finite numbers",
    ),
    row(
        "sweep.grid empty values",
        sweep(grid={"learning_rate": []}),
        ValueError,
        path("grid['learning_rate']"),
        r"is empty: give at least one value",
    ),
    row(
        "sweep.grid a string value",
        sweep(grid={"learning_rate": ["a"]}),
        TypeError,
        path("grid['learning_rate']"),
        r"must hold real numbers, got str 'a'",
    ),
    row(
        "sweep.grid unknown name",
        sweep(grid={"lr": [0.1]}),
        TypeError,
        r"grid name 'lr'",
        r"is not an argument of make_optimizer \(sgd\), which accepts learning_rate",
    ),
    row(
        "sweep.grid missing a required argument",
        sweep(make_optimizer=optim.adamw, grid={"b1": [0.1]}),
        TypeError,
        r"requires learning_rate",
        r"which grid does not give",
    ),
    row(
        "sweep.grid negative learning rate",
        sweep(grid={"learning_rate": [0.1, -0.1]}),
        ValueError,
        r"grid point \{'learning_rate': -0.1\}: learning_rate",
        r"must be in \[0\.0, inf\)",
    ),
    row(
        "sweep.grid b1 of 1",
        sweep(make_optimizer=optim.adam, grid={"learning_rate": [0.1], "b1": [0.5, 1.0]}),
        ValueError,
        r"grid point \{'learning_rate': 0.1, 'b1': 1.0\}: b1",
        r"must be in \[0\.0, 1\.0\)",
    ),
    row(
        "sweep.mode",
        sweep(mode="best"),
        ValueError,
        r"\bmode\b",
        r"must be 'min' or 'max', got 'best'",
    ),
    row(
        "sweep.eval_fn without eval_data",
        sweep(eval_fn=mse),
        ValueError,
        r"eval_fn and eval_data",
        r"go together",
    ),
    row("sweep.seeds=0", sweep(seeds=0), ValueError, r"\bseeds\b", r"must be >= 1"),
    row(
        "sweep.seeds a string",
        sweep(seeds="3"),
        TypeError,
        r"\bseeds\b",
        r"must be None, a positive int",
    ),
    row("sweep.steps=0", sweep(steps=0), ValueError, r"\bsteps\b", r"must be an int >= 1"),
    row(
        "sweep.batch_size larger than data",
        sweep(batch_size=20, key=KEY),
        ValueError,
        r"batch_size=20",
        r"is larger than the data \(8 examples\)",
    ),
    row(
        "sweep.make_optimizer a string",
        sweep(make_optimizer="sgd"),
        TypeError,
        r"make_optimizer",
        r"must be a function of the grid's names",
    ),
    row(
        "hypergradient_descent.steps=0",
        lambda: optim.hypergradient_descent(lambda h: h["lr"], {"lr": 0.1}, steps=0),
        ValueError,
        r"\bsteps\b",
        r"must be a positive int, got 0",
    ),
    row(
        "hypergradient_descent negative start",
        lambda: optim.hypergradient_descent(lambda h: h["lr"], {"lr": -0.1}, steps=1),
        ValueError,
        path("hyperparams['lr']"),
        r"must be a positive number, got -0.1",
    ),
    row(
        "hypergradient_descent no hyperparams",
        lambda: optim.hypergradient_descent(lambda h: 0.0, {}, steps=1),
        ValueError,
        r"hyperparams",
        r"must be a non-empty dict name -> positive number",
    ),
    # quantized state
    row(
        "with_state_dtype adagrad",
        lambda: optim.with_state_dtype(optim.adagrad(0.1), "int8"),
        ValueError,
        r"state_dtype='int8'",
        r"not available for scale_by_rss",
    ),
    row(
        "with_state_dtype centered rmsprop",
        lambda: optim.with_state_dtype(optim.rmsprop(0.1, centered=True), "bfloat16"),
        ValueError,
        r"state_dtype='bfloat16'",
        r"not available for scale_by_r_std_dev",
    ),
    row(
        "with_state_dtype sgd without momentum",
        lambda: optim.with_state_dtype(optim.sgd(0.1), "bfloat16"),
        ValueError,
        r"state_dtype='bfloat16'",
        r"this optimizer keeps no moment to store",
    ),
    row(
        "with_state_dtype 'int4'",
        lambda: optim.with_state_dtype(optim.adam(0.1), "int4"),
        ValueError,
        r"\bstate_dtype\b",
        r"must be None, 'float32', 'bfloat16', 'int8'",
    ),
    row(
        "with_state_dtype twice",
        lambda: optim.with_state_dtype(optim.with_state_dtype(optim.adam(0.1), "int8"), "int8"),
        ValueError,
        r"\btx\b",
        r"already stores its state as int8",
    ),
    row(
        "with_state_dtype.block_size=0",
        lambda: optim.with_state_dtype(optim.adam(0.1), "int8", block_size=0),
        ValueError,
        r"block_size",
        r"must be an int >= 1",
    ),
    row(
        "with_state_dtype.block_size for bfloat16",
        lambda: optim.with_state_dtype(optim.adam(0.1), "bfloat16", block_size=64),
        ValueError,
        r"block_size and min_size",
        r"apply to state_dtype='int8' only",
    ),
    row(
        "with_state_dtype.tx a string",
        lambda: optim.with_state_dtype("adam", "int8"),
        TypeError,
        r"\btx\b",
        r"must be a gradient transformation",
    ),
    row(
        "with_state_dtype adam mu_dtype",
        lambda: optim.with_state_dtype(optim.adam(0.1, mu_dtype=jnp.bfloat16), "int8"),
        ValueError,
        r"mu_dtype.*state_dtype='int8'",
        r"give one of them",
    ),
    row(
        "quantized.Int8Blockwise.block_size=256.0",
        lambda: Q.Int8Blockwise(block_size=256.0),
        TypeError,
        r"block_size",
        r"must be an int",
    ),
    # precision
    row(
        "mixed_precision_loss policy",
        lambda: optim.mixed_precision_loss(mse, "params=float33"),
        TypeError,
        r"param_dtype",
        r"must be a floating dtype",
    ),
    row(
        "mixed_precision_loss.loss_fn",
        lambda: optim.mixed_precision_loss(3, "params=float32"),
        TypeError,
        r"loss_fn",
        r"must be callable",
    ),
    row(
        "stochastic_round integer x",
        lambda: optim.stochastic_round(jnp.ones(3, jnp.int32), jnp.bfloat16, KEY),
        TypeError,
        r"\bx\b",
        r"must be a real floating array, got dtype int32",
    ),
    row(
        "stochastic_round integer dtype",
        lambda: optim.stochastic_round(jnp.ones(3), jnp.int8, KEY),
        TypeError,
        r"\bdtype\b",
        r"must be a real floating dtype, got int8",
    ),
    # models
    row(
        "LinearRegression input width",
        abstract(lambda: models.LinearRegression.init(KEY, 3)(jnp.ones((4, 2)))),
        ValueError,
        r"`x`",
        r"must have shape \(\.\.\., 3\) .* got \(4, 2\)",
    ),
    row(
        "LinearRegression.in_features=0",
        lambda: models.LinearRegression.init(KEY, 0),
        ValueError,
        r"`in_features`",
        r"must be a positive int, got 0",
    ),
    row(
        "LinearRegression.in_features=2.5",
        lambda: models.LinearRegression.init(KEY, 2.5),
        ValueError,
        r"`in_features`",
        r"must be a positive int, got 2.5",
    ),
    row(
        "LinearRegression.closed_form y a vector",
        lambda: models.LinearRegression.closed_form(jnp.ones((4, 2)), jnp.ones(4)),
        ValueError,
        r"`x` and `y`",
        r"y: \(4,\); reshape a vector y with y\[:, None\]",
    ),
    row(
        "LinearRegression.closed_form example counts",
        lambda: models.LinearRegression.closed_form(jnp.ones((4, 2)), jnp.ones((3, 1))),
        ValueError,
        r"`x` and `y`",
        r"with the same n, got x: \(4, 2\) and y: \(3, 1\)",
    ),
    row(
        "MLP.sizes too short",
        lambda: models.MLP.init(KEY, [3]),
        ValueError,
        r"`sizes`",
        r"must list at least the input and output widths",
    ),
    row(
        "MLP.sizes[1]=0",
        lambda: models.MLP.init(KEY, [3, 0, 2]),
        ValueError,
        path("`sizes[1]`"),
        r"must be a positive int, got 0",
    ),
    row(
        "MLP input width",
        abstract(lambda: models.MLP.init(KEY, [3, 4, 2])(jnp.ones((5, 4)))),
        ValueError,
        r"`x`",
        r"must have shape \(\.\.\., 3\)",
    ),
    row(
        "Transformer sequence longer than context",
        lambda: _transformer()(np.zeros((1, 5), np.int32)),
        ValueError,
        r"sequence length 5",
        r"exceeds the model's context_length 4",
    ),
    row(
        "Transformer token out of vocabulary",
        lambda: _transformer()(np.full((1, 3), 16, np.int32)),
        ValueError,
        r"`tokens`",
        r"must lie in \[0, vocab_size=16\), got values in \[16, 16\]",
    ),
    row(
        "Transformer float tokens",
        lambda: _transformer()(np.zeros((1, 3))),
        TypeError,
        r"`tokens`",
        r"must hold integer token ids, got dtype float32",
    ),
    row(
        "Transformer.vocab_size=0",
        lambda: models.Transformer.init(
            KEY, vocab_size=0, context_length=4, d_model=8, num_heads=2, num_layers=1
        ),
        ValueError,
        r"`vocab_size`",
        r"must be a positive int, got 0",
    ),
    row(
        "Transformer.d_model not a multiple of num_heads",
        lambda: models.Transformer.init(
            KEY, vocab_size=16, context_length=4, d_model=9, num_heads=2, num_layers=1
        ),
        ValueError,
        r"`d_model` \(9\)",
        r"must be a multiple of `num_heads` \(2\)",
    ),
    row(
        "Transformer.param_dtype int",
        lambda: models.Transformer.init(
            KEY,
            vocab_size=16,
            context_length=4,
            d_model=8,
            num_heads=2,
            num_layers=1,
            param_dtype=jnp.int32,
        ),
        TypeError,
        r"`param_dtype`",
        r"must be a floating-point dtype",
    ),
    row(
        "generate.temperature=-1",
        lambda: models.generate(_transformer(), KEY, np.zeros(2, np.int32), 3, temperature=-1.0),
        ValueError,
        r"`temperature`",
        r"must be >= 0",
    ),
    row(
        "lm_loss labels of another length",
        lambda: jax.eval_shape(
            models.lm_loss, _transformer(), (np.zeros((2, 3), np.int32), np.zeros((2, 4), np.int32))
        ),
        ValueError,
        r"`labels`",
        r"logits: \(2, 3, 16\) and labels: \(2, 4\)",
    ),
    row(
        "text.windows.context_length=0",
        lambda: models.text.windows(np.arange(10), 0),
        ValueError,
        r"`context_length`",
        r"must be a positive int, got 0",
    ),
    row(
        "datasets.digits.test_fraction=1.5",
        lambda: models.datasets.digits(test_fraction=1.5),
        ValueError,
        r"`test_fraction`",
        r"must be in \(0, 1\), got 1.5",
    ),
    # losses
    row(
        "mean_squared_error shapes",
        lambda: losses.mean_squared_error(jnp.ones((4, 1)), jnp.ones(4)),
        ValueError,
        r"`predictions` and `targets`",
        r"must have the same shape, got predictions: \(4, 1\) and targets: \(4,\)",
    ),
    row(
        "mean_squared_error integer predictions",
        lambda: losses.mean_squared_error(jnp.ones(4, jnp.int32), jnp.ones(4)),
        TypeError,
        r"`predictions`",
        r"must have a floating-point dtype, got int32",
    ),
    row(
        "softmax_cross_entropy shapes",
        lambda: losses.softmax_cross_entropy(jnp.ones((4, 3)), jnp.ones((4, 2))),
        ValueError,
        r"`logits` and `labels`",
        r"must have the same shape",
    ),
    row(
        "softmax_cross_entropy_with_integer_labels shapes",
        lambda: losses.softmax_cross_entropy_with_integer_labels(
            jnp.ones((4, 3)), jnp.ones(5, jnp.int32)
        ),
        ValueError,
        r"`labels`",
        r"must have the shape of `logits` without its class axis \(axis=-1\)",
    ),
    row(
        "softmax_cross_entropy_with_integer_labels float labels",
        lambda: losses.softmax_cross_entropy_with_integer_labels(jnp.ones((4, 3)), jnp.ones(4)),
        TypeError,
        r"`labels`",
        r"must have an integer dtype, got float32",
    ),
    row(
        "accuracy label out of range",
        lambda: losses.accuracy(jnp.ones((4, 3)), jnp.full(4, 3)),
        ValueError,
        r"`labels`",
        r"must lie in \[0, num_classes=3\).*got values in \[3, 3\]",
    ),
    row(
        "sigmoid_binary_cross_entropy shapes",
        lambda: losses.sigmoid_binary_cross_entropy(jnp.ones(4), jnp.ones(3)),
        ValueError,
        r"`logits` and `labels`",
        r"shapes that broadcast together, got logits: \(4,\) and labels: \(3,\)",
    ),
    row(
        "huber_loss shapes",
        lambda: losses.huber_loss(jnp.ones(4), jnp.ones(3)),
        ValueError,
        r"`predictions` and `targets`",
        r"must have the same shape",
    ),
    row(
        "accuracy shapes",
        lambda: losses.accuracy(jnp.ones((4, 3)), jnp.ones(3, jnp.int32)),
        ValueError,
        r"`labels`",
        r"got logits: \(4, 3\) and labels: \(3,\)",
    ),
    row(
        "l2_loss shapes",
        lambda: losses.l2_loss(jnp.ones(4), jnp.ones(3)),
        ValueError,
        r"`predictions` and `targets`",
        r"must have the same shape",
    ),
]

ROWS = hyperparameter_rows() + optimizer_rows() + AREA_ROWS


@pytest.mark.parametrize(("call", "error", "names", "expects"), ROWS)
def test_error_message(call: Callable[[], Any], error: Any, names: str, expects: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # schedules warn about values optax also accepts
        with pytest.raises(error) as info:
            call()
    message = str(info.value)
    assert not type(info.value).__module__.startswith("jax"), f"a raw JAX error: {message}"
    assert re.search(names, message), f"the message does not name {names!r}: {message}"
    assert re.search(expects, message), f"the message does not say {expects!r}: {message}"


def test_table_covers_every_public_factory() -> None:
    """Every public function is a factory with generated rows or has rows of its own; a new
    factory needing a required argument missing from REQUIRED fails here, not silently."""
    generated = {id.split(".")[0] for id in (p.id for p in hyperparameter_rows())}
    for name, (factory, required, _) in factories().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # noisy_sgd warns that it picks key 0
            built = factory(**required)  # the valid arguments build it: rows fail on theirs
        assert callable(getattr(built, "init", None)) or callable(built), name
    # No float, int or flag argument with a value to spoil (transformations, masks, labels,
    # dtypes): the explicit rows cover what they check.
    without_numbers = {
        "centralize", "chain", "flatten", "freeze", "hutchinson_estimator_diag_hessian",
        "identity", "kahan_summation", "keep_params_nonnegative", "named_chain", "normalize",
        "scale_by_schedule", "scale_by_sign", "selective_transform", "set_to_zero",
        "split_real_and_imaginary", "with_state_dtype", "zero_nans",
    }  # fmt: skip
    assert set(factories()) - generated == without_numbers
    assert len(ROWS) >= 150
