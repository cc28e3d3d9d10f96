// An opened library: the topology, the chosen backend and the kernel it
// talks to. The C API keeps one; gmem-advise and the tests make their own.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "kernel_interface.h"
#include "rocr_runtime.h"
#include "status.h"
#include "topology.h"
#include "translate.h"

namespace gmem::thunk {

// Environment variable that overrides backend selection: auto (the
// default), syscall, rocr or kfd.
inline constexpr const char kBackendEnvironmentVariable[] = "GMEM_THUNK_BACKEND";

enum class BackendRequest { automatic, syscall, rocr_svm, kfd_svm };

// `text` may be null (variable unset). Unknown values are an error rather
// than "auto" so a typo in a test setup does not go unnoticed.
Status parse_backend_request(const char* text, BackendRequest* request);

// What backend selection saw, for gmem-advise and for error messages.
struct SelectionReport {
  std::vector<std::string> steps;  // one line per probe, in order
};

struct SessionOptions {
  std::string sysfs_root = "/sys";
  BackendRequest request = BackendRequest::automatic;
  std::size_t page_size = 4096;
  // The HSA runtime the rocr backend loads (a soname or a path).
  std::string hsa_runtime = kDefaultHsaRuntime;
};

class Session {
 public:
  // Reads the topology and selects the backend. `kernel` must outlive the
  // session. `report` may be null.
  static Status open(KernelInterface& kernel, const SessionOptions& options,
                     std::unique_ptr<Session>* session,
                     SelectionReport* report);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Backend backend() const { return backend_; }
  const Topology& topology() const { return topology_; }
  std::size_t page_size() const { return page_size_; }

  // Checks, translates and executes one hint.
  Status advise(const AdviceRequest& request);
  // Checks and translates only: what advise() would do.
  Status plan(const AdviceRequest& request, Plan* plan) const;
  // Executes a plan made by plan().
  Status execute(const Plan& plan);

 private:
  Session(KernelInterface& kernel, Topology topology, Backend backend,
          bool kfd_opened, std::size_t page_size,
          std::unique_ptr<RocrRuntime> rocr);
  Status execute_rocr(const RocrSetAttributesCall& call);
  Status execute_rocr(const RocrPrefetchCall& call);
  Status agent_for(std::uint32_t node_id, hsa_agent_t* agent) const;

  KernelInterface& kernel_;
  Topology topology_;
  Backend backend_;
  bool kfd_opened_;  // we called open_kfd and owe a close_kfd
  std::size_t page_size_;
  std::unique_ptr<RocrRuntime> rocr_;  // the rocr backend's runtime
};

}  // namespace gmem::thunk
