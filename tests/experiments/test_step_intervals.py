"""benchmarks/step_intervals.py reads a trainer log's progress bar."""

import subprocess
import sys

from tests.helpers import REPO

# Steady 1 s/step, one 30 s stall (steps 96->100), a redraw and a resume
# (the elapsed clock restarts at the checkpoint step).
LOG = ("  0%|  | 0/200 [00:00<?, ?step/s]"
       "  25%|  | 50/200 [00:50<02:30,  1.00s/step, epoch=1]"
       "  48%|  | 96/200 [01:36<01:44,  1.00s/step, epoch=1]"
       "  50%|  | 100/200 [02:10<01:40,  1.00s/step, epoch=2]"
       "  50%|  | 100/200 [02:10<01:40,  1.00s/step, epoch=2]\n"
       "interrupted: checkpoint 100 saved\n"
       "  50%|  | 100/200 [00:00<?, ?step/s]"
       "  75%|  | 150/200 [00:50<00:50,  1.00s/step, epoch=2]\n")


def test_intervals_and_slow_marks(tmp_path):
  log = tmp_path / "run.log"
  log.write_text(LOG)
  out = subprocess.run(
      [sys.executable, str(REPO / "benchmarks" / "step_intervals.py"),
       str(log)], capture_output=True, text=True, timeout=60,
      check=True).stdout.splitlines()
  assert out[0] == "median 1.00 s/step over 4 intervals"
  rows = [line.split() for line in out[1:-1]]
  assert [(r[0], r[2], r[3]) for r in rows] == [
      ("0", "50", "50"), ("50", "96", "46"), ("96", "100", "34"),
      ("100", "150", "50")]
  assert out[3].endswith("slow: +30 s")
  assert "slow" not in out[2] and "slow" not in out[4]
  assert out[-1] == "slow intervals: +30 s in total"
