"""Where the time of one jitted train step goes, by XLA operation kind.

    python benchmarks/profile_step.py [--method erm] [--batch 128] [--steps 3]
        [--weight_grad_chunks -1]

Builds the trainer's step (``remix_jax.trainer.build.build``) for ResNet-32 on random
CIFAR-sized data, traces ``--steps`` steps after warm-up with
``jax.profiler`` (Perfetto trace; XLA:CPU op annotations switched on with
``--xla_cpu_enable_xprof_traceme``) and prints the mean time per step of
each kind of compiled operation (the fusion name without its number), e.g.
``ynn_fusion`` (convolutions run by YNNPACK) or ``transpose_copy_fusion``
(layout changes), then how the ops share the wall clock
(``trace_timeline.py``: oneDNN calls and XLA's ops, their overlap and the
time no op ran).
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_cpu_enable_xprof_traceme=true").strip()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from remix_jax.trainer import process_setup  # noqa: E402

process_setup.configure_process()  # the trainer's XLA:CPU kernels; before JAX starts

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import cifar_lt  # noqa: E402
from remix_jax import parallel  # noqa: E402
from remix_jax.trainer import build  # noqa: E402
from remix_jax.trainer import methods  # noqa: E402

import trace_timeline  # noqa: E402  (benchmarks/, beside this file)

COUNTS = np.array([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
#: Trace events that are not compiled operations (host-side bookkeeping).
_HOST_EVENT = re.compile(r"^\$|Execute|Pjit|Await|CreateOutputs|Handle inputs|"
                         r"ParseArguments|^end: ")


def op_events(trace_file: str) -> list[dict]:
  """The compiled operations' complete events of a Perfetto trace."""
  with gzip.open(trace_file) as f:
    trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  return [e for e in events if e.get("ph") == "X"
          and not _HOST_EVENT.search(e.get("name", ""))]


def op_kind_totals(events) -> tuple[collections.Counter, collections.Counter]:
  """Summed microseconds and counts of each op kind."""
  total, count = collections.Counter(), collections.Counter()
  for event in events:
    kind = re.sub(r"[.\d]+$", "", event["name"])
    total[kind] += event["dur"]
    count[kind] += 1
  return total, count


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--method", default="erm")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--weight_grad_chunks", type=int, default=-1)
  args = parser.parse_args()
  config = methods.resolve(cifar_lt.get_config(f"method={args.method}"))
  config.batch_size = args.batch
  config.weight_grad_chunks = args.weight_grad_chunks
  mesh = parallel.make_mesh(1)
  state, step, _ = build.build(config, mesh, num_classes=10,
                               class_counts=COUNTS, steps_per_epoch=100)
  rng = np.random.RandomState(0)
  batch = parallel.shard_batch(mesh, (
      rng.randn(args.batch, 32, 32, 3).astype(np.float32),
      rng.randint(0, 10, args.batch).astype(np.int32)))
  for _ in range(3):
    state, metrics = step(state, *batch)
  jax.block_until_ready(metrics)
  with tempfile.TemporaryDirectory() as logdir:
    with jax.profiler.trace(logdir, create_perfetto_trace=True):
      for _ in range(args.steps):
        state, metrics = step(state, *batch)
      jax.block_until_ready(metrics)
    trace_file = glob.glob(f"{logdir}/**/*.trace.json.gz", recursive=True)[0]
    events = op_events(trace_file)
  total, count = op_kind_totals(events)
  chunks = build.resolve_weight_grad_chunks(args.weight_grad_chunks, args.batch)
  print(f"{args.method} step, resnet32, batch {args.batch}, weight_grad_chunks "
        f"{chunks}: ms per step by op kind (mean of {args.steps} steps)")
  print("| op kind | ms/step | ops/step |")
  print("|---|---|---|")
  for kind, us in total.most_common():
    ms = us / args.steps / 1e3
    if ms >= 0.5:
      print(f"| {kind} | {ms:.1f} | {count[kind] // args.steps} |")
  print(f"| all ops | {sum(total.values()) / args.steps / 1e3:.1f} | |")
  t = trace_timeline.timeline(events, args.steps)
  print(f"wall clock, ms per step: span {t['span']:.1f} = busy {t['busy']:.1f}"
        f" + idle {t['idle']:.1f}; oneDNN calls {t['native']:.1f}, XLA ops "
        f"{t['other']:.1f}, both at once {t['overlap']:.1f}")


if __name__ == "__main__":
  main()
