"""Which image SUMix's recomputed ratio λ̃ sides with, measured in training.

    python experiments/sumix/direction.py [--method cutmix_sumix] [--steps 288]
        [--scale 0] [--data_dir ../shared/tfds]
    python experiments/sumix/direction.py --method cutmix_sumix_follow

Trains ``--method`` (a SUMix method) from scratch with the ``cpu30`` recipe
on cifar10_jpeg (exponential ρ = 100, LDAM split) for ``--steps`` steps with
the trainer's own jitted step, and collects each step's metrics: the base
mixer's λ (``mix_ratio``; one λ per batch with the default mixer), the batch
mean of λ̃ before any reduction (``sumix_ratio``), the label weight the loss
used (``label_weight``) and the fraction of samples whose λ̃ gives the
majority label to the other image than λ does (``sumix_label_flip``, see
``remix_jax.sumix.label_flip_rate``). Prints the mean λ̃ and flip rate for
batches binned by λ, then per stretch of training, then a histogram of the
per-sample λ̃ the trained network gives on ``--probe_batches`` further
batches. A rule that follows the pasted area has mean λ̃ rising with λ and a
flip rate near 0; a saturated one puts λ̃ in the outer tenths.
"""

import argparse
import itertools
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from remix_jax.trainer import process_setup  # noqa: E402

process_setup.configure_process()  # the trainer's XLA:CPU kernels; before JAX starts

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from configs import cifar_lt  # noqa: E402
from remix_jax.trainer import config_lib  # noqa: E402
from remix_jax import data  # noqa: E402
from remix_jax.trainer import methods  # noqa: E402
from remix_jax.trainer import objective  # noqa: E402
from remix_jax import parallel  # noqa: E402
from remix_jax.trainer import build  # noqa: E402

DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[3] / "shared" / "tfds"
KEYS = ("mix_ratio", "sumix_ratio", "label_weight", "sumix_label_flip",
        "loss")
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def probe_ratios(config, state, batches, num_classes: int) -> np.ndarray:
  """Per-sample λ̃ of the trained ``state`` on ``batches`` (the train step's
  two passes in train mode, without updating anything)."""
  model = build.model_from_config(config, num_classes,
                                  per_device_batch=config.batch_size)
  writable = lambda tree: jax.tree.map(np.array, tree)
  nnx.update(model, writable(state.params))
  model.train()
  mix = objective.make_mix_fn(config, model.num_mix_layers)
  ratio_fn = objective.make_sumix_ratio_fn(config)
  out = []
  for i, batch in enumerate(batches):
    images, labels = jnp.asarray(batch["image"]), jnp.asarray(batch["label"])
    mixed, info, _ = mix(jax.random.key(i), images, labels)
    # Each probe batch starts from the trained BatchNorm statistics.
    nnx.update(model, writable(state.batch_stats))
    lam_t, _ = ratio_fn(model.similarity, model(images).logits,
                        model(mixed).logits, labels, info.partner, info.lam)
    out.append(np.asarray(lam_t))
  return np.concatenate(out)


def collect(config, num_steps: int, probe_batches: int):
  """Trains ``num_steps`` steps; ``({metric: [num_steps] array}, per-sample
  λ̃ of the trained network on ``probe_batches`` further batches)``."""
  mesh = parallel.make_mesh(1)
  train_data = data.create_train_data(config_lib.data_options(config.data),
                                      global_batch_size=config.batch_size)
  state, train_step, _ = build.build(
      config, mesh, num_classes=train_data.num_classes,
      class_counts=train_data.class_counts,
      steps_per_epoch=train_data.steps_per_epoch)
  pending, epoch = [], 0
  while len(pending) < num_steps:
    for batch in train_data.iterate(epoch):
      arrays = parallel.shard_batch(mesh, (batch["image"], batch["label"]))
      state, metrics = train_step(state, *arrays)
      pending.append({k: metrics[k] for k in KEYS})
      if len(pending) == num_steps:
        break
    epoch += 1
  fetched = jax.device_get(pending)
  series = {k: np.array([float(m[k]) for m in fetched]) for k in KEYS}
  probe = itertools.islice(train_data.iterate(epoch + 1), probe_batches)
  return series, probe_ratios(config, state, probe, train_data.num_classes)


def lambda_bins(series: dict) -> list[dict]:
  """Per bin of the batch λ (:data:`BINS`, the last bin closed; empty bins
  skipped): ``lo, hi, batches`` and the means of λ̃, the label weight and
  the flip rate."""
  out = []
  lam = series["mix_ratio"]
  for lo, hi in zip(BINS[:-1], BINS[1:]):
    sel = (lam >= lo) & ((lam < hi) if hi < 1.0 else (lam <= hi))
    if not sel.any():
      continue
    out.append({"lo": lo, "hi": hi, "batches": int(sel.sum()),
                "mean_ratio": float(series["sumix_ratio"][sel].mean()),
                "label_weight": float(series["label_weight"][sel].mean()),
                "flip_rate": float(series["sumix_label_flip"][sel].mean())})
  return out


def by_lambda(series: dict) -> list[str]:
  """Markdown rows: mean λ̃, label weight and flip rate per λ bin."""
  rows = ["| batch λ | batches | mean λ̃ | label weight | flip rate |",
          "|---|---|---|---|---|"]
  for b in lambda_bins(series):
    rows.append(f"| {b['lo']:.1f}–{b['hi']:.1f} | {b['batches']} | "
                f"{b['mean_ratio']:.3f} | {b['label_weight']:.3f} | "
                f"{b['flip_rate']:.3f} |")
  return rows


def by_stretch(series: dict, stretches: int = 4) -> list[str]:
  """Markdown rows: flip rate, corr(λ, λ̃) and loss per stretch of steps."""
  rows = ["| steps | flip rate | corr(λ, mean λ̃) | loss |", "|---|---|---|---|"]
  n = len(series["loss"])
  edges = np.linspace(0, n, stretches + 1).astype(int)
  for lo, hi in zip(edges[:-1], edges[1:]):
    lam, lam_t = series["mix_ratio"][lo:hi], series["sumix_ratio"][lo:hi]
    corr = (np.corrcoef(lam, lam_t)[0, 1]
            if lam.std() > 0 and lam_t.std() > 0 else float("nan"))
    rows.append(f"| {lo}–{hi} | {series['sumix_label_flip'][lo:hi].mean():.3f}"
                f" | {corr:+.2f} | {series['loss'][lo:hi].mean():.3f} |")
  return rows


def histogram(lam_t: np.ndarray) -> list[str]:
  """Markdown rows: the share of per-sample λ̃ in each tenth of [0, 1]."""
  counts, edges = np.histogram(lam_t, bins=10, range=(0.0, 1.0))
  share = counts / max(1, len(lam_t))
  return ["| λ̃ | " + " | ".join(f"{lo:.1f}–{hi:.1f}" for lo, hi in
                                  zip(edges[:-1], edges[1:])) + " |",
          "|---" * 11 + "|",
          "| share | " + " | ".join(f"{x:.3f}" for x in share) + " |"]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--method", default="cutmix_sumix")
  parser.add_argument("--steps", type=int, default=288)
  parser.add_argument("--scale", type=float, default=0.0,
                      help="config.sumix.scale (0 = the per-device batch)")
  parser.add_argument("--probe_batches", type=int, default=4,
                      help="batches for the per-sample λ̃ histogram")
  parser.add_argument("--data_dir", default=os.environ.get(
      "TFDS_DATA_DIR", str(DEFAULT_DIR)))
  args = parser.parse_args()
  config = methods.resolve(cifar_lt.build(
      dataset="cifar10_jpeg", protocol="cpu30", method=args.method))
  if not config.sumix.enabled:
    raise SystemExit(f"--method {args.method} does not use SUMix; choose one "
                     "of the *_sumix methods or sumix_remix")
  if args.steps < 1:
    raise SystemExit(f"--steps {args.steps} must be >= 1")
  config.data.data_dir = args.data_dir
  config.sumix.scale = args.scale
  series, lam_t = collect(config, args.steps, args.probe_batches)
  scale = args.scale or config.batch_size
  print(f"{args.method}, cpu30 recipe, cifar10_jpeg exp rho=100, "
        f"{args.steps} steps from scratch, s = {scale:g}, reduction "
        f"{config.sumix.reduction}, rule {config.sumix.rule}"
        + (f" (T = {config.sumix.temperature:g})"
           if config.sumix.rule == "follow" else ""))
  print("\n".join(by_lambda(series)))
  print()
  print("\n".join(by_stretch(series)))
  print(f"\nper-sample λ̃ of the trained network on {len(lam_t)} further "
        "training images:")
  print("\n".join(histogram(lam_t)))


if __name__ == "__main__":
  main()
