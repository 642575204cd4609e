"""The Hungarian algorithm as successive shortest augmenting paths (Crouse, 2016)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim.assignment._checks import as_cost_matrix, empty_assignment


class _Duals(NamedTuple):
    """The dual potentials and the matching built so far (-1: unmatched)."""

    u: jax.Array  # per row
    v: jax.Array  # per column
    path: jax.Array  # per column: the row it was reached from on the last search
    row4col: jax.Array
    col4row: jax.Array


class _Search(NamedTuple):
    """A Dijkstra search for the shortest augmenting path from one free row."""

    row: jax.Array  # the row being scanned
    min_value: jax.Array  # the length of the shortest path found so far
    num_remaining: jax.Array  # columns not yet reached are remaining[:num_remaining]
    remaining: jax.Array
    rows_seen: jax.Array  # SR: rows scanned
    cols_seen: jax.Array  # SC: columns reached
    distance: jax.Array  # shortest path costs to each column
    path: jax.Array
    sink: jax.Array  # the free column the path ends at, -1 until found


def _relax(costs: jax.Array, duals: _Duals, search: _Search) -> _Search:
    """Scan ``search.row``: shorten the paths to the remaining columns through it, then reach
    the closest remaining column (a free one among the closest, if any)."""
    i = search.row

    def visit(position: jax.Array, carry: tuple) -> tuple:
        distance, path, lowest, closest = carry
        j = search.remaining[position]
        reduced = search.min_value + costs[i, j] - duals.u[i] - duals.v[j]
        path = path.at[j].set(jnp.where(reduced < distance[j], i, path[j]))
        distance = distance.at[j].min(reduced)
        is_free = duals.row4col[j] == -1
        closer = (distance[j] < lowest) | ((distance[j] == lowest) & is_free)
        closest = jnp.where(closer, position, closest)
        return distance, path, jnp.minimum(lowest, distance[j]), closest

    start = (search.distance, search.path, jnp.asarray(jnp.inf, costs.dtype), jnp.int32(-1))
    distance, path, lowest, closest = jax.lax.fori_loop(0, search.num_remaining, visit, start)

    j = search.remaining[closest]
    free = duals.row4col[j] == -1
    num_remaining = search.num_remaining - 1
    return _Search(
        row=jnp.where(free, i, duals.row4col[j]),
        min_value=lowest,
        num_remaining=num_remaining,
        remaining=search.remaining.at[closest].set(search.remaining[num_remaining]),
        rows_seen=search.rows_seen,
        cols_seen=search.cols_seen.at[j].set(True),
        distance=distance,
        path=path,
        sink=jnp.where(free, j, search.sink),
    )


def _augment_from(current_row: jax.Array, duals: _Duals, costs: jax.Array) -> _Duals:
    """Match ``current_row``: find a shortest augmenting path, update the potentials, and flip
    the matching along the path."""
    rows, cols = costs.shape
    search = _Search(
        row=current_row,
        min_value=jnp.zeros([], costs.dtype),
        num_remaining=jnp.int32(cols),
        remaining=jnp.arange(cols)[::-1],
        rows_seen=jnp.zeros(rows, bool),
        cols_seen=jnp.zeros(cols, bool),
        distance=jnp.full(cols, jnp.inf, costs.dtype),
        path=duals.path,
        sink=jnp.int32(-1),
    )

    def step(s: _Search) -> _Search:
        return _relax(costs, duals, s._replace(rows_seen=s.rows_seen.at[s.row].set(True)))

    search = jax.lax.while_loop(lambda s: s.sink == -1, step, search)

    d, delta = search.distance, search.min_value
    u = duals.u.at[current_row].add(delta)
    others = search.rows_seen & (jnp.arange(rows) != current_row)
    u = jnp.where(others, u + delta - d[duals.col4row], u)
    v = jnp.where(search.cols_seen, duals.v + d - delta, duals.v)

    def flip(carry: tuple) -> tuple:
        j, row4col, col4row, _ = carry
        i = search.path[j]
        return col4row[i], row4col.at[j].set(i), col4row.at[i].set(j), i == current_row

    _, row4col, col4row, _ = jax.lax.while_loop(
        lambda c: ~c[-1], flip, (search.sink, duals.row4col, duals.col4row, False)
    )
    return _Duals(u, v, search.path, row4col, col4row)


@suggest_keywords
def base_hungarian_algorithm(cost_matrix: Any) -> tuple[jax.Array, jax.Array]:
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

    Each row in turn (of the orientation with no more rows than columns) is matched by a
    shortest augmenting path in reduced costs :math:`C_{ij} - u_i - v_j`, found by
    Dijkstra's algorithm, after which the dual potentials :math:`u, v` are updated: the
    pseudocode of pages 1685-1686 of Crouse (2016), :math:`O(n^2 m)` time. Costs are
    converted to floating point. See :func:`hungarian_algorithm` for a faster variant.

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
      >>> i, j = assignment.base_hungarian_algorithm(cost)
      >>> print("cost:", cost[i, j].sum())
      cost: 15
      >>> print("i:", i)
      i: [0 1 3]
      >>> print("j:", j)
      j: [0 2 1]

    References:
      David F. Crouse, `On implementing 2D rectangular assignment algorithms
      <https://ieeexplore.ieee.org/document/7738348>`_, 2016
    """
    costs = as_cost_matrix(cost_matrix)
    if 0 in costs.shape:
        return empty_assignment()
    transpose = costs.shape[1] < costs.shape[0]
    if transpose:
        costs = costs.T
    costs = costs.astype(float)
    rows, cols = costs.shape
    duals = _Duals(
        u=jnp.zeros(rows, costs.dtype),
        v=jnp.zeros(cols, costs.dtype),
        path=jnp.full(cols, -1),
        row4col=jnp.full(cols, -1),
        col4row=jnp.full(rows, -1),
    )
    duals = jax.lax.fori_loop(0, rows, lambda r, d: _augment_from(r, d, costs), duals)
    col4row = duals.col4row
    if transpose:
        order = col4row.argsort()
        return col4row[order], order
    return jnp.arange(rows), col4row
