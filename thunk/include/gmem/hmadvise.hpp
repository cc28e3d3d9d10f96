// SPDX-License-Identifier: MIT
//
// C++17 interface to hsakmt-gmem for HIP code. Every function throws
// gmem::error on failure; nothing here reports errors any other way.
//
//   gmem::library gmem_library;                 // opens, closes at scope end
//   gmem::prefetch(data, bytes, gpu_node);
//   try { gmem::pin(data, bytes, gpu_node); }
//   catch (const gmem::error& e) { if (e.no_equivalent()) { ... } }
//
// Node arguments are KFD node ids: libhsakmt's NodeId, rocminfo's "Node".
// `gmem-advise nodes` lists them with their gpu_id and GMEM node id.
#ifndef HSA_GMEM_HMADVISE_HPP
#define HSA_GMEM_HMADVISE_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>

#include "gmem/hsakmt_hmadvise.h"

namespace gmem {

using node_id = HSAuint32;

// Pass as the node of discard(): "no node".
inline constexpr node_id no_node = HSA_GMEM_NO_NODE;

enum class backend {
  none = HSA_GMEM_BACKEND_NONE,
  syscall = HSA_GMEM_BACKEND_SYSCALL,
  kfd_svm = HSA_GMEM_BACKEND_KFD_SVM,
  rocr_svm = HSA_GMEM_BACKEND_ROCR_SVM,
};

// The category of HSAKMT_STATUS values, so they travel in a std::error_code.
class hsakmt_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "hsakmt"; }
  std::string message(int status) const override {
    switch (static_cast<HSAKMT_STATUS>(status)) {
      case HSAKMT_STATUS_SUCCESS: return "success";
      case HSAKMT_STATUS_ERROR: return "error";
      case HSAKMT_STATUS_UNAVAILABLE: return "temporarily unavailable";
      case HSAKMT_STATUS_KERNEL_COMMUNICATION_ERROR: return "kernel communication error";
      case HSAKMT_STATUS_INVALID_PARAMETER: return "invalid parameter";
      case HSAKMT_STATUS_INVALID_NODE_UNIT: return "invalid node";
      case HSAKMT_STATUS_NO_MEMORY: return "out of memory";
      case HSAKMT_STATUS_NOT_IMPLEMENTED: return "no equivalent on this kernel";
      case HSAKMT_STATUS_NOT_SUPPORTED: return "not supported";
      case HSAKMT_STATUS_MEMORY_ALIGNMENT: return "address not page aligned";
      case HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED: return "library not opened";
      case HSAKMT_STATUS_DRIVER_MISMATCH: return "kernel driver mismatch";
      default: return "HSAKMT_STATUS " + std::to_string(status);
    }
  }
};

inline const std::error_category& hsakmt_category() noexcept {
  static const hsakmt_category_impl category;
  return category;
}

// A failed call: code() holds the HSAKMT_STATUS, what() the library's
// explanation.
class error : public std::system_error {
 public:
  error(HSAKMT_STATUS status, const std::string& message)
      : std::system_error(static_cast<int>(status), hsakmt_category(), message) {}

  HSAKMT_STATUS status() const noexcept {
    return static_cast<HSAKMT_STATUS>(code().value());
  }
  // The hint has no equivalent on the running kernel (e.g. pin on a stock
  // KFD kernel); nothing was changed.
  bool no_equivalent() const noexcept {
    return status() == HSA_GMEM_STATUS_NO_EQUIVALENT;
  }
};

namespace detail {
inline void check(HSAKMT_STATUS status) {
  if (status != HSAKMT_STATUS_SUCCESS)
    throw error(status, hsaKmtGmemLastErrorMessage());
}
}  // namespace detail

// Holds the library open for its lifetime (hsaKmtGmemOpen/Close).
class library {
 public:
  library() { detail::check(hsaKmtGmemOpen()); }
  ~library() { hsaKmtGmemClose(); }
  library(const library&) = delete;
  library& operator=(const library&) = delete;
};

inline HSA_GMEM_VERSION library_version() {
  HSA_GMEM_VERSION version{};
  version.StructSize = sizeof(version);
  detail::check(hsaKmtGmemGetVersion(&version));
  return version;
}

inline backend active_backend() {
  HSA_GMEM_BACKEND value = HSA_GMEM_BACKEND_NONE;
  detail::check(hsaKmtGmemGetBackend(&value));
  return static_cast<backend>(value);
}

inline void advise(const void* ptr, std::size_t bytes, node_id node,
                   HSA_GMEM_HINT hint) {
  detail::check(hsaKmtGmemAdvise(node, const_cast<void*>(ptr), bytes, hint));
}

inline void prefetch(const void* ptr, std::size_t bytes, node_id node) {
  advise(ptr, bytes, node, HSA_GMEM_HINT_PREFETCH);
}
// Stream-ordered prefetch: `stream` is a hipStream_t (nullptr: the null
// stream). Errors in the arguments throw now; a failed migration shows in
// check_async_error().
inline void prefetch_async(const void* ptr, std::size_t bytes, node_id node,
                           void* stream) {
  detail::check(hsaKmtGmemPrefetchAsync(node, const_cast<void*>(ptr), bytes, stream));
}
inline void check_async_error() { detail::check(hsaKmtGmemGetAsyncError()); }
// Drops GPU `node`'s copy; the data stays valid in host memory.
inline void dontneed(const void* ptr, std::size_t bytes, node_id node) {
  advise(ptr, bytes, node, HSA_GMEM_HINT_DONTNEED);
}
// Discards the contents, like madvise(MADV_DONTNEED).
inline void discard(const void* ptr, std::size_t bytes) {
  advise(ptr, bytes, no_node, HSA_GMEM_HINT_DONTNEED);
}
inline void set_preferred_location(const void* ptr, std::size_t bytes, node_id node) {
  advise(ptr, bytes, node, HSA_GMEM_HINT_PREFERRED_LOC);
}
inline void unset_preferred_location(const void* ptr, std::size_t bytes, node_id node) {
  advise(ptr, bytes, node, HSA_GMEM_HINT_UNSET_PREFERRED_LOC);
}
inline void set_accessed_by(const void* ptr, std::size_t bytes, node_id gpu) {
  advise(ptr, bytes, gpu, HSA_GMEM_HINT_ACCESSED_BY);
}
inline void unset_accessed_by(const void* ptr, std::size_t bytes, node_id gpu) {
  advise(ptr, bytes, gpu, HSA_GMEM_HINT_UNSET_ACCESSED_BY);
}
inline void set_no_access(const void* ptr, std::size_t bytes, node_id gpu) {
  advise(ptr, bytes, gpu, HSA_GMEM_HINT_NO_ACCESS);
}
inline void unset_no_access(const void* ptr, std::size_t bytes, node_id gpu) {
  advise(ptr, bytes, gpu, HSA_GMEM_HINT_UNSET_NO_ACCESS);
}
inline void set_read_mostly(const void* ptr, std::size_t bytes, node_id node) {
  advise(ptr, bytes, node, HSA_GMEM_HINT_READ_MOSTLY);
}
inline void unset_read_mostly(const void* ptr, std::size_t bytes, node_id node) {
  advise(ptr, bytes, node, HSA_GMEM_HINT_UNSET_READ_MOSTLY);
}
inline void pin(const void* ptr, std::size_t bytes, node_id node) {
  advise(ptr, bytes, node, HSA_GMEM_HINT_PIN);
}
inline void unpin(const void* ptr, std::size_t bytes, node_id node) {
  advise(ptr, bytes, node, HSA_GMEM_HINT_UNPIN);
}

// Node ids in the other numberings.
inline HSA_GMEM_NODE_INFO node_info(node_id node) {
  HSA_GMEM_NODE_INFO info{};
  info.StructSize = sizeof(info);
  detail::check(hsaKmtGmemGetNodeInfo(node, &info));
  return info;
}
inline node_id node_from_gpu_id(HSAuint32 gpu_id) {
  node_id node = 0;
  detail::check(hsaKmtGmemNodeFromGpuId(gpu_id, &node));
  return node;
}
inline node_id node_from_gmem_node(HSAint32 gmem_node_id) {
  node_id node = 0;
  detail::check(hsaKmtGmemNodeFromGmemNode(gmem_node_id, &node));
  return node;
}
// The KFD node of HIP device `device` (the ordinal hipSetDevice() takes).
inline node_id node_from_hip_device(int device) {
  node_id node = 0;
  detail::check(hsaKmtGmemNodeFromHipDevice(device, &node));
  return node;
}
inline unsigned hip_device_count() {
  HSAuint32 count = 0;
  detail::check(hsaKmtGmemGetHipDeviceCount(&count));
  return count;
}

}  // namespace gmem

#endif  // HSA_GMEM_HMADVISE_HPP
