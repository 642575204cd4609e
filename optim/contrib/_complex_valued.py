"""Complex parameters optimized as pairs of real ones (``optax.contrib``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass
from optim._tree import PyTree, is_array
from optim.base import Transformation, as_transformation

__all__ = [
    "SplitRealAndImaginaryArrays",
    "SplitRealAndImaginaryState",
    "split_real_and_imaginary",
]


class SplitRealAndImaginaryArrays(NamedTuple):
    """The real and imaginary parts of a complex array, as two real arrays (the leaf that
    ``inner`` of :func:`optim.contrib.split_real_and_imaginary` sees for a complex leaf).

    Attributes:
      real: the real part, a real array of the complex array's shape.
      imaginary: the imaginary part, a real array of the same shape.
    """

    real: jax.Array
    imaginary: jax.Array


class SplitRealAndImaginaryState(NamedTuple):
    """The state of :func:`optim.contrib.split_real_and_imaginary`.

    Attributes:
      inner_state: the state of ``inner``, built on the split parameters (each complex leaf a
        :class:`optim.contrib.SplitRealAndImaginaryArrays`).
    """

    inner_state: Any


def _split(x: Any) -> Any:
    if is_array(x) and jnp.iscomplexobj(x):
        return SplitRealAndImaginaryArrays(jnp.real(x), jnp.imag(x))
    return x


def _merge(x: Any) -> Any:
    if isinstance(x, SplitRealAndImaginaryArrays):
        return jax.lax.complex(x.real, x.imaginary)
    return x


def _split_tree(tree: PyTree) -> PyTree:
    return jax.tree.map(_split, tree, is_leaf=lambda x: x is None)


@pytree_dataclass
class SplitRealAndImaginary(Transformation):
    r"""Run ``inner`` on :math:`(\mathrm{Re}\,z, \mathrm{Im}\,z)` for every complex leaf
    :math:`z` and return :math:`u_{re} + i\,u_{im}`; real leaves pass as they are.

    An optimizer that is not defined for complex numbers (one that orders, clips or squares
    values) then treats each complex parameter as two real ones. ``jax.grad`` of a real loss
    with respect to :math:`z` returns the conjugate of the descent direction used elsewhere
    (PyTorch's convention; see optax#196): conjugate it before ``update``.
    """

    inner: Any

    def init(self, params: PyTree) -> SplitRealAndImaginaryState:
        return SplitRealAndImaginaryState(self.inner.init(_split_tree(params)))

    def update(self, updates, state, params=None, **extra_args):
        inner_updates, inner_state = self.inner.update(
            _split_tree(updates),
            state.inner_state,
            None if params is None else _split_tree(params),
            **extra_args,
        )
        merged = jax.tree.map(
            _merge,
            inner_updates,
            is_leaf=lambda x: isinstance(x, SplitRealAndImaginaryArrays) or x is None,
        )
        return merged, SplitRealAndImaginaryState(inner_state)


@suggest_keywords
def split_real_and_imaginary(inner: Any) -> SplitRealAndImaginary:
    r"""Wrap ``inner`` (ours or an optax transformation) so that it sees each complex leaf as a
    pair of real leaves.

    ``inner`` runs on :math:`(\mathrm{Re}\,z, \mathrm{Im}\,z)` for every complex leaf
    :math:`z` and the update returned is :math:`u_{re} + i\,u_{im}`; real leaves pass as they
    are. An optimizer that is not defined for complex numbers (one that orders, clips or
    squares values) then treats each complex parameter as two real ones. ``jax.grad`` of a
    real loss with respect to :math:`z` returns the conjugate of the descent direction used
    elsewhere (PyTorch's convention; see optax#196): conjugate it before ``update``.

    Args:
      inner: the transformation to wrap, an :class:`optim.GradientTransformation` or an optax
        one. Extra ``update`` keyword arguments reach it.

    Returns:
      A :class:`optim.GradientTransformation` with state
      :class:`optim.contrib.SplitRealAndImaginaryState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.split_real_and_imaginary(optim.sign_sgd(learning_rate=0.1))
      >>> params = {"z": jnp.array([1.0 + 2.0j, -1.0 + 0.0j])}
      >>> state = tx.init(params)
      >>> grads = {"z": jnp.array([0.5 - 3.0j, 2.0 + 1.0j])}
      >>> updates, state = tx.update(grads, state, params)
      >>> print(updates["z"])  # -0.1 sign, on the real and imaginary parts apart
      [-0.1+0.1j -0.1-0.1j]
    """
    return SplitRealAndImaginary(as_transformation(inner, "inner"))
