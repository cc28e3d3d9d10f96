// One malloc'd buffer shared by every visible GPU: first each GPU in turn
// updates all of it (pages move from GPU to GPU), then all GPUs update
// their own slice at the same time, then all of them add to one counter
// with system-scope atomics. The CPU verifies every element after each phase.
#include <atomic>
#include <cstdlib>
#include <memory>

#include "hip_common.hpp"
#include "multi_gpu_partition.hpp"

namespace {

using namespace gmem_samples;
using namespace gmem_samples::multi_gpu;

constexpr const char* kUsage =
    "usage: multi_gpu [--elements N] [--atomic-adds K]\n"
    "  --elements N     32-bit elements in the shared buffer (default 268435456 = 1 GiB)\n"
    "  --atomic-adds K  system-scope atomic adds per GPU thread (default 100)\n";

// Slice boundaries on 2 MiB so no migration block is shared by two GPUs.
constexpr std::uint64_t kSliceAlignment = (2u << 20) / sizeof(std::uint32_t);

__global__ void update_range(std::uint32_t* data, std::uint64_t begin, std::uint64_t count,
                             int device, int phase) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < count; i += stride)
    data[begin + i] = device_update(data[begin + i], device, phase);
}

__global__ void add_to_counter(unsigned long long* counter, std::uint32_t adds) {
  for (std::uint32_t k = 0; k < adds; ++k) atomicAdd_system(counter, 1ull);
}

bool verify(const std::uint32_t* data, std::uint64_t count,
            const std::function<std::uint32_t(std::uint64_t)>& expected, const char* phase) {
  const auto bad = first_mismatch(data, count, expected);
  if (bad)
    std::printf("  %s: element %llu is %08x, expected %08x: MISMATCH\n", phase,
                static_cast<unsigned long long>(*bad), data[*bad], expected(*bad));
  else
    std::printf("  %s: all %llu elements verified on the CPU\n", phase,
                static_cast<unsigned long long>(count));
  return !bad;
}

int run(ResultLine& result, int argc, char** argv) {
  CommandLine args(argc, argv, {"elements", "atomic-adds"}, {});
  const std::uint64_t count = parse_unsigned(args.value_or("elements", "268435456"), "--elements");
  const auto adds =
      static_cast<std::uint32_t>(parse_unsigned(args.value_or("atomic-adds", "100"), "--atomic-adds"));
  if (count == 0) throw UsageError("--elements must be at least 1");

  const auto gpus = require_xnack_gpus(1);
  for (const auto& gpu : gpus) print_gpu(gpu);
  const int devices = static_cast<int>(gpus.size());
  if (devices == 1)
    std::printf("note: one GPU visible; the phases run but nothing is shared between GPUs\n");

  std::unique_ptr<std::uint32_t, decltype(&std::free)> buffer(
      static_cast<std::uint32_t*>(std::malloc(count * sizeof(std::uint32_t))), &std::free);
  if (!buffer) throw std::runtime_error("malloc of the shared buffer failed");
  std::uint32_t* data = buffer.get();
  parallel_for(count, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) data[i] = pattern_value(i, kSeed);
  });
  const unsigned block = 256;
  const std::uint64_t bytes = count * sizeof(std::uint32_t);

  std::printf("phase 1: each of %d GPU(s) in turn updates the whole %s buffer\n", devices,
              format_gib(bytes).c_str());
  WallTimer turns_timer;
  for (const auto& gpu : gpus) {
    GMEM_HIP_CHECK(hipSetDevice(gpu.device));
    WallTimer timer;
    hipLaunchKernelGGL(update_range, dim3(grid_for(count, block)), dim3(block), 0, nullptr, data,
                       std::uint64_t{0}, count, static_cast<int>(&gpu - gpus.data()), 0);
    GMEM_HIP_CHECK_LAUNCH();
    GMEM_HIP_CHECK(hipDeviceSynchronize());
    std::printf("  GPU %d: %.3f s\n", gpu.device, timer.seconds());
  }
  const double turns_seconds = turns_timer.seconds();
  bool ok = verify(data, count, [devices](std::uint64_t i) { return value_after_turns(i, devices); },
                   "phase 1");

  std::printf("phase 2: all GPUs update their own slice concurrently\n");
  const auto slices = partition(count, devices, kSliceAlignment);
  std::vector<hipStream_t> streams(devices);
  WallTimer concurrent_timer;
  for (int rank = 0; rank < devices; ++rank) {
    GMEM_HIP_CHECK(hipSetDevice(gpus[rank].device));
    GMEM_HIP_CHECK(hipStreamCreateWithFlags(&streams[rank], hipStreamNonBlocking));
    if (slices[rank].count == 0) continue;
    hipLaunchKernelGGL(update_range, dim3(grid_for(slices[rank].count, block)), dim3(block), 0,
                       streams[rank], data, slices[rank].begin, slices[rank].count, rank, 1);
    GMEM_HIP_CHECK_LAUNCH();
  }
  for (int rank = 0; rank < devices; ++rank) {
    GMEM_HIP_CHECK(hipSetDevice(gpus[rank].device));
    GMEM_HIP_CHECK(hipStreamSynchronize(streams[rank]));
    GMEM_HIP_CHECK(hipStreamDestroy(streams[rank]));
  }
  const double concurrent_seconds = concurrent_timer.seconds();
  std::printf("  %d GPU(s) concurrently: %.3f s\n", devices, concurrent_seconds);
  ok = verify(data, count,
              [&](std::uint64_t i) { return value_after_concurrent(i, devices, owner_of(slices, i)); },
              "phase 2") && ok;

  std::printf("phase 3: all GPUs add to one malloc'd counter with system-scope atomics\n");
  std::unique_ptr<unsigned long long, decltype(&std::free)> counter(
      static_cast<unsigned long long*>(std::aligned_alloc(4096, 4096)), &std::free);
  if (!counter) throw std::runtime_error("aligned_alloc of the counter failed");
  *counter = 0;
  const unsigned atomic_blocks = 32;
  for (const auto& gpu : gpus) {
    GMEM_HIP_CHECK(hipSetDevice(gpu.device));
    hipLaunchKernelGGL(add_to_counter, dim3(atomic_blocks), dim3(block), 0, nullptr, counter.get(),
                       adds);
    GMEM_HIP_CHECK_LAUNCH();
  }
  for (const auto& gpu : gpus) {
    GMEM_HIP_CHECK(hipSetDevice(gpu.device));
    GMEM_HIP_CHECK(hipDeviceSynchronize());
  }
  const std::uint64_t expected_total = std::uint64_t{atomic_blocks} * block * adds * devices;
  const std::uint64_t total = __atomic_load_n(counter.get(), __ATOMIC_SEQ_CST);
  std::printf("  counter %llu, expected %llu: %s\n", static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(expected_total), total == expected_total ? "ok" : "MISMATCH");
  ok = ok && total == expected_total;

  result.add("gpus", static_cast<std::uint64_t>(devices))
      .add("turns_s", turns_seconds, 3)
      .add("concurrent_s", concurrent_seconds, 3)
      .add("concurrent_GBps", gigabytes_per_second(2 * bytes, concurrent_seconds))
      .add("atomic_total", total);
  std::printf(ok ? "verified: every phase\n" : "FAILED: see above\n");
  return ok ? kExitVerified : kExitMismatch;
}

}  // namespace

int main(int argc, char** argv) {
  return run_sample_main("multi_gpu", kUsage,
                         [&](ResultLine& result) { return run(result, argc, argv); });
}
