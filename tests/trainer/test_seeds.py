"""What a run's seed varies: the subset, the initialisation, the mixing and
the data order, from keys that no two seeds or purposes share."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import cifar_lt
from remix_jax.trainer import config_lib
from remix_jax import data
from remix_jax import parallel
from remix_jax.trainer import run_record
from remix_jax.trainer import build
from remix_jax.trainer import methods


def _cell(seed, **kwargs):
  """A Remix cell of the paper table on the offline digits, tiny model."""
  c = cifar_lt.build(method="remix", seed=seed, **kwargs)
  c.data.name = "sklearn_digits"
  c.data.rho = 10.0
  c.model = "tiny_resnet"
  c.batch_size = 16
  return methods.resolve(c)


def _train_data(config):
  return data.create_train_data(config_lib.data_options(config.data),
                                global_batch_size=config.batch_size)


def test_a_table_seed_sets_every_seed_field():
  c0, c1 = cifar_lt.build(seed=0), cifar_lt.build(seed=1)
  assert (c0.seed, c0.data.split_seed, c0.data.shuffle_seed) == (0, 0, 0)
  assert (c1.seed, c1.data.split_seed, c1.data.shuffle_seed) == (1, 1, 1)
  pinned = cifar_lt.get_config("seed=2,split_seed=0")
  assert (pinned.seed, pinned.data.split_seed, pinned.data.shuffle_seed) == (
      2, 0, 2)


def test_two_seeds_differ_in_subset_and_data_order():
  d0, d1 = _train_data(_cell(0)), _train_data(_cell(1))
  assert set(d0.source_indices) != set(d1.source_indices)
  # The same subset (split seed pinned): only the order differs.
  pinned = _train_data(_cell(1, split_seed=0))
  np.testing.assert_array_equal(np.sort(pinned.source_indices),
                                np.sort(d0.source_indices))
  order0 = d0.source_indices[d0.epoch_columns(0, False)["index"]]
  order1 = pinned.source_indices[pinned.epoch_columns(0, False)["index"]]
  assert not np.array_equal(order0, order1)


def _state_and_step(config, counts):
  mesh = parallel.make_mesh(1)
  state, step, _ = build.build(config, mesh, num_classes=len(counts),
                               class_counts=np.asarray(counts),
                               steps_per_epoch=10)
  return mesh, state, step


def test_two_seeds_differ_in_initialisation_and_mixing():
  counts = [50, 20, 8, 4, 2]
  mesh, s0, step = _state_and_step(_cell(0), counts)
  _, s1, _ = _state_and_step(_cell(1), counts)
  leaves0, leaves1 = jax.tree.leaves(s0.params), jax.tree.leaves(s1.params)
  assert any(not np.array_equal(a, b) for a, b in zip(leaves0, leaves1))
  assert not np.array_equal(s0.rng, s1.rng)
  # Same weights, same batch, the other seed's step key: another mix.
  rng = np.random.RandomState(0)
  batch = parallel.shard_batch(mesh, (
      rng.randn(16, 8, 8, 1).astype(np.float32),
      rng.randint(0, 5, 16).astype(np.int32)))
  # (The step donates its state: each call gets its own copy.)
  copy = lambda state, rng: jax.tree.map(jnp.copy, state._replace(rng=rng))
  _, m0 = step(copy(s0, s0.rng), *batch)
  _, m1 = step(copy(s0, s1.rng), *batch)
  assert float(m0["loss"]) != float(m1["loss"])


def test_no_two_seeds_or_purposes_share_a_key():
  seeds = range(8)
  derived = {(s, p): tuple(np.asarray(jax.random.key_data(
      build.run_key(s, p))).tolist())
             for s, p in itertools.product(seeds, build.KEY_PURPOSES)}
  assert len(set(derived.values())) == len(derived)
  # Nor a plain key(s'), the earlier derivation's init and step keys.
  plain = {tuple(np.asarray(jax.random.key_data(jax.random.key(s))).tolist())
           for s in range(len(seeds) + 1)}
  assert not plain & set(derived.values())


def test_the_run_record_says_how_a_new_run_derived_its_keys(tmp_path):
  config = _cell(0)
  new = tmp_path / "new"
  new.mkdir()
  run_record.write(str(new), config, step=0, changes={},
                   key_derivation=build.KEY_DERIVATION)
  assert run_record.key_derivation(str(new)) == build.KEY_DERIVATION
  # A record of the earlier code has none; resuming it keeps none.
  old = tmp_path / "old"
  old.mkdir()
  (old / run_record.RECORD_FILE).write_text(json.dumps(
      {"history": [], "config": json.loads(config.to_json_best_effort())}))
  run_record.write(str(old), config, step=48, changes={},
                   key_derivation=build.KEY_DERIVATION)
  assert run_record.key_derivation(str(old)) is None
  # Nor does a record first written by a resumed run.
  resumed = tmp_path / "resumed"
  resumed.mkdir()
  run_record.write(str(resumed), config, step=48, changes={},
                   key_derivation=build.KEY_DERIVATION)
  assert run_record.key_derivation(str(resumed)) is None


@pytest.mark.parametrize("purpose", ["mixing", ""])
def test_an_unknown_purpose_is_refused(purpose):
  with pytest.raises(ValueError, match="must be one of init, step"):
    build.run_key(0, purpose)
