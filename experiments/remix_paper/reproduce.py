"""Runs a reproduction table of the Remix paper and writes its report.

    python experiments/remix_paper/reproduce.py --table paper \
        [--runs_dir runs/reproduce]
        [--results_dir results] [--data_dir ../shared/tfds] [--only M1,M2]
        [--seeds S1,S2]
        [--dry_run | --report_only | --readme_table] [--examples]

Each (method, seed) of the table (``tables.TABLES``) trains in its own
workdir ``<runs_dir>/<table>/<method>_<dataset>_<profile><rho>_<protocol>_
s<seed>``; finished runs (``results.json`` in the workdir, or its copy under
``<results_dir>/runs/<table>/``, which a fresh checkout has) are skipped and
the others resume from their checkpoints. A deferred method (DRW, …) that
has not started branches from its base at the switch epoch
(``runner.py``). After every run, and at the end,
``<results_dir>/<table>.md``/``.json`` (ours next to the paper's numbers, the
paper's orderings) and the curve, per-class and head/mid/tail plots are
rewritten.

  --only         train only these methods (the report still covers the table)
  --seeds        train only these seeds, e.g. 0 to stop after the seed-0 rows
  --dry_run      list the runs and their status; train and write nothing
  --report_only  write the report from what is on disk; train nothing
  --readme_table print the table's results at a glance (from
                 <results_dir>/<table>.json) as README.md's block between
                 <!-- <table>-table:start --> and <!-- <table>-table:end -->
  --examples     write <results_dir>/mixed_examples.png (the mixers on one
                 training image per class of cifar10_jpeg); with no --table,
                 only that
"""

import argparse
import os
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from remix_jax.trainer import process_setup  # noqa: E402

process_setup.configure_process()  # the trainer's XLA:CPU kernels; before JAX starts

from configs import cifar_lt  # noqa: E402
from experiments.remix_paper import report  # noqa: E402
from experiments.remix_paper import runner  # noqa: E402
from experiments.remix_paper import status  # noqa: E402
from experiments.remix_paper import tables  # noqa: E402

DEFAULT_DATA_DIR = REPO.parent / "shared" / "tfds"


def write_examples(path: str, data_dir: str,
                   dataset: str = "cifar10_jpeg") -> None:
  """The mixer grid (``plots.mixed_examples_grid``) on one un-augmented
  training image per class of ``dataset``, head and tail classes alternating
  (0, C−1, 1, C−2, …) so that the Remix rule has pairs to act on."""
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


def print_readme_block(parser, args) -> None:
  """Prints ``report.readme_block`` of ``<results_dir>/<table>.json``; a
  one-line error without ``--table`` or the file."""
  if args.table is None:
    parser.error("--readme_table: give --table")
  path = os.path.join(args.results_dir, f"{args.table}.json")
  table_json = status.read_json(path)
  if table_json is None:
    parser.error(f"--readme_table: no report at {path} (write it with "
                 "--report_only)")
  print(report.readme_block(table_json))


def main():
  parser = argparse.ArgumentParser(
      description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--table", choices=sorted(tables.TABLES))
  parser.add_argument("--runs_dir", default="runs/reproduce")
  parser.add_argument("--results_dir", default="results")
  parser.add_argument("--data_dir", default=os.environ.get(
      "TFDS_DATA_DIR", str(DEFAULT_DATA_DIR)))
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
  if args.readme_table:
    print_readme_block(parser, args)
    return

  if args.examples and not args.dry_run:
    os.makedirs(args.results_dir, exist_ok=True)
    write_examples(os.path.join(args.results_dir, "mixed_examples.png"),
                   args.data_dir)
  if args.table is None:
    return

  cells = tables.get_table(args.table)
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
  archive = status.archive_dir(args.results_dir, args.table)
  runs = [r for r in status.table_runs(cells, runs_dir, archive)
          if (not only or r.cell.method in only)
          and (not seeds or r.seed in seeds)]
  for run in runs:
    print(f"{run.cell.run_name(run.seed)}: {run.describe()}")
  if args.dry_run:
    return

  def write_report():
    report.write_report(args.table, cells, runs_dir, args.results_dir)

  if not args.report_only:
    runner.train_runs(runs, runs_dir, args.data_dir, write_report)
  write_report()
  print(f"wrote {os.path.join(args.results_dir, args.table)}.md")


if __name__ == "__main__":
  main()
