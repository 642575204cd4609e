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
from optim._tree import PyTree
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
    num_examples,
    shared,
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
    """Train ``params`` on ``data`` with ``optimizer``, as compiled ``lax.scan`` chunks of steps.

    Each step evaluates ``loss_fn`` and its gradient on a batch, asks ``optimizer`` for updates
    (passing the loss as ``value=``) and applies them; the steps run as compiled
    ``lax.scan`` chunks, with the host working only between chunks (evaluation, early stopping,
    checkpoints, the progress bar).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (``-> (scalar, aux)`` with ``has_aux``);
        ``batch`` has the structure of ``data`` with ``batch_size`` examples on the leading
        axis; ``loss_fn(params)`` with ``data=None``.
      params: the initial parameters, any pytree; floating (and complex) arrays are trained,
        other leaves (integer arrays, ``None``, Python values) are passed through unchanged.
      optimizer: a gradient transformation from ``optim`` or ``optax`` (an
        :class:`optim.GradientTransformation` or an ``optax.GradientTransformation``).
      data: a pytree of arrays sharing a leading example axis (``batch`` has its structure),
        or an iterator of batches (then give ``steps``, or nothing to run until it is
        exhausted; not ``epochs`` nor ``batch_size``), or ``None`` (the default) for an
        objective without data such as Rosenbrock: ``loss_fn(params)`` is then called
        without a batch, every step (not with ``epochs``, ``batch_size`` or ``accumulate``).
      steps: optimizer steps to take, an int >= 1. Give ``steps`` or ``epochs``, not both.
      epochs: passes over the data, an int >= 1, reshuffled each with ``key`` (required):
        ``epochs * ceil(n / batch_size)`` steps (``floor`` with ``drop_last``).
      batch_size: examples per step, an int in ``[1, n]``; ``None`` uses all the data every
        step (gradient descent). With ``steps`` and ``batch_size < n``, each step draws
        ``batch_size`` examples without replacement with ``jax.random.fold_in(key, step)``
        (``key`` required; see :func:`optim.sample_batch`).
      drop_last: with ``epochs``, leave out (True) or keep (False) the last partial batch of
        each epoch.
      key: PRNG key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``) for shuffling and
        minibatch draws; required with ``epochs`` or a ``batch_size`` below the data size,
        unused otherwise.
      has_aux: whether ``loss_fn`` returns ``(loss, aux)``; ``aux`` is stacked per step in
        ``result.aux``.
      eval_data: data to evaluate ``metrics`` on (the whole of it, one batch), every
        ``eval_every`` steps and at the end; ``None``: no evaluation.
      eval_every: evaluate every this many steps, an int >= 1 (needs ``eval_data``);
        ``None``: only at the end.
      metrics: built-in names (``"loss"``: ``loss_fn`` without its aux; ``"accuracy"``: the
        mean of ``argmax(params(x), -1) == y`` for ``eval_data = (x, y)`` with callable
        ``params``) and/or a dict ``{name: fn(params, batch) -> scalar}``; default
        ``["loss"]``. Needs ``eval_data``.
      early_stopping: an :class:`optim.EarlyStopping` on one of the metrics (needs
        ``eval_data`` and ``eval_every``); ``None``: run every step.
      progress: a tqdm progress bar, updated between chunks; ``None`` (default) shows it when
        a notebook or terminal is watching (``result.path.progress`` says whether it was).
      chunk_size: at most this many steps per compiled chunk (an int >= 1); ``None``: chunks
        end only where the host has work.
      checkpoint_dir: a directory (``str`` or path) to save params, optimizer state, step, key
        and history in (orbax-checkpoint, see :mod:`optim.checkpoint`), at the end and every
        ``checkpoint_every`` steps; ``None``: no checkpoints.
      checkpoint_every: save every this many steps, an int >= 1 (needs ``checkpoint_dir``);
        ``None``: only at the end (and when early stopping stops the run).
      resume: continue from the latest complete checkpoint in ``checkpoint_dir`` if there is
        one (bit-identical to an uninterrupted run); warns about changed hyperparameters. A
        corrupted checkpoint is skipped with a warning naming its file (and written again when
        the run gets there); ``CorruptCheckpointError`` if every checkpoint is corrupted.
      accumulate: split each batch into this many microbatches (it must divide the batch
        size) and average their gradients, holding one microbatch's activations at a time.
        Not with a line-search optimizer.
      skip_nonfinite: skip steps whose loss or gradients are not finite (params and state
        untouched, ``result.skipped`` marks them).
      max_consecutive_skips: with ``skip_nonfinite``, raise ``FloatingPointError`` when a
        chunk ends after this many or more skipped steps in a row (an int >= 1; checked
        between chunks, so not when ``fit`` is traced).
      flatten: let the optimizer work on one flat buffer per dtype instead of one array per
        leaf (same numbers, cost independent of the number of leaves; see ``optim.train._flat``).
        ``"auto"`` does so for elementwise optimizers on models of 16 (``FLATTEN_MIN_LEAVES``)
        or more trainable leaves on an accelerator (on CPU it does not pay); ``opt_state`` is
        returned in the parameters' structure either way (``result.path.flat`` says which ran).
        ``True`` forces it (an elementwise optimizer only, else ``ValueError``), ``False``
        turns it off. Not used with ``mesh`` (``True`` with ``mesh`` is an error).
      mesh: a ``jax.sharding.Mesh`` for data-parallel training (batches split over
        ``data_axis``); ``None``: one device.
      data_axis: the name of the mesh axis batches are split over.
      sharding: with ``mesh``, ``"replicated"`` (parameters and state on every device),
        ``"zero1"`` (optimizer state sharded over ``data_axis``) or ``"fsdp"`` (parameters and
        state sharded); see ``optim.train._sharding``.

    Returns:
      An :class:`optim.FitResult`: the trained (or, with ``early_stopping.restore_best``, the
      best) ``params``, the final ``opt_state`` in the parameters' structure, ``losses`` (one
      per step, the loss before the step), ``aux``, ``skipped``, ``eval_steps`` and
      ``eval_metrics``, ``best_step`` and ``path``.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> result = optim.fit(lambda w, b: jnp.mean((b - w) ** 2), jnp.zeros(()),
      ...                    optim.sgd(0.1), jnp.ones(8), steps=50)
      >>> round(float(result.params), 4), result.losses.shape
      (1.0, (50,))

      Minibatches drawn with a key, evaluated every 10 steps:

      >>> x = jnp.arange(8.0)
      >>> result = optim.fit(lambda w, b: jnp.mean((b - w) ** 2), jnp.zeros(()),
      ...                    optim.adam(0.5), x, steps=30, batch_size=4,
      ...                    key=jax.random.key(0), eval_data=x, eval_every=10)
      >>> print(result.eval_steps)
      [10 20 30]
      >>> sorted(result.eval_metrics)
      ['loss']
    """
    loss_fn = check_loss_fn(loss_fn)
    optimizer = as_transformation(optimizer, "optimizer")
    batching = Batching(steps, epochs, batch_size, drop_last, key)
    if data is None:
        loss_fn, data = without_data(loss_fn, batching, accumulate), NO_DATA
    run = plan(
        loss_fn,
        params,
        optimizer,
        data,
        batching,
        shared(StepOptions, has_aux, accumulate, skip_nonfinite, max_consecutive_skips),
        Evaluation(eval_data, eval_every, metrics, early_stopping),
        shared(Checkpointing, checkpoint_dir, checkpoint_every, resume),
        shared(Placement, flatten, mesh, data_axis, sharding),
        shared(Chunking, chunk_size, progress),
    )
    with run:
        for end in run.boundaries():
            if not run.advance(end):
                break
    return run.collect()


@suggest_keywords
def sample_batch(data: PyTree, key: jax.Array, batch_size: int, step: int = 0) -> PyTree:
    """The ``batch_size`` examples ``fit(..., steps=, batch_size=, key=key)`` trains on at
    ``step``: drawn without replacement with ``jax.random.fold_in(key, step)``.

    Args:
      data: a pytree of arrays sharing a leading example axis, as given to :func:`optim.fit`.
      key: the PRNG key given to ``fit`` (``jax.random.key(0)`` or
        ``jax.random.PRNGKey(0)``).
      batch_size: examples per batch, an int in ``[1, n]`` for ``n`` examples.
      step: the step index (0-based) whose batch to return.

    Returns:
      A pytree with the structure of ``data``, each leaf holding ``batch_size`` examples on
      its leading axis.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> batch = optim.sample_batch(jnp.arange(10.0), jax.random.key(0), batch_size=3, step=2)
      >>> batch.shape
      (3,)
    """
    n = num_examples(data)
    batch_size = check_int(batch_size, "batch_size", low=1)
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the data ({n} examples)")
    check_key(key)
    return RandomBatches(n, batch_size).batch(data, key, step, None, batch_size)
