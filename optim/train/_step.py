"""The traceable core of training: one step, and many steps as one ``lax.scan``.

``train_step`` and ``train_loop`` are pure functions for use inside a program of one's own
(``jax.jit``, ``jax.vmap``, ``jax.grad``); ``fit`` compiles the same step in chunks.

Inside ``fit``, a *program* is the static description of the step (loss, batching,
accumulation, skipping, metrics, flat buffers, sharding). ``run_chunk`` is jitted on it and
donates the carry, so between chunks memory holds one copy of the parameters and the
optimizer state.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim._keywords import suggest_keywords
from optim._tree import (
    PyTree,
    check_params,
    compute_dtype,
    is_array,
    is_trainable,
    map_arrays,
    zero_count,
)
from optim.base import OptaxTransform, Transformation, apply_updates, as_transformation
from optim.grad import ArraySplit, split_arrays, trainable_value_and_grad
from optim.optimizers._linesearch import conjugate
from optim.train._flat import FlatLayout
from optim.train._options import StepOptions
from optim.train._sharding import ShardingPlan


class Carry(NamedTuple):
    """What one step hands the next (and what a checkpoint saves)."""

    arrays: Any  # the parameters' arrays (None at constant leaves), or flat buffers by dtype
    opt_state: Any
    step: jax.Array  # int32: steps taken so far
    skips: jax.Array  # int32: consecutive non-finite steps skipped so far
    perm: Any  # the current epoch's permutation (epoch batching), else None


class StepRecord(NamedTuple):
    """What each step reports: the loss before its update, ``aux``, whether it was skipped.

    Returned by :func:`optim.train.train_step` (one step) and stacked per step (leading axis)
    by :func:`optim.train.train_loop`.

    Attributes:
      loss: the scalar loss at the parameters the step started from.
      aux: ``loss_fn``'s aux with ``has_aux`` (floating leaves averaged over
        microbatches with ``accumulate``), else None.
      skipped: with ``skip_nonfinite``, a boolean scalar: whether the step was skipped for a
        non-finite loss or gradient; else None.
    """

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
    layout: FlatLayout | None = None  # the optimizer sees raveled buffers (see _flat)
    plan: ShardingPlan | None = None  # batches, params and state laid out on a mesh
    line_search: bool = False  # the optimizer's update needs grad= and value_fn= (lbfgs)

    def __post_init__(self) -> None:
        if self.line_search and self.accumulate > 1:
            raise ValueError(
                f"accumulate={self.accumulate} cannot be used with a line-search optimizer "
                "(lbfgs): its line search evaluates the loss and gradient on the whole batch "
                "at trial points, which holds the activations accumulation avoids; use "
                "accumulate=1 or a smaller batch_size"
            )

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
        # The line searches' convention: the gradient conjugated on complex leaves.
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


def carry_step(
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


def scan_steps(
    program: Program,
    optimizer: Any,
    data: PyTree,
    key: Any,
    carry: Carry,
    batches: Any,
    length: int | None = None,
) -> tuple[Carry, StepRecord]:
    """``length`` steps as one ``lax.scan`` (one per leading entry of ``batches`` when batches
    come as scan inputs); the records stacked per step."""
    return jax.lax.scan(
        lambda c, b: carry_step(program, optimizer, data, key, c, b), carry, batches, length
    )


def evaluate(program: Program, arrays: list[Any], eval_data: PyTree) -> dict[str, jax.Array]:
    params = program.params(arrays)
    return {name: jnp.asarray(fn(params, eval_data), jnp.float32) for name, fn in program.metrics}


def _initial_carry(optimizer: Any, arrays: Any, program: Program, copy: bool = True) -> Carry:
    """The carry before step 0 from the parameters' leaves: fresh copies with ``copy`` (never
    the caller's buffers, so that chunks may donate it), raveled into flat buffers when the
    program says so; on a mesh, laid out by the plan: the state is born sharded, on no device
    whole."""
    if copy:
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


def final_params_and_state(arrays: Any, opt_state: Any, *, program: Program) -> tuple[Any, Any]:
    """The model's parameter arrays and the optimizer state in the parameters' structure:
    the carry's own when it holds the leaves, else unraveled from flat buffers in one compiled
    call (rather than op by op)."""
    if program.layout is None:
        return arrays, opt_state
    return _unraveled(arrays, opt_state, program=program)


@functools.partial(jax.jit, static_argnames=("program",))
def _unraveled(arrays: Any, opt_state: Any, *, program: Program) -> tuple[Any, Any]:
    return program.layout.unravel(arrays), program.layout.unravel_state(opt_state, program.treedef)


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
    from_arrays: bool = False,
) -> tuple[Carry, StepRecord, dict[str, jax.Array] | None]:
    """``length`` steps as one scan, then the metrics on ``eval_data`` if ``with_eval``.

    With ``from_arrays``, ``carry`` is the parameters' arrays and the first carry is built
    here: a run that is one chunk compiles this program only (the caller's arrays are not
    donated, so they need no copy).
    """
    if from_arrays:
        carry = _initial_carry(optimizer, carry, program, copy=False)
    carry, records = scan_steps(program, optimizer, data, key, carry, batches, length)
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
run_whole = jax.jit(functools.partial(_chunk, from_arrays=True), static_argnames=_STATIC)


# --- the public traceable core --------------------------------------------------------------


def check_loss_fn(loss_fn: Any) -> Callable[..., Any]:
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be a function loss_fn(params, batch) -> scalar loss, got "
            f"{type(loss_fn).__name__} {loss_fn!r}"
        )
    return loss_fn


# optax's line searches declare nothing: their state types say what they are.
_OPTAX_LINE_SEARCH_STATES = (
    optax.ScaleByZoomLinesearchState,
    optax.ScaleByBacktrackingLinesearchState,
)


def needs_value_fn(optimizer: Any, params: PyTree) -> bool:
    """Whether ``optimizer.update`` needs ``grad=`` and ``value_fn=`` besides ``value=``.

    A transformation says so with the class attribute ``needs_value_fn = True`` (optim's line
    searches do), found here through chains and wrappers: any transformation held in a field
    of a transformation, or in a tuple, list or dict there. A wrapped optax transformation
    is a line search when its state holds one of optax's line-search states.
    """
    optimizer = as_transformation(optimizer, "optimizer")
    if getattr(type(optimizer), "needs_value_fn", False):
        return True
    if isinstance(optimizer, OptaxTransform):
        inner = optimizer.transformation
        if getattr(type(inner), "needs_value_fn", False):
            return True
        split = split_arrays(params)
        state = jax.eval_shape(lambda arrays: inner.init(split.combine(arrays)), split.arrays)
        records = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, _OPTAX_LINE_SEARCH_STATES))
        return any(isinstance(x, _OPTAX_LINE_SEARCH_STATES) for x in records)
    return any(needs_value_fn(inner, params) for inner in _held_transformations(optimizer))


def _held_transformations(tx: Any) -> list[Any]:
    """The transformations a transformation holds in its fields (a chain's, a wrapper's)."""
    if not dataclasses.is_dataclass(tx):
        return []
    found: list[Any] = []

    def visit(value: Any) -> None:
        if isinstance(value, Transformation):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)

    for field in dataclasses.fields(tx):
        visit(getattr(tx, field.name))
    return found


def step_program(
    loss_fn: Callable[..., Any],
    optimizer: Any,
    params: PyTree,
    *,
    has_aux: bool,
    accumulate: int,
    skip_nonfinite: bool,
    **placement: Any,
) -> Program:
    """The static description of a step of ``loss_fn`` with ``optimizer`` on ``params``
    (checked); ``placement`` adds fit's sampler, metrics, flat layout and sharding plan."""
    split = split_arrays(params)
    return Program(
        loss_fn=loss_fn,
        treedef=split.treedef,
        constants=split.constants,
        has_aux=has_aux,
        accumulate=accumulate,
        skip_nonfinite=skip_nonfinite,
        line_search=needs_value_fn(optimizer, params),
        **{"sampler": None, "metrics": (), **placement},
    )


def _checked(loss_fn, optimizer, params, opt_state, options: StepOptions):
    """The program, optimizer and first carry of ``train_step``/``train_loop``, all checked."""
    optimizer = as_transformation(optimizer, "optimizer")
    check_params(params)
    program = step_program(
        check_loss_fn(loss_fn),
        optimizer,
        params,
        has_aux=options.has_aux,
        accumulate=options.accumulate,
        skip_nonfinite=options.skip_nonfinite,
    )
    carry = Carry(split_arrays(params).arrays, opt_state, zero_count(), zero_count(), None)
    return program, optimizer, carry


@suggest_keywords
def train_step(
    loss_fn: Callable[..., Any],
    optimizer: Any,
    params: PyTree,
    opt_state: Any,
    batch: PyTree,
    *,
    has_aux: bool = False,
    accumulate: int = 1,
    skip_nonfinite: bool = False,
) -> tuple[PyTree, Any, StepRecord]:
    """One training step, a pure function: ``(params, opt_state, record)`` after it.

    The step ``fit`` compiles: ``loss_fn(params, batch)`` and its gradient (averaged over
    ``accumulate`` microbatches of ``batch``), the optimizer's update (given ``value=`` the
    loss; a line search also ``grad=`` and ``value_fn=``, the loss on ``batch``) applied to
    ``params``. ``record`` holds the loss before the update, ``loss_fn``'s aux (``has_aux``)
    and, with ``skip_nonfinite``, whether the step was skipped for a non-finite loss or
    gradient (params and state then unchanged). Traceable: call it inside ``jax.jit``,
    ``jax.vmap`` or ``jax.grad``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (``-> (scalar, aux)`` with ``has_aux``).
      optimizer: a gradient transformation from ``optim`` or ``optax``; its ``update`` gets
        ``value=`` the loss (a line search such as :func:`optim.lbfgs` also ``grad=`` and
        ``value_fn=``).
      params: the parameters, any pytree; floating (and complex) arrays are trained, other
        leaves are passed through.
      opt_state: the optimizer's state for ``params`` (``optimizer.init(params)``).
      batch: the batch ``loss_fn`` is evaluated on, any pytree.
      has_aux: whether ``loss_fn`` returns ``(loss, aux)``.
      accumulate: split ``batch`` into this many microbatches (it must divide the batch size)
        and average their gradients, run in sequence to hold one microbatch's activations.
      skip_nonfinite: leave params and state unchanged when the loss or a gradient is not
        finite, and report it in the record's ``skipped``.

    Returns:
      ``(params, opt_state, record)``: the parameters and optimizer state after the step
      (the parameters' structure and dtypes kept), and a :class:`optim.train.StepRecord`.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> loss_fn = lambda w, batch: jnp.mean((batch - w) ** 2)
      >>> tx = optim.sgd(0.1)
      >>> step = jax.jit(lambda w, s, b: optim.train.train_step(loss_fn, tx, w, s, b))
      >>> w, state = jnp.zeros(()), tx.init(jnp.zeros(()))
      >>> w, state, record = step(w, state, jnp.ones(8))
      >>> float(record.loss), round(float(w), 4)
      (1.0, 0.2)
    """
    options = StepOptions(has_aux, accumulate, skip_nonfinite)
    program, optimizer, carry = _checked(loss_fn, optimizer, params, opt_state, options)
    carry, record = carry_step(program, optimizer, None, None, carry, batch)
    return program.params(carry.arrays), carry.opt_state, record


@suggest_keywords
def train_loop(
    loss_fn: Callable[..., Any],
    optimizer: Any,
    params: PyTree,
    opt_state: Any,
    batches: PyTree,
    *,
    has_aux: bool = False,
    accumulate: int = 1,
    skip_nonfinite: bool = False,
) -> tuple[PyTree, Any, StepRecord]:
    """``train_step`` over each of ``batches`` (stacked on a leading axis) as one ``lax.scan``:
    ``(params, opt_state, records)`` with ``records`` stacked per step. A pure function, the
    loop ``fit`` runs in each compiled chunk.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (``-> (scalar, aux)`` with ``has_aux``).
      optimizer: a gradient transformation from ``optim`` or ``optax``; its ``update`` gets
        ``value=`` the loss (a line search such as :func:`optim.lbfgs` also ``grad=`` and
        ``value_fn=``).
      params: the parameters, any pytree; floating (and complex) arrays are trained, other
        leaves are passed through.
      opt_state: the optimizer's state for ``params`` (``optimizer.init(params)``).
      batches: the batches, a pytree whose leaves are stacked on a leading axis of length
        ``steps`` (one step per entry; ``batches[t]``, leafwise, is step ``t``'s batch).
      has_aux: whether ``loss_fn`` returns ``(loss, aux)``.
      accumulate: split each batch into this many microbatches (it must divide the batch size)
        and average their gradients, run in sequence to hold one microbatch's activations.
      skip_nonfinite: leave params and state unchanged when the loss or a gradient is not
        finite, and report it in the record's ``skipped``.

    Returns:
      ``(params, opt_state, records)``: the parameters and optimizer state after the last
      step, and a :class:`optim.train.StepRecord` whose fields are stacked per step
      (``records.loss`` has shape ``(steps,)``).

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> loss_fn = lambda w, batch: jnp.mean((batch - w) ** 2)
      >>> tx = optim.sgd(0.1)
      >>> run = jax.jit(lambda w, s, b: optim.train.train_loop(loss_fn, tx, w, s, b))
      >>> w, state = jnp.zeros(()), tx.init(jnp.zeros(()))
      >>> w, state, records = run(w, state, jnp.ones((50, 8)))  # 50 steps of 8 examples
      >>> records.loss.shape, round(float(w), 4)
      ((50,), 1.0)
    """
    options = StepOptions(has_aux, accumulate, skip_nonfinite)
    program, optimizer, carry = _checked(loss_fn, optimizer, params, opt_state, options)
    carry, records = scan_steps(program, optimizer, None, None, carry, batches)
    return program.params(carry.arrays), carry.opt_state, records
