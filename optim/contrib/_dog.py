"""DoG (Ivgi et al., 2023) and DoWG (Khaled et al., 2023): step sizes from distance over
gradients, without a learning rate to tune."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import hyper
from optim._numerics import cast_like_grads, square_safe
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    abs_sq,
    check_params,
    check_same_structure,
    float_copy,
    map_arrays,
    tree_sum,
    upcast,
)
from optim.base import Chain, Transformation, chain, check_updates, identity, require_params
from optim.transforms._building_blocks import add_decayed_weights, scale_by_learning_rate

__all__ = ["DoGState", "DoWGState", "dog", "dowg", "scale_by_dog", "scale_by_dowg"]

_INIT_STEP_TAGS = ("distance", "learning_rate", "heuristic")


class DoGState(NamedTuple):
    """Whether no step was taken yet, :math:`\\theta_0`, :math:`\\bar r_t` and :math:`G_t`."""

    is_init_step: jax.Array
    init_params: PyTree
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


class DoWGState(NamedTuple):
    """:math:`\\theta_0`, :math:`v_t` and :math:`\\bar r_t^2`."""

    init_params: PyTree
    weighted_sq_norm_grads: jax.Array
    estim_sq_dist: jax.Array


def _squared_norm(tree: PyTree) -> jax.Array:
    """:math:`\\sum |x|^2` over the trainable leaves, in float32 (or wider)."""
    return tree_sum(map_arrays(lambda x: jnp.sum(abs_sq(upcast(x))), tree))


def _copy(params: PyTree) -> PyTree:
    """:math:`\\theta_0`: a float32 (or wider) copy of the trainable leaves."""
    check_params(params)
    return float_copy(params)


def _squared_distance(params: PyTree, init_params: PyTree, algorithm: str) -> jax.Array:
    """:math:`\\lVert\\theta_t - \\theta_0\\rVert^2`; ``params`` are required."""
    require_params(params, algorithm)
    check_same_structure(params, init_params, "params", "the optimizer state")
    return _squared_norm(map_arrays(lambda p0, p: p0 - upcast(p), init_params, params))


def _bounded(updates: PyTree) -> PyTree:
    """The gradients in float32 (or wider), bounded so that their squared norms stay finite
    (``square_safe`` with a leaf's size as its number of terms); unchanged below the bound."""
    return map_arrays(lambda g: square_safe(upcast(g), g.size), updates)


def _scaled(learning_rate: jax.Array, grads: PyTree, updates: PyTree) -> PyTree:
    """``learning_rate * grads`` in the dtypes of ``updates``."""
    return cast_like_grads(map_arrays(lambda g: learning_rate * g, grads), updates)


@pytree_dataclass
class ScaleByDog(Transformation):
    r"""DoG (Ivgi, Hinder & Carmon, 2023, "DoG is SGD's Best Friend: A Parameter-Free Dynamic
    Step Size Schedule").

    .. math::
        \bar r_t = \max\big(\bar r_{t-1}, \lVert\theta_t - \theta_0\rVert\big),\quad
        G_t = G_{t-1} + \lVert g_t\rVert^2,\quad
        u_t = \frac{\bar r_t}{\sqrt{G_t + \epsilon}}\, g_t,

    norms over the whole tree, the gradients bounded first (``square_safe``: unchanged
    below :math:`2^{62} / (4\sqrt{n})`, so that one spike cannot make :math:`G` infinite and
    stop every later step). :math:`\bar r_{-1}` comes from ``init_step = (tag, value)``:
    ``"distance"``: value; ``"heuristic"``: value :math:`\cdot (1 + \lVert\theta_0\rVert)`
    (so ``init`` must see the real parameters); ``"learning_rate"``: 0, and the first step
    is :math:`u_0 = \text{value} \cdot g_0`. Complex parameters are supported (the norms use
    :math:`|x|^2`).
    """

    init_value: Any
    eps: Any
    init_step_type: str = static("heuristic")

    def init(self, params: PyTree) -> DoGState:
        init_params = _copy(params)
        if self.init_step_type == "distance":
            max_dist = self.init_value
        elif self.init_step_type == "heuristic":
            max_dist = self.init_value * (1 + jnp.sqrt(_squared_norm(init_params)))
        else:
            max_dist = jnp.zeros([], jnp.float32)
        return DoGState(
            is_init_step=jnp.asarray(True),
            init_params=init_params,
            max_dist=jnp.asarray(max_dist, jnp.float32),
            sum_sq_norm_grads=jnp.zeros([], jnp.float32),
        )

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        check_updates(updates, state.init_params)
        grads = _bounded(updates)
        dist = jnp.sqrt(_squared_distance(params, state.init_params, "dog"))
        max_dist = jnp.maximum(state.max_dist, dist)
        sum_sq_norm_grads = state.sum_sq_norm_grads + _squared_norm(grads)
        learning_rate = max_dist / jnp.sqrt(sum_sq_norm_grads + self.eps)
        if self.init_step_type == "learning_rate":
            learning_rate = jnp.where(state.is_init_step, self.init_value, learning_rate)
        new_state = DoGState(
            is_init_step=jnp.asarray(False),
            init_params=state.init_params,
            max_dist=max_dist.astype(state.max_dist.dtype),
            sum_sq_norm_grads=sum_sq_norm_grads.astype(state.sum_sq_norm_grads.dtype),
        )
        return _scaled(learning_rate, grads, updates), new_state


@pytree_dataclass
class ScaleByDowg(Transformation):
    r"""DoWG (Khaled, Mishchenko & Jin, 2023, "DoWG Unleashed: An Efficient Universal
    Parameter-Free Gradient Descent Method").

    .. math::
        \bar r_t^2 = \max\big(\bar r_{t-1}^2, \lVert\theta_t - \theta_0\rVert^2\big),\quad
        v_t = v_{t-1} + \bar r_t^2 \lVert g_t\rVert^2,\quad
        u_t = \frac{\bar r_t^2}{\sqrt{v_t} + \epsilon}\, g_t,

    norms over the whole tree, the gradients bounded first as in ``ScaleByDog``,
    :math:`\bar r_{-1}^2` = ``init_estim_sq_dist`` (``eps`` when
    None), :math:`v_{-1} = 0`. Complex parameters are supported.
    """

    init_estim_sq_dist: Any
    eps: Any

    def init(self, params: PyTree) -> DoWGState:
        return DoWGState(
            init_params=_copy(params),
            weighted_sq_norm_grads=jnp.zeros([], jnp.float32),
            estim_sq_dist=jnp.asarray(self.init_estim_sq_dist, jnp.float32),
        )

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        check_updates(updates, state.init_params)
        grads = _bounded(updates)
        sq_dist = _squared_distance(params, state.init_params, "dowg")
        estim_sq_dist = jnp.maximum(state.estim_sq_dist, sq_dist)
        weighted = estim_sq_dist * _squared_norm(grads) + state.weighted_sq_norm_grads
        learning_rate = estim_sq_dist / (jnp.sqrt(weighted) + self.eps)
        new_state = DoWGState(
            init_params=state.init_params,
            weighted_sq_norm_grads=weighted.astype(state.weighted_sq_norm_grads.dtype),
            estim_sq_dist=estim_sq_dist.astype(state.estim_sq_dist.dtype),
        )
        return _scaled(learning_rate, grads, updates), new_state


def scale_by_dog(init_step: tuple[str, Any], eps: Any = 1e-8) -> ScaleByDog:
    """Scale updates by DoG's step size (``optax.contrib._dog.scale_by_dog``; see
    ``ScaleByDog``). ``init_step`` is a pair ``(tag, value)``, tag one of ``"distance"``,
    ``"learning_rate"``, ``"heuristic"``, value > 0."""
    try:
        tag, value = init_step
    except (TypeError, ValueError):
        raise TypeError(f"init_step must be a pair (tag, value), got {init_step!r}") from None
    if not isinstance(tag, str) or tag not in _INIT_STEP_TAGS:
        raise ValueError(f"init_step[0] must be one of {_INIT_STEP_TAGS}, got {tag!r}")
    return ScaleByDog(
        init_value=hyper(value, "init_step[1]", schedule=False, low=0.0, low_open=True),
        eps=hyper(eps, "eps", schedule=False, low=0.0),
        init_step_type=tag,
    )


def scale_by_dowg(init_estim_sq_dist: Any = None, eps: Any = 1e-4) -> ScaleByDowg:
    """Scale updates by DoWG's step size (``optax.contrib._dog.scale_by_dowg``; see
    ``ScaleByDowg``). ``init_estim_sq_dist`` None means ``eps``."""
    eps = hyper(eps, "eps", schedule=False, low=0.0)
    if init_estim_sq_dist is None:
        init = eps
    else:
        init = hyper(init_estim_sq_dist, "init_estim_sq_dist", schedule=False, low=0.0)
    return ScaleByDowg(init_estim_sq_dist=init, eps=eps)


def _with_decay(weight_decay: Any, mask: Any, scaling: Any, learning_rate: Any) -> Chain:
    """``scaling`` then ``learning_rate``, after decoupled weight decay unless it is None."""
    decay = identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)
    return chain(decay, scaling, scale_by_learning_rate(learning_rate))


def dog(
    learning_rate: Any = 1.0,
    init_step: tuple[str, Any] = ("heuristic", 1e-6),
    eps: Any = 1e-8,
    weight_decay: Any = None,
    mask: Any = None,
) -> Chain:
    r"""DoG (Ivgi et al., 2023): :math:`\theta_{t+1} = \theta_t - \eta_t u_t` with
    :math:`u_t` from ``ScaleByDog`` computed on :math:`g_t + \lambda\theta_t` (weight decay
    :math:`\lambda`, where ``mask`` is True; none when ``weight_decay`` is None).

    ``learning_rate`` (1 by default) multiplies DoG's own step size. The authors recommend
    averaging the iterates.
    """
    return _with_decay(weight_decay, mask, scale_by_dog(init_step, eps), learning_rate)


def dowg(
    learning_rate: Any = 1.0,
    init_estim_sq_dist: Any = None,
    eps: Any = 1e-4,
    weight_decay: Any = None,
    mask: Any = None,
) -> Chain:
    r"""DoWG (Khaled et al., 2023): :math:`\theta_{t+1} = \theta_t - \eta_t u_t` with
    :math:`u_t` from ``ScaleByDowg`` computed on :math:`g_t + \lambda\theta_t` (weight decay
    :math:`\lambda`, where ``mask`` is True; none when ``weight_decay`` is None)."""
    return _with_decay(weight_decay, mask, scale_by_dowg(init_estim_sq_dist, eps), learning_rate)
