"""The data options (:class:`DataOptions`) and their validation, no data
access.

Plain typed arguments: the library takes a :class:`DataOptions`, never a
config. A trainer that keeps these fields in its own config builds one with
``DataOptions(**fields)`` and maps the argument names of
:func:`check_options`'s errors to its field names.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Optional

from remix_jax import class_balance
from remix_jax.data import longtail
from remix_jax.data import registry


@dataclasses.dataclass(frozen=True)
class DataOptions:
  """Which long-tailed split to build and how to order and augment it.

  The defaults are CIFAR-10-LT (exp, ρ = 100) on tfds' ``cifar10``.

  Attributes:
    name: one of :data:`~remix_jax.data.registry.SUPPORTED_DATASETS`.
    data_dir: tfds data directory; ``None`` = ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``. The ``data_dir`` argument of
      :func:`~remix_jax.data.create_train_data` takes precedence.
    rho: imbalance ratio ``n_max / n_min`` (1 = balanced); ignored by
      datasets that are long-tailed already (iNaturalist 2018).
    profile: ``'exp'`` or ``'step'`` (:mod:`remix_jax.data.longtail`).
    split_seed: seed of the long-tailed subset (0 = LDAM-DRW's split).
    shuffle_seed: seed of the epoch order and augmentation.
    augment: random crop/flip (and colour jitter on iNat) for training.
    resample_beta: β of class-balanced re-sampling (RS/DRS),
      ``0 <= β < 1``. The trainer's config ties it to the β of
      re-weighting (``config.cb_beta``): one value under two names.
    partner_power: r of the partner stream (``iterate(...,
      partners=True)``): an example of class ``c`` is drawn with
      probability ``∝ n_c^(−r)``, so class ``c`` with ``∝ n_c^(1 − r)``; 1
      is class-balanced (Balanced-MixUp; CMO's default), 0 the data's own
      frequencies. CMO's ``--weighted_alpha``.
  """

  name: str = "cifar10"
  data_dir: Optional[str] = None
  rho: float = 100.0
  profile: str = "exp"
  split_seed: int = 0
  shuffle_seed: int = 0
  augment: bool = True
  resample_beta: float = 0.9999
  partner_power: float = 1.0


def _check_seed(field: str, value) -> None:
  """One-line ``ValueError`` unless ``value`` is an integer in [0, 2**32)."""
  if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
      or not 0 <= value < 2**32):
    raise ValueError(f"{field}={value!r} must be an integer in [0, 2**32)")


def _named(field: str, check, value):
  """``check(value)``, its ``ValueError`` prefixed with ``field``."""
  try:
    return check(value)
  except ValueError as e:
    raise ValueError(f"{field}: {e}") from None


def check_options(options: DataOptions) -> registry.DatasetSpec:
  """Checks ``options`` without touching any data.

  Args:
    options: the :class:`DataOptions` to check.

  Returns:
    The dataset's :class:`~remix_jax.data.registry.DatasetSpec`.

  Raises:
    TypeError: ``options`` is not a :class:`DataOptions` (e.g. a config
      dict); one line saying how to build one.
    ValueError: one line that starts with the name of the bad argument
      (e.g. ``rho=0.5 must be a finite number >= 1 ...``; an unknown dataset
      or profile lists the choices).
  """
  if not isinstance(options, DataOptions):
    raise TypeError(f"options must be a remix_jax.data.DataOptions, got "
                    f"{type(options).__name__}; pass DataOptions(**fields)")
  spec = _named("name", registry.get_spec, options.name)
  longtail.check_rho(options.rho)
  _named("profile", longtail.check_profile, options.profile)
  class_balance.check_beta(options.resample_beta, name="resample_beta")
  if not options.partner_power >= 0:
    raise ValueError(f"partner_power={options.partner_power!r} must be >= 0")
  for field in ("split_seed", "shuffle_seed"):
    _check_seed(field, getattr(options, field))
  return spec
