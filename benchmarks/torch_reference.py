"""The PyTorch references for ``benchmarks/train_step.py``, timed in eager
mode (or compiled with ``torch.compile``) with ``channels_last`` tensors, SGD
momentum 0.9 and weight decay 2e-4, on the CPU or a CUDA GPU (each call
ends with ``torch.cuda.synchronize()`` there), in float32 or bfloat16
(``torch.autocast``: bfloat16 compute, float32 parameters, as
``config.dtype='bfloat16'`` in JAX):

- ``resnet32``: LDAM-DRW's ResNet-32 (``models/resnet_cifar.py`` of Cao et
  al. 2019: 3×5 BasicBlocks, 16/32/64 channels, option-A shortcuts);
- ``resnet18``: the CIFAR ResNet-18 of ``remix_jax.models`` (3×3 stem
  without max-pool, 4×2 BasicBlocks, 64…512 channels, 1×1 conv + BN
  shortcuts where the shape changes);
- ``tiny_resnet``: the ``tiny_resnet`` of ``remix_jax.models`` (input
  channels averaged into one, 3×1 BasicBlocks, 8/16/32 channels, option-A
  shortcuts), for quick checks of the benchmark itself.

Optional: needs ``pip install torch==2.13.0`` (the CPU build; or
``pip install -e ".[bench]"``). :func:`available` says whether torch imports.
:class:`Server` runs the reference in a child process of its own (its own
heap and thread pools), timed on request, so that a benchmark can interleave
it with its JAX step without either side changing the other's memory.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time


def available() -> bool:
  try:
    import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


#: The models this module can time.
MODELS = ("resnet32", "resnet18", "tiny_resnet")


def _model(name: str, num_classes: int = 10):
  """The PyTorch network ``name`` (a key of :data:`MODELS`), NCHW."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

  class Block(nn.Module):
    """A BasicBlock; where the shape changes, option A (strided, zero-padded
    channels) or B (1×1 conv + BN) shortcut."""

    def __init__(self, cin, cout, stride, shortcut):
      super().__init__()
      self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(cout)
      self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(cout)
      self.pad = cout - cin
      self.reshape = stride != 1 or cin != cout
      self.project = None
      if self.reshape and shortcut == "B":
        self.project = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
      out = F.relu(self.bn1(self.conv1(x)))
      out = self.bn2(self.conv2(out))
      short = x
      if self.project is not None:
        short = self.project(x)
      elif self.reshape:
        short = F.pad(x[:, :, ::2, ::2],
                      (0, 0, 0, 0, self.pad // 2, self.pad // 2))
      return F.relu(out + short)

  class ResNet(nn.Module):

    def __init__(self, stem, stages, blocks, shortcut, in_channels=3):
      super().__init__()
      self.fold = in_channels == 1  # average the input channels into one
      self.conv = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
      self.bn = nn.BatchNorm2d(stem)
      layers, cin = [], stem
      for s, cout in enumerate(stages):
        for i in range(blocks):
          stride = 2 if s > 0 and i == 0 else 1
          layers.append(Block(cin, cout, stride, shortcut))
          cin = cout
      self.layers = nn.Sequential(*layers)
      self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
      if self.fold:
        x = x.mean(1, keepdim=True)
      x = self.layers(F.relu(self.bn(self.conv(x))))
      return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

  if name == "resnet32":
    return ResNet(16, (16, 32, 64), 5, "A")
  if name == "tiny_resnet":
    return ResNet(8, (8, 16, 32), 1, "A", in_channels=1)
  return ResNet(64, (64, 128, 256, 512), 2, "B")


#: ``dtype`` choices of :func:`make_steps`.
DTYPES = ("float32", "bfloat16")


def make_steps(name: str, batch: int, *, channels_last: bool = True,
               seed: int = 0, device: str = "cpu", dtype: str = "float32",
               compile_backend: str = "") -> dict:
  """One train step and one forward of PyTorch model ``name`` (one of
  :data:`MODELS`) on a fixed CIFAR-sized random batch, as callables.

  Args:
    name: the model.
    batch: images per call.
    channels_last: NHWC memory format.
    seed: of the weights and the batch.
    device: ``'cpu'`` or ``'cuda'`` (each call then waits for the GPU).
    dtype: one of :data:`DTYPES`; ``bfloat16`` runs the forward pass (and
      its backward) under ``torch.autocast``.
    compile_backend: ``''`` for eager mode, else ``torch.compile``'s
      backend (``'inductor'``; ``'aot_eager'`` traces without generating
      code).

  Returns:
    ``{'step', 'forward', 'threads', 'version', 'device'}``: ``step()`` runs
    zero_grad, forward, cross-entropy, backward and an SGD-momentum update in
    training mode; ``forward()`` runs the network in eval mode without
    gradients; ``device`` names the device.
  """
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  fmt = torch.channels_last if channels_last else torch.contiguous_format
  model = _model(name).to(device=device, memory_format=fmt)
  opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                        weight_decay=2e-4)
  x = torch.randn(batch, 3, 32, 32).to(device=device, memory_format=fmt)
  y = torch.randint(0, 10, (batch,)).to(device)
  net = torch.compile(model, backend=compile_backend) if compile_backend \
      else model
  wait = torch.cuda.synchronize if device.startswith("cuda") else (
      lambda: None)

  def autocast():
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16,
                          enabled=dtype == "bfloat16")

  def step():
    model.train()
    opt.zero_grad(set_to_none=True)
    with autocast():
      loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    wait()

  def forward():
    model.eval()
    with torch.no_grad(), autocast():
      net(x)
    wait()

  where = (torch.cuda.get_device_name(device) if device.startswith("cuda")
           else "cpu")
  return {"step": step, "forward": forward, "device": where,
          "threads": torch.get_num_threads(), "version": torch.__version__}


def median_seconds(fn, iters: int) -> float:
  """Median wall time of ``fn()`` over ``iters`` calls, after one warm-up."""
  fn()
  times = []
  for _ in range(iters):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


class Server:
  """:func:`make_steps` of one model in a child process, timed on request.

  Args:
    name: one of :data:`MODELS`.
    batch: batch size.
    **options: :func:`make_steps`'s ``device``, ``dtype`` and
      ``compile_backend``.

  Attributes:
    threads, version, device: the child's ``torch.get_num_threads()``,
      ``torch.__version__`` and device name.
  """

  def __init__(self, name: str, batch: int, **options):
    self._proc = subprocess.Popen(
        [sys.executable, __file__, name, str(batch), json.dumps(options)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = self._proc.stdout.readline()
    if not line:
      raise RuntimeError(f"the PyTorch reference ({name}, {options}) did not "
                         "start; its error is above")
    info = json.loads(line)
    self.threads, self.version = info["threads"], info["version"]
    self.device = info["device"]

  def time(self, kind: str, iters: int) -> float:
    """Median seconds of ``kind`` (``'step'`` or ``'forward'``) over
    ``iters`` calls in the child."""
    self._proc.stdin.write(f"{kind} {iters}\n")
    self._proc.stdin.flush()
    return float(self._proc.stdout.readline())

  def close(self):
    self._proc.stdin.close()
    self._proc.wait()


def head_to_head(contenders: dict, rounds: int, iters: int) -> dict:
  """Times contenders' train steps and forwards in interleaved rounds.

  Each round times every contender's train step (``'step'``) for ``iters``
  calls, then every contender's forward (``'forward'``), one after another.

  Args:
    contenders: name -> ``time(kind, iters)``, the median seconds of
      ``iters`` calls of pass ``kind`` after a warm-up call.
    rounds: how many rounds.
    iters: calls per contender, pass and round.

  Returns:
    ``{(name, kind): [median seconds of round 0, round 1, ...]}``.
  """
  out = {}
  for _ in range(rounds):
    for kind in ("step", "forward"):
      for name, time_fn in contenders.items():
        out.setdefault((name, kind), []).append(time_fn(kind, iters))
  return out


def _serve(name: str, batch: int, options: dict):
  """The child's loop: reads ``'<kind> <iters>'`` lines, answers seconds."""
  steps = make_steps(name, batch, **options)
  print(json.dumps({k: steps[k] for k in ("threads", "version", "device")}),
        flush=True)
  for line in sys.stdin:
    kind, iters = line.split()
    print(median_seconds(steps[kind], int(iters)), flush=True)


if __name__ == "__main__":
  _serve(sys.argv[1], int(sys.argv[2]),
         json.loads(sys.argv[3]) if len(sys.argv) > 3 else {})
