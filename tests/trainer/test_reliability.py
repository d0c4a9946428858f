"""The second reliability pass: the run record before any checkpoint, signals
that save, the lock before the heavy imports, one line for every user error,
and files written whole."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from remix_jax import files
from remix_jax.trainer import checkpointing
from remix_jax.trainer import run_record
from remix_jax.trainer import train
from tests.trainer import test_workdir as tw

MAIN = tw.MAIN
REPO = tw.REPO


class _Killed(BaseException):
  """Stands for a kill -9 at a chosen point of the trainer."""


def test_a_kill_after_the_first_checkpoint_cannot_adopt_another_config(
    tmp_path, monkeypatch):
  save = checkpointing.Checkpointer.save

  def save_then_die(self, step, state):
    save(self, step, state)
    raise _Killed

  monkeypatch.setattr(checkpointing.Checkpointer, "save", save_then_die)
  with pytest.raises(_Killed):
    train.train_and_evaluate(tw.tiny_config(), str(tmp_path))
  monkeypatch.undo()
  assert checkpointing.saved_steps(str(tmp_path)) == [16]
  with pytest.raises(run_record.ConfigChangedError,
                     match=r"learning_rate 0.05 -> 0.5.*seed 0 -> 7"):
    train.train_and_evaluate(tw.tiny_config(learning_rate=0.5, seed=7),
                             str(tmp_path))


def test_checkpoints_without_a_record_are_refused_as_foreign(tmp_path):
  train.train_and_evaluate(tw.tiny_config(), str(tmp_path))
  os.remove(tmp_path / run_record.RECORD_FILE)
  with pytest.raises(run_record.ConfigChangedError,
                     match="has checkpoints but no run record"):
    train.train_and_evaluate(tw.tiny_config(), str(tmp_path))


def test_the_record_of_a_run_that_saved_nothing_is_replaced(tmp_path):
  run_record.write(str(tmp_path), tw.tiny_config(learning_rate=0.5), step=0,
                   changes={})
  result = train.train_and_evaluate(tw.tiny_config(), str(tmp_path))
  assert result["step"] == 16
  record = json.loads((tmp_path / run_record.RECORD_FILE).read_text())
  assert record["config"]["learning_rate"] == 0.05
  assert record["history"] == []


def test_an_unreadable_record_says_how_to_recover(tmp_path):
  (tmp_path / run_record.RECORD_FILE).write_text("")
  with pytest.raises(run_record.ConfigChangedError,
                     match="restore it from a copy, or start over in a new "
                     "--workdir"):
    run_record.check(str(tmp_path), tw.tiny_config())


def _interrupt(workdir, signum, *, twice=False):
  """main.py for 12 epochs, sent ``signum`` once step 20 is logged."""
  overrides = ["--config.num_epochs=12", "--config.eval_every_epochs=4",
               "--config.checkpoint_every_epochs=4"]
  cmd = [sys.executable, MAIN, f"--workdir={workdir}", *tw._TINY_FLAGS,  # pylint: disable=protected-access
         "--config.log_every_steps=1", *overrides]
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  lines, deadline = [], time.time() + 300
  while time.time() < deadline:
    line = proc.stdout.readline()
    lines.append(line)
    logged = re.search(r"\[(\d+)\] images_per_second", line)
    if (logged and int(logged.group(1)) >= 20) or not line:
      break
  proc.send_signal(signum)
  if twice:
    while time.time() < deadline:
      line = proc.stdout.readline()
      lines.append(line)
      if "received" in line or not line:
        break
    proc.send_signal(signum)
  out, _ = proc.communicate(timeout=120)
  return proc.returncode, "".join(lines) + out, cmd


@pytest.mark.slow
def test_sigint_and_sighup_save_and_resume_exactly(tmp_path):
  runs = {}
  for signum in (signal.SIGINT, signal.SIGHUP):
    workdir = tmp_path / signal.Signals(signum).name
    code, log, cmd = _interrupt(workdir, signum)
    assert code == 0, log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
    assert f"{signal.Signals(signum).name} received" in log, log
    assert "interrupted: checkpoint" in log, log
    saved = checkpointing.saved_steps(str(workdir))
    assert saved and saved[-1] >= 20 and saved[-1] % 16, log  # mid-epoch
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    runs[workdir] = saved[-1]
  straight = tmp_path / "straight"
  done = subprocess.run([c.replace(f"--workdir={workdir}",
                                   f"--workdir={straight}") for c in cmd],
                        cwd=REPO, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr
  want = json.loads((straight / "results.json").read_text())["metrics"]
  for workdir, step in runs.items():
    got = json.loads((workdir / "results.json").read_text())
    assert got["metrics"]["per_class"] == want["per_class"]
    assert got["resumed_at"] == [step]


def test_a_second_ctrl_c_exits_at_once(tmp_path):
  code, log, _ = _interrupt(tmp_path, signal.SIGINT, twice=True)
  assert code == 128 + signal.SIGINT, log
  assert "SIGINT received again: exiting now" in log, log


_HEAVY = ("import atexit, runpy, sys; "
          "atexit.register(lambda: print('heavy:', sorted(m for m in "
          "('jax', 'tensorflow', 'flax', 'orbax') if m in sys.modules), "
          "file=sys.stderr)); "
          "sys.argv = ['main.py', *sys.argv[1:]]; "
          "runpy.run_path('main.py', run_name='__main__')")


def test_a_locked_workdir_is_refused_before_the_heavy_imports(tmp_path):
  lock_path = str(tmp_path / "lock")
  holder = subprocess.Popen([sys.executable, "-c", tw._HOLD, lock_path],  # pylint: disable=protected-access
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    done = subprocess.run([sys.executable, "-c", _HEAVY,
                           f"--workdir={tmp_path}"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  finally:
    holder.kill()
    holder.wait()
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 1, done.stderr
  assert lines[-2].startswith("error: workdir") and "in use" in lines[-2]
  assert lines[-1] == "heavy: []", done.stderr


@pytest.mark.parametrize("args,match", [
    (["--config.seed=99999999999999999999"],
     "config.seed=99999999999999999999 must be an integer in [0, 2**32)"),
    (["--config.mix_alpha=inf"], "config.mix_alpha=inf must be a finite"),
    (["--config.learning_rate=nan"],
     "config.learning_rate=nan must be a finite"),
])
def test_values_that_cannot_train_are_one_line(tmp_path, args, match):
  done = tw._main(f"--workdir={tmp_path}", *args)  # pylint: disable=protected-access
  assert done.returncode == 1, done.stderr
  assert "Traceback" not in done.stderr
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and match in last, done.stderr
  assert not (tmp_path / "checkpoints").exists()


def test_a_config_file_that_fails_to_import_is_one_line(tmp_path):
  bad = tmp_path / "bad_config.py"
  bad.write_text("def get_config(:\n  pass\n")
  done = tw._main(f"--workdir={tmp_path / 'run'}", f"--config={bad}")  # pylint: disable=protected-access
  assert done.returncode == 2, done.stderr
  assert "Traceback" not in done.stderr
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr


def test_an_empty_workdir_name_is_refused(tmp_path):
  done = subprocess.run([sys.executable, MAIN, "--workdir="], cwd=tmp_path,
                        capture_output=True, text=True, timeout=120)
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip() == ("error: --workdir is required (a directory "
                                 "for the run)")
  assert not os.listdir(tmp_path)
  with pytest.raises(Exception, match="the workdir is empty"):
    train.train_and_evaluate(tw.tiny_config(), " ")


def test_a_full_disk_when_the_event_writer_starts_is_one_line(tmp_path):
  done = tw._main_with_file_size_limit(  # pylint: disable=protected-access
      40, f"--workdir={tmp_path}", *tw._TINY_FLAGS)  # pylint: disable=protected-access
  out = done.stdout + done.stderr
  assert done.returncode == 1, out
  assert "Traceback" not in out, out
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: TensorBoard events in {tmp_path} could not "
                         "be written"), out


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_nothing(
    tmp_path):
  path = tmp_path / "results.json"
  files.write_json(str(path), {"top1": 1.0})

  def half_then_full_disk(tmp):
    with open(tmp, "w") as f:
      f.write('{"top1": ')
    raise OSError(28, "No space left on device")

  with pytest.raises(OSError, match="No space left"):
    files.write_atomically(str(path), half_then_full_disk)
  assert json.loads(path.read_text()) == {"top1": 1.0}
  assert os.listdir(tmp_path) == ["results.json"]
