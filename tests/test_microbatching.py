"""optim.microbatching against optax.microbatching: the same outputs, bit for bit (the same
loop, split and accumulation arithmetic), on random batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from optim import microbatching as M

OM = optax.microbatching


def assert_same(ours, theirs) -> None:
    """Same leaf paths (micro_grad's ``Aux`` namedtuples are each library's own class, with
    the same name and fields), dtypes and values, bit for bit."""
    ours_flat, _ = jax.tree_util.tree_flatten_with_path(ours)
    theirs_flat, _ = jax.tree_util.tree_flatten_with_path(theirs)
    assert [jax.tree_util.keystr(p) for p, _ in ours_flat] == [
        jax.tree_util.keystr(p) for p, _ in theirs_flat
    ]
    for (_, a), (_, b) in zip(ours_flat, theirs_flat, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def ours_and_theirs(kind):
    """The same AccumulationType (or tree of them, by name) from each library."""
    return jax.tree.map(lambda k: getattr(M.AccumulationType, k), kind), jax.tree.map(
        lambda k: getattr(OM.AccumulationType, k), kind
    )


def batch(seed: int = 0, size: int = 12):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (size, 3)), jax.random.normal(k2, (2, size))


def model(w, x, y_t, scale=1.0):
    """Outputs of every kind: per-example rows, a sum, and a dict."""
    pred = jnp.tanh(x @ w) * scale
    return {"rows": pred, "loss": jnp.sum((pred[:, 0] - y_t[0]) ** 2), "t": jnp.mean(y_t, axis=1)}


def test_names_match_optax():
    public = {n for n in dir(OM) if not n.startswith("_")}
    assert set(M.__all__) == public and sorted(M.__all__) == M.__all__
    assert optim.microbatching is M
    assert optim.microbatch is M.microbatch
    assert [t.name for t in M.AccumulationType] == [t.name for t in OM.AccumulationType]


@pytest.mark.parametrize(
    "kind",
    ["SUM", "MEAN", "RUNNING_MEAN", {"rows": "CONCAT", "loss": "SUM", "t": "MEAN"}],
    ids=["sum", "mean", "running_mean", "tree"],
)
def test_microbatch_bitwise(kind):
    x, y = batch(0)
    w = jax.random.normal(jax.random.key(9), (3, 2))
    ours_acc, theirs_acc = ours_and_theirs(kind)
    common = dict(argnums=(1, 2), microbatch_size=4, in_axes=(0, 1))
    ours = M.microbatch(model, accumulator=ours_acc, **common)
    theirs = OM.microbatch(model, accumulator=theirs_acc, **common)
    assert_same(ours(w, x, y), theirs(w, x, y))
    assert_same(jax.jit(ours)(w, x, y), jax.jit(theirs)(w, x, y))


def test_keyword_batch_arguments_and_early_stop():
    x, y = batch(1)
    w = jax.random.normal(jax.random.key(8), (3, 2))
    fun = lambda w, *, x, y_t: model(w, x, y_t)
    ours_acc, theirs_acc = ours_and_theirs({"rows": "CONCAT", "loss": "RUNNING_MEAN", "t": "SUM"})
    common = dict(argnums=(), argnames=("x", "y_t"), in_axes=(0, 1), microbatch_size=3)
    for real in (None, 2, jnp.int32(3)):
        ours = M.microbatch(fun, accumulator=ours_acc, num_real_microbatches=real, **common)
        theirs = OM.microbatch(fun, accumulator=theirs_acc, num_real_microbatches=real, **common)
        assert_same(ours(w, x=x, y_t=y), theirs(w, x=x, y_t=y))


def test_microbatch_concat_restores_order_and_none_size_is_identity():
    data = jnp.arange(12.0)
    f = M.microbatch(lambda v: v * 2, 0, 3, accumulator=M.AccumulationType.CONCAT)
    np.testing.assert_array_equal(f(data), data * 2)
    g = lambda v: v
    assert M.microbatch(g, 0, None) is g


def test_reshape_batch_axis_bitwise():
    x, y = batch(2)
    tree = {"x": x, "y": y.T}
    assert_same(M.reshape_batch_axis(tree, 4), OM.reshape_batch_axis(tree, 4))
    assert_same(M.reshape_batch_axis(y, 6, axis=1), OM.reshape_batch_axis(y, 6, axis=1))


@pytest.mark.parametrize("kind", ["CONCAT", "SUM", "MEAN"])
def test_micro_vmap_bitwise(kind):
    x, y = batch(3)
    w = jax.random.normal(jax.random.key(7), (3, 2))
    fun = lambda w, xi, yi, scale=1.0: jnp.tanh(xi @ w) * scale + yi[0]
    ours_acc, theirs_acc = ours_and_theirs(kind)
    for size in (None, 4):
        ours = M.micro_vmap(fun, (None, 0, 1), microbatch_size=size, accumulator=ours_acc)
        theirs = OM.micro_vmap(fun, (None, 0, 1), microbatch_size=size, accumulator=theirs_acc)
        assert_same(ours(w, x, y), theirs(w, x, y))
    plain = M.micro_vmap(fun, (None, 0, 1))(w, x, y)
    np.testing.assert_array_equal(plain, jax.vmap(fun, (None, 0, 1))(w, x, y))


def loss(params, features, targets):
    pred = jnp.tanh(features @ params["w"]) + params["b"]
    return 0.5 * jnp.mean((pred - targets) ** 2), {"pred": pred}


@pytest.mark.parametrize("keep_batch_dim", [True, False])
def test_micro_grad_bitwise(keep_batch_dim):
    k = jax.random.split(jax.random.key(4), 4)
    params = {"w": jax.random.normal(k[0], (3,)), "b": jax.random.normal(k[1], ())}
    features, targets = jax.random.normal(k[2], (8, 3)), jax.random.normal(k[3], (8,))

    def build(module):
        return module.micro_grad(
            loss,
            has_aux=True,
            batch_argnums=(1, 2),
            keep_batch_dim=keep_batch_dim,
            microbatch_size=4,
            accumulator=module.AccumulationType.MEAN,
            transform_fn=lambda g: (g, jax.tree.map(jnp.square, g)),
            metrics_fn=lambda g: jnp.abs(g["w"]).sum(),
        )

    assert_same(build(M)(params, features, targets), build(OM)(params, features, targets))


def test_micro_grad_doc_example():
    def mean_squared_loss(params, features, targets):
        return 0.5 * jnp.mean((features @ params - targets) ** 2)

    def build(module):
        return module.micro_grad(
            mean_squared_loss,
            batch_argnums=(1, 2),
            accumulator=module.AccumulationType.SUM,
            metrics_fn=jnp.linalg.norm,
        )

    args = (jnp.zeros(1), jnp.ones((4, 1)), jnp.array([0.0, 2.0, 4.0, 6.0]))
    ours = build(M)(*args)
    assert_same(ours, build(OM)(*args))
    np.testing.assert_array_equal(ours[0], [-12.0])
    np.testing.assert_array_equal(ours[1].metrics, [0.0, 2.0, 4.0, 6.0])
    assert type(ours[1]).__name__ == "Aux" and ours[1].aux is None


def test_custom_accumulator():
    maximum = M.Accumulator(
        init=lambda s: jnp.full(s.shape, -jnp.inf, s.dtype),
        update=lambda carry, value, i: jnp.maximum(carry, value),
        finalize=lambda carry: carry,
        aggregate=lambda values: jnp.max(values, axis=0),
    )
    x = jax.random.normal(jax.random.key(5), (12,))
    assert M.microbatch(jnp.max, 0, 3, accumulator=maximum)(x) == jnp.max(x)
    assert M.micro_vmap(lambda v: v, microbatch_size=4, accumulator=maximum)(x) == jnp.max(x)


def test_errors_name_the_argument():
    x, y = batch(6)
    with pytest.raises(ValueError, match=r"^microbatch_size must be at least 1"):
        M.microbatch(jnp.sum, 0, 0)
    with pytest.raises(TypeError, match=r"^microbatch_size must be an int or None"):
        M.microbatch(jnp.sum, 0, 2.0)
    with pytest.raises(TypeError, match=r"^fun must be callable"):
        M.microbatch("f", 0, 2)
    with pytest.raises(TypeError, match=r"^argnums must be an int or a sequence of ints"):
        M.microbatch(jnp.sum, "x", 2)
    with pytest.raises(ValueError, match=r"^in_axes must have one entry per batch argument"):
        M.microbatch(lambda a, b: a, (0, 1), 2, in_axes=(0,))
    with pytest.raises(ValueError, match=r"divisible by microbatch_size=5"):
        M.microbatch(jnp.sum, 0, 5)(x)
    with pytest.raises(ValueError, match=r"equal-size batch axes"):
        M.microbatch(lambda a, b: a, (0, 1), 2)(x, y)
    with pytest.raises(ValueError, match=r"^argnums names argument 3"):
        M.microbatch(jnp.sum, 3, 2)(x)
    with pytest.raises(ValueError, match=r"^argnames names 'v'"):
        M.microbatch(lambda v: v, (), 2, argnames="v")(x)
    with pytest.raises(TypeError, match=r"^accumulator must be an Accumulator"):
        M.microbatch(jnp.sum, 0, 2, accumulator="SUM")(x)
    with pytest.raises(ValueError, match=r"^accumulator must have the structure of"):
        M.microbatch(lambda v: (v, v), 0, 2, accumulator=(M.AccumulationType.SUM,) * 3)(x)
    with pytest.raises(TypeError, match=r"MEAN and RUNNING_MEAN .* dtype int32"):
        M.microbatch(lambda v: v, 0, 2, accumulator=M.AccumulationType.MEAN)(jnp.arange(4))
    with pytest.raises(NotImplementedError, match=r"out_axes"):
        M.micro_vmap(jnp.sum, out_axes=1)
    with pytest.raises(TypeError, match=r"^batch_argnums must be an int or a sequence"):
        M.micro_grad(jnp.sum, batch_argnums=None)
