"""Runs a reproduction table of the Remix paper and writes its report.

    python experiments/remix_paper/reproduce.py --table paper
        [--dataset cifar10 | cifar10_jpeg] [--data_dir DIR]
        [--runs_dir runs/reproduce] [--results_dir DIR] [--reference_dir DIR]
        [--only M1,M2] [--seeds S1,S2]
        [--dry_run | --report_only | --readme_table] [--examples]

Each (method, seed) of the table (``tables.TABLES``) trains in its own
workdir ``<runs_dir>/<table>/<method>_<dataset>_<profile><rho>_<protocol>_
s<seed>``: finished runs (``results.json`` in the workdir) are skipped and
the others resume from their checkpoints, so an empty ``--runs_dir`` trains
every row. A deferred method (DRW, …) that has not started branches from its
base at the switch epoch (``runner.py``). After every run, and at the end,
``<results_dir>/<table>.md``/``.json`` (ours next to the paper's numbers and
the committed report's, the paper's orderings) and the curve, per-class and
head/mid/tail plots are rewritten.

  --dataset      cifar10 (tfds' own, downloaded on first use) or
                 cifar10_jpeg (our offline copy of CIFAR-10, prepared
                 beforehand; the committed rows in results/ use it)
  --data_dir     the tfds data directory (default: $TFDS_DATA_DIR, else
                 ~/tensorflow_datasets); a dataset that is missing and cannot
                 be prepared stops the command in one line saying how to
                 prepare it (docs/datasets.md)
  --results_dir  where the report goes (default: <runs_dir>/report); pass
                 the checkout's results/ to rewrite the committed report
  --reference_dir the committed report compared against (default: the
                 checkout's results/); its rows are references only, never
                 reasons to skip a run
  --only         train only these methods (the report still covers the table)
  --seeds        train only these seeds, e.g. 0 to stop after the seed-0 rows
  --dry_run      list the runs and their status; train and write nothing
  --report_only  write the report from what is on disk; train nothing
  --readme_table print the table's results at a glance (from
                 <reference_dir>/<table>.json) as README.md's block between
                 <!-- <table>-table:start --> and <!-- <table>-table:end -->
  --examples     write <results_dir>/mixed_examples.png (the mixers on one
                 training image per class of --dataset); with no --table,
                 only that
"""

import argparse
import os
import pathlib
import sys
from typing import Optional

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from remix_jax.trainer import process_setup  # noqa: E402

process_setup.configure_process()  # the trainer's XLA:CPU kernels; before JAX starts

from configs import cifar_lt  # noqa: E402
from experiments.remix_paper import report  # noqa: E402
from experiments.remix_paper import runner  # noqa: E402
from experiments.remix_paper import status  # noqa: E402
from experiments.remix_paper import tables  # noqa: E402

#: The committed report (``results/<table>.json``) ours is compared against.
DEFAULT_REFERENCE_DIR = REPO / "results"
#: The datasets a table can be trained on.
DATASETS = (tables.DEFAULT_DATASET, tables.OFFLINE_DATASET)


def write_examples(path: str, data_dir: Optional[str],
                   dataset: str = tables.DEFAULT_DATASET) -> None:
  """The mixer grid (``plots.mixed_examples_grid``) on one un-augmented
  training image per class of ``dataset``, head and tail classes alternating
  (0, C−1, 1, C−2, …) so that the Remix rule has pairs to act on.

  Args:
    path: the PNG file to write.
    data_dir: the tfds data directory (``None``: tfds' default).
    dataset: the dataset's name.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import config_lib  # pylint: disable=g-import-not-at-top
  from remix_jax import data  # pylint: disable=g-import-not-at-top
  from remix_jax import plots  # pylint: disable=g-import-not-at-top
  from remix_jax.data import registry  # pylint: disable=g-import-not-at-top

  cfg = cifar_lt.build(dataset=dataset)
  cfg.data.data_dir = data_dir
  cfg.data.augment = False
  train_data = data.create_train_data(config_lib.data_options(cfg.data),
                                      global_batch_size=512)
  batch = next(iter(train_data.iterate(0)))
  c = train_data.num_classes
  order = [k for pair in zip(range(c), range(c - 1, -1, -1)) for k in pair]
  order = list(dict.fromkeys(order))  # 0, C−1, 1, C−2, …
  picks = [int(np.flatnonzero(batch["label"] == k)[0]) for k in order
           if np.any(batch["label"] == k)]
  spec = registry.get_spec(dataset)
  images = batch["image"][picks] * np.asarray(spec.std) + np.asarray(spec.mean)
  plots.mixed_examples_grid(path, images, batch["label"][picks],
                            train_data.class_counts, train_data.class_names)
  print(f"wrote {path}")


def prepare_data(dataset: str, data_dir: Optional[str]) -> None:
  """Finds ``dataset`` in ``data_dir`` (tfds' default for ``None``), or
  prepares it where tfds can (``cifar10``: a download), before any run
  starts; the command stops with the library's one line on what to do when
  it cannot (:func:`remix_jax.data.source.load_builder`)."""
  from remix_jax.data import registry  # pylint: disable=g-import-not-at-top
  from remix_jax.data import source  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import config_lib  # pylint: disable=g-import-not-at-top
  names = {"data_dir argument": "--data_dir",
           "DataOptions.data_dir": "--data_dir"}
  try:
    with config_lib.config_fields(names):
      source.load_builder(registry.get_spec(dataset),
                          *source.resolve_data_dir(data_dir))
  except FileNotFoundError as err:
    fail(str(err))


def fail(message: str) -> None:
  """Stops the command with ``message`` as one line on stderr (exit 1)."""
  sys.stderr.write(f"error: {' '.join(message.split())}\n")
  sys.exit(1)


def _shown(path: str) -> str:
  """``path`` relative to the checkout when it lies inside it."""
  path = os.path.abspath(path)
  inside = path.startswith(str(REPO) + os.sep)
  return os.path.relpath(path, REPO) if inside else path


def load_reference(args) -> Optional[dict]:
  """``{'path', 'report'}`` of the committed report of ``args.table`` in
  ``--reference_dir``; ``None`` without one, or when the report is written
  there (then it is ours)."""
  if os.path.abspath(args.reference_dir) == os.path.abspath(args.results_dir):
    return None
  path = os.path.join(args.reference_dir, f"{args.table}.json")
  committed = status.read_json(path)
  return None if committed is None else {"path": _shown(path),
                                         "report": committed}


def print_readme_block(parser, args) -> None:
  """Prints ``report.readme_block`` of ``<reference_dir>/<table>.json``; a
  one-line error without ``--table`` or the file."""
  if args.table is None:
    parser.error("--readme_table: give --table")
  path = os.path.join(args.reference_dir, f"{args.table}.json")
  table_json = status.read_json(path)
  if table_json is None:
    parser.error(f"--readme_table: no report at {path} (write it with "
                 "--report_only)")
  print(report.readme_block(table_json))


def parse_args():
  """The command line (module docstring); one line and exit 2 on a bad one."""
  parser = argparse.ArgumentParser(
      description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--table", choices=sorted(tables.TABLES))
  parser.add_argument("--dataset", choices=DATASETS,
                      default=tables.DEFAULT_DATASET)
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--runs_dir", default="runs/reproduce")
  parser.add_argument("--results_dir", default=None)
  parser.add_argument("--reference_dir", default=str(DEFAULT_REFERENCE_DIR))
  parser.add_argument("--only", default="",
                      help="comma-separated methods to train")
  parser.add_argument("--seeds", default="",
                      help="comma-separated seeds to train")
  mode = parser.add_mutually_exclusive_group()
  mode.add_argument("--dry_run", action="store_true")
  mode.add_argument("--report_only", action="store_true")
  mode.add_argument("--readme_table", action="store_true")
  parser.add_argument("--examples", action="store_true")
  args = parser.parse_args()
  if args.table is None and not args.examples:
    parser.error("give --table (and/or --examples)")
  if args.results_dir is None:
    args.results_dir = os.path.join(args.runs_dir, "report")
  return parser, args


def select_runs(parser, args, cells) -> list:
  """The runs of ``cells`` that ``--only`` and ``--seeds`` select, with
  their state in ``<runs_dir>/<table>`` (one line and exit 2 for a method
  or seed not in the table)."""
  only = [m for m in args.only.split(",") if m]
  unknown = sorted(set(only) - {c.method for c in cells})
  if unknown:
    parser.error(f"--only: {', '.join(unknown)} not in table {args.table} "
                 f"({', '.join(c.method for c in cells)})")
  valid = sorted({s for c in cells for s in c.seeds})
  seeds = [x for x in args.seeds.split(",") if x]
  bad = [x for x in seeds if not x.isdigit() or int(x) not in valid]
  if bad:
    parser.error(f"--seeds: {', '.join(bad)} not in table {args.table} "
                 f"(seeds {', '.join(map(str, valid))})")
  seeds = {int(x) for x in seeds}
  runs_dir = os.path.join(args.runs_dir, args.table)
  return [r for r in status.table_runs(cells, runs_dir)
          if (not only or r.cell.method in only)
          and (not seeds or r.seed in seeds)]


def main():
  parser, args = parse_args()
  if args.readme_table:
    print_readme_block(parser, args)
    return
  if args.examples and not args.dry_run:
    prepare_data(args.dataset, args.data_dir)
    os.makedirs(args.results_dir, exist_ok=True)
    write_examples(os.path.join(args.results_dir, "mixed_examples.png"),
                   args.data_dir, args.dataset)
  if args.table is None:
    return

  cells = tables.get_table(args.table, args.dataset)
  runs = select_runs(parser, args, cells)
  for run in runs:
    print(f"{run.cell.run_name(run.seed)}: {run.describe()}")
  reference = load_reference(args)
  if reference is not None:
    rows = report.reference_rows(reference["report"], cells)
    print(f"compared against the committed rows of {reference['path']}:"
          + "".join(f"\n  {name}: {state}" for name, state in rows)
          + ("" if rows else " none"))
  if args.dry_run:
    return

  runs_dir = os.path.join(args.runs_dir, args.table)

  def write_report():
    report.write_report(args.table, cells, runs_dir, args.results_dir,
                        reference)

  if not args.report_only:
    prepare_data(args.dataset, args.data_dir)
    train(runs, runs_dir, args.data_dir, write_report)
  write_report()
  print(f"wrote {os.path.join(args.results_dir, args.table)}.md")


def train(runs, runs_dir: str, data_dir: Optional[str], on_finished) -> None:
  """:func:`runner.train_runs`; a user error (a changed config, a locked
  workdir, …) stops the command in one line."""
  from remix_jax.trainer import checkpointing  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import workdir  # pylint: disable=g-import-not-at-top
  try:
    runner.train_runs(runs, runs_dir, data_dir, on_finished)
  except (ValueError, OSError, FloatingPointError, workdir.WorkdirError,
          checkpointing.CheckpointError) as err:
    fail(str(err))


if __name__ == "__main__":
  main()
