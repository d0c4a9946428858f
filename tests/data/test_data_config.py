"""The data config and every one-line error, raised before any heavy work."""

import os
import subprocess
import sys
import time

import pytest

from remix_jax import data
from remix_jax.data import source

FIELDS = {"name": "cifar10_jpeg", "data_dir": None, "rho": 100.0,
          "profile": "exp", "split_seed": 0, "shuffle_seed": 0,
          "augment": True, "resample_beta": 0.9999}


def config(**overrides):
  c = data.default_data_config()
  c.update(overrides)
  return c


def test_default_config_fields():
  assert data.default_data_config().to_dict() == FIELDS
  c = data.default_data_config()
  data.validate_data_config(c)
  c.data_dir = "/data/tfds"  # str-typed placeholder: overridable by flags
  with pytest.raises(TypeError):
    c.data_dir = 3
  assert data.SUPPORTED_DATASETS == (
      "cifar10", "cifar100", "cifar10_jpeg", "cinic10", "tiny_imagenet",
      "i_naturalist2018", "imagenet2012", "sklearn_digits")


def test_import_is_light():
  code = ("import sys, remix_jax.data as d; d.default_data_config(); "
          "print(sorted(m for m in ('tensorflow', 'tensorflow_datasets', "
          "'jax') if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True)
  assert "tensorflow" not in out.stdout


@pytest.mark.parametrize("overrides, message", [
    (dict(name="mnist"), "unknown dataset 'mnist'; supported: cifar10, "
     "cifar100, cifar10_jpeg, cinic10, tiny_imagenet, i_naturalist2018, "
     "imagenet2012, sklearn_digits"),
    (dict(rho=0.5), "config.data: rho=0.5 must be a finite number >= 1"),
    (dict(profile="linear"), "config.data: unknown long-tail profile "
     "'linear'; choose one of exp, step"),
    (dict(resample_beta=1.0), r"config.data: resample_beta=1.0 must be in "
     r"\[0, 1\)"),
    (dict(split_seed=-1), r"config.data.split_seed=-1 must be an integer"),
])
def test_validate_errors(overrides, message):
  with pytest.raises(ValueError, match=message) as e:
    data.validate_data_config(config(**overrides))
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("factory", ["create_train_data", "create_eval_data"])
def test_config_errors_come_first(tmp_path, factory):
  create = getattr(data, factory)
  with pytest.raises(ValueError, match="unknown dataset"):
    create(config(name="imagenet"), global_batch_size=8)
  with pytest.raises(ValueError, match="global batch size 10 is not divisible "
                     "by the number of processes 4"):
    create(config(data_dir=str(tmp_path)), global_batch_size=10,
           process_count=4)


def test_network_probe_fails_fast():
  start = time.monotonic()
  assert not source.network_available("192.0.2.1", timeout=0.5)
  assert not source.network_available("host.invalid", timeout=0.5)
  assert time.monotonic() - start < 3


def test_data_dir_precedence(monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", "/env/tfds")
  assert source.resolve_data_dir("/arg", "/cfg") == ("/arg",
                                                     "data_dir argument")
  assert source.resolve_data_dir(None, "/cfg") == ("/cfg",
                                                   "config.data.data_dir")
  assert source.resolve_data_dir() == ("/env/tfds", "TFDS_DATA_DIR")
  monkeypatch.delenv("TFDS_DATA_DIR")
  assert source.resolve_data_dir()[0] == os.path.expanduser(
      "~/tensorflow_datasets")


def test_offline_download_fails_within_seconds(tmp_path, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  monkeypatch.setattr(source, "network_available", lambda host: False)
  start = time.monotonic()
  for name, host in (("cifar10", "www.cs.toronto.edu"),
                     ("cifar100", "www.cs.toronto.edu"),
                     ("i_naturalist2018", "ml-inat-competition")):
    with pytest.raises(FileNotFoundError,
                       match=f"{name} is not prepared in {tmp_path} \\(from "
                       f"TFDS_DATA_DIR\\) and {host}.* cannot be reached"):
      data.create_train_data(config(name=name), global_batch_size=8)
  assert time.monotonic() - start < 20


def test_prepared_dataset_missing(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match=f"cifar10_jpeg is not prepared in {tmp_path} "
                     r"\(from data_dir argument\): expected .*dataset_info"
                     r".json; point config.data.data_dir or TFDS_DATA_DIR"):
    data.create_eval_data(config(), global_batch_size=8,
                          data_dir=str(tmp_path))


def test_cinic_manual_archive_missing(tmp_path):
  manual = os.path.join(str(tmp_path), "downloads", "manual",
                        "CINIC-10.tar.gz")
  with pytest.raises(FileNotFoundError,
                     match=f"cinic10 is not prepared in {tmp_path} \\(from "
                     f"config.data.data_dir\\) and the manual download "
                     f"{manual} is missing"):
    data.create_train_data(config(name="cinic10", data_dir=str(tmp_path)),
                           global_batch_size=8)
