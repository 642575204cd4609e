"""Curvature of a loss ``loss(params, inputs, targets)``: Hessian-vector products, the Hessian's
diagonal, and the diagonal of the observed Fisher information."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from optim._keywords import suggest_keywords

LossFn = Callable[[Any, jax.Array, jax.Array], jax.Array]


def _check_callable(fn: Any, name: str) -> None:
    if not callable(fn):
        raise TypeError(
            f"{name} must be a function fn(params, inputs, targets) -> scalar, "
            f"got {type(fn).__name__}"
        )


def _flat(params: Any) -> jax.Array:
    return ravel_pytree(params)[0]


@suggest_keywords
def hvp(loss: LossFn, v: jax.Array, params: Any, inputs: jax.Array, targets: jax.Array) -> Any:
    r"""Performs an efficient Hessian-vector product :math:`H v` of ``loss``.

    :math:`H = \nabla^2_\theta \ell(\theta, x, y)` is never formed: the product is the
    forward-mode derivative of the gradient in the direction :math:`v`
    (Pearlmutter, 1994), at about the cost of two gradients.

    Args:
      loss: the loss function, ``loss(params, inputs, targets) -> scalar``.
      v: a vector of size ``ravel(params)`` (the parameters flattened in leaf order).
      params: model parameters.
      inputs: inputs at which ``loss`` is evaluated.
      targets: targets at which ``loss`` is evaluated.

    Returns:
      :math:`H v` evaluated at ``(params, inputs, targets)``, with the structure of
      ``params``.

    Raises:
      TypeError: ``loss`` is not callable.
      ValueError: ``v`` is not a vector of the parameters' total size.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import second_order
      >>> loss = lambda w, x, y: jnp.sum((x @ w - y) ** 2)
      >>> x, y = jnp.array([[1.0, 2.0]]), jnp.array([1.0])
      >>> print(second_order.hvp(loss, jnp.array([1.0, 0.0]), jnp.zeros(2), x, y))
      [2. 4.]
    """
    _check_callable(loss, "loss")
    flat, unravel = ravel_pytree(params)
    if np.shape(v) != flat.shape:
        raise ValueError(
            f"v must be a vector of the parameters' total size, shape {flat.shape}; "
            f"got shape {np.shape(v)}"
        )
    gradient = jax.grad(lambda p: loss(p, inputs, targets))
    return jax.jvp(gradient, [params], [unravel(v)])[1]


@suggest_keywords
def hessian_diag(loss: LossFn, params: Any, inputs: jax.Array, targets: jax.Array) -> jax.Array:
    r"""Computes the diagonal of the Hessian of ``loss`` at ``(inputs, targets)``.

    :math:`\operatorname{diag}(H)_i = e_i^\top H e_i`, one Hessian-vector product
    (:func:`hvp`) per parameter entry, vectorized with ``jax.vmap``: meant for small models.

    Args:
      loss: the loss function, ``loss(params, inputs, targets) -> scalar``.
      params: model parameters.
      inputs: inputs at which ``loss`` is evaluated.
      targets: targets at which ``loss`` is evaluated.

    Returns:
      A vector of the parameters' total size (flattened in leaf order): the diagonal of the
      Hessian of ``loss`` evaluated at ``(params, inputs, targets)``.

    Raises:
      TypeError: ``loss`` is not callable.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import second_order
      >>> loss = lambda w, x, y: jnp.sum((x @ w - y) ** 2)
      >>> x, y = jnp.array([[1.0, 2.0]]), jnp.array([1.0])
      >>> print(second_order.hessian_diag(loss, jnp.zeros(2), x, y))
      [2. 8.]
    """
    _check_callable(loss, "loss")
    basis = jnp.eye(_flat(params).size)

    def curvature_along(e: jax.Array) -> jax.Array:
        return jnp.vdot(e, _flat(hvp(loss, e, params, inputs, targets)))

    return jax.vmap(curvature_along)(basis)


@suggest_keywords
def fisher_diag(
    negative_log_likelihood: LossFn, params: Any, inputs: jax.Array, targets: jax.Array
) -> jax.Array:
    r"""Computes the diagonal of the (observed) Fisher information matrix.

    :math:`\operatorname{diag}(F) = (\nabla_\theta \,\text{nll}(\theta, x, y))^2`, the
    squared gradient of the negative log likelihood at the observed ``(inputs, targets)``.

    Args:
      negative_log_likelihood: the negative log likelihood function with expected signature
        ``loss = fn(params, inputs, targets)``.
      params: model parameters.
      inputs: inputs at which ``negative_log_likelihood`` is evaluated.
      targets: targets at which ``negative_log_likelihood`` is evaluated.

    Returns:
      A vector of the parameters' total size (flattened in leaf order): the squared gradient
      of ``negative_log_likelihood`` evaluated at ``(params, inputs, targets)``.

    Raises:
      TypeError: ``negative_log_likelihood`` is not callable.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import second_order
      >>> nll = lambda w, x, y: jnp.sum((x @ w - y) ** 2)
      >>> x, y = jnp.array([[1.0, 2.0]]), jnp.array([1.0])
      >>> print(second_order.fisher_diag(nll, jnp.zeros(2), x, y))
      [ 4. 16.]
    """
    _check_callable(negative_log_likelihood, "negative_log_likelihood")
    return jnp.square(_flat(jax.grad(negative_log_likelihood)(params, inputs, targets)))
