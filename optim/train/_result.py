"""What ``fit`` returns: the trained parameters and state, the per-step history, and which
path the run took."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax

from optim._tree import PyTree


@dataclasses.dataclass(frozen=True)
class FitPath:
    """Which path a ``fit`` run took, decided from its arguments, the optimizer and the
    backend (no leaves: it passes through ``jax.jit`` and ``jax.vmap`` as structure).

    Attributes:
      flat: the optimizer ran on one flat buffer per dtype (``flatten``), not per leaf.
      progress: a progress bar was shown (``progress``, by default when interactive).
      traced: ``fit`` ran inside ``jax.jit``/``vmap``/``grad``, as one traceable program.
      line_search: the optimizer was given ``grad=`` and ``value_fn=`` (it declares
        ``needs_value_fn``, as line searches do).
      chunks: compiled chunks run by this call.
    """

    flat: bool
    progress: bool
    traced: bool
    line_search: bool
    chunks: int


jax.tree_util.register_dataclass(
    FitPath, data_fields=[], meta_fields=["flat", "progress", "traced", "line_search", "chunks"]
)


class FitResult(NamedTuple):
    """What :func:`optim.fit` returns.

    Attributes:
      params: the trained parameters, in the structure of the ``params`` given to ``fit``
        (the best ones seen when early stopping restored them).
      opt_state: the optimizer state after the last step, in the parameters' structure (also
        when the run used flat buffers).
      losses: the training loss before each step, shape ``(steps,)``: ``losses[t]`` is the
        loss at the parameters step ``t`` started from.
      aux: ``loss_fn``'s aux stacked per step (leading axis ``steps``) with ``has_aux``, else
        None.
      skipped: booleans of shape ``(steps,)``, whether each step was skipped as non-finite,
        with ``skip_nonfinite``; else None.
      eval_steps: int32 array of the steps after which each evaluation ran (one per
        evaluation), with ``eval_data``; else None.
      eval_metrics: a dict ``{name: values}``, each of shape ``(evaluations,)``, with
        ``eval_data``; else None.
      best_step: the step whose parameters early stopping restored (``restore_best``), else
        None.
      path: a :class:`optim.train.FitPath` saying which path the run took (flat buffers, progress
        bar, traced, line search, compiled chunks).
    """

    params: PyTree
    opt_state: Any
    losses: jax.Array
    aux: Any = None
    skipped: jax.Array | None = None
    eval_steps: Any = None
    eval_metrics: Any = None
    best_step: int | None = None
    path: FitPath | None = None
