"""Projections onto the l2 sphere and ball: a rescaling of the whole tree."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim.projections._checks import check_scalar
from optim.tree import norm
from optim.tree import scale as scale_tree


@suggest_keywords
def projection_l2_sphere(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    r"""Projection onto the l2 sphere.

    .. math::

      \underset{y}{\text{argmin}} ~ \|x - y\|_2^2 \quad \textrm{subject to} \quad
      \|y\|_2 = \text{scale}

    where ``x`` is the input tree: :math:`y = \text{scale} \cdot x / \|x\|_2`, the norm
    taken over all leaves together (NaN for ``x = 0``, where the projection is not unique).

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
      >>> print(projections.projection_l2_sphere(jnp.array([3.0, 4.0])))
      [0.6 0.8]
    """
    check_scalar(scale, "scale")
    factor = scale / jnp.sqrt(norm(tree, squared=True))
    return scale_tree(factor, tree)


@suggest_keywords
def projection_l2_ball(tree: Any, scale: jax.typing.ArrayLike = 1) -> Any:
    r"""Projection onto the l2 ball.

    .. math::

      \underset{y}{\text{argmin}} ~ \|x - y\|_2^2 \quad \textrm{subject to} \quad
      \|y\|_2 \le \text{scale}

    where ``x`` is the input tree:
    :math:`y = x \cdot \text{scale} / \sqrt{\max(\|x\|_2^2, \text{scale}^2)}`, so ``x``
    itself when it is inside the ball.

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
      >>> print(projections.projection_l2_ball({"a": jnp.array([3.0, 4.0])}, scale=2.5))
      {'a': Array([1.5, 2. ], dtype=float32)}
    """
    check_scalar(scale, "scale")
    factor = scale / jnp.sqrt(jnp.maximum(norm(tree, squared=True), scale**2))
    return scale_tree(factor, tree)
