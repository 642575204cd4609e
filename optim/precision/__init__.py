"""Precision and state storage: the dtypes parameters, computation and optimizer state live in.

- ``_policy``: float32 master weights with bfloat16 compute (``Policy``,
  ``mixed_precision_loss``);
- ``_rounding``: bfloat16 parameters that still learn from small updates (stochastic rounding,
  Kahan summation);
- ``_blockwise``: the 8-bit block-wise codec of optimizer state;
- ``_state_storage``: optimizer state stored in bfloat16 or 8-bit codes, public as
  ``optim.quantized`` (imported on first use, as in ``import optim``).
"""

from optim.precision._policy import Policy, mixed_precision_loss
from optim.precision._rounding import (
    KahanState,
    StochasticRoundingState,
    apply_updates_kahan,
    apply_updates_stochastic,
    kahan_compensation,
    kahan_summation,
    stochastic_round,
    stochastic_rounding,
)

__all__ = [
    "KahanState",
    "Policy",
    "StochasticRoundingState",
    "apply_updates_kahan",
    "apply_updates_stochastic",
    "kahan_compensation",
    "kahan_summation",
    "mixed_precision_loss",
    "stochastic_round",
    "stochastic_rounding",
]
