"""The reproduction tables of the Remix paper (Chou et al. 2020): the
paper's numbers, the cells (method × benchmark × protocol × seeds) that make
up each of our tables, and the orderings the paper claims.

A table is a list of :class:`Cell`; each (cell, seed) is one run in its own
workdir, trained by ``experiments/remix_paper/reproduce.py``. The cells are
on tfds' ``cifar10`` (:data:`DEFAULT_DATASET`); :func:`get_table` puts them
on another dataset, e.g. ``cifar10_jpeg``, the offline copy of CIFAR-10 that
the committed rows in ``results/`` were trained on (:data:`OFFLINE_DATASET`).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from configs import cifar_lt
from remix_jax.trainer import methods

#: Display names of the methods (the paper's where it has one).
METHOD_LABELS = {
    "erm": "ERM", "focal": "Focal", "rw": "RW", "rs": "RS", "drw": "DRW",
    "drs": "DRS", "ldam": "LDAM", "ldam_drw": "LDAM-DRW",
    "ldam_drs": "LDAM-DRS", "mixup": "Mixup", "remix": "Remix",
    "manifold_mixup": "Manifold Mixup", "remix_mm": "Remix-MM",
    "cutmix": "CutMix", "remix_cm": "Remix-CM", "remix_rw": "Remix-RW",
    "remix_rs": "Remix-RS", "remix_drw": "Remix-DRW", "remix_drs": "Remix-DRS",
    "remix_ldam": "Remix-LDAM",
    "remix_ldam_drw": "Remix-LDAM-DRW", "remix_ldam_drs": "Remix-LDAM-DRS",
    "cutmix_sumix": "CutMix+SUMix", "sumix_remix": "Remix-CM+SUMix",
    "cutmix_sumix_follow": "CutMix+SUMix(follow)",
    "sumix_follow_remix": "Remix-CM+SUMix(follow)",
    "logit_adjustment": "LA", "balanced_softmax": "Balanced Softmax",
    "mixup_la": "Mixup-LA", "remix_la": "Remix-LA", "cmo": "CMO",
    "cmo_drw": "CMO-DRW", "cmo_la": "CMO-LA", "remix_cmo": "Remix-CMO",
    "balanced_mixup": "Balanced-MixUp",
    "remix_balanced_mixup": "Remix-Balanced-MixUp", "unimix": "UniMix",
    "remix_unimix": "Remix-UniMix",
}

_SUMIX_NOTE = (
    "λ̃ as released (s = the per-device batch, 128): in training it "
    "saturates and gives the majority label to the smaller image of the mix "
    "for about half the samples, whatever the pasted area (`python "
    "experiments/sumix/direction.py`), so these rows measure the released "
    "rule, not a ratio that follows the mix; see docs/sumix.md.")

_SUCCESSOR_NOTE = (
    "each published after Remix (no number in the Remix paper) and trained "
    "with the settings of its own paper where they differ from ours "
    "(`remix_jax.trainer.methods.PUBLISHED_SETTINGS`: CMO mixes half the "
    "batches and none in the first 4 and the last 3 epochs; Balanced-MixUp "
    "draws Beta(0.2, 1), UniMix Beta(0.8, 0.8)); LA is logit adjustment at "
    "τ = 1, the same loss as Balanced Softmax and UniMix's Bayias; see "
    "docs/training.md.")

_REMIX_SUCCESSOR_NOTE = (
    "the Remix rule on LA's loss and on CMO's mix, combinations of this "
    "library with no published number; trained with the settings of LA and "
    "CMO above.")

#: A note printed under a table that has the method (why its row reads as
#: it does).
METHOD_NOTES = {"cutmix_sumix": _SUMIX_NOTE, "sumix_remix": _SUMIX_NOTE,
                **{m: _SUCCESSOR_NOTE for m in (
                    "logit_adjustment", "cmo", "unimix", "balanced_mixup")},
                "remix_la": _REMIX_SUCCESSOR_NOTE,
                "remix_cmo": _REMIX_SUCCESSOR_NOTE}

#: The paper's orderings checked on our numbers (each chain lower → higher).
#: LDAM-DRW < Remix-DRW: Table 1 (CIFAR-10-LT ρ=100, 76.57 against 79.76).
ORDERINGS = (("erm", "mixup", "remix", "remix_drw"),
             ("erm", "drw", "remix_drw"),
             ("ldam", "ldam_drw", "remix_ldam_drw"),
             ("ldam_drw", "remix_drw"),
             ("cutmix", "remix_cm"))


#: The dataset of the tables' cells: tfds' own CIFAR-10.
DEFAULT_DATASET = "cifar10"
#: Our offline copy of CIFAR-10 (``docs/datasets.md``), the dataset of the
#: committed rows in ``results/``.
OFFLINE_DATASET = "cifar10_jpeg"


def method_label(method: str) -> str:
  """The display name of ``method`` (the paper's, or the method name)."""
  return METHOD_LABELS.get(method, method)


# --- The paper's top-1 accuracy --------------------------------------------
# Chou et al., "Remix: Rebalanced Mixup", ECCV 2020 Workshops
# (arXiv:2007.03943), Tables 1, 2 and 5.

_CIFAR_COLUMNS = tuple((dataset, profile, rho)
                       for dataset in ("cifar10", "cifar100")
                       for profile in ("exp", "step") for rho in (100.0, 10.0))
_CINIC_COLUMNS = tuple(("cinic10", profile, rho) for profile in ("exp", "step")
                       for rho in (200.0, 100.0, 50.0, 10.0))

# Rows whose method this library has no name for (RW Focal, BBN) are left out.
_PAPER_TABLES = {
    # ResNet-32; C10 LT100, LT10, step100, step10, then the same for C100.
    "Table 1": (_CIFAR_COLUMNS, {
        "erm": (71.86, 86.22, 64.17, 84.02, 40.12, 56.77, 40.13, 54.74),
        "focal": (70.18, 86.66, 63.91, 83.64, 38.41, 55.78, 38.57, 53.27),
        "drs": (74.50, 86.72, 72.03, 85.17, 40.33, 57.26, 41.35, 56.79),
        "drw": (74.86, 86.88, 71.60, 85.51, 40.66, 57.32, 41.14, 57.22),
        "ldam": (73.35, 86.96, 66.58, 85.00, 39.60, 56.91, 39.58, 56.27),
        "ldam_drw": (76.57, 86.7, 75.94, 86.52, 42.64, 57.18, 45.40, 57.09),
        "mixup": (73.09, 88.00, 65.80, 85.20, 40.83, 58.37, 39.64, 54.46),
        "remix": (75.36, 88.15, 68.98, 86.34, 41.94, 59.36, 39.96, 57.06),
        "remix_ldam_drw": (79.33, 86.78, 77.81, 86.46, 45.02, 59.47, 45.32,
                           56.59),
        "remix_ldam_drs": (79.45, 87.16, 78.00, 86.91, 45.66, 59.21, 45.74,
                           56.19),
        "remix_rs": (76.23, 87.70, 67.28, 86.63, 41.13, 58.62, 39.74, 56.09),
        "remix_rw": (75.1, 87.91, 68.74, 86.38, 33.51, 57.65, 17.42, 54.45),
        "remix_drs": (79.53, 88.85, 77.46, 88.16, 46.53, 60.52, 47.25, 60.76),
        "remix_drw": (79.76, 89.02, 77.86, 88.34, 46.77, 61.23, 46.78, 60.44),
    }),
    # ResNet-32, same columns as Table 1.
    "Table 5": (_CIFAR_COLUMNS, {
        "manifold_mixup": (73.47, 87.78, 66.13, 85.22, 41.19, 58.55, 39.52,
                           53.72),
        "remix_mm": (77.07, 88.70, 69.78, 87.39, 44.12, 60.76, 40.22, 58.01),
        "cutmix": (75.04, 88.30, 67.97, 86.35, 41.86, 59.47, 40.23, 56.59),
        "remix_cm": (76.59, 87.96, 69.61, 87.59, 43.55, 60.15, 40.336, 57.78),
    }),
    # CINIC-10, ResNet-18; LT200, LT100, LT50, LT10, then step.
    "Table 2": (_CINIC_COLUMNS, {
        "erm": (56.16, 61.82, 72.34, 77.06, 51.64, 55.64, 68.35, 74.16),
        "rs": (53.71, 59.11, 71.28, 75.99, 50.65, 53.82, 65.54, 71.33),
        "rw": (54.84, 60.87, 72.62, 76.88, 50.47, 55.91, 69.24, 74.81),
        "drw": (59.66, 63.14, 73.56, 77.88, 54.41, 57.87, 68.76, 72.85),
        "drs": (57.98, 62.16, 73.14, 77.39, 52.67, 57.41, 69.52, 75.89),
        "mixup": (57.93, 62.06, 74.55, 79.28, 53.47, 56.91, 69.74, 75.59),
        "remix": (58.86, 63.21, 75.07, 79.02, 54.22, 57.57, 70.21, 76.37),
        "ldam_drw": (60.80, 65.51, 74.94, 77.90, 54.93, 61.17, 72.26, 76.12),
        "remix_drs": (61.64, 65.95, 75.34, 79.17, 60.12, 66.53, 75.47, 79.86),
        "remix_drw": (62.95, 67.76, 75.49, 79.43, 62.82, 67.56, 76.55, 79.36),
    }),
}

#: ``(method, dataset, profile, rho) -> top-1 %`` of the paper.
PAPER_TOP1: dict[tuple[str, str, str, float], float] = {}
#: The same keys -> the paper table the number comes from.
PAPER_SOURCE: dict[tuple[str, str, str, float], str] = {}
for _name, (_columns, _rows) in _PAPER_TABLES.items():
  for _method, _values in _rows.items():
    for _column, _value in zip(_columns, _values, strict=True):
      PAPER_TOP1[(_method, *_column)] = _value
      PAPER_SOURCE[(_method, *_column)] = _name

#: Our datasets that are the paper's under another name.
_PAPER_DATASET = {"cifar10_jpeg": "cifar10"}


def paper_key(method: str, dataset: str, profile: str, rho: float):
  """The :data:`PAPER_TOP1` key of a cell (``cifar10_jpeg`` is CIFAR-10)."""
  return (method, _PAPER_DATASET.get(dataset, dataset), profile, float(rho))


def paper_top1(method: str, dataset: str, profile: str,
               rho: float) -> Optional[float]:
  """The paper's top-1 accuracy (%) for the cell, or ``None`` if it has none."""
  return PAPER_TOP1.get(paper_key(method, dataset, profile, rho))


# --- Tables of runs ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cell:
  """One method on one long-tailed benchmark, run once per seed.

  Attributes:
    method: a name from :data:`remix_jax.trainer.methods.METHODS`.
    dataset: ``config.data.name`` (:data:`DEFAULT_DATASET`, or the
      offline copy :data:`OFFLINE_DATASET`).
    rho: imbalance ratio.
    profile: ``'exp'`` or ``'step'``.
    protocol: ``'paper'``, ``'cpu30'`` or ``'remix300'`` (``configs/cifar_lt.py``).
    seeds: the runs' seeds (``configs/cifar_lt.py``: each sets the subset,
      the initialisation, the mixing and the data order; 0 keeps LDAM's
      subset).
  """

  method: str
  dataset: str = DEFAULT_DATASET
  rho: float = 100
  profile: str = "exp"
  protocol: str = "cpu30"
  seeds: tuple[int, ...] = (0,)

  @property
  def group(self) -> tuple[str, str, float, str]:
    """``(dataset, profile, rho, protocol)``: cells compared with each other."""
    return (self.dataset, self.profile, float(self.rho), self.protocol)

  def config(self, seed: int):
    """The config of the run with ``seed`` (``configs/cifar_lt.py``)."""
    return cifar_lt.build(dataset=self.dataset, rho=self.rho,
                          profile=self.profile, method=self.method,
                          protocol=self.protocol, seed=seed)

  def deferred_base(self) -> Optional["Cell"]:
    """The cell this one trains as until its switch epoch (DRW → ERM, …;
    :func:`remix_jax.trainer.methods.deferred_base`), or ``None``."""
    base = methods.deferred_base(self.method)
    return None if base is None else dataclasses.replace(self, method=base)

  def run_name(self, seed: int) -> str:
    """The workdir name of the run with ``seed``."""
    return (f"{self.method}_{self.dataset}_{self.profile}{self.rho:g}_"
            f"{self.protocol}_s{seed}")

  def paper_top1(self) -> Optional[float]:
    """The paper's top-1 accuracy for this cell, or ``None``."""
    return paper_top1(self.method, self.dataset, self.profile, self.rho)


_CPU30_METHODS = ("erm", "mixup", "remix", "remix_drw", "cutmix", "remix_cm",
                  "cutmix_sumix", "sumix_remix", "cutmix_sumix_follow",
                  "sumix_follow_remix",
                  # Remix's successors, then two of them with the Remix rule.
                  "logit_adjustment", "cmo", "unimix", "balanced_mixup",
                  "remix_la", "remix_cmo")
#: The paper protocol's rows: Table 1's five seed-0 rows first, then as time
#: allows the LDAM rows and seeds 1 and 2 (the paper reports 5 seeds).
_PAPER_CELLS = (("erm", 3), ("drw", 3), ("mixup", 3), ("remix", 3),
                ("remix_drw", 3), ("ldam", 1), ("ldam_drw", 1),
                ("remix_ldam_drw", 1))

#: The reproduction tables by name.
TABLES: dict[str, list[Cell]] = {
    "cpu30": [Cell(m, protocol="cpu30") for m in _CPU30_METHODS],
    "paper": [Cell(m, protocol="paper", seeds=tuple(range(n)))
              for m, n in _PAPER_CELLS],
}


def get_table(name: str, dataset: str = DEFAULT_DATASET) -> list[Cell]:
  """The cells of table ``name`` on ``dataset``.

  Args:
    name: a key of :data:`TABLES`.
    dataset: the cells' ``config.data.name``.

  Returns:
    The table's cells, in order.

  Raises:
    ValueError: an unknown table (one line listing the names).
  """
  try:
    cells = TABLES[name]
  except KeyError:
    raise ValueError(f"unknown table {name!r}; choose one of "
                     f"{', '.join(TABLES)}") from None
  return [dataclasses.replace(c, dataset=dataset) for c in cells]
