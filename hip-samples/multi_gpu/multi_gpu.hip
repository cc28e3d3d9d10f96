// One malloc'd buffer shared by every visible GPU: first each GPU in turn
// updates all of it (pages move from GPU to GPU), then all GPUs update
// their own slice at the same time, then all read all of it at once, then
// all of them add to one counter with system-scope atomics. The CPU
// verifies every phase. With hints on, MemoryHints prefetches, sets
// preferred locations and marks the buffer read-mostly for the reads.
#include <cstdlib>
#include <memory>

#include "hip_checksum.hpp"
#include "hip_common.hpp"
#include "memory_hints.hpp"
#include "multi_gpu_partition.hpp"

namespace {

using namespace gmem_samples;
using namespace gmem_samples::multi_gpu;

constexpr const char* kUsage =
    "usage: multi_gpu [--elements N] [--atomic-adds K] [--hints on|off|both]\n"
    "  --elements N     32-bit elements in the shared buffer (default 268435456 = 1 GiB)\n"
    "  --atomic-adds K  system-scope atomic adds per GPU thread (default 100)\n"
    "  --hints          on: prefetch the buffer to each GPU before its turn, each\n"
    "                   slice to its owner, and mark the buffer read-mostly for\n"
    "                   the concurrent reads; off: no hints; both (default): both,\n"
    "                   side by side\n";

// Slice boundaries on 2 MiB (in elements) so no migration block is shared
// by two GPUs; the buffer itself is 2 MiB aligned so that holds in memory.
constexpr std::uint64_t kSliceAlignment = kBlockBytes / sizeof(std::uint32_t);

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

struct PhaseTimes {
  double turns = 0, concurrent = 0, reads = 0;
  std::uint64_t total = 0;
};

// One run of the four phases on a fresh buffer, with or without hints.
bool run_phases(const std::vector<GpuInfo>& gpus, std::uint64_t count, std::uint32_t adds,
                MemoryHints& hints, PhaseTimes& times) {
  const int devices = static_cast<int>(gpus.size());
  const std::uint64_t bytes = count * sizeof(std::uint32_t);
  const std::uint64_t allocated = block_rounded_bytes(count);
  std::unique_ptr<std::uint32_t, decltype(&std::free)> buffer(
      static_cast<std::uint32_t*>(std::aligned_alloc(kBlockBytes, allocated)), &std::free);
  if (!buffer) throw std::runtime_error("allocation of the shared buffer failed");
  std::uint32_t* data = buffer.get();
  parallel_for(count, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) data[i] = pattern_value(i, kSeed);
  });
  const unsigned block = 256;

  std::printf("phase 1: each of %d GPU(s) in turn updates the whole %s buffer%s\n", devices,
              format_gib(bytes).c_str(), hints.enabled() ? " (prefetched to it first)" : "");
  WallTimer turns_timer;
  for (const auto& gpu : gpus) {
    GMEM_HIP_CHECK(hipSetDevice(gpu.device));
    WallTimer timer;
    hints.prefetch_async(data, bytes, gpu.device, nullptr);
    hipLaunchKernelGGL(update_range, dim3(grid_for(count, block)), dim3(block), 0, nullptr, data,
                       std::uint64_t{0}, count, static_cast<int>(&gpu - gpus.data()), 0);
    GMEM_HIP_CHECK_LAUNCH();
    GMEM_HIP_CHECK(hipDeviceSynchronize());
    hints.check_async();
    std::printf("  GPU %d: %.3f s\n", gpu.device, timer.seconds());
  }
  times.turns = turns_timer.seconds();
  bool ok = verify(data, count, [devices](std::uint64_t i) { return value_after_turns(i, devices); },
                   "phase 1");

  const auto slices = partition(count, devices, kSliceAlignment);
  const bool aligned = slices_start_on_blocks(reinterpret_cast<std::uintptr_t>(data), slices);
  std::printf("phase 2: all GPUs update their own slice concurrently (slices %s on 2 MiB)%s\n",
              aligned ? "start" : "do NOT start",
              hints.enabled() ? ", preferred location and prefetch to the owner" : "");
  std::vector<hipStream_t> streams(devices);
  WallTimer concurrent_timer;
  for (int rank = 0; rank < devices; ++rank) {
    GMEM_HIP_CHECK(hipSetDevice(gpus[rank].device));
    GMEM_HIP_CHECK(hipStreamCreateWithFlags(&streams[rank], hipStreamNonBlocking));
    if (slices[rank].count == 0) continue;
    std::uint32_t* slice = data + slices[rank].begin;
    const std::uint64_t slice_bytes = slices[rank].count * sizeof(std::uint32_t);
    hints.set_preferred_location(slice, slice_bytes, gpus[rank].device);
    hints.prefetch_async(slice, slice_bytes, gpus[rank].device, streams[rank]);
    hipLaunchKernelGGL(update_range, dim3(grid_for(slices[rank].count, block)), dim3(block), 0,
                       streams[rank], data, slices[rank].begin, slices[rank].count, rank, 1);
    GMEM_HIP_CHECK_LAUNCH();
  }
  for (int rank = 0; rank < devices; ++rank) {
    GMEM_HIP_CHECK(hipSetDevice(gpus[rank].device));
    GMEM_HIP_CHECK(hipStreamSynchronize(streams[rank]));
  }
  times.concurrent = concurrent_timer.seconds();
  hints.check_async();
  std::printf("  %d GPU(s) concurrently: %.3f s\n", devices, times.concurrent);
  ok = verify(data, count,
              [&](std::uint64_t i) { return value_after_concurrent(i, devices, owner_of(slices, i)); },
              "phase 2") && ok;

  std::printf("phase 3: every GPU reads the whole buffer at the same time%s\n",
              hints.enabled() ? " (read-mostly: each may keep a copy)" : "");
  const std::uint64_t expected_sum = checksum_parallel(data, count);
  hints.set_read_mostly(data, bytes);
  std::vector<std::unique_ptr<GpuChecksum>> checksums;
  WallTimer reads_timer;
  for (int rank = 0; rank < devices; ++rank) {
    GMEM_HIP_CHECK(hipSetDevice(gpus[rank].device));
    checksums.push_back(std::make_unique<GpuChecksum>());
    checksums.back()->launch(data, count, streams[rank]);
  }
  bool reads_ok = true;
  for (int rank = 0; rank < devices; ++rank) {
    GMEM_HIP_CHECK(hipSetDevice(gpus[rank].device));
    reads_ok &= checksums[rank]->result() == expected_sum;
  }
  times.reads = reads_timer.seconds();
  std::printf("  %d GPU(s) read %s each: %.3f s, checksums %s\n", devices,
              format_gib(bytes).c_str(), times.reads, reads_ok ? "ok" : "MISMATCH");
  ok = ok && reads_ok;
  hints.unset_read_mostly(data, bytes);  // the buffer is written again below
  for (int rank = 0; rank < devices; ++rank) {
    GMEM_HIP_CHECK(hipSetDevice(gpus[rank].device));
    checksums[rank].reset();
    GMEM_HIP_CHECK(hipStreamDestroy(streams[rank]));
  }

  std::printf("phase 4: all GPUs add to one malloc'd counter with system-scope atomics\n");
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
  times.total = __atomic_load_n(counter.get(), __ATOMIC_SEQ_CST);
  std::printf("  counter %llu, expected %llu: %s\n", static_cast<unsigned long long>(times.total),
              static_cast<unsigned long long>(expected_total),
              times.total == expected_total ? "ok" : "MISMATCH");
  return ok && times.total == expected_total;
}

int run(ResultLine& result, int argc, char** argv) {
  CommandLine args(argc, argv, {"elements", "atomic-adds", "hints"}, {});
  const std::uint64_t count = parse_unsigned(args.value_or("elements", "268435456"), "--elements");
  const auto adds =
      static_cast<std::uint32_t>(parse_unsigned(args.value_or("atomic-adds", "100"), "--atomic-adds"));
  const std::vector<HintsMode> modes = parse_hints_modes(args.value_or("hints", "both"));
  if (count == 0) throw UsageError("--elements must be at least 1");

  const auto gpus = require_xnack_gpus(1);
  for (const auto& gpu : gpus) print_gpu(gpu);
  const int devices = static_cast<int>(gpus.size());
  if (devices == 1)
    std::printf("note: one GPU visible; the phases run but nothing is shared between GPUs\n");
  const std::uint64_t bytes = count * sizeof(std::uint32_t);

  bool ok = true;
  SideBySide table("phase (" + std::to_string(devices) + " GPUs)");
  for (const HintsMode mode : modes) {
    MemoryHints hints(mode);
    std::printf("hints %s\n", hints.describe().c_str());
    PhaseTimes times;
    ok = run_phases(gpus, count, adds, hints, times) && ok;
    for (const std::string& declined : hints.declined())
      std::printf("  not applied on this kernel: %s\n", declined.c_str());
    const std::string column = std::string("hints ") + hints_mode_name(mode);
    const std::string suffix = hints.enabled() ? "" : "_nohints";
    char text[48];
    std::snprintf(text, sizeof text, "%.3f s", times.turns);
    table.set("1: in turn", column, text);
    std::snprintf(text, sizeof text, "%.3f s", times.concurrent);
    table.set("2: own slices", column, text);
    std::snprintf(text, sizeof text, "%.3f s", times.reads);
    table.set("3: concurrent reads", column, text);
    result.add("turns_s" + suffix, times.turns, 3)
        .add("concurrent_s" + suffix, times.concurrent, 3)
        .add("concurrent_GBps" + suffix, gigabytes_per_second(2 * bytes, times.concurrent))
        .add("reads_GBps" + suffix, gigabytes_per_second(bytes * devices, times.reads))
        .add("atomic_total" + suffix, times.total);
  }
  std::printf("%s", table.format().c_str());
  result.add("gpus", static_cast<std::uint64_t>(devices)).add("hints", args.value_or("hints", "both"));
  std::printf(ok ? "verified: every phase\n" : "FAILED: see above\n");
  return ok ? kExitVerified : kExitMismatch;
}

}  // namespace

int main(int argc, char** argv) {
  return run_sample_main("multi_gpu", kUsage,
                         [&](ResultLine& result) { return run(result, argc, argv); });
}
