"""Splitting a batch axis into (microbatches, microbatch size)."""

from __future__ import annotations

from typing import Any

import jax

from optim._keywords import suggest_keywords


def _split_leaf(x: jax.Array, microbatch_size: int, axis: int) -> jax.Array:
    new_shape = (*x.shape[:axis], -1, microbatch_size, *x.shape[axis + 1 :])
    sharding = jax.typeof(x).sharding
    if not sharding.mesh.are_all_axes_explicit:
        return x.reshape(new_shape, order="F")
    # Explicit sharding: the batch axis's sharding moves to the microbatch-size axis; the
    # new microbatch axis is replicated.
    spec = sharding.spec
    if len(spec) < axis:
        new_spec = spec
    else:
        new_spec = jax.P(*spec[:axis], None, spec[axis], *spec[axis + 1 :])
    shards = x.shape[axis] // sharding.shard_shape(x.shape)[axis]
    if microbatch_size % shards != 0:
        raise ValueError(
            f"microbatch_size={microbatch_size} must be a multiple of the {shards} shards of "
            f"the batch axis"
        )
    out_sharding = jax.sharding.NamedSharding(sharding.mesh, new_spec)
    return x.reshape(new_shape, order="F", out_sharding=out_sharding)


@suggest_keywords
def reshape_batch_axis(tree: Any, microbatch_size: int, axis: int = 0) -> Any:
    """Reshape batch axis of pytree leaves for use with microbatching.

    The batch axis of each leaf, of size ``B``, becomes two axes
    ``(B // microbatch_size, microbatch_size)`` at the same position. The reshape is
    column-major: microbatch ``k`` holds the rows ``k, k + n, k + 2n, ...`` with ``n`` the
    number of microbatches, so a sharding along the batch axis is preserved in the new
    ``microbatch_size`` axis, while the new ``num_microbatches`` axis is replicated.

    Args:
      tree: A pytree of jax.Arrays, each having a batch axis.
      microbatch_size: The size of sub-batches used for each microbatch.
      axis: The axis to reshape.

    Returns:
      A pytree of reshaped jax.Arrays.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import microbatching
      >>> microbatching.reshape_batch_axis(jnp.arange(6), 2)
      Array([[0, 3],
             [1, 4],
             [2, 5]], dtype=int32)
    """
    return jax.tree.map(lambda x: _split_leaf(x, microbatch_size, axis), tree)
