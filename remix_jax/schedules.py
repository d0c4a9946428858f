"""Learning-rate schedules as pure functions of the step (optax schedules)."""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import optax

SCHEDULES = ("step", "cosine")


def warmup_factor(epoch: jnp.ndarray, warmup_epochs: float,
                  warmup_stages: int) -> jnp.ndarray:
  """Stepwise linear warm-up: ``(⌊e/E_w·S⌋ + 1)/S`` for ``e < E_w``, else 1.

  ``S`` equal stages over ``E_w`` epochs. LDAM-DRW uses E_w = 5, S = 5 (one
  stage per epoch: 0.2, 0.4, … of the base rate); the ``cpu30`` protocol uses
  E_w = 1, S = 5 (five stages within the first epoch).
  """
  if warmup_epochs <= 0:
    return jnp.ones_like(epoch)
  stage = jnp.floor(epoch / warmup_epochs * warmup_stages) + 1.0
  return jnp.where(epoch < warmup_epochs, stage / warmup_stages, 1.0)


def step_factor(epoch: jnp.ndarray, boundaries: Sequence[float],
                scales: Sequence[float]) -> jnp.ndarray:
  """Piecewise constant: the base rate times ``scales[k]`` from epoch
  ``boundaries[k]`` on (absolute multipliers, not cumulative)."""
  factor = jnp.ones_like(epoch)
  for boundary, scale in zip(boundaries, scales):
    factor = jnp.where(epoch >= boundary, scale, factor)
  return factor


def cosine_factor(epoch: jnp.ndarray, warmup_epochs: float,
                  num_epochs: float) -> jnp.ndarray:
  """``½(1 + cos(π·t))`` with ``t`` the fraction of post-warm-up training."""
  span = max(num_epochs - warmup_epochs, 1e-9)
  t = jnp.clip((epoch - warmup_epochs) / span, 0.0, 1.0)
  return 0.5 * (1.0 + jnp.cos(jnp.pi * t))


def learning_rate_schedule(base: float, steps_per_epoch: int, *,
                           schedule: str = "step", num_epochs: float,
                           warmup_epochs: float = 0.0, warmup_stages: int = 1,
                           boundaries: Sequence[float] = (),
                           scales: Sequence[float] = ()) -> optax.Schedule:
  """The learning rate at each optimizer step.

  ``lr(step) = base · warm-up(e) · decay(e)`` with ``e = step /
  steps_per_epoch`` (epochs counted from 0). ``schedule``:

  - ``'step'``: ``decay = scales[k]`` from epoch ``boundaries[k]``.
    LDAM-DRW's recipe (Cao et al. 2019) is boundaries (160, 180) with scales
    (0.01, 0.0001) over 200 epochs.
  - ``'cosine'``: cosine annealing to 0 at ``num_epochs``.

  Args:
    base: the base learning rate.
    steps_per_epoch: optimizer steps per epoch.
    schedule: ``'step'`` or ``'cosine'`` (:data:`SCHEDULES`).
    num_epochs: the length of training (the cosine's end).
    warmup_epochs: ``E_w`` of :func:`warmup_factor` (0: none).
    warmup_stages: ``S`` of :func:`warmup_factor`.
    boundaries: the step schedule's epochs.
    scales: the step schedule's multipliers, one per boundary.

  Returns:
    An optax schedule ``step -> lr``.

  Raises:
    ValueError: an unknown ``schedule``, or boundaries and scales of
      different lengths (one line).
  """
  if schedule not in SCHEDULES:
    raise ValueError(f"schedule={schedule!r} is not valid; choose one of "
                     f"{', '.join(SCHEDULES)}")
  boundaries, scales = tuple(boundaries), tuple(scales)
  if len(boundaries) != len(scales):
    raise ValueError(f"boundaries {boundaries} and scales {scales} must have "
                     "equal lengths")
  base = float(base)

  def lr(step):
    epoch = jnp.asarray(step, jnp.float32) / steps_per_epoch
    factor = warmup_factor(epoch, warmup_epochs, warmup_stages)
    if schedule == "step":
      factor = factor * step_factor(epoch, boundaries, scales)
    else:
      factor = factor * cosine_factor(epoch, warmup_epochs, num_epochs)
    return base * factor

  return lr
