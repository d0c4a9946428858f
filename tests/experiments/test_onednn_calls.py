"""benchmarks/onednn_calls.py: oneDNN's verbose lines summed per call kind."""

import pytest

from benchmarks import onednn_calls

# oneDNN 3.2's layout (ours) and a newer release's (PyTorch's), with and
# without the version/stage fields before "cpu"; the time is the last field.
LINES = [
    "onednn_verbose,exec,cpu,convolution,brgconv:avx512_core,"
    "forward_training,src_f32::blocked:acdb::f0,,alg:convolution_direct,"
    "mb8_ic16oc16_ih32oh32kh3sh1dh0ph1_iw32ow32kw3sw1dw0pw1,2.5",
    "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,"
    "forward_training,src_f32::blocked:acdb::f0,,alg:convolution_direct,"
    "mb8_ic16oc16_ih32oh32kh3sh1dh0ph1_iw32ow32kw3sw1dw0pw1,1.5",
    "onednn_verbose,exec,cpu,reorder,jit:uni,undef,src_f32::blocked:abcd::f0,"
    ",,16x16x3x3,0.25",
    "onednn_verbose,exec,cpu,convolution,jit:avx512_core,backward_weights,"
    "src_f32::blocked:acdb::f0,,alg:convolution_direct,mb8_ic16oc16,4.0",
]


def test_summarize_sums_calls_and_time_per_kind_and_step():
  out = onednn_calls.summarize(LINES, steps=2)
  assert set(out) == {("convolution", "forward_training"),
                      ("reorder", "undef"),
                      ("convolution", "backward_weights")}
  calls, ms, impls = out["convolution", "forward_training"]
  assert calls == pytest.approx(1.0) and ms == pytest.approx(2.0)
  assert impls == {"brgconv:avx512_core", "brg_conv_fwd:avx512_core"}
  assert out["convolution", "backward_weights"][:2] == pytest.approx([0.5, 2])
  assert out["reorder", "undef"][1] == pytest.approx(0.125)
