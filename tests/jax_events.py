"""Counts JAX's traces and XLA compilations by function name, through the
public ``jax.monitoring`` listeners (no instrumentation in the library)."""

import collections
import contextlib
import dataclasses
import re

import jax

#: Names of the functions that the trainer's jitted steps trace
#: (``remix_jax.steps``: ``make_train_step``'s and ``make_eval_step``'s bodies).
TRAIN_STEP = "local_step"
EVAL_STEP = "local_eval"

# Events that jax.jit records, with the function's name as ``fun_name``:
# once per trace of a jitted function, once per XLA compilation of it.
_TRACE = "/jax/core/compile/jaxpr_trace_duration"
_COMPILE = "/jax/core/compile/backend_compile_duration"


@dataclasses.dataclass
class Events:
  """How often each function was traced and compiled, by name."""

  traces: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  compiles: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)

  def record(self, event: str, duration: float, **kwargs) -> None:
    """The ``jax.monitoring`` event-duration listener."""
    del duration
    name = kwargs.get("fun_name", "")
    if event == _TRACE:
      self.traces[name] += 1
    elif event == _COMPILE:
      # Compilations are named "jit(NAME)"; keyed by NAME like the traces.
      self.compiles[re.sub(r"^jit\((.*)\)$", r"\1", name)] += 1


@contextlib.contextmanager
def count_traces_and_compiles():
  """Counts the traces and compilations of jitted functions in the block.

  Yields:
    An :class:`Events` that fills while the block runs.
  """
  events = Events()
  jax.monitoring.register_event_duration_secs_listener(events.record)
  try:
    yield events
  finally:
    jax.monitoring.unregister_event_duration_listener(events.record)
