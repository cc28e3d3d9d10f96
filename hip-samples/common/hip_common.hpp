// HIP-side helpers shared by the samples: error checks, GPU discovery with a
// clear refusal when XNACK is off, GPU timing and the common main() wrapper.
#pragma once

#include <hip/hip_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "host_common.hpp"

namespace gmem_samples {

class HipError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline void check_hip(hipError_t status, const char* expression, const char* file, int line) {
  if (status == hipSuccess) return;
  throw HipError(std::string(file) + ":" + std::to_string(line) + ": " + expression + " failed: " +
                 hipGetErrorName(status) + " (" + hipGetErrorString(status) + ")");
}

#define GMEM_HIP_CHECK(expression) \
  ::gmem_samples::check_hip((expression), #expression, __FILE__, __LINE__)

// Checks the launch itself; errors inside the kernel show up at the next sync.
#define GMEM_HIP_CHECK_LAUNCH() GMEM_HIP_CHECK(hipGetLastError())

// Raised when the machine cannot run the sample at all; mapped to
// kExitCannotRun by run_sample_main().
class CannotRun : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GpuInfo {
  int device = 0;
  std::string name;
  std::string arch_name;  // e.g. "gfx90a:sramecc+:xnack+"
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;
  bool pageable_memory_access = false;
};

inline GpuInfo query_gpu(int device) {
  GpuInfo info;
  info.device = device;
  hipDeviceProp_t props{};
  GMEM_HIP_CHECK(hipGetDeviceProperties(&props, device));
  info.name = props.name;
  info.arch_name = props.gcnArchName;
  int pageable = 0;
  GMEM_HIP_CHECK(hipDeviceGetAttribute(&pageable, hipDeviceAttributePageableMemoryAccess, device));
  info.pageable_memory_access = pageable != 0;
  GMEM_HIP_CHECK(hipSetDevice(device));
  std::size_t free_bytes = 0, total_bytes = 0;
  GMEM_HIP_CHECK(hipMemGetInfo(&free_bytes, &total_bytes));
  info.free_bytes = free_bytes;
  info.total_bytes = total_bytes;
  return info;
}

// Returns every visible GPU that can use malloc'd memory, or throws
// CannotRun with what is missing and how to fix it. Without pageable memory
// access a GPU access to malloc'd memory is a fatal page fault, so we
// refuse up front (assess_malloc_access() decides).
inline std::vector<GpuInfo> require_xnack_gpus(int minimum_count = 1) {
  int count = 0;
  const hipError_t status = hipGetDeviceCount(&count);
  if (status == hipErrorNoDevice || (status == hipSuccess && count == 0))
    throw CannotRun("no AMD GPU is visible to HIP (check /dev/kfd permissions, "
                        "HIP_VISIBLE_DEVICES and that amdgpu is loaded)");
  if (status != hipSuccess)
    throw CannotRun(std::string("HIP cannot enumerate GPUs: ") + hipGetErrorName(status));

  std::vector<GpuInfo> usable;
  std::string refusals;
  for (int device = 0; device < count; ++device) {
    GpuInfo info = query_gpu(device);
    const MallocAccess access = assess_malloc_access(info.pageable_memory_access, info.arch_name);
    if (access.usable) {
      if (!access.explanation.empty())
        std::fprintf(stderr, "note: GPU %d (%s): %s\n", device, info.arch_name.c_str(),
                     access.explanation.c_str());
      usable.push_back(info);
      continue;
    }
    refusals += "\n  GPU " + std::to_string(device) + " " + info.name + " (" + info.arch_name +
                "): " + access.explanation;
  }
  if (static_cast<int>(usable.size()) < minimum_count)
    throw CannotRun("need " + std::to_string(minimum_count) +
                        " GPU(s) with pageable memory access (XNACK), found " + std::to_string(usable.size()) +
                        refusals);
  return usable;
}

// The GPU with HIP ordinal `device`, if it is usable; CannotRun otherwise.
inline GpuInfo require_xnack_gpu(int device) {
  for (const GpuInfo& gpu : require_xnack_gpus(1))
    if (gpu.device == device) return gpu;
  throw CannotRun("GPU " + std::to_string(device) + " is not visible or runs without XNACK");
}

inline void print_gpu(const GpuInfo& gpu) {
  std::printf("GPU %d: %s (%s), %s total, %s free, pageable memory access: %s\n", gpu.device,
              gpu.name.c_str(), gpu.arch_name.c_str(), format_gib(gpu.total_bytes).c_str(),
              format_gib(gpu.free_bytes).c_str(), gpu.pageable_memory_access ? "yes" : "no");
}

// Times work on one stream with HIP events (GPU clock, not host clock).
class GpuTimer {
 public:
  explicit GpuTimer(hipStream_t stream = nullptr) : stream_(stream) {
    GMEM_HIP_CHECK(hipEventCreate(&start_));
    GMEM_HIP_CHECK(hipEventCreate(&stop_));
  }
  ~GpuTimer() {
    (void)hipEventDestroy(start_);
    (void)hipEventDestroy(stop_);
  }
  GpuTimer(const GpuTimer&) = delete;
  GpuTimer& operator=(const GpuTimer&) = delete;

  void start() { GMEM_HIP_CHECK(hipEventRecord(start_, stream_)); }
  // Waits for the stream and returns seconds since start().
  double stop_seconds() {
    GMEM_HIP_CHECK(hipEventRecord(stop_, stream_));
    GMEM_HIP_CHECK(hipEventSynchronize(stop_));
    float milliseconds = 0.0f;
    GMEM_HIP_CHECK(hipEventElapsedTime(&milliseconds, start_, stop_));
    return milliseconds / 1000.0;
  }

 private:
  hipStream_t stream_;
  hipEvent_t start_{};
  hipEvent_t stop_{};
};

// Grid size for a grid-stride loop over `count` elements.
inline unsigned grid_for(std::uint64_t count, unsigned block_size, unsigned max_blocks = 65536) {
  const std::uint64_t blocks = (count + block_size - 1) / block_size;
  return static_cast<unsigned>(blocks < max_blocks ? (blocks == 0 ? 1 : blocks) : max_blocks);
}

// Runs a sample body and turns every way out into an exit code plus one
// RESULT line, so callers never see a crash for an expected failure.
// The body fills `result` and returns kExitVerified or kExitMismatch.
template <typename Body>
int run_sample_main(const char* sample, const char* usage, Body&& body) {
  ResultLine result(sample);
  int exit_code = kExitError;
  try {
    exit_code = body(result);
  } catch (const HelpRequested&) {
    std::fputs(usage, stdout);
    return kExitVerified;  // nothing ran, so no RESULT line
  } catch (const UsageError& error) {
    std::fprintf(stderr, "%s: %s\n%s", sample, error.what(), usage);
    exit_code = kExitError;
  } catch (const CannotRun& error) {
    std::fprintf(stderr, "%s: cannot run: %s\n", sample, error.what());
    result.add("reason", "cannot_run");
    exit_code = kExitCannotRun;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: error: %s\n", sample, error.what());
    exit_code = kExitError;
  }
  std::printf("%s\n", result.format(status_for_exit_code(exit_code)).c_str());
  std::fflush(stdout);
  return exit_code;
}

}  // namespace gmem_samples
