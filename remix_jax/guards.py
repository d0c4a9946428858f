"""Finiteness checks of a train state: one fused on-device reduction."""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.jit
def all_finite(tree) -> jax.Array:
  """Whether every floating-point leaf of ``tree`` is free of NaN and Inf.

  Args:
    tree: a pytree of arrays (e.g. a ``TrainState``).

  Returns:
    A scalar boolean array, computed on the arrays' devices in one jitted
    reduction; reading it (``bool(...)``) is the only host sync.
  """
  flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
           if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
  return jnp.all(jnp.stack(flags)) if flags else jnp.array(True)
