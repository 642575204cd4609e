"""The functions of ``optim.tree`` under their ``tree_``-prefixed names, as ``optax.tree_utils``.

``optim.tree_utils.tree_add`` is ``optim.tree.add`` (the same function object), and so on for
every name; ``NamedTupleKey`` is the path entry of a NamedTuple field in ``tree_get`` & co.
The names optax deprecated (``tree_scalar_mul``, ``tree_l2_norm``, ...) still resolve, with a
``DeprecationWarning`` naming the replacement.
"""

import functools
from typing import Any

import optim.tree as _tree_api
from optim._warnings import warn_user
from optim.tree._state_access import NamedTupleKey

tree_add = _tree_api.add
tree_add_scale = _tree_api.add_scale
tree_allclose = _tree_api.allclose
tree_batch_shape = _tree_api.batch_shape
tree_bias_correction = _tree_api.bias_correction
tree_cast = _tree_api.cast
tree_cast_like = _tree_api.cast_like
tree_clip = _tree_api.clip
tree_conj = _tree_api.conj
tree_div = _tree_api.div
tree_dtype = _tree_api.dtype
tree_full_like = _tree_api.full_like
tree_get = _tree_api.get
tree_get_all_with_path = _tree_api.get_all_with_path
tree_map_params = _tree_api.map_params
tree_max = _tree_api.max
tree_min = _tree_api.min
tree_mul = _tree_api.mul
tree_norm = _tree_api.norm
tree_ones_like = _tree_api.ones_like
tree_random_like = _tree_api.random_like
tree_real = _tree_api.real
tree_scale = _tree_api.scale
tree_set = _tree_api.set
tree_size = _tree_api.size
tree_split_key_like = _tree_api.split_key_like
tree_sub = _tree_api.sub
tree_sum = _tree_api.sum
tree_unwrap_random_key_data = _tree_api.unwrap_random_key_data
tree_update_infinity_moment = _tree_api.update_infinity_moment
tree_update_moment = _tree_api.update_moment
tree_update_moment_per_elem_norm = _tree_api.update_moment_per_elem_norm
tree_vdot = _tree_api.vdot
tree_where = _tree_api.where
tree_zeros_like = _tree_api.zeros_like

__all__ = ["NamedTupleKey"] + [f"tree_{name}" for name in _tree_api.__all__]

# Names optax deprecated: (replacement to name in the warning, the function).
_DEPRECATED = {
    "tree_scalar_mul": ("tree_scale", tree_scale),
    "tree_add_scalar_mul": ("tree_add_scale", tree_add_scale),
    "tree_l1_norm": ("tree_norm(..., ord=1)", functools.partial(tree_norm, ord=1)),
    "tree_l2_norm": ("tree_norm", functools.partial(tree_norm, ord=2)),
    "tree_linf_norm": ("tree_norm(..., ord=jnp.inf)", functools.partial(tree_norm, ord="inf")),
}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        replacement, function = _DEPRECATED[name]
        warn_user(
            f"optim.tree_utils.{name} is deprecated (as in optax): use "
            f"optim.tree_utils.{replacement}",
            DeprecationWarning,
        )
        return function
    raise AttributeError(f"module 'optim.tree_utils' has no attribute {name!r}")
