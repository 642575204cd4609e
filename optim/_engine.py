"""The compiled part of ``fit``: one training step, and a chunk of steps as one ``lax.scan``.

A *program* is the static description of the step (loss, batching, accumulation, skipping,
metrics). ``run_chunk`` is jitted on it and donates the carry, so between chunks memory holds
one copy of the parameters and the optimizer state.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._flat import FlatLayout
from optim._sharding import ShardingPlan
from optim._tree import PyTree, compute_dtype, is_array, is_trainable, map_arrays, zero_count
from optim.base import apply_updates
from optim.grad import ArraySplit, split_arrays, trainable_value_and_grad
from optim.optimizers._linesearch import conjugate


class Carry(NamedTuple):
    """What one step hands the next (and what a checkpoint saves)."""

    arrays: Any  # the parameters' arrays (None at constant leaves), or flat buffers by dtype
    opt_state: Any
    step: jax.Array  # int32: steps taken so far
    skips: jax.Array  # int32: consecutive non-finite steps skipped so far
    perm: Any  # the current epoch's permutation (epoch batching), else None


class StepRecord(NamedTuple):
    """What each step reports: the loss before its update, ``aux``, whether it was skipped."""

    loss: jax.Array
    aux: Any
    skipped: jax.Array | None  # None unless fit(skip_nonfinite=True)


@dataclasses.dataclass(frozen=True)
class Program:
    """Static configuration of the compiled step (hashable: a ``jit`` static argument)."""

    loss_fn: Callable[..., Any]
    treedef: Any
    constants: tuple[Any, ...]
    has_aux: bool
    sampler: Any  # RandomBatches / EpochBatches, or None when batches come as scan inputs
    accumulate: int
    skip_nonfinite: bool
    metrics: tuple[tuple[str, Callable[..., Any]], ...]
    layout: FlatLayout | None = None  # the optimizer sees raveled buffers (see optim._flat)
    plan: ShardingPlan | None = None  # batches, params and state laid out on a mesh
    line_search: bool = False  # the optimizer's update needs grad= and value_fn= (lbfgs)

    def params(self, arrays: Any) -> PyTree:
        """The model's parameter tree from the carried arrays (flat buffers or leaves)."""
        if self.layout is not None:
            arrays = self.layout.unravel(arrays)
        return ArraySplit(arrays, self.treedef, self.constants).combine(arrays)

    def optimizer_view(self, arrays: Any, params: PyTree, grads: PyTree) -> tuple[Any, Any]:
        """``(params, grads)`` as the optimizer sees them: raveled, or the model's trees."""
        if self.layout is None:
            return params, grads
        return arrays, self.layout.ravel(jax.tree.leaves(grads, is_leaf=lambda x: x is None))

    def carried(self, optimizer_params: Any) -> Any:
        """Back from the optimizer's view to what the carry holds."""
        if self.layout is None:
            return split_arrays(optimizer_params).arrays
        return optimizer_params

    def value_fn(self, batch: PyTree) -> Callable[[Any], jax.Array]:
        """The loss on ``batch`` as a function of the optimizer's view of the parameters: what
        a line search evaluates at its trial points."""
        return lambda view: self.loss(self.params(self.carried(view)), batch)[0]

    def loss(self, params: PyTree, batch: PyTree) -> tuple[jax.Array, Any]:
        """``(loss, aux)`` with the loss checked to be a scalar."""
        out = self.loss_fn(params, batch)
        if self.has_aux and not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise ValueError(
                "with has_aux=True, loss_fn must return a pair (loss, aux), got "
                + (f"an array of shape {jnp.shape(out)}" if is_array(out) else type(out).__name__)
            )
        loss = out[0] if self.has_aux else out
        if jnp.shape(loss) != ():
            hint = "" if self.has_aux else " (use has_aux=True to return (loss, aux))"
            raise ValueError(
                f"loss_fn must return a scalar loss, got shape {jnp.shape(loss)}{hint}"
            )
        return out if self.has_aux else (out, None)


def _split_microbatches(batch: PyTree, k: int) -> PyTree:
    def split(x: jax.Array) -> jax.Array:
        if x.shape[0] % k:
            raise ValueError(
                f"accumulate={k} must divide the batch size, got a batch of {x.shape[0]}"
            )
        return x.reshape((k, x.shape[0] // k, *x.shape[1:]))

    return jax.tree.map(split, batch)


def loss_and_grads(program: Program, params: PyTree, batch: PyTree) -> tuple[Any, PyTree]:
    """``((loss, aux), grads)`` on ``batch``, averaged over ``accumulate`` microbatches.

    Microbatches run in sequence (a ``lax.scan``) into one float32 gradient accumulator, so
    memory holds one microbatch's activations and one extra copy of the gradients.
    """
    grad_fn = trainable_value_and_grad(program.loss, has_aux=True)
    k = program.accumulate
    if k == 1:
        return grad_fn(params, batch)

    def add(total: Any, microbatch: PyTree) -> tuple[Any, Any]:
        loss_sum, grad_sum = total
        (loss, aux), grads = grad_fn(params, microbatch)
        grad_sum = map_arrays(lambda s, g: s + g.astype(s.dtype), grad_sum, grads)
        return (loss_sum + loss, grad_sum), aux

    zeros = map_arrays(lambda p: jnp.zeros(p.shape, compute_dtype(p)), params)
    (loss_sum, grad_sum), auxes = jax.lax.scan(
        add, (jnp.zeros([], jnp.float32), zeros), _split_microbatches(batch, k)
    )
    grads = map_arrays(lambda s, p: (s / k).astype(p.dtype), grad_sum, params)
    aux = jax.tree.map(lambda a: a.mean(0) if is_trainable(a) else a[-1], auxes)
    return (loss_sum / k, aux), grads


def _all_finite(loss: jax.Array, grads: PyTree) -> jax.Array:
    checks = [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]
    return jnp.logical_and(jnp.isfinite(loss), jnp.all(jnp.stack(checks)) if checks else True)


def _update(program: Program, optimizer: Any, arrays: list[Any], opt_state: Any, batch: PyTree):
    params = program.params(arrays)
    (loss, aux), grads = loss_and_grads(program, params, batch)
    opt_params, opt_grads = program.optimizer_view(arrays, params, grads)
    line_search_args = {}
    if program.line_search:
        # optim.linesearch's convention: the gradient conjugated on complex leaves.
        opt_grads = conjugate(opt_grads)
        line_search_args = {"grad": opt_grads, "value_fn": program.value_fn(batch)}

    def apply(_: Any) -> tuple[Any, Any]:
        updates, new_state = optimizer.update(
            opt_grads, opt_state, opt_params, value=loss, **line_search_args
        )
        return program.carried(apply_updates(opt_params, updates)), new_state

    if not program.skip_nonfinite:
        new_arrays, new_state = apply(None)
        return new_arrays, new_state, loss, aux, jnp.asarray(True)
    finite = _all_finite(loss, grads)
    new_arrays, new_state = jax.lax.cond(finite, apply, lambda _: (arrays, opt_state), None)
    return new_arrays, new_state, loss, aux, finite


def train_step(
    program: Program, optimizer: Any, data: PyTree, key: Any, carry: Carry, batch_in: Any
) -> tuple[Carry, StepRecord]:
    """One optimizer step; ``batch_in`` is the batch when batches come as scan inputs."""
    t, sampler = carry.step, program.sampler
    perm = carry.perm if sampler is None else sampler.next_perm(carry.perm, key, t)

    def on_batch(size: int | None) -> Any:
        batch = batch_in if sampler is None else sampler.batch(data, key, t, perm, size)
        if program.plan is not None:
            batch = program.plan.constrain_batch(batch)
        return _update(program, optimizer, carry.arrays, carry.opt_state, batch)

    if sampler is not None and sampler.partial_size:
        out = jax.lax.cond(
            sampler.is_partial(t),
            lambda: on_batch(sampler.partial_size),
            lambda: on_batch(sampler.batch_size),
        )
    else:
        out = on_batch(None if sampler is None else sampler.batch_size)
    arrays, opt_state, loss, aux, finite = out
    skips, skipped = carry.skips, None  # recorded only when skipping is on: no per-step cost
    if program.skip_nonfinite:
        skips = jnp.where(finite, 0, carry.skips + 1).astype(jnp.int32)
        skipped = jnp.logical_not(finite)
    new_carry = Carry(arrays, opt_state, (t + 1).astype(jnp.int32), skips, perm)
    if program.plan is not None:  # keep the layout fixed from step to step
        new_carry = jax.lax.with_sharding_constraint(
            new_carry, program.plan.carry_shardings(new_carry)
        )
    return new_carry, StepRecord(loss, aux, skipped)


def evaluate(program: Program, arrays: list[Any], eval_data: PyTree) -> dict[str, jax.Array]:
    params = program.params(arrays)
    return {name: jnp.asarray(fn(params, eval_data), jnp.float32) for name, fn in program.metrics}


def _initial_carry(optimizer: Any, arrays: Any, program: Program) -> Carry:
    """The carry before step 0 from the parameters' leaves: fresh copies (never the caller's
    buffers, so that chunks may donate it), raveled into flat buffers when the program says
    so; on a mesh, laid out by the plan: the state is born sharded, on no device whole."""
    arrays = jax.tree.map(jnp.copy, arrays)
    if program.layout is not None:
        arrays = program.layout.ravel(arrays)
    opt_params = arrays if program.layout is not None else program.params(arrays)
    perm = None if program.sampler is None else program.sampler.initial_perm()
    zero = zero_count()
    carry = Carry(arrays, optimizer.init(opt_params), zero, zero, perm)
    if program.plan is not None:
        carry = jax.lax.with_sharding_constraint(carry, program.plan.carry_shardings(carry))
    return carry


# One small compiled program (init only), so that every chunk, the first included, runs the
# same donating step program: a run of many chunks compiles its step once.
initial_carry = jax.jit(_initial_carry, static_argnames=("program",))


def abstract_carry(optimizer: Any, arrays: Any, program: Program) -> Carry:
    """Shapes and dtypes of the initial carry (a template for restoring a checkpoint)."""
    return jax.eval_shape(functools.partial(_initial_carry, program=program), optimizer, arrays)


@functools.partial(jax.jit, static_argnames=("program",))
def final_params_and_state(arrays: Any, opt_state: Any, *, program: Program) -> tuple[Any, Any]:
    """The model's parameter arrays and the optimizer state in the parameters' structure
    (unraveled from flat buffers), in one compiled call rather than op by op."""
    if program.layout is None:
        return arrays, opt_state
    leaves = program.layout.unravel(arrays)
    return leaves, program.layout.unravel_state(opt_state, program.treedef)


def _chunk(
    carry: Carry,
    optimizer: Any,
    data: PyTree,
    key: Any,
    batches: Any,
    eval_data: PyTree,
    *,
    program: Program,
    length: int,
    with_eval: bool,
) -> tuple[Carry, StepRecord, dict[str, jax.Array] | None]:
    """``length`` steps as one scan, then the metrics on ``eval_data`` if ``with_eval``."""
    carry, records = jax.lax.scan(
        lambda c, b: train_step(program, optimizer, data, key, c, b),
        carry,
        batches,
        length=length,
    )
    if program.plan is not None:
        carry = jax.lax.with_sharding_constraint(carry, program.plan.carry_shardings(carry))
    metrics = evaluate(program, carry.arrays, eval_data) if with_eval else None
    return carry, records, metrics


_STATIC = ("program", "length", "with_eval")
# Eager runs donate the carry chunk to chunk (memory holds one copy of params and state).
# Under an outer vmap/grad the inner jit still executes eagerly on the caller's concrete
# arrays, which must not be donated.
run_chunk = jax.jit(_chunk, static_argnames=_STATIC, donate_argnames=("carry",))
run_chunk_undonated = jax.jit(_chunk, static_argnames=_STATIC)
