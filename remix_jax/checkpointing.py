"""A small wrapper around orbax ``CheckpointManager``: atomic, verified,
finite checkpoints, and a fallback past a corrupt one.

The train state (params, BatchNorm statistics, optimizer state, step, rng) is
one pytree saved with ``StandardSave``; the data position follows from the
step, because the input pipeline is deterministic per (seed, epoch, step).

Guarantees:

* **atomic**: orbax writes each step into a temporary directory and renames
  it when complete;
* **verified**: every save records each array's shape, dtype and sha256 in the
  step's orbax metadata (``custom_metadata``, written within the same atomic
  step); a restore recomputes them. A checkpoint that fails to restore or to
  verify is moved to ``checkpoints/corrupt/<step>`` (never deleted) with one
  warning line, and the next older one is tried;
* **finite**: a state holding NaN/Inf is never saved (:class:`NonFiniteError`)
  and a restored one is treated as corrupt;
* each step restores on its own: the item layout is fixed up front, not read
  from the newest step's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp

from remix_jax import guards

#: Key of the per-array records in a step's orbax ``custom_metadata``.
ARRAYS_KEY = "remix_jax_arrays"
#: Where checkpoints that fail verification are moved.
CORRUPT_DIR = "corrupt"


class CheckpointError(RuntimeError):
  """A checkpoint could not be written or does not fit the run (one line)."""


class NonFiniteError(FloatingPointError):
  """The train state to save holds NaN or Inf."""

  def __init__(self, step: int):
    super().__init__(f"the train state holds NaN/Inf at step {step}")
    self.step = step


def _host_array(x) -> np.ndarray:
  """``x`` on the host; for a replicated array of several processes, the
  local copy."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    x = x.addressable_shards[0].data
  return np.asarray(jax.device_get(x))


def array_records(tree) -> dict[str, list]:
  """``{key path: [shape, dtype, sha256 of the bytes]}`` for every leaf."""
  records = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    x = _host_array(leaf)
    records[jax.tree_util.keystr(path)] = [
        list(x.shape), str(x.dtype),
        hashlib.sha256(x.tobytes(order="C")).hexdigest()]
  return records


def _layout(tree) -> dict[str, list]:
  """``{key path: [shape, dtype]}`` of a (possibly abstract) pytree."""
  return {jax.tree_util.keystr(path): [list(leaf.shape), str(np.dtype(
      leaf.dtype))] for path, leaf in jax.tree_util.tree_flatten_with_path(
          tree)[0]}


def _first_line(err: BaseException) -> str:
  text = str(err).strip()
  return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


class _DropLibraryRecords(logging.Filter):
  """Drops orbax's and TensorStore's log records (their tracebacks around a
  failed restore or write); the Checkpointer reports one line instead."""

  PARTS = ("/orbax/", "/tensorstore/", "/etils/")

  def filter(self, record) -> bool:
    return not any(part in record.pathname for part in self.PARTS)


@contextlib.contextmanager
def _quiet_libraries():
  loggers = [logging.getLogger(), logging.getLogger("absl")]
  handlers = {h for lg in loggers for h in lg.handlers}
  dropper = _DropLibraryRecords()
  for h in handlers:
    h.addFilter(dropper)
  try:
    yield
  finally:
    for h in handlers:
      h.removeFilter(dropper)


class Checkpointer:
  """Saves the train state under ``workdir/checkpoints`` and restores it.

  Args:
    workdir: the run's directory.
    keep: how many of the newest checkpoints to keep.
    primary: whether this process moves corrupt checkpoints aside (process 0
      of a multi-process run).
  """

  def __init__(self, workdir: str, keep: int = 2, *, primary: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._primary = primary
    self._pending = None  # the step of an asynchronous save in flight
    # One unnamed item, declared up front: orbax would otherwise infer the
    # layout from the newest step's files, so that losing them made every
    # older step unrestorable too.
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        item_handlers=ocp.StandardCheckpointHandler())

  def save(self, step: int, state, *, wait: bool = False) -> None:
    """Saves ``state`` as checkpoint ``step`` (asynchronously unless ``wait``).

    A step that already holds a checkpoint is kept (checkpoints are verified
    when restored, and a corrupt one has been moved aside by then).

    Raises:
      NonFiniteError: ``state`` holds NaN/Inf; nothing is written.
      CheckpointError: this or the previous asynchronous save failed (one
        line with the cause, e.g. a full disk).
    """
    self.wait()
    if step in self._manager.all_steps():
      return
    if not bool(jax.device_get(guards.all_finite(state))):
      raise NonFiniteError(step)
    records = array_records(state)
    self._pending = step
    with self._reporting_write_errors(step):
      self._manager.save(step, args=ocp.args.StandardSave(state), force=True,
                         custom_metadata={ARRAYS_KEY: records})
    if wait:
      self.wait()

  @contextlib.contextmanager
  def _reporting_write_errors(self, step: int):
    try:
      with _quiet_libraries():
        yield
    except Exception as err:  # pylint: disable=broad-except
      self._pending = None
      raise CheckpointError(
          f"checkpoint {step} could not be written in {self.directory} "
          f"({_first_line(err)})") from err

  def restore_latest(self, abstract_state):
    """The newest good checkpoint as ``(step, state)``, or ``None``.

    A checkpoint that fails to restore (truncated or corrupt files), whose
    arrays do not match their recorded checksums, or that holds NaN/Inf is
    moved to ``checkpoints/corrupt/<step>`` with one warning line, and the
    previous one is tried.

    Args:
      abstract_state: a pytree of ``jax.ShapeDtypeStruct`` with shardings
        (``jax.eval_shape`` of the initial state) that fixes the structure.

    Raises:
      CheckpointError: a checkpoint's recorded arrays have another layout
        than ``abstract_state`` (it was written by a different model or
        optimizer); nothing is moved.
    """
    self._manager.reload()
    wanted = _layout(abstract_state)
    for step in sorted(self._manager.all_steps(), reverse=True):
      records = self._records(step)
      if records is not None and _layout_of(records) != wanted:
        raise CheckpointError(
            f"checkpoint {step} in {self.directory} holds a train state of "
            f"another layout than this config builds "
            f"({_layout_diff(records, wanted)}); it belongs to a different "
            "model or optimizer")
      try:
        with _quiet_libraries():
          state = self._manager.restore(
              step, args=ocp.args.StandardRestore(abstract_state))
        problem = _verify(state, records)
      except Exception as err:  # pylint: disable=broad-except
        problem = f"it cannot be restored ({_first_line(err)})"
      if problem is None:
        if records is None:
          logging.warning("checkpoint %d has no checksums (written before "
                          "they were recorded); restored unverified", step)
        return step, state
      self._move_aside(step, problem)
    return None

  def _records(self, step: int):
    try:
      with _quiet_libraries():
        custom = self._manager.metadata(step).custom_metadata or {}
    except Exception:  # pylint: disable=broad-except
      return None  # unreadable metadata: the restore below reports it
    return custom.get(ARRAYS_KEY)

  def _move_aside(self, step: int, problem: str) -> None:
    target = os.path.join(self.directory, CORRUPT_DIR, str(step))
    suffix = 1
    while os.path.exists(target):
      target = os.path.join(self.directory, CORRUPT_DIR, f"{step}.{suffix}")
      suffix += 1
    if self._primary:
      os.makedirs(os.path.dirname(target), exist_ok=True)
      shutil.move(os.path.join(self.directory, str(step)), target)
    logging.warning("checkpoint %d in %s is corrupt: %s; moved it to %s and "
                    "falling back to the previous one", step, self.directory,
                    problem, target)
    self._manager.reload()

  def all_steps(self):
    return sorted(self._manager.all_steps())

  def wait(self) -> None:
    """Waits for the asynchronous save in flight.

    Raises:
      CheckpointError: it failed (one line with the cause).
    """
    if self._pending is None:
      return
    with self._reporting_write_errors(self._pending):
      self._manager.wait_until_finished()
    self._pending = None

  def close(self) -> None:
    """Waits for the save in flight (raising :class:`CheckpointError` if it
    failed) and releases orbax's threads."""
    try:
      self.wait()
    finally:
      try:
        with _quiet_libraries():
          self._manager.close()
      except Exception as err:  # pylint: disable=broad-except
        logging.warning("closing the checkpoints in %s: %s", self.directory,
                        _first_line(err))


def _layout_of(records: dict) -> dict[str, list]:
  return {key: record[:2] for key, record in records.items()}


def _layout_diff(records: dict, wanted: dict) -> str:
  have = _layout_of(records)
  for key in sorted(set(have) | set(wanted)):
    if have.get(key) != wanted.get(key):
      return f"{key}: {have.get(key)} saved, {wanted.get(key)} expected"
  return "same arrays"


def _verify(state, records) -> str | None:
  """Why a restored ``state`` is not good, or ``None``."""
  if not bool(jax.device_get(guards.all_finite(state))):
    return "it holds NaN/Inf"
  if records is None:
    return None
  for key, record in array_records(state).items():
    if record[2] != records[key][2]:
      return f"{key} does not match its sha256"
  return None


def abstract_like(tree):
  """``ShapeDtypeStruct`` (with sharding) for every array leaf of ``tree``."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                     sharding=getattr(x, "sharding", None)),
      tree)


def saved_steps(workdir: str) -> list[int]:
  """The steps of the finished checkpoints in ``workdir/checkpoints``, oldest
  first, read from the directory names without opening a checkpoint (orbax's
  temporary directories and ``corrupt/`` are not steps)."""
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(int(name) for name in os.listdir(directory)
                if name.isdigit()
                and os.path.isdir(os.path.join(directory, name)))


def copy_checkpoint(src_workdir: str, step: int, dst_workdir: str) -> str:
  """Copies checkpoint ``step`` of ``src_workdir`` into ``dst_workdir``, which
  must hold no checkpoint yet (a run branched from another run's state).

  The copy is written beside its destination and renamed when complete, so a
  crash leaves no partial step; its contents are verified when restored, as
  any checkpoint's.

  Returns:
    The copied step's directory.

  Raises:
    ValueError: ``src_workdir`` has no checkpoint ``step``, or
      ``dst_workdir`` already holds checkpoints (one line each).
  """
  src = os.path.join(src_workdir, "checkpoints", str(step))
  if step not in saved_steps(src_workdir):
    raise ValueError(f"{src_workdir} has no checkpoint {step} (it has "
                     f"{saved_steps(src_workdir) or 'none'})")
  if saved_steps(dst_workdir):
    raise ValueError(f"{dst_workdir} already holds checkpoints "
                     f"{saved_steps(dst_workdir)}; branch into a new workdir")
  directory = os.path.join(dst_workdir, "checkpoints")
  os.makedirs(directory, exist_ok=True)
  dst = os.path.join(directory, str(step))
  tmp = f"{dst}.copy-tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  shutil.copytree(src, tmp)
  os.replace(tmp, dst)
  return dst
