"""Times the train step of two revisions in one process, interleaved.

    python benchmarks/step_ab.py --old REV [--new REV] [--method erm]
        [--batch 128] [--rounds 10] [--iters 10] [--conv_impl onednn]

Each revision's ``remix_jax/`` and ``configs/`` are exported with ``git
archive`` into a temporary directory (the native oneDNN extension, which is
not in git, is linked in from this checkout, so both use the same build).
The old revision's step is built and compiled first, its modules are then
dropped from ``sys.modules`` and the new revision's step is built the same
way; the compiled steps keep their own code. Then ``--rounds`` rounds each
time ``--iters`` steps of both, the order alternating from round to round,
so the machine's drift over minutes acts on both alike. Prints each round's
median step time of both and their ratio new/old, then the median ratio
over the rounds with its range.

Both steps come from the trainer's own builder of their revision (the
``remix_jax.trainer.build.build`` of today, or the ``remix_jax.train.build``
of revisions before the trainer package) on random CIFAR-sized batches,
with the method preset's config (``configs/cifar_lt.py``).
"""

import argparse
import contextlib
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("remix_jax", "configs")
COUNTS = (5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50)


def export(rev: str, into: str) -> str:
  """``remix_jax/`` and ``configs/`` of ``rev`` in ``into/<rev>``; the
  native extension linked in from this checkout."""
  out = os.path.join(into, rev.replace("/", "_"))
  os.makedirs(out)
  archive = subprocess.run(["git", "-C", ROOT, "archive", rev, *PACKAGES],
                           check=True, capture_output=True).stdout
  subprocess.run(["tar", "-x", "-C", out], input=archive, check=True)
  for name in os.listdir(os.path.join(ROOT, "remix_jax")):
    if name.startswith("_onednn_conv") and name.endswith(".so"):
      os.symlink(os.path.join(ROOT, "remix_jax", name),
                 os.path.join(out, "remix_jax", name))
  return out


@contextlib.contextmanager
def revision(path: str):
  """Imports resolve ``remix_jax`` and ``configs`` from ``path`` inside
  (an editable install's finder, which would map them to its own checkout,
  is set aside meanwhile)."""
  editable = [f for f in sys.meta_path
              if getattr(f, "__module__", "").startswith("__editable__")]
  for finder in editable:
    sys.meta_path.remove(finder)
  sys.path.insert(0, path)
  try:
    yield
  finally:
    sys.path.remove(path)
    sys.meta_path.extend(editable)
    for name in list(sys.modules):
      if name.split(".")[0] in PACKAGES:
        del sys.modules[name]


def build_step(args):
  """The current revision's ``(one_step, compile_s, builder)`` for
  ``args.method`` (``builder``: the module that built it)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  cifar_lt = importlib.import_module("configs.cifar_lt")
  parallel = importlib.import_module("remix_jax.parallel")
  config = cifar_lt.get_config(f"method={args.method}")
  try:
    build = importlib.import_module("remix_jax.trainer.build")
    config = importlib.import_module("remix_jax.trainer.methods").resolve(config)
  except ModuleNotFoundError:
    build = importlib.import_module("remix_jax.train")
  config.batch_size = args.batch
  config.conv_impl = args.conv_impl
  mesh = parallel.make_mesh(0)
  state, train_step, _ = build.build(
      config, mesh, num_classes=10, class_counts=np.array(COUNTS),
      steps_per_epoch=100)
  rng = np.random.default_rng(0)
  images = rng.normal(size=(args.batch, 32, 32, 3)).astype(np.float32)
  labels = rng.integers(0, 10, args.batch).astype(np.int32)
  batch = parallel.shard_batch(mesh, (images, labels))
  holder = {"state": state}

  def one_step():
    holder["state"], metrics = train_step(holder["state"], *batch)
    return jax.block_until_ready(metrics)

  t0 = time.perf_counter()
  one_step()
  compile_s = time.perf_counter() - t0
  one_step()
  return one_step, compile_s, build.__name__


def median_ms(fn, iters: int) -> float:
  times = []
  for _ in range(iters):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return 1e3 * statistics.median(times)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--old", required=True, help="git revision")
  parser.add_argument("--new", default="HEAD", help="git revision")
  parser.add_argument("--method", default="erm")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--conv_impl", default="onednn",
                      choices=("onednn", "xla"))
  parser.add_argument("--rounds", type=int, default=10)
  parser.add_argument("--iters", type=int, default=10)
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory() as tmp:
    old_dir, new_dir = export(args.old, tmp), export(args.new, tmp)
    with revision(new_dir):  # the process's XLA flags, before JAX starts
      importlib.import_module(
          "remix_jax.trainer.process_setup").configure_process()
    steps = {}
    for name, path in (("old", old_dir), ("new", new_dir)):
      with revision(path):
        steps[name], compile_s, builder = build_step(args)
      print(f"{name} ({getattr(args, name)}, {builder}.build): compiled in "
            f"{compile_s:.1f} s")
  ratios = []
  for r in range(args.rounds):
    order = ("old", "new") if r % 2 == 0 else ("new", "old")
    ms = {name: median_ms(steps[name], args.iters) for name in order}
    ratios.append(ms["new"] / ms["old"])
    print(f"round {r + 1}: old {ms['old']:.1f} ms, new {ms['new']:.1f} ms, "
          f"new/old {ratios[-1]:.3f}")
  print(f"{args.method}, batch {args.batch}, {args.conv_impl}: new/old "
        f"median {statistics.median(ratios):.3f} over {args.rounds} rounds "
        f"(range {min(ratios):.3f}-{max(ratios):.3f}, {args.iters} steps "
        f"per round each)")


if __name__ == "__main__":
  main()
