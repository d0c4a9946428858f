"""Times each mixer, jitted, on a CIFAR-sized batch.

    python benchmarks/mixers.py [--batch 128] [--size 32] [--iters 100]

Prints, per mixer and λ mode, the median wall time of one jitted call (after
warm-up) — the input for the "mixing ≤ 2 % of a train step" budget.
"""

import argparse
import statistics
import time

from remix_jax.trainer import process_setup

process_setup.configure_process()  # the trainer's XLA:CPU kernels; before JAX starts

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from remix_jax import mixers  # noqa: E402


def time_call(fn, *args, iters: int) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for i in range(iters):
    key = jax.random.key(i + 1)
    t0 = time.perf_counter()
    jax.block_until_ready(fn(key, *args[1:]))
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--size", type=int, default=32)
  parser.add_argument("--iters", type=int, default=100)
  args = parser.parse_args()
  x = jax.random.normal(jax.random.key(0),
                        (args.batch, args.size, args.size, 3), jnp.float32)
  y = jnp.arange(args.batch, dtype=jnp.int32) % 10
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, batch "
        f"{args.batch}x{args.size}x{args.size}x3 float32, median of "
        f"{args.iters} calls after warm-up")
  print("| mixer | per batch (µs) | per sample (µs) |")
  print("|---|---|---|")
  for name in ["mixup", "cutmix", "saliencymix", "fmix", "resizemix",
               "manifold_mixup"]:
    row = []
    for per_sample in (False, True):
      fn = jax.jit(lambda k, x, y, f=mixers.get_mixer(name), p=per_sample:
                   f(k, x, y, per_sample=p))
      row.append(time_call(fn, jax.random.key(0), x, y, iters=args.iters))
    print(f"| {name} | {row[0] * 1e6:.0f} | {row[1] * 1e6:.0f} |")


if __name__ == "__main__":
  main()
