"""Memory-efficient adaptive methods: Adafactor's factored second moment, and SM3.

Both keep second-moment statistics smaller than the parameters: Adafactor one row and one
column vector per matrix, SM3 one vector per axis of each tensor. Notation as in
``optim.transforms``: :math:`g_t` the incoming update, :math:`u_t` the outgoing one, :math:`t`
the number of previous updates. Statistics are stored in the real compute dtype of each leaf
(float32 for bf16/fp16 parameters, float32 for complex64 ones).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import (
    canonical_dtype,
    check_flag,
    decay,
    decay_hyper,
    flag,
    hyper,
    int_option,
    nonnegative,
)
from optim._keywords import suggest_keywords
from optim._numerics import (
    cast_like_grads,
    decay_complement,
    decay_rate,
    ema_update,
    inverse_sqrt,
    square_safe,
    store_like,
)
from optim._pytree import checked, pytree_dataclass, static
from optim._tree import (
    PyTree,
    abs_sq,
    check_params,
    compute_dtype,
    is_trainable,
    keystr,
    leaves_with_paths,
    map_arrays,
    reject_complex,
    safe_increment,
    upcast,
    zero_count,
)
from optim.base import Chain, EmptyState, Transformation, chain, check_updates, require_params
from optim.numerics import safe_norm, safe_root_mean_squares
from optim.transforms._accumulation import ema
from optim.transforms._adding import add_decayed_weights
from optim.transforms._clipping import clip_by_block_rms
from optim.transforms._scaling import learning_rate_hyper, scale, scale_by_learning_rate


def _real_dtype(x: Any) -> Any:
    """The real dtype statistics of leaf ``x`` are kept in (float32 for complex64, bf16)."""
    return jnp.finfo(compute_dtype(x)).dtype


def _map_leaves(fn: Callable[..., tuple], n: int, updates: PyTree, *stats: PyTree) -> list:
    """``n`` trees: the parts of ``fn(g, *stat_entries)`` for each trainable leaf ``g``.

    Each of ``stats`` is split at the leaves of ``updates`` (an entry may be a list of
    arrays, or ``None``); the outputs are ``None`` where ``g`` is not a floating array.
    """
    treedef = jax.tree.structure(updates, is_leaf=lambda x: x is None)
    columns = [treedef.flatten_up_to(s) for s in stats]
    results = [
        fn(g, *entries) if is_trainable(g) else (None,) * n
        for g, *entries in zip(treedef.flatten_up_to(updates), *columns, strict=True)
    ]
    return [treedef.unflatten([r[i] for r in results]) for i in range(n)]


def _check_state_shapes(state: Any, expected: Any, fields: tuple[str, ...]) -> None:
    """Raise ``ValueError`` where ``state``'s statistics do not fit the incoming updates."""

    def shapes(tree: PyTree) -> dict[str, Any]:
        return {
            keystr(path): None if x is None else tuple(np.shape(x))
            for path, x in leaves_with_paths(tree)
        }

    for field in fields:
        got, want = shapes(getattr(state, field)), shapes(getattr(expected, field))
        for path in sorted(set(got) | set(want)):
            if got.get(path, "absent") != want.get(path, "absent"):
                raise ValueError(
                    f"state.{field}{path} has shape {got.get(path, 'absent')}, but grads of "
                    f"these shapes need {want.get(path, 'absent')}: the state was built by "
                    "init from other parameters."
                )


def _decay_rate_pow(step: jax.Array, exponent: jax.Array) -> jax.Array:
    r"""Adafactor's second-moment decay :math:`\hat\beta_{2,t} = 1 - (t+1)^{-c}`.

    The + 1 is taken in float32: in int32 (as optax does) it wraps to -2**31 once the step
    counter saturates at 2**31 - 1, and a negative base to a fractional power is NaN.
    """
    t = jnp.asarray(step, jnp.float32) + 1
    return 1.0 - t ** (-exponent)


def _factored_dims(
    shape: tuple[int, ...], factored: bool, min_dim_size_to_factor: int
) -> tuple[int, int] | None:
    """The axes of the second-largest and the largest dimension, or None (not factored).

    A leaf is factored when ``factored`` and its two largest dimensions both have at least
    ``min_dim_size_to_factor`` entries. Of two equal dimensions the later axis counts as the
    larger, as in optax.
    """
    if not factored or len(shape) < 2:
        return None
    order = sorted(range(len(shape)), key=lambda axis: shape[axis])
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return order[-2], order[-1]


class FactoredState(NamedTuple):
    """Step count and second-moment statistics (optax's field names).

    Attributes:
      count: the number of updates so far, an int32 scalar.
      v_row: per factored leaf, the row statistics (the mean of :math:`G_t` over the largest
        axis), float32 or wider; ``None`` at other leaves.
      v_col: per factored leaf, the column statistics (the mean of :math:`G_t` over the
        second-largest axis); ``None`` at other leaves.
      v: per unfactored leaf, the full second moment (a leaf's shape); ``None`` at factored
        leaves.
    """

    count: jax.Array
    v_row: PyTree
    v_col: PyTree
    v: PyTree


def _step_hyper(value: Any, name: str) -> jax.Array:
    """An integer step number >= 0 as an int32 leaf (traced values accepted unchecked)."""
    try:
        dtype = jnp.result_type(value)
    except TypeError:  # a string, a ragged list: not a number at all
        dtype = None
    if isinstance(value, bool) or dtype is None or not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"{name} must be an integer step number, got {value!r}")
    if not isinstance(value, jax.core.Tracer) and np.any(np.asarray(value) < 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if np.shape(value) != ():
        raise ValueError(f"{name} must be a scalar, got shape {np.shape(value)}")
    return jnp.asarray(value, jnp.int32)


@pytree_dataclass
class ScaleByFactoredRms(Transformation):
    r"""Adafactor's scaling (Shazeer & Stern, 2018, "Adafactor: Adaptive Learning Rates with
    Sublinear Memory Cost").

    With :math:`\hat\beta_t` = ``decay_rate_fn(t - step_offset, decay_rate)`` (by default
    :math:`1 - (t+1)^{-c}`) and :math:`G_t = |g_t|^2 + \epsilon`, a matrix leaf whose two
    largest dimensions have at least ``min_dim_size_to_factor`` entries keeps row and column
    statistics, rows running along its second-largest axis and columns along its largest:

    .. math::
        R_t = \hat\beta_t R_{t-1} + (1-\hat\beta_t)\,\mathrm{mean}_{cols}(G_t),\quad
        C_t = \hat\beta_t C_{t-1} + (1-\hat\beta_t)\,\mathrm{mean}_{rows}(G_t),\\
        u_t = g_t \big/ \sqrt{R_t C_t^\top / \mathrm{mean}(R_t)},

    the rank-one estimate of the second moment. Other leaves keep it in full:
    :math:`V_t = \hat\beta_t V_{t-1} + (1-\hat\beta_t) G_t`, :math:`u_t = g_t/\sqrt{V_t}`.
    For tensors of higher rank the two largest axes play the roles of rows and columns.

    Attributes:
      decay_rate: the exponent :math:`c >= 0` of the default decay
        :math:`\hat\beta_t = 1 - (t+1)^{-c}`; passed to ``decay_rate_fn`` as its second argument.
      step_offset: an integer step number >= 0 subtracted from the step count before
        ``decay_rate_fn`` sees it (to restart the decay schedule when fine-tuning).
      epsilon: :math:`\epsilon >= 0` added to the squared updates
        (:math:`G_t = |g_t|^2 + \epsilon`) before they enter the statistics.
      factored: keep row and column statistics for leaves with two dimensions of at least
        ``min_dim_size_to_factor`` entries (True); False keeps the full second moment of every
        leaf.
      min_dim_size_to_factor: an int >= 0: a leaf is factored only when its two largest
        dimensions both have at least this many entries.
      decay_rate_fn: a function ``(step, decay_rate) -> beta`` giving
        :math:`\hat\beta_t` from the number of previous updates minus ``step_offset``; static
        (a new function recompiles). Not a function: ``TypeError``.

    The fields are the arguments of :func:`optim.scale_by_factored_rms`, which builds it.
    """

    decay_rate: Any = nonnegative()
    step_offset: Any = checked(_step_hyper)
    epsilon: Any = nonnegative()
    factored: bool = flag(True)
    min_dim_size_to_factor: int = int_option(128, low=0)
    decay_rate_fn: Callable[[jax.Array, jax.Array], jax.Array] = static(_decay_rate_pow)

    def _dims(self, shape: tuple[int, ...]) -> tuple[int, int] | None:
        return _factored_dims(shape, self.factored, self.min_dim_size_to_factor)

    def init(self, params: PyTree) -> FactoredState:
        check_params(params)

        def stats(p):
            # Reductions of zeros_like(p) keep p's sharding, as update's means of g^2 do.
            zeros = jnp.zeros_like(p, _real_dtype(p))
            dims = self._dims(p.shape)
            if dims is None:
                return None, None, zeros
            second, largest = dims
            return jnp.sum(zeros, axis=largest), jnp.sum(zeros, axis=second), None

        v_row, v_col, v = _map_leaves(stats, 3, params)
        return FactoredState(zero_count(), v_row, v_col, v)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.v)
        _check_state_shapes(state, jax.eval_shape(self.init, updates), ("v_row", "v_col", "v"))
        decay = self.decay_rate_fn(state.count - self.step_offset, self.decay_rate)

        def scale_leaf(g, v_row, v_col, v):
            g32 = square_safe(upcast(g))  # g**2 stays finite (see optim._numerics)
            g_sq = abs_sq(g32) + self.epsilon
            dims = self._dims(g.shape)
            if dims is None:
                new_v = ema_update(g_sq, v, decay)
                return g32 * inverse_sqrt(new_v), None, None, new_v.astype(v.dtype)
            second, largest = dims
            new_row = ema_update(jnp.mean(g_sq, axis=largest), v_row, decay)
            new_col = ema_update(jnp.mean(g_sq, axis=second), v_col, decay)
            # new_row has lost axis `largest`, so `second` sits one place earlier if after it.
            row_mean = jnp.mean(new_row, axis=second - (second > largest), keepdims=True)
            row_factor = jnp.expand_dims(inverse_sqrt(new_row / row_mean), largest)
            col_factor = jnp.expand_dims(inverse_sqrt(new_col), second)
            return (
                g32 * row_factor * col_factor,
                new_row.astype(v_row.dtype),
                new_col.astype(v_col.dtype),
                None,
            )

        out, v_row, v_col, v = _map_leaves(
            scale_leaf, 4, updates, state.v_row, state.v_col, state.v
        )
        new_state = FactoredState(safe_increment(state.count), v_row, v_col, v)
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: Any = 0.8,
    step_offset: Any = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: Any = 1e-30,
    decay_rate_fn: Callable[[jax.Array, jax.Array], jax.Array] = _decay_rate_pow,
) -> ScaleByFactoredRms:
    r"""Rescale by Adafactor's factored second moment (``optax.scale_by_factored_rms``).

    A matrix leaf whose two largest dimensions have at least ``min_dim_size_to_factor`` entries
    keeps row and column statistics of :math:`G_t = |g_t|^2 + \epsilon`,

    .. math::
        R_t = \hat\beta_t R_{t-1} + (1-\hat\beta_t)\,\mathrm{mean}_{cols}(G_t),\quad
        C_t = \hat\beta_t C_{t-1} + (1-\hat\beta_t)\,\mathrm{mean}_{rows}(G_t),\quad
        u_t = g_t \big/ \sqrt{R_t C_t^\top / \mathrm{mean}(R_t)},

    other leaves keep the full :math:`V_t = \hat\beta_t V_{t-1} + (1-\hat\beta_t) G_t` and
    :math:`u_t = g_t/\sqrt{V_t}`.

    Args:
      factored: keep row and column statistics for leaves with two dimensions of at least
        ``min_dim_size_to_factor`` entries (True); False keeps the full second moment of every
        leaf.
      decay_rate: the exponent :math:`c >= 0` of the default decay
        :math:`\hat\beta_t = 1 - (t+1)^{-c}`; passed to ``decay_rate_fn`` as its second argument.
      step_offset: an integer step number >= 0 subtracted from the step count before
        ``decay_rate_fn`` sees it (to restart the decay schedule when fine-tuning).
      min_dim_size_to_factor: an int >= 0: a leaf is factored only when its two largest
        dimensions both have at least this many entries.
      epsilon: :math:`\epsilon >= 0` added to the squared updates
        (:math:`G_t = |g_t|^2 + \epsilon`) before they enter the statistics.
      decay_rate_fn: a function ``(step, decay_rate) -> beta`` giving
        :math:`\hat\beta_t` from the number of previous updates minus ``step_offset``; static
        (a new function recompiles). Not a function: ``TypeError``.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.FactoredState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_factored_rms()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 1. -1.]

    References:
      Shazeer & Stern, 2018, https://arxiv.org/abs/1804.04235
    """
    if not callable(decay_rate_fn):
        raise TypeError(
            f"decay_rate_fn must be a function (step, decay_rate), got {decay_rate_fn!r}"
        )
    return ScaleByFactoredRms(
        decay_rate=decay_rate,
        step_offset=step_offset,
        epsilon=epsilon,
        factored=factored,
        min_dim_size_to_factor=min_dim_size_to_factor,
        decay_rate_fn=decay_rate_fn,
    )


@pytree_dataclass
class ScaleByParamBlockRms(Transformation):
    r"""Relative step sizes: :math:`u_t = g_t \max(\mathrm{rms}(\theta_t), m)`, per leaf.

    Attributes:
      min_scale: the floor :math:`m >= 0` of the factor, so that zero-initialized
        parameters still move.

    The fields are the arguments of :func:`optim.scale_by_param_block_rms`, which builds it.
    """

    min_scale: Any = nonnegative()

    def init(self, params: PyTree) -> EmptyState:
        check_params(params)
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "scale_by_param_block_rms")
        check_updates(updates, params, "params")
        out = map_arrays(
            lambda g, p: upcast(g) * safe_root_mean_squares(upcast(p), self.min_scale),
            updates,
            params,
        )
        return cast_like_grads(out, updates), state


@suggest_keywords
def scale_by_param_block_rms(min_scale: Any = 1e-3) -> ScaleByParamBlockRms:
    r"""Scale each leaf's updates by the RMS of its parameters, floored at ``min_scale``
    (``optax.scale_by_param_block_rms``).

    :math:`u_t = g_t \max(\mathrm{rms}(\theta_t), m)`, one factor per leaf (a weight matrix or a
    bias vector, say).

    Args:
      min_scale: the floor :math:`m >= 0` of the factor, so that zero-initialized
        parameters still move.

    Returns:
      An :class:`optim.GradientTransformation` (stateless); its ``update`` needs ``params``
      and raises ``ValueError`` without them.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_param_block_rms()
      >>> params = {"w": jnp.array([3.0, 4.0])}
      >>> updates, _ = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
      >>> print(updates["w"])
      [ 3.535534 -3.535534]
    """
    return ScaleByParamBlockRms(min_scale)


@pytree_dataclass
class ScaleByParamBlockNorm(Transformation):
    r"""Steps relative to each leaf's norm: :math:`u_t = g_t \max(\lVert\theta_t\rVert, m)`,
    the Euclidean (Frobenius) norm over the whole leaf (``safe_norm``).

    Attributes:
      min_scale: the floor :math:`m >= 0` of the factor, so that zero-initialized
        parameters still move.

    The fields are the arguments of :func:`optim.scale_by_param_block_norm`, which builds it.
    """

    min_scale: Any = nonnegative()

    def init(self, params: PyTree) -> EmptyState:
        check_params(params)
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "scale_by_param_block_norm")
        check_updates(updates, params, "params")
        out = map_arrays(
            lambda g, p: upcast(g) * safe_norm(upcast(p), self.min_scale), updates, params
        )
        return cast_like_grads(out, updates), state


@suggest_keywords
def scale_by_param_block_norm(min_scale: Any = 1e-3) -> ScaleByParamBlockNorm:
    r"""Scale each leaf's updates by the norm of its parameters, floored at ``min_scale``
    (``optax.scale_by_param_block_norm``).

    :math:`u_t = g_t \max(\lVert\theta_t\rVert, m)` with the Euclidean (Frobenius) norm over the
    whole leaf. A block is a leaf of the parameter tree: a weight matrix or a bias vector, say.

    Args:
      min_scale: the floor :math:`m >= 0` of the factor, so that zero-initialized
        parameters still move.

    Returns:
      An :class:`optim.GradientTransformation` (stateless); its ``update`` needs ``params``
      and raises ``ValueError`` without them.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_param_block_norm()
      >>> params = {"w": jnp.array([3.0, 4.0])}
      >>> tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)[0]["w"]
      Array([ 5., -5.], dtype=float32)
    """
    return ScaleByParamBlockNorm(min_scale)


@suggest_keywords
def adafactor(
    learning_rate: Any = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: Any = 0.8,
    decay_offset: Any = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: Any = 1.0,
    momentum: Any = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: Any = None,
    eps: Any = 1e-30,
    factored: bool = True,
    weight_decay_mask: Any = None,
) -> Chain:
    r"""Adafactor (Shazeer & Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear
    Memory Cost").

    .. math::
        \theta_{t+1} = \theta_t - \Big(\eta_t \max(\mathrm{rms}(\theta_t), 10^{-3})\,
        \mathrm{clip}(\hat u_t) + \lambda_t \theta_t\Big)

    where :math:`\hat u_t` is :func:`optim.scale_by_factored_rms`'s output, ``clip`` divides each
    leaf by :math:`\max(1, \mathrm{rms}/d)` (``clipping_threshold`` :math:`d`), the parameter
    scale applies with ``multiply_by_parameter_scale``, an EMA of the scaled step with decay
    ``momentum`` replaces it when ``momentum`` is given, and :math:`\lambda_t` =
    ``weight_decay_rate`` applies where ``weight_decay_mask`` is True.

    Args:
      learning_rate: the step size :math:`\eta_t`, a number >= 0 or a schedule
        ``count -> number``; ``None``: :math:`\eta_t = 1` (the paper's relative step when the
        parameter scale is used).
      min_dim_size_to_factor: an int >= 0: a leaf is factored only when its two largest
        dimensions both have at least this many entries.
      decay_rate: the exponent :math:`c >= 0` of the default decay
        :math:`\hat\beta_t = 1 - (t+1)^{-c}`.
      decay_offset: an integer step number >= 0 subtracted from the step count in the decay
        :math:`\hat\beta_t` (to restart it when fine-tuning).
      multiply_by_parameter_scale: multiply each leaf's step by
        :math:`\max(\mathrm{rms}(\theta_t), 10^{-3})` (:func:`optim.scale_by_param_block_rms`),
        making the learning rate relative to the parameters' size.
      clipping_threshold: :math:`d > 0`: each leaf's scaled update is divided by
        :math:`\max(1, \mathrm{rms}/d)` (:func:`optim.clip_by_block_rms`); ``None``: no
        clipping.
      momentum: decay rate in ``[0, 1]`` of an exponential moving average of the steps (no bias
        correction) that replaces them; ``None``: no momentum.
      dtype_momentum: storage dtype of the momentum's average (a floating or complex dtype,
        float32 by default).
      weight_decay_rate: :math:`\lambda_t >= 0`, a number or a schedule:
        :math:`\lambda_t\theta_t` is added after the learning rate (so it is not scaled by it);
        ``None``: no weight decay.
      eps: :math:`\epsilon >= 0` added to the squared updates before they enter the
        statistics (``epsilon`` of :func:`optim.scale_by_factored_rms`).
      factored: keep row and column statistics for leaves with two dimensions of at least
        ``min_dim_size_to_factor`` entries (True); False keeps the full second moment of every
        leaf.
      weight_decay_mask: where weight decay applies: a pytree of booleans with the structure
        of the params (or a prefix of it), or a function ``params -> such a pytree``; ``None``:
        every leaf.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Raises:
      TypeError: when ``decay_offset`` is not an integer.
      ValueError: when a hyperparameter is out of its range (naming it).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.adafactor(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.8418861 -1.8418862]

    References:
      Shazeer & Stern, 2018, https://arxiv.org/abs/1804.04235
    """
    multiply_by_parameter_scale = check_flag(
        multiply_by_parameter_scale, "multiply_by_parameter_scale"
    )
    # Validated here so that errors name adafactor's arguments, not the building blocks'.
    decay_offset = _step_hyper(decay_offset, "decay_offset")
    eps = hyper(eps, "eps", schedule=False, low=0.0)
    dtype_momentum = canonical_dtype(dtype_momentum, "dtype_momentum")
    txs: list[Any] = [
        scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)
    ]
    if clipping_threshold is not None:
        clipping_threshold = hyper(
            clipping_threshold, "clipping_threshold", schedule=False, low=0.0, low_open=True
        )
        txs.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        txs.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        txs.append(scale_by_param_block_rms())
    if momentum is not None:
        momentum = decay_hyper(momentum, "momentum", closed=True)
        txs.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        weight_decay_rate = hyper(weight_decay_rate, "weight_decay_rate", low=0.0)
        txs.append(add_decayed_weights(weight_decay_rate, weight_decay_mask))
    txs.append(scale(-1.0))
    return chain(*txs)


class ScaleBySM3State(NamedTuple):
    """SM3's per-axis accumulators ``mu`` (a list per leaf) and momentum ``nu``.

    Attributes:
      mu: per leaf, a list of accumulators, one vector per axis (a vector or scalar leaf keeps
        one of its own shape).
      nu: the momentum :math:`m_t` of the scaled updates, a pytree like the params.
    """

    mu: PyTree
    nu: PyTree


def _sm3_accumulators(p: jax.Array, dtype: Any) -> list[jax.Array]:
    """One accumulator per axis of a tensor; a vector or scalar keeps one of its own shape."""
    zeros = jnp.zeros_like(p, dtype)  # keeps p's sharding, which the reductions pass on
    if p.ndim < 2:
        return [zeros]
    return [
        jnp.max(zeros, axis=tuple(a for a in range(p.ndim) if a != axis)) for axis in range(p.ndim)
    ]


@pytree_dataclass
class ScaleBySM3(Transformation):
    r"""SM3 (Anil et al., 2019, "Memory-Efficient Adaptive Optimization"), SM3-II.

    Each tensor keeps one accumulator :math:`\mu^{(a)}` per axis :math:`a` (a vector keeps
    one per entry). With :math:`c = 1` if :math:`\beta_2 = 1` else :math:`1 - \beta_2`:

    .. math::
        \nu_t = c\,g_t^2 + \beta_2 \min_a \mu^{(a)}_{t-1}[i_a],\quad
        \mu^{(a)}_t[j] = \max_{i: i_a = j} \nu_t[i],\\
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t / \sqrt{\nu_t + \epsilon}\ (0 \text{ where }
        \nu_t = 0),\quad u_t = m_t.

    Complex parameters are rejected, as in optax.

    Attributes:
      b1: decay rate :math:`\beta_1` of the momentum over the scaled updates, in ``[0, 1]``
        (0: no momentum).
      b2: decay rate :math:`\beta_2` of the accumulators, in ``[0, 1]``; 1 (the default)
        sums the squared updates, as in the paper.
      eps: :math:`\epsilon >= 0` added under the square root; where the accumulator is
        0 the step is 0.

    The fields are the arguments of :func:`optim.scale_by_sm3`, which builds it.
    """

    b1: Any = decay(closed=True)
    b2: Any = decay(closed=True)
    eps: Any = nonnegative()

    def init(self, params: PyTree) -> ScaleBySM3State:
        check_params(params)
        reject_complex(params, "sm3", "its accumulators are maxima of squared gradients")
        mu = map_arrays(lambda p: _sm3_accumulators(p, compute_dtype(p)), params)
        return ScaleBySM3State(mu=mu, nu=map_arrays(lambda p: jnp.zeros_like(upcast(p)), params))

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.nu)
        _check_state_shapes(state, jax.eval_shape(self.init, updates), ("mu",))
        # optax's weights: 1 - b2 from the Python number, or 1 for b2 = 1.
        new_weight = jnp.where(decay_rate(self.b2) == 1.0, 1.0, decay_complement(self.b2))

        def scale_leaf(g, mu, nu):
            g32 = square_safe(upcast(g))  # g**2 stays finite (see optim._numerics)
            if g.ndim < 2:
                previous = mu[0]
            else:
                broadcast = [
                    jnp.reshape(m, [1] * a + [g.shape[a]] + [1] * (g.ndim - a - 1))
                    for a, m in enumerate(mu)
                ]
                previous = functools.reduce(jnp.minimum, broadcast)
            accum = new_weight * g32**2 + decay_rate(self.b2) * previous
            scaled = g32 * jnp.where(accum > 0, jax.lax.rsqrt(accum + self.eps), 0.0)
            new_nu = ema_update(scaled, nu, self.b1)
            if g.ndim < 2:
                new_mu = [accum]
            else:
                axes = range(g.ndim)
                new_mu = [jnp.max(accum, axis=tuple(b for b in axes if b != a)) for a in axes]
            return new_nu, [n.astype(m.dtype) for n, m in zip(new_mu, mu, strict=True)]

        nu, mu = _map_leaves(scale_leaf, 2, updates, state.mu, state.nu)
        new_state = ScaleBySM3State(mu=mu, nu=store_like(nu, state.nu))
        return cast_like_grads(nu, updates), new_state


@suggest_keywords
def scale_by_sm3(b1: Any = 0.9, b2: Any = 1.0, eps: Any = 1e-8) -> ScaleBySM3:
    r"""Rescale updates by SM3's cover-wise accumulated squares (``optax.scale_by_sm3``).

    SM3-II: each tensor keeps one accumulator :math:`\mu^{(a)}` per axis :math:`a`; with
    :math:`c = 1` if :math:`\beta_2 = 1` else :math:`1 - \beta_2`,

    .. math::
        \nu_t = c\,g_t^2 + \beta_2 \min_a \mu^{(a)}_{t-1}[i_a],\quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t / \sqrt{\nu_t + \epsilon},\quad u_t = m_t.

    Args:
      b1: decay rate :math:`\beta_1` of the momentum over the scaled updates, in ``[0, 1]``
        (0: no momentum).
      b2: decay rate :math:`\beta_2` of the accumulators, in ``[0, 1]``; 1 (the default)
        sums the squared updates, as in the paper.
      eps: :math:`\epsilon >= 0` added under the square root; where the accumulator is
        0 the step is 0.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleBySM3State`.

    Raises:
      TypeError: from ``init`` when a parameter is complex (as in optax).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_sm3()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 0.1 -0.1]

    References:
      Anil et al., 2019, https://arxiv.org/abs/1901.11150
    """
    return ScaleBySM3(
        b1=b1,
        b2=b2,
        eps=eps,
    )


@suggest_keywords
def sm3(learning_rate: Any, momentum: Any = 0.9) -> Chain:
    r"""SM3 (Anil et al., 2019, "Memory-Efficient Adaptive Optimization").

    :math:`\theta_{t+1} = \theta_t - \eta_t m_t`, with :math:`m_t` from
    ``scale_by_sm3(b1=momentum)``: second-moment statistics of one vector per axis of each
    tensor, not one number per parameter.

    Args:
      learning_rate: the step size :math:`\eta_t`, a number >= 0 or a schedule
        ``count -> number`` (optax takes a number only).
      momentum: :math:`\beta_1` of :func:`optim.scale_by_sm3`, in ``[0, 1]``; ``None``: no
        momentum (:math:`\beta_1 = 0`), as optax documents (optax itself fails on ``None``).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Raises:
      TypeError: from ``init`` when a parameter is complex (as in optax).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.sm3(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.99 -1.99]

    References:
      Anil et al., 2019, https://arxiv.org/abs/1901.11150
    """
    b1 = decay_hyper(0.0 if momentum is None else momentum, "momentum", closed=True)
    return chain(scale_by_sm3(b1), scale_by_learning_rate(learning_rate_hyper(learning_rate)))
