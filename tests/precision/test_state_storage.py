"""Memory-lean optimizer state: the 8-bit block-wise codec, and optimizers whose state records
declare moment slots run with bfloat16 or int8 moments (optim.with_state_dtype, optim.quantized,
optim.precision._blockwise).

Tolerances, and why:

* Codec: decoding returns the map entry nearest to ``x / absmax`` (checked against a brute-force
  argmin), so ``|x - x_hat| <= absmax * (half the local gap of the map)``; the largest gap is
  the top decade's, giving ``|x - x_hat| <= 0.45/64 absmax`` (signed) and ``0.45/128 absmax``
  (unsigned), and for ``|x| >= absmax / 10`` a relative error of at most 7.03% (signed) or
  3.52% (unsigned). Each block's largest magnitude and every zero are exact.
* Trajectories on ``convex_loss`` (200 steps, ``block_size=256``): the stored moments are
  rounded to nearest every step, and with smooth full-batch gradients an exponential average
  changes by less than half a code step per step, so it sticks to a code for a while (bfloat16
  storage does the same). Measured, relative to the parameters' largest magnitude: adam 1.1e-2
  (int8) and 1.5e-2 (bfloat16), adamw 5.6e-3 and 1.7e-2, amsgrad 2.4e-2 and 4.9e-3, rmsprop
  4.8e-3 and 1.6e-3 (with momentum 1.3e-2 and 1.1e-2), about 2% of the distance travelled or
  less; bound 3e-2. AdaBelief travels three times as far (4.6 against adam's 1.4): 2.8e-2 and
  2.9e-2, 0.6% of its distance; bound 5e-2. SGD's momentum changes fast relative to the code
  spacing: 2e-5, bound 1e-4. Lion and signum move each element by exactly lr per step
  whatever their momentum's size; only a flipped sign of the (interpolated) momentum would
  change it, and these hyperparameters keep it away from 0 (as in
  tests/optimizers/test_optimizers.py): 0 measured, bound 1e-3, below what one flipped step of
  one element gives (1.4e-3).
* MLP regression with minibatch noise (300 AdamW steps, both fall ~100-fold): the final
  full-data loss with int8 moments is within 5.2% of float32's (-5.2%, +4.1%, -4.9%, +3.8% over
  four batch orders; bfloat16 within 1.2%), while float32's own loss varies by +-13% across
  those batch orders; bound 15%.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import convex_loss, relative_deviation, trajectory

import optim
from optim import quantized as Q
from optim.base import SIGNED, UNSIGNED
from optim.precision import _blockwise

# --- the codec ----------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [True, False])
def test_dynamic_map(signed):
    m = _blockwise.dynamic_map(signed)
    assert m.dtype == np.float32 and m.shape == ((255,) if signed else (256,))
    assert np.all(np.diff(m) > 0)  # strictly increasing
    assert m[-1] == 1.0 and m[0] == (-1.0 if signed else 0.0)
    assert np.count_nonzero(m == 0) == 1
    positive = m[m > 0]
    if signed:
        np.testing.assert_array_equal(m, -m[::-1])  # symmetric: int8 codes -127..127
    # Decades: 64 (signed) / 128 (unsigned) values in (0.1, 1], halving per decade below;
    # the smallest positive value is 1e-6 / 1e-7.
    top = 64 if signed else 128
    assert np.count_nonzero(positive > 0.1) == top
    assert np.count_nonzero((positive > 0.01) & (positive <= 0.1)) == top // 2
    np.testing.assert_allclose(positive[0], 1e-6 if signed else 1e-7, rtol=1e-6)
    np.testing.assert_allclose(np.max(np.diff(m)), 0.9 / top, rtol=1e-5)


@pytest.mark.parametrize("signed", [True, False])
def test_nearest_code_equals_searchsorted(signed):
    """The bucket-table search gives exactly searchsorted over the map's midpoints."""
    book = _blockwise.SIGNED if signed else _blockwise.UNSIGNED
    m = book.values
    midpoints = ((m[1:] + m[:-1]) / 2).astype(np.float32)
    rng = np.random.default_rng(0)
    magnitudes = np.concatenate(
        [rng.uniform(0, 1, 20000), 10.0 ** -rng.uniform(0, 9, 20000), [0.0, 1.0, 1e-38]]
    )
    signs = rng.choice([-1.0, 1.0], magnitudes.size) if signed else 1.0
    r = np.concatenate(
        [signs * magnitudes, m, midpoints, np.nextafter(midpoints, 2), np.nextafter(midpoints, -2)]
    ).astype(np.float32)
    r = r[(r >= m[0]) & (r <= 1)]
    index = np.asarray(jax.jit(book.nearest)(r)).astype(np.int64) + book.zero
    expected = np.searchsorted(midpoints, r)
    ties = np.isin(r, midpoints)  # exactly between two entries: either is nearest
    np.testing.assert_array_equal(index[~ties], expected[~ties])
    assert np.all(np.isin(index[ties] - expected[ties], [0, 1]))
    assert book.nearest(jnp.zeros(3)).dtype == (jnp.int8 if signed else jnp.uint8)


def _heavy_tailed(shape, signed, seed=0):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.normal(k1, shape) * jnp.exp(2 * jax.random.normal(k2, shape))
    return x if signed else x * x


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("block_size", [256, 2048])
def test_round_trip_error_bounds(signed, block_size):
    x = _heavy_tailed((3, 5000), signed)  # 15000 elements: the last block is padded
    x = x.at[0, :7].set(0.0)
    q = _blockwise.quantize(x, signed=signed, block_size=block_size)
    blocks = -(-x.size // block_size)
    assert q.codes.shape == x.shape and q.codes.dtype == (jnp.int8 if signed else jnp.uint8)
    assert q.absmax.shape == (blocks,) and q.absmax.dtype == jnp.float32
    y = np.asarray(_blockwise.dequantize(q, block_size=block_size))
    assert y.shape == x.shape and y.dtype == np.float32

    flat = np.pad(np.asarray(x).ravel(), (0, blocks * block_size - x.size))
    absmax = np.abs(flat.reshape(blocks, block_size)).max(axis=1)
    np.testing.assert_array_equal(np.asarray(q.absmax), absmax)
    a = np.repeat(absmax, block_size)[: x.size]
    xf, yf = np.asarray(x).ravel(), y.ravel()
    # The decoded value is the nearest map entry (brute force; float rounding aside).
    m = _blockwise.dynamic_map(signed)
    r = xf / a
    nearest = np.min(np.abs(r[:, None] - m[None, :]), axis=1)
    assert np.all(np.abs(r - yf / a) <= nearest + 1e-6)
    # Global and relative bounds from the map's resolution.
    top = 64 if signed else 128
    err = np.abs(xf - yf)
    assert np.all(err <= a * 0.45 / top * (1 + 1e-5))
    large = np.abs(xf) >= a / 10
    assert np.all(err[large] <= np.abs(xf[large]) * 4.5 / top * (1 + 1e-5))
    # Exact: each block's largest magnitude, and zeros.
    argmax = (
        np.abs(flat.reshape(blocks, block_size)).argmax(axis=1) + np.arange(blocks) * block_size
    )
    np.testing.assert_array_equal(yf[argmax], xf[argmax])
    assert np.all(yf[:7] == 0)


def test_all_zero_block_and_small_input():
    q = _blockwise.quantize(jnp.zeros((5, 7)), signed=True, block_size=16)
    np.testing.assert_array_equal(_blockwise.dequantize(q, block_size=16), np.zeros((5, 7)))
    x = jnp.array([-3.0, 0.5, 2.0])
    y = _blockwise.dequantize(_blockwise.quantize(x, signed=True, block_size=16), block_size=16)
    np.testing.assert_allclose(y, x, atol=3 * 0.45 / 64)


# --- state layout and accounting ----------------------------------------------------------


def _params(seed=0):
    """Two leaves that are quantized (>= 4096 elements) and one that stays float32."""
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    return {
        "w": jax.random.normal(k[0], (64, 96)),
        "v": jax.random.normal(k[1], (5000,)),
        "b": jax.random.normal(k[2], (3,)),
    }


def test_int8_state_layout():
    params = _params()
    state = optim.with_state_dtype(optim.adamw(1e-3), "int8", block_size=256).init(params)
    adam_state = state[0]
    assert adam_state._fields == optax.ScaleByAdamState._fields
    for field, dtype in (("mu", jnp.int8), ("nu", jnp.uint8)):
        slot = optax.tree.get(state, field)
        assert isinstance(slot["w"], Q.QuantizedArray)
        assert slot["w"].codes.shape == (64, 96) and slot["w"].codes.dtype == dtype
        assert slot["w"].absmax.shape == (24,) and slot["v"].absmax.shape == (20,)
        assert slot["b"].dtype == jnp.float32 and slot["b"].shape == (3,)  # below min_size
    bf16 = optim.with_state_dtype(optim.adamw(1e-3), "bfloat16").init(params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves((bf16[0].mu, bf16[0].nu)))
    lion_state = Q.with_state_dtype(optim.lion(1e-3).transforms[0], "int8").init(params)
    assert lion_state.mu["v"].codes.dtype == jnp.int8
    adamw = optim.adamw(1e-3)
    for state_dtype in (None, "float32", jnp.float32):
        assert optim.with_state_dtype(adamw, state_dtype) is adamw


def test_state_bytes_exact():
    params = {"v": jnp.zeros(5000), "n": None, "i": 3}
    state = optim.with_state_dtype(optim.adam(1e-3), "int8", block_size=256).init(params)
    # count (int32) + per moment 5000 one-byte codes and 20 float32 scales.
    assert Q.state_bytes(state) == 4 + 2 * (5000 + 20 * 4)
    assert Q.state_bytes(optim.adam(1e-3).init(params)) == 4 + 2 * 5000 * 4
    abstract = {"v": jax.ShapeDtypeStruct((5000,), jnp.float32)}
    int8_adam = optim.with_state_dtype(optim.adam(1e-3), "int8")
    assert Q.state_bytes(jax.eval_shape(int8_adam.init, abstract)) == 4 + 2 * (5000 + 3 * 4)
    assert Q.bytes_per_parameter(state, params) == Q.state_bytes(state) / 5000
    with pytest.raises(ValueError, match="params holds no floating-point array"):
        Q.bytes_per_parameter(state, {"i": 3})


def _mlp_params(sizes, seed=0):
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)}
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def test_bytes_per_parameter_adamw():
    """8-bit AdamW at most 2.1 bytes per parameter (float32: 8) on ~300k-element leaves."""
    params = jax.eval_shape(lambda: _mlp_params([512, 600, 512, 10]))  # 307k, 307k, 5k weights
    measured = {
        kind: Q.bytes_per_parameter(
            jax.eval_shape(optim.with_state_dtype(optim.adamw(1e-3), kind).init, params), params
        )
        for kind in (None, "bfloat16", "int8")
    }
    assert measured["int8"] <= 2.1
    assert 8.0 <= measured[None] < 8.001
    assert 4.0 <= measured["bfloat16"] < 4.001
    print(f"bytes per parameter: {measured}")  # int8: 2.015


# --- trajectories ---------------------------------------------------------------------------

TRAJECTORY_CASES = [
    # (id, optimizer whose state records declare moment slots, bound)
    ("adam", optim.adam(0.01, 0.9, 0.999, 1e-8), 3e-2),
    ("adamw", optim.adamw(0.01, 0.9, 0.999, 1e-8, weight_decay=0.1), 3e-2),
    ("amsgrad", optim.amsgrad(0.01), 3e-2),
    ("adabelief", optim.adabelief(0.01), 5e-2),
    ("rmsprop", optim.rmsprop(0.003), 3e-2),
    ("rmsprop_momentum", optim.rmsprop(0.003, momentum=0.9), 3e-2),
    ("lion", optim.lion(0.003, 0.9, 0.99, weight_decay=0.01), 1e-3),
    ("signum", optim.signum(0.003), 1e-3),
    ("sgd_momentum", optim.sgd(0.003, 0.9), 1e-4),
]


@pytest.mark.parametrize(
    ("name", "tx", "bound"), TRAJECTORY_CASES, ids=[c[0] for c in TRAJECTORY_CASES]
)
def test_trajectory_close_to_float32(name, tx, bound):
    params = _params()
    reference = trajectory(tx, optim.apply_updates, steps=200, params=params)
    assert relative_deviation(reference, params) > 3e-2  # it moved
    for kind in ({"state_dtype": "bfloat16"}, {"state_dtype": "int8", "block_size": 256}):
        stored = optim.with_state_dtype(tx, **kind)
        assert isinstance(stored, Q.WithStateDtype)
        ours = trajectory(stored, optim.apply_updates, steps=200, params=params)
        assert relative_deviation(ours, reference) < bound, kind


def _regression():
    kx, kb = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (1024, 32))
    teacher = _mlp_params([32, 16, 1], seed=1)
    return x, _mlp(teacher, x), kb


def _mlp(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def test_mlp_regression_close_to_float32():
    x, y, key = _regression()
    batches = jax.random.randint(key, (300, 64), 0, x.shape[0])
    params = _mlp_params([32, 128, 64, 1], seed=2)  # 4096- and 8192-element weights: int8

    def loss(p, idx):
        return jnp.mean((_mlp(p, x[idx]) - y[idx]) ** 2)

    @jax.jit
    def final_loss(tx):
        def step(carry, idx):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p, idx), s, p)
            return (optim.apply_updates(p, u), s), None

        (p, s), _ = jax.lax.scan(step, (params, tx.init(params)), batches)
        return jnp.mean((_mlp(p, x) - y) ** 2), s

    start = float(jnp.mean((_mlp(params, x) - y) ** 2))
    adamw = optim.adamw(3e-3, weight_decay=1e-2)
    reference, _ = final_loss(adamw)
    quantized, state = final_loss(optim.with_state_dtype(adamw, "int8"))
    assert isinstance(state[0].mu[1]["w"], Q.QuantizedArray)
    assert reference < start / 50 and quantized < start / 50
    assert abs(float(quantized / reference) - 1) < 0.15


# --- transformations: jit, vmap, fit, checkpoints ---------------------------------------------


def test_jit_with_optimizer_argument_traces_once():
    params = _params()
    grads = jax.tree.map(jnp.ones_like, params)
    traces = []

    @jax.jit
    def step(tx, p, s, g):
        traces.append(None)
        u, s = tx.update(g, s, p)
        return optim.apply_updates(p, u), s

    for lr in (1e-3, 2e-3, 5e-3):  # a new optimizer (and storage object) each time
        tx = optim.with_state_dtype(optim.adamw(lr, weight_decay=0.1), "int8", block_size=256)
        new_params, state = step(tx, params, tx.init(params), grads)
        assert isinstance(state[0].mu["w"], Q.QuantizedArray)
        np.testing.assert_allclose(
            new_params["w"], params["w"] - lr * (1 + 0.1 * params["w"]), rtol=1e-5, atol=1e-6
        )
    assert len(traces) == 1


def test_vmap_over_learning_rate():
    params = _params()

    def run(lr):
        tx = optim.with_state_dtype(optim.adam(lr), "int8", block_size=256)

        def step(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(convex_loss)(p), s, p)
            return (optim.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, tx.init(params)), length=30)[0][0]

    lrs = jnp.array([3e-3, 3e-2])
    batched = jax.jit(jax.vmap(run))(lrs)
    single = jax.jit(run)
    for i in range(lrs.size):
        ours = jax.tree.map(lambda b, i=i: b[i], batched)
        assert relative_deviation(ours, single(lrs[i])) < 1e-5
    assert relative_deviation(jax.tree.map(lambda b: b[0], batched), params) > 1e-2


def test_fit_and_checkpoint_round_trip(tmp_path):
    x, y, _ = _regression()
    params = _mlp_params([32, 128, 1], seed=3)

    def loss(p, batch):
        xb, yb = batch
        return jnp.mean((_mlp(p, xb) - yb) ** 2)

    tx = optim.with_state_dtype(optim.adamw(3e-3, weight_decay=1e-2), "int8", block_size=512)
    result = optim.fit(loss, params, tx, (x, y), steps=40, batch_size=64, key=jax.random.key(0))
    assert float(result.losses[-5:].mean()) < float(result.losses[:5].mean())
    assert isinstance(result.opt_state[0].nu[0]["w"], Q.QuantizedArray)
    optim.checkpoint.save(tmp_path, 40, result.opt_state)
    _, restored, _ = optim.checkpoint.restore(tmp_path, result.opt_state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(result.opt_state), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_bfloat16_params_and_chains():
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), _params())
    tx = Q.with_state_dtype(
        optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(1e-2, weight_decay=0.1)), "int8"
    )
    state = tx.init(params)
    assert state[1][0].mu["w"].codes.dtype == jnp.int8
    updates, state = jax.jit(tx.update)(params, state, params)
    assert updates["w"].dtype == jnp.bfloat16
    # Lookahead keeps its slow weights in the params, not the state: the fast adam's moments
    # are stored.
    synced = optim.LookaheadParams.init_synced(params)
    state = Q.with_state_dtype(optim.lookahead(optim.adam(1e-3), 5, 0.5), "int8").init(synced)
    assert state.fast_state[0].nu["v"].codes.dtype == jnp.uint8
    # A mask tree fits the real params only: the early check is skipped, init checks.
    mask = {"w": True, "v": True, "b": False}
    masked = optim.with_state_dtype(optim.adamw(1e-2, weight_decay=0.1, mask=mask), "int8")
    jax.jit(masked.update)(params, masked.init(params), params)


# --- signatures and errors ----------------------------------------------------------------


# --- the moment slots each state record declares ------------------------------------------

DECLARED = {
    optim.ScaleByAdamState: {"mu": SIGNED, "nu": UNSIGNED},
    optim.ScaleByAmsgradState: {"mu": SIGNED, "nu": UNSIGNED, "nu_max": UNSIGNED},
    optim.ScaleByBeliefState: {"mu": SIGNED, "nu": UNSIGNED},
    optim.ScaleByLionState: {"mu": SIGNED},
    optim.ScaleByRmsState: {"nu": UNSIGNED},
    optim.TraceState: {"trace": SIGNED},
    optim.EmaState: {"ema": SIGNED},
}


@pytest.mark.parametrize("record", list(DECLARED), ids=lambda r: r.__name__)
def test_state_records_declare_moment_slots(record):
    assert dict(record.moment_slots) == DECLARED[record]
    assert "moment_slots" not in record._fields  # a class attribute, not a pytree leaf
    with pytest.raises(TypeError):
        record.moment_slots["count"] = SIGNED  # read-only


def test_state_record_of_ones_own():
    """A user's state record that declares its moment slots is stored like optim's."""

    class MomentumState(NamedTuple):
        velocity: dict
        moment_slots = MappingProxyType({"velocity": SIGNED})

    def init(params):
        return MomentumState(jax.tree.map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        velocity = jax.tree.map(lambda g, v: 0.9 * v + g, updates, state.velocity)
        return jax.tree.map(lambda v: -0.01 * v, velocity), MomentumState(velocity)

    tx = optim.with_state_dtype(optax.GradientTransformation(init, update), "int8")
    params = _params()
    state = tx.init(params)
    assert isinstance(state.velocity["w"], Q.QuantizedArray)
    _, state = tx.update(params, state, params)
    assert state.velocity["w"].codes.dtype == jnp.int8


def _int8(tx, **kwargs):
    return optim.with_state_dtype(tx, "int8", **kwargs)


ERRORS = [
    (
        lambda: _int8(optim.rmsprop(1e-3, centered=True)),
        ValueError,
        r"state_dtype='int8' is not available for scale_by_r_std_dev",
    ),
    (
        lambda: Q.with_state_dtype(optim.adagrad(1e-3), "bfloat16"),
        ValueError,
        r"not available for scale_by_rss",
    ),
    (lambda: _int8(optim.lbfgs()), ValueError, r"not available for scale_by_lbfgs"),
    (lambda: _int8(optim.contrib.ademamix(1e-3)), ValueError, r"not available for scale_by_ade"),
    (lambda: _int8(optim.adan(1e-3)), ValueError, r"not available for scale_by_adan"),
    (lambda: _int8(optim.sgd(0.1)), ValueError, r"keeps no moment to store"),
    (
        lambda: optim.with_state_dtype(optim.adam(1e-3), "int4"),
        ValueError,
        r"state_dtype must be None, ",
    ),
    (
        lambda: optim.with_state_dtype(optim.adam(1e-3), "float16"),
        ValueError,
        r"state_dtype must be",
    ),
    (
        lambda: optim.with_state_dtype(optim.adam(1e-3), "bfloat16", block_size=256),
        ValueError,
        r"block_size and min_size apply to state_dtype='int8' only",
    ),
    (
        lambda: optim.with_state_dtype(optim.adam(1e-3), Q.Int8Blockwise(256), min_size=8),
        ValueError,
        r"set by the Int8Blockwise",
    ),
    (
        lambda: _int8(optim.adam(1e-3, mu_dtype=jnp.bfloat16)),
        ValueError,
        r"own moment dtype \(mu_dtype, nu_dtype or accumulator_dtype\) and state_dtype='int8' "
        r"both set how the state is stored: state\[0\]\.mu is bfloat16",
    ),
    (
        lambda: _int8(optim.sgd(0.1, 0.9, accumulator_dtype=jnp.bfloat16)),
        ValueError,
        r"accumulator_dtype\) and state_dtype='int8' both set.*state\[0\]\.trace is bfloat16",
    ),
    (lambda: Q.Int8Blockwise(block_size=0), ValueError, r"block_size must be an int >= 1"),
    (lambda: Q.Int8Blockwise(min_size=-1), ValueError, r"min_size must be an int >= 0"),
    (lambda: Q.Int8Blockwise(block_size=256.0), TypeError, r"block_size must be an int"),
    (lambda: _int8(optim.adam(1e-3), block_size=True), TypeError, r"block_size must be an int"),
    (lambda: Q.with_state_dtype(3, "int8"), TypeError, r"tx must be a gradient transformation"),
    (
        lambda: Q.with_state_dtype(optax.adam(1e-3), "int8"),
        ValueError,
        r"not available for optax's scale_by_adam \(use optim's own scale_by_adam\)",
    ),
    (
        lambda: Q.with_state_dtype(_int8(optim.adam(1e-3)), "bfloat16"),
        ValueError,
        r"tx already stores its state as int8",
    ),
    (
        lambda: _int8(optim.adam(1e-3)).init({"z": jnp.ones(5000, jnp.complex64)}),
        ValueError,
        r"stores real moments only; state\[0\].mu\['z'\] is complex64",
    ),
    (
        lambda: _int8(
            optax.GradientTransformation(lambda p: BadSlots(p), lambda u, s, p=None: (u, s))
        ),
        ValueError,
        r"BadSlots.moment_slots must map fields of the record to 'signed' or 'unsigned', "
        r"got 'mu': 'positive'",
    ),
    # A mask tree defeats the early probe; init names the building block.
    (
        lambda: Q.with_state_dtype(
            optim.chain(
                optim.masked(optim.scale_by_rss(), {"w": True, "b": False}), optim.sgd(0.1, 0.9)
            ),
            "int8",
        ).init({"w": jnp.ones(3), "b": jnp.ones(2)}),
        ValueError,
        r"not available for scale_by_rss",
    ),
]


class BadSlots(NamedTuple):
    mu: Any
    moment_slots = MappingProxyType({"mu": "positive"})


@pytest.mark.parametrize(("make", "error", "match"), ERRORS, ids=range(len(ERRORS)))
def test_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()
