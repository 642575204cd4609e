"""Random pytrees: one key per leaf, random leaves shaped like a tree, raw key data.

The key of leaf :math:`i` (in leaf order) is ``jax.random.split(rng_key, n)[i]``, as in
``optax.tree``, so the same key gives optax's numbers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax

from optim._keywords import suggest_keywords
from optim._tree import PyTree


@suggest_keywords
def split_key_like(rng_key: jax.Array, target_tree: PyTree) -> PyTree:
    """One new key per leaf of ``target_tree``, split from ``rng_key``, in its structure.

    Args:
      rng_key: the key to split (a typed key or a raw ``uint32`` key).
      target_tree: the pytree whose structure to match.

    Returns:
      a pytree of keys with the structure of ``target_tree``.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> keys = optim.tree.split_key_like(jax.random.key(0), {"a": jnp.ones(2), "b": None})
      >>> sorted(keys), keys["b"]
      (['a', 'b'], None)
    """
    treedef = jax.tree.structure(target_tree)
    keys = jax.random.split(rng_key, treedef.num_leaves)
    return jax.tree.unflatten(treedef, list(keys))


def _accepts_sharding(sampler: Callable[..., Any]) -> bool:
    try:
        return "out_sharding" in inspect.signature(sampler).parameters
    except (TypeError, ValueError):  # a builtin or C function without a signature
        return False


@suggest_keywords
def random_like(
    rng_key: jax.Array,
    target_tree: PyTree,
    sampler: Callable[..., jax.typing.ArrayLike] = jax.random.normal,
    dtype: jax.typing.DTypeLike | None = None,
) -> PyTree:
    """A pytree of random arrays with the structure and shapes of ``target_tree``.

    Leaf :math:`i` is ``sampler(key_i, leaf.shape, dtype or leaf.dtype)`` with ``key_i`` from
    :func:`split_key_like`; a sampler that takes ``out_sharding`` gets the leaf's sharding.

    Args:
      rng_key: the key for the random number generator.
      target_tree: the pytree whose structure and shapes to match; its leaves must be arrays.
      sampler: ``sampler(key, shape, dtype)`` returning an array, by default
        ``jax.random.normal``.
      dtype: the dtype passed to ``sampler``; by default each leaf's own.

    Returns:
      a random pytree with the structure of ``target_tree``.

    .. warning::
      A sampler may accept only some dtypes: ``jax.random.rademacher`` wants an integer one.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> noise = optim.tree.random_like(jax.random.key(0), {"w": jnp.zeros((2, 3))})
      >>> noise["w"].shape, noise["w"].dtype
      ((2, 3), dtype('float32'))
    """
    keys = split_key_like(rng_key, target_tree)
    if _accepts_sharding(sampler):

        def draw(leaf: Any, key: jax.Array) -> jax.typing.ArrayLike:
            return sampler(
                key, leaf.shape, dtype or leaf.dtype, out_sharding=jax.typeof(leaf).sharding
            )

    else:

        def draw(leaf: Any, key: jax.Array) -> jax.typing.ArrayLike:
            return sampler(key, leaf.shape, dtype or leaf.dtype)

    return jax.tree.map(draw, target_tree, keys)


def _is_typed_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


@suggest_keywords
def unwrap_random_key_data(input_tree: PyTree) -> PyTree:
    """Replace every typed key (``jax.random.key``) of a pytree by its raw ``uint32`` data.

    Useful to compare states holding keys numerically; other leaves are unchanged.

    Args:
      input_tree: a pytree of arrays and typed keys.

    Returns:
      the pytree with each key replaced by ``jax.random.key_data`` of it.

    Examples:
      >>> import jax, optim
      >>> optim.tree.unwrap_random_key_data({"key": jax.random.key(0)})
      {'key': Array([0, 0], dtype=uint32)}
    """
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_typed_key(x) else x, input_tree)
