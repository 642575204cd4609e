"""DoG (Ivgi et al., 2023) and DoWG (Khaled et al., 2023): step sizes from distance over
gradients, without a learning rate to tune.

Besides ``optax.contrib``'s global DoG and DoWG, the layer-wise DoG of the same paper that optax
keeps at its top level, ``scale_by_distance_over_gradients``: the same rule, one step size per
leaf.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import dtype_option, hyper_field, nonnegative, positive
from optim._keywords import suggest_keywords
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
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, chain, check_updates, identity, require_params
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate

__all__ = ["DoGState", "DoWGState", "dog", "dowg", "scale_by_dog", "scale_by_dowg"]

_INIT_STEP_TAGS = ("distance", "learning_rate", "heuristic")


class DoGState(NamedTuple):
    r"""The state of :func:`optim.contrib.scale_by_dog`.

    Attributes:
      is_init_step: a boolean scalar, True until the first ``update``.
      init_params: :math:`\theta_0`, a float32 (or wider) copy of the parameters at ``init``.
      max_dist: :math:`\bar r_t`, the largest distance from :math:`\theta_0` so far (with the
        initial :math:`\bar r_{-1}`), a float32 scalar.
      sum_sq_norm_grads: :math:`G_t`, the sum of the squared gradient norms, a float32 scalar.
    """

    is_init_step: jax.Array
    init_params: PyTree
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


class DoWGState(NamedTuple):
    r"""The state of :func:`optim.contrib.scale_by_dowg`.

    Attributes:
      init_params: :math:`\theta_0`, a float32 (or wider) copy of the parameters at ``init``.
      weighted_sq_norm_grads: :math:`v_t`, the sum of the squared gradient norms weighted by
        :math:`\bar r_t^2`, a float32 scalar.
      estim_sq_dist: :math:`\bar r_t^2`, the largest squared distance from :math:`\theta_0` so
        far (with the initial estimate), a float32 scalar.
    """

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


def _initial_distance(reps: jax.Array, squared_norm: jax.Array) -> jax.Array:
    r"""DoG's heuristic :math:`\bar r_{-1} = r_\epsilon (1 + \lVert\theta_0\rVert)`."""
    return reps * (1 + jnp.sqrt(squared_norm))


def _dog_step_size(max_dist: jax.Array, sum_sq_norm_grads: jax.Array, eps: Any) -> jax.Array:
    r"""DoG's step size :math:`\bar r_t / \sqrt{G_t + \epsilon}`."""
    return max_dist / jnp.sqrt(sum_sq_norm_grads + eps)


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

    init_value: Any = positive(name="init_step[1]")
    eps: Any = nonnegative()
    init_step_type: str = static("heuristic")

    def init(self, params: PyTree) -> DoGState:
        init_params = _copy(params)
        if self.init_step_type == "distance":
            max_dist = self.init_value
        elif self.init_step_type == "heuristic":
            max_dist = _initial_distance(self.init_value, _squared_norm(init_params))
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
        learning_rate = _dog_step_size(max_dist, sum_sq_norm_grads, self.eps)
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

    init_estim_sq_dist: Any = nonnegative(optional=True)
    eps: Any = nonnegative()

    def __post_init__(self) -> None:
        # After the field checks (see optim._pytree), so that a bad eps is named as eps.
        if self.init_estim_sq_dist is None:
            object.__setattr__(self, "init_estim_sq_dist", self.eps)

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


@suggest_keywords
def scale_by_dog(init_step: tuple[str, Any], eps: Any = 1e-8) -> ScaleByDog:
    r"""Scale updates by DoG's step size (``optax.contrib.scale_by_dog``).

    .. math::
        \bar r_t = \max\big(\bar r_{t-1}, \lVert\theta_t - \theta_0\rVert\big),\quad
        G_t = G_{t-1} + \lVert g_t\rVert^2,\quad
        u_t = \frac{\bar r_t}{\sqrt{G_t + \epsilon}}\, g_t,

    norms over the whole tree, the gradients bounded first (unchanged below
    :math:`2^{62} / (4\sqrt{n})`, so that one spike cannot make :math:`G` infinite). The
    update is the gradient scaled (no sign flip: :func:`optim.contrib.dog` adds it);
    ``update`` needs the params. Complex parameters are supported.

    Args:
      init_step: a pair ``(tag, value)``, value > 0, that sets the first step:
        ``("distance", r)``: :math:`\bar r_{-1} = r`; ``("heuristic", r)``:
        :math:`\bar r_{-1} = r\,(1 + \lVert\theta_0\rVert)` (so ``init`` must see the real
        parameters); ``("learning_rate", lr)``: the first update is :math:`lr \cdot g_0`.
      eps: :math:`\epsilon \ge 0`, added to :math:`G_t` under the root.

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.DoGState`.

    Raises:
      TypeError: ``init_step`` is not a pair.
      ValueError: its tag is not one of ``"distance"``, ``"learning_rate"``, ``"heuristic"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.scale_by_dog(init_step=("distance", 0.5))
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([3.0, -4.0]), state, params)
      >>> print([round(float(u), 4) for u in updates])  # r / |g| * g
      [0.3, -0.4]

    References:
      Ivgi, Hinder & Carmon, 2023, `DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
      Size Schedule <https://arxiv.org/abs/2302.12022>`_.
    """
    try:
        tag, value = init_step
    except (TypeError, ValueError):
        raise TypeError(f"init_step must be a pair (tag, value), got {init_step!r}") from None
    if not isinstance(tag, str) or tag not in _INIT_STEP_TAGS:
        raise ValueError(f"init_step[0] must be one of {_INIT_STEP_TAGS}, got {tag!r}")
    return ScaleByDog(
        init_value=value,
        eps=eps,
        init_step_type=tag,
    )


@suggest_keywords
def scale_by_dowg(init_estim_sq_dist: Any = None, eps: Any = 1e-4) -> ScaleByDowg:
    r"""Scale updates by DoWG's step size (``optax.contrib.scale_by_dowg``).

    .. math::
        \bar r_t^2 = \max\big(\bar r_{t-1}^2, \lVert\theta_t - \theta_0\rVert^2\big),\quad
        v_t = v_{t-1} + \bar r_t^2 \lVert g_t\rVert^2,\quad
        u_t = \frac{\bar r_t^2}{\sqrt{v_t} + \epsilon}\, g_t,

    norms over the whole tree, the gradients bounded first as in
    :func:`optim.contrib.scale_by_dog`, :math:`v_{-1} = 0`. No sign flip (see
    :func:`optim.contrib.dowg`); ``update`` needs the params. Complex parameters are
    supported.

    Args:
      init_estim_sq_dist: :math:`\bar r_{-1}^2 \ge 0`, the initial squared distance estimate
        (``None``: ``eps``).
      eps: :math:`\epsilon \ge 0`, added to :math:`\sqrt{v_t}` in the denominator.

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.DoWGState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.scale_by_dowg(init_estim_sq_dist=0.25)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([3.0, -4.0]), state, params)
      >>> print([round(float(u), 4) for u in updates])  # r^2 / (r |g| + eps) * g
      [0.3, -0.4]

    References:
      Khaled, Mishchenko & Jin, 2023, `DoWG Unleashed: An Efficient Universal Parameter-Free
      Gradient Descent Method <https://arxiv.org/abs/2305.16284>`_.
    """
    return ScaleByDowg(init_estim_sq_dist=init_estim_sq_dist, eps=eps)


class ScaleByDistanceOverGradientsState(NamedTuple):
    r"""Per leaf: :math:`\bar r_t`, :math:`G_t` (shape ``(1,)``, as in optax) and
    :math:`\theta_0`."""

    max_dist: PyTree
    grad_sum_of_squares: PyTree
    init_params: PyTree


def _leaf_squared_norm(x: jax.Array) -> jax.Array:
    return jnp.sum(abs_sq(upcast(x)))


@pytree_dataclass
class ScaleByDistanceOverGradients(Transformation):
    r"""Layer-wise DoG, "LDoG" (Ivgi, Hinder & Carmon, 2023, "DoG is SGD's Best Friend: A
    Parameter-Free Dynamic Step Size Schedule"): ``ScaleByDog``'s rule for each leaf apart.

    .. math::
        \bar r_t = \max\big(\bar r_{t-1}, \lVert\theta_t - \theta_0\rVert\big),\quad
        G_t = G_{t-1} + \lVert g_t\rVert^2,\quad
        u_t = s\,\frac{\bar r_t}{\sqrt{G_t + \epsilon}}\, g_t,

    norms over each leaf, :math:`\bar r_{-1} = r_\epsilon (1 + \lVert\theta_0\rVert)`
    (:math:`r_\epsilon` = ``reps_rel``), :math:`G_{-1} = 0`, :math:`s` = ``global_scale``.
    The gradients are bounded first as in ``ScaleByDog`` (unchanged below
    :math:`2^{62} / (4\sqrt{n})`). Complex parameters are supported (:math:`|x|^2`).
    """

    reps_rel: Any = positive()
    eps: Any = nonnegative()
    global_scale: Any = hyper_field()
    param_dtype: Any = dtype_option()

    def _stored(self, p: jax.Array) -> jax.Array:
        r""":math:`\theta_0` in ``param_dtype`` (its complex counterpart for complex leaves;
        the leaf's compute dtype when None)."""
        if self.param_dtype is None:
            return upcast(jnp.array(p, copy=True))
        dtype = self.param_dtype
        if jnp.iscomplexobj(p) and not jnp.issubdtype(dtype, jnp.complexfloating):
            dtype = jnp.promote_types(dtype, jnp.complex64)
        return jnp.array(p, dtype=dtype, copy=True)

    def init(self, params: PyTree) -> ScaleByDistanceOverGradientsState:
        check_params(params)
        return ScaleByDistanceOverGradientsState(
            max_dist=map_arrays(
                lambda p: _initial_distance(self.reps_rel, _leaf_squared_norm(p)), params
            ),
            grad_sum_of_squares=map_arrays(lambda p: jnp.zeros(1, jnp.float32), params),
            init_params=map_arrays(self._stored, params),
        )

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "scale_by_distance_over_gradients")
        check_updates(updates, state.init_params)
        check_same_structure(params, state.init_params, "params", "the optimizer state")
        grads = _bounded(updates)
        max_dist = map_arrays(
            lambda d, p, p0: jnp.maximum(d, jnp.sqrt(_leaf_squared_norm(upcast(p) - p0))),
            state.max_dist,
            params,
            state.init_params,
        )
        sums = map_arrays(lambda s, g: s + _leaf_squared_norm(g), state.grad_sum_of_squares, grads)
        out = map_arrays(
            lambda g, d, s: (self.global_scale * _dog_step_size(d, s, self.eps))[0] * g,
            grads,
            max_dist,
            sums,
        )
        new_state = ScaleByDistanceOverGradientsState(
            max_dist=map_arrays(lambda d, old: d.astype(old.dtype), max_dist, state.max_dist),
            grad_sum_of_squares=map_arrays(
                lambda s, old: s.astype(old.dtype), sums, state.grad_sum_of_squares
            ),
            init_params=state.init_params,
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_distance_over_gradients(
    reps_rel: Any = 1e-6, eps: Any = 1e-8, param_dtype: Any = jnp.float32, global_scale: Any = 1.0
) -> ScaleByDistanceOverGradients:
    r"""Scale each leaf's updates by its own DoG step size (layer-wise DoG;
    ``optax.scale_by_distance_over_gradients``; see ``ScaleByDistanceOverGradients``).

    It keeps a copy of the parameters (in ``param_dtype``; None: each leaf's compute dtype)
    and two scalars per leaf. The authors recommend averaging the iterates.

    Args:
      reps_rel: :math:`r_\epsilon`, the initial distance relative to :math:`1 +
        \lVert\theta_0\rVert` (> 0); the authors recommend 1e-4 for models with batch
        normalization, 1e-6 otherwise.
      eps: added to the sum of squared gradient norms (>= 0).
      param_dtype: the dtype of the stored initial parameters.
      global_scale: a factor of every step, typically 1.0 or -1.0.

    Returns:
      The transformation.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.chain(optim.scale_by_distance_over_gradients(), optim.scale(-1.0))
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> updates, state = tx.update({"w": jnp.array([0.5, 0.5])}, tx.init(params), params)
      >>> print(updates["w"])
      [-2.2882457e-06 -2.2882457e-06]
    """
    return ScaleByDistanceOverGradients(
        reps_rel=reps_rel,
        eps=eps,
        global_scale=global_scale,
        param_dtype=param_dtype,
    )


def _with_decay(weight_decay: Any, mask: Any, scaling: Any, learning_rate: Any) -> Chain:
    """``scaling`` then ``learning_rate``, after decoupled weight decay unless it is None."""
    decay = identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)
    return chain(decay, scaling, scale_by_learning_rate(learning_rate))


@suggest_keywords
def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: tuple[str, Any] = ("heuristic", 1e-6),
    eps: Any = 1e-8,
    weight_decay: Any = None,
    mask: Any = None,
) -> Chain:
    r"""DoG (Ivgi et al., 2023): :math:`\theta_{t+1} = \theta_t - \eta_t u_t` with
    :math:`u_t` from :func:`optim.contrib.scale_by_dog` computed on
    :math:`g_t + \lambda\theta_t` (weight decay :math:`\lambda`, where ``mask`` is True; none
    when ``weight_decay`` is None).

    ``learning_rate`` (1 by default) multiplies DoG's own step size. The authors recommend
    averaging the iterates.

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule ``count -> float`` multiplying
        DoG's step size.
      init_step: a pair ``(tag, value)``, value > 0, that sets the first step:
        ``("distance", r)``: :math:`\bar r_{-1} = r`; ``("heuristic", r)``:
        :math:`\bar r_{-1} = r\,(1 + \lVert\theta_0\rVert)`; ``("learning_rate", lr)``: the
        first update is :math:`lr \cdot g_0` (see :func:`optim.contrib.scale_by_dog`).
      eps: :math:`\epsilon \ge 0`, added to the sum of squared gradient norms under the root.
      weight_decay: :math:`\lambda`, the weight decay added to the gradients (``None``: none).
      mask: a pytree of booleans with the structure of the params (or a prefix of it), or a
        function ``params -> such a pytree``: where True, weight decay applies (``None``: on
        every leaf).

    Returns:
      The :class:`optim.GradientTransformation` chain ``(add_decayed_weights or identity,
      scale_by_dog, scale_by_learning_rate)``; ``update`` needs the params.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.dog(init_step=("distance", 1.0))
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4))  # from 29.0
      8.8684

    References:
      Ivgi, Hinder & Carmon, 2023, `DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
      Size Schedule <https://arxiv.org/abs/2302.12022>`_.
    """
    return _with_decay(weight_decay, mask, scale_by_dog(init_step, eps), learning_rate)


@suggest_keywords
def dowg(
    learning_rate: ScalarOrSchedule = 1.0,
    init_estim_sq_dist: Any = None,
    eps: Any = 1e-4,
    weight_decay: Any = None,
    mask: Any = None,
) -> Chain:
    r"""DoWG (Khaled et al., 2023): :math:`\theta_{t+1} = \theta_t - \eta_t u_t` with
    :math:`u_t` from :func:`optim.contrib.scale_by_dowg` computed on
    :math:`g_t + \lambda\theta_t` (weight decay :math:`\lambda`, where ``mask`` is True; none
    when ``weight_decay`` is None).

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule ``count -> float`` multiplying
        DoWG's step size.
      init_estim_sq_dist: :math:`\bar r_{-1}^2 \ge 0`, the initial squared distance estimate
        (``None``: ``eps``).
      eps: :math:`\epsilon \ge 0`, added to the root of the weighted gradient sum.
      weight_decay: :math:`\lambda`, the weight decay added to the gradients (``None``: none).
      mask: a pytree of booleans with the structure of the params (or a prefix of it), or a
        function ``params -> such a pytree``: where True, weight decay applies (``None``: on
        every leaf).

    Returns:
      The :class:`optim.GradientTransformation` chain ``(add_decayed_weights or identity,
      scale_by_dowg, scale_by_learning_rate)``; ``update`` needs the params.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.dowg(init_estim_sq_dist=1.0)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4))  # from 29.0
      7.1542

    References:
      Khaled, Mishchenko & Jin, 2023, `DoWG Unleashed: An Efficient Universal Parameter-Free
      Gradient Descent Method <https://arxiv.org/abs/2305.16284>`_.
    """
    return _with_decay(weight_decay, mask, scale_by_dowg(init_estim_sq_dist, eps), learning_rate)
