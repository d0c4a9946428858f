"""Short-schedule comparison: CutMix vs CutMix+SUMix vs SUMix×Remix on
CIFAR-10-LT (cifar10_jpeg, exponential ρ = 100, LDAM split).

    python experiments/sumix/compare.py [--epochs 3] [--data_dir ../shared/tfds]
        [--workdir runs/sumix_compare]

Each method trains ResNet-32 with the ``cpu30`` recipe shortened to
``--epochs`` (warm-up in epoch 1, then cosine to 0) in its own workdir under
``--workdir`` (re-running resumes or skips finished runs), then prints one
markdown row per method: top-1, head/mid/tail accuracy and training img/s.
A few epochs check cost and wiring, not the papers' accuracy ordering.
"""

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from remix_jax.trainer import process_setup  # noqa: E402

process_setup.configure_process()  # the trainer's XLA:CPU kernels; before JAX starts

from configs import cifar_lt  # noqa: E402
from remix_jax.trainer import train  # noqa: E402

METHODS = ("cutmix", "cutmix_sumix", "sumix_remix")
DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[3] / "shared" / "tfds"


def config_for(method: str, epochs: int, data_dir: str):
  c = cifar_lt.build(dataset="cifar10_jpeg", rho=100, profile="exp",
                     protocol="cpu30", method=method)
  c.data.data_dir = data_dir
  c.num_epochs = epochs
  c.schedule = "cosine"
  c.eval_every_epochs = epochs
  c.checkpoint_every_epochs = 1
  c.progress_bar = False
  return c


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--data_dir", default=os.environ.get(
      "TFDS_DATA_DIR", str(DEFAULT_DIR)))
  parser.add_argument("--workdir", default="runs/sumix_compare")
  parser.add_argument("--methods", default=",".join(METHODS))
  args = parser.parse_args()
  rows = []
  for method in args.methods.split(","):
    workdir = os.path.join(args.workdir, f"{method}_{args.epochs}ep")
    t0 = time.perf_counter()
    m = train.train_and_evaluate(config_for(method, args.epochs,
                                            args.data_dir), workdir)
    minutes = (time.perf_counter() - t0) / 60
    rows.append((method, m, minutes))
    with open(os.path.join(workdir, "wall_minutes.json"), "w") as f:
      json.dump({"minutes": minutes}, f)
  print(f"\n{args.epochs} epochs, ResNet-32, cifar10_jpeg exp rho=100")
  print("| method | top-1 | head | mid | tail | wall (min) |")
  print("|---|---|---|---|---|---|")
  for method, m, minutes in rows:
    print(f"| {method} | {m['top1']:.2f} | {m['head']:.2f} | {m['mid']:.2f} | "
          f"{m['tail']:.2f} | {minutes:.1f} |")


if __name__ == "__main__":
  main()
