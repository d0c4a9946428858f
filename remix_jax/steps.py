"""The jitted, data-parallel train and eval steps.

``make_train_step`` builds ONE pure function of ``(state, images, labels)``:

    mix (per device) → forward → per-sample loss → gradients → optax update

(with SUMix: a clean and a mixed forward pass, the label weight from λ̃ of
``config.sumix.rule`` and the uncertainty regularizer added;
:mod:`remix_jax.sumix`),

jitted once over ``jax.shard_map`` on the ``('data',)`` mesh. Each device
mixes its own shard with an rng folded by step and device index. The loss on
device d is ``Σ_{i∈d} ℓᵢ / Σ_{all i} wᵢ`` (the total label weight is a
``psum``), so the gradient of the replicated parameters — which shard_map
sums over devices — is exactly the gradient of the global-batch loss.
BatchNorm statistics are averaged with ``lax.pmean``. Metrics stay on device.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import PartitionSpec as P

from remix_jax import losses
from remix_jax import mixers
from remix_jax import remix
from remix_jax import sumix
from remix_jax.parallel import AXIS


class TrainState(NamedTuple):
  """Everything a step reads and writes; one pytree, checkpointed whole."""

  params: Any  # nnx.State of nnx.Param
  batch_stats: Any  # nnx.State of nnx.BatchStat
  opt_state: Any  # optax state
  step: jax.Array  # [] int32, optimizer steps taken
  rng: jax.Array  # [2] uint32, raw key data of the run's base key


def split_model(model: nnx.Module):
  """``(graphdef, params, batch_stats)``; the model holds nothing else."""
  graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  return graphdef, params, batch_stats


def make_optimizer(config, learning_rate_fn) -> optax.GradientTransformation:
  """SGD with momentum and L2 weight decay added to the gradient (as
  ``torch.optim.SGD(weight_decay=…)``, on every parameter)."""
  return optax.chain(
      optax.add_decayed_weights(config.weight_decay),
      optax.sgd(learning_rate_fn, momentum=config.momentum or None,
                nesterov=config.nesterov))


def make_mix_fn(config, num_mix_layers: int) -> Callable:
  """``(rng, images, labels) -> (images, MixInfo-like, ManifoldInfo|None)``."""
  if config.mixer == "none":
    def no_mix(rng, images, labels):
      del rng, labels
      b = images.shape[0]
      info = mixers.MixInfo(jnp.arange(b, dtype=jnp.int32),
                            jnp.ones((b,), jnp.float32))
      return images, info, None
    return no_mix
  mixer = mixers.get_mixer(config.mixer)
  kwargs = dict(alpha=config.mix_alpha, per_sample=config.mix_per_sample)
  if config.mixer == "manifold_mixup":
    def manifold(rng, images, labels):
      images, info = mixer(rng, images, labels, num_layers=num_mix_layers,
                           **kwargs)
      return images, info, info
    return manifold

  def input_mix(rng, images, labels):
    images, info = mixer(rng, images, labels, **kwargs)
    return images, info, None
  return input_mix


def make_per_label_loss(config, class_counts) -> Callable:
  """``(logits, labels) -> [B]`` for ``config.loss``."""
  if config.loss == "ldam":
    margins = jnp.asarray(losses.ldam_margins(class_counts,
                                              config.ldam_max_margin))
    return lambda z, y: losses.ldam_loss(z, y, margins=margins,
                                         scale=config.ldam_scale)
  if config.loss == "focal":
    return lambda z, y: losses.focal_loss(z, y, gamma=config.focal_gamma)
  return lambda z, y: losses.cross_entropy(
      z, y, label_smoothing=config.label_smoothing)


def make_class_weight_fn(config, class_counts) -> Callable:
  """``epoch -> [C]`` class weights: ones, class-balanced (RW), or ones until
  ``config.rebalance_epoch`` and class-balanced after (DRW)."""
  num_classes = len(class_counts)
  ones = jnp.ones((num_classes,), jnp.float32)
  if config.reweight == "none":
    return lambda epoch: ones
  balanced = jnp.asarray(losses.class_balanced_weights(class_counts,
                                                       config.cb_beta))
  if config.reweight == "rw":
    return lambda epoch: balanced
  return lambda epoch: jnp.where(epoch >= config.rebalance_epoch, balanced,
                                 ones)


def make_label_weight_fn(config, class_counts) -> Callable:
  """``(ratio, labels_a, labels_b) -> λ_y [B]``, the weight of ``labels_a``.

  ``ratio`` is the mixer's λ (or SUMix's λ̃); the label rule (plain or Remix)
  is applied per sample, then, with SUMix, its reduction
  (:func:`remix_jax.sumix.reduce_ratio`). No gradient flows through λ_y.
  """
  label_rule = remix.make_label_rule(config.label_rule, class_counts,
                                     kappa=config.remix_kappa,
                                     tau=config.remix_tau)

  def label_weight(ratio, labels_a, labels_b):
    lam_y = label_rule(ratio, labels_a, labels_b)
    if config.sumix.enabled:
      lam_y = sumix.reduce_ratio(lam_y, config.sumix.reduction)
    return jax.lax.stop_gradient(lam_y)

  return label_weight


def make_sumix_ratio_fn(config) -> Callable:
  """``(similarity, logits_clean, logits_mixed, labels, partner, lam) ->
  (λ̃, Distances)`` for ``config.sumix.rule`` (and its temperature); see
  :func:`remix_jax.sumix.make_ratio_fn`."""
  return sumix.make_ratio_fn(config.sumix.rule,
                             temperature=config.sumix.temperature)


def make_train_step(config, graphdef, tx, learning_rate_fn, mesh, *,
                    class_counts, steps_per_epoch: int, num_mix_layers: int):
  """The jitted data-parallel train step ``(state, images, labels) ->
  (state, metrics)``; ``state`` is donated."""
  mix = make_mix_fn(config, num_mix_layers)
  label_weight = make_label_weight_fn(config, class_counts)
  per_label_loss = make_per_label_loss(config, class_counts)
  class_weights = make_class_weight_fn(config, np.asarray(class_counts))

  use_sumix = config.sumix.enabled
  sumix_ratio = make_sumix_ratio_fn(config) if use_sumix else None

  def local_step(state: TrainState, images, labels):
    key = jax.random.wrap_key_data(state.rng)
    key = jax.random.fold_in(jax.random.fold_in(key, state.step),
                             jax.lax.axis_index(AXIS))
    clean = images
    images, info, manifold = mix(key, images, labels)
    labels_b = labels[info.partner]
    weights = class_weights(state.step // steps_per_epoch)
    w_a, w_b = weights[labels], weights[labels_b]
    global_batch = jax.lax.psum(labels.shape[0], AXIS)

    def loss_fn(params):
      # copy=True: fresh Variables owned by this trace, so BatchNorm may
      # update its statistics in place.
      model = nnx.merge(graphdef, params, state.batch_stats, copy=True)
      out_clean = model(clean) if use_sumix else None  # updates BN stats too
      out = model(images, mix=manifold)
      ratio = info.lam
      if use_sumix:
        ratio, distances = sumix_ratio(model.similarity, out_clean.logits,
                                       out.logits, labels, info.partner,
                                       info.lam)
      lam_y = label_weight(ratio, labels, labels_b)
      total_weight = jax.lax.psum(
          jnp.sum(lam_y * w_a + (1.0 - lam_y) * w_b), AXIS)
      per_sample = losses.mix_losses(per_label_loss(out.logits, labels),
                                     per_label_loss(out.logits, labels_b),
                                     lam_y, w_a, w_b)
      loss = jnp.sum(per_sample) / total_weight
      extra = {}
      if use_sumix:
        reg = sumix.uncertainty_regularizer(
            distances, model.uncertainty(out_clean.features, out_clean.logits),
            model.uncertainty(out.features, out.logits), labels, info.partner,
            info.lam)
        extra["sumix_regularizer"] = jnp.sum(reg) / global_batch
        loss = loss + config.sumix.gamma * extra["sumix_regularizer"]
      aux = (nnx.state(model, nnx.BatchStat), out.logits, lam_y, ratio, extra)
      return loss, aux

    (loss, (batch_stats, logits, lam_y, ratio, extra)), grads = (
        jax.value_and_grad(loss_fn, has_aux=True)(state.params))
    batch_stats = jax.lax.pmean(batch_stats, AXIS)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    dominant = jnp.where(lam_y >= 0.5, labels, labels_b)
    metrics = {
        "loss": jax.lax.psum(loss, AXIS),
        "train_accuracy": jax.lax.pmean(
            jnp.mean(jnp.argmax(logits, -1) == dominant), AXIS),
        "mix_ratio": jax.lax.pmean(jnp.mean(info.lam), AXIS),
        "label_weight": jax.lax.pmean(jnp.mean(lam_y), AXIS),
        "learning_rate": learning_rate_fn(state.step),
        **{k: jax.lax.psum(v, AXIS) for k, v in extra.items()},
    }
    if use_sumix:
      metrics["sumix_ratio"] = jax.lax.pmean(jnp.mean(ratio), AXIS)
      metrics["sumix_label_flip"] = jax.lax.pmean(
          sumix.label_flip_rate(info.lam, ratio), AXIS)
    new_state = TrainState(params, batch_stats, opt_state, state.step + 1,
                           state.rng)
    return new_state, metrics

  step = jax.shard_map(local_step, mesh=mesh,
                       in_specs=(P(), P(AXIS), P(AXIS)), out_specs=(P(), P()))
  return jax.jit(step, donate_argnums=(0,))


def make_eval_step(graphdef_eval, mesh, num_classes: int):
  """The jitted eval step ``(state, images, labels, mask) -> per-class
  [C] counts (correct top-1, correct top-5, total)``, padding masked out."""
  k = min(5, num_classes)

  def local_eval(state: TrainState, images, labels, mask):
    model = nnx.merge(graphdef_eval, state.params, state.batch_stats)
    logits = model(images).logits
    onehot = jax.nn.one_hot(labels, num_classes) * mask[:, None]
    top1 = jnp.argmax(logits, -1) == labels
    _, topk = jax.lax.top_k(logits, k)
    in_topk = jnp.any(topk == labels[:, None], axis=-1)
    counts = [jnp.sum(onehot * c[:, None], 0) for c in (top1, in_topk)]
    counts.append(jnp.sum(onehot, 0))
    return tuple(jax.lax.psum(c, AXIS) for c in counts)

  step = jax.shard_map(local_eval, mesh=mesh,
                       in_specs=(P(), P(AXIS), P(AXIS), P(AXIS)),
                       out_specs=(P(), P(), P()))
  return jax.jit(step)
