"""Times the jitted train and eval steps of a ResNet on CIFAR-sized batches.

    python benchmarks/train_step.py [--batch 128] [--iters 20] [--devices 0]
        [--mixers erm,mixup,cutmix,...] [--model resnet32|resnet18]
        [--conv_impls xla,onednn] [--rounds 5] [--json PATH]
        [--dtype float32|bfloat16] [--torch_device cpu|cuda]
        [--torch_compile inductor]
    python benchmarks/train_step.py --markdown [--json PATH]

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
torch==2.13.0``), the same network (ResNet-32, ResNet-18 or the tiny
ResNet) in PyTorch
eager ``channels_last`` (``benchmarks/torch_reference.py``) is timed in
the same run (a child process with its own heap, ``torch_reference.Server``),
interleaved with the ERM step of each implementation: ``--rounds``
rounds, each timing every contender's train step, then its forward, for
``--iters / --rounds`` calls. The JAX / PyTorch ratios printed are the
median over rounds of each round's ratio of medians, with their range, so
the machine's drift over minutes acts on both sides alike. Without torch
the JAX contenders are still timed in rounds. ``--dtype`` sets
``config.dtype`` and PyTorch's autocast dtype alike; ``--torch_device cuda``
times PyTorch on the GPU (each call synchronised); ``--torch_compile
BACKEND`` adds PyTorch under ``torch.compile`` as a second reference
(``torch_compile``, with its own ratios).

Every figure goes to one JSON file (``--json``, default
``results/benchmarks/train_step.json``; ``--json ''`` writes none): the
machine (CPU model, cores, jax/jaxlib/torch versions, date), the settings,
each method's step and, per contender, the median ms of the train step and
the eval forward over the rounds with their min and max, images/s and the
ratio to PyTorch (``benchmarks/step_report.py``). ``--markdown`` prints the
table rendered from that file (between the markers a document uses, see
``step_report.MARKERS``) and times nothing.
"""

import argparse
import importlib.metadata
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
from remix_jax.trainer import objective  # noqa: E402

import step_report  # noqa: E402  (benchmarks/, beside this file)
import torch_reference  # noqa: E402

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
  config.dtype = args.dtype
  mesh = parallel.make_mesh(args.devices)
  state, train_step, eval_step = build.build(
      config, mesh, num_classes=10, class_counts=COUNTS, steps_per_epoch=100)
  arrays = (images, labels)
  if objective.uses_partner_batch(config):  # the reversed batch as partners
    arrays += (images[::-1], labels[::-1])
  batch = parallel.shard_batch(mesh, arrays)
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


def parse_args(argv=None) -> argparse.Namespace:
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
  parser.add_argument("--dtype", default="float32",
                      choices=torch_reference.DTYPES,
                      help="config.dtype, and PyTorch's autocast dtype")
  parser.add_argument("--no_torch", action="store_true",
                      help="skip the PyTorch reference")
  parser.add_argument("--torch_device", default="cpu",
                      help="where PyTorch runs: cpu or cuda")
  parser.add_argument("--torch_compile", default="",
                      help="also time PyTorch under torch.compile with this "
                      "backend (inductor; aot_eager traces only)")
  parser.add_argument("--rounds", type=int, default=5,
                      help="interleaved rounds of the ERM step of each "
                      "contender (each of --iters / --rounds calls)")
  parser.add_argument("--json", default=step_report.DEFAULT_JSON,
                      help="the report to write ('' = none), or to read "
                      "with --markdown")
  parser.add_argument("--markdown", action="store_true",
                      help="print the table of the --json report and exit")
  return parser.parse_args(argv)


def _resolve_impls(names: str) -> list:
  impls = []
  for impl in names.split(","):
    try:
      impls.append(build.resolve_conv_impl(impl))
    except ValueError as e:
      print(f"conv_impl {impl} skipped: {e}")
  return impls


def time_methods(args, impls, names, images, labels) -> tuple[dict, list]:
  """Times every (conv_impl, method) step and prints one table row each.

  Returns:
    ``({impl: ERM's time_train_step result}, [one report row per step])``.
  """
  print("| convs | method | compile (s) | step (ms) | images/s | mixer share "
        "| page faults/step |")
  print("|---|---|---|---|---|---|---|")
  erm_results, rows = {}, []
  for impl in impls:
    args.conv_impl = impl
    for name in names:
      r = time_train_step(name, args, images, labels)
      base = erm_results.setdefault(impl, r)
      share = None if name == "erm" else 1 - base["step_s"] / r["step_s"]
      rows.append({"conv_impl": impl, "method": name,
                   "compile_s": r["compile_s"], "step_ms": 1e3 * r["step_s"],
                   "images_per_s": args.batch / r["step_s"],
                   "mixer_share": share, "faults_per_step": r["faults"]})
      print(f"| {impl} | {name} | {r['compile_s']:.1f} | "
            f"{1e3 * r['step_s']:.0f} | {args.batch / r['step_s']:.0f} | "
            f"{'–' if share is None else f'{100 * share:.1f} %'} | "
            f"{r['faults']:,.0f} |", flush=True)
  return erm_results, rows


def _print_sumix_and_eval(args, erm_results, rows):
  steps = {(r["conv_impl"], r["method"]): r["step_ms"] for r in rows}
  for (impl, name), t in steps.items():
    mixer = name[:-len("_sumix")]
    if name.endswith("_sumix") and (impl, mixer) in steps:
      print(f"{impl}: SUMix step / {mixer} step: "
            f"{t / steps[impl, mixer]:.2f}x")
  for impl, base in erm_results.items():
    print(f"{impl}: eval (forward) step: {1e3 * base['eval_s']:.0f} ms, "
          f"{args.batch / base['eval_s']:.0f} images/s")


def _torch_servers(args) -> dict:
  """The PyTorch references' child processes by contender name (``torch``,
  and ``torch_compile`` when asked); empty (with why) without torch."""
  if args.no_torch or args.model not in torch_reference.MODELS:
    return {}
  if not torch_reference.available():
    print("PyTorch reference skipped: torch is not installed "
          "(pip install torch==2.13.0, the CPU build)")
    return {}
  options = dict(device=args.torch_device, dtype=args.dtype)
  servers = {"torch": torch_reference.Server(args.model, args.batch,
                                             **options)}
  if args.torch_compile:
    servers["torch_compile"] = torch_reference.Server(
        args.model, args.batch, compile_backend=args.torch_compile, **options)
  return servers


def head_to_head(args, erm_results) -> tuple[dict, dict]:
  """The ERM step and forward of every contender in interleaved rounds.

  Returns:
    ``(times, torch_info)``: ``torch_reference.head_to_head``'s times and
    ``{'version', 'threads', 'device'}`` of the PyTorch children (empty
    without them).
  """
  servers = _torch_servers(args)
  contenders = {name: ref.time for name, ref in servers.items()}
  for impl, base in erm_results.items():
    contenders[impl] = (lambda kind, iters, base=base:
                        torch_reference.median_seconds(
                            lambda: jax.block_until_ready(base[kind]()),
                            iters))
  times = torch_reference.head_to_head(contenders, args.rounds,
                                       args.calls_per_round)
  if not servers:
    return times, {}
  for ref in servers.values():
    ref.close()
  compiled = (f" and torch.compile ({args.torch_compile})"
              if args.torch_compile else "")
  print(f"PyTorch {ref.version} eager{compiled} channels_last {args.model} "
        f"{args.dtype} on {ref.device} (child processes, {ref.threads} "
        f"threads), {args.rounds} interleaved rounds of "
        f"{args.calls_per_round} calls per side")
  return times, {"version": ref.version, "threads": ref.threads,
                 "device": ref.device}


def _print_head_to_head(contenders: dict):
  for impl, kinds in contenders.items():
    parts = []
    for kind, label in step_report.KINDS.items():
      k = kinds[kind]
      vs = ""
      for key, name in (("ratio_to_torch", "PyTorch"),
                         ("ratio_to_torch_compile", "torch.compile")):
        ratio = k.get(key)
        if ratio is not None:
          vs += (f", {ratio['median']:.2f}x {name} "
                 f"({ratio['min']:.2f}-{ratio['max']:.2f})")
      parts.append(f"{label} {k['images_per_s']:.0f} images/s{vs}")
    print(f"{impl}, median over rounds (range): " + ", ".join(parts))


def main(argv=None):
  args = parse_args(argv)
  if args.markdown:
    print(step_report.markdown_block(step_report.read_report(args.json)))
    return
  rng = np.random.RandomState(0)
  images = rng.randn(args.batch, 32, 32, 3).astype(np.float32)
  labels = rng.randint(0, 10, args.batch).astype(np.int32)
  names = ["erm"] + [m for m in args.mixers.split(",") if m and m != "erm"]
  mesh_size = parallel.make_mesh(args.devices).devices.size
  chunks = build.resolve_weight_grad_chunks(args.weight_grad_chunks,
                                            args.batch // mesh_size)
  impls = _resolve_impls(args.conv_impls)
  args.rounds = max(1, args.rounds)
  args.calls_per_round = max(2, args.iters // args.rounds)
  print(f"jax {jax.__version__} on {jax.devices()[0].platform} "
        f"({mesh_size} device(s)), {args.model}, batch {args.batch}x32x32x3 "
        f"{args.dtype}, XLA convs with weight_grad_chunks {chunks}, median of "
        f"{args.iters} steps after warm-up")
  erm_results, rows = time_methods(args, impls, names, images, labels)
  _print_sumix_and_eval(args, erm_results, rows)
  times, torch_info = head_to_head(args, erm_results)
  contenders = step_report.head_to_head(times, args.batch)
  _print_head_to_head({k: v for k, v in contenders.items()
                       if not k.startswith("torch")})
  if not args.json:
    return
  settings = {"model": args.model, "batch": args.batch, "iters": args.iters,
              "rounds": args.rounds, "calls_per_round": args.calls_per_round,
              "devices": mesh_size, "backend": jax.devices()[0].platform,
              "weight_grad_chunks": chunks, "conv_impls": impls,
              "dtype": args.dtype, "torch_compile": args.torch_compile,
              "torch_device": torch_info.get("device"),
              "jax_device": jax.devices()[0].device_kind,
              "torch_threads": torch_info.get("threads"),
              "xla_flags": os.environ.get("XLA_FLAGS", "")}
  machine = step_report.machine(
      jax=jax.__version__, jaxlib=importlib.metadata.version("jaxlib"),
      torch=torch_info.get("version"))
  command = ["python", "benchmarks/train_step.py",
             *(sys.argv[1:] if argv is None else argv)]
  step_report.write_report(step_report.report(
      machine_info=machine, settings=settings, methods=rows,
      contenders=contenders, command=command), args.json)
  print(f"wrote {args.json}")


if __name__ == "__main__":
  main()
