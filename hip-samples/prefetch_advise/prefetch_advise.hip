// Memory hints on malloc'd data: each experiment takes a fresh buffer the
// CPU has just written, applies one hint, and times the same GPU kernel the
// first time it runs ("cold") and once more. Each kernel result is checked
// against the CPU, so a hint can change speed but never data.
#include <atomic>
#include <cstdlib>
#include <memory>

#include "hip_common.hpp"
#include "memory_hints.hpp"

namespace {

using namespace gmem_samples;

constexpr const char* kUsage =
    "usage: prefetch_advise [--size SIZE] [--device D]\n"
    "  --size SIZE  bytes per experiment buffer (default 1G; keep it below GPU memory)\n"
    "  --device D   GPU to use (default 0)\n";

constexpr std::uint32_t kSeed = 5;

// Reads every element and sums checksum terms: a read-only kernel whose
// result proves each value was seen exactly once at the right index.
__global__ void checksum_kernel(const std::uint32_t* data, std::uint64_t count,
                                unsigned long long* sum) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  unsigned long long local = 0;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < count; i += stride)
    local += checksum_term(i, data[i]);
  atomicAdd(sum, local);
}

__global__ void increment_kernel(std::uint32_t* data, std::uint64_t count) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < count; i += stride)
    data[i] += 1;
}

class Experiments {
 public:
  Experiments(int device, std::uint64_t bytes, MemoryHints& hints, ResultLine& result)
      : device_(device), bytes_(bytes), count_(bytes / sizeof(std::uint32_t)), hints_(hints),
        result_(result), expected_sum_(checksum_expected_parallel(
                             count_, [](std::uint64_t i) { return pattern_value(i, kSeed); })) {
    GMEM_HIP_CHECK(hipHostMalloc(&device_sum_, sizeof(unsigned long long)));
  }
  ~Experiments() { (void)hipHostFree(device_sum_); }
  Experiments(const Experiments&) = delete;
  Experiments& operator=(const Experiments&) = delete;

  bool all_verified() const { return verified_; }

  // A fresh malloc'd buffer, written by the CPU so its pages start in host memory.
  std::unique_ptr<std::uint32_t, decltype(&std::free)> fresh_buffer() {
    std::unique_ptr<std::uint32_t, decltype(&std::free)> buffer(
        static_cast<std::uint32_t*>(std::aligned_alloc(2u << 20, bytes_)), &std::free);
    if (!buffer) throw std::runtime_error("cannot allocate " + format_gib(bytes_));
    std::uint32_t* data = buffer.get();
    parallel_for(count_, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) data[i] = pattern_value(i, kSeed);
    });
    return buffer;
  }

  // Runs the checksum kernel, verifies it, returns its time in seconds.
  double timed_checksum(const std::uint32_t* data) {
    *device_sum_ = 0;
    GpuTimer timer;
    timer.start();
    hipLaunchKernelGGL(checksum_kernel, dim3(grid_for(count_, 256, 8192)), dim3(256), 0, nullptr,
                       data, count_, device_sum_);
    GMEM_HIP_CHECK_LAUNCH();
    const double seconds = timer.stop_seconds();
    if (*device_sum_ != expected_sum_) {
      verified_ = false;
      std::printf("    GPU checksum %016llx != CPU %016llx: MISMATCH\n", *device_sum_,
                  static_cast<unsigned long long>(expected_sum_));
    }
    return seconds;
  }

  void report(const std::string& label, const std::string& key, double first, double second) {
    std::printf("  %-44s first kernel %9.3f ms (%7.2f GB/s), again %9.3f ms (%7.2f GB/s)\n",
                label.c_str(), first * 1e3, gigabytes_per_second(bytes_, first), second * 1e3,
                gigabytes_per_second(bytes_, second));
    result_.add(key + "_first_ms", first * 1e3, 3).add(key + "_again_ms", second * 1e3, 3);
  }

  void cold() {
    auto buffer = fresh_buffer();
    const double first = timed_checksum(buffer.get());
    report("no hint (pages fault over on first touch)", "cold", first, timed_checksum(buffer.get()));
  }

  void prefetched() {
    auto buffer = fresh_buffer();
    GpuTimer timer;
    timer.start();
    hints_.prefetch(buffer.get(), bytes_, device_, nullptr);
    const double prefetch_seconds = timer.stop_seconds();
    std::printf("  prefetch to GPU %d: %.3f ms (%.2f GB/s)\n", device_, prefetch_seconds * 1e3,
                gigabytes_per_second(bytes_, prefetch_seconds));
    result_.add("prefetch_ms", prefetch_seconds * 1e3, 3);
    const double first = timed_checksum(buffer.get());
    report("after prefetch to the GPU", "prefetched", first, timed_checksum(buffer.get()));
  }

  void preferred_gpu() {
    auto buffer = fresh_buffer();
    hints_.set_preferred_location(buffer.get(), bytes_, device_);
    const double first = timed_checksum(buffer.get());
    report("preferred location = GPU", "preferred_gpu", first, timed_checksum(buffer.get()));
  }

  void accessed_by_from_host() {
    auto buffer = fresh_buffer();
    hints_.set_preferred_location(buffer.get(), bytes_, kHost);
    hints_.set_accessed_by(buffer.get(), bytes_, device_);
    const double first = timed_checksum(buffer.get());
    report("preferred = host, accessed-by GPU (no move)", "accessed_by", first,
           timed_checksum(buffer.get()));
  }

  void read_mostly() {
    auto buffer = fresh_buffer();
    hints_.set_read_mostly(buffer.get(), bytes_);
    const double first = timed_checksum(buffer.get());
    const double second = timed_checksum(buffer.get());
    // With read-mostly the CPU keeps its copy: reading now should not fault pages back.
    WallTimer cpu_timer;
    const std::uint64_t cpu_sum = checksum_parallel(buffer.get(), count_);
    const double cpu_seconds = cpu_timer.seconds();
    if (cpu_sum != expected_sum_) verified_ = false;
    report("read-mostly (copies on GPU and host)", "read_mostly", first, second);
    std::printf("    CPU read afterwards: %.3f ms (%.2f GB/s)%s\n", cpu_seconds * 1e3,
                gigabytes_per_second(bytes_, cpu_seconds), cpu_sum == expected_sum_ ? "" : " MISMATCH");
    result_.add("read_mostly_cpu_ms", cpu_seconds * 1e3, 3);
  }

  // GPU writes, then the CPU reads: faulting back page by page versus one
  // prefetch to host memory first.
  void back_to_host() {
    for (const bool prefetch : {false, true}) {
      auto buffer = fresh_buffer();
      std::uint32_t* data = buffer.get();
      hipLaunchKernelGGL(increment_kernel, dim3(grid_for(count_, 256, 8192)), dim3(256), 0, nullptr,
                         data, count_);
      GMEM_HIP_CHECK_LAUNCH();
      GMEM_HIP_CHECK(hipDeviceSynchronize());
      WallTimer timer;
      if (prefetch) {
        hints_.prefetch(data, bytes_, kHost, nullptr);
        GMEM_HIP_CHECK(hipDeviceSynchronize());
      }
      const auto bad = first_mismatch(data, count_, [](std::uint64_t i) {
        return pattern_value(i, kSeed) + 1u;
      });
      const double seconds = timer.seconds();
      if (bad) verified_ = false;
      std::printf("  CPU reads GPU-written data %-18s %9.3f ms (%7.2f GB/s)%s\n",
                  prefetch ? "after prefetch:" : "(faults back):", seconds * 1e3,
                  gigabytes_per_second(bytes_, seconds), bad ? " MISMATCH" : "");
      result_.add(prefetch ? "cpu_after_prefetch_ms" : "cpu_faulting_ms", seconds * 1e3, 3);
    }
  }

 private:
  int device_;
  std::uint64_t bytes_;
  std::uint64_t count_;
  MemoryHints& hints_;
  ResultLine& result_;
  std::uint64_t expected_sum_;
  unsigned long long* device_sum_ = nullptr;
  bool verified_ = true;
};

int run(ResultLine& result, int argc, char** argv) {
  CommandLine args(argc, argv, {"size", "device"}, {});
  std::uint64_t bytes = parse_byte_size(args.value_or("size", "1G"));
  const int device = static_cast<int>(parse_unsigned(args.value_or("device", "0"), "--device"));
  bytes = bytes / (2u << 20) * (2u << 20);  // whole 2 MiB blocks for aligned_alloc
  if (bytes == 0) throw UsageError("--size must be at least 2M");

  const GpuInfo gpu = require_xnack_gpu(device);
  print_gpu(gpu);
  GMEM_HIP_CHECK(hipSetDevice(device));
  if (bytes > gpu.free_bytes / 2)
    std::printf("note: %s is over half the GPU's free memory; prefetches may evict\n",
                format_gib(bytes).c_str());

  auto hints = make_memory_hints();
  std::printf("hints through %s, %s per experiment\n", hints->name().c_str(),
              format_gib(bytes).c_str());
  Experiments experiments(device, bytes, *hints, result);
  experiments.cold();
  experiments.prefetched();
  experiments.preferred_gpu();
  experiments.accessed_by_from_host();
  experiments.read_mostly();
  experiments.back_to_host();
  result.add("bytes", bytes);
  std::printf(experiments.all_verified() ? "verified: every kernel and CPU check matched\n"
                                         : "FAILED: a checksum did not match\n");
  return experiments.all_verified() ? kExitVerified : kExitMismatch;
}

}  // namespace

int main(int argc, char** argv) {
  return run_sample_main("prefetch_advise", kUsage,
                         [&](ResultLine& result) { return run(result, argc, argv); });
}
