r"""Mixed precision with float32 master weights and bfloat16 compute (Micikevicius et al., 2018,
"Mixed Precision Training").

``mixed_precision_loss(loss_fn, policy)`` casts the float32 parameters and the floating batch
leaves to ``policy.compute_dtype`` before the forward pass and returns the loss in float32. The
cast is part of the differentiated function, so its transpose casts the gradients back: they
arrive in float32 and the optimizer updates float32 weights::

    policy = optim.Policy.from_string("params=float32,compute=bfloat16,output=float32")
    result = optim.fit(optim.mixed_precision_loss(loss_fn, policy), params, tx, data, ...)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import check_flag
from optim._keywords import suggest_keywords
from optim._tree import (
    PyTree,
    is_array,
)

_DTYPE_ABBREVIATIONS = {
    "bf16": jnp.bfloat16,
    "f16": jnp.float16,
    "f32": jnp.float32,
    "full": jnp.float32,
    "f64": jnp.float64,
}


_KEYS = {
    "p": "param_dtype",
    "params": "param_dtype",
    "c": "compute_dtype",
    "compute": "compute_dtype",
    "o": "output_dtype",
    "output": "output_dtype",
}


def _real_float_dtype(value: Any, name: str) -> np.dtype:
    """A canonical real floating dtype from a dtype, a type or a name (``"bf16"`` too)."""
    if isinstance(value, str):
        if value == "half":
            raise ValueError(
                f"{name}: 'half' is ambiguous (bfloat16 or float16); write 'bfloat16' or 'float16'"
            )
        value = _DTYPE_ABBREVIATIONS.get(value, value)
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a floating dtype such as jnp.bfloat16 or 'float32', got {value!r}"
        ) from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{name} must be a real floating dtype, got {dtype}")
    return dtype


def _cast_floating(tree: PyTree, dtype: np.dtype) -> PyTree:
    """``tree`` with every real floating array cast to ``dtype``; other leaves untouched."""

    def cast(x: Any) -> Any:
        if is_array(x) and jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(dtype)
        return x

    return jax.tree.map(cast, tree)


@dataclasses.dataclass(frozen=True)
class Policy:
    """Which dtype parameters are stored in, computed in, and returned in (as in jmp).

    The casts touch real floating arrays only (JAX and NumPy): integer and boolean arrays
    (labels, token ids), complex arrays and non-array leaves (Python numbers, functions,
    static model configuration) pass through unchanged. A policy is hashable and compared by
    value. Each dtype is given as a real floating dtype, a type or a name (``"bfloat16"``,
    ``"bf16"``, ``"f32"``) and stored as a ``numpy.dtype``.

    Args:
      param_dtype: the dtype parameters are stored in (master weights), e.g. ``jnp.float32``.
      compute_dtype: the dtype the forward and backward passes run in, e.g. ``jnp.bfloat16``.
      output_dtype: the dtype of the outputs (``aux`` of :func:`optim.mixed_precision_loss`).

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> policy = optim.Policy(jnp.float32, jnp.bfloat16, jnp.float32)
      >>> policy == optim.Policy.from_string("params=float32,compute=bfloat16,output=float32")
      True
      >>> policy.cast_to_compute({"w": jnp.ones(2), "labels": jnp.arange(2)})["w"].dtype
      dtype(bfloat16)
    """

    param_dtype: Any
    compute_dtype: Any
    output_dtype: Any

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = _real_float_dtype(getattr(self, field.name), field.name)
            object.__setattr__(self, field.name, value)

    @classmethod
    def from_string(cls, spec: str) -> Policy:
        """Parse jmp's grammar: ``"params=float32,compute=bfloat16,output=float32"``.

        Keys ``params``/``p``, ``compute``/``c``, ``output``/``o``; dtypes by name or as
        ``bf16``, ``f16``, ``f32`` (``full``), ``f64``. Unspecified parameters are float32,
        compute follows params and output follows compute (``"c=bf16"`` is
        ``params=float32,compute=bfloat16,output=bfloat16``). A bare dtype (``"bf16"``) sets
        all three.
        """
        if not isinstance(spec, str):
            raise TypeError(f"spec must be a string, got {type(spec).__name__}")
        if "=" not in spec:
            dtype = _real_float_dtype(spec.strip(), "spec")
            return cls(dtype, dtype, dtype)
        given: dict[str, Any] = {}
        for part in spec.split(","):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in _KEYS:
                raise ValueError(
                    f"cannot parse {part!r} in policy {spec!r}: expected "
                    "key=dtype with key params (p), compute (c) or output (o)"
                )
            field = _KEYS[key]
            if field in given:
                raise ValueError(f"{field} is given twice in policy {spec!r}")
            given[field] = _real_float_dtype(value.strip(), field)
        param = given.get("param_dtype", jnp.dtype(jnp.float32))
        compute = given.get("compute_dtype", param)
        return cls(param, compute, given.get("output_dtype", compute))

    def __str__(self) -> str:
        return (
            f"params={self.param_dtype.name},compute={self.compute_dtype.name},"
            f"output={self.output_dtype.name}"
        )

    def cast_to_param(self, tree: PyTree) -> PyTree:
        """Floating arrays of ``tree`` cast to ``param_dtype``."""
        return _cast_floating(tree, self.param_dtype)

    def cast_to_compute(self, tree: PyTree) -> PyTree:
        """Floating arrays of ``tree`` cast to ``compute_dtype``."""
        return _cast_floating(tree, self.compute_dtype)

    def cast_to_output(self, tree: PyTree) -> PyTree:
        """Floating arrays of ``tree`` cast to ``output_dtype``."""
        return _cast_floating(tree, self.output_dtype)


@dataclasses.dataclass(frozen=True)
class MixedPrecisionLoss:
    """``loss_fn`` run in ``policy.compute_dtype`` (see ``mixed_precision_loss``).

    A frozen dataclass rather than a closure: equal wrappers hash equal, so ``fit`` reuses
    its compiled program when the wrapper is re-created around the same ``loss_fn``.
    """

    loss_fn: Callable[..., Any]
    policy: Policy
    has_aux: bool = False

    def __call__(self, params: PyTree, batch: PyTree, *args: Any, **kwargs: Any) -> Any:
        out = self.loss_fn(
            self.policy.cast_to_compute(params),
            self.policy.cast_to_compute(batch),
            *args,
            **kwargs,
        )
        loss, aux = out if self.has_aux else (out, None)
        loss = jnp.asarray(loss)
        loss = loss.astype(jnp.promote_types(loss.dtype, jnp.float32))
        return (loss, self.policy.cast_to_output(aux)) if self.has_aux else loss


@suggest_keywords
def mixed_precision_loss(
    loss_fn: Callable[..., Any], policy: Policy | str, *, has_aux: bool = False
) -> MixedPrecisionLoss:
    r"""``loss_fn`` evaluated in ``policy.compute_dtype``, returning a float32 loss.

    .. math:: L_{\mathrm{mp}}(\theta, B) = \mathrm{f32}\big(L(c(\theta), c(B))\big),\qquad
        \nabla_\theta L_{\mathrm{mp}} = c^{\top}\big(\nabla L\big),

    with :math:`c` the cast of floating leaves to the compute dtype (integer leaves such as
    labels are untouched). Since :math:`c` is differentiated, gradients come back in the
    parameters' own dtype: float32 master weights receive float32 gradients (Micikevicius et
    al., 2018, "Mixed Precision Training"; Kalamkar et al., 2019, "A Study of BFLOAT16 for
    Deep Learning Training"). With ``has_aux``, ``loss_fn`` returns ``(loss, aux)`` and the
    floating leaves of ``aux`` are cast to ``policy.output_dtype``. The loss is returned in
    float32 (float64 stays float64). bfloat16 has float32's exponent range, so no loss
    scaling is needed; float16 compute would need it.

    Args:
      loss_fn: ``loss_fn(params, batch, *args, **kwargs) -> scalar`` (or ``(scalar, aux)``).
      policy: a ``Policy`` or a string for ``Policy.from_string``.
      has_aux: whether ``loss_fn`` returns ``(loss, aux)``.

    Returns:
      A callable ``(params, batch, *args, **kwargs) -> loss`` (``(loss, aux)`` with
      ``has_aux``), a frozen dataclass (``MixedPrecisionLoss``): equal wrappers hash equal,
      so :func:`optim.fit` reuses its compiled program.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> def loss_fn(w, x):
      ...     return jnp.sum((w * x) ** 2)
      >>> mp_loss = optim.mixed_precision_loss(loss_fn, "params=float32,compute=bfloat16")
      >>> loss, grads = jax.value_and_grad(mp_loss)(jnp.ones(2), jnp.array([1.0, 2.0]))
      >>> loss.dtype, grads.dtype, round(float(loss), 4)
      (dtype('float32'), dtype('float32'), 5.0)
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if isinstance(policy, str):
        policy = Policy.from_string(policy)
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be an optim.Policy or a policy string, got {policy!r}")
    return MixedPrecisionLoss(loss_fn, policy, check_flag(has_aux, "has_aux"))
