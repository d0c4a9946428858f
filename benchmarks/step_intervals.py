"""Seconds per step between the progress-bar updates of a training log.

    python benchmarks/step_intervals.py RUN.log [--slow 1.5]

Reads the tqdm updates (``<step>/<total> [<elapsed><…``) that
``train_and_evaluate`` writes to the console (or to the log of
``experiments/remix_paper/reproduce.py``) and prints, for each pair of
consecutive updates, the steps, the seconds between them and the seconds per step. The
median s/step is the steady rate. An interval slower than ``--slow`` × that
rate is marked, with its excess seconds; these intervals show where the run
lost time (evaluations, epoch boundaries). A resumed run restarts the
elapsed clock, so the interval across a restart is left out.
"""

import argparse
import re
import statistics

_UPDATE = re.compile(r"(\d+)/(\d+) \[(\d+(?::\d+)+)<")


def _seconds(clock: str) -> int:
  total = 0
  for part in clock.split(":"):
    total = total * 60 + int(part)
  return total


def updates(text: str) -> list[tuple[int, int]]:
  """``(step, elapsed seconds)`` of every progress-bar update, in order."""
  return [(int(m.group(1)), _seconds(m.group(3)))
          for m in _UPDATE.finditer(text)]


def intervals(points: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
  """``(from_step, to_step, seconds)`` between consecutive updates that
  advance the step and the clock (repeated redraws and restarts dropped)."""
  out = []
  for (s0, t0), (s1, t1) in zip(points, points[1:]):
    if s1 > s0 and t1 >= t0:
      out.append((s0, s1, t1 - t0))
  return out


def main():
  parser = argparse.ArgumentParser(
      description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("log")
  parser.add_argument("--slow", type=float, default=1.5,
                      help="mark intervals slower than this × the median")
  args = parser.parse_args()
  with open(args.log, errors="replace") as f:
    rows = intervals(updates(f.read()))
  if not rows:
    raise SystemExit(f"{args.log}: no progress-bar updates found")
  median = statistics.median(t / (b - a) for a, b, t in rows)
  print(f"median {median:.2f} s/step over {len(rows)} intervals")
  excess = 0.0
  for a, b, t in rows:
    rate = t / (b - a)
    mark = ""
    if rate > args.slow * median:
      extra = t - median * (b - a)
      excess += extra
      mark = f"  slow: +{extra:.0f} s"
    print(f"{a:>6} -> {b:<6} {t:>5} s  {rate:6.2f} s/step{mark}")
  print(f"slow intervals: +{excess:.0f} s in total")


if __name__ == "__main__":
  main()
