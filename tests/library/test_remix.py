"""The Remix label rule (Eq. 10 of Chou et al. 2020) against a hand table."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from remix_jax import label_rules
from remix_jax import remix

# (λ, n_a, n_b, κ, τ, expected λ_y)
TABLE = [
    # Case 1: a is the κ-majority and its image weight is below τ → minority b.
    (0.3, 300, 100, 3.0, 0.5, 0.0),
    (0.49, 5000, 50, 3.0, 0.5, 0.0),
    # Boundary: ratio exactly κ counts as majority (≥).
    (0.2, 300, 100, 3.0, 0.5, 0.0),
    # Boundary: λ exactly τ is not below τ → plain λ.
    (0.5, 300, 100, 3.0, 0.5, 0.5),
    # a majority but dominates the mix (λ ≥ τ) → plain λ.
    (0.8, 300, 100, 3.0, 0.5, 0.8),
    # Ratio just under κ → plain λ.
    (0.2, 299, 100, 3.0, 0.5, 0.2),
    # Case 2: b is the κ-majority and 1 − λ < τ → minority a.
    (0.7, 100, 300, 3.0, 0.5, 1.0),
    (0.51, 50, 5000, 3.0, 0.5, 1.0),
    # Boundary: n_a/n_b exactly 1/κ counts (≤); 1 − λ exactly τ does not (<).
    (0.6, 100, 300, 3.0, 0.5, 1.0),
    (0.5, 100, 300, 3.0, 0.5, 0.5),
    # b majority but b dominates the mix → plain λ.
    (0.3, 100, 300, 3.0, 0.5, 0.3),
    # Balanced pair → plain λ.
    (0.1, 100, 100, 3.0, 0.5, 0.1),
    # Larger τ fires more often.
    (0.6, 300, 100, 3.0, 0.7, 0.0),
    (0.35, 100, 300, 3.0, 0.7, 1.0),
]


@pytest.mark.parametrize("lam,n_a,n_b,kappa,tau,want", TABLE)
def test_remix_table(lam, n_a, n_b, kappa, tau, want):
  got = remix.remix_lambda(jnp.array([lam]), jnp.array([n_a]),
                           jnp.array([n_b]), kappa=kappa, tau=tau)
  assert float(got[0]) == pytest.approx(want)


def test_remix_vectorised_matches_table():
  lam, n_a, n_b, kappa, tau, want = map(np.array, zip(*TABLE))
  for k in np.unique(kappa):
    for t in np.unique(tau):
      sel = (kappa == k) & (tau == t)
      if sel.any():
        got = remix.remix_lambda(jnp.asarray(lam[sel], jnp.float32),
                                 n_a[sel], n_b[sel], kappa=k, tau=t)
        np.testing.assert_allclose(got, want[sel], rtol=1e-6)


@pytest.mark.parametrize("kappa", [1.0, 3.0, 10.0])
def test_tau_zero_reduces_to_base_mixer(kappa):
  rng = np.random.RandomState(0)
  lam = jnp.asarray(rng.rand(1000), jnp.float32)
  n_a = rng.randint(0, 5000, 1000)
  n_b = rng.randint(0, 5000, 1000)
  got = remix.remix_lambda(lam, n_a, n_b, kappa=kappa, tau=0.0)
  np.testing.assert_array_equal(got, lam)


def test_kappa_one_relabels_every_unequal_pair():
  # κ = 1: any pair with n_a > n_b is a majority pair.
  got = remix.remix_lambda(jnp.array([0.4, 0.6]), jnp.array([101, 100]),
                           jnp.array([100, 101]), kappa=1.0, tau=0.5)
  np.testing.assert_array_equal(got, [0.0, 1.0])


def test_zero_counts_do_not_divide():
  got = remix.remix_lambda(jnp.array([0.3, 0.3]), jnp.array([10, 0]),
                           jnp.array([0, 10]), kappa=3.0, tau=0.5)
  assert bool(jnp.all(jnp.isfinite(got)))
  np.testing.assert_allclose(got, [0.0, 0.3], rtol=1e-6)


def test_remix_rule_uses_class_counts_and_jits():
  counts = np.array([5000, 50])
  rule = label_rules.make_label_rule("remix", counts)
  lam = jnp.array([0.3, 0.3, 0.7, 0.7])
  labels_a = jnp.array([0, 1, 0, 1])
  labels_b = jnp.array([1, 0, 1, 1])
  got = jax.jit(rule)(lam, labels_a, labels_b)
  np.testing.assert_allclose(got, [0.0, 0.3, 0.7, 0.7])
  plain = label_rules.make_label_rule("plain")
  np.testing.assert_array_equal(plain(lam, labels_a, labels_b), lam)


def test_bad_rule_arguments():
  with pytest.raises(ValueError, match="choose one of"):
    label_rules.make_label_rule("rebalance")
  with pytest.raises(ValueError, match="needs the class counts"):
    label_rules.make_label_rule("remix")
  with pytest.raises(ValueError, match="kappa must be >= 1"):
    remix.remix_lambda(jnp.ones(1), jnp.ones(1), jnp.ones(1), kappa=0.5)
  with pytest.raises(ValueError, match="tau must be in"):
    remix.remix_lambda(jnp.ones(1), jnp.ones(1), jnp.ones(1), tau=1.5)


@pytest.mark.parametrize("field,value,message", [
    ("remix_kappa", 0.5, "config.remix_kappa must be >= 1, got 0.5"),
    ("remix_tau", 1.5, "config.remix_tau must be in [0, 1], got 1.5"),
])
def test_the_config_check_states_the_library_bounds(field, value, message):
  from configs import default  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import config_lib  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  setattr(config, field, value)
  with pytest.raises(ValueError) as err:
    config_lib.validate_config(config)
  assert str(err.value) == message
  with pytest.raises(ValueError, match=message.removeprefix("config.remix_")
                     .replace("[", r"\[").replace("]", r"\]")):
    remix.remix_lambda(jnp.ones(1), jnp.ones(1), jnp.ones(1),
                       **{field.removeprefix("remix_"): value})
