"""Class re-balancing: one switch rule for DRW and DRS, one β for RW and RS."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from remix_jax import class_balance
from remix_jax import losses
from remix_jax.trainer import objective
from remix_jax.trainer import run_record
from remix_jax.data import resample
from remix_jax.trainer import methods


@pytest.mark.parametrize("mode,expected", [
    ("none", [False] * 4), ("rw", [True] * 4), ("drw", [False, False, True,
                                                        True])])
def test_reweighting_switches_at_the_epoch_on_host_and_device(mode, expected):
  rebalance = class_balance.Rebalance(reweight=mode, epoch=2)
  epochs = [0, 1, 2, 3]
  assert [bool(rebalance.reweights(e)) for e in epochs] == expected
  traced = jax.jit(lambda e: jnp.asarray(rebalance.reweights(e)))
  assert [bool(traced(jnp.float32(e))) for e in epochs] == expected


def test_drw_and_drs_switch_at_the_same_epoch():
  rebalance = class_balance.Rebalance(reweight="drw", resample="drs", epoch=3)
  for epoch in range(6):
    assert rebalance.reweights(epoch) == rebalance.resamples(epoch) == (
        epoch >= 3)
  rs = class_balance.Rebalance(resample="rs", epoch=3)
  assert rs.resamples(0) and not rs.reweights(5)


def test_a_bad_mode_is_one_line_with_the_choices():
  with pytest.raises(ValueError,
                     match=r"^resample='drx' is not valid; choose one "
                           r"of none, rs, drs$"):
    class_balance.Rebalance(resample="drx")


def test_the_loss_weights_follow_the_schedule():
  config = methods.resolve(default.get_config())
  config.reweight, config.rebalance_epoch = "drw", 4
  counts = np.array([500, 50, 5])
  weights = jax.jit(objective.make_class_weight_fn(config, counts))
  np.testing.assert_array_equal(weights(jnp.float32(3.5)), np.ones(3))
  np.testing.assert_allclose(weights(jnp.float32(4.0)),
                             losses.class_balanced_weights(counts, 0.9999))


def test_one_beta_for_reweighting_and_resampling():
  config = default.get_config()
  config.update_from_flattened_dict({"data.resample_beta": 0.99})
  assert config.cb_beta == 0.99
  config.cb_beta = 0.9
  assert config.data.resample_beta == 0.9
  flat = run_record.flatten(config)
  assert flat["cb_beta"] == flat["data.resample_beta"] == 0.9
  counts = np.array([1000, 100, 10])
  rates = resample.class_sampling_rates(counts, config.data.resample_beta)
  weights = losses.class_balanced_weights(counts, config.cb_beta)
  # Both are ∝ 1/E_n: the share of a class's draws over its share of the
  # data is its loss weight, up to one normalisation.
  np.testing.assert_allclose(rates / rates.sum(),
                             weights / weights.sum(), rtol=1e-6)
