"""What ``fit`` keeps on the host between chunks: the per-step records and evaluations, and
the early-stopping state (best value, patience left, a copy of the best parameters)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from optim.train._options import EarlyStopping
from optim.train._step import StepRecord


class History:
    """Per-chunk records and evaluations, concatenated at the end."""

    def __init__(self) -> None:
        self.records: list[StepRecord] = []
        self.evals: list[tuple[int, dict[str, jax.Array]]] = []

    def add(self, records: StepRecord, end: int, values: dict | None) -> None:
        self.records.append(records)
        if values is not None:
            self.evals.append((end, values))

    def concat_records(self) -> StepRecord | None:
        if not self.records:
            return None
        return jax.tree.map(lambda *xs: jnp.concatenate(xs), *self.records)

    def concat(self, field: str) -> Any:
        parts = [getattr(r, field) for r in self.records]
        if len(parts) <= 1:
            return parts[0] if parts else None
        return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)

    def eval_steps(self) -> jax.Array:
        return jnp.asarray([end for end, _ in self.evals], jnp.int32)

    def eval_values(self) -> dict[str, jax.Array]:
        if not self.evals:
            return {}
        return {name: jnp.stack([v[name] for _, v in self.evals]) for name in self.evals[0][1]}

    def postfix(self) -> dict[str, str]:
        out = {"loss": f"{float(self.records[-1].loss[-1]):.4g}"}
        if self.evals:
            out.update({f"eval_{k}": f"{float(v):.4g}" for k, v in self.evals[-1][1].items()})
        return out


class Stopper:
    """Early-stopping bookkeeping on the host (a copy of the best parameters on device)."""

    def __init__(self, spec: EarlyStopping) -> None:
        self.spec = spec
        self.best = math.inf if spec.mode == "min" else -math.inf
        self.best_step: int | None = None
        self.best_arrays: list[Any] | None = None
        self.wait = 0

    def observe(self, step: int, values: dict[str, jax.Array], arrays: list[Any]) -> bool:
        value = float(values[self.spec.metric])
        if self.spec.improved(value, self.best):
            self.best, self.best_step, self.wait = value, step, 0
            if self.spec.restore_best:  # a copy: the next chunk donates the carry
                self.best_arrays = jax.tree.map(jnp.copy, arrays)
            return False
        self.wait += 1
        return self.wait >= self.spec.patience

    def state(self, arrays: list[Any]) -> dict[str, Any]:
        """What a checkpoint keeps (the current arrays stand in until a best exists)."""
        return {
            "best": jnp.float32(self.best),
            "best_step": jnp.int32(-1 if self.best_step is None else self.best_step),
            "wait": jnp.int32(self.wait),
            "best_arrays": arrays if self.best_arrays is None else self.best_arrays,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_step = None if int(state["best_step"]) < 0 else int(state["best_step"])
        self.wait = int(state["wait"])
        self.best_arrays = state["best_arrays"] if self.best_step is not None else None
