"""A small wrapper around orbax ``CheckpointManager``: atomic, verified,
finite checkpoints, and a fallback past a corrupt one.

The train state (params, BatchNorm statistics, optimizer state, step, rng) is
one pytree saved with ``StandardSave``; the data position follows from the
step, because the input pipeline is deterministic per (seed, epoch, step).

Guarantees:

* **atomic**: orbax writes each step into a temporary directory and renames
  it when complete; a save that fails (a full disk) raises
  :class:`CheckpointError` at its own step, in one line, and removes its
  temporary directory, so the previous checkpoints are all that is left;
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
import gc
import hashlib
import logging
import os
import re
import shutil
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from remix_jax import guards

#: Key of the per-array records in a step's orbax ``custom_metadata``.
ARRAYS_KEY = "remix_jax_arrays"
#: Where checkpoints that fail verification are moved.
CORRUPT_DIR = "corrupt"
#: The suffix of the temporary directory orbax writes a step into.
TMP_SUFFIX = ".orbax-checkpoint-tmp"


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


# TensorStore reports a failed system call inside its message, e.g.
# "Failed to write 52400 bytes to file 6: No space left on device
# [os_error_code='28']".
_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")


def _cause(err: BaseException) -> str:
  """The root cause of a failed write or read, as one line.

  Args:
    err: the exception orbax raised.

  Returns:
    ``[Errno 28] No space left on device`` where an operating system error
    is behind ``err`` (raised by Python or reported inside a TensorStore
    message), else the first line of the innermost exception of the chain.
  """
  chain = []
  while err is not None and err not in chain:
    chain.append(err)
    err = err.__cause__ or err.__context__
  for link in chain:
    code = link.errno if isinstance(link, OSError) else None
    match = _OS_ERROR_CODE.search(str(link))
    if not code and match:
      code = int(match.group(1))
    if code:
      return f"[Errno {code}] {os.strerror(code)}"
  return _first_line(chain[-1])


_LIBRARY_PARTS = ("/orbax/", "/tensorstore/", "/etils/")


def _from_library(tb) -> bool:
  while tb is not None:
    if any(part in tb.tb_frame.f_code.co_filename for part in _LIBRARY_PARTS):
      return True
    tb = tb.tb_next
  return False


class _DropLibraryNoise(logging.Filter):
  """On the root, absl and asyncio loggers: drops orbax's and TensorStore's
  records during a call into orbax, and during the call or after a failed
  one (``noise``) the records of errors raised in their code: with a
  traceback through it, or with none (set by TensorStore's C++)."""

  def __init__(self, noise: "_LibraryNoise"):
    super().__init__()
    self.noise = noise

  def filter(self, record) -> bool:
    if self.noise.depth and any(part in record.pathname
                                for part in _LIBRARY_PARTS):
      return False
    if self.noise.held and record.exc_info:
      tb = record.exc_info[2]
      return not (tb is None or _from_library(tb))
    return True


class _LibraryNoise:
  """Holds back orbax's and TensorStore's noise for one :class:`Checkpointer`,
  from :meth:`install` (when it opens) to :meth:`uninstall` (when it closes),
  which removes the logger filters and restores ``sys.unraisablehook``.

  When one array of a step fails to write or read (a full disk, a corrupt
  file), orbax raises that error while its other threads and TensorStore's
  still finish the step's remaining operations: they log their errors with
  tracebacks, their callbacks find orbax's event loop closed (an unraisable
  ``RuntimeError`` each) and asyncio logs the failed tasks whenever they are
  garbage collected, during the call or after it. The Checkpointer reports
  the failure in one line instead, so the noise is held back during its
  calls into orbax (:meth:`call`) and, once one of them failed, until it
  closes.
  """

  _LOGGERS = ("", "absl", "asyncio")

  def __init__(self):
    self.depth = 0  # calls into orbax in progress
    self.failed = False  # one of them has raised
    self._filter = _DropLibraryNoise(self)
    self._previous_hook = None

  @property
  def held(self) -> bool:
    return bool(self.depth or self.failed)

  def install(self) -> None:
    for name in self._LOGGERS:
      logging.getLogger(name).addFilter(self._filter)
    self._previous_hook = sys.unraisablehook
    sys.unraisablehook = self._hook

  def uninstall(self) -> None:
    if self.failed:  # abandoned coroutines report while still held back
      gc.collect()
    for name in self._LOGGERS:
      logging.getLogger(name).removeFilter(self._filter)
    if sys.unraisablehook == self._hook:
      sys.unraisablehook = self._previous_hook

  @contextlib.contextmanager
  def call(self):
    """Around one call into orbax."""
    self.depth += 1
    try:
      yield
    except Exception:
      self.failed = True
      raise
    finally:
      self.depth -= 1

  def _hook(self, unraisable):
    """Drops the "Event loop is closed" errors of TensorStore's callbacks
    and the errors of orbax's abandoned coroutines (raised in its code,
    reported when they are garbage collected) while held back; passes
    everything else on."""
    if self.held:
      if (unraisable.object is None
          and isinstance(unraisable.exc_value, RuntimeError)
          and str(unraisable.exc_value) == "Event loop is closed"):
        return
      if _from_library(unraisable.exc_traceback):
        return
    self._previous_hook(unraisable)


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
    # One unnamed item, declared up front: orbax would otherwise infer the
    # layout from the newest step's files, so that losing them made every
    # older step unrestorable too. The temporary directories of saves that a
    # killed run left unfinished are removed (orbax never restores them).
    self._noise = _LibraryNoise()
    self._noise.install()
    try:
      with self._noise.call():
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=True, cleanup_tmp_directories=True),
            item_handlers=ocp.StandardCheckpointHandler())
    except BaseException:
      self._noise.uninstall()
      raise

  def save(self, step: int, state) -> None:
    """Saves ``state`` as checkpoint ``step`` and waits until it is written.

    A step that already holds a checkpoint is kept (checkpoints are verified
    when restored, and a corrupt one has been moved aside by then).

    Args:
      step: the training step, the checkpoint's name.
      state: the train state pytree.

    Raises:
      NonFiniteError: ``state`` holds NaN/Inf; nothing is written.
      CheckpointError: the checkpoint could not be written (one line with
        the step, the cause, e.g. a full disk, and the checkpoint a re-run
        resumes from); its temporary directory is removed.
    """
    if step in self._manager.all_steps():
      return
    if not bool(jax.device_get(guards.all_finite(state))):
      raise NonFiniteError(step)
    records = array_records(state)
    try:
      with self._noise.call():
        self._manager.save(step, args=ocp.args.StandardSave(state), force=True,
                           custom_metadata={ARRAYS_KEY: records})
        # Waiting here rather than at the next save: the write takes a small
        # fraction of the checkpoint_every_epochs epochs between saves, and
        # in exchange a failed write (a full disk) is reported at its own
        # step, before anything is trained past it, instead of after
        # another interval of training whose checkpoint may fail the same
        # way.
        self._manager.wait_until_finished()
    except Exception as err:  # pylint: disable=broad-except
      raise CheckpointError(self._write_failure(step, err)) from err

  def _write_failure(self, step: int, err: BaseException) -> str:
    """Removes the temporary directory of the failed save of ``step`` and
    returns the one-line error."""
    if self._primary:
      for name in os.listdir(self.directory):
        if name.startswith(f"{step}{TMP_SUFFIX}"):
          _remove_settled(os.path.join(self.directory, name))
    kept = [s for s in self._manager.all_steps() if s != step]
    if kept:
      then = (f"checkpoint {max(kept)} is intact: re-run to resume from it "
              "once the cause is fixed")
    else:
      then = "no earlier checkpoint exists"
    return (f"checkpoint at step {step} could not be written: {_cause(err)} "
            f"({self.directory}); {then}")

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
        with self._noise.call():
          state = self._manager.restore(
              step, args=ocp.args.StandardRestore(abstract_state))
        problem = _verify(state, records)
      except Exception as err:  # pylint: disable=broad-except
        problem = f"it cannot be restored ({_cause(err)})"
      if problem is None:
        if records is None:
          logging.warning("checkpoint %d has no checksums (written before "
                          "they were recorded); restored unverified", step)
        return step, state
      self._move_aside(step, problem)
    return None

  def _records(self, step: int):
    try:
      with self._noise.call():
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

  def close(self) -> None:
    """Releases orbax's threads and the noise filters."""
    try:
      with self._noise.call():
        self._manager.close()
    except Exception as err:  # pylint: disable=broad-except
      logging.warning("closing the checkpoints in %s: %s", self.directory,
                      _cause(err))
    finally:
      self._noise.uninstall()


def _remove_settled(path: str, settle: float = 0.5,
                    timeout: float = 30.0) -> None:
  """Removes the directory ``path`` of a failed save and waits until it
  stays removed for ``settle`` seconds.

  A failed save raises at its first failed write while tensorstore's other
  writes of the step are still in flight; they create their parent
  directories again, during or just after a single ``rmtree``. Gives up after
  ``timeout`` seconds: a temporary directory left behind is removed when the
  next run opens the checkpoints (``cleanup_tmp_directories``).
  """
  deadline = time.monotonic() + timeout
  gone_since = None
  while time.monotonic() < deadline:
    if os.path.exists(path):
      shutil.rmtree(path, ignore_errors=True)
      gone_since = None
    elif gone_since is None:
      gone_since = time.monotonic()
    elif time.monotonic() - gone_since >= settle:
      return
    time.sleep(0.02)


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
