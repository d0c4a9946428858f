"""SUMix's 'follow' ratio rule: properties, NumPy values, config, the step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import cifar_lt
from remix_jax.trainer import config_lib
from remix_jax.trainer import methods
from remix_jax import mixers
from remix_jax.trainer import objective
from remix_jax import parallel
from remix_jax import sumix
from remix_jax.trainer import build
from tests.helpers import need_devices

COUNTS = np.array([500, 200, 80, 30, 10])
CUT_MIXERS = ("cutmix", "saliencymix", "fmix", "resizemix")


def _logit(p):
  return np.log(p) - np.log1p(-p)


def np_follow(z_a, z_m, perm, lam, temperature):
  """The follow rule sample by sample (float64)."""
  softmax = lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()
  out = np.zeros(len(lam))
  for i in range(len(lam)):
    p_a, p_b, p_m = softmax(z_a[i]), softmax(z_a[perm[i]]), softmax(z_m[i])
    d_a = 0.5 * np.abs(p_m - p_a).sum()
    d_b = 0.5 * np.abs(p_m - p_b).sum()
    w_a = lam[i] * np.exp(-d_a / temperature)
    w_b = (1 - lam[i]) * np.exp(-d_b / temperature)
    out[i] = w_a / (w_a + w_b)
  return out


def _follow(z_a, z_m, perm, lam, temperature=0.5):
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  return np.asarray(sumix.follow_ratio(f32(z_a), f32(z_m), jnp.asarray(perm),
                                       f32(lam), temperature=temperature),
                    np.float64)


def _random(seed, b, c, scale=3.0):
  rng = np.random.RandomState(seed)
  z_a, z_m = rng.randn(2, b, c) * scale
  return z_a, z_m, rng.permutation(b), rng.uniform(0.05, 0.95, b)


# ---------------------------------------------------------- exact values ---
@pytest.mark.parametrize("b,c,temperature", [(4, 3, 0.5), (16, 10, 0.25),
                                             (32, 100, 1.0), (8, 5, 2.0)])
def test_follow_ratio_matches_numpy(b, c, temperature):
  z_a, z_m, perm, lam = _random(b + c, b, c)
  lam[0] = 0.0 if b > 4 else lam[0]
  np.testing.assert_allclose(_follow(z_a, z_m, perm, lam, temperature),
                             np_follow(z_a, z_m, perm, lam, temperature),
                             rtol=1e-5, atol=1e-6)


def test_follow_ratio_hand_computed_value():
  # C = 2: p_a = (0.8, 0.2), p_b = (0.2, 0.8), p_m = (0.6, 0.4): d_a = 0.2,
  # d_b = 0.4, so logit λ̃ = logit 0.5 + 0.2 / 0.5 = 0.4.
  z_a = np.log([[0.8, 0.2], [0.2, 0.8]])
  z_m = np.log([[0.6, 0.4], [0.6, 0.4]])
  got = _follow(z_a, z_m, [1, 0], [0.5, 0.5], temperature=0.5)
  np.testing.assert_allclose(got, [1 / (1 + np.exp(-0.4)),
                                   1 / (1 + np.exp(0.4))], rtol=1e-5)


# ------------------------------------------------------------ properties ---
def test_monotone_towards_the_closer_image():
  """p_m sliding from b's clean prediction to a's raises λ̃ strictly, for
  every λ; λ̃ > λ exactly when p_m is closer to p_a."""
  rng = np.random.RandomState(0)
  c, n = 10, 21
  z = rng.randn(2, c) * 2
  p = np.asarray(jax.nn.softmax(jnp.asarray(z)), np.float64)
  ts = np.linspace(0.0, 1.0, n)
  p_m = np.array([t * p[0] + (1 - t) * p[1] for t in ts])
  # Rows 0..n−1 are image a (partner: row n, image b).
  z_a = np.concatenate([np.repeat(z[:1], n, 0), z[1:]])
  z_m = np.concatenate([np.log(p_m), np.zeros((1, c))])
  partner = np.array([n] * n + [0])
  d_a = 0.5 * np.abs(p_m - p[0]).sum(-1)
  d_b = 0.5 * np.abs(p_m - p[1]).sum(-1)
  for lam in (0.1, 0.5, 0.9):
    got = _follow(z_a, z_m, partner, np.full(n + 1, lam))[:-1]
    assert np.all(np.diff(got) > 0), got
    np.testing.assert_array_equal(got > lam + 1e-6, d_a < d_b - 1e-6)


def test_a_linear_mix_never_flips_the_majority_label():
  """p_m = λ·p_a + (1 − λ)·p_b: logit λ̃ − logit λ = (2λ − 1)·TV(p_a, p_b)/T,
  so λ̃ sides with the larger image."""
  rng = np.random.RandomState(1)
  b, c, t = 64, 10, 0.5
  z_a = rng.randn(b, c) * 3
  perm = rng.permutation(b)
  lam = rng.uniform(0.02, 0.98, b)
  p = np.asarray(jax.nn.softmax(jnp.asarray(z_a)), np.float64)
  p_m = lam[:, None] * p + (1 - lam[:, None]) * p[perm]
  got = _follow(z_a, np.log(p_m), perm, lam, t)
  tv = 0.5 * np.abs(p - p[perm]).sum(-1)
  np.testing.assert_allclose(_logit(got) - _logit(lam), (2 * lam - 1) * tv / t,
                             atol=2e-4)
  assert float(sumix.label_flip_rate(lam, got)) == 0.0


def test_uninformative_predictions_give_lambda():
  z_a, z_m, perm, lam = _random(2, 16, 10)
  # Uniform clean predictions (initialisation): λ̃ = λ whatever p_m.
  np.testing.assert_allclose(_follow(np.zeros_like(z_a), z_m, perm, lam), lam,
                             rtol=1e-6)
  # All clean predictions alike (p_a = p_b): λ̃ = λ.
  same = np.repeat(z_a[:1], 16, 0)
  np.testing.assert_allclose(_follow(same, z_m, perm, lam), lam, rtol=1e-6)
  # Nearly uniform (logits of scale ε): the shift is bounded by
  # TV(p_a, p_b)/T, which vanishes with ε.
  for eps in (1e-1, 1e-2):
    za, zm = eps * z_a, eps * z_m
    shift = np.abs(_logit(_follow(za, zm, perm, lam)) - _logit(lam))
    p = np.asarray(jax.nn.softmax(jnp.asarray(za)), np.float64)
    tv = 0.5 * np.abs(p - p[perm]).sum(-1)
    assert np.all(shift <= tv / 0.5 + 1e-4)
    assert shift.max() < 2 * eps


def test_limitation_a_uniform_mix_leans_to_the_less_confident_image():
  # Documented limitation: p_m uniform, p_a confident, p_b less so.
  z_a = np.array([[4.0, 0, 0, 0], [0, 1.0, 0, 0]])
  got = _follow(z_a, np.zeros((2, 4)), [1, 0], [0.5, 0.5])
  assert got[0] < 0.5 < got[1]
  p = np.asarray(jax.nn.softmax(jnp.asarray(z_a)), np.float64)
  tv = 0.5 * np.abs(p[0] - p[1]).sum()
  assert abs(_logit(got[0])) <= tv / 0.5 + 1e-5


def test_bounded_away_from_saturation_and_batch_size_free():
  # Extreme, opposite confident predictions: the shift never exceeds 1/T.
  b, c = 32, 10
  rng = np.random.RandomState(3)
  z_a = 50.0 * jax.nn.one_hot(rng.randint(0, c, b), c)
  z_m = 50.0 * jax.nn.one_hot(rng.randint(0, c, b), c)
  perm = rng.permutation(b)
  lam = rng.uniform(0.05, 0.95, b)
  for t in (0.25, 0.5, 1.0):
    got = _follow(np.asarray(z_a), np.asarray(z_m), perm, lam, t)
    shift = np.abs(_logit(got) - _logit(lam))
    assert np.all(shift <= 1 / t + 1e-4)
    assert np.all((got > 0) & (got < 1))
  # λ = 0 or 1 stays exact.
  got = _follow(np.asarray(z_a), np.asarray(z_m), perm,
                np.r_[np.zeros(16), np.ones(16)])
  np.testing.assert_array_equal(got, np.r_[np.zeros(16), np.ones(16)])
  # Per sample: a sample's λ̃ does not depend on the rest of the batch.
  z_a2, z_m2, perm2, lam2 = _random(4, 8, 5)
  full = _follow(z_a2, z_m2, perm2, lam2)
  i = 3
  sub = [i, perm2[i]]
  part = _follow(z_a2[sub], z_m2[sub], [1, 0], lam2[sub])
  assert part[0] == pytest.approx(full[i], rel=1e-6)


def test_swapping_the_images_gives_one_minus_lambda_tilde():
  z_a, z_m, _, lam = _random(5, 2, 6)
  # Row 0 is image a with λ, row 1 image b with 1 − λ; the same mix.
  got = _follow(z_a, z_m[[0, 0]], [1, 0], [lam[0], 1 - lam[0]])
  assert got[0] + got[1] == pytest.approx(1.0, abs=1e-6)
  assert abs(got[0] - lam[0]) > 1e-3  # the mix is informative here


def test_no_gradient_through_lambda_tilde():
  z_a, z_m, perm, lam = (jnp.asarray(x, jnp.float32) for x in _random(6, 8, 5))
  perm = perm.astype(jnp.int32)
  g = jax.grad(lambda a, m, l: jnp.sum(sumix.follow_ratio(
      a, m, perm, l, temperature=0.5)), argnums=(0, 1, 2))(z_a, z_m, lam)
  assert all(float(jnp.abs(x).max()) == 0.0 for x in g)


# ------------------------------------------------------------ rule / config -
def _config(method, **sumix_fields):
  c = cifar_lt.get_config(f"method={method}")
  c.model = "tiny_resnet"
  c.batch_size = 8
  for k, v in sumix_fields.items():
    setattr(c.sumix, k, v)
  return methods.resolve(c)


def test_official_stays_the_default_and_presets_select_follow():
  assert _config("cutmix_sumix").sumix.rule == "official"
  for mixer in CUT_MIXERS:
    c = _config(f"{mixer}_sumix_follow")
    assert (c.mixer, c.sumix.enabled, c.sumix.rule, c.sumix.reduction) == (
        mixer, True, "follow", "per_sample")
  c = _config("sumix_follow_remix")
  assert (c.mixer, c.label_rule, c.sumix.rule) == ("cutmix", "remix", "follow")
  assert "sumix_follow_remix" in methods.METHODS


@pytest.mark.parametrize("field,value,match", [
    ("rule", "inverse",
     "config.sumix.rule='inverse' is not valid; choose one of official, "
     "follow"),
    ("temperature", 0.0, "config.sumix.temperature=0.0 must be > 0"),
])
def test_bad_rule_config_is_one_line(field, value, match):
  config = _config("cutmix_sumix_follow", **{field: value})
  with pytest.raises(ValueError, match=match) as err:
    config_lib.validate_config(config)
  assert "\n" not in str(err.value)
  with pytest.raises(ValueError, match="choose one of official, follow"):
    sumix.make_ratio_fn("inverse", temperature=0.5)


def test_ratio_fn_dispatches_and_keeps_the_released_distances():
  config = _config("cutmix_sumix_follow")
  model = build.model_from_config(config, 5, per_device_batch=8)
  z_a, z_m, perm, lam = (jnp.asarray(x) for x in _random(7, 8, 5))
  labels = jnp.arange(8) % 5
  lam_t, dist = objective.make_sumix_ratio_fn(config)(
      model.similarity, z_a, z_m, labels, perm, lam)
  np.testing.assert_allclose(lam_t, sumix.follow_ratio(
      z_a, z_m, perm, lam, temperature=config.sumix.temperature), rtol=1e-6)
  released, want = model.similarity(z_a, z_m, labels, perm, lam)
  np.testing.assert_array_equal(dist.a, want.a)
  config.sumix.rule = "official"
  lam_o, _ = objective.make_sumix_ratio_fn(config)(
      model.similarity, z_a, z_m, labels, perm, lam)
  np.testing.assert_array_equal(lam_o, released)


def test_remix_rule_applies_to_the_follow_ratio():
  config = _config("sumix_follow_remix")
  label_weight = objective.make_label_weight_fn(config, COUNTS)
  lam_t = jnp.array([0.3, 0.8, 0.6])
  a, b = jnp.array([0, 4, 2]), jnp.array([4, 0, 1])
  # majority a with λ̃ < τ → 0; minority a with 1 − λ̃ < τ → 1; else λ̃.
  np.testing.assert_allclose(label_weight(lam_t, a, b), [0.0, 1.0, 0.6],
                             rtol=1e-6)


# ------------------------------------------------------------- the step ---
def test_every_cut_mixer_with_the_follow_rule_runs_on_4_devices():
  """One data-parallel step per cut mixer (and Remix-CM) on 4 devices: the
  logged ratio is the follow rule's λ̃ of the step's own two passes."""
  rng = np.random.RandomState(0)
  images = rng.randn(8, 8, 8, 3).astype(np.float32)
  labels = rng.randint(0, 5, 8).astype(np.int32)
  for method in [f"{m}_sumix_follow" for m in CUT_MIXERS] + [
      "sumix_follow_remix"]:
    config = _config(method)
    config_lib.validate_config(config)
    need_devices(4)
    mesh = parallel.make_mesh(4)
    state, step, _ = build.build(config, mesh, num_classes=5,
                                 class_counts=COUNTS, steps_per_epoch=10)
    state, metrics = step(state, *parallel.shard_batch(mesh,
                                                       (images, labels)))
    assert np.isfinite(float(metrics["loss"])), method
    assert int(state.step) == 1
    ratio, lam = float(metrics["sumix_ratio"]), float(metrics["mix_ratio"])
    # At initialisation the predictions are nearly uninformative: λ̃ ≈ λ,
    # and never beyond the 1/T logit bound.
    assert abs(ratio - lam) < 0.05, (method, ratio, lam)
    assert 0.0 <= float(metrics["sumix_label_flip"]) <= 1.0


def test_one_device_step_uses_the_follow_ratio_of_its_passes():
  """Replays a 1-device CutMix step eagerly: the logged mean λ̃ is the
  follow rule's, not the released one."""
  from flax import nnx
  config = _config("cutmix_sumix_follow")
  mesh = parallel.make_mesh(1)
  state, step, _ = build.build(config, mesh, num_classes=5,
                               class_counts=COUNTS, steps_per_epoch=10)
  rng = np.random.RandomState(2)
  images = rng.randn(8, 8, 8, 3).astype(np.float32)
  labels = rng.randint(0, 5, 8).astype(np.int32)
  params, batch_stats = jax.tree.map(np.array, (state.params,
                                                state.batch_stats))
  key = jax.random.fold_in(jax.random.fold_in(
      jax.random.wrap_key_data(state.rng), 0), 0)
  mixed, info = mixers.cutmix(key, jnp.asarray(images), jnp.asarray(labels),
                              alpha=config.mix_alpha)
  model = build.model_from_config(config, 5, per_device_batch=8)
  nnx.update(model, params, batch_stats)
  out_c, out_m = model(jnp.asarray(images)), model(mixed)
  want = sumix.follow_ratio(out_c.logits, out_m.logits, info.partner, info.lam,
                            temperature=config.sumix.temperature)
  _, metrics = step(state, *parallel.shard_batch(mesh, (images, labels)))
  assert float(metrics["sumix_ratio"]) == pytest.approx(
      float(jnp.mean(want)), rel=1e-4, abs=1e-6)
  assert float(metrics["label_weight"]) == pytest.approx(
      float(jnp.mean(want)), rel=1e-4, abs=1e-6)
