"""A repeated ``fit`` call reuses the plan of an earlier one with the same loss function,
optimizer structure, tree structures, shapes, dtypes and options, and plans afresh (with
every check) when any of them differs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optim
from optim.train import _run

X = jnp.linspace(-1.0, 1.0, 8)
DATA = {"x": X, "y": 3.0 * X + 1.0}


def mse(params, batch):
    return jnp.mean((params["w"] * batch["x"] + params["b"] - batch["y"]) ** 2)


def params_like(dtype=jnp.float32):
    return {"w": jnp.zeros((), dtype), "b": jnp.zeros((), dtype)}


@pytest.fixture
def plans(monkeypatch):
    """How many times ``fit`` planned a program (cache misses), from an empty cache."""
    count = {"planned": 0}
    planned = _run._plan_program

    def counting(*args, **kwargs):
        count["planned"] += 1
        return planned(*args, **kwargs)

    monkeypatch.setattr(_run, "_plan_program", counting)
    monkeypatch.setattr(_run, "_PLANS", _run.RecentPlans())
    return count


def test_a_repeated_call_reuses_its_plan_and_gives_the_same_numbers(plans):
    first = optim.fit(mse, params_like(), optim.adam(0.1), DATA, steps=20)
    again = optim.fit(mse, params_like(), optim.adam(0.1), DATA, steps=20)
    # Another learning rate is a value of the program, not part of it.
    other_rate = optim.fit(mse, params_like(), optim.adam(0.05), DATA, steps=20)
    assert plans["planned"] == 1
    np.testing.assert_array_equal(first.losses, again.losses)
    reference = optim.fit(mse, params_like(), optim.adam(0.05), DATA, steps=20, chunk_size=7)
    np.testing.assert_allclose(other_rate.losses, reference.losses, rtol=1e-6)


@pytest.mark.parametrize(
    "change",
    [
        {"steps": 21},
        {"batch_size": 4, "key": jax.random.key(0)},
        {"has_aux": True, "loss_fn": lambda p, b: (mse(p, b), p["w"])},
        {"loss_fn": lambda p, b: 2.0 * mse(p, b)},
        {"params": params_like(jnp.float16)},
        {"params": {"w": jnp.zeros((1,)), "b": jnp.zeros(())}},
        {"data": {"x": X[:6], "y": X[:6]}},
        {"optimizer": optim.sgd(0.1)},
        {"eval_data": DATA},
        {"skip_nonfinite": True},
    ],
    ids=lambda change: "-".join(change),
)
def test_any_change_to_the_program_plans_again(plans, change):
    arguments = {"loss_fn": mse, "params": params_like(), "optimizer": optim.adam(0.1)}
    arguments |= {"data": DATA, "steps": 20}
    optim.fit(**arguments)
    changed = optim.fit(**(arguments | change))
    assert plans["planned"] == 2
    assert changed.losses.shape == (change.get("steps", 20),)


def test_checks_run_again_for_a_call_that_differs(plans):
    optim.fit(mse, params_like(), optim.sgd(0.1), DATA, steps=5)
    with pytest.raises(TypeError, match=r"params\['w'\] is an array of dtype int32"):
        optim.fit(mse, {"w": jnp.zeros((), jnp.int32), "b": jnp.zeros(())}, optim.sgd(0.1),
                  DATA, steps=5)  # fmt: skip
    with pytest.raises(ValueError, match="batch_size=9 is larger than the data"):
        optim.fit(mse, params_like(), optim.sgd(0.1), DATA, steps=5, batch_size=9,
                  key=jax.random.key(0))  # fmt: skip
    for _ in range(2):  # an option's check fails every time, not only when first seen
        with pytest.raises(TypeError, match="has_aux"):
            optim.fit(mse, params_like(), optim.sgd(0.1), DATA, steps=5, has_aux=1)


def test_traced_calls_and_iterators_plan_every_time(plans):
    run = jax.jit(lambda p: optim.fit(mse, p, optim.sgd(0.1), DATA, steps=5).params)
    run(params_like())
    run({"w": 0.0 * X, "b": jnp.zeros(())})
    assert plans["planned"] == 2
    assert not _run._PLANS.plans  # nothing kept from inside a trace

    for _ in range(2):
        batches = iter([DATA] * 3)
        result = optim.fit(mse, params_like(), optim.sgd(0.1), batches)
        assert result.losses.shape == (3,)
    assert plans["planned"] == 4


def test_the_oldest_plan_is_dropped_first():
    recent = _run.RecentPlans(size=2)
    for key in ("a", "b", "a", "c"):
        recent.put(key, key.upper())
    assert list(recent.plans) == ["a", "c"]
    assert recent.get("b") is None and recent.get(None) is None
