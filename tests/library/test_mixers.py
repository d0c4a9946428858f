"""Shared battery every input mixer must pass, plus exact-value tests."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from remix_jax import label_rules
from remix_jax import losses
from remix_jax import mixers
from remix_jax.mixers import ops
from tests.helpers import need_devices

INPUT_MIXERS = ["mixup", "cutmix", "saliencymix", "fmix", "resizemix"]
PER_SAMPLE = [False, True]


def _batch(b=8, h=16, w=12, c=3, seed=0, dtype=jnp.float32):
  x = jax.random.normal(jax.random.key(seed), (b, h, w, c))
  if jnp.issubdtype(dtype, jnp.integer):
    x = jnp.clip(x * 60 + 128, 0, 255)
  return x.astype(dtype), jnp.arange(b, dtype=jnp.int32) % 5


def _constant_batch(b=8, h=16, w=12, c=3):
  """Sample i is filled with the value i + 1."""
  vals = jnp.arange(1, b + 1, dtype=jnp.float32)
  return jnp.broadcast_to(vals[:, None, None, None], (b, h, w, c)), jnp.arange(b)


def _call(name, rng, x, y, per_sample):
  return mixers.get_mixer(name)(rng, x, y, per_sample=per_sample)


@pytest.mark.parametrize("per_sample", PER_SAMPLE)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.uint8])
@pytest.mark.parametrize("name", INPUT_MIXERS)
def test_shape_dtype_finite_and_lambda_range(name, dtype, per_sample):
  x, y = _batch(dtype=dtype)
  mixed, info = _call(name, jax.random.key(1), x, y, per_sample)
  assert mixed.shape == x.shape and mixed.dtype == x.dtype
  assert bool(jnp.all(jnp.isfinite(mixed.astype(jnp.float32))))
  assert info.partner.shape == (8,) and info.partner.dtype == jnp.int32
  assert sorted(np.asarray(info.partner).tolist()) == list(range(8))
  assert info.lam.shape == (8,) and info.lam.dtype == jnp.float32
  assert bool(jnp.all((info.lam >= 0) & (info.lam <= 1)))
  if name != "mixup":
    assert info.mask.shape == (8, 16, 12)
    assert set(np.unique(np.asarray(info.mask))) <= {0.0, 1.0}
  if not per_sample:
    assert np.unique(np.asarray(info.lam)).size == 1 or name == "saliencymix"


@pytest.mark.parametrize("rule", ["plain", "remix"])
@pytest.mark.parametrize("name", INPUT_MIXERS)
def test_soft_targets_sum_to_one(name, rule):
  x, y = _batch()
  _, info = _call(name, jax.random.key(2), x, y, True)
  counts = np.array([500, 100, 20, 5, 1])
  label_rule = label_rules.make_label_rule(rule, counts)
  lam_y = label_rule(info.lam, y, y[info.partner])
  targets = losses.soft_targets(y, y[info.partner], lam_y, 5,
                                label_smoothing=0.1)
  np.testing.assert_allclose(jnp.sum(targets, -1), 1.0, atol=1e-6)
  assert bool(jnp.all(targets >= 0))


@pytest.mark.parametrize("per_sample", PER_SAMPLE)
@pytest.mark.parametrize("name", INPUT_MIXERS)
def test_lambda_equals_pixel_share(name, per_sample):
  """On constant images the mixed mean gives λ exactly: λ·vᵢ + (1−λ)·v_π(i)."""
  x, y = _constant_batch()
  mixed, info = _call(name, jax.random.key(3), x, y, per_sample)
  v = np.arange(1, 9, dtype=np.float64)
  p = np.asarray(info.partner)
  lam = np.asarray(info.lam, np.float64)
  expected = lam * v + (1 - lam) * v[p]
  np.testing.assert_allclose(np.asarray(mixed).mean(axis=(1, 2, 3)), expected,
                             rtol=1e-5)
  if info.mask is not None:
    want = np.where(np.asarray(info.mask) > 0, v[:, None, None],
                    v[p][:, None, None])
    np.testing.assert_array_equal(np.asarray(mixed)[..., 0], want)


@pytest.mark.parametrize("name", INPUT_MIXERS + ["manifold_mixup"])
def test_jit_does_not_retrace(name):
  traces = []

  @jax.jit
  def f(rng, x, y):
    traces.append(1)
    return _call(name, rng, x, y, True)

  x1, y1 = _batch(seed=0)
  x2, y2 = _batch(seed=1)
  out1 = f(jax.random.key(0), x1, y1)
  out2 = f(jax.random.key(5), x2, y2)
  jax.block_until_ready((out1, out2))
  assert len(traces) == 1
  assert not np.allclose(out1[1].lam, out2[1].lam)


@pytest.mark.parametrize("name", INPUT_MIXERS)
def test_vmap_over_batches(name):
  xs = jnp.stack([_batch(seed=s)[0] for s in range(3)])
  ys = jnp.stack([_batch(seed=s)[1] for s in range(3)])
  keys = jax.random.split(jax.random.key(0), 3)
  fn = functools.partial(mixers.get_mixer(name), per_sample=True)
  mixed, info = jax.vmap(fn)(keys, xs, ys)
  assert mixed.shape == xs.shape and info.lam.shape == (3, 8)
  for i in range(3):
    single, single_info = fn(keys[i], xs[i], ys[i])
    np.testing.assert_allclose(mixed[i], single, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(info.lam[i], single_info.lam, rtol=1e-6)


@pytest.mark.parametrize("name", INPUT_MIXERS)
def test_shard_map_mixes_only_within_each_device(name):
  need_devices(4)
  devices = jax.devices()
  mesh = jax.make_mesh((4,), ("data",),
                       axis_types=(jax.sharding.AxisType.Explicit,),
                       devices=devices[:4])
  x, y = _constant_batch(b=16)
  mixer = mixers.get_mixer(name)

  def local(rng, x, y):
    rng = jax.random.fold_in(rng, jax.lax.axis_index("data"))
    mixed, info = mixer(rng, x, y)
    return mixed, info.partner, info.lam

  fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P("data"),
                                                          P("data")),
                             out_specs=P("data")))
  sharding = jax.sharding.NamedSharding(mesh, P("data"))
  mixed, partner, lam = fn(jax.random.key(0), jax.device_put(x, sharding),
                           jax.device_put(y, sharding))
  partner, lam, mixed = map(np.asarray, (partner, lam, mixed))
  v = np.arange(1, 17, dtype=np.float64)
  lams = []
  for d in range(4):
    sl = slice(4 * d, 4 * d + 4)
    assert sorted(partner[sl].tolist()) == [0, 1, 2, 3]
    local_v = v[sl]
    expected = lam[sl] * local_v + (1 - lam[sl]) * local_v[partner[sl]]
    np.testing.assert_allclose(mixed[sl].mean(axis=(1, 2, 3)), expected,
                               rtol=1e-5)
    lams.append(lam[4 * d])
  assert len(set(np.round(lams, 6))) > 1, "each device must draw its own λ"


def test_cutmix_box_clipped_at_border():
  # λ = 0.75 → sides ⌊32·0.5⌋ = 16, half 8; centre (2, 3) → rows [0, 10),
  # cols [0, 11) after clipping: 110 pixels pasted.
  box = ops.centred_box(jnp.array([2]), jnp.array([3]),
                            jnp.array([0.75]), 32, 32)
  mask = np.asarray(ops.box_mask(box, 32, 32))[0]
  assert mask.sum() == 110
  assert mask[:10, :11].all() and not mask[10:].any() and not mask[:, 11:].any()
  keep = 1.0 - ops.box_mask(box, 32, 32)
  np.testing.assert_allclose(ops.kept_fraction(keep), [1 - 110 / 1024])


def test_cutmix_matches_reference_box_rule():
  """λ from our mask equals the reference code's box arithmetic."""
  x, y = _batch(b=64, h=32, w=32)
  rng = jax.random.key(7)
  _, info = mixers.cutmix(rng, x, y, alpha=1.0, per_sample=True)
  k_perm, k_lam, k_box = jax.random.split(rng, 3)
  lam0 = np.asarray(ops.draw_beta(k_lam, 1.0, 64), np.float64)
  ky, kx = jax.random.split(k_box)
  cy = np.asarray(jax.random.randint(ky, (64,), 0, 32))
  cx = np.asarray(jax.random.randint(kx, (64,), 0, 32))
  for i in range(64):
    cut = int(32 * np.sqrt(1.0 - np.float32(lam0[i])))
    y1, y2 = np.clip(cy[i] - cut // 2, 0, 32), np.clip(cy[i] + cut // 2, 0, 32)
    x1, x2 = np.clip(cx[i] - cut // 2, 0, 32), np.clip(cx[i] + cut // 2, 0, 32)
    assert info.lam[i] == pytest.approx(1 - (y2 - y1) * (x2 - x1) / 1024)


@pytest.mark.parametrize("per_sample", PER_SAMPLE)
def test_fmix_mask_has_ceil_lambda_hw_ones(per_sample):
  x, y = _batch(b=16, h=32, w=32)
  rng = jax.random.key(11)
  _, info = mixers.fmix(rng, x, y, alpha=1.0, per_sample=per_sample)
  _, k_lam, _ = jax.random.split(rng, 3)
  lam0 = np.asarray(ops.draw_beta(k_lam, 1.0, 16 if per_sample else 1))
  ones = np.asarray(info.mask).sum(axis=(1, 2))
  want = np.ceil(lam0.astype(np.float64) * 1024 - 1e-4)
  np.testing.assert_array_equal(ones, np.broadcast_to(want, (16,)))
  np.testing.assert_allclose(info.lam, ones / 1024)


def test_fmix_binarise_exact_count_and_low_frequency():
  noise = mixers.fmix.__globals__["low_frequency_image"](
      jax.random.key(0), 2, 32, 32, 3.0)
  assert float(noise.min()) == 0.0 and float(noise.max()) == pytest.approx(1.0)
  # A low-frequency image is smooth: neighbours are strongly correlated.
  n = np.asarray(noise)
  corr = np.corrcoef(n[:, :, :-1].ravel(), n[:, :, 1:].ravel())[0, 1]
  assert corr > 0.9
  from remix_jax.mixers.fmix import binarise_top
  m = binarise_top(noise, jnp.array([0, 517]))
  assert np.asarray(m).sum(axis=(1, 2)).tolist() == [0, 517]


def test_resizemix_pastes_shrunken_copy():
  h = w = 32
  b = 4
  pattern = (np.arange(h)[:, None] * 100 + np.arange(w)[None, :]).astype(
      np.float32)
  x = jnp.asarray(
      np.stack([pattern + 10000 * i for i in range(b)])[..., None])
  y = jnp.arange(b)
  mixed, info = mixers.resizemix(jax.random.key(4), x, y, per_sample=True)
  for i in range(b):
    pasted = np.asarray(info.mask[i]) == 0
    if not pasted.any():
      continue
    rows, cols = np.where(pasted.any(1))[0], np.where(pasted.any(0))[0]
    y1, y2, x1, x2 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    src = np.asarray(x[int(info.partner[i]), ..., 0])
    sr = ((np.arange(y1, y2) - y1) * h) // (y2 - y1)
    sc = ((np.arange(x1, x2) - x1) * w) // (x2 - x1)
    np.testing.assert_array_equal(
        np.asarray(mixed[i, y1:y2, x1:x2, 0]), src[np.ix_(sr, sc)])
    # The whole partner is visible: its top-left corner, and its last rows.
    assert mixed[i, y1, x1, 0] == src[0, 0]
    assert sr[-1] >= h - h / (y2 - y1) - 1
    np.testing.assert_array_equal(np.asarray(mixed[i])[~pasted],
                                  np.asarray(x[i])[~pasted])


def test_resizemix_scale_with_alpha_stays_in_scope():
  from remix_jax.mixers.resizemix import draw_scale
  tau = draw_scale(jax.random.key(0), 5000, (0.1, 0.8), 0.2, True)
  assert float(tau.min()) >= 0.1 and float(tau.max()) <= 0.8
  tau_u = draw_scale(jax.random.key(0), 5000, (0.1, 0.8), 1.0, False)
  assert float(tau_u.mean()) == pytest.approx(0.45, abs=0.01)


def test_saliency_peak_finds_salient_blob():
  from remix_jax.mixers.saliencymix import saliency_peak
  # A textured background (as in natural images) with one bright blob each.
  img = 0.5 + 0.05 * np.random.RandomState(0).randn(2, 32, 32, 3)
  img = img.astype(np.float32)
  img[0, 20:24, 5:9] = 1.0
  img[1, 3:6, 25:28] = 1.0
  r, c = saliency_peak(jnp.asarray(img))
  assert 17 <= int(r[0]) <= 26 and 2 <= int(c[0]) <= 11
  assert 0 <= int(r[1]) <= 8 and 22 <= int(c[1]) <= 30


def test_saliencymix_box_covers_source_peak():
  img = 0.5 + 0.05 * np.random.RandomState(1).randn(4, 32, 32, 3)
  img = img.astype(np.float32)
  for i in range(4):
    img[i, 4 + 6 * i:7 + 6 * i, 4 + 6 * i:7 + 6 * i] = 1.0
  _, info = mixers.saliencymix(jax.random.key(9), jnp.asarray(img),
                               jnp.arange(4), alpha=1.0, per_sample=True)
  for i in range(4):
    src = int(info.partner[i])
    centre = 5 + 6 * src
    pasted = np.asarray(info.mask[i]) == 0
    if pasted.sum() >= 9:
      rows, cols = np.where(pasted)
      assert rows.min() <= centre + 2 and rows.max() >= centre - 2
      assert cols.min() <= centre + 2 and cols.max() >= centre - 2


@pytest.mark.parametrize("alpha", [0.4, 1.0])
def test_mixup_lambda_matches_beta_moments(alpha):
  x, y = _batch(b=20000, h=1, w=1, c=1)
  _, info = mixers.mixup(jax.random.key(0), x, y, alpha=alpha, per_sample=True)
  lam = np.asarray(info.lam, np.float64)
  assert lam.mean() == pytest.approx(0.5, abs=0.01)
  assert lam.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.05)


def test_batch_lambda_mean_over_draws():
  x, y = _batch(b=2, h=1, w=1, c=1)
  keys = jax.random.split(jax.random.key(1), 4000)
  lam = jax.vmap(lambda k: mixers.mixup(k, x, y, alpha=0.2)[1].lam[0])(keys)
  assert float(jnp.mean(lam)) == pytest.approx(0.5, abs=0.02)
  assert float(jnp.var(lam)) == pytest.approx(1 / (4 * 1.4), rel=0.08)


@pytest.mark.parametrize("name", INPUT_MIXERS)
def test_bad_inputs_raise_one_line_errors(name):
  x, y = _batch()
  fn = mixers.get_mixer(name)
  with pytest.raises(ValueError, match="images must have shape"):
    fn(jax.random.key(0), x[0], y)
  with pytest.raises(ValueError, match="labels must have shape"):
    fn(jax.random.key(0), x, y[:3])
  if name != "resizemix":
    with pytest.raises(ValueError, match="alpha must be > 0"):
      fn(jax.random.key(0), x, y, alpha=0.0)
  with pytest.raises(ValueError, match="choose one of"):
    mixers.get_mixer("mixupp")
