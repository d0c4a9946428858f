"""Validation of a training config: one-line errors before anything compiles."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re

from remix_jax import class_balance
from remix_jax import data
from remix_jax import label_rules
from remix_jax import mixers
from remix_jax import parallel
from remix_jax import remix
from remix_jax import schedules
from remix_jax import sumix
from remix_jax.trainer import methods
from remix_jax.trainer import objective
from remix_jax.trainer import run_log
from remix_jax.trainer import run_record

# The choices live beside the code that dispatches on them.
LOSSES = objective.LOSSES
MIXER_CHOICES = objective.MIXER_CHOICES
REWEIGHT = class_balance.REWEIGHT
RESAMPLE = class_balance.RESAMPLE


@contextlib.contextmanager
def config_fields(names: dict):
  """Re-raises a library's one-line ``ValueError`` (or
  ``FileNotFoundError``) with its argument names (the keys of ``names``,
  where the message names them) replaced by the config fields they come
  from (the values)."""
  try:
    yield
  except (ValueError, FileNotFoundError) as err:
    message = str(err)
    for argument, field in names.items():
      message = re.sub(rf"(?<![\w.]){re.escape(argument)}\b", field, message)
    raise type(err)(message) from None


def make_mesh(config):
  """The ``('data',)`` mesh of ``config.num_devices``
  (:func:`remix_jax.parallel.make_mesh`)."""
  with config_fields({"num_devices": "config.num_devices"}):
    return parallel.make_mesh(config.num_devices)


#: ``config.seed``'s range (the data seeds have the same).
SEED_RANGE = 2**32


def _finite_and_in_range(config) -> None:
  """Every float field finite (``inf`` or ``nan`` cannot train), and
  ``config.seed`` an integer in ``[0, 2**32)``."""
  for key, value in run_record.flatten(config).items():
    if isinstance(value, float) and not math.isfinite(value):
      raise ValueError(f"config.{key}={value} must be a finite number")
  seed = config.seed
  if (isinstance(seed, bool) or not isinstance(seed, int)
      or not 0 <= seed < SEED_RANGE):
    raise ValueError(f"config.seed={seed!r} must be an integer in "
                     "[0, 2**32)")


def _choice(config, field: str, choices) -> None:
  value = getattr(config, field)
  if value not in choices:
    raise ValueError(f"config.{field}={value!r} is not valid; choose one of "
                     f"{', '.join(map(str, choices))}")


def _positive(config, field: str, allow_zero: bool = False) -> None:
  value = getattr(config, field)
  if not (value >= 0 if allow_zero else value > 0):
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(f"config.{field}={value!r} must be {bound}")


def validate_config(config):
  """The config that trains: ``config.method`` applied
  (:func:`remix_jax.trainer.methods.resolve`) and every field the trainer
  reads checked.

  Called by :func:`remix_jax.trainer.train.train_and_evaluate` before any
  data is read or any function is compiled.

  Returns:
    The resolved config.

  Raises:
    ValueError: one line naming the bad field.
  """
  config = methods.resolve(config)
  _finite_and_in_range(config)
  from remix_jax import models  # pylint: disable=g-import-not-at-top

  _choice(config, "model", tuple(models.MODELS))
  _choice(config, "mixer", MIXER_CHOICES)
  _choice(config, "label_rule", label_rules.LABEL_RULES)
  _choice(config, "loss", LOSSES)
  _choice(config, "reweight", REWEIGHT)
  _choice(config, "resample", RESAMPLE)
  _choice(config, "partners", objective.PARTNER_CHOICES)
  _choice(config, "schedule", schedules.SCHEDULES)
  _choice(config, "dtype", tuple(models.DTYPES))
  _choice(config, "conv_impl", ("auto", *models.conv.CONV_IMPLS))
  _choice(config, "metric_writer", run_log.METRIC_WRITERS)
  for field in ("batch_size", "eval_batch_size", "num_epochs",
                "learning_rate", "eval_every_epochs", "checkpoint_every_epochs",
                "log_every_steps", "mix_alpha", "keep_checkpoints"):
    _positive(config, field)
  for field in ("weight_decay", "momentum", "warmup_epochs", "label_smoothing",
                "rebalance_epoch", "num_devices"):
    _positive(config, field, allow_zero=True)
  if config.weight_grad_chunks < 1 and config.weight_grad_chunks != -1:
    raise ValueError(f"config.weight_grad_chunks={config.weight_grad_chunks} "
                     "must be -1 (auto) or >= 1")
  if config.warmup_stages < 1:
    raise ValueError(f"config.warmup_stages={config.warmup_stages} must be >= 1")
  if len(config.lr_boundaries) != len(config.lr_scales):
    raise ValueError(
        f"config.lr_boundaries {tuple(config.lr_boundaries)} and "
        f"config.lr_scales {tuple(config.lr_scales)} must have equal lengths")
  with config_fields({"kappa": "config.remix_kappa",
                      "tau": "config.remix_tau"}):
    remix.check_kappa_tau(config.remix_kappa, config.remix_tau)
  with config_fields({"beta": "config.cb_beta"}):
    class_balance.check_beta(config.cb_beta)
  if not 0 <= config.label_smoothing < 1:
    raise ValueError(
        f"config.label_smoothing={config.label_smoothing} must be in [0, 1)")
  if config.label_rule == "remix" and config.mixer == "none":
    raise ValueError("config.label_rule='remix' needs a mixer; set "
                     "config.mixer to one of " + ", ".join(mixers.MIXERS))
  _validate_sumix(config)
  options = data_options(config.data)
  try:
    spec = data.check_options(options)
  except ValueError as e:  # the library names its argument: name the field
    raise ValueError(f"config.data.{e}") from None
  _validate_partners(config, spec.in_memory)
  methods.check_method(config)
  return config


def data_options(config_data) -> data.DataOptions:
  """The library's data options from the trainer's ``config.data``.

  Args:
    config_data: ``config.data``, a ``ConfigDict`` with fields of
      :class:`remix_jax.data.DataOptions` (references resolved; a missing
      field keeps its default).

  Returns:
    The :class:`remix_jax.data.DataOptions` (not validated: see
    :func:`validate_config`).

  Raises:
    ValueError: ``config_data`` has a field ``DataOptions`` does not (one
      line naming it and the known fields).
  """
  fields = config_data.to_dict()
  known = [f.name for f in dataclasses.fields(data.DataOptions)]
  unknown = sorted(set(fields) - set(known))
  if unknown:
    raise ValueError(f"config.data.{unknown[0]} is not a data option; the "
                     f"fields are {', '.join(known)}")
  return data.DataOptions(**fields)


def _validate_partners(config, in_memory: bool) -> None:
  """``config.partners``, ``config.mix_prob`` and ``config.la_tau`` against
  the mixer, SUMix and the dataset."""
  if not 0 < config.mix_prob <= 1:
    raise ValueError(f"config.mix_prob={config.mix_prob} must be in (0, 1]")
  skip = tuple(config.mix_skip_epochs)
  if (len(skip) != 2 or any(not isinstance(n, int) or n < 0 for n in skip)
      or sum(skip) >= config.num_epochs):
    raise ValueError(f"config.mix_skip_epochs={skip} must be two integers "
                     f">= 0 (first, last) leaving some of config.num_epochs="
                     f"{config.num_epochs} epochs to mix")
  if config.method == "balanced_softmax" and config.la_tau != 1:
    raise ValueError(f"config.method='balanced_softmax' is config.la_tau=1, "
                     f"got {config.la_tau}; select "
                     "--config.method=logit_adjustment for another τ")
  if config.partners == "permutation":
    return
  what = f"config.partners={config.partners!r}"
  if config.mixer == "none":
    raise ValueError(f"{what} needs a mixer; set config.mixer to one of "
                     + ", ".join(mixers.MIXERS))
  if config.mixer == "manifold_mixup" or config.sumix.enabled:
    raise ValueError(f"{what} takes partners from outside the device's shard, "
                     "which manifold_mixup and SUMix cannot use (they need "
                     "the partners' own forward pass); use "
                     "config.partners='permutation'")
  if config.partners == "sampler" and not in_memory:
    raise ValueError(f"{what} needs an in-memory dataset; "
                     f"config.data.name={config.data.name!r} is streamed")


def _validate_sumix(config) -> None:
  cfg = config.sumix
  with config_fields({name: f"config.sumix.{name}"
                      for name in ("reduction", "rule", "temperature")}):
    sumix.check_reduction(cfg.reduction)
    sumix.check_rule(cfg.rule, cfg.temperature)
  if cfg.gamma < 0 or cfg.scale < 0:
    raise ValueError(f"config.sumix.gamma={cfg.gamma} and config.sumix.scale="
                     f"{cfg.scale} must be >= 0 (scale 0 = per-device batch)")
  if cfg.enabled and config.mixer == "none":
    raise ValueError("config.sumix.enabled needs a mixer; set config.mixer to "
                     "one of " + ", ".join(mixers.MIXERS))
