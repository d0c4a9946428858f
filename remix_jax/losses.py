"""Per-sample losses for mixed labels and long-tail re-balancing.

Every loss here returns one value per sample (no batch mean), so per-sample
label weights λ_y (Remix, SUMix) and class weights (RW/DRW) are honoured
exactly. A mixed sample with labels ``a``, ``b`` and label weight λ_y costs

    ℓ = λ_y·w_a·L(z, a) + (1 − λ_y)·w_b·L(z, b)

for a per-label loss ``L`` (cross-entropy, logit-adjusted cross-entropy,
LDAM or focal) and class weights ``w`` (all 1 without re-weighting);
:func:`weighted_mean` reduces a batch as
PyTorch's weighted cross-entropy does, dividing by the total weight, and
:func:`mixed_label_loss` is the two together. With ``axis_name`` both
reductions divide by the total over all devices (a ``psum``), as the
data-parallel train step needs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from remix_jax import class_balance


def take_labels(x: jax.Array, labels: jax.Array) -> jax.Array:
  """``x[i, labels[i]]`` for every row ``i`` of ``x [B, C]``; ``[B]``."""
  return jnp.take_along_axis(x, labels[:, None].astype(jnp.int32), axis=-1)[:,
                                                                              0]


def cross_entropy(logits: jax.Array, labels: jax.Array, *,
                  label_smoothing: float = 0.0) -> jax.Array:
  """Per-sample cross-entropy against (optionally smoothed) one-hot labels.

  ``L = −(1 − ε)·log p_y − ε·mean_c log p_c`` with ``p = softmax(z)``; the
  smoothed target is ``(1 − ε)·onehot(y) + ε/C``.

  Args:
    logits: ``[B, C]``.
    labels: ``[B]`` integer labels.
    label_smoothing: ε ∈ [0, 1).

  Returns:
    ``[B] float32`` losses.
  """
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -take_labels(logp, labels)
  if label_smoothing:
    nll = (1.0 - label_smoothing) * nll - label_smoothing * jnp.mean(logp, -1)
  return nll


def log_prior(class_counts) -> np.ndarray:
  """``log π_c`` with ``π_c = n_c / Σ_k n_k`` the training class prior.

  An empty class gets ``log(1e-12)`` (the ``+ 1e-12`` of the logit
  adjustment code), not ``−inf``.

  Args:
    class_counts: ``[C]`` training-set counts.

  Returns:
    ``[C] float32`` NumPy log-priors.
  """
  counts = np.asarray(class_counts, np.float64)
  if counts.ndim != 1 or not counts.sum() > 0 or (counts < 0).any():
    raise ValueError(f"class_counts must be [C] counts >= 0 with a positive "
                     f"total, got {counts.tolist()}")
  return np.log(counts / counts.sum() + 1e-12).astype(np.float32)


def logit_adjusted_cross_entropy(logits: jax.Array, labels: jax.Array, *,
                                 log_prior: jax.Array, tau: float = 1.0,
                                 label_smoothing: float = 0.0) -> jax.Array:
  """Logit-adjusted cross-entropy, per sample (training only).

  ``L = CE(z + τ·log π, y)``: every logit is raised by ``τ`` times the log
  of its class prior, so a head class must win by a larger margin. τ = 1 is
  Balanced Softmax (whose ``log n_c`` differs from ``log π_c`` by a constant
  shared by every logit, so the loss is the same) and UniMix's Bayias loss
  with a uniform test prior (its ``log π_train − log π_test``). Evaluate on
  the plain logits ``z``.

  As a per-label loss it composes with mixed labels and class weights
  (:func:`mixed_label_loss`): CE is linear in the target, so
  ``λ_y·L(z, a) + (1 − λ_y)·L(z, b)`` is the soft-target cross-entropy of
  the adjusted logits, the form of Balanced-MixUp, and the λ-weighted form
  of CMO and UniMix.

  Paper and code: the logit adjustment code adds ``log(π^τ + 1e-12)``, i.e.
  ``τ·log π`` up to the 1e-12; Balanced Softmax's code adds ``log n_c``;
  Prior-LT's Bayias adds ``log π_train − log π_test`` with the test prior
  set to uniform.

  Args:
    logits: ``[B, C]``.
    labels: ``[B]`` integer labels.
    log_prior: ``[C]`` ``log π`` (:func:`log_prior`).
    tau: τ, the adjustment's scale (1 for Balanced Softmax).
    label_smoothing: ε ∈ [0, 1), as in :func:`cross_entropy`.

  Returns:
    ``[B] float32`` losses.

  References:
    A. K. Menon et al., "Long-tail learning via logit adjustment", ICLR 2021,
    arXiv:2007.07314. J. Ren et al., "Balanced Meta-Softmax for Long-Tailed
    Visual Recognition", NeurIPS 2020, arXiv:2007.10740. Z. Xu et al.,
    "Towards Calibrated Model for Long-Tailed Visual Recognition from Prior
    Perspective", NeurIPS 2021, arXiv:2111.03874.
  """
  shift = tau * jnp.asarray(log_prior, jnp.float32)
  return cross_entropy(logits.astype(jnp.float32) + shift, labels,
                       label_smoothing=label_smoothing)


def soft_targets(labels_a: jax.Array, labels_b: jax.Array, lam_y: jax.Array,
                 num_classes: int, *, label_smoothing: float = 0.0):
  """Mixed soft targets ``λ_y·ỹ_a + (1 − λ_y)·ỹ_b``, ``[B, C]``.

  ``ỹ = (1 − ε)·onehot(y) + ε/C`` is the label-smoothed one-hot, applied
  before mixing (as in timm); every row sums to 1.
  """
  def smooth(y):
    return ((1.0 - label_smoothing) * jax.nn.one_hot(y, num_classes) +
            label_smoothing / num_classes)

  lam_y = jnp.asarray(lam_y, jnp.float32)[:, None]
  return lam_y * smooth(labels_a) + (1.0 - lam_y) * smooth(labels_b)


def soft_cross_entropy(logits: jax.Array, labels_a: jax.Array,
                       labels_b: jax.Array, lam_y: jax.Array, *,
                       label_smoothing: float = 0.0) -> jax.Array:
  """Per-sample cross-entropy with mixed labels.

  ``ℓᵢ = λ_y,ᵢ·CE(zᵢ, aᵢ) + (1 − λ_y,ᵢ)·CE(zᵢ, bᵢ)``, which equals the
  cross-entropy against :func:`soft_targets` (label smoothing included). Each
  sample keeps its own λ_y: there is no batch-mean collapse.

  Args:
    logits: ``[B, C]``.
    labels_a: ``[B]`` original labels.
    labels_b: ``[B]`` partner labels (``info.partner_labels``).
    lam_y: ``[B]`` label weight of ``labels_a``.
    label_smoothing: ε ∈ [0, 1), applied before mixing.

  Returns:
    ``[B] float32`` losses.
  """
  return mix_losses(
      cross_entropy(logits, labels_a, label_smoothing=label_smoothing),
      cross_entropy(logits, labels_b, label_smoothing=label_smoothing), lam_y)


def mix_losses(loss_a: jax.Array, loss_b: jax.Array, lam_y: jax.Array,
               weight_a: jax.Array | float = 1.0,
               weight_b: jax.Array | float = 1.0) -> jax.Array:
  """``λ_y·w_a·L_a + (1 − λ_y)·w_b·L_b`` per sample."""
  lam_y = jnp.asarray(lam_y, jnp.float32)
  return lam_y * weight_a * loss_a + (1.0 - lam_y) * weight_b * loss_b


def weighted_mean(losses: jax.Array, lam_y: jax.Array,
                  weight_a: jax.Array | float = 1.0,
                  weight_b: jax.Array | float = 1.0, *,
                  axis_name: str | None = None) -> jax.Array:
  """Batch loss normalised by the total label weight.

  ``Σᵢ ℓᵢ / Σᵢ (λ_y,ᵢ·w_a,ᵢ + (1 − λ_y,ᵢ)·w_b,ᵢ)``: with one-hot labels this
  is PyTorch's ``F.cross_entropy(weight=w)`` (LDAM-DRW's reduction); with
  ``w ≡ 1`` it is the plain mean.

  Args:
    losses: ``[B]`` per-sample losses ℓᵢ (e.g. :func:`mix_losses`).
    lam_y: ``[B]`` label weight of ``labels_a``.
    weight_a: class weight of ``labels_a`` (``[B]`` or a scalar).
    weight_b: class weight of ``labels_b`` (``[B]`` or a scalar).
    axis_name: inside ``shard_map``/``pmap``, the data axis: the denominator
      is then summed over it (``psum``), so that the per-device results sum
      to the loss of the global batch (and so do their gradients).

  Returns:
    The scalar loss (this device's share of it with ``axis_name``).
  """
  lam_y = jnp.asarray(lam_y, jnp.float32)
  total = lam_y * weight_a + (1.0 - lam_y) * weight_b
  total = jnp.sum(jnp.broadcast_to(total, losses.shape))
  if axis_name is not None:
    total = jax.lax.psum(total, axis_name)
  return jnp.sum(losses) / jnp.maximum(total, 1e-12)


def mixed_label_loss(per_label_loss, logits: jax.Array, labels_a: jax.Array,
                     labels_b: jax.Array, lam_y: jax.Array,
                     weight_a: jax.Array | float = 1.0,
                     weight_b: jax.Array | float = 1.0, *,
                     axis_name: str | None = None) -> jax.Array:
  """The label term of a mixed batch: :func:`weighted_mean` of
  :func:`mix_losses` of ``per_label_loss`` against both labels.

  ``Σᵢ [λ_y,ᵢ·w_a,ᵢ·L(zᵢ, aᵢ) + (1 − λ_y,ᵢ)·w_b,ᵢ·L(zᵢ, bᵢ)] / Σᵢ (λ_y,ᵢ·w_a,ᵢ
  + (1 − λ_y,ᵢ)·w_b,ᵢ)``.

  Args:
    per_label_loss: ``(logits, labels) -> [B]``, e.g. :func:`cross_entropy`,
      :func:`ldam_loss` or :func:`focal_loss` with their options bound.
    logits: ``[B, C]``.
    labels_a: ``[B]`` original labels.
    labels_b: ``[B]`` partner labels.
    lam_y: ``[B]`` label weight of ``labels_a``.
    weight_a: class weight of ``labels_a`` (``[B]`` or a scalar).
    weight_b: class weight of ``labels_b`` (``[B]`` or a scalar).
    axis_name: see :func:`weighted_mean`.

  Returns:
    The scalar loss.
  """
  per_sample = mix_losses(per_label_loss(logits, labels_a),
                          per_label_loss(logits, labels_b), lam_y, weight_a,
                          weight_b)
  return weighted_mean(per_sample, lam_y, weight_a, weight_b,
                       axis_name=axis_name)


def global_mean(values: jax.Array, *,
                axis_name: str | None = None) -> jax.Array:
  """``Σᵢ xᵢ / B`` over a ``[B]`` batch; with ``axis_name`` (inside
  ``shard_map``/``pmap``) ``B`` is the global batch size (a ``psum`` over
  the axis), so the per-device results sum to the global-batch mean."""
  count = values.shape[0]
  if axis_name is not None:
    count = jax.lax.psum(count, axis_name)
  return jnp.sum(values) / count


def class_balanced_weights(class_counts, beta: float = 0.9999) -> np.ndarray:
  """Class-balanced weights from the effective number of samples.

  ``w_c ∝ 1/E_{n_c}`` with ``E_n = (1 − βⁿ)/(1 − β)``
  (:func:`remix_jax.class_balance.effective_number`), normalised so that
  ``Σ_c w_c = C``. ``β = 0`` gives uniform weights.

  Args:
    class_counts: ``[C]`` training-set counts.
    beta: β ∈ [0, 1).

  Returns:
    ``[C] float32`` NumPy weights.

  Reference:
    Y. Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
    CVPR 2019; used for DRW by K. Cao et al., "Learning Imbalanced Datasets
    with Label-Distribution-Aware Margin Loss", NeurIPS 2019.
  """
  weights = 1.0 / class_balance.effective_number(class_counts, beta)
  return (weights / weights.sum() * len(weights)).astype(np.float32)


def ldam_margins(class_counts, max_margin: float = 0.5) -> np.ndarray:
  """LDAM margins ``Δ_c ∝ n_c^{−1/4}``, scaled so that ``max_c Δ_c = max_margin``.

  Reference: Cao et al., NeurIPS 2019 (Eq. 13; 0.5 on CIFAR, 0.3 on iNat).
  """
  counts = np.asarray(class_counts, np.float64)
  margins = 1.0 / np.sqrt(np.sqrt(np.maximum(counts, 1.0)))
  return (margins * (max_margin / margins.max())).astype(np.float32)


def ldam_loss(logits: jax.Array, labels: jax.Array, *, margins: jax.Array,
              scale: float = 30.0) -> jax.Array:
  """Label-distribution-aware margin loss, per sample.

  ``L = −log softmax(s·(z − Δ_y·onehot(y)))_y``: the true class's logit is
  lowered by its class margin before a scaled cross-entropy. With the
  normalised (cosine) classifier ``z`` are cosines and ``s = 30``.

  Args:
    logits: ``[B, C]``.
    labels: ``[B]``.
    margins: ``[C]`` from :func:`ldam_margins`.
    scale: s.

  Returns:
    ``[B] float32`` losses.

  Reference:
    K. Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
    Margin Loss", NeurIPS 2019. arXiv:1906.07413.
  """
  num_classes = logits.shape[-1]
  margins = jnp.asarray(margins, jnp.float32)
  shifted = logits.astype(jnp.float32) - (
      jax.nn.one_hot(labels, num_classes) * margins[labels][:, None])
  return cross_entropy(scale * shifted, labels)


def focal_loss(logits: jax.Array, labels: jax.Array, *,
               gamma: float = 1.0) -> jax.Array:
  """Focal loss ``(1 − p_y)^γ · (−log p_y)``, per sample.

  Reference: T.-Y. Lin et al., "Focal Loss for Dense Object Detection", ICCV
  2017 (γ = 1 in LDAM-DRW's code).
  """
  nll = cross_entropy(logits, labels)
  return (1.0 - jnp.exp(-nll))**gamma * nll
