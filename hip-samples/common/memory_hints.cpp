#include "memory_hints.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "host_common.hpp"
#include "memory_hints_thunk.hpp"

namespace gmem_samples {

namespace {

class ThunkCApi final : public ThunkApi {
 public:
  HSAKMT_STATUS open() override { return hsaKmtGmemOpen(); }
  HSAKMT_STATUS close() override { return hsaKmtGmemClose(); }
  HSAKMT_STATUS backend(HSA_GMEM_BACKEND* backend) override {
    return hsaKmtGmemGetBackend(backend);
  }
  HSAKMT_STATUS node_count(HSAuint32* count) override { return hsaKmtGmemGetNodeCount(count); }
  HSAKMT_STATUS node_info(HSAuint32 node, HSA_GMEM_NODE_INFO* info) override {
    return hsaKmtGmemGetNodeInfo(node, info);
  }
  HSAKMT_STATUS node_from_hip_device(HSAint32 ordinal, HSAuint32* node) override {
    return hsaKmtGmemNodeFromHipDevice(ordinal, node);
  }
  HSAKMT_STATUS advise(HSAuint32 node, void* start, HSAuint64 bytes,
                       HSA_GMEM_HINT hint) override {
    return hsaKmtGmemAdvise(node, start, bytes, hint);
  }
  HSAKMT_STATUS prefetch_async(HSAuint32 node, void* start, HSAuint64 bytes,
                               void* stream) override {
    return hsaKmtGmemPrefetchAsync(node, start, bytes, stream);
  }
  HSAKMT_STATUS async_error() override { return hsaKmtGmemGetAsyncError(); }
  std::string last_error_message() override { return hsaKmtGmemLastErrorMessage(); }
};

const char* backend_name(HSA_GMEM_BACKEND backend) {
  switch (backend) {
    case HSA_GMEM_BACKEND_SYSCALL: return "syscall backend (GMEM kernel)";
    case HSA_GMEM_BACKEND_KFD_SVM: return "kfd backend (stock kernel, libhsakmt)";
    case HSA_GMEM_BACKEND_ROCR_SVM: return "rocr backend (stock kernel, ROCr SVM API)";
    default: return "no backend";
  }
}

const char* device_name(int device, std::string& storage) {
  storage = device == kHostDevice ? std::string("host") : "GPU " + std::to_string(device);
  return storage.c_str();
}

}  // namespace

std::unique_ptr<ThunkApi> thunk_c_api() { return std::make_unique<ThunkCApi>(); }

const char* hints_mode_name(HintsMode mode) { return mode == HintsMode::kOn ? "on" : "off"; }

std::vector<HintsMode> parse_hints_modes(const std::string& text) {
  if (text == "on") return {HintsMode::kOn};
  if (text == "off") return {HintsMode::kOff};
  if (text == "both") return {HintsMode::kOn, HintsMode::kOff};
  throw UsageError("--hints must be on, off or both, got '" + text + "'");
}

PageSpan page_span(const void* start, std::size_t bytes, std::size_t page_size) {
  const auto address = reinterpret_cast<std::uintptr_t>(start);
  const std::uintptr_t first = address / page_size * page_size;
  const std::uint64_t end = static_cast<std::uint64_t>(address) + bytes;
  const std::uint64_t last = (end + page_size - 1) / page_size * page_size;
  return PageSpan{first, last - first};
}

MemoryHints::MemoryHints(HintsMode mode) : MemoryHints(mode, thunk_c_api()) {}

MemoryHints::MemoryHints(HintsMode mode, std::unique_ptr<ThunkApi> api)
    : mode_(mode), api_(std::move(api)) {
  if (!enabled()) return;
  if (const long size = sysconf(_SC_PAGESIZE); size > 0) page_size_ = static_cast<std::size_t>(size);
  if (const HSAKMT_STATUS status = api_->open(); status != HSAKMT_STATUS_SUCCESS)
    fail(status, "cannot open hsakmt-gmem");
  opened_ = true;
  HSA_GMEM_BACKEND backend = HSA_GMEM_BACKEND_NONE;
  if (const HSAKMT_STATUS status = api_->backend(&backend); status != HSAKMT_STATUS_SUCCESS)
    fail(status, "cannot query the thunk's backend");
  backend_name_ = backend_name(backend);
}

MemoryHints::~MemoryHints() {
  if (!opened_) return;
  for (const Pinned& range : pinned_) {
    HSAuint32 node = 0;
    HSAKMT_STATUS status = HSAKMT_STATUS_SUCCESS;
    try {
      node = node_of(range.device);
      status = api_->advise(node, reinterpret_cast<void*>(range.start), range.bytes,
                            HSA_GMEM_HINT_UNPIN);
    } catch (const HintError& error) {
      std::fprintf(stderr, "memory hints: cannot unpin at exit: %s\n", error.what());
      continue;
    }
    if (status != HSAKMT_STATUS_SUCCESS)
      std::fprintf(stderr, "memory hints: UNPIN of %llu bytes at exit failed: %s\n",
                   static_cast<unsigned long long>(range.bytes), api_->last_error_message().c_str());
  }
  if (api_->close() != HSAKMT_STATUS_SUCCESS)
    std::fprintf(stderr, "memory hints: closing hsakmt-gmem failed: %s\n",
                 api_->last_error_message().c_str());
}

std::string MemoryHints::describe() const {
  return enabled() ? "on: hsakmt-gmem, " + backend_name_ : "off: no hints given";
}

void MemoryHints::fail(int status, const std::string& what) {
  const std::string message = api_->last_error_message();
  throw HintError(status, what + (message.empty() ? "" : ": " + message));
}

std::uint32_t MemoryHints::node_of(int device) {
  HSAuint32 node = 0;
  if (device != kHostDevice) {
    if (const HSAKMT_STATUS status = api_->node_from_hip_device(device, &node);
        status != HSAKMT_STATUS_SUCCESS)
      fail(status, "HIP device " + std::to_string(device) + " has no KFD node");
    return node;
  }
  // Host memory: the first CPU node (KFD lists CPU nodes first).
  HSAuint32 count = 0;
  if (const HSAKMT_STATUS status = api_->node_count(&count); status != HSAKMT_STATUS_SUCCESS)
    fail(status, "cannot count KFD nodes");
  for (HSAuint32 candidate = 0; candidate < count; ++candidate) {
    HSA_GMEM_NODE_INFO info{};
    info.StructSize = sizeof(info);
    if (api_->node_info(candidate, &info) == HSAKMT_STATUS_SUCCESS && !info.IsGpu)
      return candidate;
  }
  throw HintError(HSAKMT_STATUS_INVALID_NODE_UNIT, "the KFD topology lists no CPU node");
}

bool MemoryHints::give(int hint, const char* what, const void* start, std::size_t bytes,
                       int device) {
  if (!enabled()) return false;
  const PageSpan span = page_span(start, bytes, page_size_);
  const HSAKMT_STATUS status = api_->advise(node_of(device), reinterpret_cast<void*>(span.start),
                                            span.bytes, static_cast<HSA_GMEM_HINT>(hint));
  std::string name_storage;
  const std::string target = device_name(device, name_storage);
  if (status == HSA_GMEM_STATUS_NO_EQUIVALENT) {
    declined_.push_back(std::string(what) + " on " + target + ": " + api_->last_error_message());
    return false;
  }
  if (status != HSAKMT_STATUS_SUCCESS)
    fail(status, std::string(what) + " of " + std::to_string(span.bytes) + " bytes on " + target);
  ++given_;
  return true;
}

bool MemoryHints::prefetch(const void* start, std::size_t bytes, int device) {
  return give(HSA_GMEM_HINT_PREFETCH, "PREFETCH", start, bytes, device);
}

bool MemoryHints::prefetch_async(const void* start, std::size_t bytes, int device, void* stream) {
  if (!enabled()) return false;
  const PageSpan span = page_span(start, bytes, page_size_);
  const HSAKMT_STATUS status =
      api_->prefetch_async(node_of(device), reinterpret_cast<void*>(span.start), span.bytes, stream);
  std::string name_storage;
  if (status != HSAKMT_STATUS_SUCCESS)
    fail(status, "stream-ordered PREFETCH of " + std::to_string(span.bytes) + " bytes to " +
                     device_name(device, name_storage));
  ++given_;
  return true;
}

bool MemoryHints::set_preferred_location(const void* start, std::size_t bytes, int device) {
  return give(HSA_GMEM_HINT_PREFERRED_LOC, "PREFERRED_LOC", start, bytes, device);
}

bool MemoryHints::set_accessed_by(const void* start, std::size_t bytes, int gpu) {
  return give(HSA_GMEM_HINT_ACCESSED_BY, "ACCESSED_BY", start, bytes, gpu);
}

// READ_MOSTLY is a property of the range, not of a node; the thunk still
// takes a node, and the host's is valid on every backend.
bool MemoryHints::set_read_mostly(const void* start, std::size_t bytes) {
  return give(HSA_GMEM_HINT_READ_MOSTLY, "READ_MOSTLY", start, bytes, kHostDevice);
}

bool MemoryHints::unset_read_mostly(const void* start, std::size_t bytes) {
  return give(HSA_GMEM_HINT_UNSET_READ_MOSTLY, "UNSET_READ_MOSTLY", start, bytes, kHostDevice);
}

bool MemoryHints::pin(const void* start, std::size_t bytes, int device) {
  if (!give(HSA_GMEM_HINT_PIN, "PIN", start, bytes, device)) return false;
  const PageSpan span = page_span(start, bytes, page_size_);
  pinned_.push_back(Pinned{span.start, span.bytes, device});
  return true;
}

bool MemoryHints::unpin(const void* start, std::size_t bytes, int device) {
  if (!give(HSA_GMEM_HINT_UNPIN, "UNPIN", start, bytes, device)) return false;
  const PageSpan span = page_span(start, bytes, page_size_);
  pinned_.erase(std::remove_if(pinned_.begin(), pinned_.end(),
                               [&](const Pinned& range) {
                                 return range.start == span.start && range.bytes == span.bytes &&
                                        range.device == device;
                               }),
                pinned_.end());
  return true;
}

void MemoryHints::check_async() {
  if (!enabled()) return;
  if (const HSAKMT_STATUS status = api_->async_error(); status != HSAKMT_STATUS_SUCCESS)
    fail(status, "a stream-ordered PREFETCH failed");
}

}  // namespace gmem_samples
