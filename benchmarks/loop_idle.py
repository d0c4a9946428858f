"""How much of the trainer's loop the device waits: the train step's device
time against the wall time per step of a finished run, and the input
pipeline's rate.

    python benchmarks/loop_idle.py --workdir RUN [--iters 50] [--epochs 3]
        [--json PATH]

``RUN`` is a workdir that ``main.py`` (or ``train_and_evaluate``) trained
with ``config.metric_writer='jsonl'``. From its ``metrics.jsonl`` the wall
time per step of the real loop is ``batch_size / images_per_second`` of each
logged interval (evaluation excluded; the first interval, which waits for
the compilation, is left out), median over intervals. Then, with the run's
own config, the same train step (``remix_jax.trainer.build``) is timed alone
on one batch already on the device, ``jax.block_until_ready`` after every
call: the device-bound time per step. ``idle = 1 − device / loop`` is the
share of the loop's time the device waits for the host (dispatch, metric
fetches, the input pipeline, the host-to-device copy). The input pipeline
is timed alone too: images/s over ``--epochs`` epochs of ``iterate``
with nothing consuming the batches, on this machine's cores.

Prints one line per figure and writes them as JSON (``--json``).
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from remix_jax.trainer import process_setup  # noqa: E402

process_setup.configure_process()  # the trainer's XLA:CPU kernels; before JAX starts

import jax  # noqa: E402
import numpy as np  # noqa: E402

from remix_jax import data  # noqa: E402
from remix_jax import parallel  # noqa: E402
from remix_jax.trainer import build  # noqa: E402
from remix_jax.trainer import config_lib  # noqa: E402
from remix_jax.trainer import run_log  # noqa: E402
from remix_jax.trainer import run_record  # noqa: E402


def loop_seconds_per_step(workdir: str, batch_size: int) -> dict:
  """The loop's wall seconds per step from ``workdir/metrics.jsonl``.

  Returns:
    ``{'median', 'min', 'max', 'intervals'}`` over the logged intervals
    after the first (``None`` values when there are none).
  """
  path = os.path.join(workdir, run_log.JSONL_FILE)
  with open(path, encoding="utf-8") as f:
    rates = [r["images_per_second"] for r in map(json.loads, f)
             if "images_per_second" in r]
  per_step = [batch_size / r for r in rates[1:] if r > 0]
  if not per_step:
    return {"median": None, "min": None, "max": None, "intervals": 0}
  return {"median": statistics.median(per_step), "min": min(per_step),
          "max": max(per_step), "intervals": len(per_step)}


def device_seconds_per_step(config, train_data, iters: int) -> float:
  """Median seconds of the run's train step alone, on one batch held on
  the device, waiting for each call."""
  mesh = config_lib.make_mesh(config)
  state, train_step, _ = build.build(
      config, mesh, num_classes=train_data.num_classes,
      class_counts=np.asarray(train_data.class_counts),
      steps_per_epoch=train_data.steps_per_epoch)
  batch = next(iter(train_data.iterate(0)))
  images, labels = parallel.shard_batch(mesh, (batch["image"],
                                               batch["label"]))
  state, metrics = train_step(state, images, labels)  # compiles
  jax.block_until_ready(metrics)
  times = []
  for _ in range(iters):
    t0 = time.perf_counter()
    state, metrics = train_step(state, images, labels)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def pipeline_images_per_second(train_data, epochs: int) -> float:
  """Images/s of ``train_data.iterate`` alone over ``epochs`` epochs,
  after a warm-up epoch."""
  for _ in train_data.iterate(0):
    pass
  images, t0 = 0, time.perf_counter()
  for epoch in range(1, epochs + 1):
    for batch in train_data.iterate(epoch):
      images += len(batch["label"])
  return images / (time.perf_counter() - t0)


def measure(workdir: str, iters: int, epochs: int) -> dict:
  """Every figure of the module docstring for ``workdir``."""
  config = config_lib.validate_config(run_record.load_config(workdir))
  loop = loop_seconds_per_step(workdir, config.batch_size)
  train_data = data.create_train_data(
      config_lib.data_options(config.data),
      global_batch_size=config.batch_size)
  device_s = device_seconds_per_step(config, train_data, iters)
  rate = pipeline_images_per_second(train_data, epochs)
  idle = (None if loop["median"] is None
          else max(0.0, 1.0 - device_s / loop["median"]))
  return {
      "workdir": workdir, "platform": jax.default_backend(),
      "device": jax.devices()[0].device_kind, "model": config.model,
      "method": config.method, "dataset": config.data.name,
      "batch_size": config.batch_size, "dtype": config.dtype,
      "image_shape": list(train_data.image_shape),
      "loop_ms_per_step": {k: (v if k == "intervals" or v is None
                               else 1e3 * v) for k, v in loop.items()},
      "device_ms_per_step": 1e3 * device_s, "device_idle_fraction": idle,
      "pipeline_images_per_s": rate,
      "pipeline_ms_per_batch": 1e3 * config.batch_size / rate,
      "host_cores": os.cpu_count(),
  }


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--iters", type=int, default=50,
                      help="timed calls of the train step alone")
  parser.add_argument("--epochs", type=int, default=3,
                      help="epochs of the input pipeline alone")
  parser.add_argument("--json", default="", help="where to write the figures")
  args = parser.parse_args(argv)
  try:
    out = measure(args.workdir, max(1, args.iters), max(1, args.epochs))
  except (OSError, ValueError, KeyError) as err:
    sys.exit(f"error: {err}")
  loop = out["loop_ms_per_step"]["median"]
  idle = out["device_idle_fraction"]
  print(f"{out['model']} {out['method']} on {out['dataset']}, batch "
        f"{out['batch_size']} {out['dtype']}, {out['device']}: train step "
        f"alone {out['device_ms_per_step']:.2f} ms; the loop "
        f"{'–' if loop is None else f'{loop:.2f}'} ms/step; device idle "
        f"{'–' if idle is None else f'{100 * idle:.0f} %'}; input pipeline "
        f"{out['pipeline_images_per_s']:,.0f} images/s "
        f"({out['pipeline_ms_per_batch']:.2f} ms/batch, "
        f"{out['host_cores']} cores)")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(out, f, indent=2)
  return out


if __name__ == "__main__":
  main()
