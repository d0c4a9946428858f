"""One run per workdir: the stored config, the lock, up-front checks, the
method check and main.py's one-line errors (also for a full disk and a
corrupt checkpoint)."""

import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from configs import quickstart
from remix_jax.trainer import config_lib
from remix_jax.trainer import methods
from remix_jax.trainer import run_record
from remix_jax.trainer import train
from remix_jax.trainer import workdir as workdir_lib
from tests import helpers
from tests import jax_events

REPO = str(helpers.REPO)
MAIN = os.path.join(REPO, "main.py")


def tiny_config(**overrides):
  c = quickstart.get_config()
  c.batch_size, c.eval_batch_size, c.num_epochs = 32, 64, 1
  c.eval_every_epochs = c.checkpoint_every_epochs = 1
  c.log_every_steps, c.progress_bar, c.num_devices = 5, False, 2
  c.update_from_flattened_dict(overrides)
  return methods.resolve(c)


def test_changed_config_is_refused_before_anything_is_built(tmp_path):
  train.train_and_evaluate(tiny_config(), str(tmp_path))
  with jax_events.count_traces_and_compiles() as events:
    with pytest.raises(run_record.ConfigChangedError) as err:
      train.train_and_evaluate(tiny_config(batch_size=64, seed=5),
                               str(tmp_path))
  message = str(err.value)
  assert "\n" not in message
  assert "batch_size 32 -> 64" in message and "seed 0 -> 5" in message
  assert "--allow_changes=batch_size,seed" in message
  assert not events.traces and not events.compiles  # nothing was built
  # Free fields change freely; an allowed change continues the run.
  result = train.train_and_evaluate(
      tiny_config(num_epochs=2, log_every_steps=3, eval_batch_size=32),
      str(tmp_path), allow_changes=["num_epochs"])
  assert result["step"] == 32
  record = run_record.stored_config(str(tmp_path))
  assert record["num_epochs"] == 2


def test_record_compares_nested_fields_and_rejects_unknown_overrides(tmp_path):
  config = tiny_config()
  run_record.write(str(tmp_path), config, step=0, changes={})
  assert run_record.check(str(tmp_path), tiny_config(progress_bar=True)) == {}
  with pytest.raises(run_record.ConfigChangedError,
                     match=r"sumix.enabled False -> True"):
    run_record.check(str(tmp_path), tiny_config(**{"sumix.enabled": True}))
  with pytest.raises(run_record.ConfigChangedError, match="not config fields"):
    run_record.check(str(tmp_path), config, ["learning_rat"])
  assert run_record.check(str(tmp_path), tiny_config(learning_rate=0.01),
                          ["learning_rate"]) == {
                              "learning_rate": (0.05, 0.01)}


_HOLD = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
         "os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); "
         "os.write(fd, b'pid %d' % os.getpid()); print('held', flush=True); "
         "time.sleep(60)")


def test_lock_refuses_a_live_holder_at_once_and_ignores_a_stale_one(tmp_path):
  lock_path = str(tmp_path / workdir_lib.LOCK_FILE)
  holder = subprocess.Popen([sys.executable, "-c", _HOLD, lock_path],
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    start = time.time()
    with pytest.raises(workdir_lib.WorkdirError,
                       match=f"in use by another run \\(pid {holder.pid}"):
      train.train_and_evaluate(tiny_config(), str(tmp_path))
    assert time.time() - start < 5
  finally:
    holder.kill()
    holder.wait()
  # The holder is dead; its lock file (naming it) is left but does not block.
  assert f"pid {holder.pid}" in open(lock_path).read()
  with workdir_lib.Lock(str(tmp_path)):
    pass


def test_unwritable_workdir_and_missing_data_dir_fail_first(tmp_path):
  (tmp_path / "file").write_text("")
  with pytest.raises(workdir_lib.WorkdirError, match="is not writable"):
    train.train_and_evaluate(tiny_config(), str(tmp_path / "file" / "run"))
  missing = tmp_path / "no_such_dir"
  with pytest.raises(FileNotFoundError, match="does not exist"):
    train.train_and_evaluate(tiny_config(**{"data.data_dir": str(missing)}),
                             str(tmp_path / "run"))
  assert not missing.exists()


def test_method_contradicting_its_fields_is_refused():
  config = quickstart.get_config()  # method remix, its fields unset
  config.method = "cutmix"
  config.update_from_flattened_dict({"mixer": "mixup",
                                     "label_rule": "remix"})
  with pytest.raises(ValueError, match=r"config.method='cutmix' contradicts "
                     r"config.mixer='mixup', config.label_rule='remix'"):
    config_lib.validate_config(config)
  bogus = quickstart.get_config()
  bogus.method = "bogus"
  with pytest.raises(ValueError, match="unknown method 'bogus'"):
    config_lib.validate_config(bogus)
  # The method alone applies its preset, once, to the fields left unset.
  config = quickstart.get_config()
  config.method = "cutmix"
  resolved = config_lib.validate_config(config)
  assert (resolved.mixer, resolved.label_rule) == ("cutmix", "plain")
  assert config.mixer is None  # the caller's config is left as it was
  assert methods.resolve(resolved).to_dict() == resolved.to_dict()


def _main(*args, **kwargs):
  return subprocess.run([sys.executable, MAIN, *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300, **kwargs)


@pytest.mark.parametrize("args,match", [
    (["--config.mxer=cutmix"], "unknown config field 'mxer'; Did you mean"),
    (["--config=configs/cifar_lt.py:method=bogus"],
     "unknown method 'bogus'; choose one of"),
    (["--config.method=bogus"], "unknown method 'bogus'; choose one of"),
    (["--config.method=cutmix", "--config.label_rule=remix"],
     "contradicts config.label_rule='remix'"),
    (["--config.batch_size=abc"], "--config.batch_size=abc"),
])
def test_main_prints_user_errors_as_one_line(tmp_path, args, match):
  done = _main(f"--workdir={tmp_path}", *args)
  assert done.returncode != 0
  assert "Traceback" not in done.stderr, done.stderr
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and match in last, done.stderr
  verbose = _main(f"--workdir={tmp_path}", "--verbose", *args)
  assert "Traceback" in verbose.stderr


def test_early_sigterm_exits_cleanly(tmp_path):
  proc = subprocess.Popen([sys.executable, MAIN, f"--workdir={tmp_path}"],
                          cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  time.sleep(1.5)  # importing tensorflow and jax: before the trainer starts
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err
  assert "SIGTERM received" in err and "Traceback" not in err
  assert not (tmp_path / "checkpoints").exists()


# main.py's flags for tiny_config().
_TINY_FLAGS = ["--config.batch_size=32", "--config.eval_batch_size=64",
               "--config.eval_every_epochs=1",
               "--config.checkpoint_every_epochs=1",
               "--config.log_every_steps=5", "--config.progress_bar=False",
               "--config.num_devices=2"]


def _main_with_file_size_limit(nbytes, *args):
  """main.py in a process where writes past ``nbytes`` of a file fail with
  EFBIG, the way a full disk fails them with ENOSPC (no privileges needed;
  SIGXFSZ is ignored, and stays ignored across the exec)."""
  limit = ("import os, resource, signal, sys; "
           "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
           "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), "
           "resource.getrlimit(resource.RLIMIT_FSIZE)[1])); "
           "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])")
  return subprocess.run([sys.executable, "-c", limit, str(nbytes), MAIN,
                         *args], cwd=REPO, capture_output=True, text=True,
                        timeout=300)


def test_full_disk_stops_at_its_step_in_one_line_and_a_rerun_resumes(
    tmp_path, caplog):
  train.train_and_evaluate(tiny_config(), str(tmp_path))  # checkpoint 16
  checkpoints = tmp_path / "checkpoints"
  # Above the run's records and TensorBoard events, below a checkpoint's
  # data files.
  limit = 32 * 1024
  assert max(f.stat().st_size for f in (checkpoints / "16").rglob("*")
             if f.is_file()) > limit
  done = _main_with_file_size_limit(
      limit, f"--workdir={tmp_path}", *_TINY_FLAGS, "--config.num_epochs=2",
      "--allow_changes=num_epochs")
  out = done.stdout + done.stderr
  assert done.returncode == 1, out
  assert "Traceback" not in out and "orbax" not in out, out
  last = done.stderr.strip().splitlines()[-1]
  assert last == (
      "error: checkpoint at step 32 could not be written: "
      f"[Errno {errno.EFBIG}] {os.strerror(errno.EFBIG)} ({checkpoints}); "
      "checkpoint 16 is intact: re-run to resume from it once the cause is "
      "fixed"), out
  assert [line for line in out.splitlines()
          if "could not be written" in line] == [last]
  assert "epoch 2/2" not in out  # stopped at the save, before evaluating
  assert os.listdir(checkpoints) == ["16"]  # no partial step 32
  # With room again the same command resumes from checkpoint 16 and ends.
  with caplog.at_level(logging.INFO):
    result = train.train_and_evaluate(tiny_config(num_epochs=2),
                                      str(tmp_path),
                                      allow_changes=["num_epochs"])
  assert "resumed from checkpoint 16" in caplog.text
  assert "corrupt" not in caplog.text
  assert result["step"] == 32
  assert sorted(os.listdir(checkpoints)) == ["16", "32"]


def _truncate_largest_data_file(step_dir):
  files = [f for f in step_dir.rglob("*")
           if f.is_file() and f.parent.parent.name == "ocdbt.process_0"]
  largest = max(files, key=lambda f: f.stat().st_size)
  os.truncate(largest, largest.stat().st_size // 2)


def test_corrupt_checkpoint_fallback_prints_one_warning_line(tmp_path):
  train.train_and_evaluate(tiny_config(num_epochs=2), str(tmp_path))
  checkpoints = tmp_path / "checkpoints"
  _truncate_largest_data_file(checkpoints / "32")
  done = _main(f"--workdir={tmp_path}", *_TINY_FLAGS, "--config.num_epochs=2")
  out = done.stdout + done.stderr
  assert done.returncode == 0, out
  assert "Traceback" not in out and "orbax" not in out, out
  warnings = [line for line in out.splitlines() if " is corrupt: " in line]
  assert len(warnings) == 1, out
  assert f"checkpoint 32 in {checkpoints} is corrupt: it cannot be " in (
      warnings[0])
  assert f"moved it to {checkpoints / 'corrupt' / '32'}" in warnings[0]
  assert "resumed from checkpoint 16" in out and "epoch 2/2" in out


def test_a_workdir_recorded_before_methods_were_resolved_resumes_unchanged(
    tmp_path):
  """A real ``config.json`` written by the trainer before the method fields
  were left to the method (Remix s1 of the paper table, with ``method`` and
  the nine fields it set): the same cell's config today matches it, with no
  field to allow."""
  from configs import cifar_lt  # pylint: disable=g-import-not-at-top
  record = os.path.join(REPO, "tests", "trainer", "data",
                        "record_before_the_trainer_package.json")
  shutil.copyfile(record, tmp_path / run_record.RECORD_FILE)
  config = cifar_lt.get_config(
      "dataset=cifar10_jpeg,method=remix,protocol=paper,seed=1")
  config.data.data_dir = "/elsewhere"  # a free field
  resolved = config_lib.validate_config(config)
  assert run_record.check(str(tmp_path), resolved) == {}
  # Any other change is still refused.
  resolved.mix_alpha = 0.5
  with pytest.raises(run_record.ConfigChangedError, match="mix_alpha"):
    run_record.check(str(tmp_path), resolved)
