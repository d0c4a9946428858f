"""Long-tailed tfds input pipelines (CIFAR-10/100-LT, CINIC-10-LT,
iNaturalist 2018, 8×8 digits), and one NumPy pipeline (``digits_numpy``).

Light to import: the options (:class:`DataOptions`, :func:`check_options`),
the long-tail counts/selection and the re-sampling rule are NumPy only. The
pipelines (``create_train_data``, ``create_eval_data``, ``TrainData``,
``EvalData``) need remix_jax's ``trainer`` extra (:mod:`remix_jax.extras`);
the tfds ones import TensorFlow and tfds when a dataset is opened,
``digits_numpy`` never does. They take a :class:`DataOptions`, never a
config.

References: Cao et al. 2019 (LDAM-DRW: CIFAR-LT construction, DRS); Cui et
al. 2019 (class-balanced effective number); Chou et al. 2020 (Remix: the
CIFAR/CINIC/iNat protocol).
"""

import importlib

from remix_jax.data.longtail import PROFILES
from remix_jax.data.longtail import longtail_counts
from remix_jax.data.longtail import longtail_indices
from remix_jax.data.options import DataOptions
from remix_jax.data.options import check_options
from remix_jax.data.registry import SUPPORTED_DATASETS
from remix_jax.data.resample import class_sampling_rates

#: Names resolved lazily (they import TensorFlow): name -> module.
_LAZY = {
    "create_train_data": "remix_jax.data.pipeline",
    "create_eval_data": "remix_jax.data.pipeline",
    "TrainData": "remix_jax.data.base",
    "EvalData": "remix_jax.data.base",
}

__all__ = ["DataOptions", "PROFILES", "SUPPORTED_DATASETS", "check_options",
           "class_sampling_rates", "longtail_counts", "longtail_indices",
           *_LAZY]


def __getattr__(name):
  if name in _LAZY:
    from remix_jax import extras  # pylint: disable=g-import-not-at-top
    # TensorFlow is checked when a tfds dataset is opened.
    extras.require(f"remix_jax.data.{name}",
                   optional=extras.TENSORFLOW_MODULES)
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
