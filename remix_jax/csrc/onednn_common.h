// Shared oneDNN state of the XLA FFI handlers in this directory: one CPU
// engine, a stream and a growing scratch area per calling thread.
//
// Every handler runs its primitives with a user scratchpad carved from
// Scratch(), so no call allocates once the largest layer has run, and holds
// ExecutionLock() while they run.

#ifndef REMIX_JAX_CSRC_ONEDNN_COMMON_H_
#define REMIX_JAX_CSRC_ONEDNN_COMMON_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

namespace remix_onednn {

inline dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

inline dnnl::stream& Stream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

// A 64-byte aligned per-thread scratch area that only grows.
inline void* Scratch(size_t bytes) {
  thread_local std::vector<uint64_t> buffer;
  size_t words = (bytes + 2 * sizeof(uint64_t) + 63) / sizeof(uint64_t);
  if (buffer.size() < words) buffer.resize(words);
  auto addr = reinterpret_cast<uintptr_t>(buffer.data());
  return reinterpret_cast<void*>((addr + 63) & ~uintptr_t{63});
}

inline dnnl::primitive_attr ScratchpadAttr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// Held by every handler while its primitives run, so that one oneDNN call
// runs at a time in the process. Each call's OpenMP team already spans all
// cores; when XLA starts two independent calls at once (the two passes of
// SUMix's step), two teams would share the cores and slow each other down
// more than waiting does (measured: docs/dev/performance_log.md).
inline std::mutex& ExecutionLock() {
  static std::mutex mutex;
  return mutex;
}

// `bytes` rounded up to a multiple of 64.
inline size_t Aligned(size_t bytes) { return (bytes + 63) & ~size_t{63}; }

// A u8 buffer of `bytes` at `data`, as oneDNN's scratchpad argument.
inline dnnl::memory Bytes(size_t bytes, void* data) {
  return dnnl::memory(
      dnnl::memory::desc({static_cast<int64_t>(bytes)},
                         dnnl::memory::data_type::u8,
                         dnnl::memory::format_tag::x),
      Engine(), data);
}

}  // namespace remix_onednn

#endif  // REMIX_JAX_CSRC_ONEDNN_COMMON_H_
