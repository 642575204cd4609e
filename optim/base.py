"""The optimizer protocol, ``apply_updates``, ``chain`` and the optax bridge.

An optimizer (a *gradient transformation*) is a pytree with two methods, as in optax:

    state = tx.init(params)
    updates, state = tx.update(grads, state, params=None, **extra_args)
    params = optim.apply_updates(params, updates)

Its float hyperparameters are float32 array leaves and its structure is static, so a jitted
function that takes ``tx`` as an argument compiles once for every learning rate, and
``jax.vmap`` over a hyperparameter needs no wrapper.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax import (  # optax's protocol types, shared so that isinstance checks agree
    GradientTransformation as GradientTransformation,
)
from optax import (
    GradientTransformationExtraArgs as GradientTransformationExtraArgs,
)

from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_float_updates,
    check_params,
    check_same_structure,
    is_array,
    is_trainable,
    keystr,
    leaves_with_paths,
    map_arrays,
    python_float_as_array,
)


class Transformation(optax.GradientTransformationExtraArgs):
    """The base of every transformation here: a pytree dataclass that is also optax's
    ``GradientTransformationExtraArgs``.

    Subclasses are ``@pytree_dataclass`` classes defining ``init`` and ``update``; their fields
    (float hyperparameters, inner transformations) are the pytree, not the tuple. The tuple
    face is optax's: ``init, update = tx`` and ``tx[0]`` work, and optax's combinators
    (``optax.chain``, ``optax.MultiSteps``, ``optax.with_extra_args_support``) recognise the
    object by ``isinstance`` and pass extra arguments such as ``value=`` through to ``update``.
    Equality and hashing are by identity, as for any object holding arrays.

    Attributes:
      init: the method ``init(params) -> state``: the initial state for a pytree of
        parameters.
      update: the method ``update(updates, state, params=None, **extra_args) -> (updates,
        state)``: the transformed updates (a pytree with the structure of ``updates``) and the
        new state. ``params`` is needed by some transformations (weight decay, lookahead);
        ``extra_args`` (such as ``value=``, the loss) are passed on to those that use them.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> from optim._pytree import pytree_dataclass
      >>> @pytree_dataclass
      ... class Double(optim.Transformation):
      ...     def init(self, params):
      ...         return optim.EmptyState()
      ...     def update(self, updates, state, params=None, **extra_args):
      ...         return {k: 2 * v for k, v in updates.items()}, state
      >>> tx = Double()
      >>> init, update = tx  # the tuple face of optax's GradientTransformation
      >>> updates, _ = update({"w": jnp.array([1.0, -2.0])}, init({"w": jnp.zeros(2)}))
      >>> print(updates["w"])
      [ 2. -4.]
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Transformation:
        del args, kwargs  # the dataclass __init__ sets the fields
        return tuple.__new__(cls, ())

    def __len__(self) -> int:
        return 2

    def __iter__(self) -> Iterator[Any]:
        return iter((self.init, self.update))

    def __getitem__(self, index: Any) -> Any:
        return (self.init, self.update)[index]

    def __getnewargs__(self) -> tuple[()]:
        return ()  # copy and pickle rebuild from the fields, not from (init, update)

    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def init(self, params: PyTree) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define init")

    def update(
        self, updates: PyTree, state: Any, params: PyTree | None = None, **extra_args: Any
    ) -> tuple[PyTree, Any]:
        raise NotImplementedError(f"{type(self).__name__} does not define update")


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


# The kinds of moment a state record declares in its ``moment_slots`` class attribute, a
# read-only mapping field -> kind: the slots ``optim.with_state_dtype`` may store in bfloat16 or
# 8-bit codes. A signed moment (an average of gradients) is coded on the signed map; a
# non-negative one (an average of squared gradients) on the unsigned map, one more bit finer.
SIGNED = "signed"
UNSIGNED = "unsigned"


@suggest_keywords
def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    r"""Add ``updates`` to ``params``: :math:`\theta \leftarrow \theta + u`.

    The sum is computed in at least float32 and cast back to each parameter's dtype, so bf16
    parameters stay bf16. A Python ``float`` parameter with an update becomes a 0-d array, as
    in optax. Other leaves that are not floating arrays (``None``, Python ints, functions) and
    leaves whose update is ``None`` are returned untouched.

    Args:
      params: a pytree of parameters (floating arrays; other leaves pass through).
      updates: a pytree with the structure of ``params`` (as a transformation's ``update``
        returns it): floating arrays, or ``None`` at leaves to leave untouched.

    Returns:
      A pytree with the structure of ``params``: each floating leaf plus its update, in the
      parameter's dtype.

    Raises:
      TypeError: a parameter is an integer or boolean array; an update is an integer or
        boolean array, or complex where its parameter is real (its imaginary part would be
        dropped).
      ValueError: ``updates`` does not have the leaf paths and shapes of ``params``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([0.5], jnp.bfloat16)}
      >>> updates = {"w": jnp.array([0.5, 0.5]), "b": jnp.array([0.25])}
      >>> new_params = optim.apply_updates(params, updates)
      >>> print(new_params["w"], new_params["b"].dtype)
      [ 1.5 -1.5] bfloat16
    """
    check_params(params)
    check_same_structure(updates, params, "updates", "params")
    check_float_updates(updates, "updates")
    for (path, u), (_, p) in zip(
        leaves_with_paths(updates), leaves_with_paths(params), strict=True
    ):
        if is_array(u) and jnp.iscomplexobj(u) and is_trainable(p) and not jnp.iscomplexobj(p):
            raise TypeError(
                f"updates{keystr(path)} is complex ({u.dtype}) but params{keystr(path)} is real "
                f"({p.dtype}); adding it would drop its imaginary part"
            )
    leaves, treedef = jax.tree.flatten(params, is_leaf=lambda x: x is None)
    update_leaves = jax.tree.leaves(updates, is_leaf=lambda x: x is None)

    def add(p: Any, u: Any) -> Any:
        p = python_float_as_array(p) if u is not None else p
        if not is_trainable(p) or u is None:
            return p
        total = jnp.promote_types(jnp.promote_types(p.dtype, u.dtype), jnp.float32)
        return (jnp.asarray(p, total) + jnp.asarray(u, total)).astype(p.dtype)

    return jax.tree.unflatten(
        treedef, [add(p, u) for p, u in zip(leaves, update_leaves, strict=True)]
    )


@pytree_dataclass
class Identity(Transformation):
    """Leaves updates unchanged: :math:`u \\leftarrow g`."""

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    def init(self, params: PyTree) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        return updates, state


@suggest_keywords
def identity() -> Identity:
    """A transformation that returns its input unchanged (``optax.identity``).

    Returns:
      An ``Identity`` transformation (an :class:`optim.GradientTransformation`) with an empty
      state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.identity()
      >>> grads = {"w": jnp.array([3.0, 4.0])}
      >>> updates, state = tx.update(grads, tx.init({"w": jnp.zeros(2)}))
      >>> print(updates["w"])
      [3. 4.]
    """
    return Identity()


@pytree_dataclass
class SetToZero(Transformation):
    """Replaces every update by zeros: :math:`u \\leftarrow 0` (freezes parameters)."""

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    def init(self, params: PyTree) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        return map_arrays(jnp.zeros_like, updates), state


@suggest_keywords
def set_to_zero() -> SetToZero:
    """A transformation that zeroes every update (``optax.set_to_zero``).

    With :func:`optim.multi_transform` (or :func:`optim.partition`) it freezes a group of
    parameters.

    Returns:
      A ``SetToZero`` transformation (an :class:`optim.GradientTransformation`) with an empty
      state; leaves that are not floating arrays stay as they are.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.set_to_zero()
      >>> grads = {"w": jnp.array([3.0, 4.0])}
      >>> updates, state = tx.update(grads, tx.init({"w": jnp.zeros(2)}))
      >>> print(updates["w"])
      [0. 0.]
    """
    return SetToZero()


@pytree_dataclass
class OptaxTransform(Transformation):
    """An optax ``GradientTransformation`` used inside our combinators.

    Its ``init``/``update`` functions are static metadata (optax keeps hyperparameters in
    closures), so re-creating it recompiles as optax does; its state is optax's own.
    :func:`optim.chain` and the other combinators wrap optax's transformations in it; it is
    rarely built directly.

    Attributes:
      transformation: the wrapped optax ``GradientTransformation`` (a NamedTuple of ``init``
        and ``update`` functions), or any object with ``init`` and ``update`` methods.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import optim
      >>> tx = optim.chain(optax.scale(2.0))
      >>> type(tx.transforms[0]).__name__
      'OptaxTransform'
      >>> updates, _ = tx.update({"w": jnp.array([1.0, -2.0])}, tx.init({"w": jnp.zeros(2)}))
      >>> print(updates["w"])
      [ 2. -4.]
    """

    transformation: Any = static()

    def init(self, params: PyTree) -> Any:
        return self.transformation.init(params)

    def update(self, updates, state, params=None, **extra_args):
        import optax  # optax is a dependency, imported here to keep `import optim` light

        return optax.with_extra_args_support(self.transformation).update(
            updates, state, params, **extra_args
        )


@pytree_dataclass
class PytreeTransform(OptaxTransform):
    """A transformation of another library, or the user's own, that is a registered pytree
    (a flax struct, an equinox module, a dataclass registered with JAX): its leaves stay
    leaves, so re-creating it with new values does not recompile.

    Attributes:
      transformation: the wrapped object, with ``init`` and ``update`` methods; a pytree
        child, not static metadata.
    """

    transformation: Any


def _is_pytree_node(tx: Any) -> bool:
    """A registered pytree with structure of its own (not a tuple: optax's NamedTuples hold
    functions as leaves)."""
    if isinstance(tx, tuple):
        return False
    leaves = jax.tree.leaves(tx)
    return not (len(leaves) == 1 and leaves[0] is tx)


def as_transformation(tx: Any, name: str) -> Any:
    """Ours as they are; optax's (a NamedTuple of functions) wrapped in ``OptaxTransform``.

    A registered pytree with structure of its own (an equinox module, a flax struct) is
    wrapped in ``PytreeTransform`` instead, so that its leaves stay leaves.

    Args:
      tx: the object to use as a transformation: it must have callable ``init`` and
        ``update`` attributes.
      name: how the argument is named in the error (``"inner"``, ``"chain argument 0"``).

    Returns:
      A :class:`optim.Transformation`: ``tx`` itself, an ``OptaxTransform`` or a
      ``PytreeTransform``.

    Raises:
      TypeError: ``tx`` has no callable ``init`` and ``update``; for a factory passed
        uncalled (``optim.adam``), the error says to call it.

    Examples:
      >>> import optax
      >>> import optim
      >>> from optim.base import as_transformation
      >>> type(as_transformation(optax.scale(2.0), "inner")).__name__
      'OptaxTransform'
      >>> try:
      ...     as_transformation(optim.adam, "inner")
      ... except TypeError as e:
      ...     print(str(e).split("; ")[1])
      call the factory to build one, e.g. optim.adam(1e-3)
    """
    if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
        factory = getattr(tx, "func", tx)  # functools.partial (nadam) holds a function
        hint = (
            f" {factory.__name__}; call the factory to build one, e.g. optim.adam(1e-3)"
            if isinstance(factory, (type, types.FunctionType))
            else ""
        )
        raise TypeError(
            f"{name} must be a gradient transformation with init and update methods "
            f"(from optim or optax), got {type(tx).__name__}{hint}"
        )
    if isinstance(tx, Transformation):
        return tx
    if _is_pytree_node(tx):
        return PytreeTransform(tx)
    return OptaxTransform(tx)  # optax's NamedTuple of functions, or any object with both


@pytree_dataclass
class Chain(Transformation):
    r"""Apply transformations in sequence: :math:`u \leftarrow T_n(\dots T_1(g))`.

    The state is a tuple with one entry per transformation, as in ``optax.chain``. Built by
    :func:`optim.chain`.

    Attributes:
      transforms: the transformations, applied in order: each one of ours, or an optax one
        wrapped in :class:`optim.OptaxTransform`.
    """

    transforms: tuple[Any, ...]

    def init(self, params: PyTree) -> tuple[Any, ...]:
        check_params(params)
        return tuple(t.init(params) for t in self.transforms)

    def update(self, updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(self.transforms):
            raise ValueError(
                f"state does not belong to this chain of {len(self.transforms)} "
                f"transformations (got {type(state).__name__} of length "
                f"{len(state) if isinstance(state, tuple) else '-'}); create it with init"
            )
        check_float_updates(updates)
        new_state = []
        for i, (t, s) in enumerate(zip(self.transforms, state, strict=True)):
            try:
                updates, s = t.update(updates, s, params, **extra_args)
            except AttributeError as e:
                if e.obj is not s:  # not a state record lacking a field: a genuine error
                    raise
                raise TypeError(
                    f"state[{i}] is a {type(s).__name__}, which {type(t).__name__} cannot use "
                    f"(it has no field {e.name!r}); pass the state this optimizer's init "
                    "returned, not another optimizer's"
                ) from e
            new_state.append(s)
        return updates, tuple(new_state)


@suggest_keywords
def chain(*transforms: Any) -> Chain:
    r"""Compose transformations, applied left to right (``optax.chain``):
    :math:`u \leftarrow T_n(\dots T_1(g))`.

    Each may be one of ours or an optax ``GradientTransformation`` (wrapped in
    :class:`optim.OptaxTransform`). ``update``'s ``params`` and extra arguments (``value=``)
    are passed to every transformation.

    Args:
      *transforms: the transformations, in the order they apply: objects with ``init`` and
        ``update`` methods (ours, optax's, or a registered pytree such as an equinox module).
        None at all gives a chain that leaves updates unchanged.

    Returns:
      A :class:`optim.Chain` (an :class:`optim.GradientTransformation`) whose state is a tuple
      with one entry per transformation, as in ``optax.chain``.

    Raises:
      TypeError: an argument has no ``init`` and ``update`` methods (a factory such as
        ``optim.adam`` passed uncalled, say); the error names its position.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(learning_rate=0.1))
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> len(state)
      2
      >>> updates, state = tx.update({"w": jnp.array([3.0, 4.0])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.94 -2.08]
    """
    return Chain(
        tuple(as_transformation(t, f"chain argument {i}") for i, t in enumerate(transforms))
    )


def require_params(params: PyTree, name: str, why: str = "") -> None:
    """Raise ``ValueError`` if ``update`` was called without the ``params`` that ``name``
    needs.

    Args:
      params: the ``params`` argument ``update`` received.
      name: the transformation, named in the error (its factory's name).
      why: an optional reason, inserted after "needs params" (e.g. ``" (for the weight
        decay)"``).

    Returns:
      None.

    Raises:
      ValueError: ``params`` is None.

    Examples:
      >>> from optim.base import require_params
      >>> require_params(None, "lookahead")
      Traceback (most recent call last):
      ValueError: lookahead needs params: call update(grads, state, params)
    """
    if params is None:
        raise ValueError(f"{name} needs params{why}: call update(grads, state, params)")


def check_updates(
    updates: PyTree,
    slot: PyTree,
    reference_name: str = "the optimizer state (built by init from params)",
) -> None:
    """Check that incoming updates are floating arrays with the structure and shapes of a
    per-leaf state slot.

    Args:
      updates: the updates ``update`` received (named ``grads`` in the error).
      slot: a pytree with the structure of the params (a state slot, or the params).
      reference_name: how ``slot`` is named in the error; ``"params"`` when the reference is
        the parameters themselves.

    Returns:
      None.

    Raises:
      ValueError: the structures or shapes differ (the error names the first leaf that does).
      TypeError: an update is an integer or boolean array.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim.base import check_updates
      >>> check_updates({"w": jnp.zeros(3)}, {"w": jnp.zeros(2)}, "params")
      Traceback (most recent call last):
      ValueError: grads['w'] has shape (3,) but params['w'] has shape (2,).
    """
    check_same_structure(updates, slot, "grads", reference_name)
    check_float_updates(updates)
