"""optax's idioms work on our optimizers, and ours work inside optax's own combinators.

Every transformation here is an ``optax.GradientTransformationExtraArgs`` (a tuple of
``init`` and ``update``) as well as a pytree whose float hyperparameters are leaves.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim

PARAMS = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array(0.3)}


def loss(params):
    return jnp.sum((params["w"] - 1.5) ** 2) + (params["b"] + 1.0) ** 2


def run(tx, apply_updates, params, steps=20, **extra):
    state = tx.init(params)
    for _ in range(steps):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = tx.update(grads, state, params, value=value, **extra)
        params = apply_updates(params, updates)
    return params


def test_tuple_unpacking_and_indexing():
    tx = optim.sgd(0.1, momentum=0.9)
    init_fn, update_fn = tx
    assert init_fn == tx.init and update_fn == tx.update
    assert tx[0] == tx.init and tx[1] == tx.update and len(tx) == 2
    state = init_fn(PARAMS)
    updates, _ = update_fn(jax.grad(loss)(PARAMS), state)
    reference, _ = tx.update(jax.grad(loss)(PARAMS), tx.init(PARAMS))
    assert jax.tree.all(jax.tree.map(jnp.array_equal, updates, reference))


def test_ours_are_optax_gradient_transformations():
    tx = optim.adamw(1e-3)
    assert isinstance(tx, optax.GradientTransformation)
    assert isinstance(tx, optax.GradientTransformationExtraArgs)
    assert isinstance(tx, optim.GradientTransformationExtraArgs)
    assert optax.with_extra_args_support(tx) is tx
    # Equality is identity: two optimizers with equal hyperparameters are distinct objects.
    assert tx == tx and tx != optim.adamw(1e-3) and hash(tx) == hash(tx)


def test_gradient_transformation_can_be_constructed():
    def init(params):
        return optim.EmptyState()

    def update(updates, state, params=None):
        return jax.tree.map(lambda g: -0.1 * g, updates), state

    def update_extra(updates, state, params=None, **extra_args):
        return update(updates, state, params)

    for cls, fn in (
        (optim.GradientTransformation, update),
        (optim.GradientTransformationExtraArgs, update_extra),
    ):
        tx = cls(init, fn)
        assert isinstance(tx, optax.GradientTransformation)
        inside = optim.chain(optim.clip_by_global_norm(10.0), tx)
        ours = run(inside, optim.apply_updates, PARAMS)
        theirs = run(optax.chain(optax.clip_by_global_norm(10.0), tx), optax.apply_updates, PARAMS)
        assert jax.tree.all(jax.tree.map(jnp.array_equal, ours, theirs))


@pytest.mark.parametrize(
    "wrap",
    [
        lambda tx: optax.chain(optax.identity(), tx),
        lambda tx: optax.MultiSteps(tx, every_k_schedule=1),
        lambda tx: optax.apply_if_finite(tx, max_consecutive_errors=2),
    ],
    ids=["optax.chain", "optax.MultiSteps", "optax.apply_if_finite"],
)
def test_value_reaches_polyak_inside_optax_combinators(wrap):
    """optax's combinators pass extra arguments only to what they recognise as taking them."""
    alone = run(optim.polyak_sgd(max_learning_rate=1.0), optim.apply_updates, PARAMS)
    wrapped = run(wrap(optim.polyak_sgd(max_learning_rate=1.0)), optax.apply_updates, PARAMS)
    assert jax.tree.all(jax.tree.map(jnp.array_equal, alone, wrapped))
    # It trains: the Polyak step reaches the minimum (loss 0) of this quadratic.
    assert float(loss(wrapped)) < 1e-6 * float(loss(PARAMS))


def test_value_reaches_polyak_through_optax_inject_hyperparams():
    tx = optax.inject_hyperparams(optim.polyak_sgd)(max_learning_rate=1.0)
    ours = run(tx, optax.apply_updates, PARAMS)
    reference = run(optax.polyak_sgd(max_learning_rate=1.0), optax.apply_updates, PARAMS)
    np.testing.assert_allclose(ours["w"], reference["w"], rtol=1e-6)


def test_python_float_parameters_are_trained_as_optax_trains_them():
    params = {"w": [1.0, 2.0], "n": 3}  # the int is configuration: passed through

    def quadratic(p):
        return (p["w"][0] - 3.0) ** 2 + (p["w"][1] + 1.0) ** 2

    results = []
    for lib in (optim, optax):
        tx = lib.adam(0.1)
        p, state = params, tx.init({"w": params["w"]})
        for _ in range(30):
            grads = jax.grad(lambda w: quadratic({"w": w}))(p["w"])
            grads = {"w": grads}
            updates, state = tx.update({"w": grads["w"]}, state, {"w": p["w"]})
            p = {**p, "w": lib.apply_updates(p["w"], updates["w"])}
        results.append(p)
    ours, theirs = results
    assert float(quadratic(ours)) < 0.8 * float(quadratic(params))  # it moved
    for a, b in zip(ours["w"], theirs["w"], strict=True):
        assert isinstance(a, jax.Array) and a.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert ours["n"] == 3


def test_python_float_leaf_gets_state_and_update():
    tx = optim.sgd(0.5, momentum=0.9)
    state = tx.init({"w": 1.0})
    assert state[0].trace["w"].shape == () and state[0].trace["w"].dtype == jnp.float32
    updates, _ = tx.update({"w": jnp.float32(2.0)}, state)
    assert float(optim.apply_updates({"w": 1.0}, updates)["w"]) == 0.0


def test_hyperparameters_jit_as_arguments_without_recompiling():
    traces = []

    @jax.jit
    def step(tx, params):
        traces.append(1)
        grads = jax.grad(loss)(params)
        updates, _ = tx.update(grads, tx.init(params), params)
        return optim.apply_updates(params, updates)

    for lr in (0.1, 0.01, 0.001):
        step(optim.adamw(lr, b2=0.99), PARAMS)
    assert len(traces) == 1


nnx = pytest.importorskip("flax.nnx")


class _Model(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(3, 8, rngs=rngs)
        self.out = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.tanh(self.hidden(x)))


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.adamw(1e-2, weight_decay=0.1),
        lambda lib: lib.chain(lib.clip_by_global_norm(1.0), lib.sgd(0.05, momentum=0.9)),
        lambda lib: lib.lion(3e-3),
        lambda lib: lib.adam(lib.warmup_cosine_decay_schedule(0.0, 1e-2, 5, 30)),
    ],
    ids=["adamw", "clip+sgd", "lion", "adam+schedule"],
)
def test_flax_nnx_optimizer_trains_with_optax_losses(make):
    """``nnx.Optimizer`` keeps the optimizer as a static attribute: ours holds no device arrays
    (its hyperparameters are NumPy scalars), so NNX accepts it, and under ``nnx.jit`` it gives
    optax's losses."""
    x = jax.random.normal(jax.random.PRNGKey(1), (32, 3))
    y = jnp.sin(x.sum(axis=1, keepdims=True))

    @nnx.jit
    def step(model, optimizer):
        def mse(m):
            return jnp.mean((m(x) - y) ** 2)

        value, grads = nnx.value_and_grad(mse)(model)
        optimizer.update(model, grads)
        return value

    losses = {}
    for lib in (optim, optax):
        model = _Model(nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, make(lib), wrt=nnx.Param)
        losses[lib.__name__] = np.array([step(model, optimizer) for _ in range(30)])
    assert losses["optim"][-1] < 0.8 * losses["optim"][0]
    # Same float32 arithmetic with the same rounded rates (1 - b computed from the Python
    # float, as optax does); XLA's fusion of the two programs may differ in the last bit.
    np.testing.assert_allclose(losses["optim"], losses["optax"], rtol=2e-6)


def test_zoom_line_search_takes_a_python_float_learning_rate_set_in_its_state():
    """optax's documented idiom: seed the line search's first step size by setting it in the
    state (``optax.tree.set(state, learning_rate=0.5)`` puts a Python float there)."""

    def fn(w):
        return jnp.sum((w - 1.0) ** 2)

    w = jnp.array([3.0, -2.0])
    results = []
    for lib in (optim, optax):
        search = lib.scale_by_zoom_linesearch(max_linesearch_steps=30)
        state = optax.tree.set(search.init(w), learning_rate=0.5)
        value, grad = jax.value_and_grad(fn)(w)
        updates, state = search.update(-grad, state, w, value=value, grad=grad, value_fn=fn)
        results.append((updates, state.learning_rate))
    (ours, our_lr), (theirs, their_lr) = results
    np.testing.assert_array_equal(ours, theirs)
    assert float(our_lr) == float(their_lr) == 0.5


def test_schedule_lengths_beyond_int32_are_accepted_with_optax_values():
    """optax takes ``decay_steps=10**10``; the values at int32 step counts are optax's, and a
    schedule longer than int32's range is evaluated where optax's jitted clip overflows."""
    for ours, theirs in [
        (optim.cosine_decay_schedule(1.0, 10**10), optax.cosine_decay_schedule(1.0, 10**10)),
        (optim.exponential_decay(1.0, 10**10, 0.5), optax.exponential_decay(1.0, 10**10, 0.5)),
    ]:
        for count in (0, 10**6, 2**31 - 1):
            assert float(ours(count)) == float(theirs(count)), (ours, count)
    long_linear = optim.linear_schedule(1.0, 0.0, 2**40)
    assert float(long_linear(2**31 - 1)) == pytest.approx(1.0 - (2**31 - 1) / 2**40, rel=1e-6)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class _UserScale:
    """A user's own transformation: a registered pytree dataclass with init and update."""

    factor: jax.Array

    def init(self, params):
        del params
        return optax.EmptyState()

    def update(self, updates, state, params=None):
        del params
        return jax.tree.map(lambda g: self.factor * g, updates), state


def test_user_pytree_transformation_in_chain_keeps_its_leaves_as_arguments():
    """Re-created with a new value, the user's pytree transformation does not retrace a
    jitted step that takes the chain as an argument (its leaves stay leaves)."""
    traces = []

    @jax.jit
    def step(tx, params):
        traces.append(1)
        updates, _ = tx.update(params, tx.init(params), params, value=0.0)
        return updates

    for factor in (0.5, 2.0):
        tx = optim.chain(_UserScale(jnp.float32(factor)), optim.sgd(1.0))
        np.testing.assert_allclose(step(tx, PARAMS)["w"], -factor * PARAMS["w"])
    assert len(traces) == 1
