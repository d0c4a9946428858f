"""Checkpoints that cannot lie: verified, finite, each step on its own, and
a failed write reported at its step."""

import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import pathlib
import resource
import shutil
import signal
import threading
import time
import types
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from remix_jax.trainer import checkpointing


def _state(value=1.0):
  noise = np.random.RandomState(0).randn(64, 64).astype(np.float32)
  return {"w": jnp.asarray(noise) * value,
          "b": jnp.arange(8, dtype=jnp.float32) * value,
          "step": jnp.array(3, jnp.int32)}


def _saved(tmp_path, steps=(1, 2)):
  ckpt = checkpointing.Checkpointer(str(tmp_path), keep=5)
  for s in steps:
    ckpt.save(s, _state(float(s)))
  ckpt.close()
  return checkpointing.Checkpointer(str(tmp_path), keep=5)


def _largest_data_file(step_dir):
  files = [os.path.join(r, f) for r, _, fs in os.walk(step_dir) for f in fs
           if r.endswith(os.path.join("ocdbt.process_0", "d"))]
  return max(files, key=os.path.getsize)


def _flip(path):
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.seek(size // 2)
    chunk = bytearray(f.read(4))
    f.seek(size // 2)
    f.write(bytes(b ^ 0xFF for b in chunk))


def test_bit_flip_is_detected_moved_aside_and_older_restored(tmp_path, caplog):
  ckpt = _saved(tmp_path)
  _flip(_largest_data_file(tmp_path / "checkpoints" / "2" / "default"))
  with caplog.at_level(logging.WARNING):
    step, state = ckpt.restore_latest(checkpointing.abstract_like(_state()))
  assert step == 1
  np.testing.assert_array_equal(state["b"], np.arange(8))
  assert (tmp_path / "checkpoints" / "corrupt" / "2").is_dir()
  assert not (tmp_path / "checkpoints" / "2").exists()
  warnings = [r for r in caplog.records if "corrupt" in r.getMessage()]
  assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
  # A later save of step 2 writes a fresh checkpoint that verifies.
  ckpt.save(2, _state(2.0))
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    step, state = ckpt.restore_latest(checkpointing.abstract_like(_state()))
  assert step == 2 and "corrupt" not in caplog.text
  ckpt.close()


def test_older_checkpoint_restores_without_the_newest_item(tmp_path):
  import shutil
  ckpt = _saved(tmp_path)
  shutil.rmtree(tmp_path / "checkpoints" / "2" / "default")
  step, _ = ckpt.restore_latest(checkpointing.abstract_like(_state()))
  assert step == 1
  assert (tmp_path / "checkpoints" / "corrupt" / "2").is_dir()
  ckpt.save(3, _state(3.0))  # saving still works
  assert ckpt.restore_latest(checkpointing.abstract_like(_state()))[0] == 3
  ckpt.close()


def test_non_finite_state_is_never_saved(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path))
  bad = _state()
  bad["w"] = bad["w"].at[3, 4].set(jnp.nan)
  with pytest.raises(checkpointing.NonFiniteError, match="at step 5"):
    ckpt.save(5, bad)
  assert ckpt.all_steps() == []
  ckpt.close()


def test_a_poisoned_checkpoint_of_an_older_version_is_moved_aside(tmp_path):
  """A NaN checkpoint written without checksums (as before) is not resumed."""
  ckpt = _saved(tmp_path, steps=(1,))
  ckpt.close()
  bad = _state(2.0)
  bad["b"] = bad["b"].at[0].set(jnp.inf)
  manager = ocp.CheckpointManager(str(tmp_path / "checkpoints"))
  manager.save(2, args=ocp.args.StandardSave(bad))
  manager.wait_until_finished()
  manager.close()
  ckpt = checkpointing.Checkpointer(str(tmp_path))
  assert ckpt.restore_latest(checkpointing.abstract_like(_state()))[0] == 1
  assert (tmp_path / "checkpoints" / "corrupt" / "2").is_dir()
  ckpt.close()


def test_another_layout_is_refused_and_nothing_moved(tmp_path):
  ckpt = _saved(tmp_path)
  other = {**_state(), "w": jnp.ones((32, 64))}
  with pytest.raises(checkpointing.CheckpointError, match="another layout"):
    ckpt.restore_latest(checkpointing.abstract_like(other))
  assert ckpt.all_steps() == [1, 2]
  ckpt.close()


def test_checksums_are_recorded_per_array(tmp_path):
  ckpt = _saved(tmp_path, steps=(1,))
  records = ckpt._records(1)  # pylint: disable=protected-access
  assert set(records) == {"['w']", "['b']", "['step']"}
  assert records["['w']"][:2] == [[64, 64], "float32"]
  ckpt.close()


@contextlib.contextmanager
def _file_size_limit(nbytes):
  """Writes past ``nbytes`` of a file fail with EFBIG, as on a full disk."""
  old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
  old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, old_limit[1]))
  try:
    yield
  finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
    signal.signal(signal.SIGXFSZ, old_handler)


def test_failed_write_raises_one_line_at_its_step_and_keeps_the_rest(
    tmp_path, caplog, capfd):
  ckpt = _saved(tmp_path)
  data = _largest_data_file(tmp_path / "checkpoints" / "2" / "default")
  limit = os.path.getsize(data) // 2  # above the metadata, below the data
  with caplog.at_level(logging.INFO):
    with _file_size_limit(limit):
      with pytest.raises(checkpointing.CheckpointError) as err:
        ckpt.save(3, _state(3.0))
  message = str(err.value)
  assert message == (
      "checkpoint at step 3 could not be written: [Errno 27] File too large "
      f"({tmp_path / 'checkpoints'}); checkpoint 2 is intact: re-run to "
      "resume from it once the cause is fixed")
  out, err_text = capfd.readouterr()
  assert "Traceback" not in out + err_text + caplog.text
  assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
  # No partial step is left, and the previous ones restore and verify.
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  assert ckpt.all_steps() == [1, 2]
  step, state = ckpt.restore_latest(checkpointing.abstract_like(_state()))
  assert step == 2 and "corrupt" not in caplog.text
  np.testing.assert_array_equal(state["b"], np.arange(8) * 2.0)
  ckpt.save(3, _state(3.0))  # with room again
  assert ckpt.restore_latest(checkpointing.abstract_like(_state()))[0] == 3
  ckpt.close()


def test_a_failed_save_is_removed_while_its_writes_still_create_it(
    tmp_path):
  # What tensorstore's in-flight writes do after a save has failed: create
  # their parent directories again, during and just after the removal.
  path = tmp_path / "3.orbax-checkpoint-tmp"
  until = time.monotonic() + 0.3
  recreated = []

  def writer():
    while time.monotonic() < until:
      # The removal may take a parent away between two of mkdir's levels.
      with contextlib.suppress(FileNotFoundError):
        (path / "default" / "ocdbt.process_0" / "d").mkdir(parents=True,
                                                            exist_ok=True)
        recreated.append(1)
      time.sleep(0.005)

  thread = threading.Thread(target=writer)
  thread.start()
  checkpointing._remove_settled(str(path), settle=1.0, timeout=10.0)
  thread.join()
  assert len(recreated) > 1
  assert not path.exists()


def test_write_and_read_failures_name_their_cause():
  full = ValueError('OUT_OF_RANGE: Error writing "w/0.0": Failed to write '
                    "4410 bytes to file 6: No space left on device "
                    "[os_error_code='28']")
  assert checkpointing._cause(full) == "[Errno 28] No space left on device"
  try:
    try:
      raise OSError(errno.EDQUOT, "quota")
    except OSError as inner:
      raise RuntimeError("commit failed") from inner
  except RuntimeError as outer:
    assert checkpointing._cause(outer) == (
        f"[Errno {errno.EDQUOT}] {os.strerror(errno.EDQUOT)}")
  try:
    try:
      raise ValueError("OUT_OF_RANGE: Requested byte range [0, 15220) is not "
                       "valid for value of size 7774")
    except ValueError as inner:
      raise Exception("Encountered error while reading array index\n"
                      "spec ...") from inner
  except Exception as outer:  # pylint: disable=broad-except
    assert checkpointing._cause(outer) == (
        "ValueError: OUT_OF_RANGE: Requested byte range [0, 15220) is not "
        "valid for value of size 7774")


def _raised_in(filename: str):
  """An exception whose traceback runs through code in ``filename``."""
  namespace = {}
  exec(compile("def fail():\n  raise Exception('read failed')\n", filename,
               "exec"), namespace)
  try:
    namespace["fail"]()
  except Exception as err:  # pylint: disable=broad-except
    return err


def test_abandoned_orbax_coroutines_are_dropped_only_after_a_failure():
  passed = []
  noise = checkpointing._LibraryNoise()  # pylint: disable=protected-access
  noise._previous_hook = passed.append  # pylint: disable=protected-access
  hook = noise._hook  # pylint: disable=protected-access

  def unraisable(err):
    return types.SimpleNamespace(exc_type=type(err), exc_value=err,
                                 exc_traceback=err.__traceback__,
                                 err_msg=None, object=object())

  library = unraisable(_raised_in("/site-packages/orbax/checkpoint/x.py"))
  own = unraisable(_raised_in("/home/user/train.py"))
  hook(library)  # no failure yet: reported
  noise.failed = True
  hook(library)
  hook(own)
  assert passed == [library, own]


def _failed_task(loop, filename: str):
  """A task of ``loop`` whose coroutine, defined in ``filename``, raised and
  whose error no one retrieved."""
  namespace = {}
  exec(compile("async def write():\n  raise ValueError('write failed')\n",
               filename, "exec"), namespace)
  task = loop.create_task(namespace["write"]())
  loop.run_until_complete(asyncio.sleep(0))
  assert task.done()
  return task


def test_errors_of_orbax_tasks_left_behind_by_a_failure_are_not_logged_later(
    caplog):
  loop = asyncio.new_event_loop()
  tasks = [_failed_task(loop, "/site-packages/orbax/checkpoint/x.py"),
           _failed_task(loop, "/home/user/train.py")]
  loop.close()
  noise = checkpointing._LibraryNoise()  # pylint: disable=protected-access
  noise.install()
  noise.failed = True
  noise.uninstall(settle_s=1.0)
  with caplog.at_level(logging.ERROR, logger="asyncio"):
    del tasks
    gc.collect()
  logged = [r for r in caplog.records
            if "exception was never retrieved" in r.getMessage()]
  # The library's task is marked as seen; the caller's own still reports.
  assert [r.getMessage().count("train.py") > 0 for r in logged] == [True]


class _WarnsOnClass:
  """Like a deprecated module attribute's proxy: asking it for its class
  warns."""

  @property
  def __class__(self):
    warnings.warn("_WarnsOnClass asked for its class", FutureWarning)
    return _WarnsOnClass


def test_looking_for_orbax_tasks_asks_no_object_for_its_class():
  proxy = _WarnsOnClass()
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    checkpointing._see_library_task_errors()  # pylint: disable=protected-access
  # Other threads' warnings may land in ``caught`` too; only the proxy's
  # counts.
  assert proxy is not None and not [
      w for w in caught if "_WarnsOnClass" in str(w.message)]


def _only_warning(caplog) -> str:
  """The one WARNING-or-worse record of ``caplog``, a single line."""
  warnings = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING]
  assert len(warnings) == 1, warnings
  assert "\n" not in warnings[0]
  return warnings[0]


def _save_the_old_way(tmp_path, steps=(1, 2)):
  """Checkpoints as written before manifests: the records in orbax's
  ``custom_metadata`` only."""
  manager = ocp.CheckpointManager(
      str(tmp_path / "checkpoints"),
      item_handlers=ocp.StandardCheckpointHandler())
  for s in steps:
    state = _state(float(s))
    manager.save(s, args=ocp.args.StandardSave(state), custom_metadata={
        checkpointing.ARRAYS_KEY: checkpointing.array_records(state)})
    manager.wait_until_finished()
  manager.close()
  assert not (tmp_path / checkpointing.MANIFEST_DIR).exists()


def _restore(tmp_path, **kwargs):
  ckpt = checkpointing.Checkpointer(str(tmp_path), keep=5, **kwargs)
  try:
    return ckpt.restore_latest(checkpointing.abstract_like(_state()))
  finally:
    ckpt.close()


def test_deleted_metadata_and_flipped_bits_are_detected(tmp_path, caplog):
  _saved(tmp_path).close()
  step_dir = tmp_path / "checkpoints" / "2"
  (step_dir / "_CHECKPOINT_METADATA").unlink()
  _flip(_largest_data_file(step_dir / "default"))
  with caplog.at_level(logging.INFO):
    step, state = _restore(tmp_path)
  assert step == 1
  np.testing.assert_array_equal(state["b"], np.arange(8))
  assert "['w'] does not match its sha256" in _only_warning(caplog)
  assert (tmp_path / "checkpoints" / "corrupt" / "2").is_dir()
  assert not (tmp_path / checkpointing.MANIFEST_DIR / "2.json").exists()
  assert "Metadata file" not in caplog.text


def test_a_checkpoint_without_checksums_is_refused_unless_allowed(
    tmp_path, caplog):
  for name in ("flipped", "intact"):
    _saved(tmp_path / name).close()
    (tmp_path / name / checkpointing.MANIFEST_DIR / "2.json").unlink()
    (tmp_path / name / "checkpoints" / "2" / "_CHECKPOINT_METADATA").unlink()
  _flip(_largest_data_file(
      tmp_path / "flipped" / "checkpoints" / "2" / "default"))
  with caplog.at_level(logging.INFO):
    assert _restore(tmp_path / "flipped")[0] == 1
  assert "it has no checksums to verify it against" in _only_warning(caplog)
  assert (tmp_path / "flipped" / "checkpoints" / "corrupt" / "2").is_dir()
  caplog.clear()
  with caplog.at_level(logging.INFO):
    step, state = _restore(tmp_path / "intact", allow_unverified=True)
  assert step == 2 and "restored unverified" in _only_warning(caplog)
  np.testing.assert_array_equal(state["b"], np.arange(8) * 2.0)


def test_no_step_with_checksums_stops_and_moves_nothing(tmp_path):
  _saved(tmp_path).close()
  for step in ("1", "2"):
    (tmp_path / checkpointing.MANIFEST_DIR / f"{step}.json").unlink()
    (tmp_path / "checkpoints" / step / "_CHECKPOINT_METADATA").unlink()
  with pytest.raises(checkpointing.CheckpointError,
                     match="no checkpoint in .* has checksums to verify it "
                     "against .*nothing was moved: pass "
                     "--allow_unverified_checkpoints"):
    _restore(tmp_path)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  assert _restore(tmp_path, allow_unverified=True)[0] == 2


def test_a_checkpoint_written_before_manifests_restores_verified(
    tmp_path, caplog):
  _save_the_old_way(tmp_path)
  with caplog.at_level(logging.WARNING):
    step, state = _restore(tmp_path)
  assert step == 2 and not caplog.records
  np.testing.assert_array_equal(state["b"], np.arange(8) * 2.0)
  _flip(_largest_data_file(tmp_path / "checkpoints" / "2" / "default"))
  with caplog.at_level(logging.WARNING):
    assert _restore(tmp_path)[0] == 1
  assert "does not match its sha256" in _only_warning(caplog)


def _flip_shape(path):
  """``['w']``'s recorded shape [64, 64] becomes [54, 64] in ``path``."""
  text = path.read_text()
  assert text.count("[[64, 64]") == 1
  path.write_text(text.replace("[[64, 64]", "[[54, 64]"))


@pytest.mark.parametrize("where", ["metadata", "manifest"])
def test_a_flipped_shape_in_the_newest_records_falls_back(
    tmp_path, caplog, where):
  if where == "metadata":
    _save_the_old_way(tmp_path)
    records = tmp_path / "checkpoints" / "{}" / "_CHECKPOINT_METADATA"
  else:
    _saved(tmp_path).close()
    records = tmp_path / checkpointing.MANIFEST_DIR / "{}.json"
  _flip_shape(pathlib.Path(str(records).format(2)))
  with caplog.at_level(logging.INFO):
    assert _restore(tmp_path)[0] == 1
  assert "another layout than this config builds" in _only_warning(caplog)
  assert (tmp_path / "checkpoints" / "corrupt" / "2").is_dir()
  # When every step has another layout, the run stops and nothing moves.
  _flip_shape(pathlib.Path(str(records).format(1)))
  with pytest.raises(checkpointing.CheckpointError,
                     match=r"^checkpoint 1 .* another layout .* different "
                     r"model or optimizer$"):
    _restore(tmp_path)
  assert (tmp_path / "checkpoints" / "1").is_dir()


@pytest.mark.parametrize("what", ["symlink", "file"])
def test_a_symlink_or_a_file_at_a_step_path_is_moved_aside(
    tmp_path, caplog, what):
  ckpt = _saved(tmp_path)
  checkpoints = tmp_path / "checkpoints"

  def occupy(step):
    path = checkpoints / str(step)
    if path.is_dir():
      shutil.rmtree(path)
    if what == "symlink":
      path.symlink_to(path)  # to itself
    else:
      path.write_text("not a checkpoint")

  occupy(2)
  with caplog.at_level(logging.INFO):
    step, _ = ckpt.restore_latest(checkpointing.abstract_like(_state()))
  assert step == 1
  expected = "a symlink" if what == "symlink" else "a plain file"
  assert expected in _only_warning(caplog)
  assert os.path.lexists(checkpoints / "corrupt" / "2")
  ckpt.save(2, _state(2.0))
  occupy(3)  # found by a save, not by a restore
  caplog.clear()
  with caplog.at_level(logging.INFO):
    ckpt.save(3, _state(3.0))
  assert expected in _only_warning(caplog)
  assert os.path.lexists(checkpoints / "corrupt" / "3")
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    assert ckpt.restore_latest(
        checkpointing.abstract_like(_state()))[0] == 3
  assert not caplog.records and ckpt.all_steps() == [1, 2, 3]
  ckpt.close()


def test_a_save_names_the_path_it_cannot_write(tmp_path):
  ckpt = _saved(tmp_path)
  manifests = tmp_path / checkpointing.MANIFEST_DIR
  shutil.rmtree(manifests)
  manifests.write_text("in the way")
  with pytest.raises(checkpointing.CheckpointError) as err:
    ckpt.save(3, _state(3.0))
  assert str(err.value) == (
      f"checkpoint at step 3 could not be written: [Errno {errno.EEXIST}] "
      f"{os.strerror(errno.EEXIST)} ({manifests}); checkpoint 2 is intact: "
      "re-run to resume from it once the cause is fixed")
  assert ckpt.all_steps() == [1, 2]
  ckpt.close()


def test_manifests_follow_their_steps(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path), keep=2)
  for s in (1, 2, 3):
    ckpt.save(s, _state(float(s)))
  manifests = tmp_path / checkpointing.MANIFEST_DIR
  assert sorted(os.listdir(manifests)) == ["2.json", "3.json"]  # 1 pruned
  assert json.loads((manifests / "3.json").read_text()) == {
      "step": 3, "arrays": checkpointing.array_records(_state(3.0))}
  data = _largest_data_file(tmp_path / "checkpoints" / "3" / "default")
  with _file_size_limit(os.path.getsize(data) // 2):
    with pytest.raises(checkpointing.CheckpointError, match="step 4"):
      ckpt.save(4, _state(4.0))
  assert sorted(os.listdir(manifests)) == ["2.json", "3.json"]
  ckpt.close()


def test_copy_checkpoint_carries_the_manifest(tmp_path):
  src, dst = tmp_path / "src", tmp_path / "dst"
  _saved(src).close()
  checkpointing.copy_checkpoint(str(src), 2, str(dst))
  name = os.path.join(checkpointing.MANIFEST_DIR, "2.json")
  assert (dst / name).read_bytes() == (src / name).read_bytes()
  # The copy is verified against it: losing its metadata proves nothing.
  (dst / "checkpoints" / "2" / "_CHECKPOINT_METADATA").unlink()
  _flip(_largest_data_file(dst / "checkpoints" / "2" / "default"))
  assert _restore(dst) is None
  assert (dst / "checkpoints" / "corrupt" / "2").is_dir()


def test_orbax_says_nothing_during_a_fallback(tmp_path, caplog, capfd):
  _save_the_old_way(tmp_path)
  (tmp_path / "checkpoints" / "2" / "_CHECKPOINT_METADATA").write_text(
      '{"custom_metadata": {"remix_jax_arrays": {"[\'w\']": [[6')
  with caplog.at_level(logging.DEBUG):
    assert _restore(tmp_path)[0] == 1
  assert "no checksums" in _only_warning(caplog)
  out, err = capfd.readouterr()
  assert "json parse" not in caplog.text + out + err


def test_a_damaged_manifest_falls_back_and_damaged_metadata_does_not(
    tmp_path, caplog):
  _saved(tmp_path).close()
  manifest = tmp_path / checkpointing.MANIFEST_DIR / "2.json"
  manifest.write_bytes(manifest.read_bytes()[:50])
  (tmp_path / "checkpoints" / "1" / "_CHECKPOINT_METADATA").write_text("{")
  with caplog.at_level(logging.INFO):
    step, state = _restore(tmp_path)
  # Step 1 is verified against its manifest; its metadata is not needed.
  assert step == 1
  np.testing.assert_array_equal(state["b"], np.arange(8))
  assert "its manifest" in _only_warning(caplog)
  assert (tmp_path / "checkpoints" / "corrupt" / "2").is_dir()
