"""Projections onto a line (a vector's span), a hyperplane and a halfspace."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim._tree import check_same_structure
from optim.projections._checks import check_scalar
from optim.tree import add_scale, scale, vdot


@suggest_keywords
def projection_vector(x: Any, a: Any) -> Any:
    r"""Projection onto a vector.

    Projects a tree ``x`` onto the vector defined by a tree ``a``:

    .. math::

      \operatorname{proj}_a x = \frac{\langle x, a \rangle}{\langle a, a \rangle} a

    Args:
      x: tree to project.
      a: tree onto which to project. Must have the same structure as ``x``.

    Returns:
      tree with the same structure as ``x``.

    Raises:
      ValueError: ``a`` does not have the structure and shapes of ``x``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import projections
      >>> print(projections.projection_vector(jnp.array([2.0, 1.0]), jnp.array([1.0, 1.0])))
      [1.5 1.5]
    """
    check_same_structure(a, x, "a", "x")
    coefficient = vdot(x, a) / vdot(a, a)
    return scale(coefficient, a)


@suggest_keywords
def projection_hyperplane(x: Any, a: Any, b: jax.typing.ArrayLike) -> Any:
    r"""Projection onto a hyperplane.

    Projects a tree ``x`` onto the hyperplane defined by a tree ``a`` and scalar ``b``:

    .. math::

      \operatorname{argmin}_y \|x - y\|_2^2 \quad \text{subject to} \quad
      \langle a, y \rangle = b,

    that is :math:`y = x + \frac{b - \langle x, a \rangle}{\langle a, a \rangle} a`.

    Args:
      x: tree to project.
      a: tree defining hyperplane onto which to project. Must have the same structure as
        ``x``.
      b: scalar defining hyperplane onto which to project.

    Returns:
      tree with the same structure as ``x``.

    Raises:
      ValueError: ``a`` does not have the structure and shapes of ``x``, or ``b`` is not a
        scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import projections
      >>> print(projections.projection_hyperplane(jnp.array([2.0, 0.0]), jnp.ones(2), 1.0))
      [ 1.5 -0.5]
    """
    check_same_structure(a, x, "a", "x")
    check_scalar(b, "b")
    return add_scale(x, (b - vdot(x, a)) / vdot(a, a), a)


@suggest_keywords
def projection_halfspace(x: Any, a: Any, b: jax.typing.ArrayLike) -> Any:
    r"""Projection onto a halfspace.

    Projects a tree ``x`` onto the halfspace defined by a tree ``a`` and scalar ``b``:

    .. math::

      \operatorname{argmin}_y \|x - y\|_2^2 \quad \text{subject to} \quad
      \langle a, y \rangle \leq b,

    that is :math:`y = x + \min\left(0, \frac{b - \langle x, a \rangle}{\langle a, a
    \rangle}\right) a`: ``x`` itself when it satisfies the constraint.

    Args:
      x: tree to project.
      a: tree defining halfspace onto which to project. Must have the same structure as
        ``x``.
      b: scalar defining halfspace onto which to project.

    Returns:
      tree with the same structure as ``x``.

    Raises:
      ValueError: ``a`` does not have the structure and shapes of ``x``, or ``b`` is not a
        scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import projections
      >>> print(projections.projection_halfspace(jnp.array([2.0, 0.0]), jnp.ones(2), 1.0))
      [ 1.5 -0.5]
      >>> print(projections.projection_halfspace(jnp.array([0.0, 0.0]), jnp.ones(2), 1.0))
      [0. 0.]
    """
    check_same_structure(a, x, "a", "x")
    check_scalar(b, "b")
    step = jnp.clip((b - vdot(x, a)) / vdot(a, a), max=0)
    return add_scale(x, step, a)
