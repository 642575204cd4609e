"""The Hungarian algorithm with row and column potentials, as in the Scenic library."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim.assignment._checks import as_cost_matrix, empty_assignment


def _match_row(costs: jax.Array, carry: tuple, row: jax.Array) -> tuple:
    """Add ``row`` to the matching: grow a tree of tight edges from it (updating the
    potentials by the least slack each time) until a free column is reached, then flip the
    matching along the path back to ``row``.

    Indices are 1-based here: column 0 and ``parent[0]`` stand for the row being added, and
    ``u`` has a spare last entry that absorbs updates meant for no row.
    """
    rows, cols = costs.shape
    u, v, parent = carry
    parent = parent.at[0].set(row + 1)

    def grow(state: tuple) -> tuple:
        u, v, used, slack, path, col = state
        used = used.at[col].set(True)
        open_cols = ~used[1:]
        r = parent[col]
        reduced = jnp.where(open_cols, costs[r - 1, :] - u[r] - v[1:], jnp.inf)
        shorter = reduced < slack
        path = jnp.where(shorter, col, path)
        slack = jnp.where(shorter, reduced, slack)
        col = jnp.argmin(jnp.where(open_cols, slack, jnp.inf)) + 1
        delta = slack.min(where=open_cols, initial=jnp.inf)
        u = u.at[jnp.where(used, parent, rows + 1)].add(delta)
        v = jnp.where(used, v - delta, v)
        slack = jnp.where(open_cols, slack - delta, slack)
        return u, v, used, slack, path, col

    state = (
        u,
        v,
        jnp.zeros(cols + 1, bool),
        jnp.full(cols, jnp.inf),
        jnp.zeros(cols, int),
        0,
    )
    u, v, _, _, path, col = jax.lax.while_loop(lambda s: parent[s[-1]] != 0, grow, state)

    def step_back(state: tuple) -> tuple:
        parent, col = state
        previous = path[col - 1]
        return parent.at[col].set(parent[previous]), previous

    parent, _ = jax.lax.while_loop(lambda s: s[1] != 0, step_back, (parent, col))
    return (u, v, parent), None


@suggest_keywords
def hungarian_algorithm(cost_matrix: Any) -> tuple[jax.Array, jax.Array]:
    r"""The Hungarian algorithm for the linear assignment problem.

    Given an :math:`n \times m` cost matrix :math:`C`, find pairs of rows and columns such
    that at most one column is assigned to each row and at most one row to each column, the
    number of pairs is :math:`\min(n, m)`, and the sum of their costs is the least:

    .. math::

      \begin{align*}
          \text{minimize} \quad & \sum_{i \in [n]} \sum_{j \in [m]} C_{ij} X_{ij} \\
          \text{subject to} \quad
          & X_{ij} \in \{0, 1\} & \forall i \in [n], j \in [m] \\
          & \sum_{i \in [n]} X_{ij} \leq 1 & \forall j \in [m] \\
          & \sum_{j \in [m]} X_{ij} \leq 1 & \forall i \in [n] \\
          & \sum_{i \in [n]} \sum_{j \in [m]} X_{ij} = \min(n, m)
      \end{align*}

    The rows (of the orientation with no more rows than columns) are added one at a time; for
    each, potentials :math:`u, v` with :math:`C_{ij} \ge u_i + v_j` are raised along a tree
    of tight edges until a free column is reached, :math:`O(n^2 m)` time. This follows the
    implementation of the Scenic library (Dehghani et al., 2022); its program is simpler and
    usually faster than :func:`base_hungarian_algorithm`'s.

    Args:
      cost_matrix: A matrix of costs.

    Returns:
      A pair ``(i, j)`` where ``i`` is an array of row indices and ``j`` is an array of
      column indices. The cost of the assignment is ``cost_matrix[i, j].sum()``.

    Raises:
      ValueError: ``cost_matrix`` is not 2-D.
      TypeError: ``cost_matrix`` is not a real array.

    Examples:
      >>> from jax import numpy as jnp
      >>> from optim import assignment
      >>> cost = jnp.array([[8, 4, 7], [5, 2, 3], [9, 6, 7], [9, 4, 8]])
      >>> i, j = assignment.hungarian_algorithm(cost)
      >>> print("cost:", cost[i, j].sum())
      cost: 15
      >>> cost = jnp.array(
      ...     [
      ...         [90, 80, 75, 70],
      ...         [35, 85, 55, 65],
      ...         [125, 95, 90, 95],
      ...         [45, 110, 95, 115],
      ...         [50, 100, 90, 100],
      ...     ]
      ... )
      >>> i, j = assignment.hungarian_algorithm(cost)
      >>> print("cost:", cost[i, j].sum())
      cost: 265

    References:
      Dehghani et al., `Scenic: A JAX Library for Computer Vision Research and Beyond
      <https://arxiv.org/abs/2110.11403>`_, 2022
    """
    costs = as_cost_matrix(cost_matrix)
    if 0 in costs.shape:
        return empty_assignment()
    transpose = costs.shape[0] > costs.shape[1]
    if transpose:
        costs = costs.T
    rows, cols = costs.shape
    start = (jnp.zeros(rows + 2), jnp.zeros(cols + 1), jnp.zeros(cols + 1, int))
    (_, _, parent), _ = jax.lax.scan(lambda c, r: _match_row(costs, c, r), start, jnp.arange(rows))
    # parent[j] is the 1-based row matched to column j (0: none); -v[0] is the least cost.
    if rows == cols:
        matched, columns = parent[1:], jnp.arange(rows)
    else:  # the matched columns are those with the largest (nonzero) parents
        matched, columns = jax.lax.top_k(parent[1:], rows)
    matched = matched - 1
    if transpose:
        return columns, matched
    return matched, columns
