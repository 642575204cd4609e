"""Every optimizer in the catalogue keeps the object's guarantees.

For each: re-created with new float hyperparameters it does not recompile; it works under
``jit``, under ``vmap`` over the learning rate (equal to separate runs), under ``grad`` through
two updates (finite, with ``eps_root`` where the square root needs it) and in a ``lax.cond``
between the old and the new state (same structure, shapes and dtypes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import convex_loss, dpsgd_on_one_example, nested_params

import optim

# name -> factory of the learning rate. Float hyperparameters other than the learning rate
# keep their defaults, except eps_root (and friends) where grad through sqrt(v) needs it.
CATALOGUE = {
    "sgd": lambda lr: optim.sgd(lr, momentum=0.9, nesterov=True),
    "adam": lambda lr: optim.adam(lr, eps_root=1e-8),
    "adamw": lambda lr: optim.adamw(lr, eps_root=1e-8),
    "nadam": lambda lr: optim.nadam(lr, eps_root=1e-8),
    "nadamw": lambda lr: optim.nadamw(lr, eps_root=1e-8),
    "rmsprop": lambda lr: optim.rmsprop(lr, centered=True, momentum=0.9),
    "adagrad": optim.adagrad,
    "adabelief": optim.adabelief,
    "adadelta": optim.adadelta,
    "adamax": optim.adamax,
    "adamaxw": optim.adamaxw,
    "adan": lambda lr: optim.adan(lr, eps_root=1e-8),
    "amsgrad": lambda lr: optim.amsgrad(lr, eps_root=1e-8),
    "fromage": optim.fromage,
    "lamb": lambda lr: optim.lamb(lr, eps_root=1e-8),
    "lars": optim.lars,
    "lion": optim.lion,
    "noisy_sgd": lambda lr: optim.noisy_sgd(lr, key=jax.random.PRNGKey(0)),
    "novograd": optim.novograd,
    "optimistic_gradient_descent": optim.optimistic_gradient_descent,
    "optimistic_adam_v2": optim.optimistic_adam_v2,
    "polyak_sgd": lambda lr: optim.polyak_sgd(max_learning_rate=lr),
    "radam": lambda lr: optim.radam(lr, eps_root=1e-8),
    "rprop": optim.rprop,
    "sign_sgd": optim.sign_sgd,
    "signum": optim.signum,
    "yogi": optim.yogi,
    "adafactor": optim.adafactor,
    "sm3": optim.sm3,
    "lbfgs": optim.lbfgs,
    "muon": optim.contrib.muon,
    "adopt": optim.contrib.adopt,
    "ademamix": optim.contrib.ademamix,
    "schedule_free_adamw": optim.contrib.schedule_free_adamw,
    "schedule_free_sgd": optim.contrib.schedule_free_sgd,
    "prodigy": optim.contrib.prodigy,
    "sophia": optim.contrib.sophia,
    "sam": lambda lr: optim.contrib.sam(optim.sgd(lr), optim.sgd(0.01)),
    "acprop": optim.contrib.acprop,
    "cocob": optim.contrib.cocob,
    "dadapt_adamw": optim.contrib.dadapt_adamw,
    "dog": optim.contrib.dog,
    "dowg": optim.contrib.dowg,
    "madgrad": optim.contrib.madgrad,
    "mechanize": lambda lr: optim.contrib.mechanize(optim.sgd(lr)),
    "momo": optim.contrib.momo,
    "momo_adam": optim.contrib.momo_adam,
    "simplified_ademamix": lambda lr: optim.contrib.simplified_ademamix(lr, eps_root=1e-8),
    # dpsgd's update takes per-example gradients (a batch axis on every leaf); these tests
    # hand it ordinary ones, as the gradients of a batch of one example (conftest.BatchOfOne).
    "dpsgd": dpsgd_on_one_example,
    # Projectors refreshed at every step: with optax's default of every 200 steps, the first
    # projector of test_edge_numerics's run comes from a zero gradient (an arbitrary basis of
    # r = 2 of the 3 columns) and holds for 200 steps, in which the third column does not move.
    "galore": lambda lr: optim.contrib.galore(lr, update_proj_gap=1),
}

PARAMS = nested_params()

# Reverse-mode AD cannot go through a lax.while_loop with a data-dependent trip count: the
# zoom line search (here as in optax) is not differentiable; L-BFGS's own update is.
GRAD_VARIANTS = {"lbfgs": lambda lr: optim.lbfgs(lr, linesearch=None)}

# The extra keyword arguments of update each optimizer asks for (the rest take none; ours
# would ignore them, but lbfgs's line search hands every extra argument to value_fn).
EXTRAS = {
    "lbfgs": ("value", "grad", "value_fn"),
    "polyak_sgd": ("value",),
    "sophia": ("obj_fn",),
    "momo": ("value",),
    "momo_adam": ("value",),
}


def _step(tx, params, state, name=""):
    loss, grads = jax.value_and_grad(convex_loss)(params)
    available = {"value": loss, "grad": grads, "value_fn": convex_loss, "obj_fn": convex_loss}
    extras = {k: available[k] for k in EXTRAS.get(name, ())}
    updates, state = tx.update(grads, state, params, **extras)
    return optim.apply_updates(params, updates), state


# Steps run compiled (the optimizer is an argument: one program per optimizer): op by op, the
# line searches and projections of a few optimizers took half a minute a test.
_jitted_step = jax.jit(_step, static_argnames="name")


def _run(tx, name, steps=3):
    params, state = PARAMS, tx.init(PARAMS)
    for _ in range(steps):
        params, state = _jitted_step(tx, params, state, name)
    return params, state


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_catalogue_guarantees(name):
    make = CATALOGUE[name]
    for leaf in jax.tree.leaves(make(1e-2)):  # float32 hyperparameters (or ints, PRNG keys)
        assert leaf.dtype in (jnp.float32, jnp.int32) or jax.dtypes.issubdtype(
            leaf.dtype, jax.dtypes.prng_key
        ), leaf.dtype

    # jit with the optimizer as an argument: one trace for every learning rate.
    traces = []

    @jax.jit
    def jitted(tx, params, state):
        traces.append(1)
        return _step(tx, params, state, name)

    for lr in (1e-3, 1e-2, 3e-2):
        tx = make(lr)
        jitted(tx, PARAMS, tx.init(PARAMS))
    assert len(traces) == 1, f"{name} recompiled for a new learning rate"

    # vmap over the learning rate equals separate runs.
    lrs = jnp.array([1e-3, 3e-2])
    batched = jax.jit(jax.vmap(lambda lr: _run(make(lr), name)[0]))(lrs)
    for i, lr in enumerate([1e-3, 3e-2]):
        single = _run(make(lr), name)[0]
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(a[i], b, rtol=2e-5, atol=1e-6)

    # grad through two updates with respect to the learning rate is finite.
    differentiable = GRAD_VARIANTS.get(name, make)
    grad = jax.jit(jax.grad(lambda lr: convex_loss(_run(differentiable(lr), name, steps=2)[0])))(
        jnp.float32(1e-2)
    )
    assert np.isfinite(float(grad)), f"{name}: grad through the update is {grad}"

    # lax.cond between the old and the new state: same structure, shapes and dtypes.
    tx = make(1e-2)
    state0 = tx.init(PARAMS)
    _, state1 = _jitted_step(tx, PARAMS, state0, name)
    chosen = jax.jit(lambda pred: jax.lax.cond(pred, lambda: state1, lambda: state0))(True)
    assert jax.tree.structure(chosen) == jax.tree.structure(state0)
