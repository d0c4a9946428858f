// oneDNN training-mode batch normalization as XLA FFI handlers (CPU,
// float32, NHWC), optionally fused with the ReLU that follows it.
//
//   RemixOnednnBatchNormFwd   μ_c = mean_{n,h,w} x,  σ²_c = mean_{n,h,w} (x − μ_c)²,
//                             y = γ_c·(x − μ_c)/√(σ²_c + ε) + β_c   [then max(y, 0)]
//   RemixOnednnBatchNormBwd   ∂L/∂x, ∂L/∂γ, ∂L/∂β of the same function, the
//                             statistics differentiated as functions of x
//
//   RemixOnednnBatchNormAddReluFwd  y = max(BN(x) + s, 0), the end of a
//                                   residual block (s: the shortcut)
//   RemixOnednnBatchNormAddReluBwd  ∂L/∂x, ∂L/∂s = ∂L/∂y·[y > 0], ∂L/∂γ, ∂L/∂β
//
// With the ReLU fused, the forward pass writes oneDNN's workspace (which
// outputs were positive) and the backward pass reads it, so the ReLU costs
// no pass of its own. Without it the workspace is one unused byte. The
// add + ReLU variant runs the plain normalization, then one OpenMP pass over
// y (oneDNN 3.2 has no NHWC float32 kernel for its own `fuse_norm_add_relu`);
// its backward masks ∂L/∂y with y > 0 in one pass before oneDNN's backward.
// The statistics are returned so that the caller can update its running
// averages; σ² is the biased variance, as the normalization uses.
//
// Primitive descriptors are cached by (N, H, W, C, ε, relu).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>

#include "oneapi/dnnl/dnnl.hpp"
#include "onednn_common.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using dnnl::memory;
using namespace remix_onednn;  // NOLINT: the directory's shared helpers

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, uint32_t, bool>;

struct Plan {
  dnnl::batch_normalization_forward forward;
  dnnl::batch_normalization_backward backward;
  memory::desc data_md;
  memory::desc stat_md;
  memory::desc workspace_md;
  size_t forward_scratch = 0;
  size_t backward_scratch = 0;
};

Plan MakePlan(int64_t n, int64_t h, int64_t w, int64_t c, float epsilon,
              bool relu) {
  Plan plan;
  plan.data_md = memory::desc({n, c, h, w}, memory::data_type::f32,
                              memory::format_tag::nhwc);
  plan.stat_md = memory::desc({c}, memory::data_type::f32,
                              memory::format_tag::x);
  auto flags = dnnl::normalization_flags::use_scale |
               dnnl::normalization_flags::use_shift;
  if (relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
  auto fwd = dnnl::batch_normalization_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_training, plan.data_md, plan.data_md,
      epsilon, flags, ScratchpadAttr());
  auto bwd = dnnl::batch_normalization_backward::primitive_desc(
      Engine(), dnnl::prop_kind::backward, plan.data_md, plan.data_md,
      plan.data_md, epsilon, flags, fwd, ScratchpadAttr());
  plan.forward = dnnl::batch_normalization_forward(fwd);
  plan.backward = dnnl::batch_normalization_backward(bwd);
  plan.workspace_md = fwd.workspace_desc();
  plan.forward_scratch = fwd.scratchpad_desc().get_size();
  plan.backward_scratch = bwd.scratchpad_desc().get_size();
  return plan;
}

const Plan& GetPlan(int64_t n, int64_t h, int64_t w, int64_t c, float epsilon,
                    bool relu) {
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Plan>> cache;
  uint32_t eps_bits;
  std::memcpy(&eps_bits, &epsilon, sizeof(eps_bits));
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[{n, h, w, c, eps_bits, relu}];
  if (!slot) slot = std::make_unique<Plan>(MakePlan(n, h, w, c, epsilon, relu));
  return *slot;
}

// Bytes of the workspace buffer the caller allocates: oneDNN's, or one byte
// when there is none (no fused ReLU).
size_t WorkspaceBytes(const Plan& plan) {
  size_t bytes = plan.workspace_md.get_size();
  return bytes == 0 ? 1 : bytes;
}

// Checks x (NHWC) and the per-channel operands (C elements each), and finds
// the cached plan for x's shape, checking the caller's workspace size.
ffi::Error Prepare(const ffi::Buffer<ffi::F32>& x,
                   std::initializer_list<size_t> per_channel, float epsilon,
                   int64_t relu, size_t workspace_bytes, const Plan** plan) {
  auto dims = x.dimensions();
  if (dims.size() != 4) {
    return ffi::Error::InvalidArgument("onednn batch norm: x must be NHWC");
  }
  const int64_t n = dims[0], h = dims[1], w = dims[2], c = dims[3];
  if (n < 1 || h < 1 || w < 1 || c < 1) {
    return ffi::Error::InvalidArgument("onednn batch norm: empty input");
  }
  for (size_t size : per_channel) {
    if (size != static_cast<size_t>(c)) {
      return ffi::Error::InvalidArgument(
          "onednn batch norm: per-channel operands must have C elements");
    }
  }
  try {
    *plan = &GetPlan(n, h, w, c, epsilon, relu != 0);
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("onednn batch norm: ") + e.what());
  }
  if (workspace_bytes != WorkspaceBytes(**plan)) {
    return ffi::Error::InvalidArgument(
        "onednn batch norm: workspace size differs from oneDNN's");
  }
  return ffi::Error::Success();
}

// Runs `primitive`; the caller holds ExecutionLock().
ffi::Error Run(const dnnl::primitive& primitive, size_t scratch_bytes,
               std::unordered_map<int, memory>& args) {
  try {
    args[DNNL_ARG_SCRATCHPAD] =
        Bytes(scratch_bytes, Scratch(Aligned(scratch_bytes)));
    primitive.execute(Stream(), args);
    Stream().wait();
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("onednn batch norm: ") + e.what());
  }
  return ffi::Error::Success();
}

using F32 = ffi::Buffer<ffi::F32>;
using F32Out = ffi::ResultBuffer<ffi::F32>;

std::unordered_map<int, memory> ForwardArgs(const Plan& plan, const F32& x,
                                            const F32& scale, const F32& shift,
                                            F32Out& y, F32Out& mean,
                                            F32Out& var) {
  return {
      {DNNL_ARG_SRC, memory(plan.data_md, Engine(), x.typed_data())},
      {DNNL_ARG_DST, memory(plan.data_md, Engine(), y->typed_data())},
      {DNNL_ARG_SCALE, memory(plan.stat_md, Engine(), scale.typed_data())},
      {DNNL_ARG_SHIFT, memory(plan.stat_md, Engine(), shift.typed_data())},
      {DNNL_ARG_MEAN, memory(plan.stat_md, Engine(), mean->typed_data())},
      {DNNL_ARG_VARIANCE, memory(plan.stat_md, Engine(), var->typed_data())}};
}

std::unordered_map<int, memory> BackwardArgs(const Plan& plan, const F32& x,
                                             float* dy, const F32& scale,
                                             const F32& mean, const F32& var,
                                             F32Out& dx, F32Out& dscale,
                                             F32Out& dshift) {
  return {
      {DNNL_ARG_SRC, memory(plan.data_md, Engine(), x.typed_data())},
      {DNNL_ARG_DIFF_DST, memory(plan.data_md, Engine(), dy)},
      {DNNL_ARG_SCALE, memory(plan.stat_md, Engine(), scale.typed_data())},
      {DNNL_ARG_MEAN, memory(plan.stat_md, Engine(), mean.typed_data())},
      {DNNL_ARG_VARIANCE, memory(plan.stat_md, Engine(), var.typed_data())},
      {DNNL_ARG_DIFF_SRC, memory(plan.data_md, Engine(), dx->typed_data())},
      {DNNL_ARG_DIFF_SCALE,
       memory(plan.stat_md, Engine(), dscale->typed_data())},
      {DNNL_ARG_DIFF_SHIFT,
       memory(plan.stat_md, Engine(), dshift->typed_data())}};
}

ffi::Error Forward(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> scale,
                   ffi::Buffer<ffi::F32> shift, ffi::ResultBuffer<ffi::F32> y,
                   ffi::ResultBuffer<ffi::F32> mean,
                   ffi::ResultBuffer<ffi::F32> var,
                   ffi::ResultBuffer<ffi::U8> workspace, float epsilon,
                   int64_t relu) {
  const Plan* plan;
  if (auto error = Prepare(x, {scale.element_count(), shift.element_count(),
                               mean->element_count(), var->element_count()},
                           epsilon, relu, workspace->size_bytes(), &plan);
      error.failure()) {
    return error;
  }
  if (y->element_count() != x.element_count()) {
    return ffi::Error::InvalidArgument(
        "onednn batch norm: x and y must have one shape");
  }
  auto args = ForwardArgs(*plan, x, scale, shift, y, mean, var);
  if (relu) {
    args[DNNL_ARG_WORKSPACE] =
        memory(plan->workspace_md, Engine(), workspace->untyped_data());
  }
  std::lock_guard<std::mutex> lock(ExecutionLock());
  return Run(plan->forward, plan->forward_scratch, args);
}

ffi::Error Backward(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                    ffi::Buffer<ffi::F32> scale, ffi::Buffer<ffi::F32> mean,
                    ffi::Buffer<ffi::F32> var, ffi::Buffer<ffi::U8> workspace,
                    ffi::ResultBuffer<ffi::F32> dx,
                    ffi::ResultBuffer<ffi::F32> dscale,
                    ffi::ResultBuffer<ffi::F32> dshift, float epsilon,
                    int64_t relu) {
  const Plan* plan;
  if (auto error = Prepare(x, {scale.element_count(), mean.element_count(),
                               var.element_count(), dscale->element_count(),
                               dshift->element_count()},
                           epsilon, relu, workspace.size_bytes(), &plan);
      error.failure()) {
    return error;
  }
  if (dy.element_count() != x.element_count() ||
      dx->element_count() != x.element_count()) {
    return ffi::Error::InvalidArgument(
        "onednn batch norm: x, dy and dx must have one shape");
  }
  auto args = BackwardArgs(*plan, x, dy.typed_data(), scale, mean, var, dx,
                           dscale, dshift);
  if (relu) {
    args[DNNL_ARG_WORKSPACE] =
        memory(plan->workspace_md, Engine(), workspace.untyped_data());
  }
  std::lock_guard<std::mutex> lock(ExecutionLock());
  return Run(plan->backward, plan->backward_scratch, args);
}

// y = max(BN(x) + skip, 0), in place on y after oneDNN's normalization.
ffi::Error AddReluForward(F32 x, F32 skip, F32 scale, F32 shift, F32Out y,
                          F32Out mean, F32Out var, float epsilon) {
  const Plan* plan;
  if (auto error = Prepare(x, {scale.element_count(), shift.element_count(),
                               mean->element_count(), var->element_count()},
                           epsilon, /*relu=*/0, /*workspace_bytes=*/1, &plan);
      error.failure()) {
    return error;
  }
  const size_t size = x.element_count();
  if (skip.element_count() != size || y->element_count() != size) {
    return ffi::Error::InvalidArgument(
        "onednn batch norm: x, skip and y must have one shape");
  }
  auto args = ForwardArgs(*plan, x, scale, shift, y, mean, var);
  std::lock_guard<std::mutex> lock(ExecutionLock());
  if (auto error = Run(plan->forward, plan->forward_scratch, args);
      error.failure()) {
    return error;
  }
  float* out = y->typed_data();
  const float* add = skip.typed_data();
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < size; ++i) out[i] = std::max(out[i] + add[i], 0.0f);
  return ffi::Error::Success();
}

// dskip = dy·[y > 0], then oneDNN's backward of the normalization on dskip.
ffi::Error AddReluBackward(F32 x, F32 dy, F32 y, F32 scale, F32 mean, F32 var,
                           F32Out dx, F32Out dskip, F32Out dscale,
                           F32Out dshift, float epsilon) {
  const Plan* plan;
  if (auto error = Prepare(x, {scale.element_count(), mean.element_count(),
                               var.element_count(), dscale->element_count(),
                               dshift->element_count()},
                           epsilon, /*relu=*/0, /*workspace_bytes=*/1, &plan);
      error.failure()) {
    return error;
  }
  const size_t size = x.element_count();
  if (dy.element_count() != size || y.element_count() != size ||
      dx->element_count() != size || dskip->element_count() != size) {
    return ffi::Error::InvalidArgument(
        "onednn batch norm: x, dy, y, dx and dskip must have one shape");
  }
  float* masked = dskip->typed_data();
  const float* g = dy.typed_data();
  const float* out = y.typed_data();
  std::lock_guard<std::mutex> lock(ExecutionLock());
  // Both loads unconditional, so that the select compiles to a compare and
  // a bitwise and on whole vectors rather than a branch per element (a
  // conditional load of g[i] cannot be vectorized without masked loads).
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < size; ++i) {
    const float grad = g[i];
    masked[i] = out[i] > 0.0f ? grad : 0.0f;
  }
  auto args = BackwardArgs(*plan, x, masked, scale, mean, var, dx, dscale,
                           dshift);
  return Run(plan->backward, plan->backward_scratch, args);
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RemixOnednnBatchNormFwd, Forward,
    ffi::Ffi::Bind()
        .Arg<ffi::Buffer<ffi::F32>>()   // x
        .Arg<ffi::Buffer<ffi::F32>>()   // scale γ
        .Arg<ffi::Buffer<ffi::F32>>()   // shift β
        .Ret<ffi::Buffer<ffi::F32>>()   // y
        .Ret<ffi::Buffer<ffi::F32>>()   // mean μ
        .Ret<ffi::Buffer<ffi::F32>>()   // variance σ²
        .Ret<ffi::Buffer<ffi::U8>>()    // workspace
        .Attr<float>("epsilon")
        .Attr<int64_t>("relu"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RemixOnednnBatchNormBwd, Backward,
    ffi::Ffi::Bind()
        .Arg<ffi::Buffer<ffi::F32>>()   // x
        .Arg<ffi::Buffer<ffi::F32>>()   // dy
        .Arg<ffi::Buffer<ffi::F32>>()   // scale γ
        .Arg<ffi::Buffer<ffi::F32>>()   // mean μ
        .Arg<ffi::Buffer<ffi::F32>>()   // variance σ²
        .Arg<ffi::Buffer<ffi::U8>>()    // workspace
        .Ret<ffi::Buffer<ffi::F32>>()   // dx
        .Ret<ffi::Buffer<ffi::F32>>()   // dscale
        .Ret<ffi::Buffer<ffi::F32>>()   // dshift
        .Attr<float>("epsilon")
        .Attr<int64_t>("relu"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RemixOnednnBatchNormAddReluFwd, AddReluForward,
    ffi::Ffi::Bind()
        .Arg<ffi::Buffer<ffi::F32>>()   // x
        .Arg<ffi::Buffer<ffi::F32>>()   // skip s
        .Arg<ffi::Buffer<ffi::F32>>()   // scale γ
        .Arg<ffi::Buffer<ffi::F32>>()   // shift β
        .Ret<ffi::Buffer<ffi::F32>>()   // y
        .Ret<ffi::Buffer<ffi::F32>>()   // mean μ
        .Ret<ffi::Buffer<ffi::F32>>()   // variance σ²
        .Attr<float>("epsilon"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    RemixOnednnBatchNormAddReluBwd, AddReluBackward,
    ffi::Ffi::Bind()
        .Arg<ffi::Buffer<ffi::F32>>()   // x
        .Arg<ffi::Buffer<ffi::F32>>()   // dy
        .Arg<ffi::Buffer<ffi::F32>>()   // y
        .Arg<ffi::Buffer<ffi::F32>>()   // scale γ
        .Arg<ffi::Buffer<ffi::F32>>()   // mean μ
        .Arg<ffi::Buffer<ffi::F32>>()   // variance σ²
        .Ret<ffi::Buffer<ffi::F32>>()   // dx
        .Ret<ffi::Buffer<ffi::F32>>()   // dskip
        .Ret<ffi::Buffer<ffi::F32>>()   // dscale
        .Ret<ffi::Buffer<ffi::F32>>()   // dshift
        .Attr<float>("epsilon"));

// Bytes of the workspace buffer for an N×H×W×C input (the caller allocates
// it as a u8 vector of this length); -1 if oneDNN rejects the shape.
extern "C" int64_t RemixOnednnBatchNormWorkspaceBytes(int64_t n, int64_t h,
                                                      int64_t w, int64_t c,
                                                      float epsilon,
                                                      int64_t relu) {
  try {
    return static_cast<int64_t>(
        WorkspaceBytes(GetPlan(n, h, w, c, epsilon, relu != 0)));
  } catch (const dnnl::error&) {
    return -1;
  }
}
