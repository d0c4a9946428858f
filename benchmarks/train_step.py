"""Times the jitted train and eval steps of a ResNet on CIFAR-sized batches.

    python benchmarks/train_step.py [--batch 128] [--iters 20] [--devices 0]
        [--mixers erm,mixup,cutmix,...] [--model resnet32|resnet18]
        [--conv_impls xla,onednn]

Uses the trainer's own step (``remix_jax.trainer.build.build``: model, mixer, Remix
label rule off, loss, SGD-momentum update, data-parallel ``shard_map``) on
random data, once per convolution implementation (``config.conv_impl``:
XLA's, and oneDNN's where the native extension is built). Prints, per
implementation and mixer, the compile time (first call), the median
time of one step after warm-up, images/s, and the mixer's share of the step
(``1 − t_erm / t_mixer``; for ``*_sumix`` it includes SUMix's second
pass), the minor page faults per step (the process's ``ru_minflt``: pages
the kernel had to map in, :mod:`remix_jax.trainer.host_memory`), SUMix's step time
as a multiple of its base mixer's, then eval
(forward) images/s. When torch is installed (optional: ``pip install
torch==2.13.0``), the same network (ResNet-32 or ResNet-18) in PyTorch
eager ``channels_last`` (``benchmarks/torch_reference.py``) is timed in
the same run (a child process with its own heap, ``torch_reference.Server``),
interleaved with the ERM step of each implementation: ``--rounds``
rounds, each timing every contender's train step, then its forward, for
``--iters / --rounds`` calls. The JAX / PyTorch ratios printed are the
median over rounds of each round's ratio of medians, with their range, so
the machine's drift over minutes acts on both sides alike.
"""

import argparse
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from remix_jax.trainer import process_setup  # noqa: E402

process_setup.configure_process()  # the trainer's XLA:CPU kernels; before JAX starts

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import cifar_lt  # noqa: E402
from remix_jax import parallel  # noqa: E402
from remix_jax.trainer import build  # noqa: E402
from remix_jax.trainer import methods  # noqa: E402

import torch_reference  # noqa: E402  (benchmarks/, beside this file)

MIXERS = ("erm", "mixup", "cutmix", "saliencymix", "fmix", "resizemix",
          "manifold_mixup", "cutmix_sumix")
COUNTS = np.array([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])


def _minor_faults() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _median_time(fn, iters: int) -> tuple[float, float]:
  """Median seconds of ``fn()`` over ``iters`` calls, and page faults per call."""
  times = []
  faults = _minor_faults()
  for _ in range(iters):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return statistics.median(times), (_minor_faults() - faults) / iters


def time_train_step(method: str, args, images, labels) -> dict:
  """Compile time and median step time of one method's train step.

  Returns:
    ``{'compile_s', 'step_s', 'faults', 'step'}`` (``step()`` runs one more
    step), and for ERM also ``eval_s`` and ``forward`` (one eval step).
  """
  config = methods.resolve(cifar_lt.get_config(f"method={method}"))
  config.model = args.model
  config.batch_size = args.batch
  config.weight_grad_chunks = args.weight_grad_chunks
  config.conv_impl = args.conv_impl
  mesh = parallel.make_mesh(args.devices)
  state, train_step, eval_step = build.build(
      config, mesh, num_classes=10, class_counts=COUNTS, steps_per_epoch=100)
  batch = parallel.shard_batch(mesh, (images, labels))
  holder = {"state": state}

  def one_step():
    holder["state"], metrics = train_step(holder["state"], *batch)
    return metrics

  t0 = time.perf_counter()
  jax.block_until_ready(one_step())
  compile_s = time.perf_counter() - t0
  one_step()  # warm-up
  step_s, faults = _median_time(one_step, args.iters)
  out = {"compile_s": compile_s, "step_s": step_s, "faults": faults,
         "step": one_step}
  if method == "erm":
    mask = np.ones(len(labels), bool)
    eval_batch = parallel.shard_batch(mesh, (images, labels, mask))
    run_eval = lambda: eval_step(holder["state"], *eval_batch)
    jax.block_until_ready(run_eval())
    out["eval_s"] = _median_time(run_eval, args.iters)[0]
    out["forward"] = run_eval
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--iters", type=int, default=20)
  parser.add_argument("--devices", type=int, default=0,
                      help="devices of the mesh (0 = all)")
  parser.add_argument("--model", default="resnet32")
  parser.add_argument("--mixers", default=",".join(MIXERS),
                      help="comma-separated methods (erm is always timed)")
  parser.add_argument("--weight_grad_chunks", type=int, default=-1,
                      help="config.weight_grad_chunks (-1 = auto, 1 = plain)")
  parser.add_argument("--conv_impls", default="xla,onednn",
                      help="comma-separated config.conv_impl values, each "
                      "timed (onednn is skipped where it is unavailable)")
  parser.add_argument("--no_torch", action="store_true",
                      help="skip the PyTorch reference")
  parser.add_argument("--rounds", type=int, default=5,
                      help="interleaved rounds against PyTorch (each of "
                      "--iters / --rounds calls per side)")
  args = parser.parse_args()
  rng = np.random.RandomState(0)
  images = rng.randn(args.batch, 32, 32, 3).astype(np.float32)
  labels = rng.randint(0, 10, args.batch).astype(np.int32)
  names = ["erm"] + [m for m in args.mixers.split(",") if m and m != "erm"]
  mesh_size = parallel.make_mesh(args.devices).devices.size
  chunks = build.resolve_weight_grad_chunks(args.weight_grad_chunks,
                                            args.batch // mesh_size)
  impls = []
  for impl in args.conv_impls.split(","):
    try:
      impls.append(build.resolve_conv_impl(impl))
    except ValueError as e:
      print(f"conv_impl {impl} skipped: {e}")
  print(f"jax {jax.__version__} on {jax.devices()[0].platform} "
        f"({mesh_size} device(s)), {args.model}, batch {args.batch}x32x32x3 "
        f"float32, XLA convs with weight_grad_chunks {chunks}, median of "
        f"{args.iters} steps after warm-up")
  print("| convs | method | compile (s) | step (ms) | images/s | mixer share "
        "| page faults/step |")
  print("|---|---|---|---|---|---|---|")
  erm_results, times = {}, {}
  for impl in impls:
    args.conv_impl = impl
    for name in names:
      r = time_train_step(name, args, images, labels)
      base = erm_results.setdefault(impl, r)
      times[impl, name] = r["step_s"]
      share = ("–" if name == "erm" else
               f"{100 * (1 - base['step_s'] / r['step_s']):.1f} %")
      print(f"| {impl} | {name} | {r['compile_s']:.1f} | "
            f"{1e3 * r['step_s']:.0f} | {args.batch / r['step_s']:.0f} | "
            f"{share} | {r['faults']:,.0f} |", flush=True)
  for (impl, name), t in times.items():
    mixer = name[:-len("_sumix")]
    if name.endswith("_sumix") and (impl, mixer) in times:
      print(f"{impl}: SUMix step / {mixer} step: "
            f"{t / times[impl, mixer]:.2f}x")
  for impl, base in erm_results.items():
    print(f"{impl}: eval (forward) step: {1e3 * base['eval_s']:.0f} ms, "
          f"{args.batch / base['eval_s']:.0f} images/s")
  if args.no_torch or args.model not in torch_reference.MODELS:
    return
  if not torch_reference.available():
    print("PyTorch reference skipped: torch is not installed "
          "(pip install torch==2.13.0, the CPU build)")
    return
  ref = torch_reference.Server(args.model, args.batch)
  contenders = {"torch": ref.time}
  for impl, base in erm_results.items():
    contenders[impl] = (lambda kind, iters, base=base:
                        torch_reference.median_seconds(
                            lambda: jax.block_until_ready(base[kind]()),
                            iters))
  rounds = max(1, args.rounds)
  per_round = max(2, args.iters // rounds)
  times = torch_reference.head_to_head(contenders, rounds, per_round)
  ref.close()
  print(f"PyTorch {ref.version} eager channels_last {args.model} "
        f"(a child process, {ref.threads} threads), {rounds} interleaved "
        f"rounds of "
        f"{per_round} calls per side: train "
        f"{args.batch / statistics.median(times['torch', 'step']):.0f} "
        f"images/s, eval "
        f"{args.batch / statistics.median(times['torch', 'forward']):.0f} "
        f"images/s")
  for impl in erm_results:
    parts = []
    for kind, label in (("step", "train"), ("forward", "eval")):
      ratios = [t / j for t, j in zip(times["torch", kind], times[impl, kind])]
      parts.append(f"{label} {statistics.median(ratios):.2f}x "
                   f"({min(ratios):.2f}-{max(ratios):.2f}; "
                   f"{args.batch / statistics.median(times[impl, kind]):.0f}"
                   f" images/s)")
    print(f"ratio JAX ({impl} convs)/PyTorch, median over rounds (range): "
          + ", ".join(parts) + " (erm step)")


if __name__ == "__main__":
  main()
