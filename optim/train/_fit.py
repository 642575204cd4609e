"""``optim.fit``: training as compiled ``lax.scan`` chunks, with the host between chunks only.

Each step evaluates ``loss_fn`` and its gradient on a batch, asks the optimizer for updates
(passing the loss as ``value=`` for transformations that want it; a line-search optimizer
such as ``lbfgs`` also gets ``grad=`` and ``value_fn=``, the loss on the same batch) and
applies them:

.. math:: \\ell_t, g_t = \\nabla L(\\theta_t; B_t),\\quad u_t, s_{t+1} = T(g_t, s_t, \\theta_t),
    \\quad \\theta_{t+1} = \\theta_t + u_t.

The batch :math:`B_t` is

* the whole data set (``batch_size=None``: gradient descent);
* ``batch_size`` examples drawn without replacement with ``fold_in(key, t)`` (``steps=``;
  ``batch_size=1`` is stochastic gradient descent);
* the next slice of a fresh permutation each epoch (``epochs=``), dropping or keeping the
  last partial batch (``drop_last``);
* the next batch of a host iterator (``data`` an iterator), fed to the device in chunks.

The recorded loss :math:`\\ell_t` is the loss at the parameters *before* step ``t``.

The steps run as compiled chunks. Chunk boundaries fall where the host has work (evaluation,
early stopping, checkpoints, the progress bar); with none requested the whole run is one scan.
The carry is donated from chunk to chunk. Called under ``jax.jit``, ``jax.vmap`` or
``jax.grad`` (any traced input), ``fit`` is fully traceable; host work other than evaluation
is then unavailable and asking for it is an error.

``fit`` reads as plan, run chunks, collect: its options are grouped into records that check
themselves (``optim.train._options``), ``plan`` checks them against the data, parameters and
optimizer and builds the compiled program (``optim.train._run``), each chunk is the scanned
loop of ``train_step`` (``optim.train._step``), and ``collect`` makes the ``FitResult``, whose
``path`` says which path the run took.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

from optim._hyper import check_int
from optim._keywords import suggest_keywords
from optim._tree import PyTree, check_params
from optim.base import as_transformation
from optim.train._batches import RandomBatches
from optim.train._options import (
    NO_DATA,
    Batching,
    Checkpointing,
    Chunking,
    EarlyStopping,
    Evaluation,
    Placement,
    StepOptions,
    check_key,
    check_not_a_class,
    num_examples,
    without_data,
)
from optim.train._result import FitResult
from optim.train._run import plan
from optim.train._step import check_loss_fn


@suggest_keywords
def fit(
    loss_fn: Callable[..., Any],
    params: PyTree,
    optimizer: Any,
    data: Any = None,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    drop_last: bool = True,
    key: jax.Array | None = None,
    has_aux: bool = False,
    eval_data: PyTree | None = None,
    eval_every: int | None = None,
    metrics: Sequence[str] | Mapping[str, Any] | None = None,
    early_stopping: EarlyStopping | None = None,
    progress: bool | None = None,
    chunk_size: int | None = None,
    checkpoint_dir: Any = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    accumulate: int = 1,
    skip_nonfinite: bool = False,
    max_consecutive_skips: int = 10,
    flatten: bool | str = "auto",
    mesh: Any = None,
    data_axis: str = "data",
    sharding: str = "replicated",
) -> FitResult:
    """Train ``params`` on ``data`` with ``optimizer`` (see the module docstring).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (``-> (scalar, aux)`` with ``has_aux``;
        ``loss_fn(params)`` with ``data=None``).
      params: any pytree; floating arrays are trained, other leaves are passed through.
      optimizer: a gradient transformation from ``optim`` or ``optax``.
      data: a pytree of arrays sharing a leading example axis (``batch`` has its structure),
        or an iterator of batches, or ``None`` for an objective without data (Rosenbrock):
        ``loss_fn(params)`` is then called without a batch, every step.
      steps: optimizer steps to take. Or ``epochs``: passes over the data, reshuffled each.
      batch_size: examples per step; ``None`` uses all the data every step.
      drop_last: with ``epochs``, leave out (True) or keep (False) the last partial batch.
      key: PRNG key for shuffling and minibatch draws.
      has_aux: whether ``loss_fn`` returns ``(loss, aux)``; ``aux`` is stacked per step.
      eval_data: data to evaluate ``metrics`` on, every ``eval_every`` steps and at the end.
      metrics: built-in names (``"loss"``, ``"accuracy"`` for ``params(x)`` logits against
        integer labels ``y`` of ``eval_data = (x, y)``) and/or a dict ``{name: fn(params,
        batch) -> scalar}``; default ``["loss"]``.
      early_stopping: an ``EarlyStopping`` on one of the metrics.
      progress: a tqdm progress bar, updated between chunks; by default shown when a notebook
        or terminal is watching (``result.path.progress`` says whether it was).
      chunk_size: at most this many steps per compiled chunk.
      checkpoint_dir, checkpoint_every: save params, optimizer state, step, key and history
        there every ``checkpoint_every`` steps and at the end (orbax-checkpoint).
      resume: continue from the latest complete checkpoint in ``checkpoint_dir`` if there is
        one (bit-identical to an uninterrupted run); warns about changed hyperparameters. A
        corrupted checkpoint is skipped with a warning naming its file (and written again when
        the run gets there); ``CorruptCheckpointError`` if every checkpoint is corrupted.
      accumulate: split each batch into this many microbatches and average their gradients.
      skip_nonfinite: skip steps whose loss or gradients are not finite (params and state
        untouched); raise ``FloatingPointError`` after ``max_consecutive_skips`` in a row.
      flatten: let the optimizer work on one flat buffer per dtype instead of one array per
        leaf (same numbers, cost independent of the number of leaves; see ``optim.train._flat``).
        ``"auto"`` does so for elementwise optimizers on models of ``FLATTEN_MIN_LEAVES`` or
        more trainable leaves on an accelerator (on CPU it does not pay); ``opt_state`` is
        returned in the parameters' structure either way (``result.path.flat`` says which ran).
        Not used with ``mesh``.
      mesh, data_axis, sharding: data-parallel training on a ``jax.sharding.Mesh``: batches
        split over ``data_axis``; ``sharding`` is ``"replicated"`` (parameters and state on
        every device), ``"zero1"`` (state sharded) or ``"fsdp"`` (parameters and state
        sharded); see ``optim.train._sharding``.

    >>> import jax.numpy as jnp, optim
    >>> result = optim.fit(lambda w, b: jnp.mean((b - w) ** 2), jnp.zeros(()), optim.sgd(0.1),
    ...                    jnp.ones(8), steps=50)
    >>> round(float(result.params), 4)
    1.0
    """
    loss_fn = check_loss_fn(loss_fn)
    optimizer = as_transformation(optimizer, "optimizer")
    check_not_a_class(params, "params")
    check_params(params)
    batching = Batching(steps, epochs, batch_size, drop_last, key)
    if data is None:
        loss_fn, data = without_data(loss_fn, batching, accumulate), NO_DATA
    run = plan(
        loss_fn,
        params,
        optimizer,
        data,
        batching,
        StepOptions(has_aux, accumulate, skip_nonfinite, max_consecutive_skips),
        Evaluation(eval_data, eval_every, metrics, early_stopping),
        Checkpointing(checkpoint_dir, checkpoint_every, resume),
        Placement(flatten, mesh, data_axis, sharding),
        Chunking(chunk_size, progress),
    )
    with run:
        for end in run.boundaries():
            if not run.advance(end):
                break
    return run.collect()


@suggest_keywords
def sample_batch(data: PyTree, key: jax.Array, batch_size: int, step: int = 0) -> PyTree:
    """The ``batch_size`` examples ``fit(..., steps=, batch_size=, key=key)`` trains on at
    ``step``: drawn without replacement with ``jax.random.fold_in(key, step)``."""
    n = num_examples(data)
    batch_size = check_int(batch_size, "batch_size", low=1)
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the data ({n} examples)")
    check_key(key)
    return RandomBatches(n, batch_size).batch(data, key, step, None, batch_size)
