"""The training objective, built once from the config and traced in the step.

:func:`make_objective` reads the config fields of the objective (each once)
and composes its parts with :func:`build_objective`:

* the mixer (:func:`make_mix_fn`; :mod:`remix_jax.mixers`), which gives the
  mixed batch ``x̃``, the partners' labels ``y_b`` and the per-sample ratio
  ``λ``; the partners are a permutation of the shard, UniMix's
  prior-weighted rows of it, or the step's second batch
  (``config.partners``), and ``config.mix_prob`` leaves a batch unmixed
  with probability ``1 − p`` (CMO);
* the label rule (:mod:`remix_jax.label_rules`): plain ``λ_y = λ`` or Remix
  (Chou et al., "Remix: Rebalanced Mixup", ECCV Workshops 2020, Eq. 10);
* the per-label loss ``L`` (:func:`make_per_label_loss`): cross-entropy
  (label smoothing), LDAM, focal, or the logit-adjusted cross-entropy
  ``CE(z + τ·log π, y)`` (:mod:`remix_jax.losses`);
* the class weights ``w`` (:func:`make_class_weight_fn`): ones, RW, or DRW
  from ``config.rebalance_epoch`` (Cui et al. CVPR 2019; Cao et al. NeurIPS
  2019);
* optionally SUMix (Qin et al., "SUMix: Mixup with Semantic and Uncertain
  Information", ECCV 2024, arXiv:2407.07805; :mod:`remix_jax.sumix`): its
  ratio rule, reduction and regularizer weight ``γ``.

The product is ``objective(graphdef, params, batch_stats, images, labels,
key, step, partner_batch=None) -> (loss, (batch_stats, metrics))``, called
by the train step of :mod:`remix_jax.steps` inside ``jax.shard_map`` on one
device's shard ``d`` of the global batch (``y_b`` the partners' labels,
``z̃ = f(x̃)``)::

    w      = class_weights(step // steps_per_epoch)
    λ_y,ᵢ  = sg rule(λᵢ, yᵢ, y_b,ᵢ)
    ℓᵢ     = λ_y,ᵢ·w_{yᵢ}·L(z̃ᵢ, yᵢ) + (1 − λ_y,ᵢ)·w_{y_b,ᵢ}·L(z̃ᵢ, y_b,ᵢ)
    loss_d = Σ_{i∈d} ℓᵢ / Σ_{all i} (λ_y,ᵢ·w_{yᵢ} + (1 − λ_y,ᵢ)·w_{y_b,ᵢ})

With SUMix a clean pass ``z = f(x)`` runs first (both passes update the
BatchNorm statistics, as released); the model's similarity head gives the
semantic distances ``A_a``, ``A_b`` and the ratio rule ``λ̃`` (released or
``'follow'``), which takes the place of ``λ`` in the label rule, followed by
the reduction (``λ_y = sg reduce(rule(λ̃, y, y_b))``), and the uncertainty
regularizer is added (:func:`remix_jax.sumix.sumix_objective`)::

    loss_d += γ · Σ_{i∈d} Rᵢ / B_global,
    Rᵢ = λᵢ·CE(e^(−(A_a + u_a + u_m)), yᵢ) + (1 − λᵢ)·CE(e^(−(A_b + u_a[π] +
         u_m)), y_b,ᵢ)      (the base mixer's λ, not λ̃)

The denominators are totals over all devices (``psum``), so the losses, and
the gradients, of the devices sum to those of the global batch. The metrics
come back already reduced over the devices.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from remix_jax import class_balance
from remix_jax import label_rules
from remix_jax import losses
from remix_jax import mixers
from remix_jax import sumix
from remix_jax.parallel import AXIS

#: ``objective(graphdef, params, batch_stats, images, labels, key, step) ->
#: (loss, (batch_stats, metrics))``; see the module docstring.
Objective = Callable


class SUMixPart(NamedTuple):
  """SUMix's part of the objective.

  Attributes:
    ratio: ``(similarity, logits_clean, logits_mixed, labels, partner, lam)
      -> (λ̃, Distances)`` (:func:`remix_jax.sumix.make_ratio_fn`).
    reduction: ``'official'`` or ``'per_sample'``
      (:func:`remix_jax.sumix.reduce_ratio`).
    gamma: ``γ``, the weight of the uncertainty regularizer.
  """

  ratio: Callable
  reduction: str
  gamma: float


#: ``config.mixer``: no mixing, or one of :data:`remix_jax.mixers.MIXERS`.
MIXER_CHOICES = ("none",) + tuple(mixers.MIXERS)

#: ``config.partners``: where each sample's partner comes from. A random
#: permutation of the device's shard; rows of the GLOBAL batch drawn ∝ n_y^τ
#: with replacement (UniMix's pairing, τ = ``config.unimix_tau``); or the same
#: position of the step's second batch, drawn by the data pipeline with
#: class probability ∝ n_c^(1 − r) (r = ``config.data.partner_power``; CMO,
#: Balanced-MixUp).
PARTNER_CHOICES = ("permutation", "prior", "sampler")


def uses_partner_batch(config) -> bool:
  """Whether the run draws a second batch (``config.partners='sampler'``)."""
  return config.partners == "sampler"


def no_mix(rng, images, labels, partners=None):
  """The identity "mixer": every sample is its own partner with λ = 1."""
  del rng, partners
  b = images.shape[0]
  return images, mixers.MixInfo(jnp.arange(b, dtype=jnp.int32), labels,
                                jnp.ones((b,), jnp.float32))


def make_mixer(config, class_counts, num_mix_layers: int = 1) -> Callable:
  """``(rng, images, labels, partners) -> (images, info)``: the mixer of
  ``config.mixer`` with its options (``mix_alpha``, ``mix_per_sample``)
  bound."""
  name = config.mixer
  if name == "none":
    return no_mix
  kwargs = dict(alpha=config.mix_alpha)
  if name == "unimix":
    kwargs["class_counts"] = np.asarray(class_counts)
  else:
    kwargs["per_sample"] = config.mix_per_sample
  if name == "manifold_mixup":
    kwargs["num_layers"] = num_mix_layers
  mixer = mixers.get_mixer(name)
  return lambda rng, images, labels, partners: mixer(
      rng, images, labels, partners=partners, **kwargs)


def draws_per_batch(config) -> bool:
  """Whether the mixer draws its randomness once per batch (so that with a
  second batch every device can draw the same λ and box)."""
  return not (config.mix_per_sample or config.mixer == "unimix")


def mix_window(config, steps_per_epoch: int) -> Optional[Callable]:
  """``step -> bool``, whether ``config.mix_skip_epochs = (first, last)``
  lets the step's epoch mix: not the first ``first`` epochs nor the last
  ``last`` of ``config.num_epochs``; ``None`` when every epoch mixes."""
  first, last = (int(n) for n in config.mix_skip_epochs)
  if not first and not last:
    return None
  stop = config.num_epochs - last
  return lambda step: (step // steps_per_epoch >= first) & (
      step // steps_per_epoch < stop)


def keep_mix_where(on, images, mixed, info):
  """The mixed batch where ``on`` (a traced bool for the batch), else the
  clean batch with λ = 1 and the mask all ones."""
  info = info._replace(lam=jnp.where(on, info.lam, jnp.ones_like(info.lam)))
  if getattr(info, "mask", None) is not None:
    info = info._replace(mask=jnp.where(on, info.mask, 1.0))
  return jnp.where(on, mixed, images), info


def mix_global_batch(mixer: Callable, key, images, labels, class_counts,
                     tau: float, axis_name: str = AXIS):
  """UniMix's pairing over the global batch, inside ``shard_map``: every
  device gathers the global batch, draws the same partners
  (:func:`remix_jax.mixers.prior_partners` with ``key``) and the same
  mix, and keeps its own rows, so the step does not depend on how the
  global batch is split over the devices.

  Args:
    mixer: ``(rng, images, labels, partners) -> (images, MixInfo)``
      (:func:`make_mixer`).
    key: the step's key, the same on every device.
    images: ``[b, H, W, C]`` this device's shard.
    labels: ``[b]`` its labels.
    class_counts: ``[C]`` training-set counts ``n_c``.
    tau: the pairing's exponent τ (``config.unimix_tau``).
    axis_name: the data axis of the enclosing ``shard_map``.

  Returns:
    ``(mixed, info)`` of this device's rows; ``info.partner`` is ``None``
    (the partner may sit on another device).

  Reference:
    Z. Xu, Z. Chai, C. Yuan, NeurIPS 2021 (UniMix), arXiv:2111.03874.
  """
  all_images = jax.lax.all_gather(images, axis_name, tiled=True)
  all_labels = jax.lax.all_gather(labels, axis_name, tiled=True)
  # The gathered batch is typed as varying over the axis; a draw must not
  # mix that with the replicated key, so the key is typed varying too (its
  # value, and so every device's draws, stay the same).
  key = jax.lax.pcast(key, axis_name, to="varying")
  k_pair, rng = jax.random.split(key)
  index = mixers.prior_partners(k_pair, all_labels, class_counts, tau)
  mixed, info = mixer(rng, all_images, all_labels,
                      mixers.batch_partners(all_images, all_labels, index))
  b = images.shape[0]
  start = jax.lax.axis_index(axis_name) * b
  rows = lambda x: jax.lax.dynamic_slice_in_dim(x, start, b)
  return rows(mixed), jax.tree.map(rows, info._replace(partner=None))


def make_mix_fn(config, num_mix_layers: int, class_counts,
                steps_per_epoch: int = 1, axis_name: str = AXIS) -> Callable:
  """``(key, device_key, images, labels, partner_batch, step) -> (images,
  MixInfo-like, ManifoldInfo|None)`` for ``config.mixer`` with
  ``config.partners`` (:data:`PARTNER_CHOICES`), ``config.mix_prob`` (one
  coin per batch) and ``config.mix_skip_epochs`` (:func:`mix_window`).

  ``key`` is the step's key, the same on every device; ``device_key`` has
  the device folded in. A permutation and per-sample draws use
  ``device_key`` (each device mixes its own shard). UniMix's pairing
  (``'prior'``) mixes the global batch with ``key``
  (:func:`mix_global_batch`; traced inside ``shard_map`` over
  ``axis_name``). With a second batch and one draw per batch, λ, the box
  and the coin of ``mix_prob`` come from ``key``. In both cases every device
  draws the same ones, so the step does not depend on how the global batch
  is split over the devices.
  """
  mixer = make_mixer(config, class_counts, num_mix_layers)
  counts = np.asarray(class_counts)
  source, tau, prob = config.partners, config.unimix_tau, config.mix_prob
  shared = draws_per_batch(config)
  manifold = config.mixer == "manifold_mixup"
  window = mix_window(config, steps_per_epoch)

  def mix(key, device_key, images, labels, partner_batch=None, step=0):
    if source == "prior":
      rng = key
      mixed, info = mix_global_batch(mixer, key, images, labels, counts, tau,
                                     axis_name)
    else:
      partners, rng = None, device_key
      if source == "sampler":
        partners, rng = partner_batch, key if shared else device_key
      mixed, info = mixer(rng, images, labels, partners)
    on = True
    if prob < 1.0:
      on = jax.random.bernoulli(jax.random.fold_in(rng, 1), prob)
    if window is not None:
      on = window(step) & on
    if on is not True:
      mixed, info = keep_mix_where(on, images, mixed, info)
    return mixed, info, info if manifold else None

  return mix


#: ``config.loss``: cross-entropy, LDAM (Cao et al. 2019), focal, or the
#: logit-adjusted cross-entropy (Menon et al. 2021; Balanced Softmax at
#: ``config.la_tau`` = 1).
LOSSES = ("ce", "ldam", "focal", "logit_adjusted")


def make_per_label_loss(config, class_counts) -> Callable:
  """``(logits, labels) -> [B]`` for ``config.loss`` (and its options)."""
  name = config.loss
  if name == "ldam":
    margins = jnp.asarray(losses.ldam_margins(class_counts,
                                              config.ldam_max_margin))
    scale = config.ldam_scale
    return lambda z, y: losses.ldam_loss(z, y, margins=margins, scale=scale)
  if name == "focal":
    gamma = config.focal_gamma
    return lambda z, y: losses.focal_loss(z, y, gamma=gamma)
  label_smoothing = config.label_smoothing
  if name == "logit_adjusted":
    log_prior = jnp.asarray(losses.log_prior(class_counts))
    tau = config.la_tau
    return lambda z, y: losses.logit_adjusted_cross_entropy(
        z, y, log_prior=log_prior, tau=tau, label_smoothing=label_smoothing)
  return lambda z, y: losses.cross_entropy(z, y,
                                           label_smoothing=label_smoothing)


def make_rebalance(config) -> class_balance.Rebalance:
  """When re-weighting and re-sampling are on: ``config.reweight``,
  ``config.resample`` and ``config.rebalance_epoch``."""
  return class_balance.Rebalance(config.reweight, config.resample,
                                 config.rebalance_epoch)


def make_class_weight_fn(config, class_counts) -> Callable:
  """``epoch -> [C]`` class weights: ones, class-balanced (RW), or ones until
  ``config.rebalance_epoch`` and class-balanced after (DRW)."""
  class_counts = np.asarray(class_counts)
  ones = jnp.ones((len(class_counts),), jnp.float32)
  rebalance = make_rebalance(config)
  if rebalance.reweight == "none":
    return lambda epoch: ones
  balanced = jnp.asarray(losses.class_balanced_weights(class_counts,
                                                       config.cb_beta))
  return lambda epoch: jnp.where(rebalance.reweights(epoch), balanced, ones)


def make_sumix_ratio_fn(config) -> Callable:
  """``(similarity, logits_clean, logits_mixed, labels, partner, lam) ->
  (λ̃, Distances)`` for ``config.sumix.rule`` (and its temperature); see
  :func:`remix_jax.sumix.make_ratio_fn`."""
  return sumix.make_ratio_fn(config.sumix.rule,
                             temperature=config.sumix.temperature)


def make_sumix_part(config) -> Optional[SUMixPart]:
  """The :class:`SUMixPart` of ``config.sumix``, or ``None`` when it is not
  enabled."""
  cfg = config.sumix
  if not cfg.enabled:
    return None
  return SUMixPart(make_sumix_ratio_fn(config), cfg.reduction, cfg.gamma)


def label_weight_fn(label_rule: label_rules.LabelRule,
                    reduction: Optional[str] = None) -> Callable:
  """``(ratio, labels_a, labels_b) -> λ_y [B]``, the weight of ``labels_a``.

  ``ratio`` is the mixer's λ (or SUMix's λ̃); ``label_rule`` is applied per
  sample, then, with SUMix, its ``reduction``
  (:func:`remix_jax.sumix.reduce_ratio`). No gradient flows through λ_y.
  """

  def label_weight(ratio, labels_a, labels_b):
    lam_y = label_rule(ratio, labels_a, labels_b)
    if reduction is not None:
      lam_y = sumix.reduce_ratio(lam_y, reduction)
    return jax.lax.stop_gradient(lam_y)

  return label_weight


def make_label_rule(config, class_counts) -> label_rules.LabelRule:
  """The label rule of ``config.label_rule`` (with Remix's κ and τ)."""
  return label_rules.make_label_rule(config.label_rule, class_counts,
                                     kappa=config.remix_kappa,
                                     tau=config.remix_tau)


def make_label_weight_fn(config, class_counts) -> Callable:
  """:func:`label_weight_fn` for ``config``: its label rule, and SUMix's
  reduction when ``config.sumix.enabled``."""
  part = make_sumix_part(config)
  return label_weight_fn(make_label_rule(config, class_counts),
                         part.reduction if part else None)


def make_objective(config, class_counts, *, steps_per_epoch: int,
                   num_mix_layers: int) -> Objective:
  """The training objective of ``config``; see the module docstring.

  Args:
    config: the run's config (``configs/default.py``).
    class_counts: ``[C]`` training-set counts (Remix, RW/DRW, LDAM).
    steps_per_epoch: optimizer steps per epoch (the DRW schedule).
    num_mix_layers: the model's Manifold Mixup layers.

  Returns:
    ``objective(graphdef, params, batch_stats, images, labels, key, step)``.
  """
  part = make_sumix_part(config)
  return build_objective(
      mix=make_mix_fn(config, num_mix_layers, class_counts, steps_per_epoch),
      label_weight=label_weight_fn(make_label_rule(config, class_counts),
                                   part.reduction if part else None),
      per_label_loss=make_per_label_loss(config, class_counts),
      class_weights=make_class_weight_fn(config, class_counts),
      sumix_part=part, steps_per_epoch=steps_per_epoch)


def build_objective(*, mix: Callable, label_weight: Callable,
                    per_label_loss: Callable, class_weights: Callable,
                    sumix_part: Optional[SUMixPart], steps_per_epoch: int,
                    axis_name: str = AXIS) -> Objective:
  """The objective from its parts (no config).

  Args:
    mix: ``(key, device_key, images, labels, partner_batch, step) ->
      (images, MixInfo, ManifoldInfo|None)`` (:func:`make_mix_fn`).
    label_weight: ``(ratio, labels_a, labels_b) -> λ_y``
      (:func:`label_weight_fn`; with SUMix it includes the reduction).
    per_label_loss: ``(logits, labels) -> [B]``.
    class_weights: ``epoch -> [C]``.
    sumix_part: :class:`SUMixPart`, or ``None`` for one forward pass. With
      it the model must carry SUMix's heads
      (:class:`remix_jax.models.sumix_heads.SUMixModel`).
    steps_per_epoch: optimizer steps per epoch.
    axis_name: the data axis of the ``shard_map`` the objective is traced in.

  Returns:
    ``objective(graphdef, params, batch_stats, images, labels, key, step,
    partner_batch=None) -> (loss, (batch_stats, metrics))``, with ``key``
    the step's key (the same on every device; the device is folded in here)
    and ``partner_batch`` the shard's :class:`remix_jax.mixers.Partners`
    from the second stream (or ``None``): this device's share of the
    global-batch loss, its updated (not yet averaged) BatchNorm statistics,
    and the metrics ``train_accuracy`` (against the label of weight ≥ ½),
    ``mix_ratio``, ``label_weight`` and, with SUMix, ``sumix_regularizer``,
    ``sumix_ratio`` and ``sumix_label_flip``, reduced over the devices.
  """
  psum = lambda x: jax.lax.psum(x, axis_name)
  pmean = lambda x: jax.lax.pmean(x, axis_name)

  def objective(graphdef, params, batch_stats, images, labels, key, step,
                partner_batch=None):
    clean = images
    device_key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    images, info, manifold = mix(key, device_key, images, labels,
                                 partner_batch, step)
    labels_b = info.partner_labels
    weights = class_weights(step // steps_per_epoch)
    w_a, w_b = weights[labels], weights[labels_b]
    # copy=True: fresh Variables owned by this trace, so BatchNorm may
    # update its statistics in place.
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    metrics = {}
    if sumix_part is None:
      out = model(images, mix=manifold)
      lam_y = label_weight(info.lam, labels, labels_b)
      loss = losses.mixed_label_loss(per_label_loss, out.logits, labels,
                                     labels_b, lam_y, w_a, w_b,
                                     axis_name=axis_name)
    else:
      out_clean = model(clean)  # updates the BatchNorm statistics too
      out = model(images, mix=manifold)
      ratio, distances = sumix_part.ratio(model.similarity, out_clean.logits,
                                          out.logits, labels, info.partner,
                                          info.lam)
      lam_y = label_weight(ratio, labels, labels_b)
      loss, regularizer = sumix.sumix_objective(
          out.logits, model.uncertainty(out_clean.features, out_clean.logits),
          model.uncertainty(out.features, out.logits), distances, labels,
          info.partner, info.lam, lam_y, gamma=sumix_part.gamma,
          per_label_loss=per_label_loss, weight_a=w_a, weight_b=w_b,
          axis_name=axis_name)
      metrics["sumix_regularizer"] = psum(regularizer)
      metrics["sumix_ratio"] = pmean(jnp.mean(ratio))
      metrics["sumix_label_flip"] = pmean(sumix.label_flip_rate(info.lam,
                                                                ratio))
    dominant = jnp.where(lam_y >= 0.5, labels, labels_b)
    metrics["train_accuracy"] = pmean(
        jnp.mean(jnp.argmax(out.logits, -1) == dominant))
    metrics["mix_ratio"] = pmean(jnp.mean(info.lam))
    metrics["label_weight"] = pmean(jnp.mean(lam_y))
    return loss, (nnx.state(model, nnx.BatchStat), metrics)

  return objective
