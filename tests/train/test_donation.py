"""Donation: the chunk ``fit`` compiles, and a jitted step, reuse their input buffers.

A step that does not donate its parameters and optimizer state keeps the old and the new copy
alive together until the caller drops the old one: twice the memory of the carry. The tests
count the live arrays of a size nothing else in the process has (``jax.live_arrays`` leaves
out arrays whose buffers were donated), check that the inputs are marked deleted, and read
the compiled program's memory analysis (``alias_size_in_bytes``: bytes of outputs written
into donated inputs). Each check runs once more with donation taken away, as a control that
it does see a missing donation.
"""

from __future__ import annotations

import gc
from typing import Any

import jax
import jax.numpy as jnp
import pytest

import optim
import optim.train._run
import optim.train._step

SIZE = 1237  # the length of the carried buffers: no other array in the process has it


def live(shape: tuple[int, ...]) -> int:
    """Arrays of ``shape`` whose buffers are alive (donated ones are deleted)."""
    gc.collect()
    return sum(1 for a in jax.live_arrays() if a.shape == shape)


def nbytes(tree: Any) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(tree))


class ChunkSpy:
    """Stands in for ``optim.train._run.run_chunk``: after each chunk, what is alive and reused."""

    def __init__(self, run_chunk: Any) -> None:
        self.run_chunk = run_chunk
        self.live: list[int] = []  # arrays of (SIZE,) alive after the chunk
        self.carried: list[int] = []  # of those, in the new carry
        self.consumed: list[bool] = []  # the input carry's arrays and state were deleted
        self.memory: Any = None  # the compiled chunk's memory analysis
        self.carry_bytes = 0

    def __call__(self, carry: Any, *args: Any, **kwargs: Any) -> Any:
        if self.memory is None:
            compiled = self.run_chunk.lower(carry, *args, **kwargs).compile()
            self.memory = compiled.memory_analysis()
            self.carry_bytes = nbytes((carry.arrays, carry.opt_state))
        out = jax.block_until_ready(self.run_chunk(carry, *args, **kwargs))
        new = jax.tree.leaves((out[0].arrays, out[0].opt_state))
        self.live.append(live((SIZE,)))
        self.carried.append(sum(x.shape == (SIZE,) for x in new))
        self.consumed.append(
            all(x.is_deleted() for x in jax.tree.leaves((carry.arrays, carry.opt_state)))
        )
        return out


def run_fit(monkeypatch: pytest.MonkeyPatch, run_chunk: Any, flatten: bool) -> tuple[ChunkSpy, int]:
    """``fit`` in 3 chunks with ``run_chunk`` spied on; the spy and the live count before."""
    if flatten:  # two leaves, raveled into one carried buffer of SIZE
        params = {"a": jnp.ones(1000), "b": jnp.ones(SIZE - 1000)}
    else:
        params = {"a": jnp.ones(SIZE)}
    data = jnp.linspace(-1.0, 1.0, 24).reshape(8, 3)

    def loss(p: Any, batch: jax.Array) -> jax.Array:
        return sum(jnp.sum((x - jnp.mean(batch)) ** 2) for x in jax.tree.leaves(p))

    spy = ChunkSpy(run_chunk)
    monkeypatch.setattr(optim.train._run, "run_chunk", spy)
    before = live((SIZE,))
    result = optim.fit(
        loss,
        params,
        optim.adam(1e-2),
        data,
        steps=16,
        chunk_size=4,
        progress=False,
        flatten=flatten,
    )
    # 4 chunks, each through run_chunk; the carry is built by a separate compiled init from
    # copies of the caller's arrays
    assert result.losses.shape == (16,) and len(spy.live) >= 3
    return spy, before


def undonated_run_chunk() -> Any:
    """The chunk ``fit`` compiles, jitted without donation: a stand-in that keeps copies."""
    return jax.jit(optim.train._step._chunk, static_argnames=optim.train._step._STATIC)


@pytest.mark.parametrize("flatten", [False, True], ids=["tree", "flat"])
def test_fit_donates_params_and_state_across_chunks(monkeypatch, flatten):
    spy, before = run_fit(monkeypatch, optim.train._run.run_chunk, flatten)
    # params, Adam's mu and nu: three buffers of SIZE, one copy each, however many chunks ran
    assert set(spy.carried) == {3}
    expected = before + 3
    assert set(spy.live) == {expected}, "a chunk left the previous carry's buffers alive"
    assert all(spy.consumed), "the chunk did not consume (donate) its input carry"
    assert spy.memory.alias_size_in_bytes >= spy.carry_bytes  # every carried byte reused


def test_fit_donation_check_sees_a_missing_donation(monkeypatch):
    """Control: the same jitted chunk without donation keeps both carries alive."""
    spy, before = run_fit(monkeypatch, undonated_run_chunk(), flatten=True)
    assert set(spy.live) == {before + 6}
    assert not any(spy.consumed)
    assert spy.memory.alias_size_in_bytes == 0


def test_fit_flat_keeps_no_raveled_copy(monkeypatch):
    """The flat buffers are raveled inside the compiled init: no raveled copy stays behind."""
    spy, before = run_fit(monkeypatch, optim.train._run.run_chunk, flatten=True)
    assert set(spy.live) == {before + 3}


def adam_step(donate: bool) -> tuple[Any, tuple[Any, Any, Any]]:
    tx = optim.adam(1e-3)

    def step(params: Any, state: Any, grads: Any) -> tuple[Any, Any]:
        updates, state = tx.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    params = {"w": jnp.ones(SIZE)}
    grads = {"w": jnp.full(SIZE, 0.1)}
    return jax.jit(step, donate_argnums=(0, 1) if donate else ()), (params, tx.init(params), grads)


@pytest.mark.parametrize("donate", [True, False], ids=["donated", "control"])
def test_jitted_step_keeps_one_copy(donate):
    step, (params, state, grads) = adam_step(donate)
    before = live((SIZE,))  # params, mu, nu, grads
    assert before == 4
    old = (params, state)
    for _ in range(3):
        old = (params, state)  # the caller still holds the previous step's arrays
        params, state = step(params, state, grads)
    jax.block_until_ready((params, state))
    memory = step.lower(params, state, grads).compile().memory_analysis()
    if donate:
        assert live((SIZE,)) == before
        assert all(x.is_deleted() for x in jax.tree.leaves(old))
        assert memory.alias_size_in_bytes >= 3 * 4 * SIZE  # params, mu and nu reused
        assert memory.temp_size_in_bytes < 4 * SIZE  # and no hidden copy of a whole buffer
    else:  # control: old params, mu and nu alive beside the new ones
        assert live((SIZE,)) == before + 3
        assert memory.alias_size_in_bytes == 0
