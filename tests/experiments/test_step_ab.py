"""benchmarks/step_ab.py times two revisions' steps in one process."""

import subprocess
import sys

import pytest

from tests.helpers import REPO

# The last revision before the trainer package (remix_jax.train.build).
OLD = "fcf45bd358f68501525055368a99b74583d6e610"


def test_old_and_new_steps_come_from_their_own_revisions():
  known = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e",
                          f"{OLD}^{{commit}}"], capture_output=True)
  if known.returncode:
    pytest.skip(f"revision {OLD[:7]} is not in this clone's history")
  out = subprocess.run(
      [sys.executable, str(REPO / "benchmarks" / "step_ab.py"), "--old", OLD,
       "--batch", "8", "--rounds", "2", "--iters", "1", "--conv_impl", "xla"],
      capture_output=True, text=True, timeout=600, check=True).stdout
  lines = out.splitlines()
  assert lines[0].startswith(f"old ({OLD}, remix_jax.train.build)")
  assert lines[1].startswith("new (HEAD, remix_jax.trainer.build.build)")
  assert [line.split(":")[0] for line in lines[2:4]] == ["round 1", "round 2"]
  assert lines[-1].startswith("erm, batch 8, xla: new/old median ")
