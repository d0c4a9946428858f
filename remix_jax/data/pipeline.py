"""Entry points of the trainer: :func:`create_train_data` and
:func:`create_eval_data`.

Both validate the config and the batch split first (one-line errors, no data
touched), then find or prepare the tfds dataset (:mod:`remix_jax.data.source`)
and build the in-memory (:mod:`remix_jax.data.memory`) or streamed
(:mod:`remix_jax.data.streaming`) pipeline of the dataset.
"""

from __future__ import annotations

from remix_jax.data import base
from remix_jax.data import config
from remix_jax.data import memory
from remix_jax.data import process_split
from remix_jax.data import source
from remix_jax.data import streaming


def _open(cfg, global_batch_size: int, process_index: int,
          process_count: int, data_dir):
  """Validates everything cheap, then returns ``(spec, prepared builder)``."""
  spec = config.validate_data_config(cfg)
  process_split.local_batch_size(global_batch_size, process_count, process_index)
  path, origin = source.resolve_data_dir(data_dir,
                                         getattr(cfg, "data_dir", None))
  return spec, source.load_builder(spec, path, origin)


def create_train_data(cfg, *, global_batch_size: int, process_index: int = 0,
                      process_count: int = 1,
                      data_dir=None) -> base.TrainData:
  """The training data of this process.

  Loads ``cfg.name``'s training split, selects the long-tailed subset of
  ``(rho, profile, split_seed)`` (LDAM-DRW's procedure, Cao et al. 2019) for
  the in-memory datasets, and returns a :class:`~remix_jax.data.base.TrainData`
  whose ``iterate(epoch, resample=..., start_step=...)`` yields this
  process's ``global_batch_size / process_count`` rows of every global batch.

  Args:
    cfg: the data config (:func:`~remix_jax.data.config.default_data_config`
      fields).
    global_batch_size: images per step over all processes.
    process_index: this process, ``0 <= process_index < process_count``.
    process_count: processes sharing the global batch (must divide it).
    data_dir: overrides ``cfg.data_dir`` / ``$TFDS_DATA_DIR``.

  Returns:
    The :class:`~remix_jax.data.base.TrainData`.

  Raises:
    ValueError: a bad config field or a batch not divisible by processes.
    FileNotFoundError: the dataset is not prepared and cannot be prepared
      here (the message names the directory searched and what to do).
  """
  spec, builder = _open(cfg, global_batch_size, process_index, process_count,
                        data_dir)
  cls = memory.InMemoryTrainData if spec.in_memory else (
      streaming.StreamedTrainData)
  return cls(builder, spec, cfg, global_batch_size=global_batch_size,
             process_index=process_index, process_count=process_count)


def create_eval_data(cfg, *, global_batch_size: int, process_index: int = 0,
                     process_count: int = 1, data_dir=None) -> base.EvalData:
  """The evaluation data of this process (CIFAR: ``test``; CINIC-10 and
  iNat: ``validation``; digits: ``test``), every example exactly once.

  Args and Raises: as :func:`create_train_data`.

  Returns:
    The :class:`~remix_jax.data.base.EvalData`; its ``iterate()`` yields
    ``num_batches`` padded batches with a ``mask``.
  """
  spec, builder = _open(cfg, global_batch_size, process_index, process_count,
                        data_dir)
  cls = memory.InMemoryEvalData if spec.in_memory else (
      streaming.StreamedEvalData)
  return cls(builder, spec, global_batch_size=global_batch_size,
             process_index=process_index, process_count=process_count)
