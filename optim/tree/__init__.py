"""Pytree utilities: arithmetic, reductions, dtypes, random trees and access to state values.

The same names, arguments and numbers as ``optax.tree``; ``optim.tree_utils`` has them with
the ``tree_`` prefix (``optim.tree.add`` is ``optim.tree_utils.tree_add``).
"""

from optim.tree._arithmetic import (
    add,
    add_scale,
    batch_shape,
    clip,
    conj,
    div,
    full_like,
    mul,
    ones_like,
    real,
    scale,
    sub,
    where,
    zeros_like,
)
from optim.tree._casting import cast, cast_like, dtype
from optim.tree._map_params import map_params
from optim.tree._moments import (
    bias_correction,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
)
from optim.tree._random import random_like, split_key_like, unwrap_random_key_data
from optim.tree._reductions import allclose, max, min, norm, size, sum, vdot
from optim.tree._state_access import get, get_all_with_path, set

__all__ = [
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "bias_correction",
    "cast",
    "cast_like",
    "clip",
    "conj",
    "div",
    "dtype",
    "full_like",
    "get",
    "get_all_with_path",
    "map_params",
    "max",
    "min",
    "mul",
    "norm",
    "ones_like",
    "random_like",
    "real",
    "scale",
    "set",
    "size",
    "split_key_like",
    "sub",
    "sum",
    "unwrap_random_key_data",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "zeros_like",
]
