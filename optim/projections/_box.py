"""Projections onto boxes: the non-negative orthant, a box, a hypercube, an l-infinity ball."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim._tree import PyTree, check_prefix
from optim.projections._checks import check_scalar


def _broadcast_prefix(prefix: PyTree, tree: PyTree, name: str) -> PyTree:
    """``prefix`` (a scalar, or a tree whose leaves stand for subtrees of ``tree``) repeated to
    ``tree``'s structure; ``ValueError`` naming ``name`` when it is not a prefix."""
    check_prefix(prefix, tree, name, "tree")
    return jax.tree.map(lambda p, sub: jax.tree.map(lambda _: p, sub), prefix, tree)


@suggest_keywords
def projection_non_negative(tree: Any) -> Any:
    r"""Projection onto the non-negative orthant.

    .. math::

      \underset{p}{\text{argmin}} ~ \|x - p\|_2^2 \quad \textrm{subject to} \quad p \ge 0

    where :math:`x` is the input tree: each entry becomes :math:`\max(x_i, 0)`.

    Args:
      tree: tree to project.

    Returns:
      projected tree, with the same structure as ``tree``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import projections
      >>> print(projections.projection_non_negative({"w": jnp.array([-1.0, 2.0])}))
      {'w': Array([0., 2.], dtype=float32)}
    """
    # relu rather than maximum: its derivative at 0 is 0, as optax's.
    return jax.tree.map(jax.nn.relu, tree)


@suggest_keywords
def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    r"""Projection onto box constraints.

    .. math::

      \underset{p}{\text{argmin}} ~ \|x - p\|_2^2 \quad \textrm{subject to} \quad
      \text{lower} \le p \le \text{upper}

    where :math:`x` is the input tree: each entry is clipped to its bounds.

    Args:
      tree: tree to project.
      lower: lower bound, a scalar or tree with the same structure as ``tree`` (or a prefix of
        it: each of its leaves bounds the whole subtree at its path).
      upper: upper bound, a scalar or tree with the same structure as ``tree`` (or a prefix).

    Returns:
      projected tree, with the same structure as ``tree``.

    Raises:
      ValueError: ``lower`` or ``upper`` is neither a scalar nor a prefix of ``tree``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import projections
      >>> x = {"a": jnp.array([-2.0, 0.5, 3.0]), "b": jnp.array([7.0])}
      >>> print(projections.projection_box(x, lower=-1.0, upper={"a": 1.0, "b": 5.0}))
      {'a': Array([-1. ,  0.5,  1. ], dtype=float32), 'b': Array([5.], dtype=float32)}
    """
    lower = _broadcast_prefix(lower, tree, "lower")
    upper = _broadcast_prefix(upper, tree, "upper")
    return jax.tree.map(jnp.clip, tree, lower, upper)


@suggest_keywords
def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the (unit) hypercube.

    .. math::

      \underset{p}{\text{argmin}} ~ \|x - p\|_2^2 \quad \textrm{subject to} \quad
      0 \le p \le \text{scale}

    where :math:`x` is the input tree. By default, the projection is onto the unit hypercube
    (``scale=1``). This is :func:`projection_box` with ``lower=0`` and ``upper=scale``.

    Args:
      tree: tree to project.
      scale: scale of the hypercube, a scalar or a tree (default: 1).

    Returns:
      projected tree, with the same structure as ``tree``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import projections
      >>> print(projections.projection_hypercube(jnp.array([-0.5, 0.25, 2.0])))
      [0.   0.25 1.  ]
    """
    return projection_box(tree, lower=0, upper=scale)


@suggest_keywords
def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    r"""Projection onto the l-infinity ball.

    .. math::

      \underset{y}{\text{argmin}} ~ \|x - y\|_2^2 \quad \textrm{subject to} \quad
      \|y\|_{\infty} \le \text{scale}

    where :math:`x` is the input tree: each entry is clipped to
    :math:`[-\text{scale}, \text{scale}]`, the bounds taken in the entry's dtype.

    Args:
      tree: tree to project.
      scale: radius of the ball (a scalar).

    Returns:
      projected tree, with the same structure as ``tree``.

    Raises:
      ValueError: ``scale`` is not a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import projections
      >>> print(projections.projection_linf_ball(jnp.array([-3.0, 0.5, 2.0]), scale=1.5))
      [-1.5  0.5  1.5]
    """
    check_scalar(scale, "scale")

    def clip_leaf(x: PyTree) -> jax.Array:
        return jnp.clip(x, jnp.full_like(x, -scale), jnp.full_like(x, scale))

    return jax.tree.map(clip_leaf, tree)
