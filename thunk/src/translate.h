// hmadvise hint -> kernel call, for each backend. Pure: no system calls, so
// the same code answers hsaKmtGmemAdvise() and `gmem-advise explain`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <linux/kfd_ioctl.h>

#include "gmem/hsakmt_hmadvise.h"
#include "status.h"
#include "topology.h"

namespace gmem::thunk {

enum class Backend { syscall, rocr_svm, kfd_svm };

// hmadvise(hnid, start, len, behavior) on a GMEM kernel.
struct SyscallCall {
  int hnid;
  unsigned long start;
  std::size_t len;
  int behavior;
};

// madvise(start, len, advice): discarding a range on a stock kernel, which
// KFD sees through its MMU notifier like any other unmap.
struct MadviseCall {
  std::uintptr_t start;
  std::size_t len;
  int advice;
};

// hsaKmtSVMSetAttr(start, size, n, attrs) on a stock kernel. libhsakmt takes
// KFD node ids and turns them into gpu_ids before AMDKFD_IOC_SVM; both
// forms are kept so a test or a person can see each side exactly.
struct SvmSetAttrCall {
  std::uintptr_t start;
  std::uint64_t size;
  std::vector<HSA_SVM_ATTRIBUTE> hsakmt_attributes;   // values: KFD node ids
  std::vector<kfd_ioctl_svm_attribute> ioctl_attributes;  // values: gpu_ids
};

// One attribute for hsa_amd_svm_attributes_set. Location attributes name a
// KFD node, which the session turns into ROCr's agent handle for it
// (HSA_GMEM_NO_NODE: the null agent, "no location"); the others carry
// their value as it is.
struct RocrAttribute {
  std::uint64_t attribute;  // hsa_amd_svm_attribute_t
  bool names_agent;
  std::uint32_t node_id;    // when names_agent
  std::uint64_t value;      // otherwise
};

// hsa_amd_svm_attributes_set(start, size, attrs) through ROCr.
struct RocrSetAttributesCall {
  std::uintptr_t start;
  std::uint64_t size;
  std::vector<RocrAttribute> attributes;
};

// hsa_amd_svm_prefetch_async(start, size, agent of node_id), waited for.
struct RocrPrefetchCall {
  std::uintptr_t start;
  std::uint64_t size;
  std::uint32_t node_id;
};

// The backend cannot express the hint; `reason` says why and what would.
struct NoEquivalent {
  std::string reason;
};

using Plan = std::variant<SyscallCall, MadviseCall, SvmSetAttrCall,
                          RocrSetAttributesCall, RocrPrefetchCall, NoEquivalent>;

struct AdviceRequest {
  std::uint32_t node_id;  // KFD node id or HSA_GMEM_NO_NODE
  std::uintptr_t start;
  std::uint64_t size;
  // An HSA_GMEM_HINT as the caller passed it, not yet checked: kept as
  // an integer because a C caller can pass any 32-bit value.
  std::uint32_t hint;
};

// Checks the request (hint, pointer, size, alignment, overflow, node) and
// builds what the backend will be asked to do. `page_size` must be a power
// of two. On failure nothing is planned.
Status plan_advice(const AdviceRequest& request, const Topology& topology,
                   Backend backend, std::size_t page_size, Plan* plan);

// Names for messages and for gmem-advise.
const char* hint_name(std::uint32_t hint);  // nullptr if unknown
bool hint_from_name(const std::string& name, HSA_GMEM_HINT* hint);
const char* backend_name(Backend backend);
// HSA_GMEM_NR_HMADVISE as text, or a note that this architecture has none.
std::string syscall_number_text();
const char* syscall_behavior_name(int behavior);       // "MADV_PREFETCH"
const char* svm_attribute_name(std::uint32_t type);    // "PREFETCH_LOC"
const char* rocr_attribute_name(std::uint64_t attribute);  // "HSA_AMD_SVM_ATTRIB_..."
std::vector<HSA_GMEM_HINT> all_hints();

}  // namespace gmem::thunk
