"""A stack of independent problems, solved with each device of the current mesh taking a share.

Shampoo's inverse roots and SOAP's eigenbases are many small, independent matrix problems: the
same work on every device of a data-parallel run, unless each device solves a share of them
and the results are gathered (Anil et al., 2020, "Scalable Second Order Optimization for Deep
Learning", section 5: the trick that lets Distributed Shampoo scale). ``vmap_over_devices``
does that for whatever mesh is current: the one ``optim.fit(mesh=...)`` sets while it traces
its step, or the one a user sets around a jitted step with ``jax.set_mesh(mesh)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import AxisType, PartitionSpec


def current_devices() -> int:
    """The number of devices of the mesh set by ``jax.set_mesh`` (1 without one)."""
    mesh = jax.sharding.get_abstract_mesh()
    return 1 if mesh.empty else int(mesh.size)


def devices_share(count: int, devices: int) -> int:
    """How many of ``count`` problems each of ``devices`` devices solves."""
    return -(-count // devices)


def vmap_over_devices(fn: Callable[..., Any], stacks: tuple, fillers: tuple) -> Any:
    """``jax.vmap(fn)(*stacks)``, each device of the current mesh computing a share of it.

    Without a mesh, or on one device, this is the plain ``vmap``. On a mesh of ``d`` devices
    each stack (arrays sharing their leading length ``n``) is padded to a multiple of ``d``
    with copies of its filler (a problem whose solution is cheap and harmless: an identity
    matrix), split along that axis over all the mesh's axes together, so that each device
    solves ``ceil(n / d)`` problems; the results are gathered on every device and cut back to
    ``n``. The values are those of the plain ``vmap``: each problem is solved on its own.
    """
    devices = current_devices()
    if devices == 1:
        return jax.vmap(fn)(*stacks)
    mesh = jax.sharding.get_abstract_mesh()
    n = stacks[0].shape[0]
    size = devices_share(n, devices) * devices
    split = PartitionSpec(tuple(mesh.axis_names))

    def shared(stacks: tuple, fillers: tuple) -> Any:
        spread = []
        for stack, filler in zip(stacks, fillers, strict=True):
            # Whole on every device first (an all-gather, from whatever layout the problems
            # come in), so that each device's share is a local slice of it.
            stack = jax.lax.with_sharding_constraint(stack, PartitionSpec())
            if size > n:
                extra = jnp.broadcast_to(filler.astype(stack.dtype), (size - n, *filler.shape))
                stack = jnp.concatenate([stack, extra])
            spread.append(jax.lax.with_sharding_constraint(stack, split))
        # Gathered whole on every device: where the results go (a state laid out another
        # way, a step that needs them all) each device then takes what it needs locally.
        solved = jax.lax.with_sharding_constraint(jax.vmap(fn)(*spread), PartitionSpec())
        return jax.tree.map(lambda x: x[:n], solved)

    if any(kind == AxisType.Explicit for kind in mesh.axis_types):
        # Explicit axes carry shardings in the types; the solve runs with them as Auto axes
        # (the partitioner places its work) and hands back replicated results.
        return jax.sharding.auto_axes(shared, out_sharding=PartitionSpec())(stacks, fillers)
    return shared(stacks, fillers)
