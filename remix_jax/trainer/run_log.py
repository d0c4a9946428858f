"""What a run shows while it trains: a progress bar on the console and the
scalars written to TensorBoard (and to the log when there is no bar)."""

from __future__ import annotations

import contextlib
import logging
import math
import time

import jax
import numpy as np


def flush_metrics(pending, first_step: int) -> dict:
  """Fetches the buffered per-step metrics and averages them; raises
  ``FloatingPointError`` at the first non-finite loss, naming its step."""
  fetched = jax.device_get(pending)
  if not fetched:
    return {}
  for offset, m in enumerate(fetched):
    if not math.isfinite(float(m["loss"])):
      raise FloatingPointError(
          f"training loss is {float(m['loss'])} at step {first_step + offset}")
  return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[-1]}


@contextlib.contextmanager
def _events_written(workdir: str):
  """Turns a failure of TensorBoard's writer (a full disk raises
  TensorFlow's errors, with tracebacks from its C++) into one ``OSError``
  line naming the workdir."""
  try:
    yield
  except Exception as err:  # pylint: disable=broad-except
    cause = (str(err).strip().splitlines() or [type(err).__name__])[0]
    raise OSError(f"TensorBoard events in {workdir} could not be written: "
                  f"{cause}") from None


def _metric_writer(workdir: str, *, tensorboard: bool, log: bool):
  """TensorBoard scalars in ``workdir`` and, when asked, the same scalars as
  log lines."""
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  writers = []
  if tensorboard:
    with _events_written(workdir):
      writers.append(metric_writers.SummaryWriter(workdir))
  if log:
    writers.append(metric_writers.LoggingWriter())
  return metric_writers.MultiWriter(writers)


class RunLog:
  """The progress bar (tqdm, process 0) and the metric writer of one run.

  Args:
    workdir: where TensorBoard's events go (process 0).
    bar: show a progress bar (process 0 only).
    total: the run's steps.
    initial: the step it starts at.
    batch_size: images per step (for images/s).
    primary: this is process 0.
  """

  def __init__(self, workdir: str, *, bar: bool, total: int, initial: int,
               batch_size: int, primary: bool):
    self.bar = None
    if bar and primary:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      self.bar = tqdm(total=total, initial=initial, unit="step",
                      dynamic_ncols=True)
    self.workdir = workdir
    self.writer = _metric_writer(workdir, tensorboard=primary,
                                 log=self.bar is None)
    self.batch_size = batch_size
    self.last_time = time.perf_counter()
    self.last_step = initial

  def step_metrics(self, step: int, epoch: int, pending, first: int) -> None:
    """Writes the mean of the buffered metrics of steps ``first..step`` (with
    images/s) and moves the bar."""
    summary = flush_metrics(pending, first)
    now = time.perf_counter()
    rate = (step - self.last_step) * self.batch_size / max(
        now - self.last_time, 1e-9)
    self.last_time, self.last_step = now, step
    summary["images_per_second"] = rate
    if self.bar is not None:
      self.bar.set_postfix(epoch=epoch + 1, loss=f"{summary['loss']:.4f}",
                           img_s=f"{rate:.0f}", refresh=False)
      self.bar.update(step - self.bar.n)
    self.scalars(step, summary)

  def scalars(self, step: int, values: dict) -> None:
    """Writes ``values`` (floats) at ``step``."""
    with _events_written(self.workdir):
      self.writer.write_scalars(step, values)

  def restart_clock(self) -> None:
    """Excludes time spent outside training (evaluation) from images/s."""
    self.last_time = time.perf_counter()

  def write(self, text: str) -> None:
    """A line on the console (above the bar), or in the log without one."""
    if self.bar is not None:
      self.bar.write(text)
    else:
      logging.info(text)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()
    with _events_written(self.workdir):
      self.writer.flush()
