"""The NumPy pipeline (``digits_numpy``): the tfds twin's batches, and no
TensorFlow."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from remix_jax import data
from remix_jax.data import numpy_pipeline
from tests.helpers import REPO


def options(name, **overrides):
  return data.DataOptions(**{"name": name, "rho": 10.0, **overrides})


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


@pytest.mark.parametrize("resample", [False, True])
def test_train_batches_equal_the_tfds_pipelines(digits_dir, resample):
  kw = dict(global_batch_size=32, data_dir=digits_dir)
  ours = data.create_train_data(options("digits_numpy"), **kw)
  tfds_twin = data.create_train_data(options("sklearn_digits"), **kw)
  np.testing.assert_array_equal(ours.class_counts, tfds_twin.class_counts)
  np.testing.assert_array_equal(ours.source_indices, tfds_twin.source_indices)
  assert ours.class_names == tfds_twin.class_names
  assert ours.image_shape == tfds_twin.image_shape == (8, 8, 1)
  np.testing.assert_array_equal(ours.images, tfds_twin.images)
  a = list(ours.iterate(2, resample=resample, start_step=3))
  b = list(tfds_twin.iterate(2, resample=resample, start_step=3))
  assert len(a) == len(b) == ours.steps_per_epoch - 3
  for x, y in zip(a, b):
    assert x["image"].dtype == np.float32 and x["label"].dtype == np.int32
    np.testing.assert_allclose(x["image"], y["image"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(x["label"], y["label"])


def test_process_slices_and_eval_batches_equal_the_tfds_pipelines(
    digits_dir):
  kw = dict(global_batch_size=64, process_index=1, process_count=2,
            data_dir=digits_dir)
  a = list(data.create_train_data(options("digits_numpy"), **kw).iterate(0))
  b = list(data.create_train_data(options("sklearn_digits"), **kw).iterate(0))
  assert a[0]["image"].shape == (32, 8, 8, 1)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["label"], y["label"])
  ours = data.create_eval_data(options("digits_numpy"), **kw)
  twin = data.create_eval_data(options("sklearn_digits"), **kw)
  assert (ours.num_examples, ours.num_batches) == (450, 8)
  a, b = list(ours.iterate()), list(twin.iterate())
  assert len(a) == len(b) == 8
  for x, y in zip(a, b):
    np.testing.assert_allclose(x["image"], y["image"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(x["label"], y["label"])
    np.testing.assert_array_equal(x["mask"], y["mask"])


def test_crop_flip_moves_pixels_as_asked():
  images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 1)
  out = numpy_pipeline.crop_flip(images, np.array([[1, 1], [0, 2]], np.int32),
                                 np.array([False, True]), pad=1)
  np.testing.assert_array_equal(out[0], images[0])  # the identity crop
  # Row offset 0 shifts down (a zero row on top); column offset 2 shifts
  # left (zero column on the right), then the flip mirrors it.
  shifted = np.zeros((3, 3), np.uint8)
  shifted[1:, :2] = images[1, :2, 1:, 0]
  np.testing.assert_array_equal(out[1, ..., 0], shifted[:, ::-1])


def test_training_data_imports_no_tensorflow():
  code = textwrap.dedent("""\
      import sys
      from remix_jax import data
      train = data.create_train_data(
          data.DataOptions(name="digits_numpy", rho=10.0),
          global_batch_size=16)
      batch = next(iter(train.iterate(0)))
      assert batch["image"].shape == (16, 8, 8, 1)
      assert list(data.create_eval_data(
          data.DataOptions(name="digits_numpy"), global_batch_size=100
      ).iterate())[-1]["mask"].sum() == 50
      print(sorted(m for m in sys.modules
                   if m.split(".")[0] in ("tensorflow", "tensorflow_datasets")))
      """)
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                       capture_output=True, text=True, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip() == "[]"


_WITHOUT_TENSORFLOW = """\
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in ("tensorflow", "tensorflow_datasets", "clu"):
      raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
"""


def test_a_tfds_dataset_without_tensorflow_says_which_extra():
  code = _WITHOUT_TENSORFLOW + textwrap.dedent("""\
      from remix_jax import data
      from remix_jax import extras
      train = data.create_train_data(data.DataOptions(name="digits_numpy"),
                                     global_batch_size=16)
      try:
        data.create_train_data(data.DataOptions(name="cifar10"),
                               global_batch_size=16)
      except extras.MissingExtraError as err:
        print(err)
      """)
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                       capture_output=True, text=True, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.startswith(
      "dataset cifar10 (tfds) needs remix_jax's `trainer` extra; not "
      "installed: tensorflow-cpu, tensorflow-datasets, clu;")


def test_main_with_a_tfds_dataset_without_tensorflow_says_which_extra(
    tmp_path):
  code = _WITHOUT_TENSORFLOW + textwrap.dedent(f"""\
      import main
      sys.argv = ["main.py", "--workdir", {str(tmp_path / "w")!r},
                  "--config.data.name=cifar10"]
      sys.exit(main.main())
      """)
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                       capture_output=True, text=True, check=False)
  assert out.returncode == 1, out.stderr[-3000:]
  assert out.stderr.strip().splitlines()[-1].startswith(
      "error: dataset cifar10 (tfds) needs remix_jax's `trainer` extra; not "
      "installed: tensorflow-cpu, tensorflow-datasets, clu;")
