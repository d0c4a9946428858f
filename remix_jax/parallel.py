"""Device mesh and batch placement for data parallelism.

One ``('data',)`` mesh over the devices of every process. The step is
``jax.jit`` over ``jax.shard_map``: each device mixes and trains on its own
shard (as ``pmap`` did), gradients and BatchNorm statistics are reduced with
collectives over ``'data'``. The same code runs on 1 CPU, 8 GPUs or a pod.
"""

from __future__ import annotations


import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"


def make_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
  """A 1-D mesh named ``'data'``.

  Args:
    num_devices: devices per process to use (0 = all). With several
      processes each contributes its first ``num_devices`` local devices.
  """
  local = jax.local_devices()
  per_process = num_devices or len(local)
  if per_process > len(local):
    raise ValueError(f"num_devices={num_devices} but this process has "
                     f"only {len(local)} devices")
  devices = [
      d for p in range(jax.process_count())
      for d in sorted((d for d in jax.devices() if d.process_index == p),
                      key=lambda d: d.id)[:per_process]
  ]
  return jax.sharding.Mesh(np.array(devices), (AXIS,),
                           axis_types=(jax.sharding.AxisType.Explicit,))


def check_batch_size(batch_size: int, mesh: jax.sharding.Mesh,
                     what: str = "batch_size") -> None:
  """One-line error unless the global batch splits evenly over the mesh;
  ``what`` names the batch size in the message."""
  n = mesh.devices.size
  if batch_size % n:
    raise ValueError(f"{what}={batch_size} is not divisible by the "
                     f"{n} devices ({jax.process_count()} process(es)); use a "
                     f"multiple of {n}")


def data_sharding(mesh) -> NamedSharding:
  return NamedSharding(mesh, P(AXIS))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def shard_batch(mesh, batch):
  """Places this process's slice of a global batch on the mesh.

  Each process passes its contiguous ``[global/process_count, ...]`` slice;
  the result is one global ``jax.Array`` per leaf, sharded along ``'data'``.
  """
  sharding = data_sharding(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
      batch)


def replicate(mesh, tree):
  """Places a pytree (the train state) replicated on every device."""
  sharding = replicated(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
      tree)
