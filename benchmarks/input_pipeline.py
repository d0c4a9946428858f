"""Times the CIFAR-10-LT input pipeline on the prepared real CIFAR-10.

    python benchmarks/input_pipeline.py [--data_dir ../shared/tfds]
        [--batch 128] [--rho 100] [--epochs 3]

Prints the time to build the long-tailed split (read the tfds split, select
LDAM's subset, decode and cache it) and the training images/s of full epochs
(batch 128, augmentation on: pad-4 crop + flip + normalization) after a
warm-up epoch, with and without class-balanced re-sampling.
"""

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from remix_jax import data  # pylint: disable=g-import-not-at-top

DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "tfds"


def images_per_second(train, epochs: int, resample: bool) -> float:
  for _ in train.iterate(0, resample=resample):  # warm-up epoch
    pass
  images, start = 0, time.perf_counter()
  for epoch in range(1, epochs + 1):
    for batch in train.iterate(epoch, resample=resample):
      images += len(batch["label"])
  return images / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default=os.environ.get(
      "TFDS_DATA_DIR", str(DEFAULT_DIR)))
  parser.add_argument("--dataset", default="cifar10_jpeg")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--rho", type=float, default=100.0)
  parser.add_argument("--profile", default="exp")
  parser.add_argument("--epochs", type=int, default=3)
  args = parser.parse_args()

  options = data.DataOptions(name=args.dataset, rho=args.rho,
                             profile=args.profile, augment=True)
  start = time.perf_counter()
  import remix_jax.data.pipeline  # noqa: F401
  imports = time.perf_counter() - start
  start = time.perf_counter()
  train = data.create_train_data(options, global_batch_size=args.batch,
                                 data_dir=args.data_dir)
  build = time.perf_counter() - start
  print(f"{args.dataset} {args.profile} rho={args.rho:g}: "
        f"{train.num_examples} train images {train.class_counts.tolist()}, "
        f"{train.steps_per_epoch} steps/epoch of {args.batch}, "
        f"{os.cpu_count()} CPU cores")
  print(f"import tensorflow + tfds: {imports:.2f} s; build split (read "
        f"the encoded split + select + decode + cache): {build:.2f} s")
  for resample in (False, True):
    rate = images_per_second(train, args.epochs, resample)
    print(f"train pipeline, augmentation on, resample={resample}: "
          f"{rate:,.0f} images/s (mean of {args.epochs} epochs after a "
          f"warm-up epoch)")


if __name__ == "__main__":
  main()
