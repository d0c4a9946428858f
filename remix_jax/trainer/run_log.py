"""What a run shows while it trains: a progress bar on the console and the
scalars written to TensorBoard (and to the log when there is no bar).

The scalars go to TensorBoard's event files through clu (``tensorboard``,
which imports TensorFlow) or, with ``config.metric_writer='jsonl'``, to
``metrics.jsonl`` in the workdir (one JSON object per write, ``{"step": …,
name: value, …}``), which needs no TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
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


#: The choices of ``config.metric_writer``.
METRIC_WRITERS = ("tensorboard", "jsonl")
#: The file of the ``jsonl`` writer, in the workdir.
JSONL_FILE = "metrics.jsonl"
#: Where each writer puts the scalars, for the run's last line.
SCALARS_WHERE = {"tensorboard": "TensorBoard events in {workdir}",
                 "jsonl": "scalars in {workdir}/" + JSONL_FILE}


class JsonLinesWriter:
  """Scalars appended to ``workdir/metrics.jsonl`` (and, when asked, logged
  as lines), one JSON object per write: ``{"step": step, name: value, …}``.

  Args:
    workdir: where the file goes; ``None`` writes no file.
    log: also log each write as ``[step] name=value, …``.
  """

  def __init__(self, workdir, *, log: bool):
    self.path = None if workdir is None else os.path.join(workdir, JSONL_FILE)
    self._file = None if self.path is None else open(  # pylint: disable=consider-using-with
        self.path, "a", encoding="utf-8")
    self._log = log

  def write_scalars(self, step: int, values: dict) -> None:
    values = {k: float(v) for k, v in values.items()}
    if self._file is not None:
      self._file.write(json.dumps({"step": int(step), **values}) + "\n")
    if self._log:
      logging.info("[%d] %s", step,
                   ", ".join(f"{k}={v:.6g}" for k, v in values.items()))

  def flush(self) -> None:
    if self._file is not None:
      self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None


def _metric_writer(workdir: str, *, kind: str, primary: bool, log: bool):
  """The writer of ``kind`` (:data:`METRIC_WRITERS`): scalars in ``workdir``
  (process 0) and, when asked, the same scalars as log lines."""
  if kind == "jsonl":
    return JsonLinesWriter(workdir if primary else None, log=log)
  from remix_jax import extras  # pylint: disable=g-import-not-at-top
  extras.require("config.metric_writer='tensorboard' (clu)")
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  writers = []
  if primary:
    with _events_written(workdir):
      writers.append(metric_writers.SummaryWriter(workdir))
  if log:
    writers.append(metric_writers.LoggingWriter())
  return metric_writers.MultiWriter(writers)


class RunLog:
  """The progress bar (tqdm, process 0) and the metric writer of one run.

  Args:
    workdir: where TensorBoard's events or ``metrics.jsonl`` go (process 0).
    bar: show a progress bar (process 0 only).
    total: the run's steps.
    initial: the step it starts at.
    batch_size: images per step (for images/s).
    primary: this is process 0.
    writer: one of :data:`METRIC_WRITERS`.
  """

  def __init__(self, workdir: str, *, bar: bool, total: int, initial: int,
               batch_size: int, primary: bool, writer: str = "tensorboard"):
    self.bar = None
    if bar and primary:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      self.bar = tqdm(total=total, initial=initial, unit="step",
                      dynamic_ncols=True)
    self.workdir = workdir
    self.writer = _metric_writer(workdir, kind=writer, primary=primary,
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
      self.writer.close()
