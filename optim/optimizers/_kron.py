r"""PSGD Kron: preconditioned stochastic gradient descent with a Kronecker-factored
preconditioner (Li, 2018, "Preconditioned Stochastic Gradient Descent"; the Kron variant of
Li's ``psgd_torch`` as ported to JAX by Evan Walters in ``psgd-jax``).

For a parameter tensor with dimensions :math:`n_1, \dots, n_d` the preconditioner is
:math:`P = Q^\top Q` with :math:`Q = Q_1 \otimes \dots \otimes Q_d`: one factor per dimension,
upper triangular (:math:`n_k \times n_k`) or diagonal (a vector of :math:`n_k`). Applying
:math:`Q_k` to a tensor means multiplying it along its dimension :math:`k`
(:math:`T \times_k Q_k`). The factors are fitted online so that :math:`P` whitens the
gradient noise, :math:`P\, \mathrm{E}[h h^\top] P \approx \mathrm{E}[v v^\top]` for a random
probe :math:`v` (the "Newton" criterion of the paper, with the gradient itself standing in
for the Hessian-vector product :math:`h`), by a normalised step on the Lie group of
triangular matrices, which keeps every :math:`Q_k` invertible.

The state keeps a PRNG key: the random probes and the random choice of the steps that update
the preconditioner come from ``fold_in(key, count)``, so a step is a pure function of the
state (``jit``-able, and a resumed run draws what the uninterrupted one drew).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import (
    decay,
    dtype_option,
    flag,
    hyper,
    hyper_field,
    int_option,
    nonnegative,
    positive,
    value_at,
)
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads, debias_tree, ema_update, store_like
from optim._pytree import checked, pytree_dataclass, static
from optim._tree import (
    PyTree,
    full_like,
    leaves_with_paths,
    map_arrays,
    reject_complex,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import SIGNED, Chain, Transformation, chain, check_updates
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate

# The constant the reference derives its per-step keys from: with it, our random draws
# (probes, balancing, update decisions) are the reference's.
DEFAULT_KEY = 5318008
MEMORY_SAVE_MODES = (None, "one_diag", "all_diag")
# The preconditioned update's root-mean-square is about 1 once P has converged; above 1.1
# the update is scaled down to it (the reference's trust region).
MAX_UPDATE_RMS = 1.1
# Chance, at each preconditioner update, of rescaling the factors of a tensor to equal
# magnitudes (their product is unchanged; it keeps them away from under- and overflow).
BALANCE_PROBABILITY = 0.01
HIGHEST = jax.lax.Precision.HIGHEST


@pytree_dataclass
class PreconditionerUpdateSchedule:
    r"""The probability of updating the preconditioner at step :math:`t` (the reference's
    ``precond_update_prob_schedule``): flat at ``max_prob`` for ``flat_start`` steps, then an
    exponential anneal down to ``min_prob``.

    .. math:: p_t = \min\big(p_{max},\ \max(p_{max}\, e^{-\lambda (t - t_0)},\ p_{min})\big)

    Attributes:
      max_prob: :math:`p_{max}`, the probability at the start, in ``[0, 1]``.
      min_prob: :math:`p_{min}`, the floor of the anneal, in ``[0, 1]``.
      decay: :math:`\lambda >= 0`, the anneal's rate per step.
      flat_start: :math:`t_0 >= 0`, the number of steps at :math:`p_{max}`.
    """

    max_prob: Any = hyper_field(low=0.0, high=1.0)
    min_prob: Any = hyper_field(low=0.0, high=1.0)
    decay: Any = nonnegative()
    flat_start: Any = nonnegative()

    def __call__(self, count: jax.Array) -> jax.Array:
        t = jnp.asarray(count, jnp.float32)
        annealed = self.max_prob * jnp.exp(-self.decay * (t - self.flat_start))
        return jnp.minimum(jnp.maximum(annealed, self.min_prob), self.max_prob)


@suggest_keywords
def precond_update_prob_schedule(
    max_prob: Any = 1.0, min_prob: Any = 0.03, decay: Any = 0.001, flat_start: Any = 500.0
) -> PreconditionerUpdateSchedule:
    r"""The default schedule of the probability of updating PSGD's preconditioner.

    .. math:: p_t = \min\big(p_{max},\ \max(p_{max}\, e^{-\lambda (t - t_0)},\ p_{min})\big)

    PSGD gains from frequent preconditioner updates early in training; once the
    preconditioner has been learned it changes slowly, and rare updates save their cost. With
    the defaults (those of ``psgd-jax``) every step updates it for 500 steps, then the
    probability decays to 0.03 by about step 4000.

    Args:
      max_prob: :math:`p_{max}`, the probability during the flat start, in ``[0, 1]``.
      min_prob: :math:`p_{min}`, the probability the anneal ends at, in ``[0, 1]``.
      decay: :math:`\lambda >= 0`, the anneal's rate per step.
      flat_start: :math:`t_0 >= 0`, the number of steps at :math:`p_{max}`.

    Returns:
      A schedule (a pytree of float32 leaves) mapping the step count :math:`t` (1 at the first
      update) to :math:`p_t`.

    Examples:
      >>> import optim
      >>> schedule = optim.precond_update_prob_schedule()
      >>> print([round(float(schedule(t)), 4) for t in (1, 500, 1500, 5000)])
      [1.0, 1.0, 0.3679, 0.03]
    """
    return PreconditionerUpdateSchedule(
        max_prob=max_prob, min_prob=min_prob, decay=decay, flat_start=flat_start
    )


def _check_key(value: Any, name: str) -> jax.Array:
    """A raw ``uint32[2]`` PRNG key from None (the reference's constant), an int, a raw key or a
    typed key."""
    if value is None:
        value = DEFAULT_KEY
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return jax.random.PRNGKey(int(value))
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    if isinstance(value, jax.core.Tracer):
        return value
    array = np.asarray(value) if not isinstance(value, jax.Array) else value
    if array.shape != (2,) or array.dtype != np.uint32:
        raise TypeError(
            f"{name} must be None, an int or a PRNG key (jax.random.PRNGKey(...) or "
            f"jax.random.key(...)), got {type(value).__name__} of shape "
            f"{getattr(array, 'shape', ())} and dtype {getattr(array, 'dtype', None)}"
        )
    return jnp.asarray(array)


def _check_memory_save_mode(value: Any, name: str) -> Any:
    if value not in MEMORY_SAVE_MODES:
        raise ValueError(f"{name} must be one of {MEMORY_SAVE_MODES}, got {value!r}")
    return value


def _check_probability(value: Any, name: str) -> Any:
    return hyper(value, name, low=0.0, high=1.0)


def _diagonal_dims(
    shape: tuple[int, ...], max_size: int, min_ndim: int, memory_save_mode: Any
) -> list[bool]:
    """For each dimension, whether its factor is diagonal (else upper triangular)."""
    forced = [memory_save_mode == "all_diag"] * len(shape)
    if memory_save_mode == "one_diag" and shape:
        # the largest dimension, the last one among equals
        largest = max(range(len(shape)), key=lambda k: (shape[k], k))
        forced[largest] = True
    return [
        force or size == 1 or size > max_size or len(shape) < min_ndim
        for size, force in zip(shape, forced, strict=True)
    ]


def _mode_multiply(tensor: jax.Array, factor: jax.Array, axis: int) -> jax.Array:
    """:math:`T \\times_k Q`: ``factor`` applied along ``axis`` (a diagonal one as a vector)."""
    if factor.ndim == 1:
        shape = [1] * tensor.ndim
        shape[axis] = factor.shape[0]
        return tensor * factor.reshape(shape)
    moved = jnp.tensordot(factor, tensor, axes=(1, axis), precision=HIGHEST)
    return jnp.moveaxis(moved, 0, axis)


def _mode_solve_transposed(tensor: jax.Array, factor: jax.Array, axis: int) -> jax.Array:
    """:math:`T \\times_k Q^{-\\top}` by a triangular solve (a division for a diagonal one)."""
    if factor.ndim == 1:
        shape = [1] * tensor.ndim
        shape[axis] = factor.shape[0]
        return tensor / factor.reshape(shape)
    moved = jnp.moveaxis(tensor, axis, 0)
    flat = moved.reshape(moved.shape[0], -1)
    solved = jax.scipy.linalg.solve_triangular(factor, flat, trans="T", lower=False)
    return jnp.moveaxis(solved.reshape(moved.shape), 0, axis)


def _mode_gram(tensor: jax.Array, axis: int, diagonal: bool) -> jax.Array:
    """The Gram matrix of the mode-``axis`` unfolding, :math:`T_{(k)} T_{(k)}^\\top` (its
    diagonal alone when ``diagonal``)."""
    others = [k for k in range(tensor.ndim) if k != axis]
    if diagonal:
        return jnp.sum(tensor * tensor, axis=tuple(others))
    return jnp.tensordot(tensor, tensor, axes=(others, others), precision=HIGHEST)


def _spectral_norm_lower_bound(matrix: jax.Array) -> jax.Array:
    """A cheap lower bound of the spectral norm of a symmetric matrix: one power step from its
    largest column, :math:`\\|S w\\| / \\|w\\|` with :math:`w = S s_j` (within a factor
    :math:`\\sqrt 2` of the norm in practice, as the reference observes). 0 for 0."""
    scale = jnp.max(jnp.abs(matrix))

    def bound(scale):
        scaled = matrix / scale
        column = scaled[:, jnp.argmax(jnp.sum(scaled * scaled, axis=0))]
        w = jnp.matmul(column, scaled, precision=HIGHEST)
        w = w / jnp.linalg.norm(w)
        return scale * jnp.linalg.norm(jnp.matmul(w, scaled, precision=HIGHEST))

    return jax.lax.cond(scale > 0, bound, lambda s: s, scale)


def _with_tiny(x: jax.Array) -> jax.Array:
    return x + jnp.finfo(x.dtype).tiny


def _fit_factors(
    factors: tuple, grad: jax.Array, probe: jax.Array, lr: jax.Array
) -> tuple[jax.Array, ...]:
    r"""One step of every factor towards :math:`P h h^\top P \approx v v^\top`.

    With :math:`A = h \times_1 Q_1 \dots \times_d Q_d` and
    :math:`B^* = v \times_1 Q_1^{-\top} \dots \times_d Q_d^{-\top}`, the gradient on the group
    for factor :math:`k` is :math:`E_k = A_{(k)} A_{(k)}^\top - B^*_{(k)} B_{(k)}^{*\top}`, and

    .. math:: Q_k \leftarrow Q_k - \frac{\eta}{\|A_{(k)}A_{(k)}^\top + B^*_{(k)}B_{(k)}^{*\top}\|}
        \,\mathrm{triu}(E_k)\, Q_k

    (for a diagonal factor the max-norm and an elementwise product; all factors step from the
    same :math:`A, B^*`).
    """
    a, conj_b = grad, probe
    for axis, q in enumerate(factors):
        a = _mode_multiply(a, q, axis)
    for axis, q in enumerate(factors):
        conj_b = _mode_solve_transposed(conj_b, q, axis)
    new = []
    for axis, q in enumerate(factors):
        diagonal = q.ndim == 1
        term_a = _mode_gram(a, axis, diagonal)
        term_b = _mode_gram(conj_b, axis, diagonal)
        step = lr * (term_a - term_b)
        if diagonal:
            new.append(q - step * q / _with_tiny(jnp.max(jnp.abs(term_a + term_b))))
        else:
            step = jnp.triu(step) / _with_tiny(_spectral_norm_lower_bound(term_a + term_b))
            new.append(q - jnp.matmul(step, q, precision=HIGHEST))
    return tuple(new)


def _balance(factors: tuple) -> tuple:
    """The factors rescaled to equal max-norms, their Kronecker product unchanged."""
    if len(factors) < 2:
        return factors
    norms = jnp.stack([jnp.max(jnp.abs(q)) for q in factors]).astype(jnp.float32)
    geometric_mean = jnp.prod(norms) ** (1.0 / len(factors))
    scales = geometric_mean / norms
    return tuple(q * scales[k].astype(q.dtype) for k, q in enumerate(factors))


def _precondition(factors: tuple, grad: jax.Array) -> jax.Array:
    """:math:`P g = g \\times_1 Q_1^\\top Q_1 \\dots \\times_d Q_d^\\top Q_d`."""
    out = grad
    for axis, q in enumerate(factors):
        out = _mode_multiply(out, q, axis)
        out = _mode_multiply(out, q.T if q.ndim == 2 else q, axis)
    return out


def _capped_rms(update: jax.Array) -> jax.Array:
    rms = jnp.sqrt(jnp.mean(update * update))
    return update / jnp.maximum(1.0, rms / MAX_UPDATE_RMS)


def _as_tensor(x: jax.Array) -> jax.Array:
    """A scalar leaf is handled as a vector of one element."""
    return x.reshape(1) if x.ndim == 0 else x


class ScaleByKronState(NamedTuple):
    """The state of :func:`optim.scale_by_kron`.

    Attributes:
      count: the number of updates so far, an int32 scalar (saturating at its maximum).
      key: the raw PRNG key (``uint32[2]``) the per-step draws are folded from.
      mu: the momentum :math:`m_t`, a pytree like the params (``None`` at frozen leaves).
      preconditioners: for each parameter, the tuple of its factors :math:`Q_k` (an
        :math:`n_k \\times n_k` upper-triangular matrix, or a vector of :math:`n_k` for a
        diagonal factor; a scalar parameter has one factor of shape ``(1,)``), in the
        preconditioner dtype (float32 by default); ``None`` at frozen leaves.
    """

    count: jax.Array
    key: jax.Array
    mu: PyTree
    preconditioners: PyTree

    # The factors stay in ``precond_dtype``: their triangular solves lose too much in bf16.
    moment_slots = MappingProxyType({"mu": SIGNED})


@pytree_dataclass
class ScaleByKron(Transformation):
    r"""PSGD Kron (Li, 2018, "Preconditioned Stochastic Gradient Descent"; the Kron variant
    of ``psgd-jax``).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad \hat m_t = m_t / (1-\beta_1^t),\\
        Q \leftarrow \text{fit}(Q; \hat m_t + \sqrt{\epsilon_{32}}\,\overline{|\hat m_t|}\, v,
        v) \text{ with probability } p_t,\quad v \sim \mathcal N(0, I),\\
        u_t = \mathrm{cap}_{1.1}\big(\hat m_t \times_1 Q_1^\top Q_1 \dots
        \times_d Q_d^\top Q_d\big),

    where ``fit`` is one normalised Lie-group step per factor (see ``_fit_factors``), and
    :math:`\mathrm{cap}_{1.1}` scales a leaf's update down to a root-mean-square of 1.1.

    Attributes:
      b1: momentum :math:`\beta_1` in ``[0, 1)``.
      preconditioner_update_probability: :math:`p_t` in ``[0, 1]`` or a schedule.
      max_size_triangular: dimensions larger than this get a diagonal factor.
      min_ndim_triangular: tensors with fewer dimensions get diagonal factors only.
      memory_save_mode: ``None``, ``"one_diag"`` or ``"all_diag"``.
      momentum_into_precond_update: fit the preconditioner to :math:`\hat m_t` (else to
        :math:`g_t`).
      preconditioner_lr: the fitting step size :math:`\eta > 0`.
      preconditioner_init_scale: :math:`Q` at step 0 is this times the identity.
      mu_dtype: storage dtype of the momentum.
      precond_dtype: storage dtype of the factors.
      normalize_grads: divide each gradient leaf by its norm first.
      key: the raw PRNG key the per-step draws come from.

    The fields are the arguments of :func:`optim.scale_by_kron`, which builds it.
    """

    b1: Any = decay()
    preconditioner_update_probability: Any = checked(_check_probability)
    max_size_triangular: int = int_option(8192, low=0)
    min_ndim_triangular: int = int_option(2, low=0)
    memory_save_mode: Any = static(None, check=_check_memory_save_mode)
    momentum_into_precond_update: bool = flag(True)
    preconditioner_lr: Any = positive(0.1)
    preconditioner_init_scale: Any = positive(1.0)
    mu_dtype: Any = dtype_option()
    precond_dtype: Any = dtype_option()
    normalize_grads: bool = flag(False)
    key: Any = checked(_check_key, None)

    def _initial_factors(self, leaf: jax.Array) -> tuple[jax.Array, ...]:
        shape = _as_tensor(leaf).shape
        dtype = self.precond_dtype or jnp.float32
        diagonal = _diagonal_dims(
            shape, self.max_size_triangular, self.min_ndim_triangular, self.memory_save_mode
        )
        scale = jnp.asarray(self.preconditioner_init_scale, jnp.float32) ** (1.0 / len(shape))
        return tuple(
            (jnp.ones(n, dtype) if d else jnp.eye(n, dtype=dtype)) * scale.astype(dtype)
            for n, d in zip(shape, diagonal, strict=True)
        )

    def init(self, params: PyTree) -> ScaleByKronState:
        reject_complex(params, "kron", "its preconditioner is fitted to real Gaussian probes")
        factors = map_arrays(self._initial_factors, full_like(params, 0.0))
        return ScaleByKronState(
            count=zero_count(),
            key=self.key,
            mu=full_like(params, 0.0, self.mu_dtype),
            preconditioners=factors,
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        reject_complex(updates, "kron", what="grads")
        count = safe_increment(state.count)
        grads = map_arrays(upcast, updates)
        if self.normalize_grads:
            grads = map_arrays(lambda g: g / (jnp.linalg.norm(g) + 1e-16), grads)
        mu = map_arrays(lambda g, m: ema_update(g, m, self.b1), grads, state.mu)
        momentum = debias_tree(mu, self.b1, count)
        fit_to = momentum if self.momentum_into_precond_update else grads

        paths_and_leaves = leaves_with_paths(momentum)
        treedef = jax.tree.structure(momentum, is_leaf=lambda x: x is None)
        # Empty leaves (a zero-length dimension) have nothing to precondition: their factors
        # stay as they are and their update is empty.
        slots = [i for i, (_, m) in enumerate(paths_and_leaves) if m is not None and m.size]
        empty = [i for i, (_, m) in enumerate(paths_and_leaves) if m is not None and not m.size]
        factors_in = treedef.flatten_up_to(state.preconditioners)
        fit_leaves = treedef.flatten_up_to(fit_to)
        factors = [factors_in[i] for i in slots]

        # the reference's key schedule: fold in the step, split once for the decision and
        # once for the update's own draws
        draw_key, update_key = jax.random.split(jax.random.fold_in(state.key, state.count))
        probability = value_at(self.preconditioner_update_probability, count)
        do_update = jax.random.uniform(draw_key, dtype=jnp.float32) < probability

        def fitted(key, factors):
            key, balance_key = jax.random.split(key)
            balance = jax.random.uniform(balance_key) < BALANCE_PROBABILITY
            factors = jax.lax.cond(
                balance, lambda fs: [_balance(f) for f in fs], lambda fs: fs, factors
            )
            _, probe_key = jax.random.split(key)
            probe_keys = jax.random.split(probe_key, len(slots))
            damping = jnp.sqrt(jnp.finfo(jnp.float32).eps)
            new = []
            for i, f, k in zip(slots, factors, probe_keys, strict=True):
                h = _as_tensor(fit_leaves[i])
                v = jax.random.normal(k, h.shape, h.dtype)
                # noise at float32's resolution of h: P stays bounded along directions that
                # h leaves (nearly) empty
                h = h + damping * jnp.mean(jnp.abs(h)) * v
                fit = _fit_factors(
                    tuple(q.astype(h.dtype) for q in f), h, v, self.preconditioner_lr
                )
                new.append(tuple(q.astype(old.dtype) for q, old in zip(fit, f, strict=True)))
            return new

        factors = jax.lax.cond(do_update, fitted, lambda _, fs: fs, update_key, factors)

        out = [None] * len(paths_and_leaves)
        new_factors = [None] * len(paths_and_leaves)
        for i, f in zip(slots, factors, strict=True):
            m = paths_and_leaves[i][1]
            upcast_factors = tuple(q.astype(m.dtype) for q in f)
            out[i] = _capped_rms(_precondition(upcast_factors, _as_tensor(m))).reshape(m.shape)
            new_factors[i] = f
        for i in empty:
            out[i], new_factors[i] = jnp.zeros_like(paths_and_leaves[i][1]), factors_in[i]
        out = jax.tree.unflatten(treedef, out)
        new_state = ScaleByKronState(
            count=count,
            key=state.key,
            mu=store_like(mu, state.mu),
            preconditioners=jax.tree.unflatten(treedef, new_factors),
        )
        return cast_like_grads(out, updates), new_state


_SHARED_ARGS = r"""
      b1: momentum :math:`\beta_1`, the decay rate of the gradients' moving average, in
        ``[0, 1)``; the momentum is bias-corrected (divided by :math:`1 - \beta_1^t`).
      preconditioner_update_probability: the probability :math:`p_t` that a step updates the
        preconditioner, a number in ``[0, 1]`` or a schedule of the step count (1 at the first
        update); default :func:`optim.precond_update_prob_schedule` (1 for 500 steps, then
        annealed to 0.03).
      max_size_triangular: an int >= 0; a dimension larger than this gets a diagonal factor
        (memory :math:`n` instead of :math:`n^2`, and no :math:`n^3` solves).
      min_ndim_triangular: an int >= 0; a parameter with fewer dimensions gets diagonal
        factors only (with the default 2, vectors and scalars are preconditioned diagonally).
      memory_save_mode: ``None`` (every dimension within the limits triangular),
        ``"one_diag"`` (the largest dimension of each parameter, the last among equals,
        diagonal) or ``"all_diag"`` (every factor diagonal).
      momentum_into_precond_update: fit the preconditioner to the bias-corrected momentum
        (True) or to the raw gradient (False).
      preconditioner_lr: the step size :math:`\eta > 0` of the factors' normalised fitting
        step.
      preconditioner_init_scale: :math:`s > 0`: :math:`Q` starts at :math:`s I` (each of the
        :math:`d` factors of a tensor at :math:`s^{1/d} I`).
      mu_dtype: storage dtype of the momentum (a floating dtype such as ``jnp.bfloat16``);
        ``None``: float32, or the parameter's dtype when wider (``psgd-jax`` keeps the
        parameter's dtype). The arithmetic runs in float32 or wider whatever it is.
      precond_dtype: storage dtype of the factors; ``None``: float32.
      normalize_grads: keyword-only; divide each gradient leaf by its Euclidean norm (plus
        1e-16) before the momentum (as in later versions of ``psgd-jax``).
      key: keyword-only; where the random draws (probes, balancing, update decisions) come
        from: ``None`` (the reference's fixed key, ``jax.random.PRNGKey(5318008)``), an int,
        or a PRNG key. Kept in the state; step :math:`t` draws from ``fold_in(key, t - 1)``."""


@suggest_keywords
def scale_by_kron(
    b1: Any = 0.9,
    preconditioner_update_probability: Any = None,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    preconditioner_lr: Any = 0.1,
    preconditioner_init_scale: Any = 1.0,
    mu_dtype: Any = None,
    precond_dtype: Any = None,
    *,
    normalize_grads: bool = False,
    key: Any = None,
) -> ScaleByKron:
    return ScaleByKron(
        b1=b1,
        preconditioner_update_probability=(
            precond_update_prob_schedule()
            if preconditioner_update_probability is None
            else preconditioner_update_probability
        ),
        max_size_triangular=max_size_triangular,
        min_ndim_triangular=min_ndim_triangular,
        memory_save_mode=memory_save_mode,
        momentum_into_precond_update=momentum_into_precond_update,
        preconditioner_lr=preconditioner_lr,
        preconditioner_init_scale=preconditioner_init_scale,
        mu_dtype=mu_dtype,
        precond_dtype=precond_dtype,
        normalize_grads=normalize_grads,
        key=key,
    )


scale_by_kron.__doc__ = (
    r"""Rescale updates by PSGD's Kronecker-factored preconditioner (``psgd-jax``'s
    ``scale_by_kron``; Li, 2018, "Preconditioned Stochastic Gradient Descent").

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad \hat m_t = m_t / (1-\beta_1^t),\quad
        u_t = \mathrm{cap}_{1.1}\big(\hat m_t \times_1 Q_1^\top Q_1 \dots
        \times_d Q_d^\top Q_d\big),

    the factors :math:`Q_k` (upper triangular, or diagonal for large dimensions and vectors)
    fitted by one normalised Lie-group step with probability :math:`p_t` per step, and
    :math:`\mathrm{cap}_{1.1}` scaling a leaf's update down to a root-mean-square of 1.1.

    Where we follow the paper and Li's ``psgd_torch`` rather than ``psgd-jax`` 0.2.9: that
    release replaced the random update decision by a counter (update when
    ``steps_since_update >= 1 / p_t``); here it is a draw, ``uniform < p_t``, from the key in
    the state (the two agree at :math:`p_t \in \{0, 1\}`, so during the default schedule's
    flat start). Not supported: complex parameters (a ``TypeError``), ``psgd-jax``'s
    ``scanned_layers``/``lax_map`` options and its matmul-precision options (ours run at
    float32 precision).

    Args:"""
    + _SHARED_ARGS
    + r"""

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the preconditioned direction, without the
      learning rate or its minus sign. Its state is a :class:`optim.ScaleByKronState`.

    Raises:
      TypeError: from ``init`` or ``update``, for complex params or gradients.

    Examples:
      >>> import jax.numpy as jnp
      >>> import numpy as np
      >>> import optim
      >>> tx = optim.scale_by_kron()
      >>> grads = jnp.array([[0.5, -0.5], [1.0, 0.0]])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(np.round(np.asarray(updates, dtype=float), 3))
      [[ 0.526 -0.516]
       [ 0.979  0.007]]

    References:
      Li, 2018, https://arxiv.org/abs/1512.04202; Li, 2024, https://arxiv.org/abs/2402.11858;
      https://github.com/evanatyourservice/psgd_jax
    """
)


@suggest_keywords
def kron(
    learning_rate: ScalarOrSchedule = 0.001,
    b1: Any = 0.9,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = None,
    preconditioner_update_probability: Any = None,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    momentum_into_precond_update: bool = True,
    preconditioner_lr: Any = 0.1,
    preconditioner_init_scale: Any = 1.0,
    mu_dtype: Any = None,
    precond_dtype: Any = None,
    *,
    normalize_grads: bool = False,
    key: Any = None,
) -> Chain:
    blocks = [
        scale_by_kron(
            b1,
            preconditioner_update_probability,
            max_size_triangular,
            min_ndim_triangular,
            memory_save_mode,
            momentum_into_precond_update,
            preconditioner_lr,
            preconditioner_init_scale,
            mu_dtype,
            precond_dtype,
            normalize_grads=normalize_grads,
            key=key,
        )
    ]
    # As the reference: no decay block (and no need for params in update) at weight_decay 0.
    if callable(weight_decay) or isinstance(weight_decay, jax.core.Tracer) or weight_decay != 0:
        blocks.append(add_decayed_weights(weight_decay, weight_decay_mask))
    blocks.append(scale_by_learning_rate(learning_rate))
    return chain(*blocks)


kron.__doc__ = (
    r"""PSGD Kron (Li, 2018, "Preconditioned Stochastic Gradient Descent"; ``psgd-jax``'s
    ``kron``, with its defaults).

    .. math:: \theta_{t+1} = \theta_t - \eta_t \big(u_t + \lambda \theta_t\big)

    with :math:`u_t` the preconditioned momentum of :func:`optim.scale_by_kron` (see there
    for the rule and where it departs from ``psgd-jax``), and the decoupled weight decay
    :math:`\lambda` applied only where ``weight_decay_mask`` is True.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` (see :func:`optim.scale_by_learning_rate`); default 0.001 as in
        ``psgd-jax``. The update's root-mean-square is about 1 per leaf (at most 1.1), so
        rates near Adam's suit it.
      weight_decay: :math:`\lambda >= 0`, a number or a schedule; at 0 (the default) no
        decay block is added, as in ``psgd-jax``.
      weight_decay_mask: where the decay applies: a pytree of booleans like the params (or a
        prefix of it), or a function ``params -> such a pytree``; ``None``: everywhere."""
    + _SHARED_ARGS
    + r"""

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import numpy as np
      >>> import optim
      >>> tx = optim.kron(learning_rate=0.1)
      >>> params = {"w": jnp.array([[1.0, -2.0], [0.5, 0.0]])}
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[0.5, -0.5], [1.0, 0.0]])}
      >>> updates, state = tx.update(grads, state, params)
      >>> new_params = optim.apply_updates(params, updates)
      >>> print(np.array2string(np.asarray(new_params["w"], float).round(3), suppress_small=True))
      [[ 0.947 -1.948]
       [ 0.402 -0.001]]

    References:
      Li, 2018, https://arxiv.org/abs/1512.04202; https://github.com/evanatyourservice/psgd_jax
    """
)
