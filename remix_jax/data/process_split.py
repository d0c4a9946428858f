"""Splitting global batches across processes (multi-host data parallelism).

Every process computes the same global order of an epoch and takes its own
contiguous slice of each global batch: process ``p`` of ``P`` gets rows
``[p·B/P, (p+1)·B/P)`` of every global batch of ``B``. Concatenating the
processes' batches of a step in process order gives back the global batch, so
``P`` processes together see exactly what one process sees.
"""

from __future__ import annotations

import numpy as np


def local_batch_size(global_batch_size: int, process_count: int,
                     process_index: int = 0) -> int:
  """``global_batch_size / process_count``; one-line ``ValueError`` unless it
  divides evenly (and the process index is valid)."""
  if global_batch_size < 1 or process_count < 1:
    raise ValueError(f"global_batch_size={global_batch_size} and "
                     f"process_count={process_count} must be >= 1")
  if global_batch_size % process_count:
    raise ValueError(f"global batch size {global_batch_size} is not divisible "
                     f"by the number of processes {process_count}")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} must be in "
                     f"[0, {process_count})")
  return global_batch_size // process_count


def process_rows(values: np.ndarray, global_batch_size: int,
                 process_index: int, process_count: int) -> np.ndarray:
  """This process's slice of every global batch.

  Args:
    values: ``[S·B, ...]`` per-example values of ``S`` global batches of
      ``B = global_batch_size``, in global order.
    global_batch_size: ``B``.
    process_index: ``p``.
    process_count: ``P``.

  Returns:
    ``[S, B/P, ...]``: row ``s`` holds
    ``values[s·B + p·B/P : s·B + (p+1)·B/P]``.
  """
  local = local_batch_size(global_batch_size, process_count, process_index)
  values = np.asarray(values)
  steps = len(values) // global_batch_size
  batches = values[:steps * global_batch_size].reshape(
      (steps, global_batch_size) + values.shape[1:])
  return batches[:, process_index * local:(process_index + 1) * local]


def padded_eval_order(num_examples: int,
                      global_batch_size: int) -> tuple[np.ndarray, np.ndarray]:
  """``range(num_examples)`` padded up to whole global batches, and its mask.

  Returns:
    ``(indices, mask)``, both ``[ceil(N/B)·B]``: padding rows point at example
    0 and have ``mask = False``.
  """
  num_batches = -(-num_examples // global_batch_size)
  total = num_batches * global_batch_size
  indices = np.arange(total, dtype=np.int64)
  mask = indices < num_examples
  return np.where(mask, indices, 0), mask
