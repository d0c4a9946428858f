"""The figures of a reproduction table: head/mid/tail bars, the test top-1
curves of its rows, and each row's curves per seed with their mean
(per-class plots: :mod:`remix_jax.plots`)."""

from __future__ import annotations

import textwrap

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


def seed_mean_curve(curves) -> list[list]:
  """The mean test top-1 over seeds at the epochs they share.

  An epoch counts where at least 2 seeds were evaluated at it and every
  seed that got that far was (an unfinished run stops early; an epoch
  evaluated by only some of the runs that passed it is left out); the mean
  there is over the seeds evaluated at it.

  Args:
    curves: one ``[[epoch, top1], …]`` per seed (possibly empty or of
      different lengths).

  Returns:
    ``[[epoch, mean top1], …]`` in epoch order; empty with fewer than 2
    curves.
  """
  by_seed = [dict((e, float(t)) for e, t in c) for c in curves if c]
  out = []
  for epoch in sorted({e for seed in by_seed for e in seed}):
    reached = [seed for seed in by_seed if max(seed) >= epoch]
    values = [seed[epoch] for seed in reached if epoch in seed]
    if len(values) >= 2 and len(values) == len(reached):
      out.append([epoch, float(np.mean(values))])
  return out


def seed_curves(path: str, curves_by_method: dict, *, switch_epoch=None,
                title: str = "", columns: int = 4) -> None:
  """Test top-1 against epoch per seed, one small panel per method: a thin
  translucent line per seed (s0, s1, …) and the mean over the seeds in bold
  (:func:`seed_mean_curve`), on a shared y axis.

  Args:
    path: the PNG to write.
    curves_by_method: display name -> the seeds' curves, each
      ``[[epoch, top1], …]`` (percent; empty for a run not evaluated yet),
      as a list (seed ``i`` at index ``i``) or a dict seed -> curve.
    switch_epoch: drawn as a dotted line in every panel, or ``None``.
    title: the figure title.
    columns: panels per row at most.
  """
  plt = plots.pyplot()
  names = list(curves_by_method)
  ncols = max(1, min(columns, len(names)))
  nrows = -(-len(names) // ncols)
  title = textwrap.fill(title, int(11 * 3.2 * ncols))  # ~11 chars an inch
  fig, axes = plt.subplots(
      nrows, ncols, sharey=True, squeeze=False,
      figsize=(3.2 * ncols, 2.6 * nrows + 0.2 * (title.count("\n") + 2)))
  for k, (ax, name) in enumerate(zip(axes.flat, names)):
    seeds = curves_by_method[name]
    seeds = seeds if isinstance(seeds, dict) else dict(enumerate(seeds))
    for i, (seed, curve) in enumerate(seeds.items()):
      if curve:
        ax.plot(*zip(*curve), lw=0.8, alpha=0.5, color=f"C{i}", marker=".",
                ms=2, label=f"s{seed}")
    mean = seed_mean_curve(list(seeds.values()))
    if mean:
      ax.plot(*zip(*mean), lw=2.2, color="black", marker="o", ms=2,
              label="mean")
    if switch_epoch is not None:
      ax.axvline(switch_epoch, color="gray", ls=":", lw=1)
    ax.set_title(name, fontsize=9)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=7)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=6, loc="lower right")
    if k + ncols >= len(names):  # the lowest panel of its column
      ax.set_xlabel("epoch", fontsize=8)
  for ax in axes.flat[len(names):]:
    ax.set_visible(False)
  for ax in axes[:, 0]:
    ax.set_ylabel("test top-1 (%)", fontsize=8)
  if title:
    fig.suptitle(title, fontsize=10)
  plots.save(fig, path)
