// oneDNN 2-D convolutions as XLA FFI handlers (CPU, float32, NHWC/HWIO).
//
// Three handlers, one per pass of y = conv(x, w):
//   RemixOnednnConvFwd        y  = conv(x, w)
//   RemixOnednnConvBwdData    dx = conv_transpose(dy, w)
//   RemixOnednnConvBwdWeights dw = sum_{n,h,w} x_pad[n, h*s+i, w*s+j, c] dy[n,h,w,o]
// and one for inference with an epilogue in oneDNN's post-ops:
//   RemixOnednnConvFwdEpilogue y = act(conv(x, w) + b [+ s]), act = ReLU or id
// x, y and dy are NHWC and w, dw HWIO, as XLA holds them, so no activation is
// ever reordered. The weights go through oneDNN's preferred blocked layout
// (format `any`), which costs one small reorder per call.
//
// Primitive descriptors are cached by geometry (creating one searches
// oneDNN's implementation list). Primitives are stateless, so one cached
// primitive may serve several XLA threads; each thread brings its own
// stream and scratchpad, and the calls run one at a time
// (ExecutionLock(), onednn_common.h).

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "onednn_common.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using dnnl::memory;
using namespace remix_onednn;  // NOLINT: the directory's shared helpers
using Dims = memory::dims;
using Tag = memory::format_tag;

// N, H, W, C, KH, KW, O, stride_h, stride_w, pad_top, pad_bottom, pad_left,
// pad_right. The output size follows from these.
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t>;

struct Geometry {
  int64_t n, h, w, c, kh, kw, o, sh, sw, pt, pb, pl, pr, oh, ow;

  Key key() const { return {n, h, w, c, kh, kw, o, sh, sw, pt, pb, pl, pr}; }
  memory::desc src(Tag tag = Tag::nhwc) const {
    return {{n, c, h, w}, memory::data_type::f32, tag};
  }
  memory::desc dst(Tag tag = Tag::nhwc) const {
    return {{n, o, oh, ow}, memory::data_type::f32, tag};
  }
  memory::desc weights(Tag tag) const {
    return {{o, c, kh, kw}, memory::data_type::f32, tag};
  }
  Dims strides() const { return {sh, sw}; }
  Dims pad_begin() const { return {pt, pl}; }
  Dims pad_end() const { return {pb, pr}; }
};

dnnl::convolution_forward::primitive_desc ForwardPd(const Geometry& g) {
  return dnnl::convolution_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_training,
      dnnl::algorithm::convolution_direct, g.src(), g.weights(Tag::any),
      g.dst(), g.strides(), g.pad_begin(), g.pad_end(), ScratchpadAttr());
}

// Inference forward with bias b[o] and the epilogue as post-ops: a binary
// add of the NHWC tensor s when `add`, then a ReLU when `relu`.
dnnl::convolution_forward::primitive_desc EpiloguePd(const Geometry& g,
                                                     bool add, bool relu) {
  dnnl::post_ops ops;
  if (add) ops.append_binary(dnnl::algorithm::binary_add, g.dst());
  if (relu) ops.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  auto attr = ScratchpadAttr();
  attr.set_post_ops(ops);
  return dnnl::convolution_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_inference,
      dnnl::algorithm::convolution_direct, g.src(), g.weights(Tag::any),
      memory::desc({g.o}, memory::data_type::f32, Tag::x), g.dst(),
      g.strides(), g.pad_begin(), g.pad_end(), attr);
}

// One cached pass: the primitive, the oneDNN layout of its weights, and the
// reorder between that layout and HWIO (null when they agree).
struct Plan {
  dnnl::primitive primitive;
  memory::desc weights_md;
  memory::desc hwio_md;
  size_t scratchpad_bytes = 0;
  dnnl::primitive weights_reorder;  // HWIO -> weights_md (fwd, bwd data)
  size_t reorder_scratch = 0;
  bool needs_reorder = false;
};

// The epilogue passes follow kFwdEpilogue: + 1 with the add, + 2 with ReLU.
enum class Pass { kFwd, kBwdData, kBwdWeights, kFwdEpilogue };

int PassId(Pass pass, bool add = false, bool relu = false) {
  return static_cast<int>(pass) + (add ? 1 : 0) + (relu ? 2 : 0);
}

Plan MakePlan(const Geometry& g, int pass_id) {
  const Pass pass = static_cast<Pass>(std::min(pass_id, 3));
  Plan plan;
  plan.hwio_md = g.weights(Tag::hwio);
  if (pass == Pass::kFwd || pass == Pass::kFwdEpilogue) {
    const int epilogue = pass_id - static_cast<int>(Pass::kFwdEpilogue);
    auto pd = pass == Pass::kFwd
                  ? ForwardPd(g)
                  : EpiloguePd(g, epilogue & 1, epilogue & 2);
    plan.primitive = dnnl::convolution_forward(pd);
    plan.weights_md = pd.weights_desc();
    plan.scratchpad_bytes = pd.scratchpad_desc().get_size();
  } else if (pass == Pass::kBwdData) {
    auto pd = dnnl::convolution_backward_data::primitive_desc(
        Engine(), dnnl::algorithm::convolution_direct, g.src(),
        g.weights(Tag::any), g.dst(), g.strides(), g.pad_begin(), g.pad_end(),
        ForwardPd(g), ScratchpadAttr());
    plan.primitive = dnnl::convolution_backward_data(pd);
    plan.weights_md = pd.weights_desc();
    plan.scratchpad_bytes = pd.scratchpad_desc().get_size();
  } else {
    auto pd = dnnl::convolution_backward_weights::primitive_desc(
        Engine(), dnnl::algorithm::convolution_direct, g.src(),
        g.weights(Tag::any), g.dst(), g.strides(), g.pad_begin(), g.pad_end(),
        ForwardPd(g), ScratchpadAttr());
    plan.primitive = dnnl::convolution_backward_weights(pd);
    plan.weights_md = pd.diff_weights_desc();
    plan.scratchpad_bytes = pd.scratchpad_desc().get_size();
  }
  plan.needs_reorder = plan.weights_md != plan.hwio_md;
  if (plan.needs_reorder) {
    const bool to_onednn = pass != Pass::kBwdWeights;
    auto src = to_onednn ? plan.hwio_md : plan.weights_md;
    auto dst = to_onednn ? plan.weights_md : plan.hwio_md;
    auto pd = dnnl::reorder::primitive_desc(Engine(), src, Engine(), dst,
                                            ScratchpadAttr());
    plan.weights_reorder = dnnl::reorder(pd);
    plan.reorder_scratch = pd.scratchpad_desc().get_size();
  }
  return plan;
}

const Plan& GetPlan(const Geometry& g, int pass_id) {
  static std::mutex mutex;
  static std::map<std::pair<int, Key>, std::unique_ptr<Plan>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[{pass_id, g.key()}];
  if (!slot) slot = std::make_unique<Plan>(MakePlan(g, pass_id));
  return *slot;
}

ffi::Error CheckGeometry(const Geometry& g) {
  if (g.n < 1 || g.h < 1 || g.w < 1 || g.c < 1 || g.kh < 1 || g.kw < 1 ||
      g.o < 1 || g.sh < 1 || g.sw < 1 || g.pt < 0 || g.pb < 0 || g.pl < 0 ||
      g.pr < 0 || g.oh < 1 || g.ow < 1) {
    return ffi::Error::InvalidArgument("onednn conv: invalid geometry");
  }
  if ((g.h + g.pt + g.pb - g.kh) / g.sh + 1 != g.oh ||
      (g.w + g.pl + g.pr - g.kw) / g.sw + 1 != g.ow) {
    return ffi::Error::InvalidArgument(
        "onednn conv: output size does not match the geometry");
  }
  return ffi::Error::Success();
}

template <typename Buffer>
bool Rank4(const Buffer& b) { return b.dimensions().size() == 4; }

bool SameDims(ffi::Span<const int64_t> a, ffi::Span<const int64_t> b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

// Runs `plan` with `args`, bringing the weights at `weights_arg` in or out of
// HWIO through the plan's reorder.
ffi::Error Execute(const Plan& plan, int weights_arg, void* hwio_weights,
                   std::unordered_map<int, memory>& args) {
  std::lock_guard<std::mutex> lock(ExecutionLock());
  try {
    auto& stream = Stream();
    const size_t weights_bytes =
        plan.needs_reorder ? Aligned(plan.weights_md.get_size()) : 0;
    const size_t total = weights_bytes + Aligned(plan.scratchpad_bytes) +
                         Aligned(plan.reorder_scratch);
    auto* base = static_cast<char*>(Scratch(total));
    memory hwio(plan.hwio_md, Engine(), hwio_weights);
    memory weights = hwio;
    if (plan.needs_reorder) weights = memory(plan.weights_md, Engine(), base);
    memory reorder_pad = Bytes(
        plan.reorder_scratch,
        base + weights_bytes + Aligned(plan.scratchpad_bytes));
    const bool weights_in = weights_arg != DNNL_ARG_DIFF_WEIGHTS;
    if (plan.needs_reorder && weights_in) {
      plan.weights_reorder.execute(stream, {{DNNL_ARG_FROM, hwio},
                                            {DNNL_ARG_TO, weights},
                                            {DNNL_ARG_SCRATCHPAD, reorder_pad}});
    }
    args[weights_arg] = weights;
    args[DNNL_ARG_SCRATCHPAD] =
        Bytes(plan.scratchpad_bytes, base + weights_bytes);
    plan.primitive.execute(stream, args);
    if (plan.needs_reorder && !weights_in) {
      plan.weights_reorder.execute(stream, {{DNNL_ARG_FROM, weights},
                                            {DNNL_ARG_TO, hwio},
                                            {DNNL_ARG_SCRATCHPAD, reorder_pad}});
    }
    stream.wait();
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("onednn conv: ") + e.what());
  }
  return ffi::Error::Success();
}

Geometry MakeGeometry(ffi::Span<const int64_t> in, ffi::Span<const int64_t> k,
                      ffi::Span<const int64_t> out, int64_t sh, int64_t sw,
                      int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  return {in[0], in[1], in[2], in[3], k[0], k[1], k[3], sh, sw,
          pt,    pb,    pl,    pr,    out[1], out[2]};
}

ffi::Error Forward(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t sh, int64_t sw,
                   int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  if (!Rank4(x) || !Rank4(w) || !Rank4(*y) ||
      x.dimensions()[3] != w.dimensions()[2]) {
    return ffi::Error::InvalidArgument("onednn conv: expected NHWC x, HWIO w");
  }
  Geometry g = MakeGeometry(x.dimensions(), w.dimensions(), y->dimensions(),
                            sh, sw, pt, pb, pl, pr);
  if (auto error = CheckGeometry(g); error.failure()) return error;
  const Plan& plan = GetPlan(g, PassId(Pass::kFwd));
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(g.src(), Engine(), x.typed_data())},
      {DNNL_ARG_DST, memory(g.dst(), Engine(), y->typed_data())}};
  return Execute(plan, DNNL_ARG_WEIGHTS, w.typed_data(), args);
}

ffi::Error BackwardData(ffi::Buffer<ffi::F32> dy, ffi::Buffer<ffi::F32> w,
                        ffi::ResultBuffer<ffi::F32> dx, int64_t sh, int64_t sw,
                        int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  if (!Rank4(dy) || !Rank4(w) || !Rank4(*dx) ||
      dx->dimensions()[3] != w.dimensions()[2]) {
    return ffi::Error::InvalidArgument("onednn conv: expected NHWC dy, HWIO w");
  }
  Geometry g = MakeGeometry(dx->dimensions(), w.dimensions(), dy.dimensions(),
                            sh, sw, pt, pb, pl, pr);
  if (auto error = CheckGeometry(g); error.failure()) return error;
  const Plan& plan = GetPlan(g, PassId(Pass::kBwdData));
  std::unordered_map<int, memory> args{
      {DNNL_ARG_DIFF_DST, memory(g.dst(), Engine(), dy.typed_data())},
      {DNNL_ARG_DIFF_SRC, memory(g.src(), Engine(), dx->typed_data())}};
  return Execute(plan, DNNL_ARG_WEIGHTS, w.typed_data(), args);
}

ffi::Error BackwardWeights(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                           ffi::ResultBuffer<ffi::F32> dw, int64_t sh,
                           int64_t sw, int64_t pt, int64_t pb, int64_t pl,
                           int64_t pr) {
  if (!Rank4(x) || !Rank4(dy) || !Rank4(*dw) ||
      x.dimensions()[3] != dw->dimensions()[2]) {
    return ffi::Error::InvalidArgument("onednn conv: expected NHWC x, dy");
  }
  Geometry g = MakeGeometry(x.dimensions(), dw->dimensions(), dy.dimensions(),
                            sh, sw, pt, pb, pl, pr);
  if (auto error = CheckGeometry(g); error.failure()) return error;
  const Plan& plan = GetPlan(g, PassId(Pass::kBwdWeights));
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(g.src(), Engine(), x.typed_data())},
      {DNNL_ARG_DIFF_DST, memory(g.dst(), Engine(), dy.typed_data())}};
  return Execute(plan, DNNL_ARG_DIFF_WEIGHTS, dw->typed_data(), args);
}

ffi::Error ForwardEpilogue(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                           ffi::Buffer<ffi::F32> b,
                           std::optional<ffi::Buffer<ffi::F32>> skip,
                           ffi::ResultBuffer<ffi::F32> y, int64_t sh,
                           int64_t sw, int64_t pt, int64_t pb, int64_t pl,
                           int64_t pr, bool relu) {
  if (!Rank4(x) || !Rank4(w) || !Rank4(*y) ||
      x.dimensions()[3] != w.dimensions()[2] || b.dimensions().size() != 1 ||
      b.dimensions()[0] != w.dimensions()[3] ||
      (skip && !SameDims(skip->dimensions(), y->dimensions()))) {
    return ffi::Error::InvalidArgument(
        "onednn conv: expected NHWC x, HWIO w, bias [O], skip shaped as y");
  }
  Geometry g = MakeGeometry(x.dimensions(), w.dimensions(), y->dimensions(),
                            sh, sw, pt, pb, pl, pr);
  if (auto error = CheckGeometry(g); error.failure()) return error;
  const Plan& plan =
      GetPlan(g, PassId(Pass::kFwdEpilogue, skip.has_value(), relu));
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(g.src(), Engine(), x.typed_data())},
      {DNNL_ARG_BIAS, memory({{g.o}, memory::data_type::f32, Tag::x},
                             Engine(), b.typed_data())},
      {DNNL_ARG_DST, memory(g.dst(), Engine(), y->typed_data())}};
  if (skip) {
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] =
        memory(g.dst(), Engine(), skip->typed_data());
  }
  return Execute(plan, DNNL_ARG_WEIGHTS, w.typed_data(), args);
}

// `binding` followed by the strides and paddings of every handler here.
template <typename Binding>
auto WithGeometry(Binding binding) {
  return std::move(binding)
      .template Attr<int64_t>("stride_h")
      .template Attr<int64_t>("stride_w")
      .template Attr<int64_t>("pad_top")
      .template Attr<int64_t>("pad_bottom")
      .template Attr<int64_t>("pad_left")
      .template Attr<int64_t>("pad_right");
}

auto BindConv() {
  return WithGeometry(ffi::Ffi::Bind()
                          .Arg<ffi::Buffer<ffi::F32>>()
                          .Arg<ffi::Buffer<ffi::F32>>()
                          .Ret<ffi::Buffer<ffi::F32>>());
}

auto BindEpilogue() {
  return WithGeometry(ffi::Ffi::Bind()
                          .Arg<ffi::Buffer<ffi::F32>>()     // x
                          .Arg<ffi::Buffer<ffi::F32>>()     // w
                          .Arg<ffi::Buffer<ffi::F32>>()     // b
                          .OptionalArg<ffi::Buffer<ffi::F32>>()  // s
                          .Ret<ffi::Buffer<ffi::F32>>())
      .Attr<bool>("relu");
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(RemixOnednnConvFwd, Forward, BindConv());
XLA_FFI_DEFINE_HANDLER_SYMBOL(RemixOnednnConvBwdData, BackwardData,
                              BindConv());
XLA_FFI_DEFINE_HANDLER_SYMBOL(RemixOnednnConvBwdWeights, BackwardWeights,
                              BindConv());
XLA_FFI_DEFINE_HANDLER_SYMBOL(RemixOnednnConvFwdEpilogue, ForwardEpilogue,
                              BindEpilogue());

// The oneDNN version the library was built against, for diagnostics.
extern "C" int RemixOnednnVersion() {
  const dnnl_version_t* v = dnnl_version();
  return v->major * 10000 + v->minor * 100 + v->patch;
}
