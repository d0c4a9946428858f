"""benchmarks/trace_timeline.py: how a traced step's ops share the clock."""

import pytest

from benchmarks import trace_timeline


def test_union_counts_overlaps_once():
  assert trace_timeline.union_length([]) == 0
  assert trace_timeline.union_length([(5, 7), (0, 2), (1, 3), (6, 10)]) == 8
  assert trace_timeline.union_length([(0, 10), (2, 3)]) == 10


def _op(name, start_ms, end_ms):
  return {"name": name, "ts": start_ms * 1e3, "dur": (end_ms - start_ms) * 1e3}


def test_timeline_splits_native_calls_from_xla_ops():
  # Two steps. Step 1: conv 0-4, a fusion 3-6 (1 ms side by side), nothing
  # 6-8, conv 8-10. Step 2: a fusion 10-12 and a copy inside it.
  events = [_op("ffi_call.1", 0, 4), _op("add_maximum_fusion.3", 3, 6),
            _op("ffi_call.2", 8, 10), _op("broadcast_subtract_fusion", 10, 12),
            _op("copy.4", 10.5, 11)]
  t = trace_timeline.timeline(events, steps=2)
  assert t == pytest.approx({"span": 6.0, "busy": 5.0, "native": 3.0,
                             "other": 2.5, "overlap": 0.5, "idle": 1.0})
  assert trace_timeline.timeline([], steps=3)["busy"] == 0.0
