r"""Trains and evaluates a remix_jax model.

    python main.py --workdir runs/quickstart                      # offline demo
    python main.py --workdir runs/c10 \
        --config configs/cifar_lt.py:dataset=cifar10,rho=100,method=remix_drw
    python main.py --workdir runs/c10 --config configs/cifar_lt.py \
        --config.num_epochs=30                                     # overrides

Re-running with the same --workdir resumes from its newest checkpoint; a
config that differs from the one that trained the workdir is refused unless
the changed fields are named in --allow_changes. --config.method=NAME selects
a method (remix_jax.trainer.methods.METHODS); its preset fills the method's
fields that are not set.

SIGTERM, SIGINT (Ctrl-C) or SIGHUP saves a checkpoint, says so and exits
with code 0; re-running resumes. A second signal exits at once (128 + the
signal's number). User errors (config, data, workdir, lock, checkpoints,
NaN, a full disk) are one line on stderr and exit 1 (2 for bad flags);
--verbose shows the traceback. The workdir's lock is taken before TensorFlow
or JAX is imported, so a second run on the same workdir is refused at once.
TensorFlow is imported only for a tfds dataset or the tensorboard metric
writer: --config.data.name=digits_numpy --config.metric_writer=jsonl trains
where it is not installed.
A checkpoint that fails verification is moved to checkpoints/corrupt/ and the
previous one resumes; --allow_unverified_checkpoints resumes from one that has
no checksums to verify it against.

    python main.py --workdir runs/quickstart --eval_only  # test metrics of
                                                         # its newest checkpoint
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


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


class _PlainLines:
  """Log lines as the user reads them: the message alone, and warnings and
  errors marked as such (no timestamps, thread ids or source lines)."""

  def format(self, record) -> str:
    text = record.getMessage()
    if record.levelno >= 30:
      return f"{record.levelname.lower()}: {text}"
    return text


class _QuietLibraries:
  """Keeps orbax's and tfds' per-call INFO lines out of the training log."""

  NOISY = ("/orbax/", "/tensorflow_datasets/", "/jax/_src/xla_bridge")

  def filter(self, record) -> bool:
    return record.levelno >= 30 or not any(
        part in record.pathname for part in self.NOISY)


#: The help of ``--config``.
_CONFIG_HELP = ("Training config file[:args]; fields can be overridden with "
                "--config.FIELD=VALUE.")


def _define_flags(fv) -> None:
  """Defines this file's flags, ``--config`` aside, in the flag set ``fv``."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "Directory for checkpoints and results.",
                      flag_values=fv)
  flags.DEFINE_list(
      "allow_changes", [],
      "Config fields (dotted, comma-separated) that may differ from the "
      "config that trained --workdir, e.g. learning_rate after a NaN or "
      "num_epochs.", flag_values=fv)
  flags.DEFINE_bool(
      "allow_unverified_checkpoints", False,
      "Resume from a checkpoint that has no checksums to verify it against "
      "(no manifest, none in its orbax metadata), with a warning; by default "
      "it is moved to checkpoints/corrupt/ like a corrupt one.",
      flag_values=fv)
  flags.DEFINE_bool("verbose", False, "Show the traceback of errors.",
                    flag_values=fv)
  flags.DEFINE_bool(
      "eval_only", False, "Evaluate the newest checkpoint of --workdir on "
      "the test split (the config is the workdir's own) and print the "
      "metrics; trains nothing.", flag_values=fv)


def _parse_flags(argv, verbose: bool):
  """The parsed flags of ``argv`` in a flag set of this call (absl's global
  flags are left alone); one line and exit 2 on a bad flag."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  _define_flags(fv)
  try:  # config_flags applies the --config.FIELD overrides while parsing
    config_flags.DEFINE_config_file(
        "config", os.path.join(_HERE, "configs", "quickstart.py"),
        _CONFIG_HELP, flag_values=fv, lock_config=True)
    fv(argv)
  except (AttributeError, KeyError) as err:
    if verbose:
      raise
    _fail(_unknown_field(err), 2)
  except Exception as err:  # pylint: disable=broad-except
    # flags.Error, and whatever a config file raises when it is imported
    # (a SyntaxError, a value out of range for its type).
    if verbose:
      raise
    _fail(_one_line(err), 2)
  if not (fv.workdir or "").strip():
    _fail("--workdir is required (a directory for the run)", 2)
  return fv


def _lock_workdir(fv):
  """Creates and locks the workdir (process 0 of a run), before anything
  slow is imported; one line and exit 1 when it cannot be used."""
  from remix_jax.trainer import workdir  # pylint: disable=g-import-not-at-top
  distributed = fv.config.distributed
  primary = (not distributed.coordinator_address
             or distributed.process_id == 0)
  try:
    path = workdir.prepare(fv.workdir)
    return workdir.Lock(path).acquire() if primary else None
  except workdir.WorkdirError as err:
    _fail(str(err))


def _evaluate(workdir: str) -> int:
  """``--eval_only``: the newest checkpoint's test metrics, printed."""
  from remix_jax.trainer import load  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import report  # pylint: disable=g-import-not-at-top
  result = load.evaluate_run(workdir)
  print(f"{workdir} at step {result['step']}: test top-1 "
        f"{result['top1']:.2f}%, top-5 {result['top5']:.2f}%, head "
        f"{report.fmt(result['head'])}, mid {report.fmt(result['mid'])}, "
        f"tail {report.fmt(result['tail'])}")
  return 0


def main(argv=None) -> int:
  """Parses ``argv`` (``sys.argv`` by default), trains, and returns the exit
  code (a user error exits with one line).

  Importing this file does nothing; this sets up the process (signal
  handler, XLA:CPU flags, allocator) and calls
  :func:`remix_jax.trainer.train.train_and_evaluate`.
  """
  argv = list(sys.argv if argv is None else argv)
  from remix_jax.trainer import interrupt  # pylint: disable=g-import-not-at-top
  with interrupt.StopRequest() as stop:  # before anything slow
    return _main(argv, stop)


def _wrap(text: str, indent: int = 4) -> str:
  import textwrap  # pylint: disable=g-import-not-at-top
  return textwrap.fill(" ".join(text.split()), width=79,
                       initial_indent=" " * indent,
                       subsequent_indent=" " * indent)


def _plain(text: str) -> str:
  """A docstring's reStructuredText roles as plain text."""
  import re  # pylint: disable=g-import-not-at-top
  return re.sub(r":\w+:`~?([^`]+)`", r"\1", text)


def _config_files() -> list[tuple[str, str]]:
  """``(name, docstring)`` of each config file in ``configs/`` (a module
  with a ``get_config``), read without importing it."""
  import ast  # pylint: disable=g-import-not-at-top
  folder = os.path.join(_HERE, "configs")
  out = []
  for name in sorted(os.listdir(folder)):
    if not name.endswith(".py"):
      continue
    with open(os.path.join(folder, name)) as f:
      tree = ast.parse(f.read())
    if any(isinstance(n, ast.FunctionDef) and n.name == "get_config"
           for n in tree.body):
      out.append((name, ast.get_docstring(tree) or ""))
  return out


def _help(full: bool) -> str:
  """``--help``: the usage, the flags, the config files and the method
  presets; ``--helpfull`` also each config file's arguments and every config
  field with its default (:mod:`configs.fields`)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from configs import fields  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import methods  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  _define_flags(fv)
  lines = [__doc__.strip(), "", "Flags:", "  --config=FILE.py[:ARGS]",
           _wrap(_CONFIG_HELP + " Default: configs/quickstart.py.")]
  for name, flag in sorted(fv._flags().items()):  # pylint: disable=protected-access
    lines += [f"  --{name}", _wrap(flag.help)]
  lines += ["", "Config files (--config=configs/FILE.py[:ARGS]):"]
  for name, doc in _config_files():
    summary, _, rest = doc.partition("\n\n")
    lines += [f"  {name}", _wrap(summary)]
    if full and rest.strip():
      lines += ["", *("    " + line if line else "" for line in
                      rest.strip("\n").splitlines()), ""]
  lines += ["", "Method presets (--config.method=NAME; each fills the",
            "method's fields that are not set):",
            _wrap(", ".join(methods.METHODS), 2)]
  if not full:
    lines += ["", _wrap("--helpfull also lists each config file's arguments "
                        "and every config field with its default.", 0)]
    return "\n".join(lines)
  lines += ["", "Config fields (--config.FIELD=VALUE; defaults of "
            "configs/default.py):"]
  for heading, rows in fields.config_sections(markup=_plain):
    if heading:
      lines += ["", _wrap(heading, 2)]
    for field, default, description in rows:
      lines += [f"  {field} = {default.replace('`', '')}",
                _wrap(description.replace("``", "`"))]
  return "\n".join(lines)


def _main(argv, stop) -> int:
  if any(a in ("-h", "--help", "--helpfull") for a in argv[1:]):
    print(_help(full="--helpfull" in argv[1:]))
    return 0
  verbose = "--verbose" in argv[1:]
  from remix_jax import extras  # pylint: disable=g-import-not-at-top
  try:  # TensorFlow is checked when a tfds dataset or clu needs it
    extras.require("main.py", optional=extras.TENSORFLOW_MODULES)
  except ModuleNotFoundError as err:
    _fail(str(err))
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  from remix_jax.trainer import process_setup  # pylint: disable=g-import-not-at-top
  # XLA reads XLA_FLAGS when JAX initializes its backends, so before anything
  # below (the config files, TensorFlow) could start JAX.
  process_setup.configure_process()
  fv = _parse_flags(argv, verbose)
  lock = _lock_workdir(fv)
  try:
    return _train(fv, stop, lock)
  finally:
    if lock is not None:
      lock.release()


def _keep_gpus_from_tensorflow(config) -> None:
  """Hides the GPUs from TensorFlow, so that JAX keeps the GPU memory, when
  the run will use TensorFlow (a tfds dataset or the tensorboard writer) and
  it is installed; otherwise TensorFlow is not imported."""
  from remix_jax import extras  # pylint: disable=g-import-not-at-top
  from remix_jax.data import registry  # pylint: disable=g-import-not-at-top
  spec = registry.DATASETS.get(config.data.name)
  uses_tf = (config.metric_writer == "tensorboard" or spec is None
             or spec.pipeline == registry.TFDS)
  if uses_tf and extras.installed("tensorflow"):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.set_visible_devices([], "GPU")


def _train(fv, stop, lock) -> int:
  _keep_gpus_from_tensorflow(fv.config)
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  from remix_jax import extras  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import checkpointing  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import train  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import workdir  # pylint: disable=g-import-not-at-top
  flags.FLAGS.mark_as_parsed()  # absl logs plainly once its flags count as parsed
  logging.use_absl_handler()
  logging.set_verbosity(logging.INFO)
  logging.get_absl_handler().addFilter(_QuietLibraries())
  logging.get_absl_handler().setFormatter(_PlainLines())
  user_errors = (ValueError, OSError, FloatingPointError,
                 workdir.WorkdirError, checkpointing.CheckpointError,
                 extras.MissingExtraError)
  try:
    if fv.eval_only:
      return _evaluate(fv.workdir)
    result = train.train_and_evaluate(
        fv.config, fv.workdir, allow_changes=fv.allow_changes, stop=stop,
        held_lock=lock,
        allow_unverified_checkpoints=fv.allow_unverified_checkpoints)
  except user_errors as err:
    if fv.verbose:
      raise
    _fail(_one_line(err))
  if result.get("interrupted"):
    if result["step"] is None:
      logging.info("stopped before training started; run again to resume")
    else:
      logging.info("stopped at step %d; run again to resume", result["step"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
