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
    """What ``fit`` returns.

    ``losses[t]`` is the training loss before step ``t``; ``aux`` stacks ``loss_fn``'s aux per
    step (``has_aux``); ``skipped[t]`` says whether step ``t`` was skipped as non-finite
    (with ``skip_nonfinite``, else None);
    ``eval_steps`` and ``eval_metrics`` (name -> values) hold one entry per evaluation;
    ``best_step`` is the step whose parameters early stopping restored; ``path`` says which
    path the run took (a ``FitPath``: flat buffers, progress bar, traced, line search).
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
