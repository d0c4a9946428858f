"""The data config (``config.data``): defaults and validation, no data access.

Fields:
  name: one of :data:`~remix_jax.data.registry.SUPPORTED_DATASETS`.
  data_dir: tfds data directory; ``None`` = ``$TFDS_DATA_DIR`` or
    ``~/tensorflow_datasets``.
  rho: imbalance ratio ``n_max / n_min`` (1 = balanced); ignored by datasets
    that are long-tailed already (iNaturalist 2018).
  profile: ``'exp'`` or ``'step'`` (:mod:`remix_jax.data.longtail`).
  split_seed: seed of the long-tailed subset (0 = LDAM-DRW's split).
  shuffle_seed: seed of the epoch order and augmentation.
  augment: random crop/flip (and colour jitter on iNat) for training.
  resample_beta: β of class-balanced re-sampling (RS/DRS). In the
    trainer's config it is a reference to ``config.cb_beta``, the β of
    re-weighting (``configs/default.py``): one value under two names.
"""

from __future__ import annotations

import numbers

import ml_collections

from remix_jax.data import longtail
from remix_jax.data import registry
from remix_jax.data import resample


def default_data_config() -> ml_collections.ConfigDict:
  """The default ``config.data``: CIFAR-10-LT (exp, ρ = 100) on cifar10_jpeg."""
  c = ml_collections.ConfigDict()
  c.name = "cifar10_jpeg"
  c.data_dir = ml_collections.config_dict.placeholder(str)  # None, str-typed
  c.rho = 100.0
  c.profile = "exp"
  c.split_seed = 0
  c.shuffle_seed = 0
  c.augment = True
  c.resample_beta = 0.9999
  return c


def _check_seed(cfg, field: str) -> None:
  value = getattr(cfg, field)
  if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
      or not 0 <= value < 2**32):
    raise ValueError(f"config.data.{field}={value!r} must be an integer in "
                     "[0, 2**32)")


def validate_data_config(cfg) -> registry.DatasetSpec:
  """Checks ``config.data`` without touching any data.

  Args:
    cfg: a ``ConfigDict`` (or any attribute object) with the fields of
      :func:`default_data_config`.

  Returns:
    The dataset's :class:`~remix_jax.data.registry.DatasetSpec`.

  Raises:
    ValueError: one line naming the bad field (unknown dataset or profile with
      the choices, ``rho < 1``, a bad seed or β).
  """
  spec = registry.get_spec(cfg.name)
  try:
    longtail.check_rho(cfg.rho)
    longtail.check_profile(cfg.profile)
    resample.check_beta(cfg.resample_beta)
  except ValueError as e:
    raise ValueError(f"config.data: {e}") from None
  for field in ("split_seed", "shuffle_seed"):
    _check_seed(cfg, field)
  return spec
