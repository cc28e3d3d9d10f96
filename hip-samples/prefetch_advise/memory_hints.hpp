// The memory hints the prefetch_advise sample gives, behind one small
// interface. HipMemoryHints uses HIP's own calls, which ROCm applies to
// malloc'd memory when XNACK is on. A variant on the project's thunk
// (gmem::prefetch and friends, hsaKmtHMAdvise underneath) only has to
// implement this interface and be returned by make_memory_hints().
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "hip_common.hpp"

namespace gmem_samples {

// `device` is a HIP device ordinal; kHost names host memory.
constexpr int kHost = hipCpuDeviceId;

class MemoryHints {
 public:
  virtual ~MemoryHints() = default;
  virtual std::string name() const = 0;
  // Migrate now (asynchronously on `stream`) to `device` or kHost.
  virtual void prefetch(const void* start, std::size_t bytes, int device, hipStream_t stream) = 0;
  // Where pages should live when several places could hold them.
  virtual void set_preferred_location(const void* start, std::size_t bytes, int device) = 0;
  // Keep `device` mapped to the pages wherever they are, without migrating.
  virtual void set_accessed_by(const void* start, std::size_t bytes, int device) = 0;
  // Allow read-only copies on several devices at once.
  virtual void set_read_mostly(const void* start, std::size_t bytes) = 0;
  // Drop every hint above for the range.
  virtual void clear(const void* start, std::size_t bytes, int device) = 0;
};

class HipMemoryHints final : public MemoryHints {
 public:
  std::string name() const override { return "HIP (hipMemPrefetchAsync/hipMemAdvise)"; }
  void prefetch(const void* start, std::size_t bytes, int device, hipStream_t stream) override {
    GMEM_HIP_CHECK(hipMemPrefetchAsync(start, bytes, device, stream));
  }
  void set_preferred_location(const void* start, std::size_t bytes, int device) override {
    GMEM_HIP_CHECK(hipMemAdvise(start, bytes, hipMemAdviseSetPreferredLocation, device));
  }
  void set_accessed_by(const void* start, std::size_t bytes, int device) override {
    GMEM_HIP_CHECK(hipMemAdvise(start, bytes, hipMemAdviseSetAccessedBy, device));
  }
  void set_read_mostly(const void* start, std::size_t bytes) override {
    GMEM_HIP_CHECK(hipMemAdvise(start, bytes, hipMemAdviseSetReadMostly, 0));
  }
  void clear(const void* start, std::size_t bytes, int device) override {
    GMEM_HIP_CHECK(hipMemAdvise(start, bytes, hipMemAdviseUnsetReadMostly, device));
    GMEM_HIP_CHECK(hipMemAdvise(start, bytes, hipMemAdviseUnsetPreferredLocation, device));
    GMEM_HIP_CHECK(hipMemAdvise(start, bytes, hipMemAdviseUnsetAccessedBy, device));
  }
};

inline std::unique_ptr<MemoryHints> make_memory_hints() {
  return std::make_unique<HipMemoryHints>();
}

}  // namespace gmem_samples
