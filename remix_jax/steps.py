"""The jitted, data-parallel train and eval steps.

``make_train_step(objective, graphdef, tx, learning_rate_fn, mesh)`` builds
ONE pure function of ``(state, images, labels)`` (``partner_batch=True``:
``(state, images, labels, partner_images, partner_labels)``, the second
sampling stream's batch, sharded like the first), jitted once over
``jax.shard_map`` on the ``('data',)`` mesh. On each device, for its shard::

    key = fold_in(state.rng, step)      # the same on every device
    (loss, (batch_stats, metrics)), grads =
        value_and_grad(objective)(graphdef, params, batch_stats, images,
                                  labels, key, step[, partners])
    batch_stats ← pmean(batch_stats);  params ← optax update(grads)

The objective (:mod:`remix_jax.trainer.objective`, built from the config there)
folds the device index into ``key`` for what each device draws on its own,
mixes the shard, runs the forward pass(es) and returns this device's share of
the global-batch loss, ``Σ_{i∈d} ℓᵢ / Σ_{all i} wᵢ`` (the total label weight
is a ``psum``, :func:`remix_jax.losses.weighted_mean`), so the gradient of
the replicated parameters — which shard_map sums over devices — is exactly
the gradient of the global-batch loss. ``make_train_step`` reads no config:
it adds the optimizer, the BatchNorm average, the per-device rng and the ``loss`` and
``learning_rate`` metrics. Metrics stay on device.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import PartitionSpec as P

from remix_jax.mixers.ops import Partners
from remix_jax.parallel import AXIS


class TrainState(NamedTuple):
  """Everything a step reads and writes; one pytree, checkpointed whole."""

  params: Any  # nnx.State of nnx.Param
  batch_stats: Any  # nnx.State of nnx.BatchStat
  opt_state: Any  # optax state
  step: jax.Array  # [] int32, optimizer steps taken
  rng: jax.Array  # [2] uint32, raw key data of the run's base key


def split_model(model: nnx.Module):
  """``(graphdef, params, batch_stats)``; the model holds nothing else."""
  graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  return graphdef, params, batch_stats


def make_optimizer(learning_rate_fn, *, momentum: float, weight_decay: float,
                   nesterov: bool = False) -> optax.GradientTransformation:
  """SGD with momentum and L2 weight decay added to the gradient (as
  ``torch.optim.SGD(weight_decay=…)``, on every parameter):
  ``g ← g + wd·θ``, then optax's SGD (``momentum=0``: plain SGD).

  Args:
    learning_rate_fn: ``step -> lr`` (an optax schedule).
    momentum: the momentum (``0``: none).
    weight_decay: the L2 coefficient ``wd``.
    nesterov: Nesterov momentum.

  Returns:
    The optax transformation.
  """
  return optax.chain(
      optax.add_decayed_weights(weight_decay),
      optax.sgd(learning_rate_fn, momentum=momentum or None,
                nesterov=nesterov))


def make_train_step(objective: Callable, graphdef, tx, learning_rate_fn,
                    mesh, *, partner_batch: bool = False):
  """The jitted data-parallel train step ``(state, images, labels) ->
  (state, metrics)``; ``state`` is donated.

  Args:
    objective: ``objective(graphdef, params, batch_stats, images, labels,
      key, step[, partner_batch]) -> (loss, (batch_stats, metrics))``, this
      device's share of the global-batch loss
      (:func:`remix_jax.trainer.objective.make_objective`); ``key`` is the
      step's key, the same on every device.
    graphdef: the model's graph definition in train mode (:func:`split_model`).
    tx: the optimizer (:func:`make_optimizer`).
    learning_rate_fn: ``step -> learning rate``, logged as ``learning_rate``.
    mesh: the ``('data',)`` mesh.
    partner_batch: the step also takes ``partner_images`` and
      ``partner_labels`` (shaped and sharded like ``images`` and ``labels``)
      and passes them to the objective as a
      :class:`remix_jax.mixers.Partners`.

  Returns:
    The jitted step; its metrics are the objective's plus ``loss`` and
    ``learning_rate``.
  """

  def local_step(state: TrainState, images, labels, *partner_arrays):
    key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    extra = (Partners(*partner_arrays),) if partner_arrays else ()

    def loss_fn(params):
      return objective(graphdef, params, state.batch_stats, images, labels,
                       key, state.step, *extra)

    (loss, (batch_stats, metrics)), grads = (
        jax.value_and_grad(loss_fn, has_aux=True)(state.params))
    batch_stats = jax.lax.pmean(batch_stats, AXIS)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {
        "loss": jax.lax.psum(loss, AXIS),
        "learning_rate": learning_rate_fn(state.step),
        **metrics,
    }
    new_state = TrainState(params, batch_stats, opt_state, state.step + 1,
                           state.rng)
    return new_state, metrics

  batch_specs = (P(AXIS),) * (4 if partner_batch else 2)
  step = jax.shard_map(local_step, mesh=mesh,
                       in_specs=(P(), *batch_specs), out_specs=(P(), P()))
  return jax.jit(step, donate_argnums=(0,))


def make_eval_step(graphdef_eval, mesh, num_classes: int):
  """The jitted eval step ``(state, images, labels, mask) -> per-class
  [C] counts (correct top-1, correct top-5, total)``, padding masked out."""
  k = min(5, num_classes)

  def local_eval(state: TrainState, images, labels, mask):
    model = nnx.merge(graphdef_eval, state.params, state.batch_stats)
    logits = model(images).logits
    onehot = jax.nn.one_hot(labels, num_classes) * mask[:, None]
    top1 = jnp.argmax(logits, -1) == labels
    _, topk = jax.lax.top_k(logits, k)
    in_topk = jnp.any(topk == labels[:, None], axis=-1)
    counts = [jnp.sum(onehot * c[:, None], 0) for c in (top1, in_topk)]
    counts.append(jnp.sum(onehot, 0))
    return tuple(jax.lax.psum(c, AXIS) for c in counts)

  step = jax.shard_map(local_eval, mesh=mesh,
                       in_specs=(P(), P(AXIS), P(AXIS), P(AXIS)),
                       out_specs=(P(), P(), P()))
  return jax.jit(step)
