r"""Memory-lean optimizer state: moments stored in bfloat16 or in 8-bit block-wise codes.

Adam keeps two float32 moments, 8 bytes per parameter. Stored in bfloat16 they take 4; stored as
8-bit codes with one float32 scale per block of 2048 (Dettmers et al., 2022, "8-bit Optimizers
via Block-wise Quantization"; the codec is ``optim.precision._blockwise``) about 2. The
arithmetic does not change: each step decodes the stored moments to float32, runs the
optimizer's own update in float32, and encodes the new moments. The implementation is in
``optim/precision/_state_storage.py``.

    tx = optim.quantized.adamw(1e-3, weight_decay=0.1, state_dtype="int8")
    tx = optim.quantized.with_state_dtype(optim.lion(1e-4), optim.quantized.Int8Blockwise(256))
    optim.quantized.bytes_per_parameter(tx.init(params), params)   # about 2.0 for adamw

The state keeps the structure and field names of the optimizer's own (``ScaleByAdamState(count,
mu, nu)``, ...); a stored moment is a tree like the parameters whose leaves are bfloat16 arrays,
or ``QuantizedArray(codes, absmax)`` records (leaves smaller than ``min_size`` stay float32). It
is a pytree of arrays, so it jits, vmaps and checkpoints like any state.

Moments that can be stored so: those of ``scale_by_adam`` (``adam``, ``adamw``, ``nadam``,
``nadamw``; first moment on the signed map, second on the unsigned one), ``scale_by_lion``
(``lion``) and ``trace`` (``sgd`` with momentum). Any other per-parameter float state (RMSProp's,
Adagrad's, lookahead's slow weights) is an error that names the building block: ask for it
explicitly rather than get float32 state silently.
"""

import sys

from optim._types import resolve_learning_rate_annotations
from optim.precision._state_storage import (
    Int8Blockwise,
    QuantizedArray,
    WithStateDtype,
    adam,
    adamw,
    bytes_per_parameter,
    lion,
    sgd,
    state_bytes,
    with_state_dtype,
)

__all__ = [
    "Int8Blockwise",
    "QuantizedArray",
    "WithStateDtype",
    "adam",
    "adamw",
    "bytes_per_parameter",
    "lion",
    "sgd",
    "state_bytes",
    "with_state_dtype",
]

resolve_learning_rate_annotations(sys.modules[__name__])
