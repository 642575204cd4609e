"""Sanitising updates: zero NaNs, keep parameters non-negative, centralise, normalise, and
scale a gradient in the backward pass only (optax's names, arguments and states).

Notation as in ``optim.transforms``: :math:`g_t` the incoming update, :math:`u_t` the outgoing
one, :math:`\\theta_t` the parameters. Arithmetic runs in at least float32; updates leave in
the incoming gradient's dtype; leaves that are not floating arrays get ``None``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import hyper
from optim._numerics import cast_like_grads
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_float_updates,
    check_params,
    global_norm,
    is_trainable,
    keystr,
    leaves_with_paths,
    map_arrays,
    upcast,
)
from optim.base import EmptyState, Transformation, check_updates, require_params

__all__ = [
    "NonNegativeParamsState",
    "ZeroNansState",
    "centralize",
    "keep_params_nonnegative",
    "normalize_by_update_norm",
    "scale_gradient",
    "zero_nans",
]


# --- zero_nans ----------------------------------------------------------------------------


class ZeroNansState(NamedTuple):
    """Per leaf, a boolean scalar: whether the last update held a NaN there (optax's field)."""

    found_nan: PyTree


@pytree_dataclass
class ZeroNans(Transformation):
    r"""Replace NaNs by zeros: :math:`u_{t,i} = 0` where :math:`g_{t,i}` is NaN, else
    :math:`g_{t,i}`.

    The state records, per leaf, whether a NaN was replaced at the last step; the
    transformation does not read it. Complex entries with a NaN part are zeroed whole, as
    in optax. Infinities pass through.
    """

    def init(self, params: PyTree) -> ZeroNansState:
        check_params(params)
        return ZeroNansState(found_nan=map_arrays(lambda p: jnp.array(False), params))

    def update(self, updates, state, params=None, **extra_args):
        del state, params, extra_args
        check_float_updates(updates)
        found_nan = map_arrays(lambda g: jnp.any(jnp.isnan(g)), updates)
        cleaned = map_arrays(lambda g: jnp.where(jnp.isnan(g), jnp.zeros_like(g), g), updates)
        return cleaned, ZeroNansState(found_nan=found_nan)


def zero_nans() -> ZeroNans:
    """Replace NaNs in the updates by 0 and record where it happened (``optax.zero_nans``)."""
    return ZeroNans()


# --- keep_params_nonnegative --------------------------------------------------------------

NonNegativeParamsState = EmptyState


def _reject_complex(tree: PyTree, name: str, transformation: str) -> None:
    """Raise ``ValueError`` naming the first complex leaf of ``tree``."""
    for path, leaf in leaves_with_paths(tree):
        if is_trainable(leaf) and jnp.iscomplexobj(leaf):
            raise ValueError(
                f"{transformation}: {name}{keystr(path)} is complex ({leaf.dtype}); complex "
                "numbers are not ordered, so 'non-negative' has no meaning for them. Apply it "
                "to real parameters only (e.g. with optim.masked)."
            )


@pytree_dataclass
class KeepParamsNonnegative(Transformation):
    r"""Keep the parameters non-negative after the update:

    .. math:: u_t = \begin{cases} -\theta_t & \theta_t + g_t < 0 \\ g_t & \text{otherwise,}
        \end{cases}

    so that :math:`\theta_{t+1} = \max(\theta_t + g_t, 0)` for :math:`\theta_t \ge 0` (a
    negative parameter is moved to 0). Put it last in a chain: it sees the final update.
    Real parameters only (complex ones raise ``ValueError``, where optax would compare real
    parts).
    """

    def init(self, params: PyTree) -> NonNegativeParamsState:
        check_params(params)
        return NonNegativeParamsState()

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "keep_params_nonnegative")
        check_updates(updates, params, "params")
        _reject_complex(params, "params", "keep_params_nonnegative")
        _reject_complex(updates, "grads", "keep_params_nonnegative")

        def clamp(g: jax.Array, p: jax.Array) -> jax.Array:
            g32, p32 = upcast(g), upcast(p)
            return jnp.where(p32 + g32 < 0.0, -p32, g32)

        return cast_like_grads(map_arrays(clamp, updates, params), updates), state


def keep_params_nonnegative() -> KeepParamsNonnegative:
    """Modify updates so that parameters stay >= 0 (``optax.keep_params_nonnegative``)."""
    return KeepParamsNonnegative()


# --- centralize ---------------------------------------------------------------------------


def _centralized(g: jax.Array) -> jax.Array:
    if g.ndim <= 1:
        return g
    g32 = upcast(g)
    return (g32 - g32.mean(axis=tuple(range(1, g.ndim)), keepdims=True)).astype(g.dtype)


@pytree_dataclass
class Centralize(Transformation):
    r"""Gradient centralisation (Yong et al., 2020, "Gradient Centralization: A New
    Optimization Technique for Deep Neural Networks").

    For a leaf of rank :math:`\ge 2`, each slice along the first axis loses its mean over
    all the other axes:

    .. math:: u_{t,i\ldots} = g_{t,i\ldots} - \operatorname{mean}_{j\ldots}\, g_{t,ij\ldots};

    vectors and scalars pass unchanged. The first axis is the output axis of PyTorch's
    weights (``(out, in, kh, kw)``), as in the paper and optax; for flax's ``(in, out)``
    kernels the mean is taken over the outputs instead. Complex leaves are supported.
    """

    def init(self, params: PyTree) -> EmptyState:
        check_params(params)
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        return map_arrays(_centralized, updates), state


def centralize() -> Centralize:
    """Subtract from each matrix-like update its mean over all but the first axis
    (``optax.centralize``)."""
    return Centralize()


# --- normalize_by_update_norm -------------------------------------------------------------


@pytree_dataclass
class NormalizeByUpdateNorm(Transformation):
    r"""Scale by the inverse of the global norm of the updates:

    .. math:: u_t = s\, \frac{g_t}{\lVert g_t \rVert_2 + \epsilon},

    the norm taken over all leaves together; :math:`s` = ``scale_factor`` (negative for a
    descent step with no other scaling). Where :math:`\lVert g_t\rVert_2 + \epsilon = 0`
    (every update 0 and :math:`\epsilon = 0`) the updates stay 0, where optax's are NaN.
    """

    scale_factor: Any
    eps: Any

    def init(self, params: PyTree) -> EmptyState:
        check_params(params)
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        total = global_norm(updates) + self.eps
        # optax's order of operations, (norm + eps) / s, keeps the values bit for bit.
        denominator = jnp.where(total > 0, total, 1.0) / self.scale_factor
        normalized = map_arrays(lambda g: upcast(g) / denominator, updates)
        return cast_like_grads(normalized, updates), state


def normalize_by_update_norm(scale_factor: Any = 1.0, eps: Any = 1e-6) -> NormalizeByUpdateNorm:
    """Divide the updates by their global norm (plus ``eps``) and multiply by ``scale_factor``
    (``optax.normalize_by_update_norm``)."""
    return NormalizeByUpdateNorm(
        scale_factor=hyper(scale_factor, "scale_factor", schedule=False),
        eps=hyper(eps, "eps", schedule=False, low=0.0),
    )


# --- scale_gradient -----------------------------------------------------------------------


@jax.custom_vjp
def _scaled_backward(x: jax.Array, scale: jax.Array) -> jax.Array:
    del scale
    return x


def _scaled_backward_fwd(x: jax.Array, scale: jax.Array) -> tuple[jax.Array, jax.Array]:
    return x, scale


def _scaled_backward_bwd(scale: jax.Array, cotangent: jax.Array) -> tuple[jax.Array, jax.Array]:
    scaled = (upcast(cotangent) * scale).astype(cotangent.dtype)
    return scaled, jnp.zeros_like(scale)  # the scale itself gets no gradient, as in optax


_scaled_backward.defvjp(_scaled_backward_fwd, _scaled_backward_bwd)


def scale_gradient(inputs: PyTree, scale: Any) -> PyTree:
    r"""``inputs`` unchanged in the forward pass; their gradient multiplied by ``scale`` in
    the backward pass: :math:`f(x) = x`, :math:`\bar x = s\,\bar f` (``optax.scale_gradient``).

    Floating leaves of ``inputs`` are scaled; other leaves pass through. ``scale`` may be
    traced (``jit``, ``vmap`` over it); a concrete 1 returns ``inputs`` and a concrete 0
    stops the gradient (``jax.lax.stop_gradient``), as in optax. The cotangent is multiplied
    in float32 or wider and returned in the input's dtype. ``scale`` gets no gradient.

    Raises:
      ValueError: ``scale`` is not finite or not a scalar.
      TypeError: ``scale`` is not a real number.
    """
    scale = hyper(scale, "scale", schedule=False)
    concrete = not isinstance(scale, jax.core.Tracer)
    if concrete and scale == 1.0:
        return inputs
    stop = concrete and scale == 0.0

    def scaled(x: Any) -> Any:
        if not is_trainable(x):
            return x
        return jax.lax.stop_gradient(x) if stop else _scaled_backward(x, scale)

    return jax.tree.map(scaled, inputs)
