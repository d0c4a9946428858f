"""Times one 3×3 convolution of each ResNet-32 stage: forward, input and kernel gradient.

    python benchmarks/conv_layers.py [--batch 128] [--iters 15]
        [--chunks 1,8,16,32] [--alternatives] [--no_torch]

For each stage shape (32×32×16, 16×16×32, 8×8×64; stride 1, padding 1,
NHWC) prints the median jitted time of XLA's forward convolution, its input
gradient (``dx``) and its kernel gradient (``dw``) computed with
:func:`remix_jax.models.conv.make_conv_fn` at each ``--chunks`` value (1 is
XLA's own), then, where the native extension is built, the same passes on
oneDNN (:mod:`remix_jax.models.onednn`; ``onednn dx+dw`` is both gradients
in one jitted program, as in a train step). ``--alternatives`` also times
formulations that were tried and rejected (docs/dev/performance_log.md):
the forward as im2col + one dot and as nine shifted dots, and the kernel
gradient as one im2col dot and as a ``lax.scan`` over chunks. With torch
installed, the same layer in PyTorch eager ``channels_last`` (forward, and
forward + backward) is the reference.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from remix_jax.trainer import process_setup  # noqa: E402

process_setup.configure_process()  # the trainer's XLA:CPU kernels; before JAX starts

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from remix_jax.models import conv as conv_lib  # noqa: E402
from remix_jax.models import onednn  # noqa: E402

import torch_reference  # noqa: E402  (benchmarks/, beside this file)

SHAPES = ((32, 16), (16, 32), (8, 64))  # (spatial size, channels)
DIMS = ("NHWC", "HWIO", "NHWC")
PAD = ((1, 1), (1, 1))


def _median_ms(fn, *args, iters: int) -> float:
  """Median ms of ``fn(*args)`` after two warm-up calls (JAX or PyTorch:
  ``block_until_ready`` passes non-JAX results through)."""
  jax.block_until_ready(fn(*args))
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(iters):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return 1e3 * statistics.median(times)


def _conv(conv_fn):
  return lambda x, w: conv_fn(x, w, (1, 1), PAD, dimension_numbers=DIMS)


def _passes(conv):
  """Jitted forward ``(x, w)``, input gradient and kernel gradient
  ``(x, w, g)`` of ``conv``."""
  return (jax.jit(conv),
          jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0]),
          jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0]))


def _patches(x):
  """``[N, H, W, 9C]``: the 3×3 neighbourhoods of ``x`` (zero-padded)."""
  h, w = x.shape[1:3]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return jnp.concatenate([xp[:, i:i + h, j:j + w] for i in range(3)
                          for j in range(3)], axis=-1)


def im2col_forward(x, w):
  return _patches(x) @ w.reshape(-1, w.shape[-1])


def shifted_dots_forward(x, w):
  h, wd = x.shape[1:3]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return sum(xp[:, i:i + h, j:j + wd] @ w[i, j] for i in range(3)
             for j in range(3))


def im2col_kernel_grad(x, g):
  p = _patches(x)
  return (p.reshape(-1, p.shape[-1]).T @ g.reshape(-1, g.shape[-1])).reshape(
      3, 3, x.shape[-1], g.shape[-1])


def scan_kernel_grad(x, g, num_chunks=16):
  plain = _conv(lax.conv_general_dilated)
  w0 = jnp.zeros((3, 3, x.shape[-1], g.shape[-1]), x.dtype)
  split = lambda a: a.reshape(num_chunks, -1, *a.shape[1:])

  def body(acc, xg):
    return acc + jax.vjp(lambda w: plain(xg[0], w), w0)[1](xg[1])[0], None

  return lax.scan(body, w0, (split(x), split(g)))[0]


def time_layer(size: int, channels: int, args) -> dict:
  key_x, key_w, key_g = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(key_x, (args.batch, size, size, channels))
  w = 0.1 * jax.random.normal(key_w, (3, 3, channels, channels))
  g = jax.random.normal(key_g, (args.batch, size, size, channels))
  fwd, dx, _ = _passes(_conv(lax.conv_general_dilated))
  out = {"fwd": _median_ms(fwd, x, w, iters=args.iters),
         "dx": _median_ms(dx, x, w, g, iters=args.iters)}
  for chunks in args.chunks:
    dw = _passes(_conv(conv_lib.make_conv_fn(chunks)))[2]
    out[f"dw/{chunks}"] = _median_ms(dw, x, w, g, iters=args.iters)
  if onednn.available():
    out.update(time_onednn_layer(x, w, g, iters=args.iters))
  if args.alternatives:
    out["fwd im2col"] = _median_ms(jax.jit(im2col_forward), x, w,
                                   iters=args.iters)
    out["fwd 9 dots"] = _median_ms(jax.jit(shifted_dots_forward), x, w,
                                   iters=args.iters)
    out["dw im2col"] = _median_ms(jax.jit(im2col_kernel_grad), x, g,
                                  iters=args.iters)
    out["dw scan/16"] = _median_ms(jax.jit(scan_kernel_grad), x, g,
                                   iters=args.iters)
  return out


def time_onednn_layer(x, w, g, *, iters: int) -> dict:
  """oneDNN's forward, input gradient, kernel gradient, and both gradients
  in one program (``dx+dw``: XLA may run the two FFI calls at once)."""
  conv = _conv(onednn.conv_general_dilated)
  fwd, dx, dw = _passes(conv)
  grads = jax.jit(lambda x, w, g: jax.vjp(conv, x, w)[1](g))
  return {"onednn fwd": _median_ms(fwd, x, w, iters=iters),
          "onednn dx": _median_ms(dx, x, w, g, iters=iters),
          "onednn dw": _median_ms(dw, x, w, g, iters=iters),
          "onednn dx+dw": _median_ms(grads, x, w, g, iters=iters)}


def time_torch_layer(size: int, channels: int, args) -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  layer = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(
      memory_format=torch.channels_last)
  x = torch.randn(args.batch, channels, size, size).to(
      memory_format=torch.channels_last).requires_grad_()

  def forward():
    with torch.no_grad():
      layer(x)

  def forward_backward():
    layer(x).sum().backward()

  return {"torch fwd": _median_ms(forward, iters=args.iters),
          "torch fwd+bwd": _median_ms(forward_backward, iters=args.iters)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--iters", type=int, default=15)
  parser.add_argument("--chunks", default="1,8,16,32",
                      help="comma-separated kernel-gradient chunk counts")
  parser.add_argument("--alternatives", action="store_true",
                      help="also time the rejected formulations")
  parser.add_argument("--no_torch", action="store_true")
  args = parser.parse_args()
  args.chunks = [int(c) for c in args.chunks.split(",")]
  use_torch = not args.no_torch and torch_reference.available()
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, batch "
        f"{args.batch}, 3x3 conv stride 1, float32, median ms of "
        f"{args.iters} calls (dw/K: kernel gradient over K batch chunks)")
  rows = []
  for size, channels in SHAPES:
    r = time_layer(size, channels, args)
    if use_torch:
      r.update(time_torch_layer(size, channels, args))
    rows.append((f"{size}x{size}x{channels}", r))
  columns = list(rows[0][1])
  print("| layer | " + " | ".join(columns) + " |")
  print("|---|" + "---|" * len(columns))
  for name, r in rows:
    print(f"| {name} | " + " | ".join(f"{r[c]:.1f}" for c in columns) + " |")


if __name__ == "__main__":
  main()
