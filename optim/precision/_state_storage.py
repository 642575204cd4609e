"""Optimizer state stored in bfloat16 or 8-bit block-wise codes (``optim.quantized``'s
implementation; its docstring describes the format)."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from optim._hyper import check_int
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass, static
from optim._tree import PyTree, keystr, upcast
from optim.base import SIGNED, UNSIGNED, Transformation, as_transformation
from optim.precision._blockwise import BLOCK_SIZE, MIN_SIZE, QuantizedArray, dequantize, quantize

_SUPPORTED = (
    "the state records that declare moment_slots: those of adam, adamw, nadam, nadamw, lamb, "
    "amsgrad, adabelief, lion, rmsprop (not centered), sgd or rmsprop with momentum, signum "
    "and ema"
)


@dataclasses.dataclass(frozen=True)
class Int8Blockwise:
    """8-bit block-wise storage (Dettmers et al., 2022); pass it as ``state_dtype``.

    ``block_size`` elements share one float32 scale (2048, the paper's choice, costs 0.002
    bytes per element; 256 halves the worst-case coding error of an element next to a large
    one at 0.016 bytes); leaves with fewer than ``min_size`` elements (biases, norms) keep
    float32 state, where 8 bits would save little and cost accuracy.

    Args:
      block_size: elements sharing one float32 scale, an int >= 1 (default 2048).
      min_size: leaves with fewer elements keep float32 moments, an int >= 0 (default 4096;
        0 codes every leaf).

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> storage = optim.quantized.Int8Blockwise(block_size=256, min_size=0)
      >>> tx = optim.with_state_dtype(optim.adam(1e-3), storage)
      >>> mu = tx.init({"w": jnp.ones(512)})[0].mu["w"]
      >>> mu.codes.dtype, mu.absmax.shape
      (dtype('int8'), (2,))
    """

    block_size: int = BLOCK_SIZE
    min_size: int = MIN_SIZE
    name: ClassVar[str] = "int8"

    def __post_init__(self) -> None:
        for field, low in (("block_size", 1), ("min_size", 0)):
            check_int(getattr(self, field), field, low=low)

    def encode(self, x: jax.Array, signed: bool) -> jax.Array | QuantizedArray:
        if x.size < self.min_size:
            return x
        return quantize(x, signed=signed, block_size=self.block_size)

    def decode(self, stored: jax.Array | QuantizedArray) -> jax.Array:
        if isinstance(stored, QuantizedArray):
            return dequantize(stored, block_size=self.block_size)
        return stored


@dataclasses.dataclass(frozen=True)
class _BFloat16:
    """Plain bfloat16 storage (round to nearest), decoded to float32 for the arithmetic."""

    name: ClassVar[str] = "bfloat16"

    def encode(self, x: jax.Array, signed: bool) -> jax.Array:
        del signed
        return x.astype(jnp.bfloat16)

    def decode(self, stored: jax.Array) -> jax.Array:
        return upcast(stored)


def _storage(state_dtype: Any, block_size: int | None, min_size: int | None) -> Any:
    """The storage object that ``state_dtype`` asks for; None for the optimizer's own float32."""
    if isinstance(state_dtype, Int8Blockwise):
        if block_size is not None or min_size is not None:
            raise ValueError(
                "block_size and min_size are set by the Int8Blockwise given as state_dtype; "
                "do not pass them as well"
            )
        return state_dtype
    try:
        name = "float32" if state_dtype is None else jnp.dtype(state_dtype).name
    except (TypeError, ValueError):
        name = None
    if name not in ("float32", "bfloat16", "int8"):
        raise ValueError(
            "state_dtype must be None, 'float32', 'bfloat16', 'int8' or an "
            f"optim.quantized.Int8Blockwise, got {state_dtype!r}"
        )
    if name != "int8" and (block_size is not None or min_size is not None):
        raise ValueError(
            f"block_size and min_size apply to state_dtype='int8' only, got {state_dtype!r}"
        )
    if name == "int8":
        return Int8Blockwise(
            BLOCK_SIZE if block_size is None else block_size,
            MIN_SIZE if min_size is None else min_size,
        )
    return _BFloat16() if name == "bfloat16" else None


def _moment_slots(node: Any) -> Mapping[str, str] | None:
    """The moment slots a state record declares (field -> SIGNED or UNSIGNED), or None."""
    if not (isinstance(node, tuple) and hasattr(node, "_fields")):
        return None
    slots = getattr(type(node), "moment_slots", None)
    if slots is None:
        return None
    for field, kind in slots.items():
        if field not in node._fields or kind not in (SIGNED, UNSIGNED):
            raise ValueError(
                f"{type(node).__qualname__}.moment_slots must map fields of the record to "
                f"{SIGNED!r} or {UNSIGNED!r}, got {field!r}: {kind!r}"
            )
    return slots


def _storable(node: Any) -> bool:
    return _moment_slots(node) is not None


def _map_slots(state: PyTree, fn: Callable[[Any, bool], Any]) -> PyTree:
    """``state`` with ``fn(leaf, signed)`` applied to each leaf of each storable moment."""

    def slot(tree: PyTree, signed: bool) -> PyTree:
        return jax.tree.map(
            lambda x: fn(x, signed), tree, is_leaf=lambda x: isinstance(x, QuantizedArray)
        )

    def record(node: Any) -> Any:
        slots = _moment_slots(node)
        if slots is None:
            return node
        return node._replace(
            **{f: slot(getattr(node, f), kind == SIGNED) for f, kind in slots.items()}
        )

    return jax.tree.map(record, state, is_leaf=_storable)


@pytree_dataclass
class WithStateDtype(Transformation):
    r"""Run ``inner`` on float32 moments that are stored compactly between steps.

    With :math:`E` the storage's encoder and :math:`D` its decoder (a cast to bfloat16 and back;
    or block-wise quantization, :math:`E(x)_i = \arg\min_j |x_i / a_b - q_j|` with
    :math:`a_b = \max_{i \in b} |x_i|`, and :math:`D(c)_i = q_{c_i} a_b`), each step is

    .. math::
        s_{t-1} = D(S_{t-1}),\quad (u_t, s_t) = T(g_t, s_{t-1}),\quad S_t = E(s_t),

    where :math:`T` is ``inner``'s own update, run in float32, and :math:`S` the stored state
    (Dettmers et al., 2022, "8-bit Optimizers via Block-wise Quantization", Algorithm 1). The
    update :math:`u_t` uses the freshly computed float32 moments; only what is kept for the
    next step is coded.

    Built by :func:`optim.with_state_dtype`, which checks that ``inner``'s state can be stored.

    Attributes:
      inner: the wrapped gradient transformation, whose moments are stored.
      storage: how moments are stored (static): an :class:`Int8Blockwise`, or the bfloat16
        storage (a cast to bfloat16, decoded to float32).
    """

    inner: Any
    storage: Any = static()

    def init(self, params: PyTree) -> Any:
        # Under jit XLA would constant-fold the encoding of the constant initial moments:
        # seconds of compile time per million parameters (137 s at 16.8M).
        state = jax.lax.optimization_barrier(self.inner.init(params))
        _check_state(state, params, self.storage.name)
        return _map_slots(state, self.storage.encode)

    def update(self, updates, state, params=None, **extra_args):
        decoded = _map_slots(state, lambda stored, signed: self.storage.decode(stored))
        updates, state = self.inner.update(updates, decoded, params, **extra_args)
        return updates, _map_slots(state, self.storage.encode)


_PROBE = jax.ShapeDtypeStruct((3, 5), jnp.float32)


@suggest_keywords
def with_state_dtype(
    tx: Any,
    state_dtype: Any,
    *,
    block_size: int | None = None,
    min_size: int | None = None,
) -> Any:
    """Store the moments of ``tx`` in bfloat16 or 8-bit block-wise codes between steps.

    Every step decodes the stored moments to float32, runs ``tx``'s own update and encodes
    the new moments (see ``WithStateDtype`` for the update rule). The moments are the slots
    that ``tx``'s state records declare in their ``moment_slots`` class attribute
    (``optim.quantized``'s docstring lists the records and their optimizers); a chain may add
    stateless transformations such as clipping or weight decay.

    Args:
      tx: the optimizer whose moments to store; an optax ``GradientTransformation`` built
        from optim's building blocks (optax's own state records declare no moments).
      state_dtype: ``None`` or ``"float32"`` (``tx`` itself is returned), ``"bfloat16"``,
        ``"int8"``, or an ``Int8Blockwise`` (which carries ``block_size`` and ``min_size``).
      block_size: elements sharing one float32 scale under ``"int8"`` (default 2048).
      min_size: under ``"int8"``, leaves with fewer elements keep float32 moments (default
        4096).

    Returns:
      A ``WithStateDtype`` transformation (``tx`` itself for float32): its state has the
      structure and field names of ``tx``'s, with each moment leaf a bfloat16 array or a
      ``QuantizedArray(codes, absmax)``.

    Raises:
      ValueError: ``state_dtype`` is none of those, or ``block_size``/``min_size`` are given
        with another ``state_dtype`` or with an ``Int8Blockwise``; ``tx`` keeps per-parameter
        float state outside the declared moments (the message names the building block), or
        no moment at all, or already stores its state compactly; a moment is complex, or
        ``tx`` already sets its moments' dtype (``mu_dtype``, ``nu_dtype`` or
        ``accumulator_dtype``).
      TypeError: ``tx`` is not a gradient transformation; ``block_size`` or ``min_size`` is
        not an int.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> params = {"w": jnp.ones((64, 128))}
      >>> tx = optim.with_state_dtype(optim.adamw(1e-3, weight_decay=0.1), "int8")
      >>> state = tx.init(params)
      >>> type(state[0].mu["w"]).__name__, state[0].mu["w"].codes.dtype
      ('QuantizedArray', dtype('int8'))
      >>> optim.quantized.bytes_per_parameter(state, params)  # float32 moments: 8.0
      2.00439453125
      >>> updates, state = tx.update(params, state, params)
      >>> bf16 = optim.with_state_dtype(optim.lion(1e-4), "bfloat16")
      >>> bf16.init(params)[0].mu["w"].dtype
      dtype(bfloat16)
    """
    storage = _storage(state_dtype, block_size, min_size)
    if storage is None:
        return tx
    tx = as_transformation(tx, "tx")
    if isinstance(tx, WithStateDtype):
        raise ValueError(f"tx already stores its state as {tx.storage.name}")
    try:
        with warnings.catch_warnings():  # about the probe, not the user's params
            warnings.simplefilter("ignore")
            probe = jax.eval_shape(tx.init, _PROBE)
    except Exception:  # an early check only (a mask tree fits the real params alone); init checks
        probe = None
    if probe is not None:
        _check_state(probe, _PROBE, storage.name)
    return WithStateDtype(tx, storage)


def _is_float(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)


def _check_state(state: PyTree, params: PyTree, name: str) -> None:
    """Raise ``ValueError`` unless the per-parameter float state is made of storable moments."""
    shapes = {tuple(x.shape) for x in jax.tree.leaves(params) if _is_float(x) and x.shape}
    found = False
    for path, leaf in jax.tree_util.tree_flatten_with_path(state, is_leaf=_storable)[0]:
        if _storable(leaf):
            found = True
            for field in _moment_slots(leaf):
                for sub, x in jax.tree_util.tree_flatten_with_path(getattr(leaf, field))[0]:
                    where = f"state{keystr(path)}.{field}{keystr(sub) if sub else ''}"
                    _check_moment(x, where, name)
        elif _is_float(leaf) and tuple(leaf.shape) in shapes:
            raise ValueError(
                f"state_dtype={name!r} is not available for {_owner(state, path)}: its state "
                f"holds a per-parameter float slot (state{keystr(path)}) that {name} storage "
                f"does not handle. It applies to {_SUPPORTED}."
            )
    if not found:
        raise ValueError(
            f"state_dtype={name!r}: this optimizer keeps no moment to store; {name} storage "
            f"applies to {_SUPPORTED}."
        )


def _check_moment(x: Any, where: str, name: str) -> None:
    """A moment to store must be real and in the optimizer's own dtype (float32 or wider)."""
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(
            f"state_dtype={name!r} stores real moments only; {where} is {x.dtype} (complex "
            "parameters): use state_dtype=None for them"
        )
    if jnp.issubdtype(x.dtype, jnp.floating) and jnp.finfo(x.dtype).bits < 32:
        # Moments default to float32 or wider: a narrower one was asked for by the optimizer.
        raise ValueError(
            "the optimizer's own moment dtype (mu_dtype, nu_dtype or accumulator_dtype) and "
            f"state_dtype={name!r} both set how the state is stored: {where} is {x.dtype}; "
            "give one of them (leave the optimizer's dtype unset)"
        )


def _owner(state: PyTree, path: tuple[Any, ...]) -> str:
    """The building block whose state record (the innermost NamedTuple) holds ``path``."""
    node, owner = state, None
    for key in path:
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            owner = type(node)
        if isinstance(key, jax.tree_util.GetAttrKey):
            node = getattr(node, key.name)
        elif isinstance(key, jax.tree_util.SequenceKey):
            node = node[key.idx]
        elif isinstance(key, jax.tree_util.DictKey):
            node = node[key.key]
        else:
            break
    if owner is None:
        return "this optimizer"
    # CamelCase to snake_case, an acronym kept whole: ScaleByLBFGS -> scale_by_lbfgs.
    words = r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])"
    block = re.sub(words, "_", owner.__name__.removesuffix("State")).lower()
    package = owner.__module__.split(".")[0]
    if package != "optim":  # e.g. optax's adam: its state records are not optim's
        return f"{package}'s {block} (use optim's own {block})"
    return f"{block} (state record {owner.__module__}.{owner.__qualname__})"


def _nbytes(x: Any) -> int:
    return math.prod(x.shape) * jnp.dtype(x.dtype).itemsize


@suggest_keywords
def state_bytes(state: PyTree) -> int:
    """Total bytes of the arrays in ``state``: codes, scales, float moments and counters.

    Works on concrete arrays, tracers and ``jax.ShapeDtypeStruct`` (``jax.eval_shape(tx.init,
    params)`` measures a state without building it). Sharded arrays count their global size.

    Args:
      state: any pytree (an optimizer state, typically); leaves without a ``shape`` (Python
        numbers, None) count nothing.

    Returns:
      The number of bytes, an ``int``.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> params = {"w": jnp.ones(1000)}
      >>> optim.quantized.state_bytes(optim.adam(1e-3).init(params))  # count + mu + nu
      8004
      >>> optim.quantized.state_bytes(jax.eval_shape(optim.adam(1e-3).init, params))
      8004
    """
    return sum(_nbytes(x) for x in jax.tree.leaves(state) if hasattr(x, "shape"))


@suggest_keywords
def bytes_per_parameter(state: PyTree, params: PyTree) -> float:
    """``state_bytes(state)`` divided by the number of floating-point parameters in ``params``.

    Args:
      state: the optimizer state (or ``jax.eval_shape`` of its ``init``).
      params: the parameters ``state`` is for; their floating (and complex) array elements
        are counted.

    Returns:
      Bytes of state per parameter, a ``float`` (about 8 for Adam's float32 moments, 4 in
      bfloat16, 2 in 8-bit codes).

    Raises:
      ValueError: ``params`` holds no floating-point array.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> params = {"w": jnp.ones(1000)}
      >>> tx = optim.with_state_dtype(optim.adam(1e-3), "bfloat16")
      >>> optim.quantized.bytes_per_parameter(tx.init(params), params)
      4.004
    """
    count = sum(math.prod(x.shape) for x in jax.tree.leaves(params) if _is_float(x))
    if count == 0:
        raise ValueError("params holds no floating-point array to count")
    return state_bytes(state) / count
