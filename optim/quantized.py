r"""Memory-lean optimizer state: moments stored in bfloat16 or in 8-bit block-wise codes.

Adam keeps two float32 moments, 8 bytes per parameter. Stored in bfloat16 they take 4; stored as
8-bit codes with one float32 scale per block of 2048 (Dettmers et al., 2022, "8-bit Optimizers
via Block-wise Quantization"; the codec is ``optim.precision._blockwise``) about 2. The
arithmetic does not change: each step decodes the stored moments to float32, runs the
optimizer's own update in float32, and encodes the new moments. The implementation is in
``optim/precision/_state_storage.py``.

One function asks for it, for any optimizer (``with_state_dtype``, also at the top level)::

    tx = optim.with_state_dtype(optim.adamw(1e-3, weight_decay=0.1), "int8")
    tx = optim.with_state_dtype(optim.lion(1e-4), optim.quantized.Int8Blockwise(256))
    optim.quantized.bytes_per_parameter(tx.init(params), params)   # about 2.0 for adamw

The state keeps the structure and field names of the optimizer's own (``ScaleByAdamState(count,
mu, nu)``, ...); a stored moment is a tree like the parameters whose leaves are bfloat16 arrays,
or ``QuantizedArray(codes, absmax)`` records (leaves smaller than ``min_size`` stay float32). It
is a pytree of arrays, so it jits, vmaps and checkpoints like any state.

Which slots are moments, each state record says itself: its ``moment_slots`` class attribute
maps a field to ``optim.base.SIGNED`` (coded on the signed map: averages of gradients) or
``optim.base.UNSIGNED`` (the unsigned map, one more bit: averages of squared gradients). These
records declare them: ``ScaleByAdamState`` (``adam``, ``adamw``, ``nadam``, ``nadamw``,
``lamb``), ``ScaleByAmsgradState`` (``amsgrad``), ``ScaleByBeliefState`` (``adabelief``),
``ScaleByLionState`` (``lion``), ``ScaleByRmsState`` (``rmsprop`` without centering),
``TraceState`` (``sgd`` and ``rmsprop`` with momentum) and ``EmaState`` (``signum``, ``ema``).
A state record of your own may declare them the same way. Any other per-parameter float state
(Adagrad's sums, centered RMSProp's moments, lookahead's slow weights, L-BFGS's memory,
AdEMAMix's slow average) is an error that names the building block: ask for it explicitly
rather than get float32 state silently.
"""

from optim.precision._state_storage import (
    Int8Blockwise,
    QuantizedArray,
    WithStateDtype,
    bytes_per_parameter,
    state_bytes,
    with_state_dtype,
)

__all__ = [
    "Int8Blockwise",
    "QuantizedArray",
    "WithStateDtype",
    "bytes_per_parameter",
    "state_bytes",
    "with_state_dtype",
]
