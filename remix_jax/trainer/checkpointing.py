"""A small wrapper around orbax ``CheckpointManager``: atomic, verified,
finite checkpoints, and a fallback past a corrupt one.

The train state (params, BatchNorm statistics, optimizer state, step, rng) is
one pytree saved with ``StandardSave``; the data position follows from the
step, because the input pipeline is deterministic per (seed, epoch, step).

Guarantees (each tested in ``tests/trainer/test_checkpointing.py``):

* **atomic**: orbax writes each step into a temporary directory and renames
  it when complete; a save that fails (a full disk) raises
  :class:`CheckpointError` at its own step, in one line naming the cause
  (and the path, where the error names one), and removes its temporary
  directory and its manifest, so the previous checkpoints are all that is
  left;
* **verified**: before orbax writes a step, the step's manifest
  ``checkpoint_manifests/<step>.json`` (in the workdir, beside
  ``checkpoints/``, not inside the step) records each array's shape, dtype
  and sha256, written atomically; a restore recomputes them. Manifests of
  pruned steps are removed after each save, and ``copy_checkpoint`` copies
  a step's manifest with it. A step's proof is its manifest, so deleting
  the step's ``_CHECKPOINT_METADATA`` or damaging it proves nothing either
  way. A checkpoint written before manifests is verified against the same
  records in its orbax metadata (``custom_metadata``). A step with neither
  is corrupt, unless ``allow_unverified`` (then it is restored with a
  warning);
* **no crash loop**: a step that cannot be used is moved to
  ``checkpoints/corrupt/<step>`` (never deleted; its manifest removed) with
  one warning line, and the next older one is tried: a damaged manifest,
  no proof (no manifest, and orbax metadata that is missing, not JSON or
  without records), recorded arrays of another layout while another step
  has this run's layout, a symlink or a plain file at its path, a failed
  restore, a checksum mismatch, NaN/Inf. When every step whose records can
  be read has another layout (another model or optimizer), nothing is
  moved: :class:`CheckpointError`, one line. A save moves a symlink or a
  non-directory at its step's path aside first, with one warning;
* **finite**: a state holding NaN/Inf is never saved (:class:`NonFiniteError`)
  and a restored one is treated as corrupt;
* **quiet**: orbax's and TensorStore's log lines and tracebacks are held
  back during its calls (:class:`_LibraryNoise`): a fallback past a step
  with unparsable metadata prints its one warning and nothing else;
* each step restores on its own: the item layout is fixed up front, not read
  from the newest step's files.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import sys
import time
from typing import NamedTuple, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp

from remix_jax import guards

#: Key of the per-array records in a step's orbax ``custom_metadata``.
ARRAYS_KEY = "remix_jax_arrays"
#: Where checkpoints that fail verification are moved.
CORRUPT_DIR = "corrupt"
#: The folder of the workdir, beside ``checkpoints``, where each step's
#: manifest (its per-array records) is written as ``<step>.json``.
MANIFEST_DIR = "checkpoint_manifests"
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


def _in_library(filename: str) -> bool:
  """Whether ``filename`` is orbax's, TensorStore's or etils' code."""
  return any(part in filename for part in _LIBRARY_PARTS)


def _from_library(tb) -> bool:
  while tb is not None:
    if _in_library(tb.tb_frame.f_code.co_filename):
      return True
    tb = tb.tb_next
  return False


def _see_library_task_errors() -> int:
  """Marks the errors of orbax's and TensorStore's finished asyncio tasks as
  retrieved, so that asyncio does not log "Task exception was never
  retrieved" when they are collected; returns how many of their tasks are
  not done yet."""
  pending = 0
  for obj in gc.get_objects():
    # type(), not isinstance(): the latter asks proxies (deprecated module
    # attributes) for __class__, and they warn.
    if not issubclass(type(obj), asyncio.Task):
      continue
    code = getattr(obj.get_coro(), "cr_code", None)
    if code is None or not _in_library(code.co_filename):
      continue
    if not obj.done():
      pending += 1
    elif not obj.cancelled():
      obj.exception()
  return pending


class _DropLibraryNoise(logging.Filter):
  """On the root, absl and asyncio loggers: drops orbax's and TensorStore's
  records during a call into orbax, and during the call or after a failed
  one (``noise``) the records of errors raised in their code: with a
  traceback through it, or with none (set by TensorStore's C++)."""

  def __init__(self, noise: "_LibraryNoise"):
    super().__init__()
    self.noise = noise

  def filter(self, record) -> bool:
    if self.noise.depth and _in_library(record.pathname):
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
  closes, when the errors of orbax's tasks that are still alive are marked
  as retrieved so that none reports later (at exit).
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

  def uninstall(self, settle_s: float = 5.0) -> None:
    if self.failed:
      # Abandoned coroutines report when collected; TensorStore's writes
      # still in flight release theirs a little later (on a busy machine,
      # after close), and a task whose error no one retrieved (orbax's loop
      # stopped at the first failure) may report at exit. Collect and mark
      # until nothing more is freed and every such task is done, within
      # ``settle_s``, while still held back.
      deadline = time.monotonic() + settle_s
      while True:
        freed = gc.collect()
        pending = _see_library_task_errors()
        if (not freed and not pending) or time.monotonic() >= deadline:
          break
        time.sleep(0.1)
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


class _Proof(NamedTuple):
  """What a step's contents are verified against, read before restoring it.

  Attributes:
    records: ``{key path: [shape, dtype, sha256]}`` from the step's manifest
      or, without one, its orbax metadata; ``None`` where there are none.
    problem: why the step cannot be used, known before restoring it (a
      symlink, a damaged manifest, no proof); ``None`` where it can be tried.
  """
  records: Optional[dict]
  problem: Optional[str]


class Checkpointer:
  """Saves the train state under ``workdir/checkpoints`` and restores it.

  Args:
    workdir: the run's directory.
    keep: how many of the newest checkpoints to keep.
    primary: whether this process writes manifests and moves corrupt
      checkpoints aside (process 0 of a multi-process run).
    allow_unverified: restore a step that has no checksums to verify it
      against (neither a manifest nor records in its orbax metadata), with
      a warning, instead of treating it as corrupt.
  """

  def __init__(self, workdir: str, keep: int = 2, *, primary: bool = True,
               allow_unverified: bool = False):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._manifests = os.path.join(os.path.abspath(workdir), MANIFEST_DIR)
    self._primary = primary
    self._allow_unverified = allow_unverified
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

  def _step_path(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def _manifest_path(self, step: int) -> str:
    return _manifest_path(self._manifests, step)

  def save(self, step: int, state) -> None:
    """Saves ``state`` as checkpoint ``step`` and waits until it is written.

    A step that already holds a checkpoint is kept (checkpoints are verified
    when restored, and a corrupt one has been moved aside by then). A
    symlink or a non-directory at the step's path is moved to ``corrupt/``
    first, with one warning naming what it was. The step's manifest is
    written before orbax starts writing the step.

    Args:
      step: the training step, the checkpoint's name.
      state: the train state pytree.

    Raises:
      NonFiniteError: ``state`` holds NaN/Inf; nothing is written.
      CheckpointError: the checkpoint could not be written (one line with
        the step, the cause, e.g. a full disk, the path where it is known,
        and the checkpoint a re-run resumes from); its temporary directory
        and its manifest are removed.
    """
    occupant = _occupant(self._step_path(step))
    if occupant is None and step in self._manager.all_steps():
      return
    if not bool(jax.device_get(guards.all_finite(state))):
      raise NonFiniteError(step)
    records = array_records(state)
    if occupant is not None:
      self._move_aside(step, occupant, then="writing the new one in its place")
    try:
      if self._primary:
        manifest = {"step": step, "arrays": records}
        _write_atomically(self._manifest_path(step),
                          json.dumps(manifest).encode())
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
    if self._primary:
      self._prune_manifests()

  def _write_failure(self, step: int, err: BaseException) -> str:
    """Removes the temporary directory and the manifest of the failed save
    of ``step`` and returns the one-line error."""
    if self._primary:
      for name in os.listdir(self.directory):
        if name.startswith(f"{step}{TMP_SUFFIX}"):
          _remove_settled(os.path.join(self.directory, name))
      if not os.path.lexists(self._step_path(step)):
        _remove_file(self._manifest_path(step))
    kept = [s for s in self._manager.all_steps() if s != step]
    if kept:
      then = (f"checkpoint {max(kept)} is intact: re-run to resume from it "
              "once the cause is fixed")
    else:
      then = "no earlier checkpoint exists"
    return (f"checkpoint at step {step} could not be written: {_cause(err)} "
            f"({_failed_path(err) or self.directory}); {then}")

  def _prune_manifests(self) -> None:
    """Removes the manifests of steps that no longer exist (pruned by orbax)
    and the temporary files of manifests a killed run left."""
    with contextlib.suppress(OSError):
      for name in os.listdir(self._manifests):
        match = _MANIFEST_NAME.fullmatch(name)
        if match and (match.group(2) or not os.path.lexists(
            self._step_path(int(match.group(1))))):
          _remove_file(os.path.join(self._manifests, name))

  def restore_latest(self, abstract_state):
    """The newest good checkpoint as ``(step, state)``, or ``None``.

    A step that cannot be used, whatever the cause (see
    :meth:`_restore_step`), is moved to ``checkpoints/corrupt/<step>`` with
    one warning line, and the previous one is tried.

    Args:
      abstract_state: a pytree of ``jax.ShapeDtypeStruct`` with shardings
        (``jax.eval_shape`` of the initial state) that fixes the structure.

    Raises:
      CheckpointError: every step whose records can be read has another
        layout than ``abstract_state`` (it was written by a different model
        or optimizer), nothing is moved; or a corrupt step could not be
        moved aside.
    """
    self._reload()
    wanted = _layout(abstract_state)
    proofs = {step: self._proof(step) for step in self._present_steps()}
    _refuse_another_layout(self.directory, proofs, wanted)
    _refuse_all_unproven(self.directory, proofs)
    for step in sorted(proofs, reverse=True):
      state, problem = self._restore_step(step, proofs[step], abstract_state,
                                          wanted)
      if problem is None:
        return step, state
      self._move_aside(step, problem)
    return None

  def verify(self, step: int, abstract_state) -> Optional[str]:
    """Why checkpoint ``step`` cannot be used as it is, or ``None`` when it
    restores, holds finite values and matches its recorded checksums; moves
    and logs nothing (:meth:`restore_latest` deals with a bad step).

    Args:
      step: the checkpoint's step.
      abstract_state: the layout the run builds (as for
        :meth:`restore_latest`).

    Returns:
      ``None``, or the problem: not present, a problem of its proof (no
      checksums included), another layout, a failed restore, a checksum
      mismatch or NaN/Inf.
    """
    self._reload()
    if step not in self._present_steps():
      return "it is not present"
    proof = self._proof(step)
    if proof.records is None and proof.problem is None:
      return _NO_CHECKSUMS
    return self._restore_step(step, proof, abstract_state,
                              _layout(abstract_state))[1]

  def _present_steps(self) -> list[int]:
    """The steps named in the checkpoints directory, whatever is there (a
    checkpoint, a symlink, a file)."""
    names = os.listdir(self.directory) if os.path.isdir(self.directory) else []
    return [int(name) for name in names
            if name.isdigit() and str(int(name)) == name]

  def _proof(self, step: int) -> _Proof:
    """What ``step`` is verified against: its manifest, else the records in
    its orbax metadata, else nothing (a problem unless unverified steps are
    allowed)."""
    occupant = _occupant(self._step_path(step))
    if occupant is not None:
      return _Proof(None, occupant)
    manifest = self._manifest_path(step)
    if os.path.lexists(manifest):
      try:
        return _Proof(_read_manifest(manifest, step), None)
      except (OSError, ValueError) as err:
        return _Proof(None, f"its manifest {manifest} cannot be read "
                      f"({_first_line(err)})")
    records = self._recorded(step)
    if records is not None or self._allow_unverified:
      return _Proof(records, None)
    return _Proof(None, f"{_NO_CHECKSUMS} "
                  f"(neither {manifest} nor records in its orbax metadata); "
                  "move it back and pass --allow_unverified_checkpoints to "
                  "load it unverified")

  def _records(self, step: int) -> Optional[dict]:
    """The per-array records ``step`` is verified against, or ``None``."""
    return self._proof(step).records

  def _recorded(self, step: int) -> Optional[dict]:
    """The well-formed per-array records in the orbax metadata of ``step``
    (checkpoints written before manifests), or ``None``."""
    try:
      with self._noise.call():
        custom = self._manager.metadata(step).custom_metadata or {}
    except Exception:  # pylint: disable=broad-except
      return None
    records = custom.get(ARRAYS_KEY) if isinstance(custom, dict) else None
    return records if _well_formed(records) else None

  def _restore_step(self, step: int, proof: _Proof, abstract_state,
                    wanted: dict):
    """Restores and verifies ``step``.

    Returns:
      ``(state, None)``, or ``(None, why the step cannot be used)``: a
      problem of its proof, recorded arrays of another layout than
      ``wanted``, a failed restore, a checksum mismatch or NaN/Inf.
    """
    if proof.problem is not None:
      return None, proof.problem
    records = proof.records
    if records is not None and _layout_of(records) != wanted:
      return None, ("its recorded arrays have another layout than this "
                    f"config builds ({_layout_diff(records, wanted)})")
    try:
      with self._noise.call():
        state = self._manager.restore(
            step, args=ocp.args.StandardRestore(abstract_state))
      problem = _verify(state, records)
    except Exception as err:  # pylint: disable=broad-except
      problem = f"it cannot be restored ({_cause(err)})"
    if problem is not None:
      return None, problem
    if records is None:
      logging.warning("checkpoint %d in %s has no checksums; restored "
                      "unverified (unverified checkpoints are allowed)", step,
                      self.directory)
    return state, None

  def _move_aside(self, step: int, problem: str,
                  then: str = "falling back to the previous one") -> None:
    """Moves what is at the path of ``step`` to ``corrupt/`` (the primary
    process), removes its manifest and logs one warning.

    Raises:
      CheckpointError: it could not be moved (one line, with the cause).
    """
    folder = os.path.join(self.directory, CORRUPT_DIR)
    target, suffix = os.path.join(folder, str(step)), 1
    while os.path.lexists(target):
      target = os.path.join(folder, f"{step}.{suffix}")
      suffix += 1
    if self._primary:
      try:
        os.makedirs(folder, exist_ok=True)
        os.rename(self._step_path(step), target)
      except OSError as err:
        raise CheckpointError(
            f"checkpoint {step} in {self.directory} is corrupt: {problem}; "
            f"it could not be moved to {target}: {_cause(err)} "
            f"({_failed_path(err) or folder})") from err
      _remove_file(self._manifest_path(step))
    logging.warning("checkpoint %d in %s is corrupt: %s; moved it to %s and "
                    "%s", step, self.directory, problem, target, then)
    self._reload()

  def _reload(self) -> None:
    """Re-reads orbax's list of steps (its log lines held back)."""
    with self._noise.call():
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


#: The start of a step's problem when it has no checksums at all.
_NO_CHECKSUMS = "it has no checksums to verify it against"


def _refuse_all_unproven(directory: str, proofs: dict) -> None:
  """Raises when no step present has checksums to verify it against (and
  unverified loading is off): moving them all aside would quarantine the
  workdir's whole history, so nothing is moved and the run stops.

  Raises:
    CheckpointError: one line naming the directory and the flag.
  """
  if proofs and all(proof.records is None and proof.problem is not None
                    and proof.problem.startswith(_NO_CHECKSUMS)
                    for proof in proofs.values()):
    raise CheckpointError(
        f"no checkpoint in {directory} has checksums to verify it against "
        "(no manifest, no records in its orbax metadata); nothing was moved: "
        "pass --allow_unverified_checkpoints to resume from the newest "
        "unverified, or use a new --workdir")


def _refuse_another_layout(directory: str, proofs: dict, wanted: dict) -> None:
  """Raises when every step with readable records has another layout than
  ``wanted`` (and one has): the checkpoints belong to another model, and
  none of them is moved.

  Args:
    directory: the checkpoints directory (for the message).
    proofs: ``{step: _Proof}`` of every step present.
    wanted: the layout the run builds (:func:`_layout`).

  Raises:
    CheckpointError: one line naming the newest such step and its first
      differing array.
  """
  readable = {step: proof.records for step, proof in proofs.items()
              if proof.records is not None}
  if not readable or any(_layout_of(records) == wanted
                         for records in readable.values()):
    return
  step = max(readable)
  raise CheckpointError(
      f"checkpoint {step} in {directory} holds a train state of another "
      f"layout than this config builds "
      f"({_layout_diff(readable[step], wanted)}); it belongs to a different "
      "model or optimizer")


def _occupant(path: str) -> Optional[str]:
  """What occupies a step's ``path`` instead of a checkpoint directory, as a
  problem (``it is a symlink to …``), or ``None`` (a directory, or
  nothing)."""
  if os.path.islink(path):
    return (f"it is a symlink (to {os.readlink(path)}), not a checkpoint "
            "directory")
  try:
    mode = os.lstat(path).st_mode
  except FileNotFoundError:
    return None
  if stat.S_ISDIR(mode):
    return None
  what = "a plain file" if stat.S_ISREG(mode) else "not a directory"
  return f"it is {what}, not a checkpoint directory"


# A step's manifest, or the temporary file it is written to.
_MANIFEST_NAME = re.compile(r"(\d+)\.json(\.tmp-\d+)?")


def _manifest_path(folder: str, step: int) -> str:
  """The manifest of ``step`` in the manifests ``folder``."""
  return os.path.join(folder, f"{step}.json")


def _write_atomically(path: str, data: bytes) -> None:
  """Writes ``data`` to a temporary file beside ``path``, flushed to disk,
  and renames it to ``path`` (creating its folder)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.tmp-{os.getpid()}"
  try:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    _remove_file(tmp)
    raise


def _remove_file(path: str) -> None:
  with contextlib.suppress(FileNotFoundError, NotADirectoryError):
    os.remove(path)


def _read_manifest(path: str, step: int) -> dict:
  """The per-array records of the manifest ``path`` of ``step``.

  Raises:
    OSError: it cannot be read.
    ValueError: it is not JSON, or not a well-formed manifest of ``step``.
  """
  with open(path, "rb") as f:
    manifest = json.loads(f.read())
  if not isinstance(manifest, dict) or manifest.get("step") != step:
    raise ValueError(f"not the manifest of step {step}")
  if not _well_formed(manifest.get("arrays")):
    raise ValueError("its records are not well formed")
  return manifest["arrays"]


def _well_formed(records) -> bool:
  """Whether ``records`` look like :func:`array_records`' output."""
  return isinstance(records, dict) and all(
      isinstance(record, list) and len(record) == 3
      and isinstance(record[0], list)
      and all(isinstance(n, int) for n in record[0])
      and isinstance(record[1], str) and isinstance(record[2], str)
      for record in records.values())


def _failed_path(err: BaseException) -> Optional[str]:
  """The file named by the first operating system error in the chain of
  ``err``, or ``None``."""
  seen = []
  while err is not None and err not in seen:
    seen.append(err)
    if isinstance(err, OSError) and err.filename:
      return os.fsdecode(err.filename)
    err = err.__cause__ or err.__context__
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
  """Copies checkpoint ``step`` of ``src_workdir``, with its manifest, into
  ``dst_workdir``, which must hold no checkpoint yet (a run branched from
  another run's state).

  The manifest is copied first and the step is written beside its
  destination and renamed when complete, so a crash leaves no partial step
  and no step without its manifest; its contents are verified when
  restored, as any checkpoint's.

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
  manifest = _manifest_path(os.path.join(src_workdir, MANIFEST_DIR), step)
  if os.path.exists(manifest):
    with open(manifest, "rb") as f:
      _write_atomically(
          _manifest_path(os.path.join(dst_workdir, MANIFEST_DIR), step),
          f.read())
  dst = os.path.join(directory, str(step))
  tmp = f"{dst}.copy-tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  shutil.copytree(src, tmp)
  os.replace(tmp, dst)
  return dst
