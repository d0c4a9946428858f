"""Former name of :mod:`remix_jax.data.process_split` (kept importable)."""

from remix_jax.data.process_split import local_batch_size  # noqa: F401
from remix_jax.data.process_split import padded_eval_order  # noqa: F401
from remix_jax.data.process_split import process_rows  # noqa: F401
