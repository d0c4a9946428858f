"""Per-sample losses against NumPy formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from remix_jax import losses
from remix_jax import parallel
from tests.helpers import need_devices


def _np_log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _data(b=6, c=5, seed=0):
  rng = np.random.RandomState(seed)
  return (rng.randn(b, c).astype(np.float32) * 3, rng.randint(0, c, b),
          rng.randint(0, c, b), rng.rand(b).astype(np.float32))


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_soft_cross_entropy_equals_ce_with_soft_targets(eps):
  z, a, b, lam = _data()
  got = losses.soft_cross_entropy(z, a, b, lam, label_smoothing=eps)
  targets = np.asarray(losses.soft_targets(a, b, lam, 5, label_smoothing=eps))
  want = -(targets * _np_log_softmax(z.astype(np.float64))).sum(-1)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert got.shape == (6,)


def test_soft_cross_entropy_keeps_per_sample_lambda():
  z, a, b, _ = _data()
  lam = np.array([0, 1, 0, 1, 0.5, 0.25], np.float32)
  got = np.asarray(losses.soft_cross_entropy(z, a, b, lam))
  logp = _np_log_softmax(z.astype(np.float64))
  idx = np.arange(6)
  want = -(lam * logp[idx, a] + (1 - lam) * logp[idx, b])
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_weighted_mean_matches_pytorch_weighted_ce():
  z, a, _, _ = _data(b=8)
  w = np.array([0.5, 1.0, 2.0, 0.25, 1.25], np.float32)
  per = losses.cross_entropy(z, a)
  got = losses.weighted_mean(losses.mix_losses(per, per, 1.0, w[a], w[a]),
                             jnp.ones(8), w[a], w[a])
  logp = _np_log_softmax(z.astype(np.float64))
  want = (-(w[a] * logp[np.arange(8), a])).sum() / w[a].sum()
  assert float(got) == pytest.approx(want, rel=1e-5)
  plain = losses.weighted_mean(per, jnp.ones(8))
  assert float(plain) == pytest.approx(float(jnp.mean(per)), rel=1e-6)


def test_reductions_over_devices_sum_to_the_global_batch():
  """With axis_name, the per-device values sum to the global-batch value."""
  z, a, b, lam = _data(b=16)
  w = jnp.array([0.5, 1.0, 2.0, 0.25, 1.25], jnp.float32)
  per_label = lambda logits, y: losses.focal_loss(logits, y, gamma=2.0)
  need_devices(4)
  mesh = parallel.make_mesh(4)

  def local(z, a, b, lam):
    mixed = losses.mixed_label_loss(per_label, z, a, b, lam, w[a], w[b],
                                    axis_name=parallel.AXIS)
    mean = losses.global_mean(lam, axis_name=parallel.AXIS)
    return jax.lax.psum(mixed, parallel.AXIS), jax.lax.psum(mean,
                                                            parallel.AXIS)

  spec = P(parallel.AXIS)
  mixed, mean = jax.jit(jax.shard_map(
      local, mesh=mesh, in_specs=(spec,) * 4, out_specs=(P(), P())))(
          *parallel.shard_batch(mesh, (z, a, b, lam)))
  want = losses.mixed_label_loss(per_label, z, a, b, lam, w[a], w[b])
  # Local denominators would sum to about 4× the global-batch loss.
  assert float(mixed) == pytest.approx(float(want), rel=1e-5)
  per = losses.mix_losses(per_label(z, a), per_label(z, b), lam, w[a], w[b])
  assert float(want) == pytest.approx(float(losses.weighted_mean(
      per, lam, w[a], w[b])), rel=1e-6)
  assert float(mean) == pytest.approx(float(jnp.mean(lam)), rel=1e-6)
  assert float(losses.global_mean(lam)) == pytest.approx(
      float(jnp.mean(lam)), rel=1e-6)


def test_class_balanced_weights():
  counts = np.array([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
  w = losses.class_balanced_weights(counts, beta=0.9999)
  e_n = (1 - 0.9999**counts) / (1 - 0.9999)
  want = (1 / e_n) / (1 / e_n).sum() * 10
  np.testing.assert_allclose(w, want, rtol=1e-5)
  assert w.sum() == pytest.approx(10.0, rel=1e-5)
  assert np.all(np.diff(w) > 0), "rarer classes weigh more"
  np.testing.assert_allclose(losses.class_balanced_weights(counts, 0.0), 1.0)
  with pytest.raises(ValueError, match="beta must be in"):
    losses.class_balanced_weights(counts, 1.0)


def test_ldam_margins_and_loss():
  counts = np.array([5000, 500, 50])
  m = losses.ldam_margins(counts, max_margin=0.5)
  want = counts**-0.25
  np.testing.assert_allclose(m, want / want.max() * 0.5, rtol=1e-6)
  assert m.max() == pytest.approx(0.5)
  z = np.array([[0.3, 0.1, -0.2], [0.0, 0.5, 0.2]], np.float32)
  y = np.array([2, 1])
  got = losses.ldam_loss(z, y, margins=m, scale=30.0)
  shifted = z.astype(np.float64).copy()
  shifted[np.arange(2), y] -= m[y]
  want = -_np_log_softmax(30 * shifted)[np.arange(2), y]
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # A margin makes the loss larger than the plain scaled cross-entropy.
  assert np.all(np.asarray(got) > np.asarray(losses.cross_entropy(30 * z, y)))


def test_focal_loss():
  z, a, _, _ = _data()
  logp = _np_log_softmax(z.astype(np.float64))[np.arange(6), a]
  for gamma in (0.0, 1.0, 2.0):
    want = (1 - np.exp(logp))**gamma * -logp
    np.testing.assert_allclose(losses.focal_loss(z, a, gamma=gamma), want,
                               rtol=1e-5)


def test_losses_jit_and_grad_finite():
  z, a, b, lam = _data()
  g = jax.jit(jax.grad(lambda z: jnp.mean(
      losses.soft_cross_entropy(z, a, b, lam))))(jnp.asarray(z))
  assert bool(jnp.all(jnp.isfinite(g)))
  # The gradient of the mixed CE is softmax − soft targets (per sample / B).
  p = np.exp(_np_log_softmax(z.astype(np.float64)))
  t = np.asarray(losses.soft_targets(a, b, lam, 5))
  np.testing.assert_allclose(g, (p - t) / 6, rtol=1e-4, atol=1e-6)
