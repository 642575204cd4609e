"""SOAP (optim/optimizers/_soap.py): trajectories against the authors' reference, the layout of
its state, its edge cases and the guarantees every optimizer of the catalogue keeps.

The reference trajectories come from the authors' torch code (tests/scripts/soap_reference.py
wrote tests/data/soap_reference.npz; its docstring says how to rerun it).
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import test_catalogue
from conftest import relative_deviation

import optim
from optim.optimizers._soap import merged_shape
from optim.train import _history

GOLDEN = np.load(pathlib.Path(__file__).resolve().parents[1] / "data" / "soap_reference.npz")
PROBLEMS = ("matrix", "wide", "bias", "kernel")

# Ours against the reference's float32 run, max |ours - ref| / max |ref| over the saved
# calls. The algorithms are the same; the bases come from different LAPACK builds (eigh and
# QR of torch's and of XLA's CPU backend), and Adam's normalisation divides each rotated
# coordinate by its own root mean square, so the last-bit differences of a basis reach the
# step at the size of the small coordinates they perturb. Measured: at most 1.1e-5 (the wide
# matrix after 30 steps); pytorch-optimizer's SOAP, an independent torch rewrite, deviates from
# the authors' code by 4.2e-6 on the same problems.
REFERENCE_BOUND = 3e-5


def _problem(name: str) -> tuple[dict, dict]:
    spec = json.loads(str(GOLDEN[f"{name}/spec"]))
    data = {
        key.split("/")[1]: GOLDEN[key].astype(np.float32)
        for key in GOLDEN.files
        if key.startswith(f"{name}/") and not key.endswith(("/spec", "/trajectory"))
    }
    return spec, data


def _gradient(spec: dict, data: dict, w: jax.Array, call: int) -> jax.Array:
    """The script's gradients: batch ``(call - 1) % 3`` of the problem's loss."""
    batch = (call - 1) % 3
    if spec["loss"] == "least_squares":
        a, b = data["A"][batch], data["B"][batch]
        return a.T @ (a @ w - b) / spec["rows"]
    return data["S"][batch] * (w - data["T"])


def _our_arguments(hyper: dict) -> tuple[float, float, dict]:
    """The learning rate, weight decay and scale_by_soap's arguments for the reference's."""
    hyper = dict(hyper)
    lr, weight_decay = hyper.pop("lr"), hyper.pop("weight_decay", 0.01)
    if "betas" in hyper:
        hyper["b1"], hyper["b2"] = hyper.pop("betas")
    return lr, weight_decay, hyper


def _saved(params: list, calls: int) -> list:
    return [params[c - 1] for c in GOLDEN["saved_calls"] if c <= calls]


def _reference_order_trajectory(name: str) -> list:
    """scale_by_soap with the reference's weight decay: after the step, not at the first call,
    :math:`\\theta \\leftarrow (1 - \\eta\\lambda)(\\theta - \\eta u)`."""
    spec, data = _problem(name)
    lr, weight_decay, arguments = _our_arguments(spec["hyper"])
    tx = optim.scale_by_soap(**arguments)
    update = jax.jit(tx.update)
    w = jnp.asarray(data["init"])
    state, params = tx.init(w), []
    for call in range(1, 32):
        u, state = update(_gradient(spec, data, w, call), state)
        if call > 1:
            w = (w - lr * u) * (1 - lr * weight_decay)
        params.append(w)
    return _saved(params, 31)


@pytest.mark.parametrize("name", PROBLEMS)
def test_trajectory_matches_the_reference(name):
    ours = _reference_order_trajectory(name)
    reference = list(GOLDEN[f"{name}/trajectory"])
    assert relative_deviation(ours, reference) <= REFERENCE_BOUND


@pytest.mark.parametrize("name", ["matrix", "bias"])
def test_alias_matches_the_reference_up_to_the_order_of_weight_decay(name):
    """``soap`` decays the parameters before the step and at the first update (AdamW's
    order), the reference after it and not at the first: the first update's factor
    :math:`1 - \\eta\\lambda = 1 - 10^{-4}` stays in the parameters (the later differences,
    :math:`\\eta^2 \\lambda u`, are 100 times smaller)."""
    spec, data = _problem(name)
    lr, weight_decay, arguments = _our_arguments(spec["hyper"])
    tx = optim.soap(lr, weight_decay=weight_decay, **arguments)
    update = jax.jit(tx.update)
    w = jnp.asarray(data["init"])
    state, params = tx.init(w), []
    for call in range(1, 32):
        u, state = update(_gradient(spec, data, w, call), state, w)
        w = optim.apply_updates(w, u)
        params.append(w)
    deviation = relative_deviation(_saved(params, 31), list(GOLDEN[f"{name}/trajectory"]))
    assert deviation <= 1.5 * lr * weight_decay


# --- the state's layout ------------------------------------------------------------------------


def _shapes(entry):
    return tuple(None if m is None else m.shape for m in entry)


def test_factors_per_axis_and_unrotated_axes():
    params = {
        "w": jnp.ones((5, 12)),
        "b": jnp.ones(7),
        "s": jnp.ones(()),
        "k": jnp.ones((2, 3, 3, 4)),
    }
    state = optim.scale_by_soap(max_precond_dim=8).init(params)
    assert _shapes(state.factors["w"]) == ((5, 5), None)  # 12 > 8: not rotated
    assert _shapes(state.factors["b"]) == (None,)  # 1-D: plain Adam
    assert _shapes(state.factors["s"]) == ()
    assert _shapes(state.factors["k"]) == ((2, 2), (3, 3), (3, 3), (4, 4))
    assert _shapes(state.bases["w"]) == ((5, 5), None)
    np.testing.assert_array_equal(state.bases["w"][0], np.eye(5))

    state = optim.scale_by_soap(max_precond_dim=8, precondition_1d=True).init(params)
    assert _shapes(state.factors["b"]) == ((7, 7),)
    state = optim.scale_by_soap(max_precond_dim=6, precondition_1d=True).init(params)
    assert _shapes(state.factors["b"]) == (None,)  # 7 > 6

    merged = optim.scale_by_soap(max_precond_dim=8, merge_dims=True, data_format="channels_last")
    assert _shapes(merged.init(params).factors["k"]) == ((8, 8), (3, 3), (3, 3))
    assert _shapes(merged.init(params).factors["w"]) == ((5, 5), None)


def test_merged_shape_follows_the_reference():
    assert merged_shape((2, 4, 3, 3), 8) == (8, 3, 3)
    assert merged_shape((3, 4), 10000) == (12,)
    assert merged_shape((1, 20000), 10000) == (20000,)
    assert merged_shape((3, 20000, 1), 10000) == (3, 20000)
    assert merged_shape((1, 1), 10) == (1,)


def test_dimension_above_the_limit_stays_unrotated():
    """A (3, 20000) embedding-like leaf with the default limit: one 3x3 factor, and the step
    equals the one of the same leaf with the long axis split into columns of its own (an
    unrotated axis keeps its coordinates apart)."""
    g = jax.random.normal(jax.random.PRNGKey(0), (3, 3, 20000))
    tx = optim.scale_by_soap()
    state = tx.init(g[0])
    assert _shapes(state.factors) == ((3, 3), None)
    update = jax.jit(tx.update)
    for i in range(3):
        u, state = update(g[i], state)
    assert bool(jnp.all(jnp.isfinite(u))) and float(jnp.max(jnp.abs(u))) > 0


def test_precondition_1d_is_a_column_matrix():
    """A vector with ``precondition_1d`` runs as the same numbers in an (n, 1) matrix, whose
    second factor is 1x1 (its basis is +-1: no rotation)."""
    grads = jax.random.normal(jax.random.PRNGKey(1), (10, 6))
    vector = optim.scale_by_soap(precondition_1d=True, precondition_frequency=3)
    column = optim.scale_by_soap(precondition_frequency=3)
    sv, sc = vector.init(grads[0]), column.init(grads[0][:, None])
    vector_update, column_update = jax.jit(vector.update), jax.jit(column.update)
    for g in grads:
        uv, sv = vector_update(g, sv)
        uc, sc = column_update(g[:, None], sc)
        np.testing.assert_allclose(uv, uc[:, 0], rtol=1e-5, atol=1e-6)


# --- the steps ---------------------------------------------------------------------------------


def test_first_update_is_zero_and_sets_the_bases():
    g = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    tx = optim.scale_by_soap()
    u, state = tx.update(g, tx.init(g))
    np.testing.assert_array_equal(u, jnp.zeros_like(g))
    np.testing.assert_array_equal(state.mu, jnp.zeros_like(g))
    np.testing.assert_array_equal(state.nu, jnp.zeros_like(g))
    assert int(state.count) == 1
    left, right = state.bases
    # The eigenbasis of the factors, by decreasing eigenvalue.
    values = jnp.diag(left.T @ state.factors[0] @ left)
    assert bool(jnp.all(values[:-1] >= values[1:]))
    np.testing.assert_allclose(left.T @ left, jnp.eye(2), atol=1e-6)
    np.testing.assert_allclose(
        right.T @ state.factors[1] @ right,
        jnp.diag(jnp.diag(right.T @ state.factors[1] @ right)),
        atol=1e-5,
    )


def test_bases_change_only_at_refreshes_and_stay_orthonormal():
    grads = jax.random.normal(jax.random.PRNGKey(2), (9, 4, 3))
    tx = optim.scale_by_soap(precondition_frequency=4)
    update = jax.jit(tx.update)
    state = tx.init(grads[0])
    refreshed = []
    for g in grads:
        before = state.bases
        count = int(state.count)
        _, state = update(g, state)
        changed = any(not np.array_equal(a, b) for a, b in zip(before, state.bases, strict=True))
        refreshed.append(count) if changed else None
        for q in state.bases:
            np.testing.assert_allclose(q.T @ q, jnp.eye(q.shape[0]), atol=2e-6)
    assert refreshed == [0, 4, 8]  # eigh at the first update, QR every 4 after it


def test_zero_gradients_give_zero_updates():
    tx = optim.scale_by_soap(precondition_frequency=2)
    g = jnp.zeros((3, 4))
    state, update = tx.init(g), jax.jit(tx.update)
    for _ in range(5):
        u, state = update(g, state)
        np.testing.assert_array_equal(u, jnp.zeros_like(g))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state))


@pytest.mark.parametrize("bad_call", [1, 2])
def test_non_finite_gradient_gives_non_finite_update(bad_call):
    """At the first update too, which discards its step (``0 * g``)."""
    tx = optim.scale_by_soap()
    params = {"w": jnp.ones((3, 2)), "b": jnp.ones(2), "s": jnp.ones(())}
    update = jax.jit(tx.update)
    state = tx.init(params)
    for call in range(1, bad_call + 1):
        g = jax.tree.map(lambda p: 0.5 * p, params)
        if call == bad_call:
            g = jax.tree.map(lambda x: x.at[(0,) * x.ndim].set(jnp.nan), g)
        u, state = update(g, state)
    for leaf in jax.tree.leaves(u):
        assert not bool(jnp.all(jnp.isfinite(leaf)))


def test_gradient_spike_keeps_the_state_finite_and_moving():
    """A gradient of 1e30 would overflow the factors (its square is 1e60) and make the bases
    NaN; bounded, it leaves every factor, basis and step finite, and the steps after it move
    every coordinate."""
    tx = optim.soap(1e-2, precondition_frequency=3)
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
    state, update = tx.init(params), jax.jit(tx.update)
    grads = jax.random.normal(jax.random.PRNGKey(6), (12, 9))
    for i, g in enumerate(grads):
        g = {"w": g[:6].reshape(2, 3), "b": g[6:]}
        if i == 5:
            g = jax.tree.map(lambda x: x.at[(0,) * x.ndim].set(1e30), g)
        u, state = update(g, state, params)
        params = optim.apply_updates(params, u)
    for leaf in jax.tree.leaves((state, params)):
        assert bool(jnp.all(jnp.isfinite(leaf)))
    for leaf in jax.tree.leaves(u):
        assert bool(jnp.all(leaf != 0))


def test_complex_params_with_zero_imaginary_part_run_as_real():
    grads = jax.random.normal(jax.random.PRNGKey(3), (7, 3, 4))
    tx = optim.scale_by_soap(precondition_frequency=3)
    real_state, complex_state = tx.init(grads[0]), tx.init(grads[0].astype(jnp.complex64))
    update = jax.jit(tx.update)
    for g in grads:
        ur, real_state = update(g, real_state)
        uc, complex_state = update(g.astype(jnp.complex64), complex_state)
    assert uc.dtype == jnp.complex64
    np.testing.assert_allclose(uc.real, ur, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(uc.imag, 0.0, atol=1e-5)


@pytest.mark.parametrize(
    "state_dtype", [jnp.bfloat16, optim.quantized.Int8Blockwise(block_size=4, min_size=0)]
)
def test_bf16_params_with_stored_moments(state_dtype):
    """``with_state_dtype`` stores the moments (bf16 or 8-bit codes); the factors and bases
    stay float32, and bf16 parameters train."""
    params = {"w": jnp.ones((4, 3), jnp.bfloat16)}
    tx = optim.with_state_dtype(optim.soap(1e-2, precondition_frequency=2), state_dtype)
    state = tx.init(params)
    soap_state = state[0]
    for slot in (soap_state.mu["w"], soap_state.nu["w"]):
        stored = getattr(slot, "codes", slot)
        assert stored.dtype in (jnp.bfloat16, jnp.int8, jnp.uint8)
    for matrix in jax.tree.leaves((soap_state.factors, soap_state.bases)):
        assert matrix.dtype == jnp.float32
    step = jax.jit(tx.update)
    for i in range(4):
        g = jax.random.normal(jax.random.PRNGKey(i), (4, 3)).astype(jnp.bfloat16)
        updates, state = step({"w": g}, state, params)
        params = optim.apply_updates(params, updates)
    assert params["w"].dtype == jnp.bfloat16
    assert bool(jnp.all(jnp.isfinite(params["w"].astype(jnp.float32))))
    assert not bool(jnp.all(params["w"] == 1))


# --- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (dict(data_format="NHWC"), ValueError, "data_format must be 'channels_first' or"),
        (dict(precondition_frequency=0), ValueError, "precondition_frequency must be an int >= 1"),
        (dict(max_precond_dim=2.5), TypeError, "max_precond_dim must be an int"),
        (dict(shampoo_beta=1.5), ValueError, "shampoo_beta must be in"),
        (dict(b1=1.0), ValueError, "b1 must be in"),
        (dict(merge_dims="yes"), TypeError, "merge_dims must be True or False"),
    ],
)
def test_bad_arguments_name_the_argument(arguments, error, message):
    with pytest.raises(error, match=message):
        optim.soap(**arguments)
    with pytest.raises(error, match=message):
        optim.scale_by_soap(**arguments)


def test_shampoo_beta_defaults_to_b2():
    g = jnp.array([[1.0, 2.0], [3.0, -1.0]])
    factors = []
    for shampoo_beta in (-1.0, None, 0.9):
        tx = optim.scale_by_soap(b2=0.9, shampoo_beta=shampoo_beta)
        factors.append(tx.update(g, tx.init(g))[1].factors[0])
    np.testing.assert_allclose(factors[0], 0.1 * g @ g.T, rtol=1e-6)
    np.testing.assert_array_equal(factors[0], factors[1])
    np.testing.assert_array_equal(factors[0], factors[2])
    assert optim.scale_by_soap(shampoo_beta=-1.0).shampoo_beta is None


def test_mismatched_grads_are_a_clear_error():
    tx = optim.scale_by_soap()
    state = tx.init({"w": jnp.ones((3, 2))})
    with pytest.raises(ValueError, match=r"\['w'\]"):
        tx.update({"w": jnp.ones((2, 3))}, state)


# --- the catalogue's guarantees ----------------------------------------------------------------


def test_one_compilation_across_learning_rates_and_vmap_over_them():
    """The optimizer as an argument of a jitted step compiles once; a vmap over the learning
    rate equals the separate runs (the same compiled arithmetic, batched)."""
    g = jax.random.normal(jax.random.PRNGKey(5), (4, 3, 2))
    traces = []

    @jax.jit
    def run(tx):
        traces.append(1)
        w, state = jnp.ones((3, 2)), tx.init(jnp.ones((3, 2)))
        for x in g:  # the third update refreshes the bases
            u, state = tx.update(x + w, state, w)
            w = optim.apply_updates(w, u)
        return w

    separate = [run(optim.soap(lr, precondition_frequency=2)) for lr in (1e-2, 3e-2, 1e-1)]
    assert len(traces) == 1
    batched = jax.jit(jax.vmap(lambda lr: run(optim.soap(lr, precondition_frequency=2))))(
        jnp.array([1e-2, 3e-2, 1e-1])
    )
    np.testing.assert_allclose(batched, jnp.stack(separate), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_catalogue_guarantees(monkeypatch):
    """jit once across learning rates, vmap over the learning rate (equal to separate runs),
    grad through two updates, lax.cond between states: tests/test_catalogue.py's checks, on
    its nested parameters (slow: 20 s of CPU, mostly compiling eigh, QR and their
    derivatives for every leaf)."""
    monkeypatch.setitem(
        test_catalogue.CATALOGUE, "soap", lambda lr: optim.soap(lr, precondition_frequency=2)
    )
    # The runs compiled (eagerly, each step's eigh and QR would compile on its own).
    run = jax.jit(test_catalogue._run, static_argnames=("name", "steps"))
    monkeypatch.setattr(test_catalogue, "_run", run)
    test_catalogue.test_catalogue_guarantees("soap")


def _data(n: int = 48):
    kx, kn = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (n, 4)) * jnp.array([1.0, 3.0, 0.3, 2.0])
    w = jnp.arange(12.0).reshape(4, 3) / 10
    return x, x @ w + 0.1 * jax.random.normal(kn, (n, 3))


def mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


PARAMS = {"w": jnp.zeros((4, 3)), "b": jnp.zeros(3)}
RUN = dict(epochs=3, batch_size=8, key=jax.random.PRNGKey(3), checkpoint_every=5)


def test_fit_descends():
    """In minibatches: SOAP is meant for stochastic gradients (see ``ScaleBySoap``)."""
    tx = optim.soap(0.1, precondition_frequency=4)
    result = optim.fit(mse, PARAMS, tx, _data(), steps=40, batch_size=8, key=RUN["key"])
    assert float(result.losses[-6:].mean()) < 0.25 * float(result.losses[:6].mean())  # 0.11
    assert type(result.opt_state[0]).__name__ == "ScaleBySoapState"


@pytest.mark.slow
def test_interrupted_and_resumed_fit_is_bit_identical(tmp_path, monkeypatch):
    """Stopped between chunks (as Ctrl-C would) and resumed from the last checkpoint: the
    bases, factors and moments restored, the run ends bit-identical to one without a stop
    (slow: 12 s of CPU, mostly writing and reading checkpoints)."""
    tx = optim.soap(3e-2, precondition_frequency=4)
    whole = optim.fit(mse, PARAMS, tx, _data(), checkpoint_dir=tmp_path / "whole", **RUN)
    original, calls = _history.History.add, []

    def add(self, *args):
        original(self, *args)
        calls.append(1)
        if len(calls) == 2:  # after step 10, checkpointed at 5
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(_history.History, "add", add)
        with pytest.raises(KeyboardInterrupt):
            optim.fit(mse, PARAMS, tx, _data(), checkpoint_dir=tmp_path / "cut", **RUN)
    resumed = optim.fit(
        mse, PARAMS, tx, _data(), checkpoint_dir=tmp_path / "cut", resume=True, **RUN
    )
    for a, b in zip(
        jax.tree.leaves((resumed.params, resumed.opt_state, resumed.losses)),
        jax.tree.leaves((whole.params, whole.opt_state, whole.losses)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert type(resumed.opt_state[0]).__name__ == "ScaleBySoapState"
