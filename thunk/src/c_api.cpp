// The exported C API: one process-wide Session behind a reference count,
// as libhsakmt does for /dev/kfd.
#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include <sys/syscall.h>
#include <unistd.h>

#include "gmem/hmadvise_abi.h"
#include "gmem/hsakmt_hmadvise.h"
#include "hip_devices.h"
#include "hip_stream.h"
#include "session.h"
#include "test_hooks.h"

namespace gmem::thunk {
namespace {

struct Library {
  std::shared_mutex mutex;  // shared: hints and queries; exclusive: open/close
  unsigned open_count = 0;
  std::unique_ptr<KernelInterface> kernel;
  std::unique_ptr<Session> session;
  // KFD node of each HIP device ordinal, from the visibility variables as
  // they were at the first open (HIP reads them once, at its start too).
  std::vector<std::uint32_t> hip_device_nodes;
  testing::KernelFactory kernel_factory;
  std::string sysfs_root = "/sys";
  std::string hsa_runtime;  // set by the tests; empty: environment or default
  std::optional<std::string> hip_runtime;  // set by the tests
  // The first failure of a stream-ordered prefetch, until it is fetched.
  std::mutex async_mutex;
  std::optional<Status> async_failure;
};

// Never destroyed: a program that forgets hsaKmtGmemClose() must not have
// KFD closed under it by a static destructor racing other exit handlers.
Library& library() {
  static Library* instance = new Library;
  return *instance;
}

std::string& last_error_message() {
  thread_local std::string message;
  return message;
}

HSAKMT_STATUS finish(const Status& status) {
  last_error_message() = status.message;
  return status.code;
}

Status not_opened() {
  return Status::failure(HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED,
                         "hsaKmtGmemOpen() has not been called");
}

Status null_argument(const char* name) {
  return Status::failure(HSAKMT_STATUS_INVALID_PARAMETER,
                         std::string(name) + " is NULL");
}

// A C caller may pass any 32-bit value as a hint; reading it as the C++
// enum would be undefined for values outside the enumerators, so copy the
// bits out instead.
std::uint32_t raw_hint(const HSA_GMEM_HINT& hint) {
  static_assert(sizeof(HSA_GMEM_HINT) == sizeof(std::uint32_t));
  std::uint32_t value;
  std::memcpy(&value, &hint, sizeof(value));
  return value;
}

// Drops one reference; the last one closes the session.
Status release_open() {
  Library& lib = library();
  std::unique_lock lock(lib.mutex);
  if (lib.open_count == 0) return not_opened();
  if (--lib.open_count == 0) {
    lib.session.reset();  // closes KFD or shuts ROCr down if the session opened it
    lib.kernel.reset();
  }
  return Status::success();
}

// A prefetch waiting in a stream, planned (checked) when it was queued.
struct StreamPrefetch {
  Plan plan;
};

// Runs on the HIP runtime's callback thread when the stream reaches it.
void run_stream_prefetch(void* data) {
  std::unique_ptr<StreamPrefetch> job(static_cast<StreamPrefetch*>(data));
  Library& lib = library();
  {
    std::shared_lock lock(lib.mutex);
    Status status = lib.session->execute(job->plan);
    if (!status.ok()) {
      std::lock_guard failure_lock(lib.async_mutex);
      if (!lib.async_failure) lib.async_failure = status;
    }
  }
  release_open();  // the reference the queued prefetch held
}

// Copies `full` into the caller's structure, as much of it as the caller's
// StructSize says it has; refuses a size too small for the first version.
template <typename Struct>
Status copy_sized(const Struct& full, std::size_t first_version_size, Struct* out,
                  const char* name) {
  const std::uint32_t size = out->StructSize;
  if (size < first_version_size)
    return Status::failure(HSAKMT_STATUS_INVALID_PARAMETER,
                           std::string(name) + ".StructSize is " + std::to_string(size) +
                               "; set it to sizeof(" + name + ")");
  std::memcpy(out, &full, std::min<std::size_t>(size, sizeof(Struct)));
  out->StructSize = static_cast<std::uint32_t>(std::min<std::size_t>(size, sizeof(Struct)));
  return Status::success();
}

Status fill_node_info(const TopologyNode& node, HSA_GMEM_NODE_INFO* info) {
  HSA_GMEM_NODE_INFO full{};
  full.NodeId = node.node_id;
  full.GpuId = node.gpu_id;
  full.GmemNodeId = node.gmem_node_id ? *node.gmem_node_id : -1;
  full.IsGpu = node.is_gpu() ? 1 : 0;
  return copy_sized(full, sizeof(HSA_GMEM_NODE_INFO), info, "HSA_GMEM_NODE_INFO");
}

}  // namespace

namespace testing {

void set_kernel_factory(KernelFactory factory) {
  std::unique_lock lock(library().mutex);
  library().kernel_factory = std::move(factory);
}

void set_sysfs_root(std::string sysfs_root) {
  std::unique_lock lock(library().mutex);
  library().sysfs_root = sysfs_root.empty() ? "/sys" : std::move(sysfs_root);
}

void set_hip_runtime(std::optional<std::string> runtime_library) {
  std::unique_lock lock(library().mutex);
  library().hip_runtime = std::move(runtime_library);
}

void set_hsa_runtime(std::string runtime_library) {
  std::unique_lock lock(library().mutex);
  library().hsa_runtime = std::move(runtime_library);
}

}  // namespace testing
}  // namespace gmem::thunk

using namespace gmem::thunk;

extern "C" {

HSAKMT_STATUS hsaKmtGmemOpen(void) {
  Library& lib = library();
  std::unique_lock lock(lib.mutex);
  if (lib.open_count > 0) {
    ++lib.open_count;
    return finish(Status::success());
  }

  SessionOptions options;
  options.sysfs_root = lib.sysfs_root;
  long page_size = sysconf(_SC_PAGESIZE);
  if (page_size > 0) options.page_size = static_cast<std::size_t>(page_size);
  Status status = parse_backend_request(std::getenv(kBackendEnvironmentVariable),
                                        &options.request);
  if (!status.ok()) return finish(status);
  const char* runtime = std::getenv(kHsaRuntimeEnvironmentVariable);
  if (!lib.hsa_runtime.empty())
    options.hsa_runtime = lib.hsa_runtime;
  else if (runtime != nullptr && runtime[0] != '\0')
    options.hsa_runtime = runtime;

  std::unique_ptr<KernelInterface> kernel =
      lib.kernel_factory ? lib.kernel_factory() : make_system_kernel_interface();
  std::unique_ptr<Session> session;
  status = Session::open(*kernel, options, &session, nullptr);
  if (!status.ok()) return finish(status);

  lib.hip_device_nodes =
      hip_device_nodes(session->topology(), device_visibility_from_environment());
  lib.kernel = std::move(kernel);
  lib.session = std::move(session);
  lib.open_count = 1;
  return finish(Status::success());
}

HSAKMT_STATUS hsaKmtGmemGetVersion(HSA_GMEM_VERSION* Version) {
  if (Version == nullptr) return finish(null_argument("Version"));
  HSA_GMEM_VERSION full{};
  full.Major = GMEM_THUNK_VERSION_MAJOR;
  full.Minor = GMEM_THUNK_VERSION_MINOR;
  full.Patch = GMEM_THUNK_VERSION_PATCH;
  return finish(copy_sized(full, sizeof(HSA_GMEM_VERSION), Version, "HSA_GMEM_VERSION"));
}

HSAKMT_STATUS hsaKmtGmemClose(void) { return finish(release_open()); }

HSAKMT_STATUS hsaKmtGmemGetBackend(HSA_GMEM_BACKEND* Backend) {
  if (Backend == nullptr) return finish(null_argument("Backend"));
  Library& lib = library();
  std::shared_lock lock(lib.mutex);
  if (!lib.session) {
    *Backend = HSA_GMEM_BACKEND_NONE;
    return finish(Status::success());
  }
  switch (lib.session->backend()) {
    case gmem::thunk::Backend::syscall: *Backend = HSA_GMEM_BACKEND_SYSCALL; break;
    case gmem::thunk::Backend::rocr_svm: *Backend = HSA_GMEM_BACKEND_ROCR_SVM; break;
    case gmem::thunk::Backend::kfd_svm: *Backend = HSA_GMEM_BACKEND_KFD_SVM; break;
  }
  return finish(Status::success());
}

HSAKMT_STATUS hsaKmtGmemAdvise(HSAuint32 NodeId, void* Start, HSAuint64 Size,
                               HSA_GMEM_HINT Hint) {
  Library& lib = library();
  std::shared_lock lock(lib.mutex);
  if (!lib.session) return finish(not_opened());
  return finish(lib.session->advise(AdviceRequest{
      NodeId, reinterpret_cast<std::uintptr_t>(Start), Size, raw_hint(Hint)}));
}

HSAKMT_STATUS hsaKmtGmemPrefetchAsync(HSAuint32 NodeId, void* Start, HSAuint64 Size,
                                      void* Stream) {
  Library& lib = library();
  auto job = std::make_unique<StreamPrefetch>();
  std::string hip_runtime;
  {
    std::unique_lock lock(lib.mutex);
    if (!lib.session) return finish(not_opened());
    Status status = lib.session->plan(
        AdviceRequest{NodeId, reinterpret_cast<std::uintptr_t>(Start), Size,
                      HSA_GMEM_HINT_PREFETCH},
        &job->plan);
    if (!status.ok()) return finish(status);
    if (lib.hip_runtime) {
      hip_runtime = *lib.hip_runtime;
    } else if (const char* named = std::getenv(kHipRuntimeEnvironmentVariable)) {
      hip_runtime = named;
    }
    // The queued prefetch keeps the library open until it has run.
    ++lib.open_count;
  }
  // Unlocked from here: a runtime may run the function before returning.
  HipStreams streams;
  Status status = HipStreams::find(hip_runtime, &streams);
  if (status.ok()) status = streams.enqueue(Stream, run_stream_prefetch, job.get());
  if (!status.ok()) {
    release_open();
    return finish(status);
  }
  job.release();  // run_stream_prefetch owns it now
  return finish(Status::success());
}

HSAKMT_STATUS hsaKmtGmemGetAsyncError(void) {
  Library& lib = library();
  std::lock_guard lock(lib.async_mutex);
  if (!lib.async_failure) return finish(Status::success());
  Status failure = std::move(*lib.async_failure);
  lib.async_failure.reset();
  return finish(failure);
}

HSAKMT_STATUS hsaKmtGmemGetNodeCount(HSAuint32* NumNodes) {
  if (NumNodes == nullptr) return finish(null_argument("NumNodes"));
  Library& lib = library();
  std::shared_lock lock(lib.mutex);
  if (!lib.session) return finish(not_opened());
  *NumNodes = static_cast<HSAuint32>(lib.session->topology().nodes().size());
  return finish(Status::success());
}

HSAKMT_STATUS hsaKmtGmemGetNodeInfo(HSAuint32 NodeId, HSA_GMEM_NODE_INFO* Info) {
  if (Info == nullptr) return finish(null_argument("Info"));
  Library& lib = library();
  std::shared_lock lock(lib.mutex);
  if (!lib.session) return finish(not_opened());
  const TopologyNode* node = lib.session->topology().find_by_node_id(NodeId);
  if (node == nullptr || !node->accessible)
    return finish(Status::failure(HSAKMT_STATUS_INVALID_NODE_UNIT,
                                  "no accessible KFD node " + std::to_string(NodeId)));
  return finish(fill_node_info(*node, Info));
}

HSAKMT_STATUS hsaKmtGmemNodeFromGpuId(HSAuint32 GpuId, HSAuint32* NodeId) {
  if (NodeId == nullptr) return finish(null_argument("NodeId"));
  Library& lib = library();
  std::shared_lock lock(lib.mutex);
  if (!lib.session) return finish(not_opened());
  const TopologyNode* node = lib.session->topology().find_by_gpu_id(GpuId);
  if (node == nullptr)
    return finish(Status::failure(HSAKMT_STATUS_INVALID_NODE_UNIT,
                                  "no GPU node has gpu_id " + std::to_string(GpuId)));
  *NodeId = node->node_id;
  return finish(Status::success());
}

HSAKMT_STATUS hsaKmtGmemNodeFromGmemNode(HSAint32 GmemNodeId, HSAuint32* NodeId) {
  if (NodeId == nullptr) return finish(null_argument("NodeId"));
  Library& lib = library();
  std::shared_lock lock(lib.mutex);
  if (!lib.session) return finish(not_opened());
  const TopologyNode* node = lib.session->topology().find_by_gmem_node_id(GmemNodeId);
  if (node == nullptr)
    return finish(Status::failure(
        HSAKMT_STATUS_INVALID_NODE_UNIT,
        "no KFD node has gmem_node_id " + std::to_string(GmemNodeId)));
  *NodeId = node->node_id;
  return finish(Status::success());
}

HSAKMT_STATUS hsaKmtGmemGetHipDeviceCount(HSAuint32* Count) {
  if (Count == nullptr) return finish(null_argument("Count"));
  Library& lib = library();
  std::shared_lock lock(lib.mutex);
  if (!lib.session) return finish(not_opened());
  *Count = static_cast<HSAuint32>(lib.hip_device_nodes.size());
  return finish(Status::success());
}

HSAKMT_STATUS hsaKmtGmemNodeFromHipDevice(HSAint32 DeviceOrdinal, HSAuint32* NodeId) {
  if (NodeId == nullptr) return finish(null_argument("NodeId"));
  Library& lib = library();
  std::shared_lock lock(lib.mutex);
  if (!lib.session) return finish(not_opened());
  if (DeviceOrdinal < 0 ||
      static_cast<std::size_t>(DeviceOrdinal) >= lib.hip_device_nodes.size())
    return finish(Status::failure(
        HSAKMT_STATUS_INVALID_NODE_UNIT,
        "no HIP device " + std::to_string(DeviceOrdinal) + " (" +
            std::to_string(lib.hip_device_nodes.size()) +
            " visible through ROCR_VISIBLE_DEVICES and HIP_VISIBLE_DEVICES)"));
  *NodeId = lib.hip_device_nodes[static_cast<std::size_t>(DeviceOrdinal)];
  return finish(Status::success());
}

const char* hsaKmtGmemLastErrorMessage(void) {
  return last_error_message().c_str();
}

const char* hsaKmtGmemHintName(HSA_GMEM_HINT Hint) {
  return hint_name(raw_hint(Hint));
}

int hsaKmtGmemRawHmadvise(int hnid, unsigned long start, size_t len, int behavior) {
#ifdef HSA_GMEM_NR_HMADVISE
  return static_cast<int>(syscall(HSA_GMEM_NR_HMADVISE, hnid, start, len, behavior, 0L, 0L));
#else
  (void)hnid, (void)start, (void)len, (void)behavior;
  errno = ENOSYS;
  return -1;
#endif
}

}  // extern "C"
