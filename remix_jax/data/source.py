"""Finding (and, where possible, preparing) a dataset's tfds builder.

Checks happen before any heavy work and fail with one line that names the
data directory searched and how to prepare the dataset:

* ``prepared`` datasets (``cifar10_jpeg``) must already be in ``data_dir``;
* ``download`` datasets (CIFAR, iNat) probe the download host with a 3 s
  socket connect first, instead of tfds' minutes of download retries offline;
* ``manual`` datasets (CINIC-10, Tiny-ImageNet, ImageNet) need their
  archives in ``<data_dir>/downloads/manual/``;
* ``generated`` datasets (digits) prepare themselves, offline.

See ``docs/datasets.md`` for the preparation steps of each dataset.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Optional

from remix_jax.data import registry

DOCS = "docs/datasets.md"


def resolve_data_dir(data_dir=None, cfg_data_dir=None) -> tuple[str, str]:
  """The tfds data directory and where it came from.

  Precedence: the ``data_dir`` argument, ``DataOptions.data_dir``
  (``cfg_data_dir``), ``$TFDS_DATA_DIR``, then tfds' default
  ``~/tensorflow_datasets``.

  Returns:
    ``(path, origin)``, e.g. ``('/data/tfds', 'TFDS_DATA_DIR')``.
  """
  for value, origin in ((data_dir, "data_dir argument"),
                        (cfg_data_dir, "DataOptions.data_dir"),
                        (os.environ.get("TFDS_DATA_DIR"), "TFDS_DATA_DIR")):
    if value:
      return os.path.expanduser(str(value)), origin
  return os.path.expanduser("~/tensorflow_datasets"), "tfds default"


def network_available(host: str, port: int = 443,
                      timeout: float = 3.0) -> bool:
  """Whether a TCP connection to ``host:port`` opens within ``timeout`` s.

  Name resolution runs in a daemon thread too, so a hanging DNS lookup cannot
  stall the caller longer than ``timeout``.
  """
  result = []

  def probe():
    try:
      socket.create_connection((host, port), timeout=timeout).close()
      result.append(True)
    except OSError:
      result.append(False)

  thread = threading.Thread(target=probe, daemon=True)
  thread.start()
  thread.join(timeout)
  return bool(result and result[0])


def manual_path(spec: registry.DatasetSpec, data_dir: str,
                name: Optional[str] = None) -> str:
  """Where tfds looks for ``spec``'s manually downloaded archive ``name``
  (default: ``spec.manual_file``)."""
  return os.path.join(data_dir, "downloads", "manual",
                      name or spec.manual_file)


def _where(spec, data_dir: str, origin: str) -> str:
  return f"{spec.name} is not prepared in {data_dir} (from {origin})"


def _check_prepared_dir(spec, data_dir: str, origin: str) -> None:
  root = os.path.join(data_dir, spec.tfds_name)
  if not os.path.isdir(root) or not any(
      os.path.isfile(os.path.join(root, v, "dataset_info.json"))
      for v in os.listdir(root)):
    raise FileNotFoundError(
        f"{_where(spec, data_dir, origin)}: expected {root}/<version>/"
        f"dataset_info.json; point DataOptions.data_dir or TFDS_DATA_DIR at "
        f"the directory that holds {spec.tfds_name}/ (see {DOCS})")


def _check_can_prepare(spec, data_dir: str, origin: str) -> None:
  """Raises unless an unprepared dataset can be built here and now."""
  if spec.source == registry.DOWNLOAD and not network_available(
      spec.download_host):
    raise FileNotFoundError(
        f"{_where(spec, data_dir, origin)} and {spec.download_host} cannot be "
        f"reached to download it; prepare it on a machine with network "
        f"access and copy {spec.tfds_name}/ into {data_dir}, or set "
        f"DataOptions.data_dir / TFDS_DATA_DIR (see {DOCS})")
  if spec.source != registry.MANUAL:
    return
  # All archives are checked up front: tfds' imagenet2012 would otherwise
  # prepare (for hours) without the split whose tar is missing.
  missing = [name for name in (spec.manual_file, *spec.manual_extra)
             if not os.path.isfile(manual_path(spec, data_dir, name))]
  if missing:
    paths = ", ".join(manual_path(spec, data_dir, name) for name in missing)
    plural = len(missing) > 1
    raise FileNotFoundError(
        f"{_where(spec, data_dir, origin)} and the manual "
        f"download{'s' if plural else ''} {paths} {'are' if plural else 'is'} "
        f"missing; download {', '.join(missing)} there (see {DOCS})")


def load_builder(spec: registry.DatasetSpec, data_dir: str, origin: str):
  """The prepared tfds builder of ``spec`` in ``data_dir``.

  Prepares generated datasets, downloads reachable ones and builds manual
  ones from their archive; raises a one-line ``FileNotFoundError`` otherwise,
  and for a ``data_dir`` that does not exist unless it is tfds' default
  (which tfds creates).
  """
  if origin != "tfds default" and not os.path.isdir(data_dir):
    raise FileNotFoundError(
        f"data directory {data_dir} (from {origin}) does not exist; create it "
        f"or point {origin} at the directory that holds the datasets "
        f"(see {DOCS})")
  if spec.source == registry.PREPARED:
    _check_prepared_dir(spec, data_dir, origin)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  # Importing the builders registers cinic10, sklearn_digits and
  # tiny_imagenet with tfds.
  from remix_jax.data import builders  # noqa: F401
  builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
  if not builder.is_prepared():
    _check_can_prepare(spec, data_dir, origin)
    logging.info("preparing %s in %s", spec.tfds_name, data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return builder
