"""Checkpoints of pytrees on disk (``optim.checkpoint.save``, ``restore``, ...).

The store itself, its on-disk layout and its guarantees are in ``optim/train/_checkpoint.py``;
this module is its public face, imported lazily by ``import optim`` (orbax and tensorstore are
imported by the first save or restore only).
"""

from optim.train._checkpoint import (
    CorruptCheckpointError,
    Restored,
    all_steps,
    latest_step,
    restore,
    restore_latest,
    save,
)

__all__ = [
    "CorruptCheckpointError",
    "Restored",
    "all_steps",
    "latest_step",
    "restore",
    "restore_latest",
    "save",
]
