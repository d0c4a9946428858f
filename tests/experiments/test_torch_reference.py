"""benchmarks/torch_reference.py times the same networks as ours: equal
parameter counts and conv kernel shapes (needs torch, else skipped)."""

import jax
import numpy as np
import pytest
from flax import nnx

from remix_jax import models

torch = pytest.importorskip("torch", reason="torch is not installed (the "
                            "PyTorch reference is optional: .[bench])")
from benchmarks import torch_reference  # noqa: E402  pylint: disable=g-import-not-at-top


def _jax_counts(name):
  model = models.create_model(name, num_classes=10, rngs=nnx.Rngs(0))
  params = nnx.state(model, nnx.Param)
  sizes = [int(np.prod(x.shape)) for x in jax.tree.leaves(params)]
  convs = [x.shape for x in jax.tree.leaves(params) if x.ndim == 4]
  return sum(sizes), sorted(convs)


@pytest.mark.parametrize("name", torch_reference.MODELS)
def test_same_network_as_ours(name):
  ref = torch_reference._model(name)  # pylint: disable=protected-access
  total, convs = _jax_counts(name)
  assert sum(p.numel() for p in ref.parameters()) == total
  # Every conv kernel, OIHW in PyTorch and HWIO in ours.
  assert sorted(tuple(m.weight.shape[i] for i in (2, 3, 1, 0))
                for m in ref.modules()
                if isinstance(m, torch.nn.Conv2d)) == convs
  y = ref(torch.zeros(2, 3, 32, 32))
  assert tuple(y.shape) == (2, 10)
