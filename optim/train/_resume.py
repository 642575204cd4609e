"""``fit``'s checkpoints: what a run saves (carry, key, history, early-stopping state, the
optimizer's hyperparameters) and how it resumes from them bit-identically.

Writing, verifying and the fall back past a corrupted checkpoint are the store's
(``optim.train._checkpoint``); this module decides what goes in and rebuilds the shapes to
read it back into.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._tree import keystr
from optim._warnings import warn_user
from optim.train import _checkpoint as checkpoint
from optim.train._history import History, Stopper
from optim.train._step import Carry, Program, StepRecord, abstract_carry, carry_step


def hyperparameter_values(optimizer: Any) -> dict[str, float]:
    """The optimizer's scalar float leaves by path (what a checkpoint records)."""
    return {
        keystr(path): float(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(optimizer)[0]
        if np.ndim(leaf) == 0 and not isinstance(leaf, jax.core.Tracer)
    }


class CheckpointStore:
    """fit's checkpoints: carry, key, history and early-stopping state, plus metadata.

    What is saved at step ``s`` has history arrays of ``s`` rows; ``restore`` rebuilds that
    shape from the program (``jax.eval_shape`` of one step) before reading it back.
    """

    def __init__(
        self,
        directory: Any,
        optimizer: Any,
        evaluates: bool,
        eval_every: int | None,
        total: int | None,
    ) -> None:
        self.directory = directory
        self.hyperparameters = hyperparameter_values(optimizer)
        self.evaluates = evaluates
        self.eval_every = eval_every
        self.total = total
        self.corrupted: set[int] = set()  # steps restore skipped; save writes them anew

    @staticmethod
    def _tree(carry: Carry, key: Any, history: History, stopper: Stopper | None) -> dict:
        tree = {
            "carry": carry,
            "key": key,
            "history": history.concat_records(),
            "eval_steps": history.eval_steps(),
            "eval": history.eval_values(),
        }
        if stopper is not None:
            tree["early_stopping"] = stopper.state(carry.arrays)
        return tree

    def save(
        self, step: int, carry: Carry, key: Any, history: History, stopper: Stopper | None
    ) -> None:
        if step in self.corrupted:  # recomputed: it replaces the corrupted checkpoint
            checkpoint.discard(self.directory, step)
            self.corrupted.remove(step)
        elif checkpoint.latest_step(self.directory) == step:  # resumed at the end: nothing new
            return
        metadata = {"hyperparameters": self.hyperparameters, "total_steps": self.total}
        try:
            checkpoint.save(
                self.directory, step, self._tree(carry, key, history, stopper), metadata=metadata
            )
        except OSError as error:
            latest = checkpoint.latest_step(self.directory)
            kept = (
                "no earlier checkpoint"
                if latest is None
                else "the earlier checkpoints are "
                f"intact: fit(..., resume=True) continues from step {latest}"
            )
            raise OSError(
                error.errno,
                f"fit could not write the checkpoint of step {step} in "
                f"{Path(self.directory).absolute()} ({error.strerror or error}); {kept}",
            ) from error

    def _evals_up_to(self, step: int) -> int:
        if not self.evaluates:
            return 0
        regular = step // self.eval_every if self.eval_every else 0
        final = step == self.total and not (self.eval_every and step % self.eval_every == 0)
        return regular + int(final)

    def restore(
        self,
        program: Program,
        optimizer: Any,
        arrays: Any,
        data: Any,
        key: Any,
        history: History,
        stopper: Stopper | None,
    ) -> tuple[int, Carry, Any] | None:
        """Load the latest intact checkpoint into ``history``/``stopper`` and return
        ``(step, carry, key)``; None when the directory holds no checkpoint yet. A corrupted
        checkpoint is skipped, with a warning naming its file, for the one before it (and
        written again when the run gets there)."""
        carry = abstract_carry(optimizer, arrays, program)
        # data is an argument, not a closure: a tracer cannot index NumPy data
        record = jax.eval_shape(
            lambda c, d: carry_step(program, optimizer, d, key, c, None)[1], carry, data
        )
        metric_names = [name for name, _ in program.metrics]
        template_at = functools.partial(
            self._template, carry=carry, key=key, stopper=stopper, record=record,
            metric_names=metric_names,
        )  # fmt: skip
        restored = checkpoint.restore_latest(self.directory, template_at)
        if restored is None:
            return None
        self.corrupted.update(restored.corrupted)
        tree = restored.tree
        _warn_changed(restored.metadata.get("hyperparameters", {}), self.hyperparameters)
        history.records.append(StepRecord(*tree["history"]))
        history.evals.extend(
            (int(s), {name: values[i] for name, values in tree["eval"].items()})
            for i, s in enumerate(np.asarray(tree["eval_steps"]))
        )
        if stopper is not None:
            stopper.load(tree["early_stopping"])
        return restored.step, tree["carry"], tree["key"]

    def _template(
        self,
        step: int,
        *,
        carry: Carry,
        key: Any,
        stopper: Stopper | None,
        record: StepRecord,
        metric_names: Sequence[str],
    ) -> dict:
        """The shapes saved at ``step``: history arrays of ``step`` rows, one row per eval."""
        evals = self._evals_up_to(step)

        def rows(n: int, like: Any) -> Any:
            return jax.tree.map(lambda s: jax.ShapeDtypeStruct((n, *s.shape), s.dtype), like)

        template = {
            "carry": carry,
            "key": key,
            "history": rows(step, record),
            "eval_steps": jax.ShapeDtypeStruct((evals,), jnp.int32),
            "eval": {name: jax.ShapeDtypeStruct((evals,), jnp.float32) for name in metric_names},
        }
        if stopper is not None:
            template["early_stopping"] = stopper.state(carry.arrays)
        return template


def _warn_changed(saved: dict[str, float], current: dict[str, float]) -> None:
    changes = [
        f"{path}: {saved[path]:g} -> {value:g}"
        for path, value in current.items()
        if path in saved and saved[path] != value
    ]
    if changes:
        warn_user(
            "resuming with hyperparameters that differ from the checkpoint's: " + "; ".join(changes)
        )
