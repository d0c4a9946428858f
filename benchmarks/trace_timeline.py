"""How the operations of a traced step share the wall clock.

Used by ``benchmarks/profile_step.py``. Summing op durations by kind says
what the step spends, but not whether the ops ran side by side or one after
the other, nor how long no op ran at all. From the complete (``"ph": "X"``)
op events of a Perfetto trace this computes, per step (in ms):

    span     last op end − first op start
    busy     |⋃ all op intervals|          time at least one op ran
    native   |⋃ oneDNN call intervals|     (``ffi_call`` events)
    other    |⋃ XLA op intervals|          everything else
    overlap  native + other − busy         both kinds at once
    idle     span − busy                   no op running (gaps, host work)

With ``overlap ≈ 0`` and ``idle ≈ 0`` the step is a chain: its time is
``native + other``, and only making either faster shortens it.
"""

from __future__ import annotations

from typing import Iterable, Sequence

#: Name prefix of the events of the oneDNN convolutions (XLA FFI calls).
NATIVE_PREFIX = "ffi_call"


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
  """Length of the union of ``[start, end)`` intervals (overlaps once)."""
  total, end = 0.0, None
  for s, e in sorted(intervals):
    if end is None or s > end:
      total += e - s
      end = e
    elif e > end:
      total += e - end
      end = e
  return total


def timeline(events: Sequence[dict], steps: int) -> dict[str, float]:
  """The module docstring's quantities, in ms per step.

  Args:
    events: op events with ``name``, ``ts`` and ``dur`` in µs (host
      bookkeeping already removed).
    steps: how many steps the trace holds.

  Returns:
    ``{'span', 'busy', 'native', 'other', 'overlap', 'idle'}``.
  """
  if not events:
    return dict.fromkeys(("span", "busy", "native", "other", "overlap",
                          "idle"), 0.0)
  spans = [(e["ts"], e["ts"] + e["dur"]) for e in events]
  native = [iv for iv, e in zip(spans, events)
            if e["name"].startswith(NATIVE_PREFIX)]
  other = [iv for iv, e in zip(spans, events)
           if not e["name"].startswith(NATIVE_PREFIX)]
  span = max(e for _, e in spans) - min(s for s, _ in spans)
  busy, n, o = union_length(spans), union_length(native), union_length(other)
  per_step = lambda us: us / steps / 1e3  # noqa: E731
  return {"span": per_step(span), "busy": per_step(busy),
          "native": per_step(n), "other": per_step(o),
          "overlap": per_step(n + o - busy), "idle": per_step(span - busy)}
