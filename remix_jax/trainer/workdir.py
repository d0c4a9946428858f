"""A run's directory: created and checked writable up front, and locked so
that one process at a time trains in it."""

from __future__ import annotations

import errno
import fcntl
import os
import socket

#: The lock file in the workdir (it names the holder).
LOCK_FILE = "lock"


class WorkdirError(RuntimeError):
  """The workdir cannot be used (not writable, or in use); one line."""


def prepare(workdir: str) -> str:
  """Creates ``workdir`` if needed and checks that files can be written in
  it, before any data is read.

  Returns:
    The absolute path.

  Raises:
    WorkdirError: it is empty, or cannot be created or written.
  """
  if not str(workdir or "").strip():
    raise WorkdirError("the workdir is empty; name a directory for the run")
  path = os.path.abspath(workdir)
  probe = os.path.join(path, f".write_test.{os.getpid()}")
  try:
    os.makedirs(path, exist_ok=True)
    with open(probe, "w"):
      pass
    os.remove(probe)
  except OSError as err:
    raise WorkdirError(f"workdir {path} is not writable ({err.strerror or err})"
                       ) from None
  return path


class Lock:
  """An exclusive ``fcntl.flock`` on ``workdir/lock``, held while training.

  The kernel drops the lock when its process exits, however it exits, so a
  lock file left by a dead process does not block; a live holder makes
  :meth:`acquire` fail at once.

  Args:
    workdir: the run's directory (it must exist).
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(os.path.abspath(workdir), LOCK_FILE)
    self._fd = None

  def acquire(self) -> "Lock":
    """Takes the lock.

    Raises:
      WorkdirError: another live process holds it (named in the message).
    """
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
      os.close(fd)
      if err.errno not in (errno.EAGAIN, errno.EACCES):
        raise WorkdirError(f"cannot lock {self.path} ({err.strerror})"
                           ) from None
      raise WorkdirError(
          f"workdir {os.path.dirname(self.path)} is in use by another run "
          f"({holder}); wait for it to finish or use another --workdir"
      ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    self._fd = fd
    return self

  def release(self) -> None:
    if self._fd is not None:
      os.close(self._fd)  # closing the descriptor releases the flock
      self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
