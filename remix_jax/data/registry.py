"""The supported datasets: which tfds builder, splits, preparation and
augmentation each one uses.

Light to import (no TensorFlow): :func:`remix_jax.data.check_options`
checks names against this table before any data is touched.

Per-channel mean/std are on the ``[0, 1]`` scale. CIFAR-10/100 use the values
of LDAM-DRW's ``cifar_train.py`` (Cao et al. 2019); ``cifar10_jpeg`` uses the
statistics of its own train split (``docs/datasets.md``); CINIC-10 the values
published with the dataset (Darlow et al. 2018); Tiny-ImageNet, ImageNet and
iNaturalist the ImageNet values; digits (both pipelines) the statistics of the
1,797 images scaled to ``[0, 1]``.

Every dataset is read through tfds and ``tf.data`` except ``digits_numpy``:
the same images, split and augmentation as ``sklearn_digits``, read from
scikit-learn by a NumPy pipeline (:mod:`remix_jax.data.numpy_pipeline`), so
that a machine without TensorFlow can train end to end.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

#: Where an unprepared dataset comes from.
DOWNLOAD = "download"  # tfds downloads it (needs the network)
MANUAL = "manual"  # an archive the user places in tfds' manual_dir
PREPARED = "prepared"  # prepared elsewhere and copied into data_dir
GENERATED = "generated"  # built locally with no download (bundled data)

#: How a dataset is read.
TFDS = "tfds"  # a tfds builder and a tf.data pipeline (TensorFlow)
NUMPY = "numpy"  # in memory, NumPy alone (no TensorFlow)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How one dataset is loaded, prepared, sub-sampled and augmented.

  Attributes:
    name: the dataset's name (:attr:`remix_jax.data.DataOptions.name`).
    tfds_name: the tfds builder name.
    train_split: the tfds split trained on.
    eval_split: the tfds split evaluated on (CINIC-10: ``validation``, as in
      Remix; the others: ``test`` or ``validation``).
    in_memory: decode once and cache uint8 arrays in memory (and select the
      long-tailed subset); ``False`` streams the split with tfds (ImageNet,
      iNat).
    longtail: build the long-tailed subset from ``rho``/``profile``; ``False``
      keeps every training image (the split is long-tailed already).
    source: one of ``download``, ``manual``, ``prepared``, ``generated``.
    mean: per-channel mean on the ``[0, 1]`` scale.
    std: per-channel standard deviation on the ``[0, 1]`` scale.
    pad: in-memory augmentation: zero padding before the random crop back to
      the original size (0 = no crop).
    flip: in-memory augmentation: random horizontal flip.
    crop_size: streamed augmentation: side of the random-resized / centre crop.
    resize_size: streamed evaluation: shorter side before the centre crop.
    download_host: host probed (3 s socket connect) before a download.
    manual_file: the archive expected in ``<data_dir>/downloads/manual``.
    manual_extra: further archives the builder needs next to
      ``manual_file`` (ImageNet's validation tar).
    pipeline: ``tfds`` (tfds and ``tf.data``) or ``numpy`` (no TensorFlow).
  """

  name: str
  tfds_name: str
  train_split: str
  eval_split: str
  in_memory: bool
  longtail: bool
  source: str
  mean: tuple[float, ...]
  std: tuple[float, ...]
  pad: int = 0
  flip: bool = False
  crop_size: int = 0
  resize_size: int = 0
  download_host: Optional[str] = None
  manual_file: Optional[str] = None
  manual_extra: tuple[str, ...] = ()
  pipeline: str = TFDS


#: In memory, long-tailed subset, pad-4 crop and flip (LDAM-DRW's CIFAR
#: recipe; also Tiny-ImageNet's, until random-resized crops run in memory).
_PAD_CROP = dict(in_memory=True, longtail=True, pad=4, flip=True)
_IMAGENET_STATS = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
#: Streamed, every image kept, random-resized 224 crops (evaluation: resize
#: 256, centre 224).
_STREAMED = dict(in_memory=False, longtail=False, crop_size=224,
                 resize_size=256, flip=True, **_IMAGENET_STATS)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in [
        DatasetSpec(
            name="cifar10", tfds_name="cifar10", train_split="train",
            eval_split="test", source=DOWNLOAD,
            mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010),
            download_host="www.cs.toronto.edu", **_PAD_CROP),
        DatasetSpec(
            name="cifar100", tfds_name="cifar100", train_split="train",
            eval_split="test", source=DOWNLOAD,
            mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
            download_host="www.cs.toronto.edu", **_PAD_CROP),
        DatasetSpec(
            name="cifar10_jpeg", tfds_name="cifar10_jpeg", train_split="train",
            eval_split="test", source=PREPARED,
            mean=(0.4913, 0.4821, 0.4465), std=(0.2451, 0.2427, 0.2608),
            **_PAD_CROP),
        DatasetSpec(
            name="cinic10", tfds_name="cinic10", train_split="train",
            eval_split="validation", source=MANUAL,
            mean=(0.4789, 0.4723, 0.4305), std=(0.2421, 0.2383, 0.2587),
            manual_file="CINIC-10.tar.gz", **_PAD_CROP),
        DatasetSpec(
            name="tiny_imagenet", tfds_name="tiny_imagenet",
            train_split="train", eval_split="validation", source=MANUAL,
            manual_file="tiny-imagenet-200.zip", **_IMAGENET_STATS,
            **_PAD_CROP),
        DatasetSpec(
            name="i_naturalist2018", tfds_name="i_naturalist2018",
            train_split="train", eval_split="validation", source=DOWNLOAD,
            download_host="ml-inat-competition-datasets.s3.amazonaws.com",
            **_STREAMED),
        DatasetSpec(
            name="imagenet2012", tfds_name="imagenet2012",
            train_split="train", eval_split="validation", source=MANUAL,
            manual_file="ILSVRC2012_img_train.tar",
            manual_extra=("ILSVRC2012_img_val.tar",), **_STREAMED),
        DatasetSpec(
            name="sklearn_digits", tfds_name="sklearn_digits",
            train_split="train", eval_split="test", in_memory=True,
            longtail=True, source=GENERATED, mean=(0.3053,), std=(0.3759,),
            pad=1, flip=False),
        DatasetSpec(
            name="digits_numpy", tfds_name="", train_split="train",
            eval_split="test", in_memory=True, longtail=True,
            source=GENERATED, mean=(0.3053,), std=(0.3759,), pad=1,
            flip=False, pipeline=NUMPY),
    ]
}

#: The names accepted by :attr:`remix_jax.data.DataOptions.name`.
SUPPORTED_DATASETS: tuple[str, ...] = tuple(DATASETS)


def get_spec(name: str) -> DatasetSpec:
  """The spec of dataset ``name``; a one-line ``ValueError`` lists the
  choices."""
  try:
    return DATASETS[name]
  except (KeyError, TypeError):
    raise ValueError(f"unknown dataset {name!r}; supported: "
                     f"{', '.join(SUPPORTED_DATASETS)}") from None
