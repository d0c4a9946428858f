"""SUMix: ratio, regularizer and loss against NumPy; gradients; the step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import cifar_lt
from remix_jax.trainer import config_lib
from remix_jax import mixers
from remix_jax.trainer import objective
from remix_jax import parallel
from remix_jax import sumix
from remix_jax.models import sumix_heads
from remix_jax.trainer import build
from remix_jax.trainer import methods
from tests.helpers import need_devices

COUNTS = np.array([500, 200, 80, 30, 10])


# ---------------------------------------------------------------- NumPy ---
def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _normalize(x):
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _ce(logits, y):
  return -np.log(_softmax(logits)[np.arange(len(y)), y])


def np_sumix(z_a, z_m, u_a, u_m, y, perm, lam, scale, gamma, reduction):
  """The released IN_loss, sample by sample (float64)."""
  b = len(y)
  y_b = y[perm]
  p_a, p_m = _softmax(z_a), _softmax(z_m)
  p_b = p_a[perm].copy()
  p_hat_a = p_a.copy()
  lam_t = np.zeros(b)
  a_mat, b_mat = np.zeros_like(p_a), np.zeros_like(p_a)
  for i in range(b):
    p_hat_a[i, y_b[i]] = 0.0
    p_b[i, y[i]] = 0.0
  for i in range(b):
    a_mat[i] = scale * _normalize(_softmax(p_m[i] - p_hat_a[i]))
    b_mat[i] = scale * _normalize(_softmax(p_m[i] - p_b[i]))
    w_a = np.exp(-a_mat[i, y[i]])
    w_b = np.exp(-b_mat[i, y_b[i]])
    lam_t[i] = lam[i] * w_a / (lam[i] * w_a + (1 - lam[i]) * w_b)
  ce_a, ce_b = _ce(z_m, y), _ce(z_m, y_b)
  if reduction == "official":
    main = np.mean([l * ce_a.mean() + (1 - l) * ce_b.mean() for l in lam_t])
  else:
    main = np.mean(lam_t * ce_a + (1 - lam_t) * ce_b)
  s_a = np.exp(-(a_mat + u_a + u_m))
  s_b = np.exp(-(b_mat + u_a[perm] + u_m))
  reg = lam * _ce(s_a, y) + (1 - lam) * _ce(s_b, y_b)
  return lam_t, reg, main + gamma * reg.mean()


def _random_inputs(seed, b, c, lam_value):
  rng = np.random.RandomState(seed)
  z_a, z_m = rng.randn(2, b, c) * 2
  u_a = _normalize(_softmax(rng.randn(b, c)))
  u_m = _normalize(_softmax(rng.randn(b, c)))
  y = rng.randint(0, c, b)
  perm = rng.permutation(b)
  lam = np.full(b, lam_value) if lam_value is not None else rng.rand(b)
  return z_a, z_m, u_a, u_m, y, perm, lam


@pytest.mark.parametrize("b,c,lam_value,scale", [
    (4, 3, 0.5, 1.0), (16, 10, 0.3, 16.0), (32, 100, 0.8, 32.0),
    (8, 5, None, 8.0), (7, 20, 1.0, 7.0), (6, 4, 0.0, 2.0)])
@pytest.mark.parametrize("reduction", sumix.REDUCTIONS)
def test_ratio_regularizer_and_loss_match_numpy(b, c, lam_value, scale,
                                                reduction):
  z_a, z_m, u_a, u_m, y, perm, lam = _random_inputs(b * c, b, c, lam_value)
  want_lam, want_reg, want_loss = np_sumix(z_a, z_m, u_a, u_m, y, perm, lam,
                                           scale, 0.5, reduction)
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  got_lam = sumix.sumix_ratio(f32(z_a), f32(z_m), jnp.asarray(y),
                              jnp.asarray(perm), f32(lam), scale=scale)
  np.testing.assert_allclose(got_lam, want_lam, rtol=2e-5, atol=1e-6)
  dist = sumix.semantic_distances(f32(z_a), f32(z_m), jnp.asarray(y),
                                  jnp.asarray(perm), scale)
  got_reg = sumix.uncertainty_regularizer(dist, f32(u_a), f32(u_m),
                                          jnp.asarray(y), jnp.asarray(perm),
                                          f32(lam))
  np.testing.assert_allclose(got_reg, want_reg, rtol=2e-5)
  got_loss = sumix.sumix_loss(f32(z_a), f32(z_m), f32(u_a), f32(u_m),
                              jnp.asarray(y), jnp.asarray(perm), f32(lam),
                              scale=scale, gamma=0.5, reduction=reduction)
  np.testing.assert_allclose(got_loss, want_loss, rtol=2e-5)


def test_ratio_is_finite_where_the_released_formula_divides_zero_by_zero():
  # scale 1e4: both weights exp(-A) underflow to 0 in float32.
  z_a, z_m, _, _, y, perm, lam = _random_inputs(0, 8, 5, 0.4)
  got = sumix.sumix_ratio(jnp.asarray(z_a, jnp.float32),
                          jnp.asarray(z_m, jnp.float32), jnp.asarray(y),
                          jnp.asarray(perm), jnp.asarray(lam, jnp.float32),
                          scale=1e4)
  assert np.all(np.isfinite(got)) and np.all((got >= 0) & (got <= 1))


def test_reduction_official_is_the_batch_mean():
  lam = jnp.array([0.1, 0.5, 0.9, 0.3])
  np.testing.assert_allclose(sumix.reduce_ratio(lam, "official"),
                             np.full(4, 0.45), rtol=1e-6)
  np.testing.assert_array_equal(sumix.reduce_ratio(lam, "per_sample"), lam)
  with pytest.raises(ValueError, match="choose one of official, per_sample"):
    sumix.reduce_ratio(lam, "mean")


# ------------------------------------------------------------ gradients ---
def test_ratio_has_no_gradient_and_regularizer_reaches_the_head():
  z_a, z_m, _, _, y, perm, lam = _random_inputs(3, 8, 5, 0.6)
  z_a, z_m = jnp.asarray(z_a, jnp.float32), jnp.asarray(z_m, jnp.float32)
  y, perm, lam = jnp.asarray(y), jnp.asarray(perm), jnp.asarray(
      lam, jnp.float32)
  g = jax.grad(lambda a, m: jnp.sum(sumix.sumix_ratio(
      a, m, y, perm, lam, scale=8.0)), argnums=(0, 1))(z_a, z_m)
  assert all(float(jnp.abs(x).max()) == 0.0 for x in g)

  head = sumix_heads.UncertaintyHead(6, 5, is_norm=True, rngs=nnx.Rngs(0))
  h_a, h_m = jax.random.normal(jax.random.key(1), (2, 8, 6))
  dist = sumix.semantic_distances(z_a, z_m, y, perm, 8.0)

  def reg(head):
    return jnp.mean(sumix.uncertainty_regularizer(
        dist, head(h_a, z_a), head(h_m, z_m), y, perm, lam))

  grads = nnx.grad(reg)(head)
  assert float(jnp.abs(grads["linear"]["kernel"][...]).max()) > 0
  # And R has no gradient through A: only u moves it.
  g_logits = jax.grad(lambda a: jnp.sum(sumix.uncertainty_regularizer(
      sumix.semantic_distances(a, z_m, y, perm, 8.0), head(h_a, z_a),
      head(h_m, z_m), y, perm, lam)))(z_a)
  assert float(jnp.abs(g_logits).max()) == 0.0


def test_learnable_scale_is_trained_through_the_regularizer_only():
  sim = sumix_heads.SimilarityHead(16.0, learn_scale=True)
  assert float(jnp.exp(sim.log_scale[...])) == pytest.approx(16.0)
  z_a, z_m, u_a, u_m, y, perm, lam = (jnp.asarray(v) for v in _random_inputs(
      5, 8, 5, 0.5))

  def ratio_sum(sim):
    return jnp.sum(sim(z_a, z_m, y, perm, lam)[0])

  def reg(sim):
    _, dist = sim(z_a, z_m, y, perm, lam)
    return jnp.mean(sumix.uncertainty_regularizer(dist, u_a, u_m, y, perm,
                                                  lam))

  assert float(nnx.grad(ratio_sum)(sim)["log_scale"][...]) == 0.0
  assert float(nnx.grad(reg)(sim)["log_scale"][...]) != 0.0
  with pytest.raises(ValueError, match="must be > 0"):
    sumix_heads.SimilarityHead(0.0)


def test_label_flip_rate_counts_majority_changes():
  lam = jnp.array([0.8, 0.8, 0.3, 0.3, 0.5])
  lam_t = jnp.array([0.9, 0.1, 0.2, 0.7, 0.49])
  # kept, flipped, kept, flipped, flipped (0.5 counts as the own image's)
  assert float(sumix.label_flip_rate(lam, lam_t)) == pytest.approx(0.6)
  assert float(sumix.label_flip_rate(lam, lam)) == 0.0


def test_is_norm_false_uses_the_logits():
  head = sumix_heads.UncertaintyHead(6, 5, is_norm=False, rngs=nnx.Rngs(0))
  z = jnp.arange(10.0).reshape(2, 5)
  np.testing.assert_array_equal(head(jnp.ones((2, 6)), z), z)
  assert not jax.tree.leaves(nnx.state(head, nnx.Param))


# ----------------------------------------------------------- train step ---
def _config(method, **sumix_fields):
  c = cifar_lt.get_config(f"method={method}")
  c.model = "tiny_resnet"
  c.batch_size = 8
  for k, v in sumix_fields.items():
    setattr(c.sumix, k, v)
  return methods.resolve(c)


def _batch(seed=0, b=8):
  rng = np.random.RandomState(seed)
  return (rng.randn(b, 8, 8, 3).astype(np.float32),
          rng.randint(0, 5, b).astype(np.int32))


def _build(config, num_devices):
  need_devices(num_devices)
  mesh = parallel.make_mesh(num_devices)
  state, step, _ = build.build(config, mesh, num_classes=5,
                               class_counts=COUNTS, steps_per_epoch=10)
  return mesh, state, step


@pytest.mark.parametrize("mixer", ["mixup", "cutmix", "saliencymix", "fmix",
                                   "resizemix"])
def test_every_base_mixer_with_sumix_runs_on_4_devices(mixer):
  config = _config(f"{mixer}_sumix")
  config_lib.validate_config(config)
  mesh, state, step = _build(config, 4)
  state, metrics = step(state, *parallel.shard_batch(mesh, _batch()))
  assert np.isfinite(float(metrics["loss"]))
  assert float(metrics["sumix_regularizer"]) == pytest.approx(np.log(5),
                                                              abs=0.05)
  assert int(state.step) == 1


def test_step_loss_heads_and_batchnorm_match_a_two_pass_replay():
  """One 1-device step: its loss is sumix_loss of the two passes, the
  uncertainty head moves, and BatchNorm has seen the clean AND mixed batch."""
  config = _config("cutmix_sumix", reduction="per_sample")
  config.weight_decay = 0.0
  mesh, state, step = _build(config, 1)
  images, labels = _batch(1)
  # Host copies: the step donates (deletes) the state it is given.
  params, batch_stats = jax.tree.map(np.array, (state.params,
                                                state.batch_stats))
  # Replay the step eagerly: same rng derivation, two passes in train mode.
  key = jax.random.fold_in(jax.random.fold_in(
      jax.random.wrap_key_data(state.rng), 0), 0)
  mixed, info = mixers.cutmix(key, jnp.asarray(images), jnp.asarray(labels),
                              alpha=config.mix_alpha)
  model = build.model_from_config(config, 5, per_device_batch=8)
  nnx.update(model, params, batch_stats)
  out_c, out_m = model(jnp.asarray(images)), model(mixed)
  want = sumix.sumix_loss(
      out_c.logits, out_m.logits,
      model.uncertainty(out_c.features, out_c.logits),
      model.uncertainty(out_m.features, out_m.logits), jnp.asarray(labels),
      info.partner, info.lam, scale=8.0, gamma=config.sumix.gamma,
      reduction="per_sample")
  want_stats = nnx.state(model, nnx.BatchStat)
  kernel0 = np.asarray(params["uncertainty"]["linear"]["kernel"][...])

  want_ratio = sumix.sumix_ratio(out_c.logits, out_m.logits,
                                 jnp.asarray(labels), info.partner, info.lam,
                                 scale=8.0)

  new_state, metrics = step(state, *parallel.shard_batch(mesh,
                                                         (images, labels)))
  assert float(metrics["loss"]) == pytest.approx(float(want), rel=1e-5)
  assert float(metrics["mix_ratio"]) == pytest.approx(
      float(jnp.mean(info.lam)), rel=1e-6)
  assert float(metrics["sumix_ratio"]) == pytest.approx(
      float(jnp.mean(want_ratio)), rel=1e-4, abs=1e-6)
  assert float(metrics["sumix_label_flip"]) == pytest.approx(
      float(sumix.label_flip_rate(info.lam, want_ratio)))
  kernel1 = np.asarray(new_state.params["uncertainty"]["linear"]["kernel"][
      ...])
  assert np.abs(kernel1 - kernel0).max() > 0
  for got, exp in zip(jax.tree.leaves(new_state.batch_stats),
                      jax.tree.leaves(want_stats)):
    np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-6)
  # One pass only would give different statistics.
  model1 = build.model_from_config(config, 5, per_device_batch=8)
  nnx.update(model1, params, batch_stats)
  model1(mixed)
  one_pass = jax.tree.leaves(nnx.state(model1, nnx.BatchStat))
  assert any(np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-6
             for a, b in zip(one_pass, jax.tree.leaves(new_state.batch_stats)))


def test_remix_on_sumix_gives_zero_one_label_weights_where_it_fires():
  config = _config("sumix_remix")
  assert config.label_rule == "remix" and config.sumix.reduction == "per_sample"
  label_weight = objective.make_label_weight_fn(config, COUNTS)
  # Class 0 has 500 images, class 4 has 10 (ratio 50 ≥ κ = 3).
  lam_t = jnp.array([0.3, 0.3, 0.8, 0.8, 0.3, 0.6])
  a = jnp.array([0, 4, 4, 0, 1, 2])
  b = jnp.array([4, 0, 0, 4, 2, 1])
  got = np.asarray(label_weight(lam_t, a, b))
  # majority a, λ̃ < τ → 0; minority a with 1−λ̃ < τ → 1; otherwise λ̃.
  np.testing.assert_allclose(got, [0.0, 0.3, 1.0, 0.8, 0.3, 0.6], rtol=1e-6)
  # With the official reduction the same rule is averaged over the batch.
  config.sumix.reduction = "official"
  official = np.asarray(objective.make_label_weight_fn(config, COUNTS)(
      lam_t, a, b))
  np.testing.assert_allclose(official, np.full(6, got.mean()), rtol=1e-6)


@pytest.mark.parametrize("field,value,match", [
    ("reduction", "mean", "config.sumix.reduction='mean' is not valid"),
    ("gamma", -1.0, "must be >= 0"),
])
def test_bad_sumix_config(field, value, match):
  config = _config("sumix")
  setattr(config.sumix, field, value)
  with pytest.raises(ValueError, match=match):
    config_lib.validate_config(config)
  config = _config("erm")
  config.sumix.enabled = True
  with pytest.raises(ValueError, match="needs a mixer"):
    config_lib.validate_config(config)


@pytest.mark.parametrize("arg", [
    "dataset=cifar100,mixer=cutmix", "dataset=cifar100,mixer=saliencymix",
    "dataset=cifar100,mixer=fmix", "dataset=cifar100,mixer=resizemix",
    "dataset=cifar100,mixer=cutmix,sumix=false", "dataset=tiny_imagenet",
    "dataset=imagenet2012"])
def test_sumix_presets_are_valid(arg):
  from configs import sumix as sumix_presets
  c = config_lib.validate_config(sumix_presets.get_config(arg))
  assert c.schedule == "cosine" and c.data.rho == 1.0
  assert c.sumix.enabled == ("sumix=false" not in arg)
  if "cifar100" in arg:
    assert (c.model, c.batch_size, c.num_epochs, c.sumix.gamma) == (
        "resnet18", 100, 800, 0.5)
    assert c.mix_alpha == (1.0 if "resizemix" in arg else 0.2)
  if "tiny" in arg:
    assert (c.learning_rate, c.sumix.gamma, c.num_epochs) == (0.2, 1.0, 400)
  if "imagenet2012" in arg:
    assert (c.mixer, c.mix_alpha, c.sumix.is_norm, c.num_epochs) == (
        "mixup", 1.0, False, 100)
  with pytest.raises(ValueError, match="choose one of"):
    sumix_presets.get_config("mixer=gridmix")
