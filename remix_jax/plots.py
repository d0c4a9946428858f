"""Figures of a run's per-class results and of what the mixers produce.

matplotlib (Agg backend) and JAX are imported inside the functions, so this
module is light to import.
"""

from __future__ import annotations

import numpy as np

from remix_jax import files

#: The input mixers shown by :func:`mixed_examples_grid`, with their labels.
GRID_MIXERS = (("mixup", "Mixup"), ("cutmix", "CutMix"),
               ("saliencymix", "SaliencyMix"), ("fmix", "FMix"),
               ("resizemix", "ResizeMix"))


def pyplot():
  """``matplotlib.pyplot`` on the non-interactive Agg backend."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def save(fig, path: str) -> None:
  """Writes ``fig`` to ``path`` (PNG, 120 dpi, atomically) and closes it."""
  fig.tight_layout()
  try:
    files.write_atomically(
        path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
  finally:
    pyplot().close(fig)


def per_class_vs_size(path: str, results_by_method: dict[str, dict],
                      class_counts, *, title: str = "") -> None:
  """Per-class test accuracy against training images of the class (log x),
  one line per method.

  Args:
    path: the PNG to write.
    results_by_method: display name -> metrics with ``per_class`` (percent).
    class_counts: ``[C]`` training images of each class.
    title: the figure title.
  """
  plt = pyplot()
  counts = np.maximum(np.asarray(class_counts), 1)
  order = np.argsort(counts)
  many = len(results_by_method) > 4  # the legend would cover the lines
  fig, ax = plt.subplots(figsize=(8.5 if many else 7, 4.5))
  for name, metrics in results_by_method.items():
    acc = np.asarray(metrics["per_class"], np.float64)
    ax.plot(counts[order], acc[order], marker="o", ms=4, lw=1, label=name)
  ax.set_xscale("log")
  ax.set_xlabel("training images of the class")
  ax.set_ylabel("test accuracy (%)")
  ax.set_ylim(-2, 102)
  ax.grid(alpha=0.3)
  if many:
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  else:
    ax.legend(fontsize=8)
  if title:
    ax.set_title(title)
  save(fig, path)


def _to_unit_float(images) -> np.ndarray:
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 255.0
  return images.astype(np.float32)


def mixed_examples_grid(path: str, images, labels, class_counts, class_names,
                        *, rng_seed: int = 0, num_shown: int = 6) -> None:
  """A grid of mixed images: one row per input mixer (:data:`GRID_MIXERS`,
  ``alpha=1.0``, one λ per batch), each captioned with the plain label
  weights and the Remix label, e.g. ``'cat 0.35 / dog 0.65 → Remix: dog'``.

  The mixers see the whole batch (partners are drawn from it); the first
  ``num_shown`` results are shown.

  Args:
    path: the PNG to write.
    images: ``[N, H, W, C]`` uint8 or float in ``[0, 1]`` (display clipped).
    labels: ``[N]`` integer labels.
    class_counts: ``[K]`` training images of each class (Remix's n_a, n_b).
    class_names: ``K`` class names.
    rng_seed: seeds the mixers (mixer ``i`` uses ``rng_seed + i``).
    num_shown: columns of the grid.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from remix_jax import mixers  # pylint: disable=g-import-not-at-top
  from remix_jax import remix  # pylint: disable=g-import-not-at-top

  plt = pyplot()
  images = _to_unit_float(images)
  labels = np.asarray(labels)
  counts = np.asarray(class_counts)
  cols = min(num_shown, len(images))
  fig, axes = plt.subplots(len(GRID_MIXERS), cols, squeeze=False,
                           figsize=(1.9 * cols + 0.8, 2.3 * len(GRID_MIXERS)))
  for row, (name, title) in enumerate(GRID_MIXERS):
    mixed, info = mixers.get_mixer(name)(
        jax.random.key(rng_seed + row), images, labels, alpha=1.0)
    mixed, partner, lam = (np.asarray(a) for a in (mixed, info.partner,
                                                   info.lam))
    lam_y = np.asarray(remix.remix_lambda(lam, counts[labels],
                                          counts[labels[partner]]))
    for col in range(cols):
      ax = axes[row, col]
      a, b = labels[col], labels[partner[col]]
      shown = np.clip(mixed[col], 0.0, 1.0)
      if shown.shape[-1] == 1:
        ax.imshow(shown[..., 0], cmap="gray", vmin=0, vmax=1)
      else:
        ax.imshow(shown)
      if lam_y[col] == lam[col]:
        remix_label = "same"
      else:
        remix_label = class_names[a if lam_y[col] == 1 else b]
      ax.set_xlabel(f"{class_names[a]} {lam[col]:.2f} / {class_names[b]} "
                    f"{1 - lam[col]:.2f}\n→ Remix: {remix_label}", fontsize=7)
      ax.set_xticks([])
      ax.set_yticks([])
    axes[row, 0].set_ylabel(title, fontsize=10)
  save(fig, path)
