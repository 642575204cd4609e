"""The cost matrix both assignment solvers accept: a real 2-D array."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def as_cost_matrix(cost_matrix: Any) -> jax.Array:
    """``cost_matrix`` as a JAX array; ``ValueError`` unless it is 2-D, ``TypeError`` unless
    it is real."""
    try:
        costs = jnp.asarray(cost_matrix)
    except TypeError:
        raise TypeError(
            f"cost_matrix must be a 2-D array of costs, got {type(cost_matrix).__name__}"
        ) from None
    if costs.ndim != 2:
        raise ValueError(f"cost_matrix must be a 2-D array, got shape {costs.shape}")
    if jnp.iscomplexobj(costs):
        raise TypeError(f"cost_matrix must be real, got dtype {costs.dtype}")
    return costs


def empty_assignment() -> tuple[jax.Array, jax.Array]:
    """No pairs: what an assignment with no rows or no columns is."""
    return jnp.zeros(0, int), jnp.zeros(0, int)
