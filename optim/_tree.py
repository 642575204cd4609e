"""Tree helpers shared by every transformation.

Trainable leaves are floating or complex arrays (JAX or NumPy), and Python floats, which
``map_arrays`` and ``apply_updates`` treat as 0-d arrays as optax does. Every other leaf (``None``,
Python numbers, functions, strings, the static parts of an equinox or flax module) is passed
through untouched: it gets ``None`` in the optimizer state and ``None`` as its update, and
``apply_updates`` leaves it as it was. Integer or boolean *arrays* among the parameters are an
error (an optimizer cannot move them), raised by ``check_params``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# Re-exported: the tree helpers and every step counter build on these.
from optim.numerics import abs_sq as abs_sq
from optim.numerics import safe_increment as safe_increment

PyTree = Any

INT32_MAX = np.iinfo(np.int32).max


def _is_none(x: Any) -> bool:
    return x is None


def is_array(x: Any) -> bool:
    """True for JAX arrays (tracers included), NumPy arrays and NumPy scalars."""
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def is_trainable(x: Any) -> bool:
    """True for arrays of a floating or complex dtype."""
    return is_array(x) and jnp.issubdtype(x.dtype, jnp.inexact)


def reject_complex(
    tree: PyTree,
    algorithm: str,
    why: str = "",
    *,
    what: str = "params",
    advice: str = "Optimize the real and imaginary parts as separate real arrays instead.",
) -> None:
    """Raise ``TypeError`` naming the first complex leaf of ``tree`` (``what``: how the user
    calls it, ``params`` or ``grads``), for algorithms whose rule orders or clips values
    (undefined for complex numbers). It reads dtypes only, so it costs nothing under ``jit``.
    """
    for path, leaf in leaves_with_paths(tree):
        if is_trainable(leaf) and jnp.iscomplexobj(leaf):
            reason = f" ({why})" if why else ""
            raise TypeError(
                f"{algorithm} does not support complex {what}{reason}: "
                f"{what}{keystr(path)} has dtype {leaf.dtype}. {advice}"
            )


def keystr(path: Sequence[Any]) -> str:
    """A leaf path as the user would index it, e.g. ``['layers'][0].w``."""
    return jax.tree_util.keystr(tuple(path)) or "<root>"


def leaves_with_paths(tree: PyTree) -> list[tuple[Any, Any]]:
    """``(path, leaf)`` pairs with ``None`` counted as a leaf."""
    return jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_none)[0]


def check_params(params: PyTree, name: str = "params") -> None:
    """Raise ``TypeError`` naming the leaf path of any integer or boolean array in ``params``."""
    for path, leaf in leaves_with_paths(params):
        if is_array(leaf) and not jnp.issubdtype(leaf.dtype, jnp.inexact):
            raise TypeError(
                f"{name}{keystr(path)} is an array of dtype {leaf.dtype}; optimizers update "
                "floating or complex arrays only. Convert it to a float dtype, or make it a "
                "non-array leaf (a Python int) so that it is passed through untouched."
            )


def check_float_updates(updates: PyTree, name: str = "grads") -> None:
    """Raise ``TypeError`` naming the leaf path of any integer or boolean array in ``updates``.

    Without it such a leaf would get a ``None`` update (it is not trainable) and its parameter
    would silently stay where it is. ``float0`` (JAX's gradient of an integer input) passes.
    """
    for path, leaf in leaves_with_paths(updates):
        if is_array(leaf) and (
            jnp.issubdtype(leaf.dtype, jnp.integer) or jnp.issubdtype(leaf.dtype, jnp.bool_)
        ):
            raise TypeError(
                f"{name}{keystr(path)} is an array of dtype {leaf.dtype}; {name} must be "
                "floating (or complex) arrays, like the parameters they update."
            )


def _listed(label: str, paths: list[str]) -> list[str]:
    """``[label + the first five paths]``, or nothing when there are none."""
    return [label + ", ".join(paths[:5])] if paths else []


def check_same_structure(tree: PyTree, reference: PyTree, name: str, reference_name: str) -> None:
    """Raise ``ValueError`` naming the first leaf paths where ``tree`` and ``reference`` differ.

    ``None`` counts as a leaf in both, so a gradient of ``None`` matches a non-trainable
    parameter. Shapes are compared where both leaves are arrays. Costs nothing under ``jit``:
    structure and shapes are static.
    """
    got = leaves_with_paths(tree)
    want = leaves_with_paths(reference)
    got_paths = [keystr(p) for p, _ in got]
    want_paths = [keystr(p) for p, _ in want]
    if got_paths != want_paths:
        missing = [p for p in want_paths if p not in set(got_paths)]
        extra = [p for p in got_paths if p not in set(want_paths)]
        detail = _listed(f"missing from {name}: ", missing) + _listed(
            f"not in {reference_name}: ", extra
        ) or [f"{name} has leaves {got_paths[:5]}, {reference_name} {want_paths[:5]}"]
        raise ValueError(
            f"{name} does not have the structure of {reference_name}; " + "; ".join(detail) + "."
        )
    if jax.tree.structure(tree, is_leaf=_is_none) != jax.tree.structure(
        reference, is_leaf=_is_none
    ):
        raise ValueError(
            f"{name} has the leaf paths of {reference_name} but other container types: "
            f"{jax.tree.structure(tree, is_leaf=_is_none)} vs "
            f"{jax.tree.structure(reference, is_leaf=_is_none)}."
        )
    for (path, g), (_, r) in zip(got, want, strict=True):
        if is_array(g) and is_array(r) and np.shape(g) != np.shape(r):
            raise ValueError(
                f"{name}{keystr(path)} has shape {np.shape(g)} but {reference_name}"
                f"{keystr(path)} has shape {np.shape(r)}."
            )


def is_tree_function(x: Any) -> bool:
    """True when ``x`` (a mask or labels argument) is a function of the params, False when it
    is a tree of masks or labels.

    A callable is not enough: an equinox module, or any pytree model with ``__call__``, is
    callable, and so is the tree of bools or labels ``jax.tree.map`` makes from it. As in
    optax (optax#913), a function is a callable whose leaves are all callable: a plain
    function is its own single leaf, a tree made from a model has bools or labels there.
    """
    return callable(x) and all(callable(leaf) for leaf in jax.tree.leaves(x))


def check_prefix(prefix: PyTree, tree: PyTree, name: str, tree_name: str = "params") -> None:
    """Raise ``ValueError`` naming the leaf paths where ``prefix`` (a mask, labels) is not a
    prefix of ``tree``'s structure: each leaf of ``prefix`` must stand for a subtree of
    ``tree`` at the same path."""
    try:
        jax.tree.map(lambda *_: None, prefix, tree)
        return
    except ValueError as e:
        reason = str(e).splitlines()[0]
    prefix_paths = [tuple(p) for p, _ in jax.tree_util.tree_flatten_with_path(prefix)[0]]
    tree_paths = [tuple(p) for p, _ in leaves_with_paths(tree)]

    def covers(p: tuple, t: tuple) -> bool:
        return t[: len(p)] == p

    def at(tree_label: str, path: tuple) -> str:
        return tree_label + jax.tree_util.keystr(path)

    extra = [at(name, p) for p in prefix_paths if not any(covers(p, t) for t in tree_paths)]
    uncovered = [
        at(tree_name, t) for t in tree_paths if not any(covers(p, t) for p in prefix_paths)
    ]
    detail = _listed(f"not in {tree_name}: ", extra) + _listed(
        f"no entry in {name} for ", uncovered
    ) or [f"the container types differ ({reason})"]
    raise ValueError(
        f"{name} must have the structure of {tree_name} or of a prefix of it: " + "; ".join(detail)
    )


def map_arrays(fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
    """``fn`` on each position where ``tree`` and all of ``rest`` hold arrays; ``None`` elsewhere.

    ``rest`` must have the leaf structure of ``tree`` with ``None`` counted as a leaf (what
    ``check_same_structure`` checks). The result has ``tree``'s structure.
    """
    leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_none)
    others = [jax.tree.leaves(r, is_leaf=_is_none) for r in rest]
    for r, o in zip(rest, others, strict=True):
        if len(o) != len(leaves):
            check_same_structure(r, tree, "tree", "reference")
    leaves = [python_float_as_array(x) for x in leaves]
    others = [[python_float_as_array(y) for y in o] for o in others]
    out = [
        fn(x, *ys) if is_trainable(x) and all(is_array(y) for y in ys) else None
        for x, *ys in zip(leaves, *others, strict=True)
    ]
    return jax.tree.unflatten(treedef, out)


def any_traced(tree: PyTree) -> bool:
    """Whether some leaf of ``tree`` is a tracer (the caller is inside ``jit``, ``vmap`` or
    ``grad``)."""
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(tree))


def map_arrays_unzipped(fn: Callable[..., tuple], size: int, tree: PyTree, *rest: PyTree):
    """``map_arrays`` for an ``fn`` that returns ``size`` arrays: ``size`` trees of ``tree``'s
    structure (``None`` where ``map_arrays`` gives ``None``)."""
    treedef = jax.tree.structure(tree, is_leaf=_is_none)
    outputs = treedef.flatten_up_to(map_arrays(fn, tree, *rest))
    return tuple(
        treedef.unflatten([None if out is None else out[i] for out in outputs]) for i in range(size)
    )


def python_float_as_array(x: Any) -> Any:
    """A Python ``float`` leaf as a 0-d array of JAX's default float dtype (float32, or float64
    under ``jax_enable_x64``); any other leaf as it is.

    A parameter written as a plain Python number (``{"w": [1.0, 2.0]}``) is trained, as optax
    trains it: its state is an array, and ``apply_updates`` returns an array in its place.
    Python ``int`` and ``bool`` leaves stay untouched (they are configuration, not weights).
    """
    if isinstance(x, float):
        return jnp.asarray(x, jnp.result_type(float))
    return x


def compute_dtype(x: Any) -> Any:
    """The dtype optimizer arithmetic runs in for leaf ``x``: at least float32."""
    return jnp.promote_types(x.dtype, jnp.float32)


def upcast(x: jax.Array) -> jax.Array:
    """``x`` in its compute dtype (``x`` itself when it is already in it: no operation traced)."""
    dtype = compute_dtype(x)
    return x if x.dtype == dtype else x.astype(dtype)


def full_like(params: PyTree, value: Any = 0.0, dtype: Any = None) -> PyTree:
    """A state slot: ``value`` for every trainable leaf, ``None`` elsewhere.

    Its dtype is ``dtype`` when given, else the leaf's compute dtype (at least float32, so
    bf16 parameters get float32 moments). Integer parameter arrays raise ``TypeError``.
    """
    check_params(params)
    # full_like, not full(shape): the slot keeps the parameter's sharding (a scan carry of
    # init's state then has the type update returns).
    return map_arrays(lambda p: jnp.full_like(p, value, dtype or compute_dtype(p)), params)


def zero_count() -> jax.Array:
    """An int32 counter at 0 (steps, skips, line-search iterations; ``safe_increment`` advances
    it)."""
    return jnp.zeros([], jnp.int32)


def tree_sum(values: PyTree) -> jax.Array:
    """The sum of a tree's (scalar) leaves in leaf order, in float32 or wider; 0 for none."""
    return sum(jax.tree.leaves(values), jnp.zeros([], jnp.float32))


def tree_inner(a: PyTree, b: PyTree) -> jax.Array:
    r""":math:`\sum_i a_i b_i` over the trainable leaves (no conjugate), in float32 or wider."""
    return tree_sum(map_arrays(lambda x, y: jnp.sum(upcast(x) * upcast(y)), a, b))


def float_copy(params: PyTree) -> PyTree:
    """A copy of the trainable leaves in float32 or wider (an optimizer's :math:`\theta_0`);
    ``None`` elsewhere."""
    return map_arrays(lambda p: upcast(jnp.array(p, copy=True)), params)


def inner_product(a: jax.Array, b: jax.Array) -> jax.Array:
    r""":math:`\sum_i \bar a_i b_i` of two arrays of one shape, at the highest matmul precision
    (no TF32 on GPUs), as optax computes it: ``jnp.vdot``. Under a mesh whose axes are all
    explicit, where ``jnp.vdot``'s ravel fails, every axis is contracted instead and the scalar
    replicated (the same numbers, except in the last bits of complex leaves of two or more
    dimensions)."""
    mesh = jax.typeof(a).sharding.mesh
    if not mesh.are_all_axes_explicit:
        return jnp.vdot(a, b, precision=jax.lax.Precision.HIGHEST)
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        a = jnp.conj(a)
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jnp.tensordot(a, b, a.ndim, precision=jax.lax.Precision.HIGHEST, out_sharding=replicated)


def tree_vdot(x: PyTree, y: PyTree) -> jax.Array:
    r""":math:`\sum_i \bar x_i y_i` over the leaves where both trees hold floating arrays.

    Computed leaf by leaf (``inner_product``), summed in leaf order, in at least float32.
    """
    return tree_sum(map_arrays(lambda a, b: inner_product(upcast(a), upcast(b)), x, y))


def tree_sq_norm(x: PyTree) -> jax.Array:
    r""":math:`\sum_i |x_i|^2` over the floating leaves of ``x``, in at least float32."""
    return tree_sum(
        map_arrays(lambda a: jnp.sum(jnp.real(upcast(a)) ** 2 + jnp.imag(upcast(a)) ** 2), x)
    )


def global_norm(updates: PyTree) -> jax.Array:
    r"""The Euclidean norm of all the arrays of a tree together, :math:`\sqrt{\sum_i |x_i|^2}`
    (what ``clip_by_global_norm`` clips; the public ``optim.global_norm`` is this function
    with optax's deprecation warning).

    Computed in float32, or wider for wider leaves; ``None`` and other leaves that are not
    arrays count for nothing. The same value as ``optax.global_norm`` for float32 leaves (the
    same squares, summed in the same order); optax sums bf16 or float16 leaves in their own
    dtype.

    Raises:
      TypeError: a leaf is an integer or boolean array (not a gradient; optax counts it).
    """
    check_float_updates(updates, "updates")
    return jnp.sqrt(tree_sq_norm(updates))
