"""A trained run back as a model (:func:`load_run`, :func:`evaluate_run`),
and the recorded result of a finished run (:func:`finished_result`).

    from remix_jax.trainer import load
    model, info = load.load_run("runs/quickstart")
    logits = model(images).logits          # NHWC float images, normalised

The model is built from the run record (``config.json``) and restored from
the newest verified checkpoint (:mod:`remix_jax.trainer.checkpointing`), in
eval mode (BatchNorm's running averages).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import numpy as np
from flax import nnx

from remix_jax import data
from remix_jax import parallel
from remix_jax import steps
from remix_jax.trainer import build
from remix_jax.trainer import checkpointing
from remix_jax.trainer import config_lib
from remix_jax.trainer import evaluation
from remix_jax.trainer import report
from remix_jax.trainer import run_record


def _class_counts(results, config, data_dir):
  """``(class counts, class names)`` from ``results`` (the parsed
  ``results.json``), or from the training split when the run has not
  finished (``results`` is ``None``)."""
  if results is not None:
    return np.asarray(results["class_counts"]), results["class_names"]
  train = data.create_train_data(_options(config, data_dir),
                                 global_batch_size=config.batch_size)
  return np.asarray(train.class_counts), train.class_names


def _options(config, data_dir):
  options = config_lib.data_options(config.data)
  return (options if data_dir is None
          else dataclasses.replace(options, data_dir=data_dir))


def _restore(workdir: str, data_dir=None):
  """``(config, eval graphdef, state, info)`` of the run in ``workdir``."""
  config = run_record.load_config(workdir)
  results = report.read_results(workdir)
  counts, names = _class_counts(results, config, data_dir)
  model = build.model_from_config(config, len(counts),
                                  per_device_batch=config.batch_size)
  tx = build.optimizer(config, build.learning_rate_fn(config, 1))
  state = build.initial_state(config, model, tx)
  ckpt = checkpointing.Checkpointer(workdir, keep=config.keep_checkpoints,
                                    primary=False)
  try:
    restored = ckpt.restore_latest(checkpointing.abstract_like(state))
  finally:
    ckpt.close()
  if restored is None:
    raise FileNotFoundError(f"{workdir} holds no checkpoint to load")
  step, state = restored
  model.eval()
  graphdef = steps.split_model(model)[0]
  info = {"step": step, "config": config, "class_counts": counts,
          "class_names": names,
          "metrics": None if results is None else results["metrics"]}
  return config, graphdef, state, info


def load_run(workdir: str, *, data_dir=None):
  """The model of the run in ``workdir`` and what is known of it.

  Args:
    workdir: a workdir written by the trainer (with ``config.json`` and at
      least one checkpoint).
    data_dir: where the dataset is, when the run has not finished (its class
      counts are then read from the training split); ``None``: the run's.

  Returns:
    ``(model, info)``: the Flax NNX model in eval mode with the restored
    weights, and ``{'step', 'config', 'class_counts', 'class_names',
    'metrics'}`` (``metrics``: the recorded final test metrics, or ``None``).

  Raises:
    run_record.ConfigChangedError: no run record.
    FileNotFoundError: no checkpoint.
  """
  _, graphdef, state, info = _restore(workdir, data_dir)
  return nnx.merge(graphdef, state.params, state.batch_stats), info


def evaluate_run(workdir: str, *, data_dir=None) -> dict:
  """The test metrics of the run in ``workdir``, evaluated anew from its
  newest checkpoint on one device (:func:`remix_jax.trainer.evaluation.
  evaluate`); the same keys as ``train_and_evaluate`` returns."""
  config, graphdef, state, info = _restore(workdir, data_dir)
  mesh = parallel.make_mesh(1)
  eval_data = data.create_eval_data(_options(config, data_dir),
                                    global_batch_size=config.eval_batch_size)
  eval_step = steps.make_eval_step(graphdef, mesh, len(info["class_counts"]))
  state = parallel.replicate(mesh, state)
  out = evaluation.evaluate(eval_step, state, eval_data, mesh,
                            info["class_counts"])
  return {**out, "step": info["step"]}


def _abstract_state(config, num_classes: int):
  """The layout of ``config``'s train state on this process's first device,
  traced (:func:`jax.eval_shape`): nothing is initialised or compiled."""

  def init():
    model = build.model_from_config(config, num_classes,
                                    per_device_batch=config.batch_size)
    tx = build.optimizer(config, build.learning_rate_fn(config, 1))
    return build.initial_state(config, model, tx)

  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
      jax.eval_shape(init))


def finished_result(workdir: str, config) -> Optional[dict]:
  """The recorded final metrics of ``workdir`` when ``config``'s run there
  has finished, without reading data or compiling a step.

  Finished means: ``results.json`` holds this config (the fields of
  :data:`~remix_jax.trainer.run_record.FREE_FIELDS` aside) and the step of
  its metrics, the newest checkpoint is that step, and that checkpoint
  restores and matches its recorded checksums (nothing is moved or logged
  when it does not).

  Args:
    workdir: the run's directory.
    config: the validated config of this call.

  Returns:
    The ``metrics`` of ``results.json`` (what ``train_and_evaluate``
    returned when the run finished), or ``None`` when the run has not
    finished by this definition (the trainer then takes its full path).
  """
  results = report.read_results(workdir)
  if results is None or run_record.differences(
      run_record.flatten(results.get("config") or {}),
      run_record.flatten(config)):
    return None
  step = results["metrics"].get("step")
  if step is None or step != max(checkpointing.saved_steps(workdir),
                                 default=None):
    return None
  state = _abstract_state(config, len(results["class_counts"]))
  ckpt = checkpointing.Checkpointer(workdir, keep=config.keep_checkpoints,
                                    primary=False)
  try:
    problem = ckpt.verify(step, state)
  finally:
    ckpt.close()
  return results["metrics"] if problem is None else None
