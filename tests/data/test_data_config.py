"""The data options and every one-line error, raised before any heavy work;
the trainer's ``config.data`` and how its errors name the config fields."""

import dataclasses
import os
import pathlib
import subprocess
import sys
import time

import pytest

from configs import default
from remix_jax.trainer import config_lib
from remix_jax import data
from remix_jax.data import source

FIELDS = {"name": "cifar10", "data_dir": None, "rho": 100.0,
          "profile": "exp", "split_seed": 0, "shuffle_seed": 0,
          "augment": True, "resample_beta": 0.9999, "partner_power": 1.0}

options = data.DataOptions


def test_default_options_fields():
  assert dataclasses.asdict(data.DataOptions()) == FIELDS
  assert data.check_options(data.DataOptions()).name == "cifar10"
  with pytest.raises(dataclasses.FrozenInstanceError):
    data.DataOptions().rho = 10.0
  assert data.SUPPORTED_DATASETS == (
      "cifar10", "cifar100", "cifar10_jpeg", "cinic10", "tiny_imagenet",
      "i_naturalist2018", "imagenet2012", "sklearn_digits", "digits_numpy")


def test_default_config_fields():
  c = default.get_config().data
  assert c.to_dict() == FIELDS
  assert config_lib.data_options(c) == data.DataOptions()
  c.data_dir = "/data/tfds"  # str-typed placeholder: overridable by flags
  with pytest.raises(TypeError):
    c.data_dir = 3
  assert config_lib.data_options(c).data_dir == "/data/tfds"
  c.unknown = 1
  with pytest.raises(ValueError, match="config.data.unknown is not a data "
                     "option; the fields are name, data_dir, rho"):
    config_lib.data_options(c)


def test_import_is_light():
  code = ("import sys, remix_jax.data as d; d.check_options(d.DataOptions()); "
          "print(sorted(m for m in ('tensorflow', 'tensorflow_datasets', "
          "'ml_collections', 'jax') if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True)
  assert "tensorflow" not in out.stdout
  assert "ml_collections" not in out.stdout


def test_no_data_module_imports_ml_collections():
  root = pathlib.Path(data.__file__).parent
  assert not [str(p.relative_to(root)) for p in root.rglob("*.py")
              if "ml_collections" in p.read_text()]


@pytest.mark.parametrize("overrides, message", [
    (dict(name="mnist"), "name: unknown dataset 'mnist'; supported: cifar10, "
     "cifar100, cifar10_jpeg, cinic10, tiny_imagenet, i_naturalist2018, "
     "imagenet2012, sklearn_digits, digits_numpy$"),
    (dict(rho=0.5), "rho=0.5 must be a finite number >= 1"),
    (dict(profile="linear"), "profile: unknown long-tail profile 'linear'; "
     "choose one of exp, step$"),
    (dict(resample_beta=1.0), r"resample_beta must be in \[0, 1\), got 1.0$"),
    (dict(split_seed=-1), r"split_seed=-1 must be an integer in "
     r"\[0, 2\*\*32\)$"),
    (dict(shuffle_seed=True), r"shuffle_seed=True must be an integer"),
])
def test_check_options_errors(overrides, message):
  with pytest.raises(ValueError, match="^" + message) as e:
    data.check_options(options(**overrides))
  assert "\n" not in str(e.value)
  assert "config." not in str(e.value)  # the library's names, not the config's


@pytest.mark.parametrize("field, value, message", [
    ("name", "mnist", "config.data.name: unknown dataset 'mnist'; supported:"),
    ("rho", 0.5, "config.data.rho=0.5 must be a finite number >= 1"),
    ("profile", "linear", "config.data.profile: unknown long-tail profile"),
    ("split_seed", -1, r"config.data.split_seed=-1 must be an integer"),
    ("resample_beta", 1.0, r"config.cb_beta must be in \[0, 1\), got 1.0"),
])
def test_trainer_errors_name_the_config_field(field, value, message):
  c = default.get_config()
  setattr(c.data, field, value)
  with pytest.raises(ValueError, match="^" + message) as e:
    config_lib.validate_config(c)
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("factory", ["create_train_data", "create_eval_data"])
def test_a_config_dict_is_refused(factory):
  with pytest.raises(TypeError) as e:
    getattr(data, factory)(default.get_config().data, global_batch_size=8)
  assert str(e.value) == ("options must be a remix_jax.data.DataOptions, got "
                          "ConfigDict; pass DataOptions(**fields)")


@pytest.mark.parametrize("factory", ["create_train_data", "create_eval_data"])
def test_config_errors_come_first(tmp_path, factory):
  create = getattr(data, factory)
  with pytest.raises(ValueError, match="unknown dataset"):
    create(options(name="imagenet"), global_batch_size=8)
  with pytest.raises(ValueError, match="global batch size 10 is not divisible "
                     "by the number of processes 4"):
    create(options(data_dir=str(tmp_path)), global_batch_size=10,
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
                                                   "DataOptions.data_dir")
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
      data.create_train_data(options(name=name), global_batch_size=8)
  assert time.monotonic() - start < 20


def test_prepared_dataset_missing(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match=f"cifar10_jpeg is not prepared in {tmp_path} "
                     r"\(from data_dir argument\): expected .*dataset_info"
                     r".json; point DataOptions.data_dir or TFDS_DATA_DIR"):
    data.create_eval_data(options(name="cifar10_jpeg"), global_batch_size=8,
                          data_dir=str(tmp_path))


def test_cinic_manual_archive_missing(tmp_path):
  manual = os.path.join(str(tmp_path), "downloads", "manual",
                        "CINIC-10.tar.gz")
  with pytest.raises(FileNotFoundError,
                     match=f"cinic10 is not prepared in {tmp_path} \\(from "
                     f"DataOptions.data_dir\\) and the manual download "
                     f"{manual} is missing"):
    data.create_train_data(options(name="cinic10", data_dir=str(tmp_path)),
                           global_batch_size=8)
