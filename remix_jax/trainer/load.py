"""A trained run back as a model: :func:`load_run` and :func:`evaluate_run`.

    from remix_jax.trainer import load
    model, info = load.load_run("runs/quickstart")
    logits = model(images).logits          # NHWC float images, normalised

The model is built from the run record (``config.json``) and restored from
the newest verified checkpoint (:mod:`remix_jax.trainer.checkpointing`), in
eval mode (BatchNorm's running averages).
"""

from __future__ import annotations

import dataclasses

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
