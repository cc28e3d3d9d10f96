// Memory hints on malloc'd data: each experiment takes a fresh buffer the
// CPU has just written, applies one hint through the thunk (MemoryHints),
// and times the same GPU kernel the first time it runs and once more; then
// the same without hints, side by side. Each kernel result is checked
// against the CPU, so a hint can change speed but never data.
#include <cstdlib>
#include <memory>

#include "hip_checksum.hpp"
#include "hip_common.hpp"
#include "memory_hints.hpp"

namespace {

using namespace gmem_samples;

constexpr const char* kUsage =
    "usage: prefetch_advise [--size SIZE] [--device D] [--hints on|off|both]\n"
    "  --size SIZE  bytes per experiment buffer (default 1G; keep it below GPU memory)\n"
    "  --device D   GPU to use (default 0)\n"
    "  --hints      give the hints (on), give none (off: every experiment is the\n"
    "               plain first touch), or run both and print them side by side\n"
    "               (default both)\n";

constexpr std::uint32_t kSeed = 5;

__global__ void increment_kernel(std::uint32_t* data, std::uint64_t count) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < count; i += stride)
    data[i] += 1;
}

using HostBuffer = std::unique_ptr<std::uint32_t, decltype(&std::free)>;

class Experiments {
 public:
  Experiments(int device, std::uint64_t bytes, MemoryHints& hints, ResultLine& result,
              SideBySide& table)
      : device_(device), bytes_(bytes), count_(bytes / sizeof(std::uint32_t)), hints_(hints),
        result_(result), table_(table),
        column_(std::string("hints ") + hints_mode_name(hints.mode())),
        key_suffix_(hints.enabled() ? "" : "_nohints"),
        expected_sum_(checksum_expected_parallel(
            count_, [](std::uint64_t i) { return pattern_value(i, kSeed); })) {}

  bool all_verified() const { return verified_; }

  // A fresh malloc'd buffer, written by the CPU so its pages start in host
  // memory; 2 MiB aligned so it starts on a migration block.
  HostBuffer fresh_buffer() {
    HostBuffer buffer(static_cast<std::uint32_t*>(std::aligned_alloc(2u << 20, bytes_)), &std::free);
    if (!buffer) throw std::runtime_error("cannot allocate " + format_gib(bytes_));
    std::uint32_t* data = buffer.get();
    parallel_for(count_, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) data[i] = pattern_value(i, kSeed);
    });
    return buffer;
  }

  // Runs the checksum kernel, verifies it, returns its time in seconds.
  double timed_checksum(const std::uint32_t* data) {
    GpuTimer timer;
    timer.start();
    checksum_.launch(data, count_, nullptr);
    const double seconds = timer.stop_seconds();
    const std::uint64_t sum = checksum_.result();
    if (sum != expected_sum_) {
      verified_ = false;
      std::printf("    GPU checksum %016llx != CPU %016llx: MISMATCH\n",
                  static_cast<unsigned long long>(sum),
                  static_cast<unsigned long long>(expected_sum_));
    }
    return seconds;
  }

  void record(const std::string& label, const std::string& key, double seconds) {
    char text[64];
    std::snprintf(text, sizeof text, "%.3f ms %7.2f GB/s", seconds * 1e3,
                  gigabytes_per_second(bytes_, seconds));
    table_.set(label, column_, text);
    result_.add(key + "_ms" + key_suffix_, seconds * 1e3, 3);
  }

  void kernel_twice(HostBuffer buffer, const std::string& label, const std::string& key) {
    record(label + ", first kernel", key + "_first", timed_checksum(buffer.get()));
    record(label + ", again", key + "_again", timed_checksum(buffer.get()));
  }

  void cold() { kernel_twice(fresh_buffer(), "no hint", "cold"); }

  void prefetched() {
    auto buffer = fresh_buffer();
    GpuTimer timer;
    timer.start();
    hints_.prefetch_async(buffer.get(), bytes_, device_, nullptr);
    const double prefetch_seconds = timer.stop_seconds();
    hints_.check_async();
    record("prefetch to the GPU itself", "prefetch", prefetch_seconds);
    kernel_twice(std::move(buffer), "after prefetch", "prefetched");
  }

  void preferred_gpu() {
    auto buffer = fresh_buffer();
    hints_.set_preferred_location(buffer.get(), bytes_, device_);
    kernel_twice(std::move(buffer), "preferred location GPU", "preferred_gpu");
  }

  void accessed_by_from_host() {
    auto buffer = fresh_buffer();
    hints_.set_preferred_location(buffer.get(), bytes_, kHostDevice);
    hints_.set_accessed_by(buffer.get(), bytes_, device_);
    kernel_twice(std::move(buffer), "preferred host + accessed-by", "accessed_by");
  }

  void read_mostly() {
    auto buffer = fresh_buffer();
    hints_.set_read_mostly(buffer.get(), bytes_);
    record("read-mostly, first kernel", "read_mostly_first", timed_checksum(buffer.get()));
    record("read-mostly, again", "read_mostly_again", timed_checksum(buffer.get()));
    // With read-mostly the CPU keeps its copy: reading now should not fault pages back.
    WallTimer cpu_timer;
    const std::uint64_t cpu_sum = checksum_parallel(buffer.get(), count_);
    const double cpu_seconds = cpu_timer.seconds();
    if (cpu_sum != expected_sum_) {
      verified_ = false;
      std::printf("    CPU checksum after read-mostly kernels: MISMATCH\n");
    }
    record("read-mostly, CPU read afterwards", "read_mostly_cpu", cpu_seconds);
  }

  // GPU writes, then the CPU reads: faulting back page by page versus one
  // prefetch to host memory first (with hints off both are the former).
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
        hints_.prefetch_async(data, bytes_, kHostDevice, nullptr);
        GMEM_HIP_CHECK(hipDeviceSynchronize());
        hints_.check_async();
      }
      const auto bad = first_mismatch(data, count_, [](std::uint64_t i) {
        return pattern_value(i, kSeed) + 1u;
      });
      const double seconds = timer.seconds();
      if (bad) {
        verified_ = false;
        std::printf("    CPU read of GPU-written data: element %llu wrong: MISMATCH\n",
                    static_cast<unsigned long long>(*bad));
      }
      record(prefetch ? "CPU reads GPU data, prefetch home" : "CPU reads GPU data, faulting",
             prefetch ? "cpu_after_prefetch" : "cpu_faulting", seconds);
    }
  }

 private:
  int device_;
  std::uint64_t bytes_;
  std::uint64_t count_;
  MemoryHints& hints_;
  ResultLine& result_;
  SideBySide& table_;
  std::string column_;
  std::string key_suffix_;
  std::uint64_t expected_sum_;
  GpuChecksum checksum_;
  bool verified_ = true;
};

// Loads the code object and starts the GPU before anything is timed, so the
// first experiment does not pay for them.
void warm_up() {
  GpuChecksum checksum(1);
  std::uint32_t* scratch = nullptr;
  GMEM_HIP_CHECK(hipMalloc(&scratch, 4096));
  GMEM_HIP_CHECK(hipMemset(scratch, 0, 4096));
  checksum.launch(scratch, 1024, nullptr);
  (void)checksum.result();
  GMEM_HIP_CHECK(hipFree(scratch));
}

int run(ResultLine& result, int argc, char** argv) {
  CommandLine args(argc, argv, {"size", "device", "hints"}, {});
  std::uint64_t bytes = parse_byte_size(args.value_or("size", "1G"));
  const int device = static_cast<int>(parse_unsigned(args.value_or("device", "0"), "--device"));
  const std::vector<HintsMode> modes = parse_hints_modes(args.value_or("hints", "both"));
  bytes = bytes / (2u << 20) * (2u << 20);  // whole 2 MiB blocks for aligned_alloc
  if (bytes == 0) throw UsageError("--size must be at least 2M");

  const GpuInfo gpu = require_xnack_gpu(device);
  print_gpu(gpu);
  GMEM_HIP_CHECK(hipSetDevice(device));
  if (bytes > gpu.free_bytes / 2)
    std::printf("note: %s is over half the GPU's free memory; prefetches may evict\n",
                format_gib(bytes).c_str());
  warm_up();

  SideBySide table("experiment (" + format_gib(bytes) + " buffer)");
  bool verified = true;
  for (const HintsMode mode : modes) {
    MemoryHints hints(mode);
    std::printf("hints %s\n", hints.describe().c_str());
    Experiments experiments(device, bytes, hints, result, table);
    experiments.cold();
    experiments.prefetched();
    experiments.preferred_gpu();
    experiments.accessed_by_from_host();
    experiments.read_mostly();
    experiments.back_to_host();
    for (const std::string& declined : hints.declined())
      std::printf("  not applied on this kernel: %s\n", declined.c_str());
    verified &= experiments.all_verified();
  }
  std::printf("%s", table.format().c_str());
  result.add("bytes", bytes).add("hints", args.value_or("hints", "both"));
  std::printf(verified ? "verified: every kernel and CPU check matched\n"
                       : "FAILED: a checksum did not match\n");
  return verified ? kExitVerified : kExitMismatch;
}

}  // namespace

int main(int argc, char** argv) {
  return run_sample_main("prefetch_advise", kUsage,
                         [&](ResultLine& result) { return run(result, argc, argv); });
}
