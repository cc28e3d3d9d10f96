#include "translate.h"

#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <limits>

#include <sys/mman.h>

#include <hsa/hsa_ext_amd.h>

#include "gmem/hmadvise_abi.h"

namespace gmem::thunk {
namespace {

// libhsakmt passes attribute types and flags to the ioctl unchanged, so one
// number must mean the same on both sides.
static_assert(std::uint32_t{HSA_SVM_ATTR_PREFERRED_LOC} == std::uint32_t{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC});
static_assert(std::uint32_t{HSA_SVM_ATTR_PREFETCH_LOC} == std::uint32_t{KFD_IOCTL_SVM_ATTR_PREFETCH_LOC});
static_assert(std::uint32_t{HSA_SVM_ATTR_ACCESS} == std::uint32_t{KFD_IOCTL_SVM_ATTR_ACCESS});
static_assert(std::uint32_t{HSA_SVM_ATTR_ACCESS_IN_PLACE} == std::uint32_t{KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE});
static_assert(std::uint32_t{HSA_SVM_ATTR_NO_ACCESS} == std::uint32_t{KFD_IOCTL_SVM_ATTR_NO_ACCESS});
static_assert(std::uint32_t{HSA_SVM_ATTR_SET_FLAGS} == std::uint32_t{KFD_IOCTL_SVM_ATTR_SET_FLAGS});
static_assert(std::uint32_t{HSA_SVM_ATTR_CLR_FLAGS} == std::uint32_t{KFD_IOCTL_SVM_ATTR_CLR_FLAGS});
static_assert(HSA_SVM_FLAG_GPU_READ_MOSTLY == KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY);
static_assert(INVALID_NODEID == HSA_GMEM_NO_NODE);

// Which nodes a hint may name.
enum class NodeRule {
  any,             // CPU or GPU node
  gpu,             // a GPU node: the hint is about one GPU's mapping
  gpu_or_no_node,  // DONTNEED: a GPU's copy, or HSA_GMEM_NO_NODE
};

struct HintSpec {
  HSA_GMEM_HINT hint;
  const char* name;
  NodeRule node_rule;
  int syscall_behavior;
};

constexpr HintSpec kHints[] = {
    {HSA_GMEM_HINT_PREFETCH, "PREFETCH", NodeRule::any, HSA_GMEM_HMADV_PREFETCH},
    {HSA_GMEM_HINT_DONTNEED, "DONTNEED", NodeRule::gpu_or_no_node,
     HSA_GMEM_HMADV_DONTNEED},
    {HSA_GMEM_HINT_PREFERRED_LOC, "PREFERRED_LOC", NodeRule::any,
     HSA_GMEM_HMADV_PREFERRED_LOC},
    {HSA_GMEM_HINT_UNSET_PREFERRED_LOC, "UNSET_PREFERRED_LOC", NodeRule::any,
     HSA_GMEM_HMADV_UNSET_PREFERRED_LOC},
    {HSA_GMEM_HINT_ACCESSED_BY, "ACCESSED_BY", NodeRule::gpu,
     HSA_GMEM_HMADV_ACCESSED_BY},
    {HSA_GMEM_HINT_UNSET_ACCESSED_BY, "UNSET_ACCESSED_BY", NodeRule::gpu,
     HSA_GMEM_HMADV_UNSET_ACCESSED_BY},
    {HSA_GMEM_HINT_NO_ACCESS, "NO_ACCESS", NodeRule::gpu, HSA_GMEM_HMADV_NO_ACCESS},
    {HSA_GMEM_HINT_UNSET_NO_ACCESS, "UNSET_NO_ACCESS", NodeRule::gpu,
     HSA_GMEM_HMADV_UNSET_NO_ACCESS},
    {HSA_GMEM_HINT_READ_MOSTLY, "READ_MOSTLY", NodeRule::any,
     HSA_GMEM_HMADV_READ_MOSTLY},
    {HSA_GMEM_HINT_UNSET_READ_MOSTLY, "UNSET_READ_MOSTLY", NodeRule::any,
     HSA_GMEM_HMADV_UNSET_READ_MOSTLY},
    {HSA_GMEM_HINT_PIN, "PIN", NodeRule::any, HSA_GMEM_HMADV_PIN},
    {HSA_GMEM_HINT_UNPIN, "UNPIN", NodeRule::any, HSA_GMEM_HMADV_UNPIN},
};

const HintSpec* find_hint(std::uint32_t hint) {
  for (const HintSpec& spec : kHints)
    if (static_cast<std::uint32_t>(spec.hint) == hint) return &spec;
  return nullptr;
}

std::string hex(std::uint64_t value) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%" PRIx64, value);
  return text;
}

Status invalid(std::string message) {
  return Status::failure(HSAKMT_STATUS_INVALID_PARAMETER, std::move(message));
}

Status bad_node(std::string message) {
  return Status::failure(HSAKMT_STATUS_INVALID_NODE_UNIT, std::move(message));
}

// One attribute in both of its forms.
void add_attribute(SvmSetAttrCall* call, std::uint32_t type,
                   std::uint32_t hsakmt_value, std::uint32_t ioctl_value) {
  call->hsakmt_attributes.push_back(HSA_SVM_ATTRIBUTE{type, hsakmt_value});
  call->ioctl_attributes.push_back(kfd_ioctl_svm_attribute{type, ioctl_value});
}

// The location value of `node` in each form: its node id for libhsakmt, its
// gpu_id (0 = system memory for a CPU node) for the ioctl.
void add_location(SvmSetAttrCall* call, std::uint32_t type,
                  const TopologyNode& node) {
  add_attribute(call, type, node.node_id,
                node.is_gpu() ? node.gpu_id
                              : static_cast<std::uint32_t>(
                                    KFD_IOCTL_SVM_LOCATION_SYSMEM));
}

Status plan_kfd(const HintSpec& spec, const TopologyNode* node,
                const Topology& topology, std::uintptr_t start,
                std::uint64_t length, Plan* plan) {
  if (node == nullptr) {
    // DONTNEED with no node: discard, as hmadvise(-1, ...) would.
    *plan = MadviseCall{start, static_cast<std::size_t>(length), MADV_DONTNEED};
    return Status::success();
  }

  SvmSetAttrCall call{start, length, {}, {}};
  switch (spec.hint) {
    case HSA_GMEM_HINT_PREFETCH:
      add_location(&call, HSA_SVM_ATTR_PREFETCH_LOC, *node);
      break;
    case HSA_GMEM_HINT_DONTNEED: {
      // Releasing a GPU's copy = moving the range back to system memory.
      const TopologyNode* system_memory = topology.system_memory_node();
      if (system_memory == nullptr)
        return Status::failure(HSAKMT_STATUS_ERROR,
                               "KFD topology has no CPU node to stand for "
                               "system memory");
      add_location(&call, HSA_SVM_ATTR_PREFETCH_LOC, *system_memory);
      break;
    }
    case HSA_GMEM_HINT_PREFERRED_LOC:
      add_location(&call, HSA_SVM_ATTR_PREFERRED_LOC, *node);
      break;
    case HSA_GMEM_HINT_UNSET_PREFERRED_LOC:
      add_attribute(&call, HSA_SVM_ATTR_PREFERRED_LOC, INVALID_NODEID,
                    KFD_IOCTL_SVM_LOCATION_UNDEFINED);
      break;
    case HSA_GMEM_HINT_ACCESSED_BY:
      add_attribute(&call, HSA_SVM_ATTR_ACCESS_IN_PLACE, node->node_id,
                    node->gpu_id);
      break;
    case HSA_GMEM_HINT_UNSET_ACCESSED_BY:
    case HSA_GMEM_HINT_UNSET_NO_ACCESS:
      // Back to plain access: mapped, and migrated on access as usual.
      add_attribute(&call, HSA_SVM_ATTR_ACCESS, node->node_id, node->gpu_id);
      break;
    case HSA_GMEM_HINT_NO_ACCESS:
      add_attribute(&call, HSA_SVM_ATTR_NO_ACCESS, node->node_id, node->gpu_id);
      break;
    case HSA_GMEM_HINT_READ_MOSTLY:
      add_attribute(&call, HSA_SVM_ATTR_SET_FLAGS, HSA_SVM_FLAG_GPU_READ_MOSTLY,
                    KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY);
      break;
    case HSA_GMEM_HINT_UNSET_READ_MOSTLY:
      add_attribute(&call, HSA_SVM_ATTR_CLR_FLAGS, HSA_SVM_FLAG_GPU_READ_MOSTLY,
                    KFD_IOCTL_SVM_FLAG_GPU_READ_MOSTLY);
      break;
    case HSA_GMEM_HINT_PIN:
    case HSA_GMEM_HINT_UNPIN:
      *plan = NoEquivalent{
          std::string(spec.name) +
          " has no KFD SVM equivalent: a stock KFD kernel cannot pin a range "
          "to a node (KFD may always migrate or evict it). Nothing was "
          "changed. It needs a GMEM kernel (hmadvise system call)."};
      return Status::success();
    case HSA_GMEM_HINT_SIZE:  // not a hint; find_hint() never returns it
      return invalid("unknown hint value");
  }
  *plan = std::move(call);
  return Status::success();
}

RocrAttribute agent_attribute(std::uint64_t attribute, std::uint32_t node_id) {
  return RocrAttribute{attribute, true, node_id, 0};
}

RocrAttribute value_attribute(std::uint64_t attribute, std::uint64_t value) {
  return RocrAttribute{attribute, false, 0, value};
}

Status plan_rocr(const HintSpec& spec, const TopologyNode* node,
                 const Topology& topology, std::uintptr_t start,
                 std::uint64_t length, Plan* plan) {
  if (node == nullptr) {
    *plan = MadviseCall{start, static_cast<std::size_t>(length), MADV_DONTNEED};
    return Status::success();
  }

  RocrSetAttributesCall call{start, length, {}};
  switch (spec.hint) {
    case HSA_GMEM_HINT_PREFETCH:
      // ROCr refuses PREFETCH_LOCATION in attributes_set: prefetching is
      // its own call.
      *plan = RocrPrefetchCall{start, length, node->node_id};
      return Status::success();
    case HSA_GMEM_HINT_DONTNEED: {
      const TopologyNode* system_memory = topology.system_memory_node();
      if (system_memory == nullptr)
        return Status::failure(HSAKMT_STATUS_ERROR,
                               "KFD topology has no CPU node to stand for "
                               "system memory");
      *plan = RocrPrefetchCall{start, length, system_memory->node_id};
      return Status::success();
    }
    case HSA_GMEM_HINT_PREFERRED_LOC:
      call.attributes.push_back(
          agent_attribute(HSA_AMD_SVM_ATTRIB_PREFERRED_LOCATION, node->node_id));
      break;
    case HSA_GMEM_HINT_UNSET_PREFERRED_LOC:
      call.attributes.push_back(agent_attribute(
          HSA_AMD_SVM_ATTRIB_PREFERRED_LOCATION, HSA_GMEM_NO_NODE));
      break;
    case HSA_GMEM_HINT_ACCESSED_BY:
      call.attributes.push_back(agent_attribute(
          HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE_IN_PLACE, node->node_id));
      break;
    case HSA_GMEM_HINT_UNSET_ACCESSED_BY:
    case HSA_GMEM_HINT_UNSET_NO_ACCESS:
      call.attributes.push_back(
          agent_attribute(HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE, node->node_id));
      break;
    case HSA_GMEM_HINT_NO_ACCESS:
      call.attributes.push_back(
          agent_attribute(HSA_AMD_SVM_ATTRIB_AGENT_NO_ACCESS, node->node_id));
      break;
    case HSA_GMEM_HINT_READ_MOSTLY:
      call.attributes.push_back(value_attribute(HSA_AMD_SVM_ATTRIB_READ_MOSTLY, 1));
      break;
    case HSA_GMEM_HINT_UNSET_READ_MOSTLY:
      call.attributes.push_back(value_attribute(HSA_AMD_SVM_ATTRIB_READ_MOSTLY, 0));
      break;
    case HSA_GMEM_HINT_PIN:
    case HSA_GMEM_HINT_UNPIN:
      *plan = NoEquivalent{
          std::string(spec.name) +
          " has no ROCr SVM equivalent: a stock KFD kernel cannot pin a "
          "range to a node (KFD may always migrate or evict it). Nothing was "
          "changed. It needs a GMEM kernel (hmadvise system call)."};
      return Status::success();
    case HSA_GMEM_HINT_SIZE:
      return invalid("unknown hint value");
  }
  *plan = std::move(call);
  return Status::success();
}

Status plan_syscall(const HintSpec& spec, const TopologyNode* node,
                    std::uintptr_t start, std::uint64_t length, Plan* plan) {
  int hnid = HSA_GMEM_HMADV_NO_NODE;
  if (node != nullptr) {
    if (!node->gmem_node_id)
      return bad_node("KFD node " + std::to_string(node->node_id) +
                      " has no gmem_node_id in its KFD properties, so this "
                      "kernel does not manage it with GMEM");
    hnid = *node->gmem_node_id;
  }
  *plan = SyscallCall{hnid, static_cast<unsigned long>(start),
                      static_cast<std::size_t>(length), spec.syscall_behavior};
  return Status::success();
}

}  // namespace

Status plan_advice(const AdviceRequest& request, const Topology& topology,
                   Backend backend, std::size_t page_size, Plan* plan) {
  const HintSpec* spec = find_hint(request.hint);
  if (spec == nullptr)
    return invalid("unknown hint value " + std::to_string(request.hint));
  if (request.start == 0) return invalid(std::string(spec->name) + ": start is NULL");
  if (request.size == 0) return invalid(std::string(spec->name) + ": size is 0");

  // Same rule as the kernel's hmadvise (and madvise): the start must be
  // page aligned, the length is rounded up to whole pages.
  const std::uint64_t page_mask = page_size - 1;
  if ((request.start & page_mask) != 0)
    return Status::failure(
        HSAKMT_STATUS_MEMORY_ALIGNMENT,
        std::string(spec->name) + ": start " + hex(request.start) +
            " is not aligned to the " + std::to_string(page_size) +
            "-byte page");
  if (request.size > std::numeric_limits<std::uint64_t>::max() - page_mask)
    return invalid(std::string(spec->name) + ": size " + hex(request.size) +
                   " overflows when rounded up to a page");
  const std::uint64_t length = (request.size + page_mask) & ~page_mask;
  if (length > std::numeric_limits<std::uintptr_t>::max() - request.start)
    return invalid(std::string(spec->name) + ": range " + hex(request.start) +
                   " + " + hex(length) + " wraps around the address space");

  const TopologyNode* node = nullptr;
  if (request.node_id == HSA_GMEM_NO_NODE) {
    if (spec->node_rule != NodeRule::gpu_or_no_node)
      return bad_node(std::string(spec->name) +
                      ": HSA_GMEM_NO_NODE is only valid with DONTNEED");
  } else {
    node = topology.find_by_node_id(request.node_id);
    if (node == nullptr)
      return bad_node(std::string(spec->name) + ": no KFD node " +
                      std::to_string(request.node_id) + " (the topology has " +
                      std::to_string(topology.nodes().size()) + " nodes)");
    if (!node->accessible)
      return bad_node(std::string(spec->name) + ": KFD node " +
                      std::to_string(request.node_id) +
                      " is not accessible to this process");
    if (spec->node_rule != NodeRule::any && !node->is_gpu())
      return bad_node(
          std::string(spec->name) + " needs a GPU node; KFD node " +
          std::to_string(request.node_id) + " is a CPU node" +
          (spec->node_rule == NodeRule::gpu_or_no_node
               ? " (use HSA_GMEM_NO_NODE to discard the range)"
               : ""));
  }

  if (backend == Backend::syscall)
    return plan_syscall(*spec, node, request.start, length, plan);
  if (backend == Backend::rocr_svm)
    return plan_rocr(*spec, node, topology, request.start, length, plan);
  return plan_kfd(*spec, node, topology, request.start, length, plan);
}

const char* hint_name(std::uint32_t hint) {
  const HintSpec* spec = find_hint(hint);
  return spec != nullptr ? spec->name : nullptr;
}

bool hint_from_name(const std::string& name, HSA_GMEM_HINT* hint) {
  std::string upper;
  for (char c : name) upper += c == '-' ? '_' : static_cast<char>(std::toupper(
                                                    static_cast<unsigned char>(c)));
  for (const HintSpec& spec : kHints) {
    if (upper == spec.name) {
      *hint = spec.hint;
      return true;
    }
  }
  return false;
}

std::vector<HSA_GMEM_HINT> all_hints() {
  std::vector<HSA_GMEM_HINT> hints;
  for (const HintSpec& spec : kHints) hints.push_back(spec.hint);
  return hints;
}

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::syscall: return "syscall";
    case Backend::rocr_svm: return "rocr";
    case Backend::kfd_svm: return "kfd";
  }
  return "unknown";
}

std::string syscall_number_text() {
#ifdef HSA_GMEM_NR_HMADVISE
  return std::to_string(HSA_GMEM_NR_HMADVISE);
#else
  return "<no hmadvise number on this architecture>";
#endif
}

const char* rocr_attribute_name(std::uint64_t attribute) {
  switch (attribute) {
    case HSA_AMD_SVM_ATTRIB_PREFERRED_LOCATION: return "HSA_AMD_SVM_ATTRIB_PREFERRED_LOCATION";
    case HSA_AMD_SVM_ATTRIB_READ_MOSTLY: return "HSA_AMD_SVM_ATTRIB_READ_MOSTLY";
    case HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE: return "HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE";
    case HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE_IN_PLACE:
      return "HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE_IN_PLACE";
    case HSA_AMD_SVM_ATTRIB_AGENT_NO_ACCESS: return "HSA_AMD_SVM_ATTRIB_AGENT_NO_ACCESS";
    case HSA_AMD_SVM_ATTRIB_MIGRATION_GRANULARITY:
      return "HSA_AMD_SVM_ATTRIB_MIGRATION_GRANULARITY";
  }
  return "unknown";
}

const char* syscall_behavior_name(int behavior) {
  switch (behavior) {
    case HSA_GMEM_HMADV_DONTNEED: return "MADV_DONTNEED";
    case HSA_GMEM_HMADV_PREFETCH: return "MADV_PREFETCH";
    case HSA_GMEM_HMADV_PREFERRED_LOC: return "HMADV_PREFERRED_LOC";
    case HSA_GMEM_HMADV_UNSET_PREFERRED_LOC: return "HMADV_UNSET_PREFERRED_LOC";
    case HSA_GMEM_HMADV_ACCESSED_BY: return "HMADV_ACCESSED_BY";
    case HSA_GMEM_HMADV_UNSET_ACCESSED_BY: return "HMADV_UNSET_ACCESSED_BY";
    case HSA_GMEM_HMADV_READ_MOSTLY: return "HMADV_READ_MOSTLY";
    case HSA_GMEM_HMADV_UNSET_READ_MOSTLY: return "HMADV_UNSET_READ_MOSTLY";
    case HSA_GMEM_HMADV_PIN: return "HMADV_PIN";
    case HSA_GMEM_HMADV_UNPIN: return "HMADV_UNPIN";
    case HSA_GMEM_HMADV_NO_ACCESS: return "HMADV_NO_ACCESS";
    case HSA_GMEM_HMADV_UNSET_NO_ACCESS: return "HMADV_UNSET_NO_ACCESS";
  }
  return "unknown";
}

const char* svm_attribute_name(std::uint32_t type) {
  switch (type) {
    case KFD_IOCTL_SVM_ATTR_PREFERRED_LOC: return "PREFERRED_LOC";
    case KFD_IOCTL_SVM_ATTR_PREFETCH_LOC: return "PREFETCH_LOC";
    case KFD_IOCTL_SVM_ATTR_ACCESS: return "ACCESS";
    case KFD_IOCTL_SVM_ATTR_ACCESS_IN_PLACE: return "ACCESS_IN_PLACE";
    case KFD_IOCTL_SVM_ATTR_NO_ACCESS: return "NO_ACCESS";
    case KFD_IOCTL_SVM_ATTR_SET_FLAGS: return "SET_FLAGS";
    case KFD_IOCTL_SVM_ATTR_CLR_FLAGS: return "CLR_FLAGS";
    case KFD_IOCTL_SVM_ATTR_GRANULARITY: return "GRANULARITY";
  }
  return "unknown";
}

}  // namespace gmem::thunk
