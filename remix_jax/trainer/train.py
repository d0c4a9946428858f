"""``train_and_evaluate(config, workdir)``: the one training entry point.

Builds the data, model, optimizer and mesh from the config, resumes from the
newest checkpoint in ``workdir`` if there is one, trains with the jitted
data-parallel step of :mod:`remix_jax.steps`, evaluates every few epochs and
writes TensorBoard scalars, checkpoints and the final results.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Optional

import jax
import numpy as np

from remix_jax import extras

# One message naming the `trainer` extra rather than the first ImportError
# below. TensorFlow is checked where it is used: by a tfds dataset, and by
# the tensorboard metric writer.
extras.require("remix_jax.trainer.train", optional=extras.TENSORFLOW_MODULES)

# pylint: disable=g-import-not-at-top,wrong-import-position
from remix_jax import data
from remix_jax import parallel
from remix_jax.trainer import build
from remix_jax.trainer import checkpointing
from remix_jax.trainer import config_lib
from remix_jax.trainer import distributed
from remix_jax.trainer import evaluation
from remix_jax.trainer import interrupt
from remix_jax.trainer import load
from remix_jax.trainer import objective as objective_lib
from remix_jax.trainer import process_setup
from remix_jax.trainer import report
from remix_jax.trainer import run_log
from remix_jax.trainer import run_record
from remix_jax.trainer import saving
from remix_jax.trainer import workdir as workdir_lib
# pylint: enable=g-import-not-at-top,wrong-import-position


def _stop_message(problem: str, kept_steps) -> str:
  """The one-line error for a non-finite loss or state: what happened, the
  checkpoint to continue from and how."""
  how = "re-run with a lower --config.learning_rate"
  if not kept_steps:
    return f"{problem}; stopped, no checkpoint was saved: {how} to start again"
  return (f"{problem}; stopped without saving it. Checkpoints {kept_steps} "
          f"are finite: {how} and --allow_changes=learning_rate to continue "
          f"from checkpoint {kept_steps[-1]}")


def train_and_evaluate(config, workdir: str, *, allow_changes=(),
                       stop_at_epoch: Optional[int] = None,
                       stop: Optional[interrupt.StopRequest] = None,
                       held_lock: Optional[workdir_lib.Lock] = None,
                       allow_unverified_checkpoints: bool = False) -> dict:
  """Trains and evaluates the model described by ``config`` in ``workdir``.

  Resumes automatically from the newest good checkpoint in
  ``workdir/checkpoints``. A run that has finished answers at once with its
  recorded metrics, without reading data or compiling, when its results and
  final checkpoint verify (:func:`remix_jax.trainer.load.finished_result`);
  otherwise the final checkpoint is restored (or an older one, past a
  corrupt one) and evaluated again. On SIGTERM or SIGINT it saves a
  checkpoint (at an epoch's last step, then runs that epoch's evaluation if
  one is due) and returns ``{'interrupted': True, 'step': …}``. Before
  reading any data it checks the config, that ``workdir`` is writable, takes
  the workdir's lock and compares the config with the one that trained the
  workdir (:mod:`remix_jax.trainer.run_record`).

  It first sets up the process (:func:`remix_jax.trainer.process_setup.
  configure_process`: nothing to do when that is done already, a warning
  when JAX computed something before and the XLA flags can no longer take
  effect).

  Args:
    config: an ``ml_collections.ConfigDict`` like ``configs/default.py``.
    workdir: directory for checkpoints, TensorBoard events and results.
    allow_changes: config fields (dotted) that may differ from the config
      that trained ``workdir`` (e.g. ``['learning_rate']`` after a NaN).
    stop_at_epoch: stop once this many epochs are trained, with a
      checkpoint at that step written, and return ``{'stopped':
      True, 'step': …, 'epoch': …, 'steps_per_epoch': …}`` without the final
      evaluation (a shared prefix that deferred methods branch from). A run
      already past it returns at once. ``None``: train all
      ``config.num_epochs``.
    stop: the process's :class:`~remix_jax.trainer.interrupt.StopRequest`
      when the caller installed it (``main.py``); ``None``: one is installed
      for the call.
    held_lock: the workdir's lock when the caller took it (``main.py``
      takes it before its slow imports); ``None``: it is taken here (by
      process 0) and released on return.
    allow_unverified_checkpoints: resume from a checkpoint that has no
      checksums to verify it against (neither a manifest nor records in its
      orbax metadata), with a warning; by default such a checkpoint is
      moved to ``checkpoints/corrupt/`` like a corrupt one.

  Returns:
    The final test metrics: ``top1``, ``top5``, ``per_class``, ``many``,
    ``medium``, ``few``, ``head``, ``mid``, ``tail``, ``num_examples`` (plus
    ``step``).

  Raises:
    ValueError: a bad config, or one that differs from the workdir's.
    workdir.WorkdirError: the workdir is not writable or in use.
    FloatingPointError: a non-finite loss or train state (nothing non-finite
      is saved).
    checkpointing.CheckpointError: a checkpoint could not be written, or
      every checkpoint in ``workdir`` belongs to another model or
      optimizer.
  """
  start = time.monotonic()
  process_setup.configure_process()
  config = config_lib.validate_config(config)
  if stop_at_epoch is not None and not 0 < stop_at_epoch <= config.num_epochs:
    raise ValueError(f"stop_at_epoch={stop_at_epoch} must be in 1.."
                     f"{config.num_epochs} (config.num_epochs)")
  workdir = workdir_lib.prepare(workdir)
  scope = (interrupt.StopRequest() if stop is None
           else contextlib.nullcontext(stop))
  with scope as stop:
    if stop.requested:
      logging.warning("%s received before training started; stopped",
                      stop.signal_name)
      return {"interrupted": True, "step": None}
    d = config.distributed
    distributed.initialize(d.coordinator_address, d.num_processes,
                           d.process_id)
    primary = jax.process_index() == 0
    lock = workdir_lib.Lock(workdir)
    if primary and held_lock is None:
      lock.acquire()
    try:
      return _locked(config, workdir, stop, primary=primary, start=start,
                     allow_changes=allow_changes, stop_at_epoch=stop_at_epoch,
                     allow_unverified=allow_unverified_checkpoints)
    finally:
      lock.release()


def _locked(config, workdir: str, stop: interrupt.StopRequest, *,
            primary: bool, start: float, allow_changes,
            stop_at_epoch: Optional[int], allow_unverified: bool) -> dict:
  """The run in its locked workdir: the config compared with the record,
  then the recorded answer of a finished run, or the full path."""
  has_checkpoints = bool(checkpointing.saved_steps(workdir))
  changes = run_record.check(workdir, config, allow_changes,
                             has_checkpoints=has_checkpoints)
  if (has_checkpoints and not changes and stop_at_epoch is None
      and jax.process_count() == 1):
    result = load.finished_result(workdir, config)
    if result is not None:
      logging.info(report.finished_line(workdir, result))
      return result
  result = _run(config, workdir, stop, primary=primary, changes=changes,
                stop_at_epoch=stop_at_epoch,
                replace_record=not has_checkpoints,
                allow_unverified=allow_unverified)
  if "top1" in result and primary:
    logging.info(report.where_line(
        workdir, time.monotonic() - start,
        run_log.SCALARS_WHERE[config.metric_writer]))
  return result


def _data(config, mesh):
  """``(train data, eval data)`` of this process, from ``config.data``."""
  parallel.check_batch_size(config.batch_size, mesh, "config.batch_size")
  parallel.check_batch_size(config.eval_batch_size, mesh,
                            "config.eval_batch_size")
  options = config_lib.data_options(config.data)
  where = dict(process_index=jax.process_index(),
               process_count=jax.process_count())
  with config_lib.config_fields(
      {"DataOptions.data_dir": "config.data.data_dir"}):
    train_data = data.create_train_data(
        options, global_batch_size=config.batch_size, **where)
    eval_data = data.create_eval_data(
        options, global_batch_size=config.eval_batch_size, **where)
  if train_data.steps_per_epoch < 1:
    raise ValueError(f"the training split has {train_data.num_examples} "
                     f"images, fewer than config.batch_size="
                     f"{config.batch_size}")
  return train_data, eval_data


def _run(config, workdir: str, stop: interrupt.StopRequest, *,
         primary: bool, changes: dict, stop_at_epoch: Optional[int],
         replace_record: bool, allow_unverified: bool) -> dict:
  """Builds the run, restores its newest checkpoint and trains it (the
  workdir checked and locked)."""
  mesh = config_lib.make_mesh(config)
  train_data, eval_data = _data(config, mesh)
  class_counts = np.asarray(train_data.class_counts)
  spe = train_data.steps_per_epoch
  total_steps = config.num_epochs * spe
  stop_step = total_steps if stop_at_epoch is None else stop_at_epoch * spe
  state, train_step, eval_step = build.build(
      config, mesh, num_classes=train_data.num_classes,
      class_counts=class_counts, steps_per_epoch=spe)
  saver = saving.RunSaver(workdir, config, changes=changes,
                          key_derivation=build.KEY_DERIVATION,
                          keep=config.keep_checkpoints,
                          every=config.checkpoint_every_epochs,
                          primary=primary, replace_record=replace_record,
                          allow_unverified=allow_unverified)
  with contextlib.closing(saver):
    state, restored = saver.restore(state)
    step = int(jax.device_get(state.step))
    if restored is not None:
      logging.info("resumed from checkpoint %d in %s", restored,
                   saver.directory)
    if stop.requested:
      logging.warning("%s received before training started; nothing new to "
                      "save (step %d)", stop.signal_name, step)
      return {"interrupted": True, "step": step}
    if step >= stop_step and stop_step < total_steps:
      return {"stopped": True, "step": step, "epoch": step // spe,
              "steps_per_epoch": spe}
    if restored is not None and step < total_steps and primary:
      report.record_resume(workdir, step)
    log = run_log.RunLog(workdir, bar=config.progress_bar, total=total_steps,
                         initial=step, batch_size=config.batch_size,
                         primary=primary, writer=config.metric_writer)
    log.write(
        f"{config.method} on {config.data.name} (rho={config.data.rho}, "
        f"{config.data.profile}): {train_data.num_examples} train images, "
        f"{spe} steps/epoch, {mesh.devices.size} device(s), "
        f"{jax.process_count()} process(es), starting at step "
        f"{step}/{total_steps}")
    log.write("compiling the train step (the first step waits for it)")
    evaluate = evaluation.EpochEvaluation(
        eval_step, eval_data, mesh, class_counts, log=log, workdir=workdir,
        steps_per_epoch=spe, num_epochs=config.num_epochs,
        every=config.eval_every_epochs, primary=primary)
    try:
      result = _loop(config, state, train_step, train_data, mesh, stop,
                     saver, evaluate, log, step=step, stop_step=stop_step)
    except FloatingPointError as err:
      raise FloatingPointError(_stop_message(str(err), saver.all_steps())
                               ) from None
    finally:
      log.close()
  if "top1" in result and primary:
    _write_results(config, workdir, result, train_data, log)
  return result


#: The arrays of a training batch, in the train step's argument order
#: (the partner stream's only when the run draws one).
BATCH_KEYS = ("image", "label", "partner_image", "partner_label")


def _train_epoch(state, train_step, batches, mesh, stop, log, *, step: int,
                 steps_per_epoch: int, log_every: int):
  """Trains on ``batches`` (the rest of one epoch) until they end or a stop
  is requested; returns ``(state, step, stopped)``."""
  epoch = step // steps_per_epoch
  pending, first = [], step
  for batch in batches:
    arrays = parallel.shard_batch(
        mesh, tuple(batch[k] for k in BATCH_KEYS if k in batch))
    state, step_metrics = train_step(state, *arrays)
    pending.append(step_metrics)
    step += 1
    if step % log_every == 0 or step % steps_per_epoch == 0:
      log.step_metrics(step, epoch, pending, first)
      pending, first = [], step
    if stop.requested:
      run_log.flush_metrics(pending, first)
      return state, step, True
  return state, step, False


def _loop(config, state, train_step, train_data, mesh, stop, saver,
          evaluate, log, *, step: int, stop_step: int) -> dict:
  """Trains from ``step`` to ``stop_step``, saving and evaluating at the
  epochs' ends; returns the final metrics, or where it stopped."""
  spe = train_data.steps_per_epoch
  total_steps = config.num_epochs * spe
  rebalance = objective_lib.make_rebalance(config)
  result = None
  while step < stop_step:
    epoch = step // spe
    batches = train_data.iterate(
        epoch, resample=rebalance.resamples(epoch), start_step=step % spe,
        partners=objective_lib.uses_partner_batch(config))
    state, step, stopped = _train_epoch(
        state, train_step, batches, mesh, stop, log, step=step,
        steps_per_epoch=spe, log_every=config.log_every_steps)
    if stopped:
      saver.save(step, state)
      log.write(f"interrupted: checkpoint {step} saved in {saver.directory}")
      # A resumed run starts the next epoch, so an evaluation due at this
      # epoch's end runs now (after the save: a kill during it loses only
      # the evaluation).
      if step % spe == 0 and evaluate.due(step):
        evaluate(step, state)
      return {"interrupted": True, "step": step}
    last, stopping = step >= total_steps, step >= stop_step
    # Saved before the evaluation, so that a non-finite state stops the
    # run before its metrics are reported.
    if saver.due(step // spe, last=last or stopping):
      saver.save(step, state)
    if evaluate.due(step):
      result = evaluate(step, state)
    if stopping and not last:  # the save above has been written
      log.write(f"stopped at epoch {step // spe}: checkpoint {step} saved "
                f"in {saver.directory}")
      return {"stopped": True, "step": step, "epoch": step // spe,
              "steps_per_epoch": spe}
  if result is None:  # resumed a finished run
    result = evaluate.evaluate(state)
  return {**result, "step": step}


def _write_results(config, workdir: str, result: dict, train_data,
                   log: run_log.RunLog) -> None:
  """``results.json``/``.md``, ``per_class.png`` and the result table on
  the console."""
  class_counts = np.asarray(train_data.class_counts)
  title = (f"{config.method} · {config.data.name} {config.data.profile} "
           f"rho={config.data.rho:g} · {config.model}")
  report.write_results(workdir, result, class_counts=class_counts,
                       class_names=train_data.class_names,
                       config_json=config.to_json_best_effort(), title=title)
  log.write(report.markdown_table(result, class_counts,
                                  train_data.class_names))
