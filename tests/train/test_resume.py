"""fit with checkpoints: a run stopped in the middle and resumed is bit-identical."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optim
from optim.train import _history

PARAMS = {"w": jnp.zeros(3), "b": jnp.zeros(())}


def _data(n: int = 40):
    kx, kn = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.uniform(kx, (n, 3))
    return x, x @ jnp.array([1.0, -2.0, 0.5]) + 0.1 * jax.random.normal(kn, (n,))


def mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)


RUN = dict(
    epochs=8,
    batch_size=8,
    key=jax.random.PRNGKey(3),
    checkpoint_every=5,
    eval_every=5,
    eval_data=_data(16),
)


def _interrupt_after(monkeypatch, chunks: int) -> None:
    """Raise KeyboardInterrupt between chunks, as Ctrl-C or a pre-empted job would."""
    original, calls = _history.History.add, []

    def add(self, *args):
        original(self, *args)
        calls.append(1)
        if len(calls) == chunks:
            raise KeyboardInterrupt

    monkeypatch.setattr(_history.History, "add", add)


def _assert_identical(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("flatten", [False, True])
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, monkeypatch, flatten):
    tx = optim.adamw(0.05, weight_decay=0.01)
    whole = optim.fit(
        mse, PARAMS, tx, _data(), checkpoint_dir=tmp_path / "whole", flatten=flatten, **RUN
    )
    with monkeypatch.context() as patch:
        _interrupt_after(patch, chunks=3)  # stopped after step 15 of 40
        with pytest.raises(KeyboardInterrupt):
            optim.fit(
                mse, PARAMS, tx, _data(), checkpoint_dir=tmp_path / "cut", flatten=flatten, **RUN
            )
    # the third chunk ended (step 15) but was interrupted before its checkpoint: 10 is saved
    assert optim.checkpoint.latest_step(tmp_path / "cut") == 10
    resumed = optim.fit(
        mse,
        PARAMS,
        tx,
        _data(),
        checkpoint_dir=tmp_path / "cut",
        resume=True,
        flatten=flatten,
        **RUN,
    )
    _assert_identical(resumed.params, whole.params)
    _assert_identical(resumed.opt_state, whole.opt_state)  # NamedTuples stay NamedTuples
    _assert_identical(resumed.losses, whole.losses)
    _assert_identical(resumed.eval_metrics, whole.eval_metrics)
    _assert_identical(resumed.eval_steps, whole.eval_steps)
    assert type(resumed.opt_state[0]).__name__ == "ScaleByAdamState"


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    result = optim.fit(
        mse,
        PARAMS,
        optim.sgd(0.1),
        _data(),
        steps=10,
        checkpoint_dir=tmp_path,
        checkpoint_every=5,
        resume=True,
    )
    assert result.losses.shape == (10,)
    assert optim.checkpoint.all_steps(tmp_path) == [5, 10]


def test_resume_of_a_finished_run_returns_it(tmp_path):
    first = optim.fit(
        mse, PARAMS, optim.sgd(0.1), _data(), steps=10, checkpoint_dir=tmp_path, checkpoint_every=5
    )
    again = optim.fit(
        mse,
        PARAMS,
        optim.sgd(0.1),
        _data(),
        steps=10,
        checkpoint_dir=tmp_path,
        checkpoint_every=5,
        resume=True,
    )
    _assert_identical(again.params, first.params)
    _assert_identical(again.losses, first.losses)


def test_resume_with_a_new_learning_rate_warns_naming_it(tmp_path):
    optim.fit(
        mse, PARAMS, optim.adam(0.1), _data(), steps=10, checkpoint_dir=tmp_path, checkpoint_every=5
    )
    with pytest.warns(UserWarning, match=r"\[1\]\.learning_rate: 0\.1 -> 0\.01"):
        result = optim.fit(
            mse,
            PARAMS,
            optim.adam(0.01),
            _data(),
            steps=20,
            checkpoint_dir=tmp_path,
            checkpoint_every=5,
            resume=True,
        )
    assert result.losses.shape == (20,)


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    optim.fit(
        mse, PARAMS, optim.sgd(0.1), _data(), steps=5, checkpoint_dir=tmp_path, checkpoint_every=5
    )
    bigger = {"w": jnp.zeros(4), "b": jnp.zeros(())}
    with pytest.raises(ValueError, match="different model structure"):
        optim.fit(
            lambda p, b: jnp.mean(b[0] @ p["w"][:3] + p["b"]),
            bigger,
            optim.sgd(0.1),
            _data(),
            steps=10,
            checkpoint_dir=tmp_path,
            resume=True,
        )


def test_corrupted_latest_checkpoint_falls_back_to_the_previous(tmp_path):
    optim.fit(
        mse, PARAMS, optim.sgd(0.1), _data(), steps=10, checkpoint_dir=tmp_path, checkpoint_every=5
    )
    data_files = [
        p
        for p in (tmp_path / "step_10").rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "checkpoint.json")
    ]
    target = max(data_files, key=lambda p: p.stat().st_size)
    target.write_bytes(b"\x00" * target.stat().st_size)
    with pytest.warns(UserWarning, match="skipping a corrupted checkpoint"):
        result = optim.fit(
            mse,
            PARAMS,
            optim.sgd(0.1),
            _data(),
            steps=10,
            checkpoint_dir=tmp_path,
            checkpoint_every=5,
            resume=True,
        )
    reference = optim.fit(mse, PARAMS, optim.sgd(0.1), _data(), steps=10)
    _assert_identical(result.params, reference.params)
