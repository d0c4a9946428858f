"""experiments/sumix/direction.py: its tables and its argument checks."""

import subprocess
import sys

import numpy as np
import pytest

from experiments.sumix import direction as direction_module
from tests.helpers import REPO

SCRIPT = REPO / "experiments" / "sumix" / "direction.py"


@pytest.fixture(scope="module")
def direction():
  return direction_module


def _series(lam, lam_t, flip):
  n = len(lam)
  return {"mix_ratio": np.asarray(lam), "sumix_ratio": np.asarray(lam_t),
          "label_weight": np.asarray(lam_t), "sumix_label_flip":
          np.asarray(flip), "loss": np.linspace(3.0, 2.0, n)}


def test_by_lambda_bins_batches_and_skips_empty_bins(direction):
  rows = direction.by_lambda(_series([0.1, 0.9, 0.95, 1.0], [0.2, 0.4, 0.6,
                                                             0.8],
                                     [0.0, 1.0, 0.0, 0.0]))
  assert rows[2] == "| 0.0–0.2 | 1 | 0.200 | 0.200 | 0.000 |"
  # λ = 1.0 falls in the last bin; bins 0.2–0.8 are empty.
  assert rows[3] == "| 0.8–1.0 | 3 | 0.600 | 0.600 | 0.333 |"
  assert len(rows) == 4


def test_by_stretch_reports_the_correlation_sign(direction):
  lam = [0.2, 0.4, 0.6, 0.8] * 2
  lam_t = [0.2, 0.4, 0.6, 0.8] + [0.8, 0.6, 0.4, 0.2]
  rows = direction.by_stretch(_series(lam, lam_t, [0.0] * 4 + [0.5] * 4),
                              stretches=2)
  assert rows[2].startswith("| 0–4 | 0.000 | +1.00 |")
  assert rows[3].startswith("| 4–8 | 0.500 | -1.00 |")


def test_histogram_shares(direction):
  rows = direction.histogram(np.array([0.01, 0.02, 0.55, 0.99]))
  shares = rows[2].strip("| ").split(" | ")[1:]
  assert shares[0] == "0.500" and shares[5] == "0.250" and shares[9] == "0.250"
  assert len(shares) == 10


def test_non_sumix_method_is_refused_before_training():
  out = subprocess.run([sys.executable, str(SCRIPT), "--method", "cutmix"],
                       capture_output=True, text=True, timeout=120)
  assert out.returncode != 0
  assert "does not use SUMix" in out.stderr
