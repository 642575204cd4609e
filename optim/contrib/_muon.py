"""Muon (Jordan et al., 2024): momentum orthogonalised by a Newton-Schulz iteration.

Matrices get Muon's update; every other parameter (vectors, scalars, or the leaves that
``muon_weight_dimension_numbers`` leaves out) gets AdamW, as in ``optax.contrib.muon``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import decay, decay_hyper, dtype_option, flag, hyper, nonnegative
from optim._keywords import suggest_keywords
from optim._numerics import (
    cast_like_grads,
    debiased_first_moment,
    ema_update,
    store_like,
)
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    full_like,
    is_trainable,
    keystr,
    leaves_with_paths,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import EmptyState, Transformation, chain, check_updates
from optim.optimizers._adam import adamw
from optim.schedules._schedules import _choice, _steps
from optim.transforms._adding import add_decayed_weights
from optim.transforms._combining import Partition, partition
from optim.transforms._common import StaticTree
from optim.transforms._scaling import scale_by_learning_rate

# Jordan's quintic coefficients (modded-nanogpt), and the per-step ones of Ahn et al., 2025
# ("Dion"), as named by optax.
NS_COEFFS_PRESETS = {
    "standard": (3.4445, -4.7750, 2.0315),
    "dion": (
        (4.0848, -6.8946, 2.9270),
        (3.9505, -6.3029, 2.6377),
        (3.7418, -5.5913, 2.3037),
        (2.8769, -3.1427, 1.2046),
        (2.8366, -3.0525, 1.2012),
    ),
}
PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
# Floor of the AOL and Schatten-4 rescalings of the first iteration (optax's fixed value;
# the user's eps is the one added to the Frobenius and spectral norms).
_RESCALING_FLOOR = 1e-8


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a parameter form the matrix that Muon orthogonalises.

    ``reduction_axis`` (the input side of ``x @ W``) and ``output_axis`` are flattened into
    the matrix's rows and columns; every other axis is a batch axis, each slice orthogonalised
    on its own. The default is a plain ``(in, out)`` matrix.

    Attributes:
      reduction_axis: the axis (an int) or axes (a sequence of ints) flattened into the
        matrix's rows, the input side of ``x @ W``; 0 by default.
      output_axis: the axis or axes flattened into the matrix's columns; 1 by default.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def _is_dims(x: Any) -> bool:
    """Ours or optax's ``MuonDimensionNumbers`` (both named tuples with these two fields)."""
    return isinstance(x, tuple) and hasattr(x, "reduction_axis") and hasattr(x, "output_axis")


def _is_dims_leaf(x: Any) -> bool:
    return x is None or _is_dims(x)


def _is_dims_function(dims: Any) -> bool:
    """Whether ``dims`` is a function of the params rather than a tree of dimension numbers: a
    tree made from a callable model (an equinox module, ``models.Transformer``) is callable too,
    but its leaves are dimension numbers or None, where a function is its own callable leaf."""
    leaves = jax.tree.leaves(dims, is_leaf=_is_dims_leaf)
    return callable(dims) and all(callable(leaf) for leaf in leaves)


def _canonical_dims(dims: Any, where: str) -> MuonDimensionNumbers:
    """Our named tuple with tuples of ints (hashable, so it can be static)."""

    def axes(value: Any, field: str) -> tuple[int, ...]:
        values = (value,) if isinstance(value, int) else value
        try:
            out = tuple(_steps(v, f"{where}.{field}", low=None) for v in values)
        except TypeError:
            raise TypeError(
                f"{where}.{field} must be an int or a sequence of ints, got {value!r}"
            ) from None
        if not out:
            raise ValueError(f"{where}.{field} must name at least one axis")
        return out

    return MuonDimensionNumbers(
        axes(dims.reduction_axis, "reduction_axis"), axes(dims.output_axis, "output_axis")
    )


def _static_dims(dims: Any, name: str) -> Any:
    """``weight_dimension_numbers`` as static metadata: None, a function, or a StaticTree."""
    if dims is None or isinstance(dims, StaticTree) or _is_dims_function(dims):
        return dims
    pairs, treedef = jax.tree_util.tree_flatten_with_path(dims, is_leaf=_is_dims_leaf)
    leaves = []
    for path, leaf in pairs:
        if not _is_dims_leaf(leaf):
            raise TypeError(
                f"{name}{keystr(path)} must be a MuonDimensionNumbers or None, got {leaf!r}"
            )
        leaves.append(None if leaf is None else _canonical_dims(leaf, f"{name}{keystr(path)}"))
    return StaticTree(treedef, tuple(leaves))


def _dims_per_leaf(dims: Any, tree: PyTree, name: str) -> list[Any]:
    """One entry per leaf of ``tree`` (None counted as a leaf): its dimension numbers or None.

    ``dims`` (resolved from a function of ``tree`` if need be) is a prefix of ``tree``: an
    entry at a subtree applies to each of its leaves.
    """
    if dims is None:
        return [None] * len(leaves_with_paths(tree))
    value = _static_dims(dims(tree), name).value() if callable(dims) else dims.value()
    try:
        spread = jax.tree.map(
            lambda d, sub: jax.tree.map(lambda _: d, sub, is_leaf=lambda x: x is None),
            value,
            tree,
            is_leaf=_is_dims_leaf,
        )
    except ValueError as e:
        raise ValueError(f"{name} must be a prefix of the params tree: {e}") from None
    return jax.tree.leaves(spread, is_leaf=_is_dims_leaf)


def _matrix_axes(shape: tuple[int, ...], dims: Any, where: str) -> tuple[tuple, tuple, tuple]:
    """(batch, reduction, output) axes of a leaf, checked against its shape."""
    if dims is None:
        if len(shape) != 2:
            raise ValueError(
                f"Muon orthogonalises matrices: {where} has shape {shape}. Give its axes with "
                "MuonDimensionNumbers in weight_dimension_numbers, or leave it to AdamW "
                "(muon() does so for every leaf that is not 2-D)."
            )
        return (), (0,), (1,)
    ndim = len(shape)
    named = dims.reduction_axis + dims.output_axis
    if ndim < 2 or not all(-ndim <= a < ndim for a in named):
        raise ValueError(f"{dims} does not fit {where}, of shape {shape}")
    reduction = tuple(a % ndim for a in dims.reduction_axis)
    output = tuple(a % ndim for a in dims.output_axis)
    if len(set(reduction + output)) != len(named):
        raise ValueError(
            f"{where}: reduction and output axes must be distinct, got {dims} for shape {shape}"
        )
    batch = tuple(a for a in range(ndim) if a not in reduction + output)
    return batch, reduction, output


def _fans(shape: tuple[int, ...], axes: tuple[tuple, tuple, tuple]) -> tuple[int, int]:
    """(fan_in, fan_out): the sizes of the matrix's rows and columns."""
    _, reduction, output = axes
    return math.prod(shape[a] for a in reduction), math.prod(shape[a] for a in output)


def _unless_squares_overflow(x: jax.Array) -> jax.Array:
    """``x`` itself (bit for bit), or ``x / max|x|`` where the sum of its squares could overflow.

    A gradient spike of 1e30 makes the momentum ~1e29, whose Frobenius norm is inf in float32:
    x / inf = 0 would freeze the matrix until the momentum decays (~480 steps at beta = 0.95).
    Newton-Schulz returns the polar factor, which does not depend on the scale.
    """
    bound = float(np.sqrt(np.finfo(x.real.dtype).max)) / (4 * math.sqrt(max(x.size, 1)))
    largest = jnp.max(jnp.abs(x))
    huge = jnp.isfinite(largest) & (largest > bound)
    return x / jnp.where(huge, largest, 1).astype(x.real.dtype)


def _newton_schulz(
    x: jax.Array, coeffs: jax.Array, ns_steps: int, preconditioning: str, eps: jax.Array
) -> jax.Array:
    r"""Approximate the polar factor :math:`UV^*` of a matrix :math:`X = U\Sigma V^*`.

    After scaling the spectral norm to at most 1, each step applies the odd quintic
    :math:`X \leftarrow aX + (bA + cA^2)X`, :math:`A = XX^*`, which pushes every singular
    value towards [0.7, 1.2] (Jordan's coefficients do not converge to exactly 1, by design).
    Works on the shorter side: :math:`f(X^\top) = f(X)^\top`.
    """
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    x = _unless_squares_overflow(x)
    if preconditioning == "frobenius":
        x = x / (jnp.linalg.norm(x, ord="fro") + eps)
    elif preconditioning == "spectral":
        x = x / (jnp.linalg.norm(x, ord=2) + eps)
    coeffs = coeffs.astype(x.real.dtype)
    if preconditioning in ("frobenius", "spectral"):
        # In a loop primitive as optax's: run eagerly, its body is then compiled as one program
        # (fused multiply-adds, as under jit) rather than run op by op, for the same bits.
        def step(x: jax.Array, abc: jax.Array) -> jax.Array:
            gram = x @ x.T.conj()
            return abc[0] * x + (abc[1] * gram + abc[2] * gram @ gram) @ x

        if coeffs.ndim == 1:
            x = jax.lax.fori_loop(0, ns_steps, lambda _, x: step(x, coeffs), x, unroll=True)
        else:
            x, _ = jax.lax.scan(lambda x, abc: (step(x, abc), None), x, coeffs)
        return x.T if transposed else x
    rows = [coeffs] * ns_steps if coeffs.ndim == 1 else list(coeffs)
    for i, (a, b, c) in enumerate(rows):
        gram = x @ x.T.conj()
        if i == 0 and preconditioning == "aol":
            # Boissin et al., 2025: scale row j by 1/sqrt(sum_k |A_jk|), a bound on ||X||_2.
            s = jax.lax.rsqrt(jnp.maximum(jnp.abs(gram).sum(axis=-1), _RESCALING_FLOOR))[:, None]
            x, gram = x * s, gram * s * s.T
        elif i == 0 and preconditioning == "schatten":
            # Grishina et al., 2025: divide by the Schatten-4 norm, ||A||_F = ||X||_{S4}^2.
            s = jax.lax.rsqrt(jnp.maximum(jnp.linalg.norm(gram, ord="fro"), _RESCALING_FLOOR))
            x, gram = x * s, gram * s**2
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if transposed else x


def _orthogonalize(
    x: jax.Array,
    dims: Any,
    where: str,
    coeffs: jax.Array,
    ns_steps: int,
    preconditioning: str,
    eps: jax.Array,
) -> jax.Array:
    """Newton-Schulz on each (reduction, output) matrix of ``x``, batched over other axes."""
    axes = _matrix_axes(x.shape, dims, where)
    order = sum(axes, ())
    fan_in, fan_out = _fans(x.shape, axes)
    moved = x.transpose(order)
    matrices = moved.reshape((-1, fan_in, fan_out))
    done = jax.vmap(lambda m: _newton_schulz(m, coeffs, ns_steps, preconditioning, eps))(matrices)
    return done.reshape(moved.shape).transpose(np.argsort(order))


class MuonState(NamedTuple):
    """The state of :func:`optim.contrib.scale_by_muon`.

    Attributes:
      count: the number of updates so far (int32).
      mu: the momentum :math:`m_t` (the EMA of the gradients), a pytree like the params.
      ns_coeffs: the Newton-Schulz coefficients in use, float32 of shape ``(3,)`` or
        ``(ns_steps, 3)``.
    """

    count: jax.Array
    mu: PyTree
    ns_coeffs: jax.Array


@pytree_dataclass
class ScaleByMuon(Transformation):
    r"""Muon (Jordan et al., 2024, "Muon: An optimizer for hidden layers in neural networks",
    and modded-nanogpt), on matrices only.

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t,\quad
        \hat m_t = m_t / (1-\beta^t) \ \text{or, with nesterov,}\
        \beta m_t / (1-\beta^{t+1}) + (1-\beta) g_t / (1-\beta^t),\\
        u_t = \mathrm{NS}(\hat m_t) \approx U V^* \text{ where } \hat m_t = U\Sigma V^*,

    NS being ``ns_steps`` Newton-Schulz iterations (see ``_newton_schulz``) after the
    ``preconditioning`` rescaling. ``adaptive`` multiplies by the dual norm
    :math:`\mathrm{Re}\langle \hat m_t, u_t\rangle` (Bernstein & Newhouse, 2024). Every leaf
    must be a matrix, or have its matrix axes named in ``weight_dimension_numbers``.
    """

    ns_coeffs: jax.Array
    beta: Any = decay()
    eps: Any = nonnegative()
    ns_steps: int = static(5)
    mu_dtype: Any = dtype_option()
    nesterov: bool = flag(True)
    adaptive: bool = flag(False)
    preconditioning: str = static("frobenius")
    weight_dimension_numbers: Any = static(None)

    def init(self, params: PyTree) -> MuonState:
        return MuonState(
            count=zero_count(),
            mu=full_like(params, 0.0, self.mu_dtype),
            ns_coeffs=self.ns_coeffs,
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        beta = self.beta
        mu = map_arrays(lambda g, m: ema_update(g, m, beta), updates, state.mu)
        count = safe_increment(state.count)
        mu_hat = debiased_first_moment(mu, updates, beta, count, self.nesterov)
        dims = _dims_per_leaf(self.weight_dimension_numbers, updates, "weight_dimension_numbers")
        out = []
        for (path, m), d in zip(leaves_with_paths(mu_hat), dims, strict=True):
            if m is None:
                out.append(None)
                continue
            o = _orthogonalize(
                m,
                d,
                f"updates{keystr(path)}",
                state.ns_coeffs,
                self.ns_steps,
                self.preconditioning,
                self.eps,
            )
            if self.adaptive:
                o = jnp.sum(m.conj() * o).real * o
            out.append(o)
        out = jax.tree.unflatten(jax.tree.structure(mu_hat, is_leaf=lambda x: x is None), out)
        new_state = MuonState(count=count, mu=store_like(mu, state.mu), ns_coeffs=state.ns_coeffs)
        return cast_like_grads(out, updates), new_state


@pytree_dataclass
class ScaleByShape(Transformation):
    r"""Muon's shape-dependent scale: :math:`u = \sqrt{\max(1, n_{out}/n_{in})}\, g` (Jordan's
    width transfer), or with ``consistent_rms`` = :math:`r`,
    :math:`u = r\sqrt{\max(n_{in}, n_{out})}\, g` (Liu et al., 2025, "Muon is Scalable for LLM
    Training": an update RMS of about :math:`r`, like AdamW's 0.2)."""

    consistent_rms: Any = nonnegative(optional=True)
    weight_dimension_numbers: Any = static(None)

    def init(self, params: PyTree) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        dims = _dims_per_leaf(self.weight_dimension_numbers, updates, "weight_dimension_numbers")
        out = []
        for (path, g), d in zip(leaves_with_paths(updates), dims, strict=True):
            if not is_trainable(g):
                out.append(None)
                continue
            fan_in, fan_out = _fans(g.shape, _matrix_axes(g.shape, d, f"updates{keystr(path)}"))
            if self.consistent_rms is None:
                scale = jnp.sqrt(jnp.maximum(1, fan_out / fan_in))
            else:
                scale = jnp.sqrt(jnp.maximum(fan_in, fan_out)) * self.consistent_rms
            out.append((scale * upcast(g)).astype(g.dtype))
        return jax.tree.unflatten(
            jax.tree.structure(updates, is_leaf=lambda x: x is None), out
        ), state


def _ns_coeffs(ns_coeffs: Any, ns_steps: int) -> jax.Array:
    """Coefficients as float32, shape (3,) or (ns_steps, 3): the last ns_steps of a table."""
    if isinstance(ns_coeffs, str):
        ns_coeffs = NS_COEFFS_PRESETS[_choice(ns_coeffs, "ns_coeffs", tuple(NS_COEFFS_PRESETS))]
    try:
        coeffs = jnp.asarray(ns_coeffs, jnp.float32)
    except (TypeError, ValueError):
        raise TypeError(
            f"ns_coeffs must be three numbers, a table of rows of three, or a preset name "
            f"({', '.join(map(repr, NS_COEFFS_PRESETS))}), got {ns_coeffs!r}"
        ) from None
    if coeffs.ndim not in (1, 2) or coeffs.shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3), got {coeffs.shape}")
    if coeffs.ndim == 2:
        if coeffs.shape[0] < ns_steps:
            raise ValueError(
                f"ns_coeffs has {coeffs.shape[0]} rows, fewer than ns_steps={ns_steps}"
            )
        coeffs = coeffs[-ns_steps:]
    if not isinstance(coeffs, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(coeffs))):
        raise ValueError(f"ns_coeffs must be finite, got {coeffs}")
    return coeffs


@suggest_keywords
def scale_by_muon(
    ns_coeffs: Any = NS_COEFFS_PRESETS["standard"],
    ns_steps: int = 5,
    beta: Any = 0.95,
    eps: Any = 1e-8,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    weight_dimension_numbers: Any = None,
) -> ScaleByMuon:
    r"""Orthogonalise the momentum of every matrix (``optax.contrib.scale_by_muon``).

    .. math::
        m_t = \beta m_{t-1} + (1-\beta) g_t,\quad
        \hat m_t = m_t / (1-\beta^t) \ \text{or, with nesterov,}\
        \beta m_t / (1-\beta^{t+1}) + (1-\beta) g_t / (1-\beta^t),\\
        u_t = \mathrm{NS}(\hat m_t) \approx U V^* \text{ where } \hat m_t = U\Sigma V^*,

    NS being ``ns_steps`` Newton-Schulz iterations after the ``preconditioning`` rescaling.
    Every leaf must be a matrix, or have its matrix axes named in
    ``weight_dimension_numbers`` (:func:`optim.contrib.muon` sends the other leaves to AdamW).

    Args:
      ns_coeffs: the coefficients :math:`(a, b, c)` of the Newton-Schulz step
        :math:`X \leftarrow aX + (bA + cA^2)X`, :math:`A = XX^*`: three numbers used at every
        step (default: Jordan's ``(3.4445, -4.7750, 2.0315)``, which push the singular values
        into about [0.7, 1.2] rather than to exactly 1); a table of rows of three, of which
        the last ``ns_steps`` rows are used, one per step; or a preset name, ``"standard"``
        (Jordan's) or ``"dion"`` (the five per-step rows of Ahn et al., 2025).
      ns_steps: the number of Newton-Schulz iterations, a positive int.
      beta: :math:`\beta`, the momentum's decay, in ``[0, 1)``.
      eps: :math:`\epsilon \ge 0`, added to the norm that ``"frobenius"`` or ``"spectral"``
        preconditioning divides by.
      mu_dtype: the storage dtype of the momentum (``None``: float32, or the parameter's dtype
        where wider).
      nesterov: use the Nesterov momentum :math:`\beta m_t / (1-\beta^{t+1}) + (1-\beta) g_t /
        (1-\beta^t)` instead of :math:`m_t / (1-\beta^t)`.
      adaptive: multiply each orthogonalised update by the dual norm
        :math:`\mathrm{Re}\langle \hat m_t, u_t\rangle` (Bernstein & Newhouse, 2024), so that
        its size follows the momentum's.
      preconditioning: how the matrix is scaled before the iterations, so that its spectral
        norm is at most 1: ``"frobenius"`` (divide by the Frobenius norm + ``eps``),
        ``"spectral"`` (divide by the exact spectral norm + ``eps``), ``"aol"`` (Boissin et
        al., 2025: in the first iteration, scale row :math:`j` by
        :math:`1/\sqrt{\sum_k |A_{jk}|}`), or ``"schatten"`` (Grishina et al., 2025: divide by
        the Schatten-4 norm in the first iteration); the last two floor their divisor at
        1e-8, not at ``eps``.
      weight_dimension_numbers: ``None`` (every leaf is a 2-D ``(in, out)`` matrix), a tree
        of :class:`optim.contrib.MuonDimensionNumbers` (a prefix of the params; ``None``
        entries are 2-D matrices; other axes are batch axes, each slice orthogonalised on its
        own), or a function of the updates returning one.

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.MuonState`.

    Raises:
      TypeError: ``ns_coeffs`` neither numbers nor a preset name; a
        ``weight_dimension_numbers`` entry that is not a ``MuonDimensionNumbers`` or None.
      ValueError: ``ns_coeffs`` not of shape ``(3,)`` or ``(n, 3)`` with ``n >= ns_steps``, or
        not finite; ``ns_steps`` below 1; an unknown ``preconditioning``; in ``update``, a
        leaf that is not a matrix and has no dimension numbers.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.scale_by_muon()
      >>> state = tx.init(jnp.zeros((2, 2)))
      >>> updates, state = tx.update(jnp.array([[3.0, 0.0], [0.0, 0.1]]), state)
      >>> print(updates.round(2))  # singular values 3 and 0.1 both brought near 1
      [[0.7  0.  ]
       [0.   1.13]]

    References:
      Jordan et al., 2024, `Muon: An optimizer for hidden layers in neural networks
      <https://kellerjordan.github.io/posts/muon/>`_.
    """
    ns_steps = _steps(ns_steps, "ns_steps", 1)
    return ScaleByMuon(
        ns_coeffs=_ns_coeffs(ns_coeffs, ns_steps),
        beta=beta,
        eps=eps,
        ns_steps=ns_steps,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
        adaptive=adaptive,
        preconditioning=_choice(preconditioning, "preconditioning", PRECONDITIONINGS),
        weight_dimension_numbers=_static_dims(weight_dimension_numbers, "weight_dimension_numbers"),
    )


@dataclasses.dataclass(frozen=True)
class _MuonLabels:
    """``"muon"`` or ``"adam"`` for every leaf of a tree (``partition``'s ``param_labels``).

    A hashable value, so re-creating ``muon`` with equal arguments reuses compiled programs.
    """

    dims: Any

    def __call__(self, tree: PyTree) -> PyTree:
        dims = _dims_per_leaf(self.dims, tree, "muon_weight_dimension_numbers")
        is_muon = (
            (lambda x, d: is_trainable(x) and x.ndim == 2)
            if self.dims is None
            else (lambda x, d: d is not None)
        )
        labels = [
            "muon" if is_muon(x, d) else "adam"
            for (_, x), d in zip(leaves_with_paths(tree), dims, strict=True)
        ]
        return jax.tree.unflatten(jax.tree.structure(tree, is_leaf=lambda x: x is None), labels)


@suggest_keywords
def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: Any = NS_COEFFS_PRESETS["standard"],
    ns_steps: int = 5,
    beta: Any = 0.95,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: Any = 0.9,
    adam_b2: Any = 0.999,
    adam_eps_root: Any = 0.0,
    adam_weight_decay: Any = 0.0,
    adam_learning_rate: ScalarOrSchedule = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: Any = None,
) -> Partition:
    r"""Muon for matrices, AdamW for the rest (``optax.contrib.muon``).

    On the leaves Muon handles (2-D arrays, or those with non-None
    ``muon_weight_dimension_numbers``):

    .. math:: \theta_{t+1} = \theta_t - \eta_t\big(s\, u_t + \lambda\theta_t\big)

    with :math:`u_t` from ``scale_by_muon``, :math:`s` from ``ScaleByShape``
    (``consistent_rms``) and :math:`\lambda` = ``weight_decay`` where ``weight_decay_mask``
    allows. Every other leaf gets ``adamw(adam_learning_rate or learning_rate, adam_b1,
    adam_b2, eps, adam_eps_root, mu_dtype, adam_weight_decay, nesterov=nesterov)``.

    The two groups are a ``partition`` labelled ``"muon"`` and ``"adam"``, so the state has
    optax's structure.

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule ``count -> float``; also AdamW's
        unless ``adam_learning_rate`` is given.
      ns_coeffs: the coefficients :math:`(a, b, c)` of the Newton-Schulz step
        :math:`X \leftarrow aX + (bA + cA^2)X`, :math:`A = XX^*`: three numbers used at every
        step (default: Jordan's ``(3.4445, -4.7750, 2.0315)``, which push the singular values
        into about [0.7, 1.2] rather than to exactly 1); a table of rows of three, of which
        the last ``ns_steps`` rows are used, one per step; or a preset name, ``"standard"``
        (Jordan's) or ``"dion"`` (the five per-step rows of Ahn et al., 2025).
      ns_steps: the number of Newton-Schulz iterations, a positive int.
      beta: :math:`\beta`, the momentum's decay, in ``[0, 1)``.
      eps: :math:`\epsilon \ge 0`, added to the norm that ``"frobenius"`` or ``"spectral"``
        preconditioning divides by; also AdamW's ``eps``.
      weight_decay: :math:`\lambda \ge 0`, the decoupled weight decay of the Muon leaves.
      weight_decay_mask: a pytree of booleans with the structure of the params (or a prefix
        of it), or a function ``params -> such a pytree``: where True, the Muon leaves decay
        (``None``: all of them).
      mu_dtype: the storage dtype of the momentum, of Muon's and AdamW's first moment
        (``None``: float32, or the parameter's dtype where wider).
      nesterov: use the Nesterov momentum :math:`\beta m_t / (1-\beta^{t+1}) + (1-\beta) g_t /
        (1-\beta^t)` instead of :math:`m_t / (1-\beta^t)`.
      adaptive: multiply each orthogonalised update by the dual norm
        :math:`\mathrm{Re}\langle \hat m_t, u_t\rangle` (Bernstein & Newhouse, 2024), so that
        its size follows the momentum's.
      preconditioning: how the matrix is scaled before the iterations, so that its spectral
        norm is at most 1: ``"frobenius"`` (divide by the Frobenius norm + ``eps``),
        ``"spectral"`` (divide by the exact spectral norm + ``eps``), ``"aol"`` (Boissin et
        al., 2025: in the first iteration, scale row :math:`j` by
        :math:`1/\sqrt{\sum_k |A_{jk}|}`), or ``"schatten"`` (Grishina et al., 2025: divide by
        the Schatten-4 norm in the first iteration); the last two floor their divisor at
        1e-8, not at ``eps``.
      adam_b1: AdamW's first-moment decay, in ``[0, 1)``.
      adam_b2: AdamW's second-moment decay, in ``[0, 1)``.
      adam_eps_root: AdamW's ``eps_root`` (added inside the root), :math:`\ge 0`.
      adam_weight_decay: AdamW's decoupled weight decay, :math:`\ge 0`.
      adam_learning_rate: AdamW's learning rate, a number or a schedule (``None``:
        ``learning_rate``).
      muon_weight_dimension_numbers: which leaves Muon handles, as which matrices: ``None``
        (every 2-D leaf, as ``(in, out)``), or a tree of
        :class:`optim.contrib.MuonDimensionNumbers` (a prefix of the params: ``None``
        entries go to AdamW), or a function of the params returning one.
      consistent_rms: ``None``: the Muon update is scaled by
        :math:`s = \sqrt{\max(1, n_{out}/n_{in})}` (Jordan's width transfer); a number
        :math:`r \ge 0`: by :math:`s = r\sqrt{\max(n_{in}, n_{out})}`, an update RMS of about
        :math:`r` (Liu et al., 2025; 0.2 matches AdamW's).

    Returns:
      A :class:`optim.GradientTransformation` (a ``partition`` with groups ``"muon"`` and
      ``"adam"``).

    Raises:
      ValueError: as :func:`optim.contrib.scale_by_muon`, and for AdamW's arguments out of
        range (named as ``adam_b1`` etc.).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.muon(learning_rate=0.1)
      >>> params = {"w": jnp.zeros((2, 2)), "b": jnp.zeros(2)}  # w: Muon, b: AdamW
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([[3.0, 0.0], [0.0, 0.1]]), "b": jnp.array([0.5, -0.5])}
      >>> updates, state = tx.update(grads, state, params)
      >>> new = optim.apply_updates(params, updates)
      >>> print(new["w"].round(2))
      [[-0.07  0.  ]
       [ 0.   -0.11]]
      >>> print([round(float(b), 4) for b in new["b"]])  # AdamW's (Nesterov) first step
      [-0.1474, 0.1474]

    References:
      Jordan et al., 2024, `Muon: An optimizer for hidden layers in neural networks
      <https://kellerjordan.github.io/posts/muon/>`_.
    """
    dims = _static_dims(muon_weight_dimension_numbers, "muon_weight_dimension_numbers")
    # Validated here so that errors name muon's arguments, not adamw's.
    adam_b1 = decay_hyper(adam_b1, "adam_b1")
    adam_b2 = decay_hyper(adam_b2, "adam_b2")
    adam_eps_root = hyper(adam_eps_root, "adam_eps_root", schedule=False, low=0.0)
    adam_weight_decay = hyper(adam_weight_decay, "adam_weight_decay", low=0.0)
    if adam_learning_rate is not None:
        adam_learning_rate = hyper(adam_learning_rate, "adam_learning_rate", low=0.0)
    matrices = chain(
        scale_by_muon(
            ns_coeffs,
            ns_steps,
            beta,
            eps,
            mu_dtype,
            nesterov=nesterov,
            adaptive=adaptive,
            preconditioning=preconditioning,
            weight_dimension_numbers=dims,
        ),
        ScaleByShape(consistent_rms, weight_dimension_numbers=dims),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
    others = adamw(
        learning_rate if adam_learning_rate is None else adam_learning_rate,
        adam_b1,
        adam_b2,
        eps,
        adam_eps_root,
        mu_dtype,
        adam_weight_decay,
        nesterov=nesterov,
    )
    return partition({"muon": matrices, "adam": others}, _MuonLabels(dims))
