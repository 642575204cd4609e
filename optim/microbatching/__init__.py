"""Microbatching (``optax.microbatching``): evaluate a function on a large batch one
microbatch at a time, and combine the results (sum, mean, running mean, concatenation), so
that memory holds one microbatch's intermediate values. ``micro_vmap`` and ``micro_grad``
(per-example gradients) are built on ``microbatch``."""

from optim.microbatching._accumulators import AccumulationType, Accumulator
from optim.microbatching._microbatch import micro_grad, micro_vmap, microbatch
from optim.microbatching._reshape import reshape_batch_axis

__all__ = [
    "AccumulationType",
    "Accumulator",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "reshape_batch_axis",
]
