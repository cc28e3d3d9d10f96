#include "session.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <sys/mman.h>

#include "gmem/hmadvise_abi.h"

namespace gmem::thunk {
namespace {

// libhsakmt's SVM helpers refuse to run below this KFD ioctl minor version.
constexpr std::uint32_t kKfdSvmMinorVersion = 5;

std::string errno_text(int error_number) {
  if (error_number == 0) return "success";
  const char* name = strerrorname_np(error_number);
  return name != nullptr ? name : "errno " + std::to_string(error_number);
}

std::string hex(std::uint64_t value) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%" PRIx64, value);
  return text;
}

void note(SelectionReport* report, std::string line) {
  if (report != nullptr) report->steps.push_back(std::move(line));
}

// The kernel has hmadvise when GMEM's sysfs directory exists and the probe
// call (behavior 0, length 0: does nothing on a GMEM kernel) is not ENOSYS.
// The directory is what tells GMEM apart: the provisional syscall number is
// another call's on newer kernels (setxattrat from 6.13 on), which answers
// the probe with some other errno.
bool probe_hmadvise(KernelInterface& kernel, const std::string& sysfs_root,
                    SelectionReport* report) {
  const std::string gmem_dir = sysfs_root + "/kernel/mm/gmem";
  std::error_code ignored;
  if (!std::filesystem::is_directory(gmem_dir, ignored)) {
    note(report, "hmadvise probe: no " + gmem_dir + ": not a GMEM kernel");
    return false;
  }
  int error = kernel.hmadvise(HSA_GMEM_HMADV_NO_NODE, 0, 0,
                              HSA_GMEM_HMADV_PROBE_BEHAVIOR);
  bool present = error != ENOSYS;
  note(report, "hmadvise probe: syscall(" + syscall_number_text() +
                   ", -1, 0, 0, 0) -> " + errno_text(error) +
                   (present ? ": present" : ": absent"));
  return present;
}

// Opens KFD through libhsakmt and checks that its SVM ioctl works here.
// On success KFD stays open and the caller owes one close_kfd().
Status open_kfd_svm(KernelInterface& kernel, const Topology& topology,
                    std::size_t page_size, SelectionReport* report) {
  HSAKMT_STATUS status = kernel.open_kfd();
  if (status != HSAKMT_STATUS_SUCCESS) {
    note(report, "KFD: hsaKmtOpenKFD -> status " + std::to_string(status));
    return Status::failure(status, "cannot open /dev/kfd through libhsakmt "
                                   "(status " + std::to_string(status) + ")");
  }

  auto fail = [&](HSAKMT_STATUS code, const std::string& message) {
    note(report, "KFD: " + message);
    kernel.close_kfd();
    return Status::failure(code, message);
  };

  HsaVersionInfo version{};
  status = kernel.get_kfd_version(&version);
  if (status != HSAKMT_STATUS_SUCCESS)
    return fail(status, "hsaKmtGetVersion failed (status " +
                            std::to_string(status) + ")");
  const std::string version_text = std::to_string(version.KernelInterfaceMajorVersion) +
                                   "." + std::to_string(version.KernelInterfaceMinorVersion);
  if (version.KernelInterfaceMajorVersion != 1)
    return fail(HSAKMT_STATUS_DRIVER_MISMATCH,
                "KFD ioctl interface " + version_text + " is not major version 1");
  if (version.KernelInterfaceMinorVersion < kKfdSvmMinorVersion)
    return fail(HSAKMT_STATUS_NOT_SUPPORTED,
                "KFD ioctl interface " + version_text +
                    " has no SVM API (needs 1." +
                    std::to_string(kKfdSvmMinorVersion) + " or later)");
  note(report, "KFD: ioctl interface " + version_text);

  // libhsakmt turns node ids into gpu_ids with its own topology snapshot;
  // it must exist and agree with the one we read.
  HsaSystemProperties properties{};
  status = kernel.acquire_system_properties(&properties);
  if (status != HSAKMT_STATUS_SUCCESS)
    return fail(status, "hsaKmtAcquireSystemProperties failed (status " +
                            std::to_string(status) + ")");
  if (properties.NumNodes != topology.nodes().size())
    return fail(HSAKMT_STATUS_ERROR,
                "libhsakmt sees " + std::to_string(properties.NumNodes) +
                    " nodes but sysfs has " +
                    std::to_string(topology.nodes().size()) +
                    ": node ids would not match");

  // SVM GET_ATTR on a page of our own: answers on any kernel with SVM,
  // fails when amdkfd was built without CONFIG_HSA_AMD_SVM.
  void* probe_page = mmap(nullptr, page_size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (probe_page == MAP_FAILED)
    return fail(HSAKMT_STATUS_NO_MEMORY, "cannot map a page for the SVM probe");
  HSA_SVM_ATTRIBUTE granularity{HSA_SVM_ATTR_GRANULARITY, 0};
  int os_error = 0;
  status = kernel.svm_get_attr(probe_page, page_size, 1, &granularity, &os_error);
  munmap(probe_page, page_size);
  if (status != HSAKMT_STATUS_SUCCESS)
    return fail(HSAKMT_STATUS_NOT_SUPPORTED,
                "SVM GET_ATTR probe failed (status " + std::to_string(status) +
                    ", " + errno_text(os_error) +
                    "): this amdkfd has no usable SVM");
  note(report, "KFD: SVM GET_ATTR probe succeeded");
  return Status::success();
}

std::string describe_attributes(const std::vector<HSA_SVM_ATTRIBUTE>& attributes) {
  std::string text;
  for (const HSA_SVM_ATTRIBUTE& attribute : attributes) {
    if (!text.empty()) text += ", ";
    text += std::string(svm_attribute_name(attribute.type)) + "=" +
            std::to_string(attribute.value);
  }
  return text;
}

}  // namespace

Status parse_backend_request(const char* text, BackendRequest* request) {
  const std::string value = text != nullptr ? text : "";
  if (value.empty() || value == "auto") {
    *request = BackendRequest::automatic;
  } else if (value == "syscall") {
    *request = BackendRequest::syscall;
  } else if (value == "rocr") {
    *request = BackendRequest::rocr_svm;
  } else if (value == "kfd") {
    *request = BackendRequest::kfd_svm;
  } else {
    return Status::failure(HSAKMT_STATUS_INVALID_PARAMETER,
                           std::string(kBackendEnvironmentVariable) + "=\"" +
                               value + "\": expected auto, syscall, rocr or kfd");
  }
  return Status::success();
}

Session::Session(KernelInterface& kernel, Topology topology, Backend backend,
                 bool kfd_opened, std::size_t page_size,
                 std::unique_ptr<RocrRuntime> rocr)
    : kernel_(kernel),
      topology_(std::move(topology)),
      backend_(backend),
      kfd_opened_(kfd_opened),
      page_size_(page_size),
      rocr_(std::move(rocr)) {}

Session::~Session() {
  if (kfd_opened_) kernel_.close_kfd();
}

Status Session::open(KernelInterface& kernel, const SessionOptions& options,
                     std::unique_ptr<Session>* session,
                     SelectionReport* report) {
  Topology topology;
  Status status = Topology::load(options.sysfs_root, &topology);
  if (!status.ok()) return status;

  // Earlier backends' reasons, so a final failure explains every one.
  std::string outcomes;
  const BackendRequest request = options.request;
  if (request == BackendRequest::automatic || request == BackendRequest::syscall) {
    if (probe_hmadvise(kernel, options.sysfs_root, report)) {
      note(report, "backend: syscall");
      session->reset(new Session(kernel, std::move(topology), Backend::syscall,
                                 false, options.page_size, nullptr));
      return Status::success();
    }
    if (request == BackendRequest::syscall)
      return Status::failure(
          HSAKMT_STATUS_NOT_SUPPORTED,
          std::string(kBackendEnvironmentVariable) +
              "=syscall, but this kernel has no hmadvise system call "
              "(no GMEM sysfs directory, or the probe returned ENOSYS)");
    outcomes = "no hmadvise system call; ";
  }

  if (request == BackendRequest::automatic || request == BackendRequest::rocr_svm) {
    std::unique_ptr<RocrRuntime> rocr;
    status = RocrRuntime::open(options.hsa_runtime, &rocr);
    if (status.ok()) status = rocr->check_svm_supported();
    if (status.ok()) {
      note(report, "ROCr: " + options.hsa_runtime + " with " +
                       std::to_string(rocr->agent_count()) + " agents, SVM usable");
      note(report, "backend: rocr");
      session->reset(new Session(kernel, std::move(topology), Backend::rocr_svm,
                                 false, options.page_size, std::move(rocr)));
      return Status::success();
    }
    note(report, "ROCr: " + status.message);
    if (request == BackendRequest::rocr_svm) {
      status.message = "ROCr SVM backend unusable: " + status.message;
      return status;
    }
    outcomes += "ROCr SVM backend unusable: " + status.message + "; ";
  }

  status = open_kfd_svm(kernel, topology, options.page_size, report);
  if (!status.ok()) {
    status.message = outcomes + "KFD SVM backend unusable: " + status.message;
    return status;
  }
  note(report, "backend: kfd");
  session->reset(new Session(kernel, std::move(topology), Backend::kfd_svm,
                             true, options.page_size, nullptr));
  return Status::success();
}

Status Session::plan(const AdviceRequest& request, Plan* plan) const {
  Status status = plan_advice(request, topology_, backend_, page_size_, plan);
  if (!status.ok() || backend_ != Backend::rocr_svm) return status;
  // A node ROCr does not list is refused before anything is called, like
  // any other bad node.
  auto check = [&](std::uint32_t node_id) {
    hsa_agent_t agent;
    return agent_for(node_id, &agent);
  };
  if (const auto* call = std::get_if<RocrPrefetchCall>(plan)) return check(call->node_id);
  if (const auto* call = std::get_if<RocrSetAttributesCall>(plan)) {
    for (const RocrAttribute& attribute : call->attributes) {
      if (!attribute.names_agent || attribute.node_id == HSA_GMEM_NO_NODE) continue;
      status = check(attribute.node_id);
      if (!status.ok()) return status;
    }
  }
  return Status::success();
}

Status Session::agent_for(std::uint32_t node_id, hsa_agent_t* agent) const {
  if (rocr_ != nullptr && rocr_->agent_for_node(node_id, agent)) return Status::success();
  return Status::failure(HSAKMT_STATUS_INVALID_NODE_UNIT,
                         "KFD node " + std::to_string(node_id) +
                             " has no ROCr agent (hidden by "
                             "ROCR_VISIBLE_DEVICES, or not supported by this "
                             "ROCm)");
}

Status Session::execute_rocr(const RocrSetAttributesCall& call) {
  std::vector<hsa_amd_svm_attribute_pair_t> pairs;
  std::string described;
  for (const RocrAttribute& attribute : call.attributes) {
    std::uint64_t value = attribute.value;
    if (attribute.names_agent) {
      hsa_agent_t agent{0};  // the null agent: "no location"
      if (attribute.node_id != HSA_GMEM_NO_NODE) {
        Status status = agent_for(attribute.node_id, &agent);
        if (!status.ok()) return status;
      }
      value = agent.handle;
    }
    pairs.push_back({attribute.attribute, value});
    if (!described.empty()) described += ", ";
    described += std::string(rocr_attribute_name(attribute.attribute)) + "=" +
                 (attribute.names_agent
                      ? (attribute.node_id == HSA_GMEM_NO_NODE
                             ? std::string("no agent")
                             : "agent of KFD node " + std::to_string(attribute.node_id))
                      : std::to_string(attribute.value));
  }
  Status status = rocr_->set_attributes(reinterpret_cast<void*>(call.start),
                                        static_cast<std::size_t>(call.size),
                                        pairs.data(), pairs.size());
  if (!status.ok())
    status.message = "hsa_amd_svm_attributes_set(" + hex(call.start) + ", " +
                     hex(call.size) + ", {" + described + "}): " + status.message;
  return status;
}

Status Session::execute_rocr(const RocrPrefetchCall& call) {
  hsa_agent_t agent;
  Status status = agent_for(call.node_id, &agent);
  if (!status.ok()) return status;
  status = rocr_->prefetch(reinterpret_cast<void*>(call.start),
                           static_cast<std::size_t>(call.size), agent);
  if (!status.ok())
    status.message = "prefetch of " + hex(call.start) + ", " + hex(call.size) +
                     " to KFD node " + std::to_string(call.node_id) + ": " +
                     status.message;
  return status;
}

Status Session::advise(const AdviceRequest& request) {
  Plan planned;
  Status status = plan(request, &planned);
  if (!status.ok()) return status;
  return execute(planned);
}

Status Session::execute(const Plan& plan) {
  if (const auto* call = std::get_if<RocrSetAttributesCall>(&plan))
    return execute_rocr(*call);
  if (const auto* call = std::get_if<RocrPrefetchCall>(&plan))
    return execute_rocr(*call);
  if (const auto* call = std::get_if<SyscallCall>(&plan)) {
    int error = kernel_.hmadvise(call->hnid, call->start, call->len,
                                 call->behavior);
    if (error == 0) return Status::success();
    return status_from_errno(
        error, "hmadvise(" + std::to_string(call->hnid) + ", " +
                   hex(call->start) + ", " + hex(call->len) + ", " +
                   syscall_behavior_name(call->behavior) + ")");
  }
  if (const auto* call = std::get_if<MadviseCall>(&plan)) {
    int error = kernel_.madvise(reinterpret_cast<void*>(call->start),
                                call->len, call->advice);
    if (error == 0) return Status::success();
    return status_from_errno(error, "madvise(" + hex(call->start) + ", " +
                                        hex(call->len) + ", MADV_DONTNEED)");
  }
  if (const auto* call = std::get_if<SvmSetAttrCall>(&plan)) {
    std::vector<HSA_SVM_ATTRIBUTE> attributes = call->hsakmt_attributes;
    int os_error = 0;
    HSAKMT_STATUS result = kernel_.svm_set_attr(
        reinterpret_cast<void*>(call->start), call->size,
        static_cast<unsigned int>(attributes.size()), attributes.data(),
        &os_error);
    if (result == HSAKMT_STATUS_SUCCESS) return Status::success();
    return Status::failure(
        result, "hsaKmtSVMSetAttr(" + hex(call->start) + ", " +
                    hex(call->size) + ", {" +
                    describe_attributes(call->hsakmt_attributes) +
                    "}) failed with status " + std::to_string(result) +
                    (os_error != 0 ? " (" + errno_text(os_error) + ": " +
                                         std::strerror(os_error) + ")"
                                   : ""));
  }
  return Status::failure(HSA_GMEM_STATUS_NO_EQUIVALENT,
                         std::get<NoEquivalent>(plan).reason);
}

}  // namespace gmem::thunk
