// ROCr's public SVM API, loaded at run time. ROCm 6.3 and later ship
// libhsakmt only inside libhsa-runtime64, so the stock-kernel backend goes
// through ROCr (hsa_amd_svm_attributes_set, hsa_amd_svm_prefetch_async)
// instead of a second libhsakmt of its own. dlopen() rather than linking:
// in a HIP program it returns the runtime already loaded, and the library
// still loads where ROCr is absent (a GMEM kernel needs only the syscall).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <hsa/hsa.h>
#include <hsa/hsa_ext_amd.h>

#include "status.h"

namespace gmem::thunk {

// Environment variable naming the runtime library to load instead of the
// default soname (a full path, for a ROCm outside the loader's path).
inline constexpr const char kHsaRuntimeEnvironmentVariable[] = "GMEM_THUNK_HSA_RUNTIME";
inline constexpr const char kDefaultHsaRuntime[] = "libhsa-runtime64.so.1";

class RocrRuntime {
 public:
  // Loads `library`, resolves the entry points, calls hsa_init() and maps
  // every agent to its KFD node id. On failure nothing stays initialised.
  static Status open(const std::string& library,
                     std::unique_ptr<RocrRuntime>* runtime);
  ~RocrRuntime();  // hsa_shut_down(), balancing open()
  RocrRuntime(const RocrRuntime&) = delete;
  RocrRuntime& operator=(const RocrRuntime&) = delete;

  // The agent ROCr has for KFD node `node_id`, if ROCr lists it (it does
  // not list GPUs hidden by ROCR_VISIBLE_DEVICES or that it cannot run).
  bool agent_for_node(std::uint32_t node_id, hsa_agent_t* agent) const;
  std::size_t agent_count() const { return agents_by_node_.size(); }

  // HSA_AMD_SYSTEM_INFO_SVM_SUPPORTED.
  Status check_svm_supported() const;

  // hsa_amd_svm_attributes_set.
  Status set_attributes(void* start, std::size_t size,
                        hsa_amd_svm_attribute_pair_t* attributes,
                        std::size_t count) const;
  // hsa_amd_svm_prefetch_async with a completion signal, then waits for it:
  // the range has arrived when this returns.
  Status prefetch(void* start, std::size_t size, hsa_agent_t agent) const;

  const std::string& library() const { return library_; }

 private:
  struct EntryPoints;
  RocrRuntime(void* handle, std::string library, std::unique_ptr<EntryPoints> entry);
  Status failure(hsa_status_t status, const std::string& what) const;

  void* handle_;
  std::string library_;
  std::unique_ptr<EntryPoints> entry_;
  std::map<std::uint32_t, hsa_agent_t> agents_by_node_;
};

// "HSA_STATUS_ERROR_INVALID_ARGUMENT" and the like, for messages.
const char* hsa_status_name(hsa_status_t status);

}  // namespace gmem::thunk
