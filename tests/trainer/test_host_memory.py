"""glibc keeps the memory XLA frees once the trainer's settings are in place
(remix_jax.trainer.host_memory), so train steps do not fault their buffers in anew."""

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from remix_jax.trainer import process_setup
from remix_jax.trainer import host_memory
from tests.helpers import REPO

#: Minor page faults of each of six ResNet-32 train steps at batch 32 (XLA's
#: convolutions, so that it runs without the native extension).
_FAULTS = """
import json, resource
from remix_jax.trainer import process_setup
process_setup.configure_process()
import jax, numpy as np
from configs import cifar_lt
from remix_jax import parallel
from remix_jax.trainer import build
from remix_jax.trainer import methods
config = methods.resolve(cifar_lt.get_config("method=erm"))
config.batch_size, config.conv_impl = 32, "xla"
mesh = parallel.make_mesh(1)
state, step, _ = build.build(config, mesh, num_classes=10,
                             class_counts=np.arange(10, 0, -1) * 10,
                             steps_per_epoch=10)
rng = np.random.RandomState(0)
batch = parallel.shard_batch(mesh, (
    rng.randn(32, 32, 32, 3).astype(np.float32),
    rng.randint(0, 10, 32).astype(np.int32)))
faults = []
for _ in range(6):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  state, metrics = step(state, *batch)
  jax.block_until_ready(metrics)
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""
#: 4 KiB pages of 40 MiB, well below the step's temporary buffer.
PAGES = 40 * 2**20 // 4096


def _faults(**extra) -> list[int]:
  env = {k: v for k, v in os.environ.items()
         if k not in ("XLA_FLAGS", host_memory.OPT_OUT, process_setup.OPT_OUT)}
  env.update(extra)
  out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=300,
                       check=True).stdout
  return json.loads(out.splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_train_steps_reuse_their_buffers_instead_of_faulting_them_in():
  kept = _faults()
  default = _faults(**{host_memory.OPT_OUT: "1"})
  # glibc's default maps the step's temporary buffer afresh at every step;
  # kept, later steps mostly reuse the pages earlier ones touched (a step
  # may still grow the heap while its free blocks settle).
  assert min(default[1:]) > PAGES, default
  assert np.median(kept[1:]) < PAGES // 10, kept


def test_the_opt_out_keeps_glibcs_defaults(monkeypatch):
  monkeypatch.setenv(host_memory.OPT_OUT, "1")
  host_memory.keep_freed_memory.cache_clear()
  try:
    assert host_memory.keep_freed_memory() is False
  finally:
    host_memory.keep_freed_memory.cache_clear()
