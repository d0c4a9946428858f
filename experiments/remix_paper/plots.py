"""The figures of a reproduction table: head/mid/tail bars and the test
top-1 curves of its rows (per-class plots: :mod:`remix_jax.plots`)."""

from __future__ import annotations

import numpy as np

from remix_jax import plots


def _nan(x) -> float:
  return np.nan if x is None else float(x)


def group_bars(path: str, results_by_method: dict[str, dict]) -> None:
  """Head / mid / tail accuracy as grouped bars, one group per method.

  Args:
    path: the PNG to write.
    results_by_method: display name -> metrics with ``head``, ``mid`` and
      ``tail`` (percent; ``None`` is left blank).
  """
  plt = plots.pyplot()
  names = list(results_by_method)
  x = np.arange(len(names))
  width = 0.27
  fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(names) + 2), 4))
  for i, group in enumerate(("head", "mid", "tail")):
    values = [_nan(results_by_method[n].get(group)) for n in names]
    ax.bar(x + (i - 1) * width, values, width, label=group)
  ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
  ax.set_ylabel("mean per-class test accuracy (%)")
  ax.set_ylim(0, 100)
  ax.grid(axis="y", alpha=0.3)
  ax.legend(fontsize=8)
  plots.save(fig, path)


def accuracy_curves(path: str, curves: dict[str, list], *,
                    switch_epoch=None, title: str = "") -> None:
  """Test top-1 against epoch, one line per row of a table.

  Args:
    path: the PNG to write.
    curves: display name -> ``[[epoch, top1], …]`` (percent).
    switch_epoch: drawn as a dotted line (the deferred re-balancing and the
      first learning-rate decay), or ``None``.
    title: the figure title.
  """
  plt = plots.pyplot()
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for name, curve in curves.items():
    if curve:
      epochs, top1 = zip(*curve)
      ax.plot(epochs, top1, marker="o", ms=2.5, lw=1.2, label=name)
  if switch_epoch is not None:
    ax.axvline(switch_epoch, color="gray", ls=":", lw=1)
  ax.set_xlabel("epoch")
  ax.set_ylabel("test top-1 (%)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="lower right")
  if title:
    ax.set_title(title)
  plots.save(fig, path)
