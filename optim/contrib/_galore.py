"""GaLore (Zhao et al., 2024): an inner optimizer run on low-rank projections of the gradients.

Each matrix's gradient :math:`G \\in \\mathbb R^{m \\times n}` is projected onto the span of its
top :math:`r` singular vectors, refreshed every ``update_proj_gap`` steps; the inner optimizer
(Adam by default) keeps its state in that :math:`r`-dimensional space, which is where the memory
saving comes from, and its update is mapped back to the full matrix. Other leaves get the inner
optimizer's update on their full gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import hyper_field, int_option
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_float_updates,
    check_params,
    check_same_structure,
    is_trainable,
    keystr,
    leaves_with_paths,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, as_transformation, chain, check_updates
from optim.contrib._muon import _canonical_dims, _is_dims, _is_dims_leaf, _matrix_axes
from optim.contrib._muon import _dims_per_leaf as _spread_dims
from optim.optimizers._adam import scale_by_adam
from optim.schedules._schedules import _steps
from optim.transforms._adding import add_decayed_weights
from optim.transforms._common import StaticTree
from optim.transforms._scaling import scale_by_learning_rate


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a parameter form the matrix that GaLore projects.

    ``reduction_axis`` (the input side of ``x @ W``) and ``output_axis`` are flattened into the
    matrix's rows and columns; together they must name every axis. For attention weights of
    shape ``(embed, heads, head_dim)``, ``GaLoreDimensionNumbers(0, (1, 2))`` projects the
    ``embed x (heads * head_dim)`` matrix. The default is a plain ``(in, out)`` matrix.

    Attributes:
      reduction_axis: the axis (an int) or axes (a sequence of ints) flattened into the
        matrix's rows, the input side of ``x @ W``; 0 by default.
      output_axis: the axis or axes flattened into the matrix's columns; 1 by default.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class GaLoreState(NamedTuple):
    """The state of :func:`optim.contrib.scale_by_galore`.

    Attributes:
      count: the number of updates so far (int32); the projectors are refreshed when it is a
        multiple of ``update_proj_gap``.
      base_optimizer_state: the inner optimizer's state, built on the projected gradients
        (of shape ``(rank, n)`` or ``(m, rank)`` for a projected ``m x n`` leaf).
      projector: a pytree like the params: the projection matrix of each projected leaf (of
        shape ``(m, rank)`` or ``(n, rank)``, in the parameter's dtype), a ``(0, 0)`` array
        for the others.
    """

    count: jax.Array
    base_optimizer_state: Any
    projector: PyTree


_MATRIX = GaLoreDimensionNumbers((0,), (1,))


class _Layout(NamedTuple):
    """How a leaf becomes the matrix GaLore projects, and which side it projects."""

    order: tuple[int, ...]  # the transposition putting reduction axes before output axes
    transposed_shape: tuple[int, ...]
    rows: int
    cols: int
    rank: int  # min(rank, rows, cols)

    @property
    def left(self) -> bool:
        """Project the column space (:math:`P^* G`) of a tall matrix, else the row space."""
        return self.rows >= self.cols

    @property
    def projector_shape(self) -> tuple[int, int]:
        return (self.rows, self.rank) if self.left else (self.cols, self.rank)

    @property
    def proxy_shape(self) -> tuple[int, int]:
        """The shape of the projected gradient, where the inner optimizer works."""
        return (self.rank, self.cols) if self.left else (self.rows, self.rank)

    def to_matrix(self, x: jax.Array) -> jax.Array:
        return x.transpose(self.order).reshape(self.rows, self.cols)

    def from_matrix(self, y: jax.Array) -> jax.Array:
        return y.reshape(self.transposed_shape).transpose(np.argsort(self.order))


def _layout(shape: tuple[int, ...], dims: GaLoreDimensionNumbers, rank: int, where: str) -> _Layout:
    batch, reduction, output = _matrix_axes(shape, dims, where)
    if batch:
        raise ValueError(
            f"{where}: GaLore projects one matrix per leaf, so reduction_axis and output_axis "
            f"must name every axis; {dims} leaves axes {batch} of shape {shape} unnamed"
        )
    order = reduction + output
    rows = math.prod(shape[a] for a in reduction)
    cols = math.prod(shape[a] for a in output)
    return _Layout(order, tuple(shape[a] for a in order), rows, cols, min(rank, rows, cols))


def _canonical(dims: Any, where: str) -> GaLoreDimensionNumbers:
    """Ours (or optax's) dimension numbers with tuples of ints: hashable, so static."""
    return GaLoreDimensionNumbers(*_canonical_dims(dims, where))


def _static_dims(dims: Any, name: str) -> Any:
    """``weight_dimension_numbers`` as static metadata: None, one ``GaLoreDimensionNumbers``
    (for every leaf of two or more dimensions), a ``StaticTree`` of them, or a function."""
    if dims is None or isinstance(dims, StaticTree):
        return dims
    if _is_dims(dims):
        return _canonical(dims, name)
    if callable(dims):
        return dims
    pairs, treedef = jax.tree_util.tree_flatten_with_path(dims, is_leaf=_is_dims_leaf)
    leaves = []
    for path, leaf in pairs:
        where = f"{name}{keystr(path)}"
        if not _is_dims_leaf(leaf):
            raise TypeError(f"{where} must be a GaLoreDimensionNumbers or None, got {leaf!r}")
        leaves.append(None if leaf is None else _canonical(leaf, where))
    return StaticTree(treedef, tuple(leaves))


def _dims_per_leaf(dims: Any, tree: PyTree, name: str) -> list[Any]:
    """One entry per leaf of ``tree`` (None counted as a leaf): the dimension numbers of the
    matrix to project, or None for a leaf GaLore leaves unprojected."""
    leaves = [x for _, x in leaves_with_paths(tree)]
    if dims is None:  # matrices only
        return [_MATRIX if is_trainable(x) and x.ndim == 2 else None for x in leaves]
    if isinstance(dims, GaLoreDimensionNumbers):  # every leaf of two or more dimensions
        return [dims if is_trainable(x) and x.ndim >= 2 else None for x in leaves]
    if callable(dims):
        returned = dims(tree)
        if callable(returned) and not _is_dims(returned):
            raise TypeError(
                f"{name} is a function of the params, which must return dimension numbers "
                f"(a GaLoreDimensionNumbers or a tree of them), not {returned!r}"
            )
        return _dims_per_leaf(_static_dims(returned, name), tree, name)
    per_leaf = _spread_dims(dims, tree, name)  # a StaticTree: Muon's prefix spreading
    return [d if is_trainable(x) else None for d, x in zip(per_leaf, leaves, strict=True)]


def _layouts(spec: Any, tree: PyTree, rank: int, name: str) -> list[_Layout | None]:
    """The layout of each leaf of ``tree`` GaLore projects (None for the others)."""
    dims = _dims_per_leaf(spec, tree, "weight_dimension_numbers")
    return [
        None if d is None else _layout(np.shape(x), d, rank, f"{name}{keystr(path)}")
        for (path, x), d in zip(leaves_with_paths(tree), dims, strict=True)
    ]


def _unflatten_like(tree: PyTree, leaves: list[Any]) -> PyTree:
    return jax.tree.unflatten(jax.tree.structure(tree, is_leaf=lambda x: x is None), leaves)


def _top_singular_vectors(g: jax.Array, layout: _Layout, dtype: Any) -> jax.Array:
    """The projector: the left (tall matrix) or right singular vectors of the top ``rank``
    singular values, as columns.

    A basis, not a function of the gradient to differentiate: ``stop_gradient`` keeps
    ``jax.grad`` through an update away from the SVD's derivative, which is infinite where
    singular values coincide (a zero gradient, a rank-deficient one).
    """
    u, _, vh = jnp.linalg.svd(upcast(jax.lax.stop_gradient(g)), full_matrices=False)
    vectors = u[:, : layout.rank] if layout.left else vh[: layout.rank, :].conj().T
    return vectors.astype(dtype)


@pytree_dataclass
class ScaleByGalore(Transformation):
    r"""GaLore (Zhao et al., 2024, "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
    Projection", Algorithm 2).

    Each projected leaf, viewed as a matrix :math:`G_t \in \mathbb R^{m\times n}` (see
    ``GaLoreDimensionNumbers``), with :math:`r` = ``min(rank, m, n)``:

    .. math::
        P_t = \begin{cases} U_{:, :r} \text{ or } V_{:, :r} \text{ of }
            G_t = U \Sigma V^* & t \equiv 0 \pmod{T} \\ P_{t-1} & \text{otherwise}\end{cases}
        \\
        R_t = P_t^* G_t \ (m \ge n) \quad\text{or}\quad R_t = G_t P_t \ (m < n),\qquad
        N_t = \rho(R_t),\\
        u_t = \alpha\, P_t N_t \ (m \ge n) \quad\text{or}\quad u_t = \alpha\, N_t P_t^*
        \ (m < n),

    with :math:`t` counted from 0, :math:`T` = ``update_proj_gap``, :math:`\alpha` = ``scale``
    and :math:`\rho` the inner optimizer (``base_optimizer``) applied to all :math:`R_t`
    together; its state has the projected shapes. Leaves that are not projected get
    :math:`\rho`'s update of their full gradient, unscaled (as in optax).

    As optax: the projector is stored in the parameter's dtype and the projected gradient is
    handed to :math:`\rho` in the gradient's dtype. Unlike optax: the products and the SVD run
    in float32 or wider (optax: SVD in float32, products in the parameter's dtype; the same
    numbers for float32 parameters); complex matrices are projected with their complex
    singular vectors and :math:`P^*` (optax drops the imaginary part for the SVD); and the SVD
    is not differentiated (see ``_top_singular_vectors``).
    """

    scale: Any = hyper_field()
    base_optimizer: Any
    rank: int = int_option(128, low=1)
    update_proj_gap: int = static(200)
    weight_dimension_numbers: Any = static(None)

    def init(self, params: PyTree) -> GaLoreState:
        check_params(params)
        layouts = _layouts(self.weight_dimension_numbers, params, self.rank, "params")
        projectors, proxies = [], []
        for (_, p), layout in zip(leaves_with_paths(params), layouts, strict=True):
            if not is_trainable(p):
                projectors.append(None)
                proxies.append(None)
            elif layout is None:
                projectors.append(jnp.zeros((0, 0), p.dtype))
                proxies.append(jnp.zeros_like(p))
            else:
                projectors.append(jnp.zeros(layout.projector_shape, p.dtype))
                proxies.append(jnp.zeros(layout.proxy_shape, p.dtype))
        return GaLoreState(
            count=zero_count(),
            base_optimizer_state=self.base_optimizer.init(_unflatten_like(params, proxies)),
            projector=_unflatten_like(params, projectors),
        )

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        if params is not None:  # read for this check only: the inner optimizer gets None
            check_updates(updates, params, "params")
        check_same_structure(
            updates,
            jax.tree.map(lambda _: None, state.projector),  # the structure, not the shapes
            "grads",
            "the optimizer state (built by init from params)",
        )
        check_float_updates(updates)
        layouts = _layouts(self.weight_dimension_numbers, updates, self.rank, "grads")
        grads = [g for _, g in leaves_with_paths(updates)]
        old = jax.tree.leaves(state.projector, is_leaf=lambda x: x is None)
        refresh = state.count % self.update_proj_gap == 0

        projectors, projected = [], []
        for (path, g), p, layout in zip(leaves_with_paths(updates), old, layouts, strict=True):
            if layout is None or not is_trainable(g):
                projectors.append(p)
                projected.append(g)
                continue
            if p is None or p.shape != layout.projector_shape:
                raise ValueError(
                    f"grads{keystr(path)} of shape {g.shape} needs a projector of shape "
                    f"{layout.projector_shape}, the state has "
                    f"{None if p is None else p.shape}; create the state with init from "
                    "params of the gradients' shapes"
                )
            matrix = layout.to_matrix(g)
            p = jax.lax.cond(
                refresh,
                lambda m=matrix, lay=layout, d=p.dtype: _top_singular_vectors(m, lay, d),
                lambda p=p: p,
            )
            basis, m = upcast(p), upcast(matrix)
            low_rank = basis.conj().T @ m if layout.left else m @ basis
            projectors.append(p)
            projected.append(low_rank.astype(g.dtype))

        inner, base_state = self.base_optimizer.update(
            _unflatten_like(updates, projected), state.base_optimizer_state, None
        )
        out = []
        inner_leaves = jax.tree.leaves(inner, is_leaf=lambda x: x is None)
        for g, n, p, layout in zip(grads, inner_leaves, projectors, layouts, strict=True):
            if layout is None or n is None:
                out.append(n)
                continue
            basis, low = upcast(p), upcast(n)
            full = basis @ low if layout.left else low @ basis.conj().T
            out.append((self.scale * layout.from_matrix(full)).astype(g.dtype))
        new_state = GaLoreState(
            count=safe_increment(state.count),
            base_optimizer_state=base_state,
            projector=_unflatten_like(updates, projectors),
        )
        return _unflatten_like(updates, out), new_state


@suggest_keywords
def scale_by_galore(
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: Any = 1.0,
    base_optimizer: Any = None,
    weight_dimension_numbers: Any = None,
) -> ScaleByGalore:
    r"""Run ``base_optimizer`` on low-rank projections of the gradients (GaLore; Zhao et al.,
    2024): see ``ScaleByGalore`` for the rule.

    ``base_optimizer`` must be a scaling that does not read the params (``scale_by_adam``,
    ``scale_by_lion``, ``scale_by_rms``, ``sgd(1.0)``, ...): it sees projected, low-rank
    gradients, whose shapes are not the params'. Weight decay belongs in ``galore``'s
    ``weight_decay``, applied in the full space.

    References:
      Zhao et al., 2024, `GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection
      <https://arxiv.org/abs/2403.03507>`_.

    Args:
      rank: the rank :math:`r` of the projections (a positive int; a matrix of a smaller side
        is projected at that side's size).
      update_proj_gap: :math:`T`, the number of steps between refreshes of the projectors from
        an SVD of the gradient (a positive int; the first step refreshes).
      scale: :math:`\alpha`, a factor on the updates of projected leaves.
      base_optimizer: the inner optimizer, ours or optax's; ``None``: ``scale_by_adam()``.
      weight_dimension_numbers: which leaves are projected, as which matrices. ``None``: every
        2-D leaf, as ``(in, out)``. One ``GaLoreDimensionNumbers``: every leaf of two or more
        dimensions. A tree of them with ``None`` for leaves not to project (a prefix of the
        params: an entry stands for its whole subtree), or a function of the params returning
        one.

    Returns:
      The transformation; its state is a ``GaLoreState``.

    Raises:
      TypeError: ``rank`` or ``update_proj_gap`` not an int; ``base_optimizer`` not a
        transformation; an entry of ``weight_dimension_numbers`` that is neither a
        ``GaLoreDimensionNumbers`` nor ``None``.
      ValueError: ``rank`` or ``update_proj_gap`` below 1, ``scale`` not finite; at ``init``,
        dimension numbers that do not fit their leaf (naming its path).

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> tx = optim.contrib.scale_by_galore(rank=2)
      >>> state = tx.init({"w": jnp.ones((6, 4)), "b": jnp.ones(4)})
      >>> state.projector["w"].shape, state.base_optimizer_state.mu["w"].shape
      ((6, 2), (2, 4))
    """
    return ScaleByGalore(
        scale=scale,
        base_optimizer=scale_by_adam()
        if base_optimizer is None
        else as_transformation(base_optimizer, "base_optimizer"),
        rank=rank,
        update_proj_gap=_steps(update_proj_gap, "update_proj_gap", 1),
        weight_dimension_numbers=_static_dims(weight_dimension_numbers, "weight_dimension_numbers"),
    )


@suggest_keywords
def galore(
    learning_rate: ScalarOrSchedule,
    rank: int = 128,
    update_proj_gap: int = 200,
    scale: Any = 1.0,
    base_optimizer: Any = None,
    weight_decay: Any = 0.0,
    mask: Any = None,
    weight_dimension_numbers: Any = None,
) -> Chain:
    r"""GaLore (Zhao et al., 2024): memory-efficient training by gradient low-rank projection.

    .. math:: \theta_{t+1} = \theta_t - \eta_t\big(u_t + \lambda\theta_t\big)

    with :math:`u_t` from ``scale_by_galore`` (Adam on the projections :math:`P_t^* G_t` of
    the gradients onto their top-``rank`` singular vectors, refreshed every
    ``update_proj_gap`` steps, mapped back by :math:`P_t`) and :math:`\lambda` =
    ``weight_decay`` where ``mask`` allows (decoupled, as AdamW's, in the full space). For an
    :math:`m \times n` matrix Adam's two moments take :math:`2 r \min(m, n)` entries instead
    of :math:`2mn`, plus the projector's :math:`r \max(m, n)`.

    References:
      Zhao et al., 2024, `GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection
      <https://arxiv.org/abs/2403.03507>`_.

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule. If ``base_optimizer`` scales
        by a learning rate already, pass 1.0.
      rank: the rank of the projections.
      update_proj_gap: the number of steps between refreshes of the projectors.
      scale: a factor on the updates of projected leaves.
      base_optimizer: the inner optimizer (``None``: ``scale_by_adam()``); one that does not
        read the params (not ``adamw``: use ``weight_decay``).
      weight_decay: :math:`\lambda \ge 0`, a number or a schedule.
      mask: which leaves decay: a tree of bools (a prefix of the params) or a function of the
        params returning one.
      weight_dimension_numbers: which leaves are projected, as which matrices (see
        ``scale_by_galore``).

    Returns:
      The chain ``(scale_by_galore, add_decayed_weights, scale_by_learning_rate)``, with
      optax's state structure.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> def f(p):
      ...     return jnp.sum(jnp.square(p["w"]))
      >>> tx = optim.contrib.galore(learning_rate=0.01, rank=16)
      >>> params = {"w": jnp.ones((100, 100)), "b": jnp.ones((100,))}
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(f)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      ...     print(f"{f(params):.2E}")
      9.98E+03
      9.96E+03
      9.94E+03
    """
    return chain(
        scale_by_galore(rank, update_proj_gap, scale, base_optimizer, weight_dimension_numbers),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
