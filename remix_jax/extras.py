"""The optional parts of remix_jax and the pip extras that install them.

The library (mixers, label rules, Remix, SUMix, losses, class balance, the
models) needs JAX, Flax, optax and numpy only. The input pipelines
(:mod:`remix_jax.data`'s ``create_train_data`` and friends), the trainer
(``main.py``, :mod:`remix_jax.trainer.train`) and the experiments need the
``trainer`` extra; of it, only the tfds datasets and the ``tensorboard``
metric writer need :data:`TENSORFLOW_MODULES`, so the trainer runs
``digits_numpy`` with ``config.metric_writer='jsonl'`` where TensorFlow is
not installed::

    pip install "remix_jax[trainer]"       # or, in a checkout: pip install -e ".[trainer]"

:func:`require` turns a missing package into one message that names the
extra, instead of the first ``ImportError`` deep inside an import. It looks
the packages up without importing them.
"""

from __future__ import annotations

import importlib.util

#: Per extra: the top-level module -> the distribution that provides it.
EXTRAS = {
    "trainer": {
        "tensorflow": "tensorflow-cpu",
        "tensorflow_datasets": "tensorflow-datasets",
        "orbax": "orbax-checkpoint",
        "clu": "clu",
        "ml_collections": "ml-collections",
        "tensorboard": "tensorboard",
        "sklearn": "scikit-learn",
        "matplotlib": "matplotlib",
        "tqdm": "tqdm",
        "PIL": "pillow",
        "importlib_resources": "importlib_resources",
    },
}


#: Modules of the ``trainer`` extra that only the tfds pipelines and clu's
#: TensorBoard writer import (TensorFlow and what comes with it).
TENSORFLOW_MODULES = ("tensorflow", "tensorflow_datasets", "clu",
                      "importlib_resources")


class MissingExtraError(ModuleNotFoundError):
  """Packages of an extra are not installed (one line: which, and the pip
  command)."""


def installed(module: str) -> bool:
  """Whether top-level ``module`` can be imported here (looked up, not
  imported)."""
  try:
    return importlib.util.find_spec(module) is not None
  except (ImportError, ValueError):  # a finder that refuses it
    return False


def missing(extra: str = "trainer") -> list[str]:
  """The distributions of ``extra`` whose modules are not importable here."""
  return [dist for module, dist in EXTRAS[extra].items()
          if not installed(module)]


def install_hint(extra: str = "trainer") -> str:
  """The pip command that installs ``extra``."""
  return (f'pip install "remix_jax[{extra}]" (in a checkout: '
          f'pip install -e ".[{extra}]")')


def require(what: str, extra: str = "trainer", *,
            optional: tuple[str, ...] = ()) -> None:
  """Raises unless every package of ``extra`` is installed, the modules in
  ``optional`` aside.

  Args:
    what: the part that needs them, for the message (e.g. ``"main.py"``).
    extra: a key of :data:`EXTRAS`.
    optional: top-level modules of ``extra`` that ``what`` can do without
      (e.g. :data:`TENSORFLOW_MODULES`); the message still names them when
      they are missing too, so that one install brings everything.

  Raises:
    MissingExtraError: one line naming the missing distributions and the
      command that installs them.
  """
  needed = [dist for module, dist in EXTRAS[extra].items()
            if module not in optional]
  absent = missing(extra)
  if set(absent) & set(needed):
    raise MissingExtraError(
        f"{what} needs remix_jax's `{extra}` extra; not installed: "
        f"{', '.join(absent)}; install them with {install_hint(extra)}")
