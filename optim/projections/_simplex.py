"""Projections onto the simplex and onto the l1 sphere and ball (which reduce to it)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from optim._keywords import suggest_keywords
from optim.projections._checks import check_scalar
from optim.tree import norm


@jax.custom_jvp
def _unit_simplex(values: jax.Array) -> jax.Array:
    r"""Projection of a vector onto :math:`\{p \ge 0, \sum_i p_i = 1\}` (Duchi et al., 2008).

    With :math:`u` the entries sorted in decreasing order and :math:`c_k = \sum_{i \le k} u_i`,
    the support size :math:`\rho` is the number of :math:`k` with
    :math:`1/k + u_k - c_k/k > 0`, and :math:`p = \max(x + (1 - c_\rho)/\rho, 0)`, computed
    as :math:`\max(1/\rho + (x - c_\rho/\rho), 0)`.
    """
    descending = jnp.sort(values)[::-1]
    partial_sums = jnp.cumsum(descending)
    k = jnp.arange(values.shape[0]) + 1
    support_size = jnp.count_nonzero(1 / k + (descending - partial_sums / k) > 0)
    return jax.nn.relu(1 / support_size + (values - partial_sums[support_size - 1] / support_size))


@_unit_simplex.defjvp
def _unit_simplex_jvp(primals: tuple, tangents: tuple) -> tuple:
    # On the support S the projection is x + constant, so its Jacobian is the centering
    # matrix of S: dp = 1_S * dx - (1_S . dx / |S|) 1_S.
    (values,), (values_dot,) = primals, tangents
    projected = _unit_simplex(values)
    support = projected > 0
    size = jnp.count_nonzero(support)
    return projected, support * values_dot - (jnp.dot(support, values_dot) / size) * support


@suggest_keywords
def projection_simplex(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    r"""Projection onto a simplex.

    .. math::

      \underset{p}{\text{argmin}} ~ \|x - p\|_2^2 \quad \textrm{subject to} \quad
      p \ge 0, p^\top 1 = \text{scale}

    where ``x`` is the input tree, all of its leaves taken together as one vector. By default,
    the projection is onto the probability simplex (unit simplex). The sort-based algorithm
    is that of Duchi et al., `Efficient projections onto the l1-ball for learning in high
    dimensions <https://doi.org/10.1145/1390156.1390191>`_, 2008; its derivative is defined
    almost everywhere (on the support, the centering matrix).

    Args:
      tree: tree to project.
      scale: value the projected tree should sum to (default: 1).

    Returns:
      projected tree, a tree with the same structure as ``tree``.

    Raises:
      ValueError: ``scale`` is not a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import projections
      >>> data = {"w": jnp.array([2.5, 3.2]), "b": 0.5}
      >>> new_data = projections.projection_simplex(data)
      >>> print(new_data["w"], new_data["b"])
      [0.1500001  0.85000014] 0.0
    """
    check_scalar(scale, "scale")
    values, unravel = ravel_pytree(tree)
    return unravel(scale * _unit_simplex(values / scale))


@suggest_keywords
def projection_l1_sphere(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    r"""Projection onto the l1 sphere.

    .. math::

      \underset{y}{\text{argmin}} ~ \|x - y\|_2^2 \quad \textrm{subject to} \quad
      \|y\|_1 = \text{scale}

    where ``x`` is the input tree: :math:`y = \text{sign}(x) \odot P(|x|)` with :math:`P`
    the projection onto the simplex of size ``scale`` (:func:`projection_simplex`).

    Args:
      tree: tree to project.
      scale: radius of the sphere.

    Returns:
      projected tree, with the same structure as ``tree``.

    Raises:
      ValueError: ``scale`` is not a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import projections
      >>> print(projections.projection_l1_sphere(jnp.array([0.1, -0.2])))
      [ 0.45 -0.55]
    """
    magnitudes = projection_simplex(jax.tree.map(jnp.abs, tree), scale)
    return jax.tree.map(lambda x, m: jnp.sign(x) * m, tree, magnitudes)


@suggest_keywords
def projection_l1_ball(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    r"""Projection onto the l1 ball.

    .. math::

      \underset{y}{\text{argmin}} ~ \|x - y\|_2^2 \quad \textrm{subject to} \quad
      \|y\|_1 \le \text{scale}

    where ``x`` is the input tree: ``x`` itself when it is inside the ball, else its
    projection onto the sphere (:func:`projection_l1_sphere`).

    Args:
      tree: tree to project.
      scale: radius of the ball.

    Returns:
      projected tree, with the same structure as ``tree``.

    Raises:
      ValueError: ``scale`` is not a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import projections
      >>> data = {"w": jnp.array([2.5, 3.2]), "b": 0.5}
      >>> new_data = projections.projection_l1_ball(data)
      >>> print(new_data["w"], new_data["b"])
      [0.1500001  0.85000014] 0.0
    """
    check_scalar(scale, "scale")

    def onto_sphere(t: Any) -> Any:
        # Back in each leaf's dtype: the simplex projection computes bf16 leaves in float32,
        # and both branches must return the same types (optax's fails for bf16 here).
        return jax.tree.map(lambda p, x: p.astype(x.dtype), projection_l1_sphere(t, scale), t)

    return jax.lax.cond(norm(tree, ord=1) <= scale, lambda t: t, onto_sphere, tree)
