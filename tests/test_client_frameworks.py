"""Client code from equinox and flax: their models trained with ``optim`` as their users write it.

Three frameworks (an ``eqx.nn.MLP``; an nnx module through ``nnx.split``/``nnx.merge``; a
linen module's ``params`` dict), each trained on the digits data in three ways that must give
the same losses:

1. a hand-written jitted step calling ``optim``'s ``init``/``update``/``apply_updates`` on the
   framework's own pytree as it is: the whole ``eqx.nn.MLP`` with its activation-function
   leaves (no ``eqx.filter`` around our calls), the nnx ``State``, the linen dict;
2. the same step with optax, in the framework's documented optax idiom (for equinox, optax
   sees ``eqx.filter(model, eqx.is_inexact_array)`` and ``eqx.apply_updates`` puts it back);
3. ``optim.fit`` on the same loss function with the same batches (the whole data set, or the
   minibatches ``fit(steps=, batch_size=, key=)`` draws, which ``optim.sample_batch`` gives).

Tolerance: the three run the same float32 arithmetic (optax is given the same Python floats;
ours keep ``1 - b2`` rounded from the Python value as optax computes it: see
``tests/test_optax_parity.py``). What is left are XLA's fusion and reassociation choices (one
jitted step in the loops, a ``lax.scan`` body in ``fit``), roundings of ~1e-7 relative, which
100 steps on this small network keep below 2e-6 (measured against optax: at most 2.7e-7 in
the losses and 3.7e-7 in the parameters with AdamW, bit-identical with SGD; ``fit`` and the
hand-written loop with ``optim`` agree bit for bit).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import models
import optim

eqx = pytest.importorskip("equinox")
flax = pytest.importorskip("flax")
nnx = pytest.importorskip("flax.nnx")
linen = pytest.importorskip("flax.linen")

STEPS = 100
BATCH_SIZE = 64
HIDDEN = 32
CLASSES = 10
# Same float32 arithmetic, only XLA's fusion differs (module docstring): losses and trained
# parameters of the three paths agree to this relative bound.
RTOL = 2e-6
# Training works: the trained model's loss on the whole training set is below this fraction
# of the initial one (2.3-2.5 at the start, 0.02-0.2 at the end here) and it classifies the
# training set (accuracy 0.96-1.0 here).
MAX_FINAL_LOSS_FRACTION = 0.15
MIN_TRAIN_ACCURACY = 0.9


def decay_matrices(tree: Any) -> Any:
    """Weight decay on matrices only, not on biases (the usual AdamW mask): True at leaves of
    two or more dimensions. A mask function (given params or updates), or a mask tree."""
    return jax.tree.map(lambda x: getattr(x, "ndim", 0) > 1, tree)


def adamw(lib: Any, f: Callable[[float], Any], mask: Any = None) -> Any:
    """AdamW from ``lib`` (optim or optax); ``f`` turns a Python float into what that library
    is given (Python floats for ours, float32 arrays for optax)."""
    return lib.adamw(f(3e-3), f(0.9), f(0.999), f(1e-8), weight_decay=f(1e-2), mask=mask)


def sgd_with_masked_decay(lib: Any, f: Callable[[float], Any]) -> Any:
    """Nesterov SGD with L2 weight decay on the matrices (optax's recipe for SGDW)."""
    return lib.chain(
        lib.add_decayed_weights(f(1e-3), mask=decay_matrices),
        lib.sgd(f(0.1), f(0.9), nesterov=True),
    )


# name -> (builder like ``adamw``, batch size); ``None`` as the batch size is full batch.
OPTIMIZERS = {
    "sgd-nesterov-masked-decay-full-batch": (sgd_with_masked_decay, None),
    "clip-adamw-minibatch": (
        lambda lib, f: lib.chain(lib.clip_by_global_norm(f(1.0)), adamw(lib, f)),
        BATCH_SIZE,
    ),
}
KEY = jax.random.PRNGKey(1)


@pytest.fixture(scope="module")
def digits():
    return models.datasets.digits().train


@pytest.fixture(scope="module")
def minibatches(digits):
    """The batch of each step of ``fit(digits, steps=STEPS, batch_size=BATCH_SIZE, key=KEY)``,
    drawn in one compiled call and sliced on the host (cheaper than 100 eager draws)."""
    stacked = jax.device_get(
        jax.jit(jax.vmap(lambda t: optim.sample_batch(digits, KEY, BATCH_SIZE, t)))(
            jnp.arange(STEPS)
        )
    )
    return [jax.tree.map(lambda x, t=t: x[t], stacked) for t in range(STEPS)]


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return models.losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@dataclasses.dataclass(frozen=True)
class Framework:
    """A model as a framework's users hold it, and how they write a training step.

    ``params`` is what they hand an optimizer; ``apply(params, x)`` runs the model as the
    framework does (for nnx, ``nnx.merge`` back into a module); ``check_type`` asserts that a
    trained ``params`` is still the framework's own type. ``jit`` and ``value_and_grad`` are
    the framework's (equinox's filtered versions, which accept its function leaves);
    ``optax_view`` is what optax is given and ``optax_apply`` puts optax's updates back.
    """

    params: Any
    apply: Callable[[Any, jax.Array], jax.Array]
    check_type: Callable[[Any], None]
    jit: Callable = jax.jit
    value_and_grad: Callable = jax.value_and_grad
    optax_view: Callable[[Any], Any] = lambda params: params
    optax_apply: Callable[[Any, Any], Any] = optax.apply_updates

    def loss(self, params: Any, batch: Any) -> jax.Array:
        return cross_entropy(self.apply(params, batch.x), batch.y)


@functools.cache  # built once per session: no path modifies a model, each returns new ones
def equinox_framework() -> Framework:
    model = eqx.nn.MLP(
        64, CLASSES, HIDDEN, depth=2, activation=jax.nn.relu, key=jax.random.PRNGKey(0)
    )

    def check_type(trained: Any) -> None:
        assert isinstance(trained, eqx.nn.MLP)
        # The function leaves come back as the very objects the model was built with.
        assert trained.activation is model.activation is jax.nn.relu
        assert trained.final_activation is model.final_activation

    return Framework(
        params=model,
        apply=lambda model, x: jax.vmap(model)(x),
        check_type=check_type,
        jit=eqx.filter_jit,
        value_and_grad=eqx.filter_value_and_grad,
        optax_view=lambda model: eqx.filter(model, eqx.is_inexact_array),
        optax_apply=eqx.apply_updates,
    )


class NnxMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, HIDDEN, rngs=rngs)
        self.out = nnx.Linear(HIDDEN, CLASSES, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(jax.nn.relu(self.hidden(x)))


@functools.cache
def nnx_framework() -> Framework:
    # nnx's functional idiom: train the Params, pass everything else (none here) alongside.
    graphdef, params, rest = nnx.split(NnxMLP(nnx.Rngs(0)), nnx.Param, ...)

    def check_type(trained: Any) -> None:
        assert isinstance(trained, nnx.State)
        assert all(
            isinstance(v, nnx.Param)
            for v in jax.tree.leaves(trained, is_leaf=lambda x: isinstance(x, nnx.Variable))
        )
        assert isinstance(nnx.merge(graphdef, trained, rest), NnxMLP)

    return Framework(
        params=params,
        apply=lambda params, x: nnx.merge(graphdef, params, rest)(x),
        check_type=check_type,
    )


class LinenMLP(linen.Module):
    @linen.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return linen.Dense(CLASSES)(jax.nn.relu(linen.Dense(HIDDEN)(x)))


@functools.cache
def linen_framework(freeze: bool = False) -> Framework:
    """A linen module's ``params`` collection: a dict, or a ``FrozenDict`` with ``freeze``."""
    module = LinenMLP()
    params = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 64)))["params"]
    if freeze:
        params = flax.core.freeze(params)

    def check_type(trained: Any) -> None:
        assert type(trained) is type(params)
        assert jax.tree.structure(trained) == jax.tree.structure(params)

    return Framework(
        params=params,
        apply=lambda params, x: module.apply({"params": params}, x),
        check_type=check_type,
    )


FRAMEWORKS = {"equinox": equinox_framework, "nnx": nnx_framework, "linen": linen_framework}


def hand_loop(
    fw: Framework, tx: Any, batches: list[Any], view: Callable, apply_updates: Callable
) -> tuple[Any, jax.Array]:
    """The loop a framework user writes: a jitted step, called once per batch.

    ``tx`` sees ``view(params)`` (the parameters themselves for ours) and ``apply_updates``
    adds its updates to the parameters. Returns the trained parameters and the loss before
    each step.
    """
    state = tx.init(view(fw.params))

    @fw.jit
    def step(params, state, batch):
        loss, grads = fw.value_and_grad(fw.loss)(params, batch)
        updates, state = tx.update(grads, state, view(params))
        return apply_updates(params, updates), state, loss

    params, losses = fw.params, []
    for batch in batches:
        params, state, loss = step(params, state, batch)
        losses.append(loss)
    return params, jnp.stack(losses)


def optim_loop(fw: Framework, tx: Any, batches: list[Any]) -> tuple[Any, jax.Array]:
    """``optim`` on the framework's pytree as it is: no filter, no combine."""
    return hand_loop(fw, tx, batches, lambda params: params, optim.apply_updates)


def optax_loop(fw: Framework, tx: Any, batches: list[Any]) -> tuple[Any, jax.Array]:
    return hand_loop(fw, tx, batches, fw.optax_view, fw.optax_apply)


def array_leaves(tree: Any) -> list[jax.Array]:
    """The array leaves of a model (equinox's include functions, which are skipped)."""
    return [leaf for leaf in jax.tree.leaves(tree) if isinstance(leaf, jax.Array)]


def assert_same_arrays(tree: Any, reference: Any) -> None:
    leaves, reference_leaves = array_leaves(tree), array_leaves(reference)
    assert len(leaves) == len(reference_leaves) > 0
    for a, b in zip(leaves, reference_leaves, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * float(jnp.max(jnp.abs(b))))


def _cases(*axes: list[str]) -> list[Any]:
    """Every combination of ``axes`` as a pytest param."""
    return [pytest.param(*combo, id="-".join(combo)) for combo in itertools.product(*axes)]


@pytest.mark.parametrize(
    ("framework", "optimizer"),
    _cases(list(FRAMEWORKS), list(OPTIMIZERS)),
)
def test_optim_optax_and_fit_train_the_same(framework, optimizer, digits, minibatches):
    fw = FRAMEWORKS[framework]()
    build, batch_size = OPTIMIZERS[optimizer]
    batches = [digits] * STEPS if batch_size is None else minibatches

    ours_params, ours = optim_loop(fw, build(optim, float), batches)
    optax_params, theirs = optax_loop(fw, build(optax, float), batches)
    fitted = optim.fit(
        fw.loss, fw.params, build(optim, float), digits, steps=STEPS, batch_size=batch_size, key=KEY
    )

    np.testing.assert_allclose(ours, theirs, rtol=RTOL)
    np.testing.assert_allclose(fitted.losses, theirs, rtol=RTOL)
    assert_same_arrays(ours_params, optax_params)
    assert_same_arrays(fitted.params, optax_params)

    initial_loss = float(fw.loss(fw.params, digits))
    for trained in (ours_params, fitted.params):
        fw.check_type(trained)
        logits = fw.apply(trained, digits.x)  # runs as the framework's own model
        assert float(cross_entropy(logits, digits.y)) < MAX_FINAL_LOSS_FRACTION * initial_loss
        assert float(models.losses.accuracy(logits, digits.y)) > MIN_TRAIN_ACCURACY


def test_linen_frozen_dict_params_stay_frozen(digits):
    """Older linen code (and ``flax.core.freeze``) hands optimizers a ``FrozenDict``."""
    fw = linen_framework(freeze=True)
    tx = optim.adam(3e-3)
    steps = 20
    params, losses = optim_loop(fw, tx, [digits] * steps)
    fitted = optim.fit(fw.loss, fw.params, tx, digits, steps=steps)
    np.testing.assert_allclose(fitted.losses, losses, rtol=RTOL)  # same arithmetic, as above
    for trained in (params, fitted.params):
        fw.check_type(trained)
    assert isinstance(fitted.opt_state[0].mu, flax.core.FrozenDict)
    assert float(losses[-1]) < 0.6 * float(losses[0])  # 2.42 -> 1.04 in 20 Adam steps


def test_full_nnx_state_with_rng_counters_is_rejected_naming_the_leaf():
    """``nnx.split(model)`` of a module holding ``nnx.Rngs`` (dropout) includes its uint32
    counter and PRNG key: not trainable, so ``init`` says which leaf, and the nnx idiom
    ``nnx.split(model, nnx.Param, ...)`` gives the part to train."""

    class WithDropout(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.dense = nnx.Linear(4, 2, rngs=rngs)
            self.dropout = nnx.Dropout(0.1, rngs=rngs)

    model = WithDropout(nnx.Rngs(0))
    _, everything = nnx.split(model)
    with pytest.raises(
        TypeError,
        match=r"params\['dropout'\]\['rngs'\]\['count'\]\.value is an "
        r"array of dtype uint32",
    ):
        optim.adam(1e-3).init(everything)
    _, trainable, _ = nnx.split(model, nnx.Param, ...)
    state = optim.adam(1e-3).init(trainable)
    assert isinstance(state[0].mu, nnx.State)
    assert jax.tree.structure(state[0].mu) == jax.tree.structure(trainable)


@pytest.mark.parametrize("framework", _cases(list(FRAMEWORKS)))
def test_weight_decay_mask_tree_matches_optax(framework, digits):
    """A mask given as a tree made from the model (``jax.tree.map`` over an equinox module is
    an equinox module, an nnx ``State``, a dict): one AdamW update against optax's, in eager
    mode (cheap: no compilation), on parameters whose biases are not zero."""
    fw = FRAMEWORKS[framework]()
    params = jax.tree.map(lambda x: x + 0.5 if isinstance(x, jax.Array) else x, fw.params)
    view = fw.optax_view(params)
    _, grads = fw.value_and_grad(fw.loss)(params, jax.tree.map(lambda x: x[:BATCH_SIZE], digits))

    ours = adamw(optim, float, mask=decay_matrices(params))
    theirs = adamw(optax, float, mask=decay_matrices(view))
    updates, _ = ours.update(grads, ours.init(params), params)
    reference, _ = theirs.update(grads, theirs.init(view), view)
    assert_same_arrays(updates, reference)  # same float32 arithmetic, as above
    # The mask took effect: matrices are decayed (as with no mask), biases are not.
    unmasked = adamw(optim, float)
    decay_everything, _ = unmasked.update(grads, unmasked.init(params), params)
    for u, d in zip(array_leaves(updates), array_leaves(decay_everything), strict=True):
        assert np.array_equal(u, d) == (u.ndim > 1)
