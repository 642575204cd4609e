r"""SOAP (Vyas et al., 2024, "SOAP: Improving and Stabilizing Shampoo using Adam"): Adam run in
the eigenbasis of Shampoo's preconditioner.

For a matrix gradient :math:`G_t` (rows by columns) Shampoo keeps the factors
:math:`L_t = \beta_s L_{t-1} + (1-\beta_s) G_t G_t^\top` and
:math:`R_t = \beta_s R_{t-1} + (1-\beta_s) G_t^\top G_t`. SOAP takes their eigenvectors
:math:`Q_L, Q_R` as a basis, rotates the gradient into it, :math:`G'_t = Q_L^\top G_t Q_R`,
and runs Adam there: both moments live in the rotated coordinates and the step is rotated
back, :math:`u_t = Q_L \big(M'_t / (\sqrt{V'_t} + \epsilon)\big) Q_R^\top`. A tensor of any
rank keeps one factor per axis; an axis longer than ``max_precond_dim`` keeps none and stays
unrotated (the identity). The bases are refreshed every ``precondition_frequency`` steps by
one step of power iteration followed by a QR decomposition, :math:`Q \leftarrow
\mathrm{QR}(L Q)`, which costs less than an eigendecomposition and tracks the slowly moving
eigenvectors well enough.

Complex parameters are supported: the factors are Hermitian (:math:`G G^\dagger`) and the
rotation into the eigenbasis is :math:`Q^\dagger`. Eigendecompositions and QR decompositions
run in float32 (or the parameter's wider dtype, complex64 for complex ones),
with the matrix products at ``HIGHEST`` precision; the refresh sits in a ``lax.switch``, so a
step stays one compiled program.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from optim._device_share import current_devices, vmap_over_devices
from optim._hyper import Decay, decay, decay_hyper, flag, int_option, nonnegative
from optim._keywords import suggest_keywords
from optim._numerics import (
    adaptive_step,
    cast_like_grads,
    decay_complement,
    decay_rate,
    ema_update,
    ema_update_sq,
    square_safe,
    store_like,
)
from optim._pytree import checked, pytree_dataclass, static
from optim._tree import (
    PyTree,
    abs_sq,
    check_params,
    compute_dtype,
    full_like,
    is_trainable,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import SIGNED, UNSIGNED, Chain, Transformation, chain, check_updates
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate

_HIGHEST = lax.Precision.HIGHEST
DATA_FORMATS = ("channels_first", "channels_last")

# What the step does at a given count (lax.switch's branch index).
_KEEP, _FIRST, _REFRESH = 0, 1, 2


class ScaleBySoapState(NamedTuple):
    """SOAP's step count, Adam's moments in the eigenbasis, Shampoo's factors and the bases.

    Attributes:
      count: the number of updates so far, an int32 scalar (saturating at its maximum). The
        first update only initialises the factors and bases, so Adam's own step count is
        ``count - 1``.
      mu: the first moment :math:`M'_t` in the eigenbasis, a pytree like the params.
      nu: the second moment :math:`V'_t` in the eigenbasis, a pytree like the params.
      factors: per leaf, a tuple with one entry per axis SOAP works on (the leaf's axes, or
        the merged ones with ``merge_dims``): the factor (:math:`L`, :math:`R`, ...), a
        square matrix in the parameter's compute dtype (float32 or wider), at a rotated
        axis; ``None`` at an unrotated axis. ``None`` at leaves that are not trainable arrays.
      bases: like ``factors``, the orthonormal bases :math:`Q` (the identity before the first
        update).

    :func:`optim.with_state_dtype` may store ``mu`` and ``nu`` in bfloat16 or 8 bits; the
    factors and bases stay in the compute dtype.
    """

    count: jax.Array
    mu: PyTree
    nu: PyTree
    factors: PyTree
    bases: PyTree

    # The factors and bases stay in float32 (or wider): rounding them to bf16 or 8 bits would
    # spoil the orthogonality that makes the rotations invertible.
    moment_slots = MappingProxyType({"mu": SIGNED, "nu": UNSIGNED})


def merged_shape(shape: tuple[int, ...], max_precond_dim: int) -> tuple[int, ...]:
    """Adjacent axes merged, from the first, while their product stays <= ``max_precond_dim``
    (the reference's rule for ``merge_dims``: an axis that alone exceeds the limit stays)."""
    merged: list[int] = []
    current = 1
    for size in shape:
        if current * size <= max_precond_dim:
            current *= size
        elif current > 1:
            merged.append(current)
            current = size
        else:
            merged.append(size)
    if current > 1 or not merged:
        merged.append(current)
    return tuple(merged)


@dataclasses.dataclass(frozen=True)
class _Layout:
    """How SOAP sees one leaf: the axis order and shape it works in, and which axes rotate."""

    permutation: tuple[int, ...] | None  # NHWC -> NCHW before merging (data_format)
    shape: tuple[int, ...]
    rotated: tuple[bool, ...]

    def to_working(self, x: jax.Array) -> jax.Array:
        if self.permutation is not None:
            x = jnp.transpose(x, self.permutation)
        return x.reshape(self.shape)

    def from_working(self, x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        if self.permutation is None:
            return x.reshape(shape)
        permuted = tuple(shape[axis] for axis in self.permutation)
        return jnp.transpose(x.reshape(permuted), tuple(np.argsort(self.permutation)))


def _rotate(x: jax.Array, bases: tuple, back: bool = False) -> jax.Array:
    """``x`` in the eigenbasis (:math:`Q^\\dagger` applied along every rotated axis) or, with
    ``back``, from it (:math:`Q`). Each pass contracts the leading axis and appends the result
    last, so after one pass per axis the axes are in their own order again."""
    for basis in bases:
        if basis is None:
            x = jnp.moveaxis(x, 0, -1)
        elif back:
            x = jnp.tensordot(x, basis, axes=((0,), (1,)), precision=_HIGHEST)
        else:
            x = jnp.tensordot(x, basis.conj(), axes=((0,), (0,)), precision=_HIGHEST)
    return x


def _gram(g: jax.Array, axis: int) -> jax.Array:
    """:math:`G G^\\dagger` along ``axis``: the contraction of ``g`` with its conjugate over
    every other axis (Hermitian, positive semi-definite)."""
    others = [a for a in range(g.ndim) if a != axis]
    return jnp.tensordot(g, g.conj(), axes=(others, others), precision=_HIGHEST)


def _eigenbasis(factor: jax.Array) -> jax.Array:
    """The eigenvectors of a Hermitian factor, by decreasing eigenvalue (the reference's order:
    ``eigh`` sorts them increasing). The reference's ``1e-30 I`` is added too."""
    eye = jnp.eye(factor.shape[0], dtype=factor.dtype)
    _, vectors = jnp.linalg.eigh(factor + 1e-30 * eye)
    return vectors[:, ::-1]


def _power_step(factor: jax.Array, basis: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One power-iteration step with QR, :math:`Q \\leftarrow \\mathrm{QR}(L Q)`, the columns
    first sorted by their Rayleigh quotients :math:`\\mathrm{diag}(Q^\\dagger L Q)`, decreasing;
    returns the new basis and that order (the second moment's axis is permuted alike, so each
    second moment stays with its direction)."""
    product = jnp.matmul(factor, basis, precision=_HIGHEST)
    order = jnp.argsort(-jnp.sum(basis.conj() * product, axis=0).real)
    # Scaled by a power of two (exact: the same Q) to a largest entry near 1 first: the
    # factor of a rarely used row of an embedding holds subnormal numbers, on which LAPACK's
    # QR ran 200 times slower on the CPU (519 ms against 2.3 ms for one matrix).
    magnitude = jnp.abs(product)
    _, exponent = jnp.frexp(jnp.max(magnitude))
    scale = jnp.ldexp(jnp.ones((), magnitude.dtype), -exponent)
    new_basis, _ = jnp.linalg.qr(product[:, order] * scale.astype(product.dtype))
    return new_basis, order


def _each_matrix(fn, matrices: list[tuple], *more: list[tuple]) -> list[tuple]:
    """``fn`` applied to every matrix of some leaves' tuples of matrices (``None`` at an axis
    that has none), with the matching entries of ``more`` as further arguments. Under a mesh,
    matrices of one size and dtype are solved together, in one batched call whose problems the
    devices share (each device a part, then gathered; an identity fills the batch). On one
    device each matrix gets its own call: XLA:CPU compiles those faster than batched ones
    (1.8 s against 3.2 s for a step with 48 factors)."""
    if current_devices() == 1:
        return [
            tuple(
                None if m is None else fn(m, *(arg[i][axis] for arg in more))
                for axis, m in enumerate(leaf)
            )
            for i, leaf in enumerate(matrices)
        ]
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for i, leaf in enumerate(matrices):
        for axis, m in enumerate(leaf):
            if m is not None:
                groups.setdefault((m.shape[0], m.dtype), []).append((i, axis))
    out = [list(leaf) for leaf in matrices]
    for (n, dtype), where in groups.items():
        stacks = tuple(jnp.stack([arg[i][axis] for i, axis in where]) for arg in (matrices, *more))
        eye = jnp.eye(n, dtype=dtype)
        solved = vmap_over_devices(fn, stacks, (eye,) * len(stacks))
        for k, (i, axis) in enumerate(where):
            out[i][axis] = jax.tree.map(lambda x, k=k: x[k], solved)
    return [tuple(leaf) for leaf in out]


def _first_bases(factors: list, bases: list, mu: list, nu: list) -> tuple:
    """The first update: the bases from ``eigh``; the moments stay at zero (zeros, not the
    moments of a step in no basis: a non-finite first gradient leaves no NaN behind)."""
    del bases
    zeros = [[jnp.zeros_like(m) for m in moments] for moments in (mu, nu)]
    return _each_matrix(_eigenbasis, factors), *zeros


def _keep_bases(factors: list, bases: list, mu: list, nu: list) -> tuple:
    del factors
    return bases, mu, nu


def _refresh_bases(factors: list, bases: list, mu: list, nu: list) -> tuple:
    """New bases by a power step; each ``mu`` is carried into them (back to the parameter's
    coordinates and into the new basis), each ``nu`` only follows the reordering of the
    columns."""
    steps = _each_matrix(_power_step, factors, bases)
    new_bases, new_mu, new_nu = [], [], []
    for leaf_steps, leaf_bases, m, v in zip(steps, bases, mu, nu, strict=True):
        m = _rotate(m, leaf_bases, back=True)
        for axis, step in enumerate(leaf_steps):
            if step is not None:
                v = jnp.take(v, step[1], axis=axis)
        leaf_new = tuple(None if step is None else step[0] for step in leaf_steps)
        new_bases.append(leaf_new)
        new_mu.append(_rotate(m, leaf_new))
        new_nu.append(v)
    return new_bases, new_mu, new_nu


def _check_data_format(value: Any, name: str) -> str:
    if value not in DATA_FORMATS:
        raise ValueError(f"{name} must be 'channels_first' or 'channels_last', got {value!r}")
    return value


def _shampoo_beta_hyper(value: Any, name: str) -> Decay | None:
    """A decay in ``[0, 1)``, or None where the factors take ``b2``'s: ``None`` or a negative
    number (the reference's -1). A traced value is taken as a decay."""
    if value is None:
        return None
    if not isinstance(value, (Decay, jax.core.Tracer)) and np.ndim(value) == 0:
        try:
            negative = float(value) < 0
        except (TypeError, ValueError):
            negative = False  # decay_hyper names what is wrong with it
        if negative:
            return None
    return decay_hyper(value, name)


@pytree_dataclass
class ScaleBySoap(Transformation):
    r"""SOAP (Vyas et al., 2024): Adam in the eigenbasis of Shampoo's factors.

    For each leaf, with one factor :math:`L^{(k)}` and basis :math:`Q^{(k)}` per rotated axis
    :math:`k` and :math:`\times_k` the product along axis :math:`k`:

    .. math::
        G'_t = G_t \times_1 Q^{(1)\top} \cdots \times_n Q^{(n)\top},\quad
        M'_t = \beta_1 M'_{t-1} + (1-\beta_1) G'_t,\quad
        V'_t = \beta_2 V'_{t-1} + (1-\beta_2) G'^2_t,\\
        u_t = \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}
            \Big(\frac{M'_t}{\sqrt{V'_t}+\epsilon}\Big) \times_1 Q^{(1)} \cdots \times_n Q^{(n)},
        \quad L^{(k)}_t = \beta_s L^{(k)}_{t-1} + (1-\beta_s) G_{t(k)} G_{t(k)}^\top,

    where :math:`G_{t(k)}` is the gradient unfolded along axis :math:`k`. Every
    ``precondition_frequency`` steps, after the factors took the current gradient, each basis
    becomes :math:`\mathrm{QR}(L^{(k)} Q^{(k)})` (its columns first sorted by decreasing
    :math:`\mathrm{diag}(Q^\top L Q)`, with :math:`V'` reordered alike) and :math:`M'` is
    carried into the new basis.

    As the authors' reference (github.com/nikhilvyas/SOAP, ``soap.py``), where the paper's
    algorithm is silent or differs:

    - the first update only accumulates the factors and takes the bases from ``eigh``; it
      returns a zero update (``0 * g``: a non-finite gradient stays non-finite), so the
      gradient never enters its own projection. Adam's step count :math:`t` then starts at
      the second update, and the factors see each gradient after the step it made;
    - :math:`M'` is kept in the eigenbasis and carried into each new basis, where the paper
      keeps :math:`M` in the parameter's coordinates and rotates it at every step: the same
      in exact arithmetic;
    - the bias correction multiplies the step as in PyTorch's AdamW (:math:`\epsilon` is
      not corrected), and ``normalize_grads`` divides the step by :math:`10^{-30} +` its root
      mean square.

    SOAP is meant for stochastic gradients. With the same gradient at the first two updates
    (full-batch training without weight decay: the first update does not move the
    parameters), the second one meets a gradient that its bases diagonalise: the entries
    off the diagonal are rounding errors, which Adam's normalisation turns into steps of
    full size. The reference does the same.

    Gradient entries beyond :math:`\sqrt{\max}/(4\sqrt{n})` in magnitude (``n`` the leaf's
    size, ``max`` the largest float: :math:`4.6 \cdot 10^{18}/\sqrt{n}` in float32) count as
    that bound, so that no factor overflows to inf (where the reference's bases become NaN);
    a non-finite gradient still gives a non-finite step.

    Axes longer than ``max_precond_dim`` are not rotated; 1-D leaves run plain Adam unless
    ``precondition_1d`` (and 0-d leaves always do). ``merge_dims`` merges adjacent axes of
    leaves with two or more axes while their product stays within ``max_precond_dim``
    (after moving the channels of NHWC 4-D leaves first, with
    ``data_format="channels_last"``).

    Attributes:
      b1: decay rate :math:`\beta_1` of the first moment, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second moment, in ``[0, 1)``.
      shampoo_beta: decay rate :math:`\beta_s` of the factors, in ``[0, 1)``; ``None``: ``b2``.
      eps: :math:`\epsilon >= 0`, added to :math:`\sqrt{V'_t}`.
      precondition_frequency: an int >= 1: the bases are refreshed every this many steps.
      max_precond_dim: an int >= 1: axes longer than this are not rotated.
      merge_dims: merge adjacent axes while their product stays within ``max_precond_dim``.
      precondition_1d: rotate 1-D leaves too (with one factor :math:`g g^\top`).
      normalize_grads: divide each leaf's step by its root mean square.
      data_format: ``"channels_first"`` or ``"channels_last"``: the layout of 4-D leaves,
        used with ``merge_dims`` only.
      correct_bias: apply Adam's bias correction.

    The fields are the arguments of :func:`optim.scale_by_soap`, which builds it.
    """

    b1: Any = decay()
    b2: Any = decay()
    shampoo_beta: Any = checked(_shampoo_beta_hyper)
    eps: Any = nonnegative()
    precondition_frequency: int = int_option(low=1)
    max_precond_dim: int = int_option(low=1)
    merge_dims: bool = flag(False)
    precondition_1d: bool = flag(False)
    normalize_grads: bool = flag(False)
    data_format: str = static("channels_first", check=_check_data_format)
    correct_bias: bool = flag(True)

    def _layout(self, shape: tuple[int, ...]) -> _Layout:
        limit = self.max_precond_dim
        if len(shape) <= 1:
            return _Layout(None, shape, tuple(self.precondition_1d and n <= limit for n in shape))
        permutation = None
        if self.merge_dims:
            if self.data_format == "channels_last" and len(shape) == 4:
                permutation = (0, 3, 1, 2)
                shape = tuple(shape[axis] for axis in permutation)
            shape = merged_shape(shape, limit)
        return _Layout(permutation, shape, tuple(n <= limit for n in shape))

    def init(self, params: PyTree) -> ScaleBySoapState:
        check_params(params)

        def matrices(p: jax.Array, fill: Any) -> tuple:
            layout, dtype = self._layout(p.shape), compute_dtype(p)
            return tuple(
                fill(n, dtype) if rotated else None
                for n, rotated in zip(layout.shape, layout.rotated, strict=True)
            )

        return ScaleBySoapState(
            count=zero_count(),
            mu=full_like(params),
            nu=full_like(params),
            factors=map_arrays(lambda p: matrices(p, lambda n, d: jnp.zeros((n, n), d)), params),
            bases=map_arrays(lambda p: matrices(p, lambda n, d: jnp.eye(n, dtype=d)), params),
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        count = state.count
        # The reference's step counter: 0 at the first update, which takes no Adam step.
        phase = jnp.where(
            count == 0, _FIRST, jnp.where(count % self.precondition_frequency == 0, _REFRESH, _KEEP)
        )
        if self.shampoo_beta is None:
            rate, complement = decay_rate(self.b2), decay_complement(self.b2)
        else:
            rate, complement = decay_rate(self.shampoo_beta), decay_complement(self.shampoo_beta)
        if self.correct_bias:
            t = jnp.maximum(count, 1).astype(jnp.float32)  # the first update discards its step
            correction = jnp.sqrt(1 - decay_rate(self.b2) ** t) / (1 - decay_rate(self.b1) ** t)
        else:
            correction = jnp.float32(1)

        treedef = jax.tree.structure(updates, is_leaf=lambda x: x is None)
        columns = [
            treedef.flatten_up_to(tree)
            for tree in (updates, state.mu, state.nu, state.factors, state.bases)
        ]
        trainable = [i for i, leaf in enumerate(columns[0]) if is_trainable(leaf)]
        g, mu, nu, factors, bases = ([column[i] for i in trainable] for column in columns)
        layouts = [self._layout(leaf.shape) for leaf in g]
        leaves = [
            self._adam_in_basis(
                *entries, phase=phase, factor_decay=(rate, complement), correction=correction
            )
            for entries in zip(layouts, g, mu, nu, factors, bases, strict=True)
        ]
        steps, mu, nu, factors = ([leaf[j] for leaf in leaves] for j in range(4))
        # One switch for every leaf: the solves for the bases of all leaves batched together.
        bases, mu, nu = lax.switch(
            phase, (_keep_bases, _first_bases, _refresh_bases), factors, bases, mu, nu
        )
        out = {name: [None] * len(columns[0]) for name in ("step", "mu", "nu", "factors", "bases")}
        for k, i in enumerate(trainable):
            layout, shape = layouts[k], g[k].shape
            out["step"][i] = layout.from_working(steps[k], shape)
            out["mu"][i] = layout.from_working(mu[k], shape)
            out["nu"][i] = layout.from_working(nu[k], shape)
            out["factors"][i], out["bases"][i] = factors[k], bases[k]
        step, mu, nu, factors, bases = (treedef.unflatten(column) for column in out.values())
        new_state = ScaleBySoapState(
            count=safe_increment(count),
            mu=store_like(mu, state.mu),
            nu=store_like(nu, state.nu),
            factors=factors,
            bases=bases,
        )
        return cast_like_grads(step, updates), new_state

    def _adam_in_basis(self, layout, g, mu, nu, factors, bases, *, phase, factor_decay, correction):
        """One leaf's step, moments and factors, in its working shape (``layout``)."""
        # Entries bounded so that the sum of all squares (the trace of every factor, and a
        # bound on each entry of the factors, of L Q and of the rotated gradient's square)
        # stays finite: a spike does not put inf into the factors, and NaN into the bases.
        grad = square_safe(layout.to_working(upcast(g)), terms=max(g.size, 1))
        mu, nu = layout.to_working(upcast(mu)), layout.to_working(upcast(nu))

        # Adam in the current basis (discarded at the first update, which has no basis yet).
        rotated = _rotate(grad, bases)
        mu = ema_update(rotated, mu, self.b1)
        nu = ema_update_sq(rotated, nu, self.b2)
        step = _rotate(adaptive_step(mu, nu, self.eps) * correction, bases, back=True)
        if self.normalize_grads:
            step = step / (1e-30 + jnp.sqrt(jnp.mean(abs_sq(step))))
        step = jnp.where(phase == _FIRST, 0 * grad, step)

        # The factors take the gradient after the step (the reference's order).
        rate, complement = factor_decay
        factors = tuple(
            None if f is None else rate * f + complement * _gram(grad, axis)
            for axis, f in enumerate(factors)
        )
        return step, mu, nu, factors


@suggest_keywords
def scale_by_soap(
    b1: Any = 0.95,
    b2: Any = 0.95,
    shampoo_beta: Any = -1.0,
    eps: Any = 1e-8,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    merge_dims: bool = False,
    precondition_1d: bool = False,
    normalize_grads: bool = False,
    data_format: str = "channels_first",
    correct_bias: bool = True,
) -> ScaleBySoap:
    r"""Rescale updates by Adam run in the eigenbasis of Shampoo's factors (SOAP).

    .. math::
        G'_t = Q_L^\top G_t Q_R,\quad
        M'_t = \beta_1 M'_{t-1} + (1-\beta_1) G'_t,\quad
        V'_t = \beta_2 V'_{t-1} + (1-\beta_2) G'^2_t,\quad
        u_t = \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
            Q_L \Big(\frac{M'_t}{\sqrt{V'_t}+\epsilon}\Big) Q_R^\top,

    for a matrix leaf, with :math:`Q_L, Q_R` the eigenbases of
    :math:`L_t = \beta_s L_{t-1} + (1-\beta_s) G_t G_t^\top` and
    :math:`R_t = \beta_s R_{t-1} + (1-\beta_s) G_t^\top G_t`, refreshed every
    ``precondition_frequency`` steps by one power-iteration step and a QR decomposition
    (``eigh`` at the first update); tensors keep one factor per axis. The docstring of the
    ``ScaleBySoap`` it returns gives the rule for tensors and where the authors' reference,
    which this follows, differs from the paper. The first update initialises the factors and
    bases and returns zeros. Under a mesh (``optim.fit(mesh=...)``, or ``jax.set_mesh(mesh)``
    around a jitted step) the ``eigh`` and QR solves of all leaves' factors of one size run as
    one batched call, each device solving a share of them, ``ceil(n / devices)``, and the
    bases are gathered: the same values as on one device (where each factor is solved in a
    call of its own).

    Args:
      b1: decay rate :math:`\beta_1` of the first moment, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second moment, in ``[0, 1)``.
      shampoo_beta: decay rate :math:`\beta_s` of the factors :math:`L, R`, in ``[0, 1)``;
        a negative number (the default, -1, as in the reference) or ``None`` uses ``b2``.
      eps: :math:`\epsilon >= 0`, added to :math:`\sqrt{V'_t}` for numerical stability.
      precondition_frequency: an int >= 1: the bases are refreshed every this many steps.
      max_precond_dim: an int >= 1: an axis longer than this keeps no factor and is not
        rotated (10000 leaves out most vocabulary sizes).
      merge_dims: merge adjacent axes of leaves with two or more axes while their product
        stays within ``max_precond_dim`` (a convolution kernel then gets fewer, larger
        factors).
      precondition_1d: rotate 1-D leaves too, with the factor :math:`g g^\top` (False: they
        run plain Adam, with the bias correction and first update above).
      normalize_grads: divide each leaf's step by :math:`10^{-30}` plus its root mean square
        (the authors found it helps at large ``precondition_frequency``).
      data_format: ``"channels_first"`` (NCHW) or ``"channels_last"`` (NHWC): the layout of
        4-D leaves; with ``merge_dims`` NHWC leaves are merged as NCHW. Otherwise unused.
      correct_bias: apply Adam's bias correction :math:`\sqrt{1-\beta_2^t} / (1-\beta_1^t)`.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the preconditioned direction, without the
      learning rate or its minus sign. Its state is a :class:`optim.ScaleBySoapState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_soap()
      >>> grads = jnp.array([[1.0, 0.0], [0.0, -2.0]])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)  # the first update only sets the bases
      >>> print(updates)
      [[ 0.  0.]
       [ 0. -0.]]
      >>> updates, state = tx.update(grads, state)
      >>> print(updates.round(4))
      [[ 1.  0.]
       [ 0. -1.]]

    References:
      Vyas et al., 2024, https://arxiv.org/abs/2409.11321
    """
    return ScaleBySoap(
        b1=b1,
        b2=b2,
        shampoo_beta=shampoo_beta,
        eps=eps,
        precondition_frequency=precondition_frequency,
        max_precond_dim=max_precond_dim,
        merge_dims=merge_dims,
        precondition_1d=precondition_1d,
        normalize_grads=normalize_grads,
        data_format=data_format,
        correct_bias=correct_bias,
    )


@suggest_keywords
def soap(
    learning_rate: ScalarOrSchedule = 3e-3,
    b1: Any = 0.95,
    b2: Any = 0.95,
    shampoo_beta: Any = -1.0,
    eps: Any = 1e-8,
    weight_decay: Any = 0.01,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    merge_dims: bool = False,
    precondition_1d: bool = False,
    normalize_grads: bool = False,
    data_format: str = "channels_first",
    correct_bias: bool = True,
    mask: Any = None,
) -> Chain:
    r"""SOAP (Vyas et al., 2024, "SOAP: Improving and Stabilizing Shampoo using Adam"), with
    decoupled weight decay: ``chain(scale_by_soap, add_decayed_weights,
    scale_by_learning_rate)``.

    .. math:: \theta_{t+1} = \theta_t - \eta_t\big(u_t + \lambda \theta_t\big)

    with :math:`u_t` the step of :func:`optim.scale_by_soap` (Adam in the eigenbasis of
    Shampoo's factors), and the defaults of the authors' reference. Unlike the reference,
    which decays the parameters after its step (:math:`\theta \leftarrow (1 - \eta\lambda)
    (\theta - \eta u)`) and not at the first update, the decay here is AdamW's, on the
    parameters before the step, at every update: the trajectories differ by
    :math:`\eta\lambda` at the first update and :math:`\eta^2\lambda u` per later one.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated. Default 3e-3, the reference's.
      b1: decay rate :math:`\beta_1` of the first moment, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second moment, in ``[0, 1)``.
      shampoo_beta: decay rate of Shampoo's factors, in ``[0, 1)``; a negative number (the
        default, -1) or ``None`` uses ``b2``.
      eps: :math:`\epsilon >= 0`, added to the root of the second moment.
      weight_decay: strength :math:`\lambda >= 0` of the decoupled weight decay, a number
        or a schedule (:func:`optim.add_decayed_weights`).
      precondition_frequency: an int >= 1: the eigenbases are refreshed every this many
        steps.
      max_precond_dim: an int >= 1: axes longer than this are not rotated.
      merge_dims: merge adjacent axes while their product stays within ``max_precond_dim``.
      precondition_1d: rotate 1-D leaves too (False: plain Adam on them).
      normalize_grads: divide each leaf's step by its root mean square.
      data_format: ``"channels_first"`` or ``"channels_last"``, the layout of 4-D leaves
        (used with ``merge_dims`` only).
      correct_bias: apply Adam's bias correction.
      mask: where weight decay applies: a pytree of booleans with the structure of the
        params (or a prefix of it), or a function ``params -> such a pytree``. ``None``:
        every leaf is decayed, as in the reference.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.soap(learning_rate=0.1, weight_decay=0.0)
      >>> params = {"w": jnp.zeros((2, 2))}
      >>> state = tx.init(params)
      >>> for g in ([[1.0, 0.0], [0.0, 2.0]], [[2.0, 1.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 2.0]]):
      ...     updates, state = tx.update({"w": jnp.array(g)}, state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(params["w"].round(3))
      [[-0.19500001 -0.2       ]
       [-0.072      -0.19500001]]

    References:
      Vyas et al., 2024, https://arxiv.org/abs/2409.11321
    """
    return chain(
        scale_by_soap(
            b1,
            b2,
            shampoo_beta,
            eps,
            precondition_frequency,
            max_precond_dim,
            merge_dims,
            precondition_1d,
            normalize_grads,
            data_format,
            correct_bias,
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
