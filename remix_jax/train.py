"""``train_and_evaluate(config, workdir)``: the one training entry point.

Builds the data, model, optimizer and mesh from the config, resumes from the
newest checkpoint in ``workdir`` if there is one, trains with the jitted
data-parallel step of :mod:`remix_jax.steps`, evaluates every few epochs and
writes TensorBoard scalars, checkpoints and the final results.
"""

from __future__ import annotations

import functools
import logging
import math
import signal
import threading
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from remix_jax import checkpointing
from remix_jax import class_balance
from remix_jax import config_lib
from remix_jax import cpu_flags
from remix_jax import data
from remix_jax import metrics as metrics_lib
from remix_jax import models
from remix_jax import objective as objective_lib
from remix_jax import parallel
from remix_jax import report
from remix_jax import run_record
from remix_jax import schedules
from remix_jax import steps
from remix_jax import workdir as workdir_lib
from remix_jax.models import onednn
from remix_jax.models import sumix_heads


class _Interrupt:
  """Turns SIGTERM into a flag checked between steps.

  A SIGTERM that reached the handler it replaces counts too, when that
  handler has a true ``requested`` attribute (``main.py`` installs one
  before its slow imports).
  """

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
      if getattr(self._previous, "requested", False):
        self.requested = True
    return self

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint and stopping")
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


#: Auto kernel-gradient chunks on CPU: chunks of this many images ...
CPU_CHUNK_IMAGES = 16
#: ... and at most this many chunks (compile time grows with the count).
CPU_MAX_CHUNKS = 8


def resolve_weight_grad_chunks(value: int, per_device_batch: int) -> int:
  """``config.weight_grad_chunks`` with ``-1`` (auto) resolved by backend.

  Auto on CPU, where XLA's single kernel-gradient convolution is slow:
  ``clip(per_device_batch // 16, 1, 8)`` chunks, the fastest setting measured
  for ResNet-32 with the project's XLA:CPU flags (BENCHMARKS.md). On GPU/TPU:
  ``1`` (plain).

  Args:
    value: ``config.weight_grad_chunks`` (``-1`` or ``>= 1``).
    per_device_batch: training images per device and step.

  Returns:
    The number of chunks (``>= 1``).
  """
  if value != -1:
    return value
  if jax.default_backend() != "cpu":
    return 1
  return min(CPU_MAX_CHUNKS, max(1, per_device_batch // CPU_CHUNK_IMAGES))


def resolve_conv_impl(value: str) -> str:
  """``config.conv_impl`` with ``"auto"`` resolved by backend.

  Auto: oneDNN's convolutions and training-mode BatchNorm
  (:mod:`remix_jax.models.onednn`, :mod:`remix_jax.models.onednn_batch_norm`)
  on CPU when the native library loads, else XLA's with one warning; XLA's
  on GPU/TPU.

  Args:
    value: ``"auto"``, ``"xla"`` or ``"onednn"``.

  Returns:
    ``"xla"`` or ``"onednn"``.

  Raises:
    ValueError: ``"onednn"`` on a non-CPU backend, or where the library is
      unavailable (the message says why).
  """
  if value == "xla":
    return value
  backend = jax.default_backend()
  if backend != "cpu":
    if value == "onednn":
      raise ValueError(f"config.conv_impl=onednn runs on CPU only (backend is "
                       f"{backend}); use auto or xla")
    return "xla"
  reason = onednn.unavailable_reason()
  if reason is None:
    return "onednn"
  if value == "onednn":
    raise ValueError(f"config.conv_impl=onednn is unavailable: {reason}; use "
                     "auto or xla")
  _warn_once(f"oneDNN convolutions unavailable ({reason}); using XLA's")
  return "xla"


@functools.cache
def _warn_once(message: str) -> None:
  logging.warning(message)


#: How a run's JAX keys come from ``config.seed``, stored in its run record
#: (:mod:`remix_jax.run_record`) when the run starts from step 0.
KEY_DERIVATION = "fold_in(key(seed), purpose)"

#: The purposes of a run's keys, each folded into ``key(config.seed)`` once.
KEY_PURPOSES = ("init", "step")


def run_key(seed: int, purpose: str) -> jax.Array:
  """The key of one purpose of the run with ``seed``.

  ``fold_in(key(seed), i)`` with ``i`` the index of ``purpose`` in
  :data:`KEY_PURPOSES`: ``"init"`` initialises the model, ``"step"`` is the
  train state's base key (mixing and every other random choice of the step;
  :mod:`remix_jax.steps` folds in the step and the device). No two seeds or
  purposes share a stream.

  Args:
    seed: ``config.seed``.
    purpose: one of :data:`KEY_PURPOSES`.

  Returns:
    A typed JAX key.

  Raises:
    ValueError: ``purpose`` is not one of :data:`KEY_PURPOSES`.
  """
  if purpose not in KEY_PURPOSES:
    raise ValueError(f"purpose={purpose!r} must be one of "
                     f"{', '.join(KEY_PURPOSES)}")
  return jax.random.fold_in(jax.random.key(seed), KEY_PURPOSES.index(purpose))


def model_from_config(config, num_classes: int, *,
                      per_device_batch: int) -> nnx.Module:
  """The backbone of ``config.model`` (:func:`remix_jax.models.create_model`
  with the config's options), wrapped with SUMix's heads when
  ``config.sumix.enabled`` (``s`` defaults to the per-device batch)."""
  rngs = nnx.Rngs(run_key(config.seed, "init"))
  model = models.create_model(
      config.model, num_classes=num_classes, rngs=rngs,
      normalized_classifier=config.normalized_classifier,
      dtype=models.DTYPES[config.dtype],
      weight_grad_chunks=resolve_weight_grad_chunks(config.weight_grad_chunks,
                                                    per_device_batch),
      conv_impl=resolve_conv_impl(config.conv_impl))
  if not config.sumix.enabled:
    return model
  return sumix_heads.SUMixModel(
      model, num_classes=num_classes,
      scale=config.sumix.scale or per_device_batch,
      is_norm=config.sumix.is_norm, learn_scale=config.sumix.learn_scale,
      rngs=rngs)


def initial_state(config, model, tx) -> steps.TrainState:
  """The train state at step 0 (on the host)."""
  _, params, batch_stats = steps.split_model(model)
  return steps.TrainState(
      params=params, batch_stats=batch_stats, opt_state=tx.init(params),
      step=jnp.zeros((), jnp.int32),
      rng=jax.random.key_data(run_key(config.seed, "step")))


def build(config, mesh, *, num_classes: int, class_counts,
          steps_per_epoch: int):
  """The model's initial train state (replicated on ``mesh``) and the jitted
  train and eval steps for ``config``.

  Returns:
    ``(state, train_step, eval_step)``; see :mod:`remix_jax.steps`.
  """
  model = model_from_config(config, num_classes,
                            per_device_batch=config.batch_size // mesh.devices.size)
  model.eval()
  graphdef_eval = steps.split_model(model)[0]
  model.train()
  graphdef = steps.split_model(model)[0]
  lr_fn = schedules.create_learning_rate_fn(config, steps_per_epoch)
  tx = steps.make_optimizer(config, lr_fn)
  state = parallel.replicate(mesh, initial_state(config, model, tx))
  objective = objective_lib.make_objective(
      config, class_counts, steps_per_epoch=steps_per_epoch,
      num_mix_layers=model.num_mix_layers)
  train_step = steps.make_train_step(objective, graphdef, tx, lr_fn, mesh)
  eval_step = steps.make_eval_step(graphdef_eval, mesh, num_classes)
  return state, train_step, eval_step


def evaluate(eval_step, state, eval_data, mesh, class_counts) -> dict:
  """Top-1/top-5, per-class and group accuracy over the whole test split."""
  totals = None
  for batch in eval_data.iterate():
    arrays = parallel.shard_batch(
        mesh, (batch["image"], batch["label"], batch["mask"]))
    counts = eval_step(state, *arrays)
    totals = counts if totals is None else jax.tree.map(jnp.add, totals,
                                                        counts)
  correct1, correct5, total = (np.asarray(jax.device_get(x)) for x in totals)
  return metrics_lib.summarize(correct1, correct5, total, class_counts)


class _Progress:
  """Console progress (tqdm bar on process 0) and throughput bookkeeping."""

  def __init__(self, enabled: bool, total: int, initial: int):
    self.bar = None
    if enabled:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      self.bar = tqdm(total=total, initial=initial, unit="step",
                      dynamic_ncols=True)
    self.last_time = time.perf_counter()
    self.last_step = initial

  def update(self, step: int, epoch: int, loss: float, batch_size: int):
    now = time.perf_counter()
    rate = (step - self.last_step) * batch_size / max(now - self.last_time,
                                                      1e-9)
    self.last_time, self.last_step = now, step
    if self.bar is not None:
      self.bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}",
                           img_s=f"{rate:.0f}", refresh=False)
      self.bar.update(step - self.bar.n)
    return rate

  def restart_clock(self):
    """Excludes time spent outside training (evaluation) from img/s."""
    self.last_time = time.perf_counter()

  def write(self, text: str):
    if self.bar is not None:
      self.bar.write(text)
    else:
      logging.info(text)

  def close(self):
    if self.bar is not None:
      self.bar.close()


def _metric_writer(workdir: str, *, tensorboard: bool, log: bool):
  """TensorBoard scalars in ``workdir`` (process 0) and, when no progress bar
  is shown, the same scalars as log lines."""
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  writers = []
  if tensorboard:
    writers.append(metric_writers.SummaryWriter(workdir))
  if log:
    writers.append(metric_writers.LoggingWriter())
  return metric_writers.MultiWriter(writers)


def _flush_metrics(pending, first_step: int):
  """Fetches the buffered per-step metrics; raises ``FloatingPointError`` at
  the first non-finite loss, naming its step."""
  fetched = jax.device_get(pending)
  if not fetched:
    return {}
  for offset, m in enumerate(fetched):
    if not math.isfinite(float(m["loss"])):
      raise FloatingPointError(
          f"training loss is {float(m['loss'])} at step {first_step + offset}")
  return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[-1]}


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
                       stop_at_epoch: Optional[int] = None) -> dict:
  """Trains and evaluates the model described by ``config`` in ``workdir``.

  Resumes automatically from the newest good checkpoint in
  ``workdir/checkpoints``. On SIGTERM it saves a checkpoint (at an epoch's
  last step, then runs that epoch's evaluation if one is due) and returns
  ``{'interrupted': True, 'step': …}``. Before reading any data it checks the
  config, that ``workdir`` is writable, takes the workdir's lock and
  compares the config with the one that trained the workdir
  (:mod:`remix_jax.run_record`).

  It first sets the project's XLA:CPU flags
  (:func:`remix_jax.cpu_flags.set_cpu_flags`: nothing to do when they are
  already set, a warning when JAX computed something before and they can no
  longer take effect).

  Args:
    config: an ``ml_collections.ConfigDict`` like ``configs/default.py``.
    workdir: directory for checkpoints, TensorBoard events and results.
    allow_changes: config fields (dotted) that may differ from the config
      that trained ``workdir`` (e.g. ``['learning_rate']`` after a NaN).
    stop_at_epoch: stop once this many epochs are trained, with a
      checkpoint at that step written, and return ``{'stopped':
      True, 'step': …, 'epoch': …, 'steps_per_epoch': …}`` without the final
      evaluation (a shared
      prefix that deferred methods branch from). A run already past it
      returns at once. ``None``: train all ``config.num_epochs``.

  Returns:
    The final test metrics: ``top1``, ``top5``, ``per_class``, ``many``,
    ``medium``, ``few``, ``head``, ``mid``, ``tail``, ``num_examples`` (plus
    ``step``).

  Raises:
    ValueError: a bad config, or one that differs from the workdir's.
    workdir.WorkdirError: the workdir is not writable or in use.
    FloatingPointError: a non-finite loss or train state (nothing non-finite
      is saved).
    checkpointing.CheckpointError: a checkpoint could not be written.
  """
  cpu_flags.set_cpu_flags()
  config_lib.validate_config(config)
  if stop_at_epoch is not None and not 0 < stop_at_epoch <= config.num_epochs:
    raise ValueError(f"stop_at_epoch={stop_at_epoch} must be in 1.."
                     f"{config.num_epochs} (config.num_epochs)")
  workdir = workdir_lib.prepare(workdir)
  with _Interrupt() as interrupt:
    if interrupt.requested:
      logging.warning("SIGTERM received before training started; stopped")
      return {"interrupted": True, "step": None}
    parallel.initialize_distributed(config.distributed)
    primary = jax.process_index() == 0
    lock = workdir_lib.Lock(workdir)
    if primary:
      lock.acquire()
    try:
      changes = run_record.check(workdir, config, allow_changes)
      return _train(config, workdir, interrupt, primary=primary,
                    changes=changes, stop_at_epoch=stop_at_epoch)
    finally:
      lock.release()


def _train(config, workdir: str, interrupt: _Interrupt, *, primary: bool,
           changes: dict, stop_at_epoch: Optional[int]) -> dict:
  """The body of :func:`train_and_evaluate`, with the workdir checked and
  locked."""
  mesh = parallel.make_mesh(config.num_devices)
  parallel.check_batch_size(config.batch_size, mesh)
  parallel.check_batch_size(config.eval_batch_size, mesh,
                            "config.eval_batch_size")
  process, nproc = jax.process_index(), jax.process_count()

  train_data = data.create_train_data(
      config_lib.data_options(config.data),
      global_batch_size=config.batch_size, process_index=process,
      process_count=nproc)
  eval_data = data.create_eval_data(
      config_lib.data_options(config.data),
      global_batch_size=config.eval_batch_size, process_index=process,
      process_count=nproc)
  class_counts = np.asarray(train_data.class_counts)
  steps_per_epoch = train_data.steps_per_epoch
  if steps_per_epoch < 1:
    raise ValueError(f"the training split has {train_data.num_examples} "
                     f"images, fewer than config.batch_size="
                     f"{config.batch_size}")
  total_steps = config.num_epochs * steps_per_epoch
  stop_step = (total_steps if stop_at_epoch is None
               else stop_at_epoch * steps_per_epoch)

  state, train_step, eval_step = build(
      config, mesh, num_classes=train_data.num_classes,
      class_counts=class_counts, steps_per_epoch=steps_per_epoch)

  ckpt = checkpointing.Checkpointer(workdir, keep=config.keep_checkpoints,
                                    primary=primary)
  try:
    restored = ckpt.restore_latest(checkpointing.abstract_like(state))
  except BaseException:
    ckpt.close()
    raise
  if restored is not None:
    state = restored[1]
    logging.info("resumed from checkpoint %d in %s", restored[0],
                 ckpt.directory)

  step = int(jax.device_get(state.step))
  if interrupt.requested:
    ckpt.close()
    logging.warning("SIGTERM received before training started; nothing new "
                    "to save (step %d)", step)
    return {"interrupted": True, "step": step}
  resumed_step = step
  recorded = [False]
  if step >= stop_step and stop_step < total_steps:
    ckpt.close()
    return {"stopped": True, "step": step, "epoch": step // steps_per_epoch,
            "steps_per_epoch": steps_per_epoch}
  if restored is not None and step < total_steps and process == 0:
    report.record_resume(workdir, step)

  def save(at: int, state):
    ckpt.save(at, state)
    if primary and not recorded[0]:
      # Written once a checkpoint exists, so that a run which saved nothing
      # leaves no record to match.
      run_record.write(workdir, config, step=resumed_step, changes=changes,
                       key_derivation=KEY_DERIVATION)
      recorded[0] = True

  progress = _Progress(config.progress_bar and process == 0, total_steps, step)
  writer = _metric_writer(workdir, tensorboard=process == 0,
                          log=progress.bar is None)
  progress.write(
      f"{config.method} on {config.data.name} (rho={config.data.rho}, "
      f"{config.data.profile}): {train_data.num_examples} train images, "
      f"{steps_per_epoch} steps/epoch, {mesh.devices.size} device(s), "
      f"{nproc} process(es), starting at step {step}/{total_steps}")
  rebalance = class_balance.Rebalance.from_config(config)

  def evaluation_due(at: int) -> bool:
    return ((at // steps_per_epoch) % config.eval_every_epochs == 0
            or at >= total_steps)

  def evaluate_epoch(at: int) -> dict:
    """Evaluates ``state`` at the end of epoch ``at // steps_per_epoch``
    and reports it (TensorBoard, the log, ``progress.json``)."""
    epochs_done = at // steps_per_epoch
    out = evaluate(eval_step, state, eval_data, mesh, class_counts)
    writer.write_scalars(at, {f"test/{k}": v for k, v in out.items()
                              if isinstance(v, float)})
    progress.write(
        f"epoch {epochs_done}/{config.num_epochs}: test top-1 "
        f"{out['top1']:.2f}%  many {report.fmt(out['many'])}  medium "
        f"{report.fmt(out['medium'])}  few {report.fmt(out['few'])}")
    if process == 0:
      report.write_progress(workdir, epoch=epochs_done, step=at, metrics=out)
    progress.restart_clock()
    return out

  result = None
  try:
    while step < stop_step:
      epoch = step // steps_per_epoch
      pending, first = [], step
      batches = train_data.iterate(
          epoch, resample=rebalance.resamples(epoch),
          start_step=step % steps_per_epoch)
      for batch in batches:
        images, labels = parallel.shard_batch(
            mesh, (batch["image"], batch["label"]))
        state, step_metrics = train_step(state, images, labels)
        pending.append(step_metrics)
        step += 1
        end_of_epoch = step % steps_per_epoch == 0
        if step % config.log_every_steps == 0 or end_of_epoch:
          summary = _flush_metrics(pending, first)
          pending, first = [], step
          summary["images_per_second"] = progress.update(
              step, epoch, summary["loss"], config.batch_size)
          writer.write_scalars(step, summary)
        if interrupt.requested:
          _flush_metrics(pending, first)
          save(step, state)
          progress.write(f"interrupted: checkpoint {step} saved in "
                         f"{ckpt.directory}")
          # A SIGTERM is seen mostly at the epoch's end, where the loop
          # waits for the step's metrics; a resumed run starts the next
          # epoch, so this one's evaluation is due now (after the save: a
          # kill during it loses only the evaluation).
          if end_of_epoch and evaluation_due(step):
            evaluate_epoch(step)
          return {"interrupted": True, "step": step}
      epochs_done = step // steps_per_epoch
      last = step >= total_steps
      stopping = step >= stop_step and not last
      # Saved before the evaluation, so that a non-finite state stops the
      # run before its metrics are reported.
      if (epochs_done % config.checkpoint_every_epochs == 0 or last
          or stopping):
        save(step, state)
      if evaluation_due(step):
        result = evaluate_epoch(step)
      if stopping:  # the save above has been written (saves wait)
        progress.write(f"stopped at epoch {epochs_done}: checkpoint {step} "
                       f"saved in {ckpt.directory}")
        return {"stopped": True, "step": step, "epoch": epochs_done,
                "steps_per_epoch": steps_per_epoch}
    if result is None:  # resumed a finished run
      result = evaluate(eval_step, state, eval_data, mesh, class_counts)
  except FloatingPointError as err:
    raise FloatingPointError(_stop_message(str(err), ckpt.all_steps())
                             ) from None
  finally:
    progress.close()
    writer.flush()
    ckpt.close()
  result["step"] = step
  if process == 0:
    title = (f"{config.method} · {config.data.name} {config.data.profile} "
             f"rho={config.data.rho:g} · {config.model}")
    report.write_results(workdir, result, class_counts=class_counts,
                         class_names=train_data.class_names,
                         config_json=config.to_json_best_effort(),
                         title=title)
    progress.write(report.markdown_table(result, class_counts,
                                         train_data.class_names))
  return result
