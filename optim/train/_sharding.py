"""Data-parallel and sharded training over a ``jax.sharding.Mesh``.

``fit(..., mesh=mesh, sharding=...)`` splits every batch over the mesh's data axis and lays
parameters and optimizer state out by one of three plans:

* ``"replicated"``: parameters and state on every device (data parallelism: gradients are
  averaged across devices by the all-reduce XLA inserts for the batch mean);
* ``"zero1"``: parameters replicated, optimizer state sharded over the data axis (ZeRO stage 1,
  Rajbhandari et al., 2020): each device keeps 1/n of the moments;
* ``"fsdp"``: parameters and state both sharded (fully sharded data parallelism); XLA gathers
  parameters where the model needs them whole.

An array is sharded along its first axis whose size the data axis divides; arrays with no such
axis (scalars, odd sizes) are replicated. The optimizer state is created by a compiled ``init``
whose outputs carry these shardings, so no device ever holds the whole state.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

SHARDINGS = ("replicated", "zero1", "fsdp")


@dataclasses.dataclass(frozen=True)
class ShardingPlan:
    """How ``fit`` lays out batches, parameters and state on ``mesh`` (hashable, static).

    Attributes:
      mesh: the ``jax.sharding.Mesh``.
      axis: the name of the mesh axis batches (and, with ``"zero1"``/``"fsdp"``, state) are
        split over.
      mode: ``"replicated"``, ``"zero1"`` or ``"fsdp"``.
    """

    mesh: Mesh
    axis: str
    mode: str

    @property
    def size(self) -> int:
        return int(self.mesh.shape[self.axis])

    def _sharded(self, shape: tuple[int, ...]) -> NamedSharding:
        for dim, n in enumerate(shape):
            if n % self.size == 0 and n >= self.size:
                spec = [None] * len(shape)
                spec[dim] = self.axis
                return NamedSharding(self.mesh, PartitionSpec(*spec))
        return self.replicated

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    def batch(self, shape: tuple[int, ...]) -> NamedSharding:
        """Examples split over the data axis (the leading axis)."""
        return NamedSharding(self.mesh, PartitionSpec(self.axis, *([None] * (len(shape) - 1))))

    def param(self, shape: tuple[int, ...]) -> NamedSharding:
        return self._sharded(shape) if self.mode == "fsdp" else self.replicated

    def state(self, shape: tuple[int, ...]) -> NamedSharding:
        return self._sharded(shape) if self.mode in ("zero1", "fsdp") else self.replicated

    def carry_shardings(self, abstract_carry: Any) -> Any:
        """Shardings for a ``Carry`` of abstract arrays: params, state, and the rest."""
        return type(abstract_carry)(
            arrays=jax.tree.map(lambda a: self.param(a.shape), abstract_carry.arrays),
            opt_state=jax.tree.map(lambda a: self.state(a.shape), abstract_carry.opt_state),
            step=self.replicated,
            skips=self.replicated,
            perm=jax.tree.map(lambda _: self.replicated, abstract_carry.perm),
        )

    def check_batch(self, batch: int) -> None:
        """A batch of ``batch`` examples splits evenly over the data axis."""
        if batch % self.size:
            raise ValueError(
                f"the mesh's data axis {self.axis!r} has {self.size} devices, which does not "
                f"divide the batch of {batch} examples; choose batch_size as a multiple of "
                f"{self.size}"
            )

    def constrain_batch(self, batch: Any) -> Any:
        return jax.tree.map(
            lambda x: jax.lax.with_sharding_constraint(x, self.batch(x.shape)), batch
        )

    def place_data(self, data: Any) -> Any:
        """Data on the mesh: split over the data axis when it divides the example count,
        otherwise replicated (minibatches drawn from it are split all the same)."""

        def put(x: Any) -> Any:
            shape = np.shape(x)
            divisible = bool(shape) and shape[0] % self.size == 0
            return jax.device_put(x, self.batch(shape) if divisible else self.replicated)

        return jax.tree.map(put, data)


def make_plan(mesh: Any, axis: str, mode: str) -> ShardingPlan | None:
    """Validate the sharding arguments of ``fit``; ``None`` when no mesh is given."""
    if mesh is None:
        if mode != "replicated":
            raise ValueError(f"sharding={mode!r} needs mesh=")
        return None
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    if axis not in mesh.shape:
        raise ValueError(f"data_axis={axis!r} is not an axis of the mesh {dict(mesh.shape)}")
    if mode not in SHARDINGS:
        raise ValueError(f"sharding must be one of {', '.join(SHARDINGS)}, got {mode!r}")
    # The plan places arrays and lets XLA's partitioner propagate layouts (Auto axes); a mesh
    # with Explicit axes would ask every gather for an output sharding.
    auto = Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))
    return ShardingPlan(auto, axis, mode)
