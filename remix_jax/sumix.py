"""SUMix: a mix ratio recomputed from the network's predictions, and an
uncertainty regularizer (Qin et al., "SUMix: Mixup with Semantic and
Uncertain Information", ECCV 2024, arXiv:2407.07805).

Notation as in the released code (``ClsUncertainMixupHead.IN_loss``): a batch
of clean images ``x_a`` with labels ``y_a``, partners ``π`` (``y_b = y_a[π]``),
the base mixer's area-corrected ratio ``λ`` (per sample), clean logits ``z_a``
and mixed logits ``z_m``; ``sg`` is stop-gradient and ``s`` a scale (the
per-device batch size in the released code).

1. ``p_a = softmax(sg z_a)``, ``p_m = softmax(sg z_m)``, ``p_b = p_a[π]``.
2. ``p̂_a = p_a`` with column ``y_b`` zeroed, ``p̂_b = p_b`` with column ``y_a``
   zeroed (per row).
3. ``A_a = s · ℓ2norm_row(softmax_row(p_m − p̂_a))``, ``A_b`` likewise.
4. ``w_a = exp(−A_a[y_a])``, ``w_b = exp(−A_b[y_b])`` and
   ``λ̃ = λ·w_a / (λ·w_a + (1 − λ)·w_b)``.
5. The uncertainty vectors ``u = ℓ2norm(softmax(W_u·h + b_u))`` of the clean
   and mixed pooled features give ``β_a = u_a + u_m``, ``β_b = u_a[π] + u_m``
   and ``R = λ·CE(exp(−(A_a + β_a)), y_a) + (1 − λ)·CE(exp(−(A_b + β_b)),
   y_b)`` (``exp(−(A + β))`` used as logits, the ORIGINAL λ).
6. ``L = λ̃-weighted CE(z_m; y_a, y_b) + γ·R`` (:func:`sumix_objective`,
   which the train step uses with its own per-label loss, class weights and
   label rule; :func:`sumix_loss` is the released form).

λ̃ carries no gradient (the probabilities are stop-gradient); R reaches the
network only through ``u``.

Direction of the rule (an analysis of the formula, see ``docs/sumix.md``): ``A_a``
is large on the own class when the mixed prediction of ``y_a`` stays close to
its clean prediction, so ``w_a`` is small and λ̃ moves TOWARDS the partner
whose prediction changed more; with ``s`` = batch size 100 it saturates. We
implement the rule as released and keep ``s`` a config field.

Our second rule, ``'follow'`` (:func:`follow_ratio`, not from the paper or the
released code), replaces step 4 only: λ̃ moves from the area ratio λ towards
the image whose clean prediction the mixed prediction is closer to, by a
bounded amount (see :func:`follow_ratio`). Steps 5 and 6 are unchanged.

This module holds the pure functions; the NNX heads and the wrapper model
(``UncertaintyHead``, ``SimilarityHead``, ``SUMixModel``) are in
:mod:`remix_jax.models.sumix_heads`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from remix_jax import losses
from remix_jax.models.layers import l2_normalize

REDUCTIONS = ("official", "per_sample")
#: The ratio rules: the released one and ours (:func:`follow_ratio`).
RULES = ("official", "follow")


def _zero_column(p: jax.Array, column: jax.Array) -> jax.Array:
  """``p`` with ``p[i, column[i]] = 0`` for every row ``i``."""
  return p * (1.0 - jax.nn.one_hot(column, p.shape[-1], dtype=p.dtype))


class Distances(NamedTuple):
  """The semantic distance matrices of step 3 (both ``[B, C]``, no gradient
  from the logits)."""

  a: jax.Array
  b: jax.Array


def semantic_distances(logits_clean: jax.Array, logits_mixed: jax.Array,
                       labels: jax.Array, partner: jax.Array,
                       scale) -> Distances:
  """``A_a, A_b = s · ℓ2norm_row(softmax_row(p_m − p̂))`` (steps 1–3).

  Args:
    logits_clean: ``[B, C]`` logits of the clean batch.
    logits_mixed: ``[B, C]`` logits of the mixed batch.
    labels: ``[B]`` clean labels ``y_a``.
    partner: ``[B]`` permutation ``π``.
    scale: ``s`` (float or a scalar array; the learnable scale of
      :class:`remix_jax.models.sumix_heads.SimilarityHead` passes an array
      that may carry a gradient).

  Returns:
    :class:`Distances` ``(A_a, A_b)``.
  """
  p_a = jax.nn.softmax(jax.lax.stop_gradient(logits_clean).astype(jnp.float32))
  p_m = jax.nn.softmax(jax.lax.stop_gradient(logits_mixed).astype(jnp.float32))
  labels_b = labels[partner]
  p_b = p_a[partner]  # taken before p_a is masked, as released
  p_hat_a = _zero_column(p_a, labels_b)
  p_hat_b = _zero_column(p_b, labels)
  dist = lambda p_hat: l2_normalize(jax.nn.softmax(p_m - p_hat, axis=-1),
                                    axis=-1)
  return Distances(scale * dist(p_hat_a), scale * dist(p_hat_b))


def ratio_from_distances(distances: Distances, labels: jax.Array,
                         partner: jax.Array, lam: jax.Array) -> jax.Array:
  """``λ̃ = λ·w_a / (λ·w_a + (1 − λ)·w_b)`` with ``w = exp(−A[y])`` (step 4).

  Evaluated in log space, ``λ̃ = exp(log λ − A_a[y_a] − logaddexp(log λ −
  A_a[y_a], log(1 − λ) − A_b[y_b]))``, so it stays finite when both weights
  underflow (the released code divides ``0/0`` there) and gives exactly 0 or 1
  for ``λ`` = 0 or 1.
  """
  a = losses.take_labels(distances.a, labels)
  b = losses.take_labels(distances.b, labels[partner])
  return _reweighted_ratio(lam, a, b)


def _reweighted_ratio(lam: jax.Array, energy_a: jax.Array,
                      energy_b: jax.Array) -> jax.Array:
  """``λ·e^(−E_a) / (λ·e^(−E_a) + (1 − λ)·e^(−E_b))`` in log space
  (stop-gradient; exactly 0 or 1 for ``λ`` = 0 or 1)."""
  lam = jnp.asarray(lam, jnp.float32)
  energy_a = jax.lax.stop_gradient(energy_a)
  energy_b = jax.lax.stop_gradient(energy_b)
  log_a = jnp.log(lam) - energy_a
  log_b = jnp.log1p(-lam) - energy_b
  return jnp.exp(log_a - jnp.logaddexp(log_a, log_b))


def sumix_ratio(logits_clean: jax.Array, logits_mixed: jax.Array,
                labels: jax.Array, partner: jax.Array, lam: jax.Array, *,
                scale) -> jax.Array:
  """SUMix's recomputed mix ratio λ̃ (steps 1–4 of the module docstring).

  Args:
    logits_clean: ``[B, C]`` logits of the clean batch.
    logits_mixed: ``[B, C]`` logits of the mixed batch.
    labels: ``[B]`` clean labels (``y_b = labels[partner]``).
    partner: ``[B]`` the mixer's permutation ``π``.
    lam: ``[B]`` the per-sample, area-corrected λ of the base mixer (the
      weight of sample i's own image).
    scale: ``s``; the released code uses the per-device batch size.

  Returns:
    ``[B] float32`` λ̃, the weight of ``y_a`` (stop-gradient).
  """
  distances = semantic_distances(logits_clean, logits_mixed, labels, partner,
                                 jax.lax.stop_gradient(scale))
  return ratio_from_distances(distances, labels, partner, lam)


def total_variation(p: jax.Array, q: jax.Array) -> jax.Array:
  """``TV(p, q) = ½·Σ_c |p_c − q_c|`` over the last axis, in [0, 1]."""
  return 0.5 * jnp.sum(jnp.abs(p - q), axis=-1)


def follow_ratio(logits_clean: jax.Array, logits_mixed: jax.Array,
                 partner: jax.Array, lam: jax.Array, *,
                 temperature: float) -> jax.Array:
  """Our ratio rule ``'follow'``: λ̃ leans towards the image the mixed
  prediction is semantically closer to (an extension, not the released code).

  With ``p_a = softmax(sg z_a)``, ``p_b = p_a[π]``, ``p_m = softmax(sg z_m)``
  and the total-variation distances ``d_a = TV(p_m, p_a)``, ``d_b = TV(p_m,
  p_b)``::

      logit λ̃ = logit λ + (d_b − d_a) / T
      λ̃ = λ·e^(−d_a/T) / (λ·e^(−d_a/T) + (1 − λ)·e^(−d_b/T))

  i.e. a Bayesian update of the area prior λ with the likelihood
  ``e^(−d/T)`` of "the mix shows this image", per sample.

  Properties (tested in ``tests/library/test_sumix_rule.py``):

  * direction: λ̃ increases strictly with ``d_b − d_a`` (the mixed
    prediction closer to ``a``'s clean prediction gives ``a`` more weight);
  * uninformative limit: if ``p_a = p_b`` (e.g. uniform predictions at
    initialisation, or two images of one class predicted alike) then
    ``d_a = d_b`` and λ̃ = λ exactly, whatever ``p_m``; in general, by the
    triangle inequality, ``|logit λ̃ − logit λ| ≤ TV(p_a, p_b)/T``: the
    correction is at most as large as the two clean predictions differ;
  * bounds: ``|logit λ̃ − logit λ| ≤ 1/T``, so λ̃ ∈ (0, 1) whenever
    λ ∈ (0, 1), independently of the batch size (the released rule's scale
    ``s`` = batch size saturates it); λ = 0 or 1 (nothing of one image in
    the mix) is kept exactly;
  * a mixed prediction that is the λ-mixture of the clean ones, ``p_m = λ·p_a
    + (1 − λ)·p_b``, gives ``d_b − d_a = (2λ − 1)·TV(p_a, p_b)``: λ̃ then
    sides with the larger image (no label flip) and is only sharpened;
  * limitation: a uniform ``p_m`` with ``p_a``, ``p_b`` of different
    confidence leans towards the less confident image (within the bound
    above);
  * symmetric: swapping the images (``a ↔ b``, λ ↔ 1 − λ) gives 1 − λ̃;
  * no gradient: λ̃ is stop-gradient (w.r.t. the logits and λ).

  Args:
    logits_clean: ``[B, C]`` logits of the clean batch.
    logits_mixed: ``[B, C]`` logits of the mixed batch.
    partner: ``[B]`` the mixer's permutation ``π``.
    lam: ``[B]`` the base mixer's area-corrected λ.
    temperature: ``T > 0``; the largest logit shift is ``1/T``.

  Returns:
    ``[B] float32`` λ̃, the weight of sample i's own label (stop-gradient).
  """
  p_a = jax.nn.softmax(jax.lax.stop_gradient(logits_clean).astype(jnp.float32))
  p_m = jax.nn.softmax(jax.lax.stop_gradient(logits_mixed).astype(jnp.float32))
  d_a = total_variation(p_m, p_a)
  d_b = total_variation(p_m, p_a[partner])
  return jax.lax.stop_gradient(
      _reweighted_ratio(lam, d_a / temperature, d_b / temperature))


def check_rule(rule: str, temperature: float) -> None:
  """One-line ``ValueError`` unless ``rule`` is one of :data:`RULES` and
  ``temperature > 0``."""
  if rule not in RULES:
    raise ValueError(f"rule={rule!r} is not valid; choose one of "
                     f"{', '.join(RULES)}")
  if not temperature > 0:
    raise ValueError(f"temperature={temperature} must be > 0")


def check_reduction(reduction: str) -> None:
  """One-line ``ValueError`` unless ``reduction`` is one of
  :data:`REDUCTIONS`."""
  if reduction not in REDUCTIONS:
    raise ValueError(f"reduction={reduction!r} is not valid; choose "
                     f"one of {', '.join(REDUCTIONS)}")


def make_ratio_fn(rule: str, *, temperature: float) -> Callable:
  """``(similarity, logits_clean, logits_mixed, labels, partner, lam) ->
  (λ̃, Distances)`` for ``rule``.

  ``similarity`` is the model's
  :class:`remix_jax.models.sumix_heads.SimilarityHead`; its distances feed
  the uncertainty regularizer under both rules, so the rules differ only in
  λ̃: ``'official'`` (released, :func:`ratio_from_distances`) or
  ``'follow'`` (ours, :func:`follow_ratio` with ``temperature``).
  Raises a one-line ``ValueError`` naming the rules (or for ``T <= 0``).
  """
  check_rule(rule, temperature)

  def ratio_fn(similarity, logits_clean, logits_mixed, labels, partner, lam):
    released, distances = similarity(logits_clean, logits_mixed, labels,
                                     partner, lam)
    if rule == "official":
      return released, distances
    return follow_ratio(logits_clean, logits_mixed, partner, lam,
                        temperature=temperature), distances

  return ratio_fn


def label_flip_rate(lam: jax.Array, lam_tilde: jax.Array) -> jax.Array:
  """The fraction of samples whose majority label λ̃ gives to the other image
  than the mixer's area ratio does: ``mean_i[(λ̃_i ≥ ½) ≠ (λ_i ≥ ½)]``.

  A diagnostic of the rule's direction: 0 when λ̃ always sides with the image
  that fills more of the mix, 1 when it always sides with the smaller one.
  The train step logs it as ``sumix_label_flip``.

  Args:
    lam: ``[B]`` the base mixer's λ.
    lam_tilde: ``[B]`` SUMix's λ̃ (:func:`sumix_ratio`).

  Returns:
    A scalar in [0, 1].
  """
  flipped = (jnp.asarray(lam_tilde) >= 0.5) != (jnp.asarray(lam) >= 0.5)
  return jnp.mean(flipped.astype(jnp.float32))


def uncertainty_regularizer(distances: Distances, u_clean: jax.Array,
                            u_mixed: jax.Array, labels: jax.Array,
                            partner: jax.Array, lam: jax.Array) -> jax.Array:
  """Per-sample uncertainty term ``R_i`` (step 5).

  ``R_i = λ_i·CE(exp(−(A_a + β_a)), y_a) + (1 − λ_i)·CE(exp(−(A_b + β_b)),
  y_b)`` with ``β_a = u_clean + u_mixed`` and ``β_b = u_clean[π] + u_mixed``.
  The batch mean of ``R_i`` is the released ``R`` (its λ is one per batch).
  ``A`` carries no gradient from the logits; ``u`` does.

  Args:
    distances: :class:`Distances` from :func:`semantic_distances`.
    u_clean: ``[B, C]`` uncertainty vectors of the clean batch.
    u_mixed: ``[B, C]`` uncertainty vectors of the mixed batch.
    labels: ``[B]`` clean labels.
    partner: ``[B]`` permutation.
    lam: ``[B]`` the base mixer's λ (not λ̃).

  Returns:
    ``[B] float32``.
  """
  u_clean = u_clean.astype(jnp.float32)
  u_mixed = u_mixed.astype(jnp.float32)
  lam = jnp.asarray(lam, jnp.float32)
  s_a = jnp.exp(-(distances.a + u_clean + u_mixed))
  s_b = jnp.exp(-(distances.b + u_clean[partner] + u_mixed))
  return (lam * losses.cross_entropy(s_a, labels) +
          (1.0 - lam) * losses.cross_entropy(s_b, labels[partner]))


def reduce_ratio(lam_y: jax.Array, reduction: str) -> jax.Array:
  """The per-sample label weight the loss uses.

  ``'per_sample'`` keeps ``λ̃_i``. ``'official'`` replaces every ``λ̃_i`` by the
  (per-device) batch mean: the released loss is ``mean_i[λ̃_i·CE̅_a + (1 −
  λ̃_i)·CE̅_b]`` over batch-mean CEs, which equals ``λ̄·CE̅_a + (1 − λ̄)·CE̅_b``
  — the same loss as every sample weighted by ``λ̄``.
  """
  check_reduction(reduction)
  if reduction == "per_sample":
    return lam_y
  return jnp.broadcast_to(jnp.mean(lam_y), lam_y.shape)


class SUMixLoss(NamedTuple):
  """The value of :func:`sumix_objective`: ``L`` and its ``R̄`` (scalars)."""

  loss: jax.Array
  regularizer: jax.Array


def sumix_objective(logits_mixed: jax.Array, u_clean: jax.Array,
                    u_mixed: jax.Array, distances: Distances,
                    labels: jax.Array, partner: jax.Array, lam: jax.Array,
                    lam_y: jax.Array, *, gamma: float,
                    per_label_loss: Callable = losses.cross_entropy,
                    weight_a: jax.Array | float = 1.0,
                    weight_b: jax.Array | float = 1.0,
                    axis_name: str | None = None) -> SUMixLoss:
  """The SUMix objective from the two passes (step 6), as the train step
  computes it.

  ``L = Σᵢ [λ_y,ᵢ·w_a,ᵢ·ℓ(z_m,ᵢ, y_a,ᵢ) + (1 − λ_y,ᵢ)·w_b,ᵢ·ℓ(z_m,ᵢ, y_b,ᵢ)] /
  Σᵢ (λ_y,ᵢ·w_a,ᵢ + (1 − λ_y,ᵢ)·w_b,ᵢ) + γ·R̄`` with ``R̄ = (1/B)·Σᵢ Rᵢ``
  (:func:`uncertainty_regularizer`). As released, ``ℓ`` is the
  cross-entropy, ``w ≡ 1`` and ``λ_y = reduce_ratio(λ̃)`` (:func:`sumix_loss`);
  the trainer also passes its per-label loss (CE, LDAM, focal), class
  weights (RW/DRW) and a label rule applied to λ̃ before the reduction.

  Args:
    logits_mixed: ``[B, C]`` logits of the mixed pass ``z_m``.
    u_clean, u_mixed: ``[B, C]`` uncertainty vectors of the two passes.
    distances: :class:`Distances` from :func:`semantic_distances`.
    labels: ``[B]`` clean labels ``y_a``.
    partner: ``[B]`` permutation ``π``.
    lam: ``[B]`` the base mixer's λ (the regularizer's weight, not λ̃).
    lam_y: ``[B]`` the label weight of ``y_a`` (from λ̃).
    gamma: ``γ``.
    per_label_loss: ``(logits, labels) -> [B]``.
    weight_a, weight_b: class weights of ``y_a`` and ``y_b`` (``[B]`` or
      scalars).
    axis_name: inside ``shard_map``/``pmap``, the data axis: both terms are
      then divided by their global-batch totals (:func:`losses.weighted_mean`,
      :func:`losses.global_mean`), so the per-device values sum to ``L``.

  Returns:
    :class:`SUMixLoss` ``(L, R̄)``.
  """
  label_loss = losses.mixed_label_loss(
      per_label_loss, logits_mixed, labels, labels[partner], lam_y, weight_a,
      weight_b, axis_name=axis_name)
  regularizer = losses.global_mean(
      uncertainty_regularizer(distances, u_clean, u_mixed, labels, partner,
                              lam), axis_name=axis_name)
  return SUMixLoss(label_loss + gamma * regularizer, regularizer)


def sumix_loss(logits_clean: jax.Array, logits_mixed: jax.Array,
               u_clean: jax.Array, u_mixed: jax.Array, labels: jax.Array,
               partner: jax.Array, lam: jax.Array, *, scale, gamma: float,
               reduction: str = "official") -> jax.Array:
  """The whole released SUMix objective for a drop-in train step (steps 1–6).

  ``L = mean_i[λ̃'_i·CE(z_m, y_a) + (1 − λ̃'_i)·CE(z_m, y_b)] + γ·mean_i R_i``
  with ``λ̃' = reduce_ratio(λ̃, reduction)``: :func:`sumix_objective` with
  the released ratio, the cross-entropy and no class weights.

  Args:
    logits_clean, logits_mixed: ``[B, C]`` logits of the two passes.
    u_clean, u_mixed: ``[B, C]`` uncertainty vectors
      (:class:`remix_jax.models.sumix_heads.UncertaintyHead`).
    labels: ``[B]`` clean labels.
    partner: ``[B]`` permutation.
    lam: ``[B]`` the base mixer's area-corrected λ.
    scale: ``s`` (the released code: the per-device batch size).
    gamma: ``γ`` (0.5 on CIFAR-100, 1.0 on Tiny-ImageNet).
    reduction: ``'official'`` or ``'per_sample'`` (:func:`reduce_ratio`).

  Returns:
    The scalar loss.
  """
  distances = semantic_distances(logits_clean, logits_mixed, labels, partner,
                                 scale)
  lam_y = reduce_ratio(ratio_from_distances(distances, labels, partner, lam),
                       reduction)
  return sumix_objective(logits_mixed, u_clean, u_mixed, distances, labels,
                         partner, lam, lam_y, gamma=gamma).loss

