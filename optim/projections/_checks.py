"""Argument checks shared by the projections."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import numpy as np


def check_scalar(value: Any, name: str) -> None:
    """``TypeError`` naming ``name`` unless it is a number or an array, ``ValueError`` unless
    it is a scalar (a number or a 0-d array)."""
    if isinstance(value, bool) or not isinstance(
        value, (numbers.Number, np.generic, np.ndarray, jax.Array)
    ):
        raise TypeError(f"{name} must be a scalar number or array, got {type(value).__name__}")
    if np.shape(value) != ():
        raise ValueError(f"{name} must be a scalar, got an array of shape {np.shape(value)}")
