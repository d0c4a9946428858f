"""The trainer: data-parallel step, schedules, resume, SIGTERM, errors."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import cifar_lt
from configs import quickstart
from remix_jax import losses
from remix_jax.trainer import methods
from remix_jax import mixers
from remix_jax.trainer import objective
from remix_jax import parallel
from remix_jax import schedules
from remix_jax import steps
from remix_jax.trainer import build
from remix_jax.trainer import train
from tests import helpers
from tests import jax_events

REPO = str(helpers.REPO)


def tiny_config(**overrides):
  c = quickstart.get_config()
  c.batch_size = 32
  c.eval_batch_size = 64
  c.num_epochs = 2
  c.eval_every_epochs = 1
  c.checkpoint_every_epochs = 1
  c.log_every_steps = 5
  c.progress_bar = False
  c.num_devices = 2
  for k, v in overrides.items():
    setattr(c, k, v)
  return methods.resolve(c)


class LinearModel(nnx.Module):
  """A BatchNorm-free model with the models' interface."""

  num_mix_layers = 1

  def __init__(self, rngs, num_classes=5, features=48):
    self.fc = nnx.Linear(features, num_classes, rngs=rngs)

  def __call__(self, x, *, mix=None):
    x = mixers.apply_manifold_mix(x, mix, 0)
    h = x.reshape(x.shape[0], -1)
    return steps_output(self.fc(h), h)


def steps_output(logits, features):
  from remix_jax.models import ModelOutput
  return ModelOutput(logits, features)


def _one_step(config, model, num_devices, images, labels, counts):
  mesh = parallel.make_mesh(num_devices)
  graphdef, params, batch_stats = steps.split_model(model)
  lr_fn = build.learning_rate_fn(config, 10)
  tx = build.optimizer(config, lr_fn)
  state = steps.TrainState(params, batch_stats, tx.init(params),
                           jnp.zeros((), jnp.int32),
                           jax.random.key_data(jax.random.key(0)))
  state = parallel.replicate(mesh, state)
  loss_fn = objective.make_objective(config, counts, steps_per_epoch=10,
                                     num_mix_layers=model.num_mix_layers)
  step = steps.make_train_step(loss_fn, graphdef, tx, lr_fn, mesh)
  return step(state, *parallel.shard_batch(mesh, (images, labels)))


@pytest.mark.parametrize("reweight", ["none", "rw"])
def test_n_device_gradient_equals_one_device(reweight):
  """Same global batch: 4 devices reproduce 1 device (no D× gradient)."""
  config = tiny_config(mixer="none", label_rule="plain", reweight=reweight,
                       weight_decay=0.0, momentum=0.0, warmup_epochs=0.0)
  counts = np.array([100, 50, 20, 10, 5])
  rng = np.random.RandomState(0)
  images = rng.randn(16, 4, 4, 3).astype(np.float32)
  labels = rng.randint(0, 5, 16).astype(np.int32)
  results = []
  for n in (1, 4):
    model = LinearModel(nnx.Rngs(0))
    before = jax.tree.map(np.asarray, nnx.state(model, nnx.Param))
    state, m = _one_step(config, model, n, images, labels, counts)
    after = jax.tree.map(np.asarray, state.params)
    results.append((jax.tree.map(lambda a, b: a - b, before, after),
                    float(m["loss"])))
  (d1, loss1), (d4, loss4) = results
  assert loss1 == pytest.approx(loss4, rel=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-7), d1, d4)
  # And it is the plain gradient of the global-batch loss.
  w = np.ones(5) if reweight == "none" else np.asarray(
      losses.class_balanced_weights(counts, config.cb_beta))
  model = LinearModel(nnx.Rngs(0))

  def loss(m):
    z = m(jnp.asarray(images)).logits
    lp = jax.nn.log_softmax(z)
    nll = -lp[jnp.arange(16), labels]
    return jnp.sum(w[labels] * nll) / jnp.sum(w[labels])

  grads = nnx.grad(loss)(model)
  lr = config.learning_rate
  for got, want in zip(jax.tree.leaves(d1), jax.tree.leaves(grads)):
    np.testing.assert_allclose(got, lr * np.asarray(want), rtol=1e-4,
                               atol=1e-7)


def _build(config, num_devices, counts, steps_per_epoch=10):
  config = methods.resolve(config)
  mesh = parallel.make_mesh(num_devices)
  state, train_step, _ = build.build(
      config, mesh, num_classes=len(counts), class_counts=np.asarray(counts),
      steps_per_epoch=steps_per_epoch)
  return mesh, state, train_step


@pytest.mark.parametrize("method", sorted(methods.METHODS))
def test_every_method_preset_runs_one_step(method):
  config = cifar_lt.get_config(f"method={method}")
  config.model = "tiny_resnet"
  mesh, state, step = _build(config, 2, [500, 200, 80, 30, 10])
  rng = np.random.RandomState(1)
  arrays = (rng.randn(8, 8, 8, 3).astype(np.float32),
            rng.randint(0, 5, 8).astype(np.int32))
  if objective.uses_partner_batch(methods.resolve(config)):
    arrays += (rng.randn(8, 8, 8, 3).astype(np.float32),
               rng.randint(0, 5, 8).astype(np.int32))
  state, m = step(state, *parallel.shard_batch(mesh, arrays))
  assert np.isfinite(float(m["loss"]))
  assert int(state.step) == 1


def test_loss_decreases_on_a_fixed_batch():
  config = tiny_config(mixer="none", label_rule="plain", warmup_epochs=0.0,
                       learning_rate=0.05)
  config.model = "tiny_resnet"
  mesh, state, step = _build(config, 2, np.ones(5), steps_per_epoch=100)
  rng = np.random.RandomState(0)
  batch = parallel.shard_batch(mesh, (rng.randn(16, 8, 8, 3).astype(
      np.float32), rng.randint(0, 5, 16).astype(np.int32)))
  loss = []
  for _ in range(15):
    state, m = step(state, *batch)
    loss.append(float(m["loss"]))
  assert loss[-1] < 0.5 * loss[0]


def test_drw_switches_weights_at_the_epoch():
  config = tiny_config(reweight="drw", rebalance_epoch=3)
  counts = np.array([1000, 100, 10])
  fn = objective.make_class_weight_fn(config, counts)
  np.testing.assert_array_equal(fn(jnp.array(2)), [1.0, 1.0, 1.0])
  after = np.asarray(fn(jnp.array(3)))
  assert after[2] > after[1] > after[0] and after.sum() == pytest.approx(3)
  config.reweight = "rw"
  np.testing.assert_allclose(objective.make_class_weight_fn(config, counts)(
      jnp.array(0)), after)


def test_ldam_schedule_and_cpu30_schedule():
  c = cifar_lt.get_config("protocol=paper")
  lr = build.learning_rate_fn(c, 10)
  at = lambda e: float(lr(int(e * 10)))
  assert [round(at(e), 6) for e in (0, 1, 4, 5, 159.9, 160, 179, 180, 199)] == [
      0.02, 0.04, 0.1, 0.1, 0.1, 0.001, 0.001, 1e-5, 1e-5]
  c = cifar_lt.get_config("protocol=cpu30")
  lr = build.learning_rate_fn(c, 10)
  assert [round(float(lr(s)), 6) for s in range(0, 10, 2)] == [
      0.02, 0.04, 0.06, 0.08, 0.1]
  assert round(at(0), 6) == 0.02 and round(float(lr(23 * 10)), 6) == 0.1
  assert round(float(lr(24 * 10)), 6) == 0.001
  assert round(float(lr(27 * 10)), 7) == 1e-5
  assert c.rebalance_epoch == 24 and c.num_epochs == 30


@pytest.mark.parametrize("field,value,match", [
    ("mixer", "mixupp", "config.mixer='mixupp' is not valid; choose one of"),
    ("loss", "hinge", "config.loss='hinge' is not valid"),
    ("model", "resnet7", "config.model='resnet7' is not valid"),
    ("batch_size", 30, "config.batch_size=30 is not divisible by the 4"),
    ("learning_rate", -1.0, "config.learning_rate=-1.0 must be > 0"),
    ("reweight", "cb", "choose one of none, rw, drw"),
])
def test_bad_config_fails_before_compiling(tmp_path, field, value, match):
  config = tiny_config(num_devices=4)
  setattr(config, field, value)
  with jax_events.count_traces_and_compiles() as events:
    with pytest.raises(ValueError, match=match) as err:
      train.train_and_evaluate(config, str(tmp_path))
  assert "\n" not in str(err.value)
  assert not events.traces and not events.compiles  # nothing was built
  assert not os.path.exists(tmp_path / "checkpoints")


def test_bad_method_and_protocol():
  with pytest.raises(ValueError, match="unknown method 'remixx'; choose one"):
    cifar_lt.get_config("method=remixx")
  with pytest.raises(ValueError, match="unknown protocol"):
    cifar_lt.get_config("protocol=fast")
  with pytest.raises(ValueError, match="unknown cifar_lt argument"):
    cifar_lt.get_config("rhoo=10")


def test_the_trace_counter_sees_every_retrace_and_recompile():
  def twice(x):
    return 2 * x
  f = jax.jit(twice)
  with jax_events.count_traces_and_compiles() as events:
    f(jnp.ones(2))
    f(jnp.ones(2))
    f(jnp.ones(3))  # a new shape: traced and compiled again
  assert events.traces["twice"] == 2 and events.compiles["twice"] == 2
  f(jnp.ones(4))  # after the block: not counted
  assert events.traces["twice"] == 2


def test_train_and_evaluate_end_to_end_without_recompiles(tmp_path):
  with jax_events.count_traces_and_compiles() as events:
    result = train.train_and_evaluate(tiny_config(num_epochs=3),
                                      str(tmp_path))
  for name in (jax_events.TRAIN_STEP, jax_events.EVAL_STEP):
    assert events.traces[name] == 1, events.traces
    assert events.compiles[name] == 1, events.compiles
  for key in ("top1", "top5", "many", "medium", "few", "per_class"):
    assert key in result
  assert len(result["per_class"]) == 10 and 0 <= result["top1"] <= 100
  assert result["top1"] > 20, "3 epochs on digits beat chance (10 %)"
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["metrics"]["top1"] == pytest.approx(result["top1"])
  assert (tmp_path / "results.md").read_text().count("\n|") >= 12
  assert (tmp_path / "per_class.png").stat().st_size > 1000
  assert json.loads((tmp_path / "progress.json").read_text())["epoch"] == 3
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path))
  # A finished run resumes to the same result without training further.
  again = train.train_and_evaluate(tiny_config(num_epochs=3), str(tmp_path))
  assert again["per_class"] == result["per_class"]


def test_nan_loss_stops_with_the_step_and_keeps_checkpoints(tmp_path):
  config = tiny_config(num_epochs=3, learning_rate=1e30, warmup_epochs=0.0)
  with pytest.raises(FloatingPointError, match=r"at step \d+"):
    train.train_and_evaluate(config, str(tmp_path))


def _poison_batch_stats_after(step: int):
  """A ``steps.make_train_step`` whose steps set every BatchNorm statistic to
  NaN once the state reaches ``step`` (as when a diverging run's running
  variance overflows), leaving the parameters, and so the loss, finite."""
  make_train_step = steps.make_train_step

  def make(*args, **kwargs):
    train_step = make_train_step(*args, **kwargs)

    def poisoned(state, images, labels):
      state, metrics = train_step(state, images, labels)
      if int(state.step) == step:
        state = state._replace(batch_stats=jax.tree.map(
            lambda x: jax.device_put(np.full(x.shape, np.nan, x.dtype),
                                     x.sharding), state.batch_stats))
      return state, metrics

    return poisoned

  return make


def test_non_finite_state_is_never_saved_and_a_lower_lr_continues(
    tmp_path, monkeypatch):
  """The state goes NaN at step 20 (epoch 2) while the logged loss stays
  finite: the save at step 32 refuses it, checkpoint 16 stays the last, and
  the run continues from it with a changed learning rate."""
  from remix_jax.trainer import checkpointing
  monkeypatch.setattr(steps, "make_train_step", _poison_batch_stats_after(20))
  config = tiny_config(num_epochs=4, learning_rate=0.2)
  with pytest.raises(FloatingPointError,
                     match=r"train state holds NaN/Inf at step 32; .*"
                     r"--allow_changes=learning_rate to continue from "
                     r"checkpoint 16") as err:
    train.train_and_evaluate(config, str(tmp_path))
  assert "\n" not in str(err.value)
  ckpt = checkpointing.Checkpointer(str(tmp_path))
  assert ckpt.all_steps() == [16]
  ckpt.close()
  monkeypatch.undo()
  config.learning_rate = 0.05
  with pytest.raises(ValueError, match="learning_rate 0.2 -> 0.05"):
    train.train_and_evaluate(config, str(tmp_path))
  result = train.train_and_evaluate(config, str(tmp_path),
                                    allow_changes=["learning_rate"])
  assert result["step"] == 64
  ckpt = checkpointing.Checkpointer(str(tmp_path))
  assert ckpt.all_steps()[-1] == 64  # trained on from 16, and saved
  ckpt.close()


def test_corrupt_latest_checkpoint_falls_back(tmp_path, caplog):
  config = tiny_config(num_epochs=2, keep_checkpoints=3)
  first = train.train_and_evaluate(config, str(tmp_path))
  ckpts = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints")
                 if d.isdigit())
  assert len(ckpts) == 2
  latest = tmp_path / "checkpoints" / str(ckpts[-1])
  for root, _, files in os.walk(latest):
    for f in files:
      with open(os.path.join(root, f), "wb") as fh:
        fh.write(b"garbage")
  config.num_epochs = 2
  with caplog.at_level("WARNING"):
    again = train.train_and_evaluate(config, str(tmp_path))
  assert "is corrupt: it cannot be restored" in caplog.text
  assert os.listdir(tmp_path / "checkpoints" / "corrupt") == [str(ckpts[-1])]
  # It resumed from the previous (epoch 1) checkpoint and retrained epoch 2
  # deterministically to the same result.
  assert again["per_class"] == first["per_class"]


def _main_cmd(workdir, *overrides):
  return [sys.executable, os.path.join(REPO, "main.py"),
          f"--workdir={workdir}", "--config=" + os.path.join(
              REPO, "configs", "quickstart.py"), "--config.progress_bar=False",
          "--config.batch_size=32", "--config.num_devices=2",
          "--config.log_every_steps=1", *overrides]


def test_sigterm_saves_and_resume_matches_uninterrupted_run(tmp_path):
  overrides = ["--config.num_epochs=12", "--config.eval_every_epochs=4",
               "--config.checkpoint_every_epochs=4"]
  run_dir = tmp_path / "interrupted"
  proc = subprocess.Popen(_main_cmd(run_dir, *overrides), cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  lines = []
  deadline = time.time() + 300
  events = run_dir / "checkpoints"
  # Interrupt mid-epoch 2 (16 steps per epoch): once step 20 is logged.
  while time.time() < deadline:
    line = proc.stdout.readline()
    lines.append(line)
    logged = re.search(r"\[(\d+)\] images_per_second", line)
    if (logged and int(logged.group(1)) >= 20) or not line:
      break
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  log = "".join(lines) + out
  assert proc.returncode == 0, log
  assert "interrupted: checkpoint" in log, log
  saved = sorted(int(d) for d in os.listdir(events) if d.isdigit())
  assert saved and saved[-1] >= 20 and saved[-1] % 16, log  # mid-epoch
  # Resume the interrupted run to the end; compare with a run never stopped.
  done = subprocess.run(_main_cmd(run_dir, *overrides), cwd=REPO,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stdout + done.stderr
  assert f"resumed from checkpoint {saved[-1]}" in done.stderr
  straight = subprocess.run(_main_cmd(tmp_path / "straight", *overrides),
                            cwd=REPO, capture_output=True, text=True,
                            timeout=600)
  assert straight.returncode == 0, straight.stderr
  a = json.loads((run_dir / "results.json").read_text())["metrics"]
  b = json.loads((tmp_path / "straight" / "results.json").read_text())[
      "metrics"]
  assert a["per_class"] == b["per_class"] and a["top1"] == b["top1"]
  # The results say where the interrupted run went on from a checkpoint.
  assert json.loads((run_dir / "results.json").read_text())[
      "resumed_at"] == [saved[-1]]
  assert json.loads((tmp_path / "straight" / "results.json").read_text())[
      "resumed_at"] == []


def test_sigterm_at_an_epochs_last_step_still_evaluates_that_epoch(
    tmp_path, monkeypatch):
  # 16 steps per epoch: the SIGTERM arrives while step 16, the last of
  # epoch 1, is fed, so the trainer sees it at the end of epoch 1.
  fed, shard_batch = [], parallel.shard_batch

  def feed(*args, **kwargs):
    fed.append(1)
    if len(fed) == 16:
      os.kill(os.getpid(), signal.SIGTERM)
    return shard_batch(*args, **kwargs)

  monkeypatch.setattr(parallel, "shard_batch", feed)
  config = tiny_config(num_epochs=3, checkpoint_every_epochs=3)
  assert train.train_and_evaluate(config, str(tmp_path)) == {
      "interrupted": True, "step": 16}
  progress = json.loads((tmp_path / "progress.json").read_text())
  assert (progress["epoch"], progress["step"]) == (1, 16)
  # The resumed run starts epoch 2 and evaluates epochs 2 and 3.
  monkeypatch.setattr(parallel, "shard_batch", shard_batch)
  assert train.train_and_evaluate(config, str(tmp_path))["step"] == 48
  assert json.loads((tmp_path / "progress.json").read_text())["epoch"] == 3


def _free_port():
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
  """2 processes × 2 CPU devices == 1 process × 4 devices, same global batch."""
  overrides = ["--config.num_epochs=2", "--config.eval_every_epochs=2",
               "--config.checkpoint_every_epochs=1", "--config.method=remix_cm"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  port = _free_port()
  procs = [
      subprocess.Popen(
          _main_cmd(tmp_path / "multi", *overrides,
                    f"--config.distributed.coordinator_address=127.0.0.1:{port}",
                    "--config.distributed.num_processes=2",
                    f"--config.distributed.process_id={p}"),
          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
          text=True) for p in range(2)]
  outs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out
  assert "2 process(es)" in outs[0] and "4 device(s)" in outs[0], outs[0]
  single = subprocess.run(
      _main_cmd(tmp_path / "single", *overrides, "--config.num_devices=4"),
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env=dict(os.environ,
               XLA_FLAGS="--xla_force_host_platform_device_count=4"))
  assert single.returncode == 0, single.stderr
  a = json.loads((tmp_path / "multi" / "results.json").read_text())["metrics"]
  b = json.loads((tmp_path / "single" / "results.json").read_text())["metrics"]
  np.testing.assert_allclose(a["per_class"], b["per_class"], atol=1e-6)
  assert a["top1"] == pytest.approx(b["top1"])
