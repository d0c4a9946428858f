"""Remix's successors in the library: the logit-adjusted loss, the partner
interface of the mixers (a second batch, UniMix's pairing), Balanced-MixUp,
UniMix and CMO's mix, each against hand-computed cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from remix_jax import label_rules
from remix_jax import losses
from remix_jax import mixers
from remix_jax import remix
from remix_jax.mixers import ops

INPUT_MIXERS = ["mixup", "cutmix", "saliencymix", "fmix", "resizemix",
                "balanced_mixup"]
COUNTS = np.array([600, 200, 60, 20, 6])


def _batch(seed=0, b=8, size=8):
  rng = np.random.RandomState(seed)
  images = jnp.asarray(rng.rand(b, size, size, 3), jnp.float32)
  labels = jnp.asarray(rng.randint(0, 5, b), jnp.int32)
  return images, labels


def test_log_prior_and_its_errors():
  np.testing.assert_allclose(losses.log_prior([3, 1, 0]),
                             np.log([0.75 + 1e-12, 0.25 + 1e-12, 1e-12]),
                             rtol=1e-6)
  with pytest.raises(ValueError, match=r"class_counts must be \[C\] counts"):
    losses.log_prior([0, 0])


def test_logit_adjusted_cross_entropy_by_hand():
  z = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], np.float32)
  y = np.array([0, 2])
  counts = np.array([80, 15, 5])
  tau = 1.5
  adjusted = z + tau * np.log(counts / counts.sum())
  logp = adjusted - np.log(np.exp(adjusted).sum(-1, keepdims=True))
  want = -logp[np.arange(2), y]
  got = losses.logit_adjusted_cross_entropy(
      jnp.asarray(z), jnp.asarray(y), log_prior=losses.log_prior(counts),
      tau=tau)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # τ = 0 is plain cross-entropy; Balanced Softmax's log n_c (not log π)
  # gives the same loss, the shift being common to every logit.
  np.testing.assert_allclose(
      losses.logit_adjusted_cross_entropy(jnp.asarray(z), jnp.asarray(y),
                                          log_prior=losses.log_prior(counts),
                                          tau=0.0),
      losses.cross_entropy(jnp.asarray(z), jnp.asarray(y)), rtol=1e-6)
  np.testing.assert_allclose(
      losses.logit_adjusted_cross_entropy(
          jnp.asarray(z), jnp.asarray(y),
          log_prior=jnp.log(jnp.asarray(counts, jnp.float32))),
      losses.logit_adjusted_cross_entropy(
          jnp.asarray(z), jnp.asarray(y), log_prior=losses.log_prior(counts)),
      rtol=1e-5)
  # The prior already favours the head: a head label costs less than with
  # plain CE, a tail label more, so the model must raise the tail's logits.
  plain = losses.cross_entropy(jnp.asarray(z), jnp.asarray(y))
  assert got[0] < plain[0] and got[1] > plain[1]


def test_logit_adjusted_loss_with_mixed_labels_and_class_weights():
  """λ_y-mixed per-label losses are the soft-target CE of the adjusted
  logits; class weights enter as for every per-label loss."""
  rng = np.random.RandomState(3)
  z = jnp.asarray(rng.randn(6, 5), jnp.float32)
  a = jnp.asarray([0, 1, 2, 3, 4, 0])
  b = jnp.asarray([4, 4, 0, 1, 2, 3])
  lam_y = jnp.asarray([0.0, 1.0, 0.3, 0.5, 0.9, 0.2])
  prior = losses.log_prior(COUNTS)
  per_label = lambda logits, y: losses.logit_adjusted_cross_entropy(
      logits, y, log_prior=prior)
  targets = losses.soft_targets(a, b, lam_y, 5)
  soft = -jnp.sum(targets * jax.nn.log_softmax(z + prior), -1)
  np.testing.assert_allclose(
      losses.mixed_label_loss(per_label, z, a, b, lam_y), jnp.mean(soft),
      rtol=1e-5)
  w = jnp.asarray(losses.class_balanced_weights(COUNTS))
  w_a, w_b = w[a], w[b]
  each = lam_y * w_a * per_label(z, a) + (1 - lam_y) * w_b * per_label(z, b)
  want = jnp.sum(each) / jnp.sum(lam_y * w_a + (1 - lam_y) * w_b)
  np.testing.assert_allclose(
      losses.mixed_label_loss(per_label, z, a, b, lam_y, w_a, w_b), want,
      rtol=1e-5)


def _second_batch(b=8, size=8):
  """A partner batch whose pixels are all -1 and labels all 4."""
  return ops.Partners(-jnp.ones((b, size, size, 3), jnp.float32),
                      jnp.full((b,), 4, jnp.int32))


@pytest.mark.parametrize("name", INPUT_MIXERS)
def test_every_mixer_takes_a_second_batch(name):
  images, labels = _batch()
  partners = _second_batch()
  mixed, info = mixers.get_mixer(name)(jax.random.key(1), images, labels,
                                       partners=partners)
  assert info.partner is None
  np.testing.assert_array_equal(info.partner_labels, partners.labels)
  # Every pixel is λ·x + (1 − λ)·(−1), or a copy of x or of −1.
  if info.mask is None:
    lam = np.asarray(info.lam)[:, None, None, None]
    np.testing.assert_allclose(mixed, lam * images - (1 - lam), atol=1e-6)
  else:
    keep = np.asarray(info.mask)[..., None] > 0
    np.testing.assert_array_equal(mixed, np.where(keep, images, -1.0))
    np.testing.assert_allclose(info.lam, np.asarray(info.mask).mean((1, 2)))
  assert 0 < float(jnp.mean(info.lam)) < 1


@pytest.mark.parametrize("name", INPUT_MIXERS + ["manifold_mixup"])
def test_in_batch_partners_carry_their_labels(name):
  images, labels = _batch(1)
  index = jnp.asarray([3, 3, 0, 7, 1, 1, 2, 5], jnp.int32)
  partners = mixers.batch_partners(images, labels, index)
  _, info = mixers.get_mixer(name)(jax.random.key(2), images, labels,
                                   partners=partners)
  np.testing.assert_array_equal(info.partner, index)
  np.testing.assert_array_equal(info.partner_labels, labels[index])
  # Without partners: a permutation, and its labels.
  _, info = mixers.get_mixer(name)(jax.random.key(2), images, labels)
  assert sorted(np.asarray(info.partner).tolist()) == list(range(8))
  np.testing.assert_array_equal(info.partner_labels, labels[info.partner])


def test_partner_errors_name_their_argument():
  images, labels = _batch()
  with pytest.raises(ValueError, match=r"partners.images must have the "
                     r"batch's shape \(8, 8, 8, 3\), got \(4, 8, 8, 3\)"):
    mixers.mixup(jax.random.key(0), images, labels,
                 partners=ops.Partners(images[:4], labels[:4]))
  with pytest.raises(ValueError, match=r"partners.labels must have shape"):
    mixers.cutmix(jax.random.key(0), images, labels,
                  partners=ops.Partners(images, labels[:4]))
  with pytest.raises(ValueError, match="a second batch has no hidden states"):
    mixers.manifold_mixup(jax.random.key(0), images, labels,
                          partners=_second_batch())


def test_prior_partners_follow_n_to_the_tau():
  labels = jnp.asarray([0] * 6 + [4] * 2, jnp.int32)  # n = 600 and 6
  draws = jax.vmap(lambda k: mixers.prior_partners(k, labels, COUNTS, -0.5))(
      jax.random.split(jax.random.key(0), 4000))
  # Per row: p_j ∝ n_{y_j}^τ, i.e. 600^-.5 for each of the 6 head rows and
  # 6^-.5 for each of the 2 tail rows.
  w = np.array([600.0 ** -0.5] * 6 + [6.0 ** -0.5] * 2)
  freq = np.bincount(np.asarray(draws).ravel(), minlength=8) / draws.size
  np.testing.assert_allclose(freq, w / w.sum(), atol=0.01)
  # τ = 0: uniform over the rows, with replacement.
  zero = jax.vmap(lambda k: mixers.prior_partners(k, labels, COUNTS, 0.0))(
      jax.random.split(jax.random.key(1), 2000))
  freq0 = np.bincount(np.asarray(zero).ravel(), minlength=8) / zero.size
  np.testing.assert_allclose(freq0, 1 / 8, atol=0.01)


def test_unimix_factor_by_hand():
  key = jax.random.key(7)
  n_a = jnp.asarray([600.0, 6.0, 200.0, 60.0])
  n_b = jnp.asarray([6.0, 600.0, 200.0, 20.0])
  noise = np.asarray(ops.draw_beta(key, 0.8, 4))
  xi = np.asarray(n_b / (n_a + n_b))
  want = xi + noise
  want = np.where(want > 1, want - 1, want)
  got = mixers.unimix_factor(key, n_a, n_b, 0.8)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert ((np.asarray(got) >= 0) & (np.asarray(got) <= 1)).all()


def test_unimix_mixes_with_its_factor():
  images, labels = _batch(2)
  index = jnp.asarray([1, 0, 3, 2, 5, 4, 7, 6], jnp.int32)
  partners = mixers.batch_partners(images, labels, index)
  key = jax.random.key(3)
  mixed, info = mixers.unimix(key, images, labels, class_counts=COUNTS,
                              alpha=0.8, partners=partners)
  _, k_lam = jax.random.split(key)
  counts = jnp.asarray(COUNTS, jnp.float32)
  want = mixers.unimix_factor(k_lam, counts[labels], counts[labels[index]],
                              0.8)
  np.testing.assert_allclose(info.lam, want, rtol=1e-6)
  lam = np.asarray(want)[:, None, None, None]
  np.testing.assert_allclose(mixed, lam * images + (1 - lam) * images[index],
                             atol=1e-6)


def test_balanced_mixup_weights_the_balanced_batch_by_beta_alpha_1():
  images, labels = _batch(4)
  key = jax.random.key(9)
  _, info = mixers.balanced_mixup(key, images, labels, alpha=0.2,
                                  partners=_second_batch())
  _, k_lam = jax.random.split(key)
  lam_b = jax.random.beta(k_lam, 0.2, 1.0, shape=(1,))
  np.testing.assert_allclose(info.lam, np.full(8, 1 - float(lam_b[0])),
                             rtol=1e-6)
  # E[λ_b] = α/(α + 1): the mix stays close to the instance batch.
  lams = jax.vmap(lambda k: mixers.balanced_mixup(
      k, images, labels, alpha=0.2, partners=_second_batch())[1].lam[0])(
          jax.random.split(jax.random.key(0), 4000))
  assert float(jnp.mean(1 - lams)) == pytest.approx(0.2 / 1.2, abs=0.01)
  with pytest.raises(ValueError, match="alpha must be > 0"):
    mixers.balanced_mixup(key, images, labels, alpha=0.0)


def test_cmo_pastes_the_minority_batch_and_the_label_follows_the_area():
  """CMO: CutMix with the second batch as the pasted foreground; one box for
  the batch; λ is the background (original) area after clipping."""
  images, labels = _batch(5, size=16)
  partners = _second_batch(size=16)
  mixed, info = mixers.cutmix(jax.random.key(4), images, labels,
                              partners=partners)
  pasted = np.asarray(mixed == -1.0).all(-1)
  assert (pasted == pasted[0]).all()  # one box for the whole batch
  np.testing.assert_allclose(info.lam, 1 - pasted.mean((1, 2)), rtol=1e-6)


@pytest.mark.parametrize("name", ["cutmix", "balanced_mixup", "unimix"])
def test_the_remix_rule_relabels_each_successor_mix(name):
  """A hand-built batch: majority originals (class 0, n = 600) mixed with
  minority partners (class 4, n = 6): the Remix rule gives the minority
  label (λ_y = 0) wherever the partner has more than 1 − τ of the image,
  and λ otherwise."""
  b = 16
  images = jnp.asarray(np.random.RandomState(6).rand(b, 8, 8, 3), jnp.float32)
  labels = jnp.zeros((b,), jnp.int32)
  partners = ops.Partners(jnp.zeros_like(images), jnp.full((b,), 4,
                                                           jnp.int32))
  kwargs = dict(class_counts=COUNTS) if name == "unimix" else dict(
      per_sample=True, alpha=1.0)
  _, info = mixers.get_mixer(name)(jax.random.key(8), images, labels,
                                   partners=partners, **kwargs)
  rule = label_rules.make_label_rule("remix", COUNTS, kappa=3.0, tau=0.5)
  lam = np.asarray(info.lam)
  lam_y = np.asarray(rule(info.lam, labels, info.partner_labels))
  np.testing.assert_array_equal(lam_y, np.where(lam < 0.5, 0.0, lam))
  assert (lam < 0.5).any() and (lam >= 0.5).any()
  # The reverse pairing (minority original, majority partner) gets 1.
  lam_rev = np.asarray(remix.remix_lambda(info.lam, np.full(b, 6.0),
                                          np.full(b, 600.0)))
  np.testing.assert_array_equal(lam_rev, np.where(lam > 0.5, 1.0, lam))


def test_successor_mixers_are_jittable_and_static():
  images, labels = _batch()

  @jax.jit
  def run(key, images, labels, p_images, p_labels):
    partners = ops.Partners(p_images, p_labels)
    out = [mixers.balanced_mixup(key, images, labels, partners=partners),
           mixers.unimix(key, images, labels, class_counts=COUNTS,
                         partners=partners),
           mixers.cutmix(key, images, labels, partners=partners)]
    return [(m, i.lam, i.partner_labels) for m, i in out]

  p = _second_batch()
  for mixed, lam, plabels in run(jax.random.key(0), images, labels, p.images,
                                 p.labels):
    assert mixed.shape == images.shape and lam.shape == (8,)
    np.testing.assert_array_equal(plabels, p.labels)
