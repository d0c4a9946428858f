"""Trains and evaluates a remix_jax model.

    python main.py --workdir runs/quickstart                      # offline demo
    python main.py --workdir runs/c10 \
        --config configs/cifar_lt.py:dataset=cifar10_jpeg,rho=100,method=remix_drw
    python main.py --workdir runs/c10 --config configs/cifar_lt.py \
        --config.num_epochs=30                                     # overrides

Re-running with the same --workdir resumes from its newest checkpoint; a
config that differs from the one that trained the workdir is refused unless
the changed fields are named in --allow_changes. --config.method=NAME applies
that method's preset (other --config.FIELD overrides still apply on top).
User errors (config, data, workdir, lock, checkpoints, NaN) are one line on
stderr and exit 1; --verbose shows the traceback. This file sets the
project's XLA:CPU flags (remix_jax.cpu_flags) and parses flags; everything
else happens in remix_jax.train.
"""

import os
import signal
import sys


class _EarlySigterm:
  """Records a SIGTERM that arrives during the slow imports and setup;
  ``remix_jax.train`` reads ``requested`` when it installs its own handler."""

  requested = False

  def __call__(self, signum, frame):
    del signum, frame
    self.requested = True
    sys.stderr.write("SIGTERM received while starting; stopping before "
                     "training\n")


signal.signal(signal.SIGTERM, _EarlySigterm())  # before anything slow

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from remix_jax import cpu_flags  # noqa: E402

# XLA reads XLA_FLAGS when JAX initializes its backends, so before anything
# below (the config files, TensorFlow) could start JAX.
cpu_flags.set_cpu_flags()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
_VERBOSE = "--verbose" in sys.argv[1:]  # readable before flags are parsed


def _one_line(err: BaseException) -> str:
  """The message of ``err`` as one line. Flag errors wrap the config file's
  exception (and its traceback) in their message; the innermost cause holds
  the plain one."""
  text = str(err).strip()
  if "\n" in text:
    inner = err
    while (inner.__cause__ or inner.__context__) is not None:
      inner = inner.__cause__ or inner.__context__
    text = str(inner).strip()
  return " ".join(text.split("\n"))


def _fail(message: str, code: int = 1):
  sys.stderr.write(f"error: {message}\n")
  sys.exit(code)


def _unknown_field(err: BaseException) -> str:
  """``'mxer'; did you mean "mixer" instead of "mxer"?`` from the chain of
  config dict lookups that a mistyped ``--config.FIELD`` raises."""
  best, inner = "", err
  while inner is not None:
    if isinstance(inner, KeyError) and inner.args and isinstance(
        inner.args[0], str) and len(inner.args[0]) > len(best):
      best = inner.args[0]
    inner = inner.__context__
  lines = [line.strip() for line in (best or str(err)).splitlines()]
  return "unknown config field " + "; ".join(filter(None, lines))


FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints and results.")
flags.DEFINE_list(
    "allow_changes", [],
    "Config fields (dotted, comma-separated) that may differ from the config "
    "that trained --workdir, e.g. learning_rate after a NaN or num_epochs.")
flags.DEFINE_bool("verbose", False, "Show the traceback of errors.")
try:  # config_flags parses the --config.FIELD overrides here already
  config_flags.DEFINE_config_file(
      "config", os.path.join(_HERE, "configs", "quickstart.py"),
      "Training config file[:args]; fields can be overridden with "
      "--config.FIELD=VALUE.", lock_config=True)
except (AttributeError, KeyError) as _err:
  if _VERBOSE:
    raise
  _fail(_unknown_field(_err), 2)
flags.mark_flags_as_required(["workdir"])


class _QuietLibraries:
  """Keeps orbax's and tfds' per-call INFO lines out of the training log."""

  NOISY = ("/orbax/", "/tensorflow_datasets/", "/jax/_src/xla_bridge")

  def filter(self, record) -> bool:
    return record.levelno >= 30 or not any(
        part in record.pathname for part in self.NOISY)


def _parse_flags(argv):
  try:
    return FLAGS(argv)
  except flags.Error as err:
    if _VERBOSE:
      raise
    _fail(_one_line(err), 2)


def _select_method(config) -> None:
  """Applies ``--config.method``'s preset, then the other ``--config.*``
  overrides again on top of it."""
  from remix_jax import methods  # pylint: disable=g-import-not-at-top
  overrides = config_flags.get_override_values(FLAGS["config"])
  if "method" not in overrides:
    return
  methods.apply_method(config, overrides["method"])
  for key, value in overrides.items():
    if key != "method":
      methods.set_field(config, key, value)


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")  # keep the GPU memory for JAX
  from remix_jax import checkpointing  # pylint: disable=g-import-not-at-top
  from remix_jax import train  # pylint: disable=g-import-not-at-top
  from remix_jax import workdir  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_QuietLibraries())
  user_errors = (ValueError, OSError, FloatingPointError,
                 workdir.WorkdirError, checkpointing.CheckpointError)
  try:
    _select_method(FLAGS.config)
    result = train.train_and_evaluate(FLAGS.config, FLAGS.workdir,
                                      allow_changes=FLAGS.allow_changes)
  except user_errors as err:
    if FLAGS.verbose:
      raise
    _fail(_one_line(err))
  if result.get("interrupted"):
    if result["step"] is None:
      logging.info("stopped before training started; run again to resume")
    else:
      logging.info("stopped at step %d; run again to resume", result["step"])


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
