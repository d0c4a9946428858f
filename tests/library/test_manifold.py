"""Manifold Mixup: the mixer draws (partner, λ, layer), a model applies it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from remix_jax import mixers


def _tiny_model(params, x, info=None):
  """A 2-hidden-layer MLP with candidate layers 0 (input), 1 and 2."""
  h = mixers.apply_manifold_mix(x.reshape(x.shape[0], -1), info, 0)
  h = jnp.tanh(h @ params["w1"])
  h = mixers.apply_manifold_mix(h, info, 1)
  h = jnp.tanh(h @ params["w2"])
  h = mixers.apply_manifold_mix(h, info, 2)
  return h @ params["w3"]


def _params():
  k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
  return {"w1": jax.random.normal(k1, (12, 7)),
          "w2": jax.random.normal(k2, (7, 6)),
          "w3": jax.random.normal(k3, (6, 3))}


def _info(layer, lam=0.3, b=5):
  partner = jnp.array([3, 0, 4, 1, 2], jnp.int32)
  return mixers.ManifoldInfo(partner, jnp.full((b,), lam, jnp.float32),
                             jnp.asarray(layer, jnp.int32))


def test_layer_zero_mixes_the_input():
  x = jax.random.normal(jax.random.key(1), (5, 2, 2, 3))
  info = _info(0)
  out = _tiny_model(_params(), x, info)
  manual = 0.3 * x + 0.7 * x[info.partner]
  np.testing.assert_allclose(out, _tiny_model(_params(), manual), rtol=1e-5)


@pytest.mark.parametrize("layer", [1, 2])
def test_hidden_layer_mixes_hidden_state(layer):
  p = _params()
  x = jax.random.normal(jax.random.key(1), (5, 12))
  info = _info(layer)
  h = jnp.tanh(x @ p["w1"])
  if layer == 1:
    h = 0.3 * h + 0.7 * h[info.partner]
  h = jnp.tanh(h @ p["w2"])
  if layer == 2:
    h = 0.3 * h + 0.7 * h[info.partner]
  np.testing.assert_allclose(_tiny_model(p, x, info), h @ p["w3"], rtol=1e-5)


def test_lambda_one_or_no_info_is_identity():
  p = _params()
  x = jax.random.normal(jax.random.key(1), (5, 12))
  plain = _tiny_model(p, x)
  for layer in range(3):
    np.testing.assert_allclose(_tiny_model(p, x, _info(layer, lam=1.0)), plain,
                               rtol=1e-6)


def test_one_compile_serves_every_layer():
  traces = []

  @jax.jit
  def step(rng, x, y):
    traces.append(1)
    x, info = mixers.manifold_mixup(rng, x, y, alpha=2.0, num_layers=3)
    return _tiny_model(_params(), x, info), info.layer

  x = jax.random.normal(jax.random.key(1), (5, 12))
  layers = set()
  for i in range(20):
    _, layer = step(jax.random.key(i), x, jnp.arange(5))
    layers.add(int(layer))
  assert len(traces) == 1
  assert layers == {0, 1, 2}


def test_manifold_info_draws():
  x = jnp.zeros((64, 2, 2, 1))
  out, info = mixers.manifold_mixup(jax.random.key(0), x, jnp.arange(64),
                                    per_sample=True, num_layers=4)
  assert out is x
  assert info.lam.shape == (64,) and info.layer.shape == ()
  assert 0 <= int(info.layer) < 4
  assert sorted(np.asarray(info.partner).tolist()) == list(range(64))
  with pytest.raises(ValueError, match="num_layers must be"):
    mixers.manifold_mixup(jax.random.key(0), x, jnp.arange(64), num_layers=0)
