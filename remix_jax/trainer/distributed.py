"""Multi-process start-up from ``config.distributed``."""

from __future__ import annotations

import logging

import jax


def initialize(coordinator_address: str, num_processes, process_id) -> None:
  """``jax.distributed.initialize`` when a coordinator is configured.

  Args:
    coordinator_address: ``host:port`` of process 0 (``''``: one process,
      nothing to do).
    num_processes: the number of processes (``None``: from the cluster).
    process_id: this process's index (``None``: from the cluster).
  """
  if not coordinator_address:
    return
  # Cross-process collectives on CPU need gloo; the setting only affects the
  # CPU backend. (Asking jax.devices() here would start the backend too early.)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id)
  logging.info("process %d of %d, %d local / %d global devices",
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())
