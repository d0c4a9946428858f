"""The successors in the trainer: presets, validation, the partner batch on
several devices, and resuming a two-stream run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from configs import cifar_lt
from remix_jax import mixers
from remix_jax import parallel
from remix_jax import steps
from remix_jax.trainer import build
from remix_jax.trainer import config_lib
from remix_jax.trainer import interrupt
from remix_jax.trainer import load
from remix_jax.trainer import methods
from remix_jax.trainer import objective
from remix_jax.trainer import train
from tests import jax_events
from tests.trainer.test_train import LinearModel
from tests.trainer.test_train import tiny_config

COUNTS = np.array([100, 50, 20, 10, 5])


def _step_with_partners(config, num_devices, arrays):
  """One train step of ``config`` on ``num_devices`` (LinearModel, no
  BatchNorm); returns (parameter change, metrics)."""
  config = methods.resolve(config)
  model = LinearModel(nnx.Rngs(0))
  before = jax.tree.map(np.asarray, nnx.state(model, nnx.Param))
  mesh = parallel.make_mesh(num_devices)
  graphdef, params, batch_stats = steps.split_model(model)
  lr_fn = build.learning_rate_fn(config, 10)
  tx = build.optimizer(config, lr_fn)
  state = parallel.replicate(mesh, steps.TrainState(
      params, batch_stats, tx.init(params), jnp.zeros((), jnp.int32),
      jax.random.key_data(jax.random.key(0))))
  loss_fn = objective.make_objective(config, COUNTS, steps_per_epoch=10,
                                     num_mix_layers=1)
  step = steps.make_train_step(
      loss_fn, graphdef, tx, lr_fn, mesh,
      partner_batch=objective.uses_partner_batch(config))
  state, metrics = step(state, *parallel.shard_batch(mesh, arrays))
  delta = jax.tree.map(lambda a, b: a - np.asarray(b), before, state.params)
  return delta, jax.tree.map(float, metrics)


@pytest.mark.parametrize("method,mix_prob", [
    ("cmo", 1.0), ("cmo", 0.5), ("remix_cmo", 1.0), ("cmo_la", 1.0),
    ("balanced_mixup", 1.0), ("remix_balanced_mixup", 1.0), ("unimix", 1.0),
    ("remix_unimix", 1.0), ("unimix", 0.5)])
def test_four_devices_equal_one_device_with_two_stream_partners(method,
                                                               mix_prob):
  """CMO and Balanced-MixUp take a second batch, UniMix rows of the global
  batch drawn ∝ n_y^τ: either way the step on 4 devices equals the step on
  1."""
  config = tiny_config(method=method, mix_prob=mix_prob, weight_decay=0.0,
                       momentum=0.0, warmup_epochs=0.0)
  config.mixer = config.label_rule = config.loss = config.partners = None
  config = methods.resolve(config)
  assert config.partners in ("sampler", "prior")
  rng = np.random.RandomState(0)
  arrays = (rng.randn(16, 4, 4, 3).astype(np.float32),
            rng.randint(0, 5, 16).astype(np.int32))
  if objective.uses_partner_batch(config):
    arrays += (rng.randn(16, 4, 4, 3).astype(np.float32),
               rng.randint(0, 5, 16).astype(np.int32))
  (d1, m1), (d4, m4) = (_step_with_partners(config, n, arrays)
                        for n in (1, 4))
  for key in ("loss", "mix_ratio", "label_weight"):
    assert m1[key] == pytest.approx(m4[key], rel=1e-5), key
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-7), d1, d4)
  if mix_prob == 1.0:
    assert m1["mix_ratio"] < 1.0  # the batch was mixed


def test_partner_batch_changes_the_step():
  """The partner arrays are used: other partners, another step."""
  config = tiny_config(method="balanced_mixup", weight_decay=0.0,
                       momentum=0.0, warmup_epochs=0.0, mix_alpha=1.0)
  config.mixer = config.label_rule = config.loss = config.partners = None
  rng = np.random.RandomState(0)
  base = (rng.randn(8, 4, 4, 3).astype(np.float32),
          rng.randint(0, 5, 8).astype(np.int32))
  first = base + (rng.randn(8, 4, 4, 3).astype(np.float32),
                  np.zeros(8, np.int32))
  second = base + (first[2], np.full(8, 4, np.int32))
  (_, m1), (_, m2) = (_step_with_partners(config, 2, a)
                      for a in (first, second))
  assert m1["loss"] != pytest.approx(m2["loss"], rel=1e-3)


def test_presets_of_the_successors():
  expect = {
      "logit_adjustment": ("none", "permutation", "logit_adjusted", "plain"),
      "balanced_softmax": ("none", "permutation", "logit_adjusted", "plain"),
      "remix_la": ("mixup", "permutation", "logit_adjusted", "remix"),
      "cmo": ("cutmix", "sampler", "ce", "plain"),
      "remix_cmo": ("cutmix", "sampler", "ce", "remix"),
      "balanced_mixup": ("balanced_mixup", "sampler", "ce", "plain"),
      "unimix": ("unimix", "prior", "logit_adjusted", "plain"),
      "remix_unimix": ("unimix", "prior", "logit_adjusted", "remix"),
  }
  for method, fields in expect.items():
    c = config_lib.validate_config(cifar_lt.get_config(f"method={method}"))
    assert (c.mixer, c.partners, c.loss, c.label_rule) == fields, method
  published = {m: config_lib.validate_config(cifar_lt.get_config(
      f"method={m}")) for m in ("cmo", "balanced_mixup", "unimix", "mixup")}
  assert published["cmo"].mix_prob == 0.5
  assert tuple(published["cmo"].mix_skip_epochs) == (4, 3)
  assert published["balanced_mixup"].mix_alpha == 0.2
  assert published["unimix"].mix_alpha == 0.8
  assert (published["mixup"].mix_alpha, published["mixup"].mix_prob) == (
      1.0, 1.0)
  assert cifar_lt.get_config("method=unimix,dataset=cifar100").unimix_tau == (
      -0.1)
  assert methods.deferred_base("cmo_drw") == "cmo"


@pytest.mark.parametrize("overrides,match", [
    (dict(mixer="manifold_mixup", partners="sampler"),
     "config.partners='sampler' takes partners from outside the device's "
     "shard, which manifold_mixup"),
    (dict(mixer="cutmix", partners="prior", **{"sumix.enabled": True}),
     "config.partners='prior' takes partners from outside the device's "
     "shard, which manifold_mixup and SUMix cannot use"),
    (dict(mixer="none", partners="prior"),
     "config.partners='prior' needs a mixer"),
    (dict(partners="pairs"), "config.partners='pairs' is not valid; choose "
     "one of permutation, prior, sampler"),
    (dict(mix_prob=0.0), r"config.mix_prob=0.0 must be in \(0, 1\]"),
    (dict(mix_skip_epochs=(1, 1)), r"config.mix_skip_epochs=\(1, 1\) must be "
     r"two integers >= 0 \(first, last\) leaving some of config.num_epochs=2"),
    (dict(method="balanced_softmax", la_tau=2.0),
     "config.method='balanced_softmax' is config.la_tau=1, got 2.0"),
])
def test_bad_successor_configs_fail_before_compiling(tmp_path, overrides,
                                                     match):
  config = tiny_config(method="erm")
  for field in methods.METHOD_FIELDS:
    if "." not in field:
      setattr(config, field, None)
  config.update_from_flattened_dict(overrides)
  with jax_events.count_traces_and_compiles() as events:
    with pytest.raises(ValueError, match=match) as err:
      train.train_and_evaluate(config, str(tmp_path))
  assert "\n" not in str(err.value)
  assert not events.traces and not events.compiles


def _stop_after(monkeypatch, stop, steps_before_stop):
  """Makes the train step request ``stop`` after ``steps_before_stop``
  steps (a SIGTERM mid-epoch, without a subprocess)."""
  real_build = build.build

  def counting_build(*args, **kwargs):
    state, train_step, eval_step = real_build(*args, **kwargs)
    calls = [0]

    def step(*arrays):
      calls[0] += 1
      if calls[0] == steps_before_stop:
        stop.requested = True
      return train_step(*arrays)

    return state, step, eval_step

  monkeypatch.setattr(build, "build", counting_build)


def _final_params(workdir):
  model, info = load.load_run(str(workdir))
  return info["step"], jax.tree.leaves(nnx.state(model, nnx.Param))


@pytest.mark.parametrize("method", ["cmo", "remix_unimix", "balanced_mixup"])
def test_interrupted_and_resumed_two_stream_run_equals_an_uninterrupted_one(
    tmp_path, monkeypatch, method):
  def config():
    return tiny_config(method=method, num_epochs=2, mixer=None,
                       label_rule=None, loss=None, partners=None,
                       mix_prob=0.5)

  stop = interrupt.StopRequest()
  _stop_after(monkeypatch, stop, 5)  # mid-epoch 0 (8 steps per epoch)
  first = train.train_and_evaluate(config(), str(tmp_path / "resumed"),
                                   stop=stop)
  assert first == {"interrupted": True, "step": 5}
  monkeypatch.undo()
  resumed = train.train_and_evaluate(config(), str(tmp_path / "resumed"))
  straight = train.train_and_evaluate(config(), str(tmp_path / "straight"))
  assert resumed["per_class"] == straight["per_class"]
  a = json.loads((tmp_path / "resumed" / "results.json").read_text())
  assert a["resumed_at"] == [5]
  step_a, params_a = _final_params(tmp_path / "resumed")
  step_b, params_b = _final_params(tmp_path / "straight")
  assert step_a == step_b
  assert len(params_a) == len(params_b)
  for va, vb in zip(params_a, params_b):
    np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))


def test_a_record_older_than_the_new_fields_matches_only_their_old_values(
    tmp_path):
  """A workdir recorded before ``partners``, ``mix_prob``, ``la_tau``, … were
  fields resumes with their defaults (which train as it did), not others."""
  import shutil  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import run_record  # pylint: disable=g-import-not-at-top
  from tests import helpers  # pylint: disable=g-import-not-at-top
  record = (helpers.REPO / "tests" / "trainer" / "data" /
            "record_before_the_trainer_package.json")
  assert "mix_prob" not in record.read_text()
  shutil.copyfile(record, tmp_path / run_record.RECORD_FILE)
  resolved = config_lib.validate_config(
      cifar_lt.get_config(
          "method=remix,protocol=paper,seed=1,dataset=cifar10_jpeg"))
  assert run_record.check(str(tmp_path), resolved) == {}
  resolved.mix_prob = 0.5
  with pytest.raises(run_record.ConfigChangedError,
                     match=r"mix_prob 1.0 -> 0.5"):
    run_record.check(str(tmp_path), resolved)


def test_mix_skip_epochs_and_mix_prob_leave_batches_unmixed():
  """CMO's window: epochs 0 and 3 of 4 unmixed (λ = 1, the clean images),
  the others mixed; with mix_prob the coin decides per batch."""
  config = tiny_config(method="cmo", num_epochs=4, mix_skip_epochs=(1, 1))
  mix = objective.make_mix_fn(config, 1, COUNTS, steps_per_epoch=10)
  rng = np.random.RandomState(0)
  images = jnp.asarray(rng.randn(8, 16, 16, 3), jnp.float32)
  labels = jnp.asarray(rng.randint(0, 5, 8), jnp.int32)
  second = mixers.Partners(-jnp.ones_like(images), jnp.zeros(8, jnp.int32))
  key = jax.random.key(0)
  run = jax.jit(lambda step: mix(key, key, images, labels, second, step)[:2])
  for step, mixed in ((0, False), (9, False), (10, True), (29, True),
                      (30, False), (39, False)):
    out, info = run(step)
    assert bool(jnp.all(info.lam == 1.0)) != mixed, step
    assert bool(jnp.all(out == images)) != mixed, step
  config = tiny_config(method="cmo", mix_prob=0.5)
  mix = objective.make_mix_fn(config, 1, COUNTS, steps_per_epoch=10)
  mixed = [bool(jnp.any(mix(k, k, images, labels, second, 0)[1].lam < 1))
           for k in jax.random.split(jax.random.key(1), 200)]
  assert 0.4 < np.mean(mixed) < 0.6


@pytest.mark.parametrize("method", ["remix_cmo", "remix_balanced_mixup",
                                    "remix_unimix", "remix_la"])
def test_each_successor_with_remix_gives_the_rules_labels(method):
  """The trainer's mix and label weight on a hand-built batch: half head
  (class 0, n = 100), half tail (class 4, n = 5); a second batch all tail.
  Where the tail image has more than half of a head-labelled mix the label
  is the tail's (λ_y = 0), where the tail original keeps more than half it
  is its own (λ_y = 1), else λ_y = λ."""
  config = tiny_config(method=method, mix_per_sample=True, mix_alpha=1.0)
  mix = objective.make_mix_fn(config, 1, COUNTS)
  label_weight = objective.make_label_weight_fn(config, COUNTS)
  b = 64  # CutMix's clipped box covers half of an image in 1 mix of 6
  labels = jnp.asarray([0, 4] * (b // 2), jnp.int32)
  images = jnp.asarray(np.random.RandomState(2).rand(b, 32, 32, 3),
                       jnp.float32)
  second = mixers.Partners(jnp.zeros_like(images), jnp.full((b,), 4,
                                                            jnp.int32))
  key = jax.random.key(3)

  def local(images, labels, partner_images, partner_labels):
    second = mixers.Partners(partner_images, partner_labels)
    return mix(key, jax.random.fold_in(key, 0), images, labels, second)[1]

  mesh = parallel.make_mesh(1)
  info = jax.shard_map(local, mesh=mesh, in_specs=(P(parallel.AXIS),) * 4,
                       out_specs=P(parallel.AXIS))(*parallel.shard_batch(
                           mesh, (images, labels, *second[:2])))
  info = jax.tree.map(np.asarray, info)
  lam, a, bb = (np.asarray(x) for x in (info.lam, labels,
                                         info.partner_labels))
  n_a, n_b = COUNTS[a], COUNTS[bb]
  want = np.where((n_a >= 3 * n_b) & (lam < 0.5), 0.0, lam)
  want = np.where((3 * n_a <= n_b) & (1 - lam < 0.5), 1.0, want)
  got = np.asarray(label_weight(info.lam, labels, info.partner_labels))
  np.testing.assert_array_equal(got, want)
  assert (got != lam).any(), "the batch has pairs the rule relabels"
  if method == "remix_cmo" or method == "remix_balanced_mixup":
    assert (bb == 4).all()  # the partners are the second batch's
