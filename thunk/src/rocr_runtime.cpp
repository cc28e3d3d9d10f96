#include "rocr_runtime.h"

#include <cinttypes>
#include <cstdio>

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

namespace gmem::thunk {

// Function pointers with the signatures of ROCr's headers, so a mismatch
// with the header the thunk is built against fails to compile.
struct RocrRuntime::EntryPoints {
  decltype(&::hsa_init) init = nullptr;
  decltype(&::hsa_shut_down) shut_down = nullptr;
  decltype(&::hsa_iterate_agents) iterate_agents = nullptr;
  decltype(&::hsa_agent_get_info) agent_get_info = nullptr;
  decltype(&::hsa_signal_create) signal_create = nullptr;
  decltype(&::hsa_signal_destroy) signal_destroy = nullptr;
  decltype(&::hsa_signal_wait_scacquire) signal_wait_scacquire = nullptr;
  decltype(&::hsa_amd_svm_attributes_set) svm_attributes_set = nullptr;
  decltype(&::hsa_amd_svm_attributes_get) svm_attributes_get = nullptr;
  decltype(&::hsa_amd_svm_prefetch_async) svm_prefetch_async = nullptr;
};

namespace {

template <typename Function>
bool resolve(void* handle, const char* name, Function* function,
             std::string* missing) {
  *function = reinterpret_cast<Function>(dlsym(handle, name));
  if (*function == nullptr) {
    if (!missing->empty()) *missing += ", ";
    *missing += name;
  }
  return *function != nullptr;
}

HSAKMT_STATUS hsakmt_status_for(hsa_status_t status) {
  switch (status) {
    case HSA_STATUS_SUCCESS: return HSAKMT_STATUS_SUCCESS;
    case HSA_STATUS_ERROR_INVALID_ARGUMENT: return HSAKMT_STATUS_INVALID_PARAMETER;
    case HSA_STATUS_ERROR_INVALID_AGENT: return HSAKMT_STATUS_INVALID_NODE_UNIT;
    case HSA_STATUS_ERROR_OUT_OF_RESOURCES: return HSAKMT_STATUS_NO_MEMORY;
    case HSA_STATUS_ERROR_NOT_INITIALIZED:
      return HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
    default: return HSAKMT_STATUS_ERROR;
  }
}

struct AgentWalk {
  const RocrRuntime* runtime;
  decltype(&::hsa_agent_get_info) get_info;
  std::map<std::uint32_t, hsa_agent_t>* agents;
  hsa_status_t failure = HSA_STATUS_SUCCESS;
};

hsa_status_t record_agent(hsa_agent_t agent, void* data) {
  auto* walk = static_cast<AgentWalk*>(data);
  std::uint32_t node_id = 0;
  hsa_status_t status = walk->get_info(
      agent, static_cast<hsa_agent_info_t>(HSA_AMD_AGENT_INFO_DRIVER_NODE_ID),
      &node_id);
  if (status != HSA_STATUS_SUCCESS) {
    walk->failure = status;
    return status;
  }
  walk->agents->emplace(node_id, agent);
  return HSA_STATUS_SUCCESS;
}

}  // namespace

const char* hsa_status_name(hsa_status_t status) {
  switch (status) {
    case HSA_STATUS_SUCCESS: return "HSA_STATUS_SUCCESS";
    case HSA_STATUS_INFO_BREAK: return "HSA_STATUS_INFO_BREAK";
    case HSA_STATUS_ERROR: return "HSA_STATUS_ERROR";
    case HSA_STATUS_ERROR_INVALID_ARGUMENT: return "HSA_STATUS_ERROR_INVALID_ARGUMENT";
    case HSA_STATUS_ERROR_INVALID_AGENT: return "HSA_STATUS_ERROR_INVALID_AGENT";
    case HSA_STATUS_ERROR_INVALID_SIGNAL: return "HSA_STATUS_ERROR_INVALID_SIGNAL";
    case HSA_STATUS_ERROR_OUT_OF_RESOURCES: return "HSA_STATUS_ERROR_OUT_OF_RESOURCES";
    case HSA_STATUS_ERROR_NOT_INITIALIZED: return "HSA_STATUS_ERROR_NOT_INITIALIZED";
    case HSA_STATUS_ERROR_REFCOUNT_OVERFLOW: return "HSA_STATUS_ERROR_REFCOUNT_OVERFLOW";
    case HSA_STATUS_ERROR_INVALID_RUNTIME_STATE:
      return "HSA_STATUS_ERROR_INVALID_RUNTIME_STATE";
    case HSA_STATUS_ERROR_FATAL: return "HSA_STATUS_ERROR_FATAL";
    default: return "HSA_STATUS_ERROR (other)";
  }
}

RocrRuntime::RocrRuntime(void* handle, std::string library,
                         std::unique_ptr<EntryPoints> entry)
    : handle_(handle), library_(std::move(library)), entry_(std::move(entry)) {}

RocrRuntime::~RocrRuntime() {
  entry_->shut_down();
  // Not dlclose(): ROCr may keep threads and atexit handlers that outlive
  // the last shut-down, and the process usually holds it open anyway.
  (void)handle_;
}

Status RocrRuntime::open(const std::string& library,
                         std::unique_ptr<RocrRuntime>* runtime) {
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    return Status::failure(HSAKMT_STATUS_NOT_SUPPORTED,
                           "cannot load the HSA runtime " + library + ": " +
                               (reason != nullptr ? reason : "unknown reason"));
  }
  auto entry = std::make_unique<EntryPoints>();
  std::string missing;
  resolve(handle, "hsa_init", &entry->init, &missing);
  resolve(handle, "hsa_shut_down", &entry->shut_down, &missing);
  resolve(handle, "hsa_iterate_agents", &entry->iterate_agents, &missing);
  resolve(handle, "hsa_agent_get_info", &entry->agent_get_info, &missing);
  resolve(handle, "hsa_signal_create", &entry->signal_create, &missing);
  resolve(handle, "hsa_signal_destroy", &entry->signal_destroy, &missing);
  resolve(handle, "hsa_signal_wait_scacquire", &entry->signal_wait_scacquire, &missing);
  resolve(handle, "hsa_amd_svm_attributes_set", &entry->svm_attributes_set, &missing);
  resolve(handle, "hsa_amd_svm_attributes_get", &entry->svm_attributes_get, &missing);
  resolve(handle, "hsa_amd_svm_prefetch_async", &entry->svm_prefetch_async, &missing);
  if (!missing.empty())
    return Status::failure(HSAKMT_STATUS_NOT_SUPPORTED,
                           "the HSA runtime " + library +
                               " lacks the SVM API (missing " + missing + ")");

  hsa_status_t status = entry->init();
  if (status != HSA_STATUS_SUCCESS)
    return Status::failure(hsakmt_status_for(status),
                           std::string("hsa_init() failed: ") +
                               hsa_status_name(status));

  std::unique_ptr<RocrRuntime> opened(
      new RocrRuntime(handle, library, std::move(entry)));
  AgentWalk walk{opened.get(), opened->entry_->agent_get_info,
                 &opened->agents_by_node_};
  status = opened->entry_->iterate_agents(record_agent, &walk);
  if (status != HSA_STATUS_SUCCESS)
    return Status::failure(
        hsakmt_status_for(status),
        std::string("hsa_iterate_agents() failed: ") +
            hsa_status_name(walk.failure != HSA_STATUS_SUCCESS ? walk.failure
                                                               : status));
  *runtime = std::move(opened);
  return Status::success();
}

bool RocrRuntime::agent_for_node(std::uint32_t node_id, hsa_agent_t* agent) const {
  auto found = agents_by_node_.find(node_id);
  if (found == agents_by_node_.end()) return false;
  *agent = found->second;
  return true;
}

Status RocrRuntime::failure(hsa_status_t status, const std::string& what) const {
  return Status::failure(hsakmt_status_for(status),
                         what + " failed: " + hsa_status_name(status));
}

Status RocrRuntime::check_svm_supported() const {
  // A GET of the migration granularity on a page of our own answers on any
  // ROCr with SVM, and fails where KFD has none (no CONFIG_HSA_AMD_SVM).
  long page_size = sysconf(_SC_PAGESIZE);
  std::size_t size = page_size > 0 ? static_cast<std::size_t>(page_size) : 4096;
  void* page = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED)
    return Status::failure(HSAKMT_STATUS_NO_MEMORY,
                           "cannot map a page for the SVM probe");
  hsa_amd_svm_attribute_pair_t granularity{HSA_AMD_SVM_ATTRIB_MIGRATION_GRANULARITY, 0};
  hsa_status_t status = entry_->svm_attributes_get(page, size, &granularity, 1);
  munmap(page, size);
  if (status != HSA_STATUS_SUCCESS)
    return Status::failure(HSAKMT_STATUS_NOT_SUPPORTED,
                           std::string("SVM attribute probe "
                                       "(hsa_amd_svm_attributes_get) failed: ") +
                               hsa_status_name(status) +
                               ": this system has no usable SVM");
  return Status::success();
}

Status RocrRuntime::set_attributes(void* start, std::size_t size,
                                   hsa_amd_svm_attribute_pair_t* attributes,
                                   std::size_t count) const {
  hsa_status_t status = entry_->svm_attributes_set(start, size, attributes, count);
  if (status == HSA_STATUS_SUCCESS) return Status::success();
  return failure(status, "hsa_amd_svm_attributes_set");
}

Status RocrRuntime::prefetch(void* start, std::size_t size, hsa_agent_t agent) const {
  hsa_signal_t done{};
  hsa_status_t status = entry_->signal_create(1, 0, nullptr, &done);
  if (status != HSA_STATUS_SUCCESS) return failure(status, "hsa_signal_create");
  status = entry_->svm_prefetch_async(start, size, agent, 0, nullptr, done);
  if (status != HSA_STATUS_SUCCESS) {
    entry_->signal_destroy(done);
    return failure(status, "hsa_amd_svm_prefetch_async");
  }
  // The signal drops to 0 when the migration is done, below 0 on failure.
  hsa_signal_value_t value = 1;
  while (value > 0)
    value = entry_->signal_wait_scacquire(done, HSA_SIGNAL_CONDITION_LT, 1,
                                          UINT64_MAX, HSA_WAIT_STATE_BLOCKED);
  entry_->signal_destroy(done);
  if (value < 0)
    return Status::failure(HSAKMT_STATUS_ERROR,
                           "hsa_amd_svm_prefetch_async: the runtime reported "
                           "a failed migration (completion signal " +
                               std::to_string(value) + ")");
  return Status::success();
}

}  // namespace gmem::thunk
