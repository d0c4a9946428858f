"""Label rules: how the mixing weight of the labels follows from the input's.

A label rule maps the input mixing info (λ per sample, the weight of the
original sample) to the label weight λ_y of the ORIGINAL label; the target is
``λ_y·y_a + (1 − λ_y)·y_b`` with ``y_b = info.partner_labels``. Rules only
read the mixing info, so every input mixer composes with every rule, whether
its partners come from the batch or from a second batch.

Rules (:data:`LABEL_RULES`):
  plain: ``λ_y = λ``, the base mixer's label (Zhang et al. 2018; Yun et al.
    2019; Verma et al. 2019).
  remix: :func:`remix_jax.remix.remix_lambda`, the minority label for a
    mix that a minority sample dominates (Chou et al. 2020).
"""

from __future__ import annotations

from typing import Callable

import jax

from remix_jax import remix

#: ``rule(lam, labels_a, labels_b) -> lam_y``, all ``[B]``.
LabelRule = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def plain_lambda(lam: jax.Array, labels_a: jax.Array | None = None,
                 labels_b: jax.Array | None = None) -> jax.Array:
  """The base mixers' rule: the label weight is the input weight, λ_y = λ."""
  del labels_a, labels_b
  return lam


LABEL_RULES = ("plain", "remix")


def make_label_rule(name: str, class_counts=None, *, kappa: float = 3.0,
                    tau: float = 0.5) -> LabelRule:
  """The label rule called ``name`` (``'plain'`` or ``'remix'``)."""
  if name == "plain":
    return plain_lambda
  if name == "remix":
    if class_counts is None:
      raise ValueError("the 'remix' label rule needs the class counts")
    return remix.remix_rule(class_counts, kappa=kappa, tau=tau)
  raise ValueError(f"unknown label rule {name!r}; choose one of "
                   f"{', '.join(LABEL_RULES)}")
