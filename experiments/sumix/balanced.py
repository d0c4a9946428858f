"""Balanced CIFAR-10: CutMix vs CutMix+SUMix (official) vs CutMix+SUMix
(follow), one short schedule shared by all rows.

    python experiments/sumix/balanced.py --data_dir ../shared/tfds \\
        [--epochs 15] [--workdir runs/sumix_balanced] \\
        [--out results/sumix_balanced] [--temperature 0.5]

Each row trains ResNet-32 on the full cifar10_jpeg train split (ρ = 1: all
50,000 images, 5,000 per class) with the LDAM SGD recipe of
``configs/default.py`` (batch 128, lr 0.1, momentum 0.9, weight decay 2e-4,
CutMix α = 1), a linear warm-up over epoch 1 and a cosine decay to 0 over
``--epochs``, in its own workdir under ``--workdir`` (an interrupted row
resumes from its last epoch checkpoint; a finished one is only
re-evaluated). Every step's metrics are logged (``log_every_steps = 1``) and
the SUMix diagnostics are read back from the TensorBoard events: the mean
λ̃, label weight and label-flip rate per bin of the batch λ (the binning of
``experiments/sumix/direction.py``), the overall flip rate, the flip rate in
the last quarter of training and the correlation of λ with the batch-mean
λ̃. Writes ``OUT.md`` and ``OUT.json`` (top-1, top-5, per-class accuracy,
wall time and the diagnostics per row). Rows already in ``OUT.json`` for
the same setting are kept, not retrained, and new rows are merged in, so
rows can run in separate processes (``--rows``), or on another day from the
committed results, and still land in one table.

``--dataset``, ``--model``, ``--batch_size`` and ``--rows`` exist to test the
command on a tiny setting (``sklearn_digits``, ``tiny_resnet``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from remix_jax.trainer import process_setup  # noqa: E402

process_setup.configure_process()  # the trainer's XLA:CPU kernels; before JAX starts

import numpy as np  # noqa: E402

from configs import cifar_lt  # noqa: E402
from experiments.sumix import direction as sumix_direction  # noqa: E402
from remix_jax.trainer import methods  # noqa: E402

DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[3] / "shared" / "tfds"
#: (row label, method) in table order.
ROWS = (("CutMix", "cutmix"),
        ("CutMix+SUMix (official)", "cutmix_sumix"),
        ("CutMix+SUMix (follow)", "cutmix_sumix_follow"))
SERIES_KEYS = ("mix_ratio", "sumix_ratio", "label_weight", "sumix_label_flip")


def config_for(method: str, *, epochs: int, data_dir, dataset="cifar10_jpeg",
               model="resnet32", batch_size=128, temperature=0.5):
  """The shared balanced recipe for ``method``."""
  c = cifar_lt.build(dataset=dataset, rho=1, method=method)
  c.data.data_dir = data_dir
  c.model = model
  c.batch_size = batch_size
  c.sumix.temperature = temperature
  c.num_epochs = epochs
  c.schedule = "cosine"
  c.warmup_epochs = 1.0
  c.eval_every_epochs = epochs
  c.checkpoint_every_epochs = 1
  c.log_every_steps = 1  # per-step λ and λ̃ for the diagnostics
  c.progress_bar = False
  return methods.resolve(c)


def read_series(workdir: str, keys=SERIES_KEYS) -> dict:
  """``{key: [steps] array}`` of the per-step scalars in ``workdir``'s
  TensorBoard events, ordered by step (a step logged twice, after a resume,
  keeps its last value); missing keys are left out."""
  from tensorboard.backend.event_processing import event_accumulator as ea  # pylint: disable=g-import-not-at-top
  from tensorboard.util import tensor_util  # pylint: disable=g-import-not-at-top
  acc = ea.EventAccumulator(workdir, size_guidance={ea.TENSORS: 0})
  acc.Reload()
  tags = set(acc.Tags()["tensors"])
  out = {}
  for key in keys:
    if key not in tags:
      continue
    by_step = {e.step: float(tensor_util.make_ndarray(e.tensor_proto))
               for e in acc.Tensors(key)}
    out[key] = np.array([by_step[s] for s in sorted(by_step)])
  return out


def diagnostics(series: dict) -> dict | None:
  """The SUMix diagnostics of a per-step series, or ``None`` without SUMix."""
  if "sumix_ratio" not in series:
    return None
  lam, lam_t = series["mix_ratio"], series["sumix_ratio"]
  flip = series["sumix_label_flip"]
  last = flip[-max(1, len(flip) // 4):]
  corr = (float(np.corrcoef(lam, lam_t)[0, 1])
          if lam.std() > 0 and lam_t.std() > 0 else float("nan"))
  return {"steps": int(len(lam)), "flip_rate": float(flip.mean()),
          "flip_rate_last_quarter": float(last.mean()),
          "corr_lambda_ratio": corr,
          "lambda_bins": sumix_direction.lambda_bins(series)}


def _fmt(x, spec=".3f"):
  return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else (
      format(x, spec))


def markdown(rows: list[dict], header: str) -> str:
  """The results table, then one λ-bin table per SUMix row."""
  lines = [header, "",
           "| method | top-1 | top-5 | flip rate | flip rate (last ¼) | "
           "corr(λ, mean λ̃) | wall (min) |",
           "|---|---|---|---|---|---|---|"]
  for r in rows:
    d = r["diagnostics"] or {}
    lines.append(f"| {r['label']} | {r['top1']:.2f} | {r['top5']:.2f} | "
                 f"{_fmt(d.get('flip_rate'))} | "
                 f"{_fmt(d.get('flip_rate_last_quarter'))} | "
                 f"{_fmt(d.get('corr_lambda_ratio'), '+.2f')} | "
                 f"{r['wall_minutes']:.1f} |")
  for r in rows:
    if r["diagnostics"] is None:
      continue
    lines += ["", f"{r['label']}: mean λ̃ per batch-λ bin over "
              f"{r['diagnostics']['steps']} training steps", "",
              "| batch λ | batches | mean λ̃ | label weight | flip rate |",
              "|---|---|---|---|---|"]
    for b in r["diagnostics"]["lambda_bins"]:
      lines.append(f"| {b['lo']:.1f}–{b['hi']:.1f} | {b['batches']} | "
                   f"{b['mean_ratio']:.3f} | {b['label_weight']:.3f} | "
                   f"{b['flip_rate']:.3f} |")
  return "\n".join(lines) + "\n"


def setting(args) -> str:
  """The one-line description of the shared schedule (the table's header);
  rows kept in ``OUT.json`` belong to the same table only if it matches."""
  return (f"Balanced {args.dataset} (ρ = 1, every training image), "
          f"{args.model}, {args.epochs} epochs (warm-up 1, cosine), batch "
          f"{args.batch_size}, CutMix α = 1, seed 0; follow rule T = "
          f"{args.temperature:g}. Wall time includes compilation and this "
          "machine's load.")


def finished_rows(out: str, header: str) -> list[dict]:
  """The rows of ``OUT.json`` written for the setting ``header`` (none when
  the file is missing or holds another setting)."""
  try:
    with open(out + ".json") as f:
      saved = json.load(f)
  except FileNotFoundError:
    return []
  return saved["rows"] if saved.get("setting") == header else []


def merge_rows(kept: list[dict], new: list[dict]) -> list[dict]:
  """``kept`` with ``new`` added (a method in both takes the new row), in
  table order (:data:`ROWS`), other methods after it in the order given."""
  by_method = {r["method"]: r for r in [*kept, *new]}
  order = [m for _, m in ROWS] + list(by_method)
  return [by_method[m] for m in dict.fromkeys(order) if m in by_method]


def write_table(out: str, header: str, rows: list[dict]) -> str:
  """Writes ``OUT.json`` and ``OUT.md``, merging ``rows`` into the rows
  already there for the same setting (another process may have finished
  other rows meanwhile); each file is replaced atomically. Returns the
  markdown."""
  rows = merge_rows(finished_rows(out, header), rows)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  text = markdown(rows, header)
  for suffix, body in ((".json", json.dumps({"setting": header, "rows": rows},
                                            indent=1)), (".md", text)):
    with open(out + suffix + ".tmp", "w") as f:
      f.write(body)
    os.replace(out + suffix + ".tmp", out + suffix)
  return text


def run(args) -> tuple[list[dict], str]:
  """Trains (or resumes) every row that ``OUT.json`` does not already hold
  for this setting, adding each to ``OUT`` as it finishes
  (:func:`write_table`); ``(new rows, header)``."""
  from remix_jax.trainer import train  # pylint: disable=g-import-not-at-top
  labels = dict((m, label) for label, m in ROWS)
  header = setting(args)
  done = {r["method"] for r in finished_rows(args.out, header)}
  rows = []
  for method in args.rows.split(","):
    if method in done:
      print(f"{method}: kept from {args.out}.json (delete the row to retrain)")
      continue
    config = config_for(method, epochs=args.epochs, data_dir=args.data_dir,
                        dataset=args.dataset, model=args.model,
                        batch_size=args.batch_size,
                        temperature=args.temperature)
    workdir = os.path.join(args.workdir, f"{method}_{args.epochs}ep")
    t0 = time.perf_counter()
    result = train.train_and_evaluate(config, workdir)
    minutes = (time.perf_counter() - t0) / 60
    rows.append({"label": labels.get(method, method), "method": method,
                 "top1": result["top1"], "top5": result["top5"],
                 "per_class": result["per_class"], "wall_minutes": minutes,
                 "temperature": (config.sumix.temperature
                                 if config.sumix.rule == "follow" else None),
                 "diagnostics": diagnostics(read_series(workdir))})
    write_table(args.out, header, rows[-1:])  # each row lands as it finishes
  return rows, header


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--epochs", type=int, default=15)
  parser.add_argument("--data_dir", default=os.environ.get(
      "TFDS_DATA_DIR", str(DEFAULT_DIR)))
  parser.add_argument("--workdir", default="runs/sumix_balanced")
  parser.add_argument("--out", default="results/sumix_balanced",
                      help="writes OUT.md and OUT.json")
  parser.add_argument("--temperature", type=float, default=0.5,
                      help="T of the follow rule")
  parser.add_argument("--rows", default=",".join(m for _, m in ROWS))
  parser.add_argument("--dataset", default="cifar10_jpeg")
  parser.add_argument("--model", default="resnet32")
  parser.add_argument("--batch_size", type=int, default=128)
  args = parser.parse_args(argv)
  if args.epochs < 1 or not args.temperature > 0:
    raise SystemExit(f"--epochs {args.epochs} must be >= 1 and --temperature "
                     f"{args.temperature} > 0")
  unknown = [m for m in args.rows.split(",") if m not in methods.METHODS]
  if unknown:
    raise SystemExit(f"--rows: unknown method(s) {', '.join(unknown)}; "
                     "choose from " + ", ".join(m for _, m in ROWS))
  _, header = run(args)  # each row is in OUT as soon as it finishes
  print(markdown(finished_rows(args.out, header), header))


if __name__ == "__main__":
  main()
