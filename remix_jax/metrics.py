"""Evaluation metrics for long-tailed classification.

The eval step counts, per class, how many test images there are and how many
are classified correctly (top-1 and top-5); everything else follows here on
the host. Shot groups follow the convention of Liu et al. (OLTR, CVPR 2019):
many-shot classes have more than 100 training images, medium-shot 20–100,
few-shot fewer than 20.
"""

from __future__ import annotations

import numpy as np


def shot_groups(class_counts) -> dict[str, np.ndarray]:
  """Boolean class masks ``many`` (>100), ``medium`` (20–100), ``few`` (<20)."""
  n = np.asarray(class_counts)
  return {"many": n > 100, "medium": (n >= 20) & (n <= 100), "few": n < 20}


def position_groups(num_classes: int) -> dict[str, np.ndarray]:
  """Classes by index: head = first 30 %, tail = last 30 %, mid = the rest.

  For CIFAR-10-LT (class 0 largest) this is head 0–2, mid 3–6, tail 7–9.
  """
  k = int(round(0.3 * num_classes))
  idx = np.arange(num_classes)
  return {"head": idx < k, "mid": (idx >= k) & (idx < num_classes - k),
          "tail": idx >= num_classes - k}


def _group_mean(per_class: np.ndarray, mask: np.ndarray):
  return float(per_class[mask].mean()) if mask.any() else None


def summarize(correct1, correct5, total, class_counts) -> dict:
  """Accuracy summary from per-class counts.

  Args:
    correct1: ``[C]`` test images of each class classified correctly (top-1).
    correct5: ``[C]`` ... within the top 5.
    total: ``[C]`` test images of each class.
    class_counts: ``[C]`` training images of each class (for shot groups).

  Returns:
    dict with ``top1``, ``top5`` (percent over all test images), ``per_class``
    (list of percent), ``many``/``medium``/``few`` and ``head``/``mid``/
    ``tail`` (mean per-class accuracy of the group, ``None`` if empty) and
    ``num_examples``.
  """
  correct1, correct5, total = (np.asarray(x, np.float64)
                               for x in (correct1, correct5, total))
  per_class = 100.0 * correct1 / np.maximum(total, 1)
  out = {
      "top1": float(100.0 * correct1.sum() / max(total.sum(), 1)),
      "top5": float(100.0 * correct5.sum() / max(total.sum(), 1)),
      "per_class": [float(x) for x in per_class],
      "num_examples": int(total.sum()),
  }
  groups = {**shot_groups(class_counts), **position_groups(len(per_class))}
  for name, mask in groups.items():
    out[name] = _group_mean(per_class, mask)
  return out
