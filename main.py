"""Trains and evaluates a remix_jax model.

    python main.py --workdir runs/quickstart                      # offline demo
    python main.py --workdir runs/c10 \
        --config configs/cifar_lt.py:dataset=cifar10_jpeg,rho=100,method=remix_drw
    python main.py --workdir runs/c10 --config configs/cifar_lt.py \
        --config.num_epochs=30                                     # overrides

Re-running with the same --workdir resumes from its newest checkpoint. This
file only parses flags; everything happens in remix_jax.train.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints and results.")
config_flags.DEFINE_config_file(
    "config", os.path.join(_HERE, "configs", "quickstart.py"),
    "Training config file[:args]; fields can be overridden with "
    "--config.FIELD=VALUE.", lock_config=True)
flags.mark_flags_as_required(["workdir"])


class _QuietLibraries:
  """Keeps orbax's and tfds' per-call INFO lines out of the training log."""

  NOISY = ("/orbax/", "/tensorflow_datasets/", "/jax/_src/xla_bridge")

  def filter(self, record) -> bool:
    return record.levelno >= 30 or not any(
        part in record.pathname for part in self.NOISY)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")  # keep the GPU memory for JAX
  from remix_jax import train  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_QuietLibraries())
  result = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  if result.get("interrupted"):
    logging.info("stopped at step %d; run again to resume", result["step"])


if __name__ == "__main__":
  app.run(main)
