"""Sums the time of each kind of oneDNN call in our train step and PyTorch's.

    python benchmarks/onednn_calls.py [--model resnet32|resnet18]
        [--batch 128] [--steps 12] [--no_torch]

Runs ``--steps`` ERM train steps of the model in a child process with
``ONEDNN_VERBOSE=1``, once for our step (``remix_jax.trainer.build.build``,
``conv_impl=onednn``) and once for PyTorch eager ``channels_last``
(``benchmarks/torch_reference.py``; PyTorch's CPU convolutions are oneDNN's
too, a newer release bundled in torch). Over the second half of the steps
it prints, per primitive kind and propagation (convolution forward,
backward data, backward weights, BatchNorm, reorder …), the calls and the
milliseconds per step that oneDNN itself timed, and the implementations it
chose, so the kernels can be compared call for call; the step's wall time
minus these sums is what each framework spends outside oneDNN.
"""

import argparse
import collections
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_steps(side: str, model: str, batch: int, steps: int):
  """The child: ``steps`` train steps, their wall times on stderr."""
  sys.path[:0] = [ROOT, os.path.join(ROOT, "benchmarks")]
  if side == "jax":
    from remix_jax.trainer import process_setup  # pylint: disable=g-import-not-at-top
    process_setup.configure_process()
    import jax  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top
    from configs import cifar_lt  # pylint: disable=g-import-not-at-top
    from remix_jax import parallel  # pylint: disable=g-import-not-at-top
    from remix_jax.trainer import build  # pylint: disable=g-import-not-at-top
    from remix_jax.trainer import methods  # pylint: disable=g-import-not-at-top
    import train_step as bench  # pylint: disable=g-import-not-at-top
    config = methods.resolve(cifar_lt.get_config("method=erm"))
    config.model, config.batch_size, config.conv_impl = model, batch, "onednn"
    mesh = parallel.make_mesh(0)
    state, train_step, _ = build.build(
        config, mesh, num_classes=10, steps_per_epoch=100,
        class_counts=bench.COUNTS)
    rng = np.random.RandomState(0)
    batch_arrays = parallel.shard_batch(mesh, (
        rng.randn(batch, 32, 32, 3).astype(np.float32),
        rng.randint(0, 10, batch).astype(np.int32)))

    def step():
      nonlocal state
      state, metrics = train_step(state, *batch_arrays)
      jax.block_until_ready(metrics)
  else:
    import torch_reference  # pylint: disable=g-import-not-at-top
    step = torch_reference.make_steps(model, batch)["step"]
  for _ in range(steps):
    t0 = time.perf_counter()
    step()
    print(f"step_ms {1e3 * (time.perf_counter() - t0):.1f}", file=sys.stderr,
          flush=True)


def summarize(lines: list[str], steps: int) -> dict:
  """``{(kind, propagation): [calls, ms, implementations]}`` per step from
  ``steps`` steps' ``onednn_verbose`` exec lines (the time is the last
  field)."""
  out = collections.defaultdict(lambda: [0.0, 0.0, set()])
  for line in lines:
    fields = line.strip().split(",")
    i = fields.index("cpu")
    entry = out[fields[i + 1], fields[i + 3]]
    entry[0] += 1 / steps
    entry[1] += float(fields[-1]) / steps
    entry[2].add(fields[i + 2])
  return out


def measure(side: str, args) -> tuple[dict, list[float]]:
  """Runs the child for ``side``; its oneDNN sums and step times."""
  env = dict(os.environ, ONEDNN_VERBOSE="1")
  proc = subprocess.run(
      [sys.executable, os.path.abspath(__file__), "--child", side,
       "--model", args.model, "--batch", str(args.batch), "--steps",
       str(args.steps)], env=env, capture_output=True, text=True, check=True)
  step_ms = [float(l.split()[1]) for l in proc.stderr.splitlines()
             if l.startswith("step_ms ")]
  lines = proc.stdout.splitlines()
  execs = [l for l in lines if l.startswith("onednn_verbose") and ",exec," in l]
  kept = args.steps - args.steps // 2
  # Every step makes the same calls; keep the last `kept` steps' share.
  tail = execs[len(execs) - len(execs) * kept // args.steps:]
  return summarize(tail, kept), step_ms[args.steps // 2:]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="resnet32",
                      choices=("resnet32", "resnet18"))
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--steps", type=int, default=12)
  parser.add_argument("--no_torch", action="store_true")
  parser.add_argument("--child", choices=("jax", "torch"),
                      help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    _run_steps(args.child, args.model, args.batch, args.steps)
    return
  sides = ["jax"] + ([] if args.no_torch else ["torch"])
  for side in sides:
    sums, step_ms = measure(side, args)
    total = sum(v[1] for v in sums.values())
    wall = sorted(step_ms)[len(step_ms) // 2]
    print(f"{side}: {args.model}, batch {args.batch}, median step {wall:.0f} "
          f"ms (with verbose output), oneDNN's own time {total:.0f} ms per "
          f"step")
    print("| kind | propagation | calls/step | ms/step | implementations |")
    print("|---|---|---|---|---|")
    for (kind, prop), (calls, ms, impls) in sorted(
        sums.items(), key=lambda kv: -kv[1][1]):
      print(f"| {kind} | {prop} | {calls:.0f} | {ms:.1f} | "
            f"{', '.join(sorted(impls))} |")


if __name__ == "__main__":
  main()
