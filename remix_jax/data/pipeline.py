"""Entry points of the pipelines: :func:`create_train_data` and
:func:`create_eval_data`.

Both take a :class:`~remix_jax.data.options.DataOptions`, check it and the
batch split first (one-line errors, no data touched), then find or prepare
the tfds dataset (:mod:`remix_jax.data.source`) and build the in-memory
(:mod:`remix_jax.data.memory`) or streamed (:mod:`remix_jax.data.streaming`)
pipeline of the dataset; a ``numpy`` dataset (``digits_numpy``) gets the
NumPy pipeline (:mod:`remix_jax.data.numpy_pipeline`) and no TensorFlow.
The tfds pipelines are imported on first use, and need the ``trainer``
extra's TensorFlow packages (:mod:`remix_jax.extras`).
"""

from __future__ import annotations

from remix_jax import extras
from remix_jax.data import base
from remix_jax.data import numpy_pipeline
from remix_jax.data import options as options_lib
from remix_jax.data import process_split
from remix_jax.data import registry
from remix_jax.data import source


def _classes(spec: registry.DatasetSpec) -> tuple[type, type]:
  """``(train class, eval class)`` of ``spec``'s pipeline; the tfds ones are
  imported here, after checking that their packages are installed."""
  if spec.pipeline == registry.NUMPY:
    return numpy_pipeline.NumpyTrainData, numpy_pipeline.NumpyEvalData
  extras.require(f"dataset {spec.name} (tfds)")
  # pylint: disable=g-import-not-at-top
  if spec.in_memory:
    from remix_jax.data import memory
    return memory.InMemoryTrainData, memory.InMemoryEvalData
  from remix_jax.data import streaming
  return streaming.StreamedTrainData, streaming.StreamedEvalData


def _open(options: options_lib.DataOptions, global_batch_size: int,
          process_index: int, process_count: int, data_dir, train: bool):
  """Validates everything cheap, then returns ``(the pipeline's class, its
  leading arguments)``: ``(spec,)`` for a NumPy pipeline, ``(prepared
  builder, spec)`` for a tfds one."""
  spec = options_lib.check_options(options)
  process_split.local_batch_size(global_batch_size, process_count, process_index)
  cls = _classes(spec)[0 if train else 1]
  if spec.pipeline == registry.NUMPY:
    return cls, (spec,)
  path, origin = source.resolve_data_dir(data_dir, options.data_dir)
  return cls, (source.load_builder(spec, path, origin), spec)


def create_train_data(options: options_lib.DataOptions, *,
                      global_batch_size: int, process_index: int = 0,
                      process_count: int = 1,
                      data_dir=None) -> base.TrainData:
  """The training data of this process.

  Loads ``options.name``'s training split, selects the long-tailed subset of
  ``(rho, profile, split_seed)`` (LDAM-DRW's procedure, Cao et al. 2019) for
  the in-memory datasets, and returns a :class:`~remix_jax.data.base.TrainData`
  whose ``iterate(epoch, resample=..., start_step=...)`` yields this
  process's ``global_batch_size / process_count`` rows of every global batch.

  Args:
    options: the dataset, split and order
      (:class:`~remix_jax.data.options.DataOptions`).
    global_batch_size: images per step over all processes.
    process_index: this process, ``0 <= process_index < process_count``.
    process_count: processes sharing the global batch (must divide it).
    data_dir: overrides ``options.data_dir`` / ``$TFDS_DATA_DIR``.

  Returns:
    The :class:`~remix_jax.data.base.TrainData`.

  Raises:
    TypeError: ``options`` is not a ``DataOptions`` (e.g. a config dict).
    ValueError: a bad option (the message starts with its name) or a batch
      not divisible by processes.
    FileNotFoundError: the dataset is not prepared and cannot be prepared
      here (the message names the directory searched and what to do).
    ModuleNotFoundError: a tfds dataset without the ``trainer`` extra's
      packages (:class:`remix_jax.extras.MissingExtraError`, one line).
  """
  cls, leading = _open(options, global_batch_size, process_index,
                       process_count, data_dir, True)
  return cls(*leading, options, global_batch_size=global_batch_size,
             process_index=process_index, process_count=process_count)


def create_eval_data(options: options_lib.DataOptions, *,
                     global_batch_size: int, process_index: int = 0,
                     process_count: int = 1, data_dir=None) -> base.EvalData:
  """The evaluation data of this process (CIFAR: ``test``; CINIC-10 and
  iNat: ``validation``; digits: ``test``), every example exactly once.

  Args and Raises: as :func:`create_train_data`.

  Returns:
    The :class:`~remix_jax.data.base.EvalData`; its ``iterate()`` yields
    ``num_batches`` padded batches with a ``mask``.
  """
  cls, leading = _open(options, global_batch_size, process_index,
                       process_count, data_dir, False)
  return cls(*leading, global_batch_size=global_batch_size,
             process_index=process_index, process_count=process_count)
