"""The library's parts of a run, built from its config: the model, the
keys, the learning-rate schedule, the optimizer, the initial state and the
jitted train and eval steps."""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
from flax import nnx

from remix_jax import models
from remix_jax import parallel
from remix_jax import schedules
from remix_jax import steps
from remix_jax.models import onednn
from remix_jax.models import sumix_heads
from remix_jax.trainer import objective as objective_lib


#: Auto kernel-gradient chunks on CPU: chunks of this many images ...
CPU_CHUNK_IMAGES = 16
#: ... and at most this many chunks (compile time grows with the count).
CPU_MAX_CHUNKS = 8


def resolve_weight_grad_chunks(value: int, per_device_batch: int) -> int:
  """``config.weight_grad_chunks`` with ``-1`` (auto) resolved by backend.

  Auto on CPU, where XLA's single kernel-gradient convolution is slow:
  ``clip(per_device_batch // 16, 1, 8)`` chunks, the fastest setting measured
  for ResNet-32 with the project's XLA:CPU flags
  (docs/dev/performance_log.md). On GPU/TPU:
  ``1`` (plain).

  Args:
    value: ``config.weight_grad_chunks`` (``-1`` or ``>= 1``).
    per_device_batch: training images per device and step.

  Returns:
    The number of chunks (``>= 1``).
  """
  if value != -1:
    return value
  if jax.default_backend() != "cpu":
    return 1
  return min(CPU_MAX_CHUNKS, max(1, per_device_batch // CPU_CHUNK_IMAGES))


def resolve_conv_impl(value: str) -> str:
  """``config.conv_impl`` with ``"auto"`` resolved by backend.

  Auto: oneDNN's convolutions and training-mode BatchNorm
  (:mod:`remix_jax.models.onednn`, :mod:`remix_jax.models.onednn_batch_norm`)
  on CPU when the native library loads, else XLA's with one warning; XLA's
  on GPU/TPU.

  Args:
    value: ``"auto"``, ``"xla"`` or ``"onednn"``.

  Returns:
    ``"xla"`` or ``"onednn"``.

  Raises:
    ValueError: ``"onednn"`` on a non-CPU backend, or where the library is
      unavailable (the message says why).
  """
  if value == "xla":
    return value
  backend = jax.default_backend()
  if backend != "cpu":
    if value == "onednn":
      raise ValueError(f"config.conv_impl=onednn runs on CPU only (backend is "
                       f"{backend}); use auto or xla")
    return "xla"
  reason = onednn.unavailable_reason()
  if reason is None:
    return "onednn"
  if value == "onednn":
    raise ValueError(f"config.conv_impl=onednn is unavailable: {reason}; use "
                     "auto or xla")
  _warn_once(f"oneDNN convolutions unavailable ({reason}); using XLA's")
  return "xla"


@functools.cache
def _warn_once(message: str) -> None:
  logging.warning(message)


#: How a run's JAX keys come from ``config.seed``, stored in its run record
#: (:mod:`remix_jax.trainer.run_record`) when the run starts from step 0.
KEY_DERIVATION = "fold_in(key(seed), purpose)"

#: The purposes of a run's keys, each folded into ``key(config.seed)`` once.
KEY_PURPOSES = ("init", "step")


def run_key(seed: int, purpose: str) -> jax.Array:
  """The key of one purpose of the run with ``seed``.

  ``fold_in(key(seed), i)`` with ``i`` the index of ``purpose`` in
  :data:`KEY_PURPOSES`: ``"init"`` initialises the model, ``"step"`` is the
  train state's base key (mixing and every other random choice of the step;
  :mod:`remix_jax.steps` folds in the step and the device). No two seeds or
  purposes share a stream.

  Args:
    seed: ``config.seed``.
    purpose: one of :data:`KEY_PURPOSES`.

  Returns:
    A typed JAX key.

  Raises:
    ValueError: ``purpose`` is not one of :data:`KEY_PURPOSES`.
  """
  if purpose not in KEY_PURPOSES:
    raise ValueError(f"purpose={purpose!r} must be one of "
                     f"{', '.join(KEY_PURPOSES)}")
  return jax.random.fold_in(jax.random.key(seed), KEY_PURPOSES.index(purpose))


def model_from_config(config, num_classes: int, *,
                      per_device_batch: int) -> nnx.Module:
  """The backbone of ``config.model`` (:func:`remix_jax.models.create_model`
  with the config's options), wrapped with SUMix's heads when
  ``config.sumix.enabled`` (``s`` defaults to the per-device batch)."""
  rngs = nnx.Rngs(run_key(config.seed, "init"))
  model = models.create_model(
      config.model, num_classes=num_classes, rngs=rngs,
      normalized_classifier=config.normalized_classifier,
      dtype=models.DTYPES[config.dtype],
      weight_grad_chunks=resolve_weight_grad_chunks(config.weight_grad_chunks,
                                                    per_device_batch),
      conv_impl=resolve_conv_impl(config.conv_impl))
  if not config.sumix.enabled:
    return model
  return sumix_heads.SUMixModel(
      model, num_classes=num_classes,
      scale=config.sumix.scale or per_device_batch,
      is_norm=config.sumix.is_norm, learn_scale=config.sumix.learn_scale,
      rngs=rngs)


def learning_rate_fn(config, steps_per_epoch: int):
  """The optax schedule of ``config`` (:func:`remix_jax.schedules.
  learning_rate_schedule` with ``learning_rate``, ``schedule``,
  ``num_epochs``, ``warmup_epochs``, ``warmup_stages``, ``lr_boundaries``,
  ``lr_scales``)."""
  return schedules.learning_rate_schedule(
      config.learning_rate, steps_per_epoch, schedule=config.schedule,
      num_epochs=config.num_epochs, warmup_epochs=config.warmup_epochs,
      warmup_stages=config.warmup_stages, boundaries=config.lr_boundaries,
      scales=config.lr_scales)


def optimizer(config, lr_fn):
  """SGD of ``config`` (:func:`remix_jax.steps.make_optimizer` with
  ``momentum``, ``weight_decay``, ``nesterov``)."""
  return steps.make_optimizer(lr_fn, momentum=config.momentum,
                              weight_decay=config.weight_decay,
                              nesterov=config.nesterov)


def initial_state(config, model, tx) -> steps.TrainState:
  """The train state at step 0 (on the host)."""
  _, params, batch_stats = steps.split_model(model)
  return steps.TrainState(
      params=params, batch_stats=batch_stats, opt_state=tx.init(params),
      step=jnp.zeros((), jnp.int32),
      rng=jax.random.key_data(run_key(config.seed, "step")))


def build(config, mesh, *, num_classes: int, class_counts,
          steps_per_epoch: int):
  """The model's initial train state (replicated on ``mesh``) and the jitted
  train and eval steps for ``config``.

  Returns:
    ``(state, train_step, eval_step)``; see :mod:`remix_jax.steps`.
  """
  model = model_from_config(config, num_classes,
                            per_device_batch=config.batch_size // mesh.devices.size)
  model.eval()
  graphdef_eval = steps.split_model(model)[0]
  model.train()
  graphdef = steps.split_model(model)[0]
  lr_fn = learning_rate_fn(config, steps_per_epoch)
  tx = optimizer(config, lr_fn)
  state = parallel.replicate(mesh, initial_state(config, model, tx))
  objective = objective_lib.make_objective(
      config, class_counts, steps_per_epoch=steps_per_epoch,
      num_mix_layers=model.num_mix_layers)
  train_step = steps.make_train_step(
      objective, graphdef, tx, lr_fn, mesh,
      partner_batch=objective_lib.uses_partner_batch(config))
  eval_step = steps.make_eval_step(graphdef_eval, mesh, num_classes)
  return state, train_step, eval_step
