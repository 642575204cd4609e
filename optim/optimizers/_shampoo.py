r"""Shampoo (Gupta, Koren & Singer, 2018) as practised by Distributed Shampoo (Anil et al., 2020)
and PyTorch's Distributed Shampoo (Shi et al., 2023): Kronecker-factored preconditioners, one
per dimension of every matrix (or higher-order tensor), blocked, grafted onto a diagonal
optimizer's step size.

For a parameter of shape :math:`(d_0, \dots, d_{k-1})`, :math:`k \ge 2`, each dimension is cut
into blocks of at most ``block_size`` (the last block padded with zeros), and every block
:math:`G` of the gradient updates one statistic per dimension,

.. math::
    S^{(i)}_t = \beta_2 S^{(i)}_{t-1} + w\, G_{(i)} G_{(i)}^\top,\qquad
    w = 1 - \beta_2\ (w = 1 \text{ when } \beta_2 = 1: \text{the sums of the paper}),

with :math:`G_{(i)}` the block unfolded along dimension :math:`i` (for a matrix,
:math:`L = S^{(0)} \mathrel{+}= G G^\top` and :math:`R = S^{(1)} \mathrel{+}= G^\top G`) and
:math:`S^{(i)}_0 = \epsilon_M I`. Every ``precondition_every`` steps (inside ``lax.cond``: one
compiled step) the preconditioners are recomputed as :math:`P^{(i)} = (S^{(i)} + \epsilon_M
\lambda_{max} I)^{-1/p}`, :math:`p = 2k` (the paper's :math:`L^{-1/4} G R^{-1/4}` for a matrix)
by :func:`optim.matrix_inverse_pth_root`; until the first recomputation they are the identity.
The Shampoo direction of a block is :math:`G \times_0 P^{(0)} \cdots \times_{k-1} P^{(k-1)}`.

Grafting (Agarwal et al., 2020): the direction takes, per parameter, the norm of a diagonal
optimizer's direction :math:`D_t` (``graft_type``; for scalars and vectors, and leaves with a
zero-sized dimension, :math:`D_t` is the direction itself),

.. math::
    \tilde G_t = \frac{\lVert D_t\rVert_F}{\lVert \mathrm{Shampoo}(G_t)\rVert_F + 10^{-16}}
    \mathrm{Shampoo}(G_t),\qquad m_t = \beta_1 m_{t-1} + \tilde G_t,\qquad
    m^D_t = \beta_1 m^D_{t-1} + D_t,

and the step is :math:`m_t` from step ``start_preconditioning_step`` on, :math:`m^D_t` before
(with Nesterov momentum: :math:`\beta_1 m_t + \tilde G_t`, resp. :math:`\beta_1 m^D_t + D_t`).
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._device_share import vmap_over_devices
from optim._hyper import decay, flag, int_option, nonnegative, positive
from optim._keywords import suggest_keywords
from optim._numerics import (
    adaptive_step,
    cast_like_grads,
    decay_complement,
    decay_rate,
    nonfinite_kept,
    square_bounded,
    square_safe,
    store_like,
)
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    abs_sq,
    check_params,
    full_like,
    reject_complex,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import SIGNED, UNSIGNED, Chain, Transformation, chain, check_updates
from optim.linear_algebra import matrix_inverse_pth_root
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate

GRAFT_TYPES = ("adam", "rmsprop", "adagrad", "sgd")
_HIGHEST = jax.lax.Precision.HIGHEST
# Added to the Shampoo direction's norm before dividing the graft's norm by it, as the reference
# does: a zero direction stays zero.
_NORM_FLOOR = 1e-16


def _check_graft_type(value: Any, name: str) -> str:
    if not isinstance(value, str) or value not in GRAFT_TYPES:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, GRAFT_TYPES))}, got {value!r}"
        )
    return value


class ScaleByShampooState(NamedTuple):
    """Shampoo's step count, momenta, grafting statistics and Kronecker factors.

    Attributes:
      count: the number of updates so far, an int32 scalar (saturating at its maximum).
      momentum: the momentum :math:`m_t` of the grafted Shampoo direction, a pytree like the
        params (for scalars and vectors, the momentum of the grafting direction).
      graft_momentum: the momentum :math:`m^D_t` of the grafting direction, used before
        ``start_preconditioning_step``: like the params at preconditioned leaves, ``None`` at
        the others (where it is ``momentum``).
      graft_nu: the grafting optimizer's second-moment statistics (the average or sum of
        squared gradients), a pytree like the params; ``None`` for ``graft_type="sgd"``.
      stats: the statistics :math:`S^{(i)}`: at each preconditioned leaf a tuple with one
        float32 (float64 for float64 params) array per dimension :math:`i`, of shape
        ``(blocks, b_i, b_i)``; ``None`` at the other leaves.
      roots: the preconditioners :math:`P^{(i)}`, laid out as ``stats``.
    """

    count: jax.Array
    momentum: PyTree
    graft_momentum: PyTree
    graft_nu: PyTree
    stats: PyTree
    roots: PyTree

    # The factors and their roots stay in float32 (or float64): rounding a factor to bfloat16
    # or int8 codes would change the root of its small eigenvalues by orders of magnitude.
    moment_slots = MappingProxyType(
        {"momentum": SIGNED, "graft_momentum": SIGNED, "graft_nu": UNSIGNED}
    )


# --- blocks ---------------------------------------------------------------------------------


def _layout(shape: tuple[int, ...], block_size: int) -> tuple[tuple[int, int], ...] | None:
    """Per dimension (block length, number of blocks); None for a leaf on the diagonal rule
    (fewer than two dimensions, or an empty one)."""
    if len(shape) < 2 or 0 in shape:
        return None
    return tuple((min(d, block_size), -(-d // min(d, block_size))) for d in shape)


def _to_blocks(x: jax.Array, layout: tuple[tuple[int, int], ...]) -> jax.Array:
    """``x`` of shape (d_0, ..., d_{k-1}) as a stack of blocks, shape (N, b_0, ..., b_{k-1}),
    the last block of each dimension padded with zeros."""
    k = len(layout)
    padding = [(0, b * n - d) for d, (b, n) in zip(x.shape, layout, strict=True)]
    if any(high for _, high in padding):
        x = jnp.pad(x, padding)
    split = x.reshape([v for b, n in layout for v in (n, b)])
    split = split.transpose(list(range(0, 2 * k, 2)) + list(range(1, 2 * k, 2)))
    return split.reshape((-1, *(b for b, _ in layout)))


def _from_blocks(
    blocks: jax.Array, layout: tuple[tuple[int, int], ...], shape: tuple[int, ...]
) -> jax.Array:
    """The inverse of ``_to_blocks``: the padding is cut off."""
    k = len(layout)
    split = blocks.reshape((*(n for _, n in layout), *(b for b, _ in layout)))
    split = split.transpose([j for i in range(k) for j in (i, k + i)])
    whole = split.reshape([b * n for b, n in layout])
    return whole[tuple(slice(0, d) for d in shape)]


_AXES = "abcdefghijklmnopqrstuvwx"


def _unfolded_products(blocks: jax.Array) -> list[jax.Array]:
    """Per dimension i: :math:`G_{(i)} G_{(i)}^\\top` of every block, shape (N, b_i, b_i)."""
    axes = _AXES[: blocks.ndim - 1]
    out = []
    for i in range(len(axes)):
        other = axes[:i] + "z" + axes[i + 1 :]
        out.append(jnp.einsum(f"y{axes},y{other}->y{axes[i]}z", blocks, blocks, precision=_HIGHEST))
    return out


def _preconditioned(blocks: jax.Array, roots: tuple[jax.Array, ...]) -> jax.Array:
    """Every block multiplied along each dimension i by its (symmetric) root :math:`P^{(i)}`."""
    axes = _AXES[: blocks.ndim - 1]
    for i, root in enumerate(roots):
        other = axes[:i] + "z" + axes[i + 1 :]
        blocks = jnp.einsum(f"y{axes},y{axes[i]}z->y{other}", blocks, root, precision=_HIGHEST)
    return blocks


def _inverse_roots(stacks: list[jax.Array], p: int, matrix_eps: Any) -> list[jax.Array]:
    """:math:`(S + \\epsilon_M \\lambda_{max} I)^{-1/p}` of every matrix of some stacks of
    statistics, shapes (N_j, b_j, b_j), in one batched solver call.

    The matrices are padded with zeros to the largest size first: the padded part of the
    damped matrix is :math:`\\epsilon_M \\lambda_{max} I`, inside the spectrum the solver meets
    anyway, and block-diagonal, so the roots of the original parts are unchanged (to the
    solver's tolerance), while one compiled solver serves every size (compiling a Newton
    iteration per size would cost seconds each).
    """
    size = max(x.shape[-1] for x in stacks)
    padded = [
        jnp.pad(x, ((0, 0), (0, size - x.shape[-1]), (0, size - x.shape[-1]))) for x in stacks
    ]
    dtype = jnp.result_type(*padded)
    together = jnp.concatenate([x.astype(dtype) for x in padded])

    def root(matrix: jax.Array) -> jax.Array:
        return matrix_inverse_pth_root(matrix, p, ridge_epsilon=matrix_eps)[0]

    identity = jnp.eye(size, dtype=dtype)
    roots = vmap_over_devices(root, (together,), (identity,))
    out, start = [], 0
    for x in stacks:
        b = x.shape[-1]
        out.append(roots[start : start + x.shape[0], :b, :b].astype(x.dtype))
        start += x.shape[0]
    return out


def _frobenius(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(abs_sq(x)))


# --- the building block ---------------------------------------------------------------------


@pytree_dataclass
class ScaleByShampoo(Transformation):
    r"""Shampoo with blocking and grafting (Gupta, Koren & Singer, 2018; Anil et al., 2020).

    .. math::
        S^{(i)}_t = \beta_2 S^{(i)}_{t-1} + (1 - \beta_2) G_{(i)} G_{(i)}^\top,\quad
        P^{(i)} = (S^{(i)} + \epsilon_M \lambda_{max} I)^{-1/p},\quad
        u_t = \beta_1 m_t + \tilde G_t\ (\text{Nesterov}),

    with :math:`\tilde G_t` Shampoo's direction at the grafting optimizer's norm and
    :math:`m_t` its momentum (see the module ``optim.optimizers._shampoo``).

    Attributes:
      block_size: the largest length of a block along any dimension; longer dimensions are
        split into blocks of this length (the last one padded with zeros).
      b1: the momentum :math:`\beta_1 \in [0, 1)` (heavy ball, :math:`m_t = \beta_1 m_{t-1} +
        \tilde G_t`, as Distributed Shampoo's).
      b2: the decay :math:`\beta_2 \in [0, 1]` of the statistics and of the grafting
        optimizer's second moment; 1 sums them (the paper's and AdaGrad's rule).
      eps: :math:`\epsilon \ge 0` of the grafting optimizer's denominator
        :math:`\sqrt{\nu} + \epsilon`.
      matrix_eps: :math:`\epsilon_M > 0`: the statistics start at :math:`\epsilon_M I`, and
        the roots are taken of :math:`S + \epsilon_M \lambda_{max}(S) I`.
      precondition_every: the roots are recomputed at steps divisible by this.
      start_preconditioning_step: the first step (counting from 1) whose update is
        Shampoo's; the steps before take the grafting optimizer's.
      graft_type: the grafting optimizer: ``"adam"`` (RMSProp's second moment with Adam's
        bias correction), ``"rmsprop"`` (without it), ``"adagrad"`` (the sum of squares) or
        ``"sgd"`` (the gradient itself).
      nesterov: use Nesterov momentum.
      exponent_override: :math:`p` of the roots; 0 takes :math:`2k` for a leaf of
        :math:`k` dimensions.

    The fields are the arguments of :func:`optim.scale_by_shampoo`, which builds it.
    """

    block_size: int = int_option(128, low=1)
    b1: Any = decay(0.9)
    b2: Any = decay(0.999, closed=True)
    eps: Any = nonnegative(1e-10)
    matrix_eps: Any = positive(1e-6)
    precondition_every: int = int_option(10, low=1)
    start_preconditioning_step: int = int_option(10, low=1)
    graft_type: str = static("adam", check=_check_graft_type)
    nesterov: bool = flag(True)
    exponent_override: int = int_option(0, low=0)

    def _exponent(self, ndim: int) -> int:
        return self.exponent_override or 2 * ndim

    def init(self, params: PyTree) -> ScaleByShampooState:
        check_params(params)
        reject_complex(params, "shampoo", "its Kronecker factors are real symmetric matrices")
        leaves, treedef = jax.tree.flatten(params, is_leaf=lambda x: x is None)
        stats, graft_momentum = [], []
        for leaf in leaves:
            layout = None if leaf is None else _layout(np.shape(leaf), self.block_size)
            if layout is None:
                stats.append(None)
                graft_momentum.append(None)
                continue
            dtype = jnp.promote_types(leaf.dtype, jnp.float32)
            count = math.prod(n for _, n in layout)
            eye = [jnp.broadcast_to(jnp.eye(b, dtype=dtype), (count, b, b)) for b, _ in layout]
            stats.append(tuple(self.matrix_eps * e for e in eye))
            graft_momentum.append(jnp.zeros(np.shape(leaf), dtype))
        roots = [None if s is None else tuple(_eye_like(x) for x in s) for s in stats]
        return ScaleByShampooState(
            count=zero_count(),
            momentum=full_like(params, 0.0),
            graft_momentum=treedef.unflatten(graft_momentum),
            graft_nu=None if self.graft_type == "sgd" else full_like(params, 0.0),
            stats=treedef.unflatten(stats),
            roots=treedef.unflatten(roots),
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.momentum)
        count = safe_increment(state.count)
        b1, b2 = decay_rate(self.b1), decay_rate(self.b2)
        # b2 = 1 sums, as AdaGrad and the paper do (1 - b2 would weigh the new term by 0).
        weight = jnp.where(b2 == 1, 1.0, decay_complement(self.b2)).astype(jnp.float32)

        grads, treedef = jax.tree.flatten(updates, is_leaf=lambda x: x is None)
        momenta = treedef.flatten_up_to(state.momentum)
        graft_momenta = treedef.flatten_up_to(state.graft_momentum)
        nus = (
            [None] * len(grads) if state.graft_nu is None else treedef.flatten_up_to(state.graft_nu)
        )
        all_stats = treedef.flatten_up_to(state.stats)
        all_roots = treedef.flatten_up_to(state.roots)

        # Grafting directions and statistics first, so that the roots of every leaf are
        # recomputed in one lax.cond.
        directions, new_nus, new_stats, blocks = [], [], [], []
        for g, nu, stats in zip(grads, nus, all_stats, strict=True):
            if g is None:
                directions.append(None)
                new_nus.append(None)
                new_stats.append(None)
                blocks.append(None)
                continue
            direction, nu = self._graft(upcast(g), nu, count, b2, weight)
            directions.append(direction)
            new_nus.append(nu)
            if stats is None:
                new_stats.append(None)
                blocks.append(None)
                continue
            layout = _layout(g.shape, self.block_size)
            block = _to_blocks(upcast(g), layout)
            # Bounded so that no sum of squares overflows (a non-finite entry stays NaN).
            bounded = square_safe(block, terms=math.prod(block.shape[1:]))
            products = _unfolded_products(bounded)
            new_stats.append(
                tuple(
                    (b2 * s + weight * prod).astype(s.dtype)
                    for s, prod in zip(stats, products, strict=True)
                )
            )
            blocks.append(block)

        new_roots = self._refreshed_roots(count, grads, new_stats, all_roots)

        use_shampoo = count >= self.start_preconditioning_step
        out, new_momenta, new_graft_momenta = [], [], []
        for g, d, block, roots, m, md in zip(
            grads, directions, blocks, new_roots, momenta, graft_momenta, strict=True
        ):
            if g is None:
                out.append(None)
                new_momenta.append(None)
                new_graft_momenta.append(None)
                continue
            if block is None:  # the diagonal rule: the grafting optimizer's own step
                m = b1 * upcast(m) + d
                step = b1 * m + d if self.nesterov else m
                out.append(step)
                new_momenta.append(m)
                new_graft_momenta.append(None)
                continue
            layout = _layout(g.shape, self.block_size)
            shampoo = _from_blocks(_preconditioned(block, roots), layout, g.shape)
            shampoo = shampoo * (_frobenius(d) / (_frobenius(shampoo) + _NORM_FLOOR))
            m = b1 * upcast(m) + shampoo
            md = b1 * upcast(md) + d
            moment = jnp.where(use_shampoo, m, md)
            if self.nesterov:
                moment = b1 * moment + jnp.where(use_shampoo, shampoo, d)
            out.append(moment)
            new_momenta.append(m)
            new_graft_momenta.append(md)

        unflatten = treedef.unflatten
        new_state = ScaleByShampooState(
            count=count,
            momentum=store_like(unflatten(new_momenta), state.momentum),
            graft_momentum=store_like(unflatten(new_graft_momenta), state.graft_momentum),
            graft_nu=None
            if state.graft_nu is None
            else store_like(unflatten(new_nus), state.graft_nu),
            stats=unflatten(new_stats),
            roots=unflatten(new_roots),
        )
        return cast_like_grads(unflatten(out), updates), new_state

    def _graft(
        self, g: jax.Array, nu: jax.Array | None, count: jax.Array, b2: Any, weight: jax.Array
    ) -> tuple[jax.Array, jax.Array | None]:
        """The grafting optimizer's direction :math:`D_t` and its new second moment."""
        if self.graft_type == "sgd":
            return g, None
        bounded = square_bounded(g)
        direction, squares = nonfinite_kept(bounded, g), abs_sq(bounded)
        if self.graft_type == "adagrad":
            nu = upcast(nu) + squares
            return adaptive_step(direction, nu, self.eps), nu
        nu = b2 * upcast(nu) + weight * squares
        nu_hat = nu
        if self.graft_type == "adam":
            correction = jnp.where(b2 == 1, 1.0, 1 - b2**count).astype(nu.dtype)
            nu_hat = nu / correction
        return adaptive_step(direction, nu_hat, self.eps), nu

    def _refreshed_roots(self, count, grads, stats, roots) -> list:
        """The roots, recomputed from ``stats`` at steps divisible by ``precondition_every``."""
        if all(s is None for s in stats):
            return roots

        def recompute(stats: list) -> list:
            # One solver call per root exponent p, over the statistics of every leaf.
            by_exponent: dict[int, list] = {}
            for g, s in zip(grads, stats, strict=True):
                if s is not None:
                    by_exponent.setdefault(self._exponent(g.ndim), []).extend(s)
            solved = {
                p: iter(_inverse_roots(stacks, p, self.matrix_eps))
                for p, stacks in by_exponent.items()
            }
            return [
                None if s is None else tuple(next(solved[self._exponent(g.ndim)]) for _ in s)
                for g, s in zip(grads, stats, strict=True)
            ]

        def keep(stats: list) -> list:
            del stats
            return roots

        return jax.lax.cond(count % self.precondition_every == 0, recompute, keep, stats)


def _eye_like(stack: jax.Array) -> jax.Array:
    """Identity matrices shaped like a stack of them."""
    return jnp.broadcast_to(jnp.eye(stack.shape[-1], dtype=stack.dtype), stack.shape)


@suggest_keywords
def scale_by_shampoo(
    block_size: int = 128,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-10,
    matrix_eps: Any = 1e-6,
    precondition_every: int = 10,
    start_preconditioning_step: int = 10,
    graft_type: str = "adam",
    nesterov: bool = True,
    exponent_override: int = 0,
) -> ScaleByShampoo:
    r"""Rescale updates by Shampoo's blocked Kronecker-factored preconditioners, grafted.

    .. math::
        S^{(i)}_t = \beta_2 S^{(i)}_{t-1} + (1 - \beta_2) G_{(i)} G_{(i)}^\top,\quad
        P^{(i)} = (S^{(i)} + \epsilon_M \lambda_{max} I)^{-1/p},\quad
        \tilde G_t = \frac{\lVert D_t\rVert}{\lVert \mathrm{Shampoo}(G_t)\rVert}
        \mathrm{Shampoo}(G_t),\quad m_t = \beta_1 m_{t-1} + \tilde G_t,

    per block :math:`G` of each matrix (or tensor) :math:`G_t`, with
    :math:`\mathrm{Shampoo}(G) = G \times_0 P^{(0)} \cdots \times_{k-1} P^{(k-1)}`
    (:math:`L^{-1/4} G R^{-1/4}` for a matrix) and :math:`D_t` the grafting optimizer's
    direction. The step is :math:`m_t` (with Nesterov momentum :math:`\beta_1 m_t + \tilde
    G_t`) from ``start_preconditioning_step`` on, the grafting optimizer's own momentum step
    before. Scalars and vectors take the grafting optimizer's step throughout. The roots
    come from :func:`optim.matrix_inverse_pth_root` (coupled Newton iterations, tolerance
    1e-6), recomputed inside a ``lax.cond``, one batched solver call for the factors of all
    leaves (padded with zeros to the largest). Its iterations are a ``lax.while_loop``, so
    ``jax.grad`` through steps that recompute roots raises (forward mode, ``jax.jvp``, works).
    Under a mesh (``optim.fit(mesh=...)``, or ``jax.set_mesh(mesh)`` around a jitted step)
    each device computes the roots of a share of the matrices, ``ceil(n / devices)``, and
    the roots are gathered (Distributed Shampoo's way to scale, Anil et al., 2020): the
    same values as on one device.

    The behaviour follows ``ScalableShampoo`` of ``pytorch-optimizer`` (a port of
    Distributed Shampoo) with ``shape_interpretation=False`` and its decoupled learning rate.
    Where it differs: the last block of a dimension is padded with zeros (the reference cuts
    a smaller block; the roots agree to the solver's tolerance); ``b2 = 1`` sums the grafting
    optimizer's squares too (the reference's RMSProp graft would stay at 0); scalars and
    vectors take the grafting step exactly (the reference scales it by
    :math:`\lVert D\rVert / (\lVert D\rVert + 10^{-16})`); the ``"adam"`` graft (bias
    corrected, as Shi et al.'s) is ours.

    Args:
      block_size: the largest length of a block along any dimension (an int >= 1); longer
        dimensions are split into blocks of this length, the last one padded with zeros.
      b1: the momentum :math:`\beta_1 \in [0, 1)`: heavy ball, :math:`m_t = \beta_1 m_{t-1} +
        \tilde G_t` (no :math:`1 - \beta_1` factor, as in Distributed Shampoo).
      b2: the decay :math:`\beta_2 \in [0, 1]` of the Kronecker statistics and of the
        grafting optimizer's second moment; 1 sums them (the paper's and AdaGrad's rule).
      eps: :math:`\epsilon \ge 0` in the grafting optimizer's denominator
        :math:`\sqrt{\nu} + \epsilon`.
      matrix_eps: :math:`\epsilon_M > 0`: the statistics start at :math:`\epsilon_M I` and
        the roots are taken of :math:`S + \epsilon_M \lambda_{max}(S) I`.
      precondition_every: the roots are recomputed at the steps (counted from 1) divisible
        by this int >= 1; before the first recomputation the preconditioners are the
        identity.
      start_preconditioning_step: the first step (counted from 1) whose update is
        Shampoo's; earlier steps take the grafting optimizer's (with its own momentum).
      graft_type: the grafting optimizer, whose per-parameter norm Shampoo's direction takes
        and whose rule scalars and vectors follow: ``"adam"`` (RMSProp's second moment with
        Adam's bias correction), ``"rmsprop"`` (without it), ``"adagrad"`` (the sum of
        squared gradients) or ``"sgd"`` (the gradient).
      nesterov: use Nesterov momentum: the step is :math:`\beta_1 m_t + \tilde G_t`.
      exponent_override: the root :math:`p` of the preconditioners, an int >= 0; 0 takes
        :math:`p = 2k` for a parameter of :math:`k` dimensions.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the preconditioned direction, without the
      learning rate or its minus sign. Its state is a :class:`optim.ScaleByShampooState`.

    Raises:
      TypeError: from ``init``, when a parameter is complex.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_shampoo(precondition_every=1, start_preconditioning_step=1)
      >>> grads = jnp.array([[1.0, 0.0], [0.0, 2.0]])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print([[round(float(x), 3) for x in row] for row in updates])  # whitened
      [[1.9, 0.0], [0.0, 1.9]]

    References:
      Gupta, Koren & Singer, 2018, https://arxiv.org/abs/1802.09568;
      Anil et al., 2020, https://arxiv.org/abs/2002.09018;
      Shi et al., 2023, https://arxiv.org/abs/2309.06497
    """
    return ScaleByShampoo(
        block_size=block_size,
        b1=b1,
        b2=b2,
        eps=eps,
        matrix_eps=matrix_eps,
        precondition_every=precondition_every,
        start_preconditioning_step=start_preconditioning_step,
        graft_type=graft_type,
        nesterov=nesterov,
        exponent_override=exponent_override,
    )


@suggest_keywords
def shampoo(
    learning_rate: ScalarOrSchedule,
    block_size: int = 128,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-10,
    matrix_eps: Any = 1e-6,
    precondition_every: int = 10,
    start_preconditioning_step: int = 10,
    graft_type: str = "adam",
    nesterov: bool = True,
    exponent_override: int = 0,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""Shampoo (Gupta, Koren & Singer, 2018, "Shampoo: Preconditioned Stochastic Tensor
    Optimization"), blocked and grafted as in Distributed Shampoo (Anil et al., 2020).

    .. math::
        \theta_{t+1} = \theta_t - \eta_t (u_t + \lambda \theta_t),

    with :math:`u_t` the grafted, Kronecker-preconditioned momentum step of
    :func:`optim.scale_by_shampoo` (its docstring gives the rule, the reference followed and
    where we differ from it) and decoupled weight decay :math:`\lambda` (the reference adds
    its weight decay to the gradient by default). As with :func:`optim.adamw`, ``update``
    needs the params (for the weight decay, even at 0).

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      block_size: the largest length of a block along any dimension (an int >= 1); longer
        dimensions are split into blocks of this length, the last one padded with zeros.
      b1: the momentum :math:`\beta_1 \in [0, 1)`: heavy ball, :math:`m_t = \beta_1 m_{t-1} +
        \tilde G_t` (no :math:`1 - \beta_1` factor, as in Distributed Shampoo).
      b2: the decay :math:`\beta_2 \in [0, 1]` of the Kronecker statistics and of the
        grafting optimizer's second moment; 1 sums them (the paper's and AdaGrad's rule).
      eps: :math:`\epsilon \ge 0` in the grafting optimizer's denominator
        :math:`\sqrt{\nu} + \epsilon`.
      matrix_eps: :math:`\epsilon_M > 0`: the statistics start at :math:`\epsilon_M I` and
        the roots are taken of :math:`S + \epsilon_M \lambda_{max}(S) I`.
      precondition_every: the roots are recomputed at the steps (counted from 1) divisible
        by this int >= 1; before the first recomputation the preconditioners are the
        identity.
      start_preconditioning_step: the first step (counted from 1) whose update is
        Shampoo's; earlier steps take the grafting optimizer's (with its own momentum).
      graft_type: the grafting optimizer, whose per-parameter norm Shampoo's direction takes
        and whose rule scalars and vectors follow: ``"adam"``, ``"rmsprop"``, ``"adagrad"``
        or ``"sgd"`` (see :func:`optim.scale_by_shampoo`).
      nesterov: use Nesterov momentum: the step is :math:`\beta_1 m_t + \tilde G_t`.
      exponent_override: the root :math:`p` of the preconditioners, an int >= 0; 0 takes
        :math:`p = 2k` for a parameter of :math:`k` dimensions.
      weight_decay: strength :math:`\lambda >= 0` of the decoupled weight decay, a number
        or a schedule, added to the direction before the learning rate scales it.
      mask: a pytree with the structure of the params (or a prefix of it) of booleans, or a
        function ``params -> such a pytree``: where True, weight decay applies.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Raises:
      TypeError: from ``init``, when a parameter is complex.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.shampoo(learning_rate=0.1)
      >>> params = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([[0.5, -0.5], [0.1, 0.2]])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"].round(4))
      [[ 0.81 -1.81]
       [ 0.31  2.81]]

    References:
      Gupta, Koren & Singer, 2018, https://arxiv.org/abs/1802.09568;
      Anil et al., 2020, https://arxiv.org/abs/2002.09018;
      Shi et al., 2023, https://arxiv.org/abs/2309.06497
    """
    return chain(
        scale_by_shampoo(
            block_size,
            b1,
            b2,
            eps,
            matrix_eps,
            precondition_every,
            start_preconditioning_step,
            graft_type,
            nesterov,
            exponent_override,
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
