"""Optimizer state stored in bfloat16 or 8-bit block-wise codes (``optim.quantized``'s
implementation; its docstring describes the format)."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from optim._hyper import check_int
from optim._pytree import pytree_dataclass, static
from optim._tree import PyTree, keystr, upcast
from optim._types import ScalarOrSchedule
from optim.base import Transformation, as_transformation
from optim.optimizers import _adam, _sgd
from optim.optimizers._adam import ScaleByAdamState
from optim.optimizers._sign import ScaleByLionState
from optim.optimizers._sign import lion as _lion
from optim.precision._blockwise import BLOCK_SIZE, MIN_SIZE, QuantizedArray, dequantize, quantize
from optim.transforms._accumulation import TraceState

# The state records whose per-parameter slots can be stored compactly: field -> signed map?
# First moments are signed; second moments are non-negative (the unsigned map, one more bit).
_SLOTS: dict[type, dict[str, bool]] = {
    ScaleByAdamState: {"mu": True, "nu": False},
    ScaleByLionState: {"mu": True},
    TraceState: {"trace": True},
}


_SUPPORTED = (
    "the moments of scale_by_adam (adam, adamw, nadam, nadamw), scale_by_lion (lion) and "
    "trace (sgd with momentum)"
)


@dataclasses.dataclass(frozen=True)
class Int8Blockwise:
    """8-bit block-wise storage (Dettmers et al., 2022); pass it as ``state_dtype``.

    ``block_size`` elements share one float32 scale (2048, the paper's choice, costs 0.002
    bytes per element; 256 halves the worst-case coding error of an element next to a large
    one at 0.016 bytes); leaves with fewer than ``min_size`` elements (biases, norms) keep
    float32 state, where 8 bits would save little and cost accuracy.
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


def _storable(node: Any) -> bool:
    return type(node) in _SLOTS


def _map_slots(state: PyTree, fn: Callable[[Any, bool], Any]) -> PyTree:
    """``state`` with ``fn(leaf, signed)`` applied to each leaf of each storable moment."""

    def slot(tree: PyTree, signed: bool) -> PyTree:
        return jax.tree.map(
            lambda x: fn(x, signed), tree, is_leaf=lambda x: isinstance(x, QuantizedArray)
        )

    def record(node: Any) -> Any:
        if not _storable(node):
            return node
        fields = _SLOTS[type(node)]
        return node._replace(**{f: slot(getattr(node, f), s) for f, s in fields.items()})

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


def with_state_dtype(
    tx: Any,
    state_dtype: Any,
    *,
    block_size: int | None = None,
    min_size: int | None = None,
) -> Any:
    """``tx`` with its moments stored as ``state_dtype``; see ``WithStateDtype``.

    Args:
      tx: an optimizer whose per-parameter state consists of moments listed in the module
        docstring (``adam``, ``adamw``, ``lion``, ``sgd`` with momentum, or chains of them
        with stateless transformations such as clipping).
      state_dtype: ``None`` or ``"float32"`` (``tx`` itself is returned), ``"bfloat16"``,
        ``"int8"``, or an ``Int8Blockwise``.
      block_size: elements per scale for ``"int8"`` (default 2048).
      min_size: leaves with fewer elements keep float32 state under ``"int8"`` (default 4096).

    Raises:
      ValueError: ``state_dtype`` is none of those; ``tx`` keeps per-parameter float state
        other than those moments (the message names the building block), or none at all, or
        is already a ``with_state_dtype``; a moment is complex.
    """
    storage = _storage(state_dtype, block_size, min_size)
    if storage is None:
        return tx
    tx = as_transformation(tx, "tx")
    if isinstance(tx, WithStateDtype):
        raise ValueError(f"tx already stores its state as {tx.storage.name}")
    try:
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
            for field in _SLOTS[type(leaf)]:
                for sub, x in jax.tree_util.tree_flatten_with_path(getattr(leaf, field))[0]:
                    if jnp.issubdtype(x.dtype, jnp.complexfloating):
                        raise ValueError(
                            f"state_dtype={name!r} stores real moments only; "
                            f"state{keystr(path)}.{field}{keystr(sub)} is {x.dtype} (complex "
                            "parameters): use state_dtype=None for them"
                        )
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
    block = re.sub(r"(?<!^)(?=[A-Z])", "_", owner.__name__.removesuffix("State")).lower()
    package = owner.__module__.split(".")[0]
    if package != "optim":  # e.g. optax's adam: its state records are not optim's
        return f"{package}'s {block} (use optim's own {block})"
    return f"{block} (state record {owner.__module__}.{owner.__qualname__})"


def _one_storage_setting(state_dtype: Any, **dtypes: Any) -> None:
    given = [name for name, dtype in dtypes.items() if dtype is not None]
    if state_dtype is not None and given:
        raise ValueError(
            f"{given[0]} and state_dtype both set how the state is stored; give one of them"
        )


def adam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
    state_dtype: Any = None,
    block_size: int | None = None,
    min_size: int | None = None,
) -> Any:
    r"""``optim.adam`` (Kingma & Ba, 2015) with its moments stored as ``state_dtype``.

    .. math:: \theta_{t+1} = \theta_t - \eta_t \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}}
        + \epsilon)

    computed in float32; :math:`m` is stored on the signed map, :math:`v` on the unsigned one
    (see ``with_state_dtype`` for ``state_dtype``, ``block_size``, ``min_size``).
    """
    _one_storage_setting(state_dtype, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    tx = _adam.adam(
        learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype
    )
    return with_state_dtype(tx, state_dtype, block_size=block_size, min_size=min_size)


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
    state_dtype: Any = None,
    block_size: int | None = None,
    min_size: int | None = None,
) -> Any:
    r"""``optim.adamw`` (Loshchilov & Hutter, 2019) with its moments stored as ``state_dtype``.

    .. math:: \theta_{t+1} = \theta_t - \eta_t\big(\hat m_t / (\sqrt{\hat v_t +
        \epsilon_{root}} + \epsilon) + \lambda \theta_t\big)

    computed in float32 (see ``adam`` and ``with_state_dtype``).

    >>> import optim
    >>> tx = optim.quantized.adamw(1e-3, weight_decay=0.1, state_dtype="int8")
    """
    _one_storage_setting(state_dtype, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    tx = _adam.adamw(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        weight_decay,
        mask,
        nesterov=nesterov,
        nu_dtype=nu_dtype,
    )
    return with_state_dtype(tx, state_dtype, block_size=block_size, min_size=min_size)


def lion(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-3,
    mask: Any = None,
    *,
    state_dtype: Any = None,
    block_size: int | None = None,
    min_size: int | None = None,
) -> Any:
    r"""``optim.lion`` (Chen et al., 2023) with its momentum stored as ``state_dtype``.

    .. math:: \theta_{t+1} = \theta_t - \eta_t\big(\operatorname{sign}(\beta_1 m_{t-1} +
        (1-\beta_1) g_t) + \lambda\theta_t\big),\quad m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t

    (:math:`m` on the signed map; see ``with_state_dtype``).
    """
    _one_storage_setting(state_dtype, mu_dtype=mu_dtype)
    tx = _lion(learning_rate, b1, b2, mu_dtype, weight_decay, mask)
    return with_state_dtype(tx, state_dtype, block_size=block_size, min_size=min_size)


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: Any = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    *,
    state_dtype: Any = None,
    block_size: int | None = None,
    min_size: int | None = None,
) -> Any:
    r"""``optim.sgd`` (Robbins & Monro, 1951) with its momentum stored as ``state_dtype``.

    .. math:: m_t = g_t + \mu m_{t-1},\quad \theta_{t+1} = \theta_t - \eta_t m_t

    (:math:`m` on the signed map; a ``state_dtype`` other than float32 needs ``momentum``).
    """
    _one_storage_setting(state_dtype, accumulator_dtype=accumulator_dtype)
    tx = _sgd.sgd(learning_rate, momentum, nesterov, accumulator_dtype)
    return with_state_dtype(tx, state_dtype, block_size=block_size, min_size=min_size)


def _nbytes(x: Any) -> int:
    return math.prod(x.shape) * jnp.dtype(x.dtype).itemsize


def state_bytes(state: PyTree) -> int:
    """Total bytes of the arrays in ``state``: codes, scales, float moments and counters.

    Works on concrete arrays, tracers and ``jax.ShapeDtypeStruct`` (``jax.eval_shape(tx.init,
    params)`` measures a state without building it). Sharded arrays count their global size.
    """
    return sum(_nbytes(x) for x in jax.tree.leaves(state) if hasattr(x, "shape"))


def bytes_per_parameter(state: PyTree, params: PyTree) -> float:
    """``state_bytes(state)`` divided by the number of floating-point parameters in ``params``.

    Raises:
      ValueError: ``params`` holds no floating-point array.
    """
    count = sum(math.prod(x.shape) for x in jax.tree.leaves(params) if _is_float(x))
    if count == 0:
        raise ValueError("params holds no floating-point array to count")
    return state_bytes(state) / count
