"""Clipping: bound each update element, the norm of all of them, each block's RMS, each
unit relative to its parameters (adaptive gradient clipping), or each example's gradient.

The per-example functions take gradients with a batch dimension on axis 0 of every floating
leaf (one gradient per example, e.g. from ``jax.vmap(jax.grad(loss), (None, 0))``), clip each
example's gradient to a bound and return the sum over the batch with the number of examples
clipped. Norms and sums are computed in float32 or wider; the sums leave in each leaf's dtype.
Leaves that are not floating arrays get ``None``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import check_flag, hyper, nonnegative, positive
from optim._keywords import suggest_keywords
from optim._numerics import (
    cast_like_grads,
    safe_sqrt,
)
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    abs_sq,
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

# The states of clip and clip_by_global_norm: empty, as in optax (where they are aliases too).
ClipState = EmptyState


ClipByGlobalNormState = EmptyState


@pytree_dataclass
class Clip(Transformation):
    r"""Element-wise clipping: :math:`u_t = \min(\max(g_t, -c), c)`. Built by :func:`optim.clip`.

    Attributes:
      max_delta: :math:`c`, the largest absolute value of an update element (float32, >= 0).
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    max_delta: Any = nonnegative()

    def init(self, params: PyTree) -> ClipState:
        del params
        return ClipState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        c = self.max_delta
        return map_arrays(lambda g: jnp.clip(upcast(g), -c, c).astype(g.dtype), updates), state


@suggest_keywords
def clip(max_delta: Any) -> Clip:
    r"""Clip every update element to ``[-max_delta, max_delta]`` (``optax.clip``).

    .. math:: u_t = \min(\max(g_t, -c), c),

    computed in float32 or wider and returned in each update's dtype.

    Args:
      max_delta: :math:`c`, the largest absolute value an update element keeps: a number
        >= 0 (not a schedule).

    Returns:
      A ``Clip`` transformation (an :class:`optim.GradientTransformation`) with an empty
      state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.clip(1.0)
      >>> grads = {"w": jnp.array([3.0, -0.5])}
      >>> updates, state = tx.update(grads, tx.init({"w": jnp.zeros(2)}))
      >>> print(updates["w"])
      [ 1.  -0.5]
    """
    return Clip(max_delta)


@pytree_dataclass
class ClipByGlobalNorm(Transformation):
    r"""Global-norm clipping (Pascanu et al., 2013, "On the difficulty of training RNNs").

    .. math:: u_t = g_t \cdot \min(1, c / \lVert g_t \rVert_2),

    the norm taken over all leaves together (in float32 or wider). Built by
    :func:`optim.clip_by_global_norm`.

    Attributes:
      max_norm: :math:`c`, the largest global norm the updates keep (float32, >= 0).
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    max_norm: Any = nonnegative()

    def init(self, params: PyTree) -> ClipByGlobalNormState:
        del params
        return ClipByGlobalNormState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        norm = global_norm(updates)  # raises TypeError for integer updates
        keep = norm < self.max_norm

        def clip_leaf(g):
            g32 = upcast(g)
            return jnp.where(keep, g32, g32 / norm.astype(g32.dtype) * self.max_norm).astype(
                g.dtype
            )

        return map_arrays(clip_leaf, updates), state


@suggest_keywords
def clip_by_global_norm(max_norm: Any) -> ClipByGlobalNorm:
    r"""Rescale updates so that their global norm is at most ``max_norm``
    (``optax.clip_by_global_norm``; Pascanu et al., 2013, "On the difficulty of training
    recurrent neural networks").

    .. math:: u_t = g_t \cdot \min(1, c / \lVert g_t \rVert_2),

    the norm taken over all floating leaves together, in float32 or wider; updates keep their
    dtypes. Updates whose norm is below ``max_norm`` pass unchanged.

    Args:
      max_norm: :math:`c`, the largest global norm the updates keep: a finite number >= 0
        (not a schedule).

    Returns:
      A ``ClipByGlobalNorm`` transformation (an :class:`optim.GradientTransformation`) with an
      empty state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.clip_by_global_norm(1.0)
      >>> grads = {"w": jnp.array([3.0, -4.0])}  # global norm 5
      >>> updates, state = tx.update(grads, tx.init({"w": jnp.zeros(2)}))
      >>> print(updates["w"])
      [ 0.6 -0.8]

    References:
      Pascanu et al., 2013, https://arxiv.org/abs/1211.5063
    """
    return ClipByGlobalNorm(max_norm)


@pytree_dataclass
class ClipByBlockRms(Transformation):
    r"""Clip each leaf's RMS: :math:`u_t = g_t / \max(1, \mathrm{rms}(g_t) / c)`. Built by
    :func:`optim.clip_by_block_rms`.

    Attributes:
      threshold: :math:`c`, the largest root mean square a leaf keeps (float32, > 0).
    """

    threshold: Any = positive()

    def init(self, params: PyTree) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args

        def clip_leaf(g):
            g32 = upcast(g)
            rms = safe_sqrt(jnp.mean(abs_sq(g32)))  # finite derivative for an all-zero leaf
            return g32 / jnp.maximum(1.0, rms / self.threshold)

        return cast_like_grads(map_arrays(clip_leaf, updates), updates), state


@suggest_keywords
def clip_by_block_rms(threshold: Any) -> ClipByBlockRms:
    r"""Scale each leaf down to a root mean square of at most ``threshold``
    (``optax.clip_by_block_rms``).

    .. math:: u_t = g_t / \max(1, \mathrm{rms}(g_t) / c),

    the RMS of each leaf (a "block") taken over all its elements, in float32 or wider;
    updates keep their dtypes.

    Args:
      threshold: :math:`c`, the largest RMS a leaf keeps: a number > 0 (not a schedule).

    Returns:
      A ``ClipByBlockRms`` transformation (an :class:`optim.GradientTransformation`) with an
      empty state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.clip_by_block_rms(1.0)
      >>> grads = {"w": jnp.array([3.0, -4.0])}  # RMS sqrt(12.5)
      >>> updates, state = tx.update(grads, tx.init({"w": jnp.zeros(2)}))
      >>> print(updates["w"])
      [ 0.84852815 -1.1313709 ]
    """
    return ClipByBlockRms(threshold)


AdaptiveGradClipState = EmptyState


# Floor of the update norm in the clipped branch's division, as optax's ``unitwise_clip``:
# that branch is taken only where the update norm exceeds a positive bound, so it never binds
# unless clipping * max(param norm, eps) < 1e-6.
_DIV_EPS = 1e-6


def _default_axes(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The axes a unit's norm sums over (None: the whole array), by rank as in optax: a
    vector (or an array with one non-unit axis) is one unit; rank 2 and 3 (dense, multi-head
    dense: inputs first) sum axis 0; rank 4 (HWIO convolutions) axes 0-2; rank 5 (DHWIO) 0-3.
    """
    if sum(d != 1 for d in shape) <= 1:
        return None
    return {2: (0,), 3: (0,), 4: (0, 1, 2), 5: (0, 1, 2, 3)}.get(len(shape), ())


def _axes(
    shape: tuple[int, ...], axis: int | tuple[int, ...] | None, where: str, caller: str
) -> tuple[int, ...] | None:
    """The reduction axes for an array of ``shape`` (``axis``, checked; or by rank when None);
    ``where`` names the array and ``caller`` the function in errors."""
    if axis is None:
        axes = _default_axes(shape)
        if axes == ():
            raise ValueError(
                f"{caller}: {where} has shape {shape}; without axis, units are defined for "
                "ranks 1 to 5 only. Pass axis= (the axes a unit's norm sums over) for other "
                "shapes."
            )
        return axes
    axes = (axis,) if isinstance(axis, int) else axis
    if any(not -len(shape) <= a < len(shape) for a in axes):
        raise ValueError(f"{caller}: axis={axis} is out of range for {where} of shape {shape}")
    return axes


def _unitwise_norm(x: jax.Array, axes: tuple[int, ...] | None) -> jax.Array:
    """Each unit's norm in float32 or wider, broadcast to ``x``'s shape."""
    squares = jnp.sum(abs_sq(upcast(x)), axis=axes, keepdims=True)
    return jnp.broadcast_to(jnp.sqrt(squares), x.shape)


@suggest_keywords
def unitwise_norm(x: Any, axis: int | tuple[int, ...] | None = None) -> jax.Array:
    r"""The Euclidean (Frobenius) norm of each unit of ``x``, broadcast to ``x``'s shape
    (``optax.transforms.unitwise_norm``).

    A unit is a slice of ``x`` over the axes ``axis``; without ``axis`` they are chosen by
    rank as in optax: a scalar or vector (or an array with one axis longer than 1) is one
    unit; rank 2 and 3 (dense and multi-head dense kernels, inputs first) sum axis 0; rank 4
    (HWIO convolutions) axes 0-2; rank 5 (DHWIO) axes 0-3. Computed in at least float32 and
    returned in ``x``'s (real) dtype.

    Args:
      x: an array.
      axis: the axis or axes a unit's norm sums over; None: by rank, as above.

    Returns:
      An array of ``x``'s shape holding, at each entry, the norm of its unit.

    Raises:
      ValueError: ``axis`` is None and ``x`` has rank 6 or more, or ``axis`` is out of range.
      TypeError: ``axis`` is not None, an int or a tuple of ints.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.transforms.unitwise_norm(jnp.array([[3.0, 1.0], [4.0, 0.0]])).tolist()
      [[5.0, 1.0], [5.0, 1.0]]
    """
    x = jnp.asarray(x)
    norm = _unitwise_norm(x, _axes(x.shape, _check_axis(axis), "x", "unitwise_norm"))
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return norm.astype(jnp.finfo(x.dtype).dtype)
    return norm


@suggest_keywords
def unitwise_clip(g_norm: Any, max_norm: Any, grad: Any, div_eps: Any = _DIV_EPS) -> jax.Array:
    r"""Scale each unit of ``grad`` whose norm is not below ``max_norm`` down to that norm
    (``optax.transforms.unitwise_clip``).

    .. math:: u = \begin{cases} g & \lVert g\rVert < m \\ g\, m / \max(\lVert g\rVert,
        \epsilon_{div}) & \text{otherwise,} \end{cases}

    elementwise, with the unit norms :math:`\lVert g\rVert` = ``g_norm`` (as
    ``unitwise_norm`` returns them) and :math:`m` = ``max_norm``. :math:`\epsilon_{div}`
    only keeps the division finite.

    Args:
      g_norm: the unit norms of ``grad``, broadcast to its shape.
      max_norm: the largest norm allowed, of the same shape.
      grad: the array to clip.
      div_eps: the floor of ``g_norm`` in the division (default ``1e-6``, as optax's).

    Returns:
      The clipped array, of ``grad``'s shape.

    Raises:
      ValueError: the three arrays do not have the same shape.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> g = jnp.array([3.0, 4.0])
      >>> norm = optim.transforms.unitwise_norm(g)
      >>> optim.transforms.unitwise_clip(norm, jnp.full(2, 1.0), g).tolist()
      [0.6000000238418579, 0.800000011920929]
    """
    g_norm, max_norm, grad = jnp.asarray(g_norm), jnp.asarray(max_norm), jnp.asarray(grad)
    for name, value in (("max_norm", max_norm), ("grad", grad)):
        if value.shape != g_norm.shape:
            raise ValueError(
                f"unitwise_clip: {name} has shape {value.shape} but g_norm has shape "
                f"{g_norm.shape}; they must be equal"
            )
    clipped = grad * (max_norm / jnp.maximum(g_norm, div_eps))
    return jnp.where(g_norm < max_norm, grad, clipped)


@pytree_dataclass
class AdaptiveGradClip(Transformation):
    r"""Adaptive gradient clipping (Brock et al., 2021, "High-Performance Large-Scale Image
    Recognition Without Normalization").

    For each unit (a slice of a leaf; see ``adaptive_grad_clip``) with update :math:`G` and
    parameters :math:`W`:

    .. math:: u = \begin{cases} G & \lVert G\rVert < \lambda \max(\lVert W\rVert, \epsilon)
        \\ \lambda \max(\lVert W\rVert, \epsilon)\, G / \lVert G\rVert & \text{otherwise,}
        \end{cases}

    Frobenius norms, :math:`\lambda` = ``clipping``. Complex leaves are supported (the norms
    use :math:`|x|^2`). Built by :func:`optim.adaptive_grad_clip`.

    Attributes:
      clipping: :math:`\lambda`, the largest ratio of update norm to parameter norm (float32,
        >= 0).
      eps: :math:`\epsilon`, the floor of the parameter norm (float32, >= 0).
      axis: the axes a unit's norm sums over (static); ``None``: chosen by rank.
    """

    clipping: Any = nonnegative()
    eps: Any = nonnegative()
    axis: Any = static(None)

    def init(self, params: PyTree) -> AdaptiveGradClipState:
        check_params(params)
        return AdaptiveGradClipState()

    def _axes(self, shape: tuple[int, ...], where: str) -> tuple[int, ...] | None:
        """The reduction axes for a leaf of ``shape``; ``where`` names it in errors."""
        return _axes(shape, self.axis, where, "adaptive_grad_clip")

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "adaptive_grad_clip")
        check_updates(updates, params, "params")
        for path, p in leaves_with_paths(params):
            if is_trainable(p):
                self._axes(np.shape(p), f"params{keystr(path)}")  # raises naming the leaf

        def clip(g: jax.Array, p: jax.Array) -> jax.Array:
            leaf_axes = self._axes(np.shape(p), "params")
            g32 = upcast(g)
            max_norm = self.clipping * jnp.maximum(_unitwise_norm(p, leaf_axes), self.eps)
            return unitwise_clip(_unitwise_norm(g32, leaf_axes), max_norm, g32, _DIV_EPS)

        return cast_like_grads(map_arrays(clip, updates, params), updates), state


def _check_axis(axis: Any) -> int | tuple[int, ...] | None:
    def is_int(a: Any) -> bool:
        return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))

    if axis is None or is_int(axis):
        return None if axis is None else int(axis)
    if isinstance(axis, (tuple, list)) and all(is_int(a) for a in axis):
        return tuple(int(a) for a in axis)
    raise TypeError(f"axis must be None, an int or a tuple of ints, got {axis!r}")


@suggest_keywords
def adaptive_grad_clip(
    clipping: Any, eps: Any = 1e-3, axis: int | tuple[int, ...] | None = None
) -> AdaptiveGradClip:
    r"""Clip each unit's update to at most ``clipping`` times its parameters' norm
    (``optax.adaptive_grad_clip``; Brock et al., 2021, "High-Performance Large-Scale Image
    Recognition Without Normalization"). Needs ``params`` in ``update``.

    For each unit (a slice of a leaf over the axes ``axis``) with update :math:`G` and
    parameters :math:`W`:

    .. math:: u = \begin{cases} G & \lVert G\rVert < \lambda \max(\lVert W\rVert, \epsilon)
        \\ \lambda \max(\lVert W\rVert, \epsilon)\, G / \lVert G\rVert & \text{otherwise,}
        \end{cases}

    Frobenius norms in float32 or wider; updates keep their dtypes. Complex leaves are
    supported.

    Args:
      clipping: :math:`\lambda`, the largest ratio of a unit's update norm to its parameter
        norm: a number >= 0 (not a schedule).
      eps: :math:`\epsilon`, the floor of the parameter norm (a number >= 0), so that
        zero-initialised parameters can still move.
      axis: the axis or axes a unit's norm sums over, an int or a tuple of ints; ``None``
        chooses them by rank as optax does (vectors and scalars: the whole leaf; rank 2-3:
        axis 0; rank 4: axes 0-2; rank 5: axes 0-3; other ranks raise ``ValueError`` naming
        the leaf).

    Returns:
      An ``AdaptiveGradClip`` transformation (an :class:`optim.GradientTransformation`) with
      an empty state.

    Raises:
      TypeError: ``axis`` is not None, an int or a tuple of ints.
      ValueError: (in ``update``) ``params`` is missing, or a leaf's rank has no default
        units and ``axis`` is None.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.adaptive_grad_clip(0.1)
      >>> params = {"w": jnp.array([1.0, 2.0])}  # norm sqrt(5)
      >>> grads = {"w": jnp.array([3.0, -4.0])}  # norm 5, clipped to 0.1 * sqrt(5)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> print(updates["w"])
      [ 0.13416408 -0.17888544]

    References:
      Brock et al., 2021, https://arxiv.org/abs/2102.06171
    """
    return AdaptiveGradClip(
        clipping=clipping,
        eps=eps,
        axis=_check_axis(axis),
    )


def _clip_bound(value: Any, name: str) -> jax.Array:
    """A clipping norm: a number >= 0 as a float32 scalar, ``inf`` (no clipping, as in
    optax's examples) included."""
    return hyper(value, name, schedule=False, low=0.0, allow_inf=True)


def _per_example_leaves(grads: PyTree, function: str) -> list[jax.Array]:
    """The floating leaves of ``grads``, after checking they share a batch size on axis 0."""
    check_float_updates(grads)
    leaves = [(path, x) for path, x in leaves_with_paths(grads) if is_trainable(x)]
    if not leaves:
        raise ValueError(f"{function}: grads has no floating array leaves to clip")
    first_path, first = leaves[0]
    for path, x in leaves:
        if x.ndim == 0:
            raise ValueError(
                f"{function}: grads{keystr(path)} is a scalar; each leaf of grads must hold "
                "one gradient per example along axis 0 (a batch dimension)"
            )
        if x.shape[0] != first.shape[0]:
            raise ValueError(
                f"{function}: grads{keystr(path)} has {x.shape[0]} examples on axis 0 but "
                f"grads{keystr(first_path)} has {first.shape[0]}; every leaf of grads must "
                "hold one gradient per example along axis 0"
            )
    return [x for _, x in leaves]


def _squared_norms(x: jax.Array) -> jax.Array:
    """The squared norm of each example's slice of ``x`` (shape ``[batch]``)."""
    return jnp.sum(abs_sq(upcast(x)), axis=tuple(range(1, x.ndim)))


def _clip_and_sum(grads: PyTree, norms: jax.Array, bound: jax.Array) -> tuple[PyTree, jax.Array]:
    r""":math:`\sum_i \min(1, C / n_i)\, g_i` over the examples :math:`i` (multiplier 1 where
    :math:`C / n_i` is NaN: :math:`0/0` or :math:`\infty/\infty`) and the number of examples
    with a multiplier below 1."""
    multipliers = jnp.nan_to_num(jnp.minimum(bound / norms, 1.0), nan=1.0)
    clipped_sum = map_arrays(
        lambda g: jnp.tensordot(multipliers, upcast(g), axes=1).astype(g.dtype), grads
    )
    return clipped_sum, jnp.sum(multipliers < 1.0).astype(jnp.int32)


@suggest_keywords
def per_example_global_norm_clip(grads: PyTree, l2_norm_clip: Any) -> tuple[PyTree, jax.Array]:
    r"""Clip each example's gradient to global norm ``l2_norm_clip`` and sum over the batch
    (Abadi et al., 2016, "Deep Learning with Differential Privacy").

    .. math:: \bar g = \sum_i g_i \min\!\Big(1, \frac{C}{\lVert g_i \rVert_2}\Big),

    :math:`g_i` example :math:`i`'s gradient (the slices ``[i]`` of every leaf), its norm taken
    over all leaves together. ``l2_norm_clip`` = :math:`C \ge 0`, or ``inf`` for no clipping.

    Args:
      grads: a pytree of per-example gradients: every floating leaf has the batch on axis 0,
        the same batch size in all of them; other leaves get ``None``.
      l2_norm_clip: :math:`C`, the largest global norm an example's gradient keeps: a number
        >= 0, or ``inf`` (no clipping).

    Returns:
      ``(clipped_sum, num_clipped)``: the sum with the structure of ``grads`` (without the
      batch axis), and the number of examples clipped (int32).

    Raises:
      ValueError: a leaf has no batch axis or another batch size than the first (the
        error names its path); ``l2_norm_clip`` is negative or NaN.
      TypeError: a leaf is an integer array (optax would accept it; here gradients are
        floating, as everywhere in optim).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> grads = {"w": jnp.array([[3.0, 4.0], [0.3, 0.4]])}  # two examples, norms 5 and 0.5
      >>> clipped_sum, num_clipped = optim.per_example_global_norm_clip(grads, 1.0)
      >>> print(clipped_sum["w"], int(num_clipped))
      [0.90000004 1.2       ] 1

    References:
      Abadi et al., 2016, https://arxiv.org/abs/1607.00133
    """
    bound = _clip_bound(l2_norm_clip, "l2_norm_clip")
    leaves = _per_example_leaves(grads, "per_example_global_norm_clip")
    norms = jnp.sqrt(sum(_squared_norms(x) for x in leaves))
    return _clip_and_sum(grads, norms, bound)


@suggest_keywords
def per_example_layer_norm_clip(
    grads: PyTree, global_l2_norm_clip: Any, uniform: bool = True
) -> tuple[PyTree, PyTree]:
    r"""Clip each example's gradient layer by layer and sum over the batch (McMahan et al.,
    2017, "Learning Differentially Private Recurrent Language Models").

    Each floating leaf :math:`k` ("layer") of each example is clipped to its own norm

    .. math:: C_k = C / \sqrt{K}\ \ (\text{uniform}) \qquad\text{or}\qquad
        C_k = C \sqrt{D_k / D}\ \ (\text{otherwise}),

    :math:`K` the number of layers, :math:`D_k` the size of one example's slice of layer
    :math:`k` and :math:`D = \sum_k D_k`; then :math:`\bar g_k = \sum_i g_{ik}
    \min(1, C_k / \lVert g_{ik}\rVert_2)`. Either way :math:`\sum_k C_k^2 = C^2`: a clipped
    example's global norm is at most :math:`C`. With one layer this is
    ``per_example_global_norm_clip``.

    Args:
      grads: a pytree of per-example gradients: every floating leaf has the batch on axis 0,
        the same batch size in all of them; other leaves get ``None``.
      global_l2_norm_clip: :math:`C`, the bound on an example's global norm shared out among
        the layers: a number >= 0, or ``inf`` (no clipping).
      uniform: True: every layer gets the same bound :math:`C / \sqrt{K}`; False: each
        layer's bound grows with the square root of its size, :math:`C \sqrt{D_k / D}`.

    Returns:
      ``(clipped_sums, num_clipped)``: two trees with the structure of ``grads``, the
      clipped sums and, per layer, the number of examples clipped (int32).

    Raises:
      ValueError, TypeError: as ``per_example_global_norm_clip``; ``uniform`` not a bool
        raises ``TypeError``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> grads = {"w": jnp.array([[3.0, 4.0], [0.3, 0.4]]), "b": jnp.array([[1.0], [0.0]])}
      >>> sums, num_clipped = optim.per_example_layer_norm_clip(grads, 1.0)  # each layer 1/sqrt(2)
      >>> print(sums["w"], sums["b"], int(num_clipped["w"]), int(num_clipped["b"]))
      [0.724264   0.96568537] [0.70710677] 1 1

    References:
      McMahan et al., 2017, https://arxiv.org/abs/1710.06963
    """
    bound = _clip_bound(global_l2_norm_clip, "global_l2_norm_clip")
    uniform = check_flag(uniform, "uniform")
    leaves = _per_example_leaves(grads, "per_example_layer_norm_clip")
    total_size = sum(x.size // x.shape[0] for x in leaves)

    def clip_layer(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        # The fraction in Python floats (float64), as optax, before it meets the float32 bound.
        fraction = 1.0 / len(leaves) if uniform else (x.size // x.shape[0]) / total_size
        norms = jnp.sqrt(_squared_norms(x))
        return _clip_and_sum(x, norms, bound * fraction**0.5)

    flat, treedef = jax.tree.flatten(grads, is_leaf=lambda x: x is None)
    pairs = [clip_layer(x) if is_trainable(x) else (None, None) for x in flat]
    return (
        jax.tree.unflatten(treedef, [total for total, _ in pairs]),
        jax.tree.unflatten(treedef, [count for _, count in pairs]),
    )
