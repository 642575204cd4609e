"""Precision and state storage: the dtypes parameters, computation and optimizer state live in.

- ``_policy``: float32 master weights with bfloat16 compute (``Policy``,
  ``mixed_precision_loss``);
- ``_rounding``: bfloat16 parameters that still learn from small updates (stochastic rounding,
  Kahan summation);
- ``_blockwise``: the 8-bit block-wise codec of optimizer state;
- ``_state_storage``: optimizer state stored in bfloat16 or 8-bit codes, public as
  ``optim.with_state_dtype`` and ``optim.quantized`` (imported on first use, as in
  ``import optim``).

Which state is stored so, each state record declares itself: ``moment_slots``, a class
attribute on the ``NamedTuple`` (not a field, so not a pytree leaf), is a read-only mapping from
the record's moment fields to ``optim.base.SIGNED`` (averages of gradients: the signed 8-bit
map) or ``optim.base.UNSIGNED`` (averages of squares: the unsigned map, one more bit), e.g.
``ScaleByAdamState.moment_slots == {"mu": SIGNED, "nu": UNSIGNED}``. ``with_state_dtype``
finds the records in a state by that attribute, with no central list; ``optim.quantized``'s
docstring names the records that declare it.
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
