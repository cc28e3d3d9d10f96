// Sizing of the oversubscription runs and the values the streaming kernel
// must leave behind. Host code: unit-tested without a GPU.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host_common.hpp"

namespace gmem_samples::oversubscription {

// Buffers are a whole number of 2 MiB blocks: the migration granularity of
// amdkfd and GMEM, and a multiple of the kernel's 16-byte vector access.
constexpr std::uint64_t kSizeGranularity = 2ull << 20;
// Share of MemAvailable a run may use; the rest stays for the OS, the page
// cache and this process.
constexpr double kDefaultHostFraction = 0.85;

struct PlannedRun {
  double requested_factor = 0;  // multiple of GPU memory asked for
  double actual_factor = 0;     // bytes / GPU memory after capping
  std::uint64_t bytes = 0;
  bool capped = false;          // reduced to fit host memory
};

struct Plan {
  std::vector<PlannedRun> runs;
  std::vector<std::string> notes;  // one line per capped or skipped factor
};

// Plans one run per factor of `gpu_bytes`. Runs that do not fit into
// host_fraction of `host_available_bytes` are capped to it while the capped
// size still exceeds GPU memory; otherwise (or when the capped size repeats
// an earlier run) they are skipped with a note. Factors < 1 are allowed as a
// fits-in-memory baseline. Throws UsageError for factors <= 0 or gpu_bytes 0.
Plan plan_runs(std::uint64_t gpu_bytes, std::optional<std::uint64_t> host_available_bytes,
               const std::vector<double>& factors, double host_fraction = kDefaultHostFraction);

// A pass walks the buffer in chunks so that, with hints on, the next chunk
// can be prefetched while the kernel works on this one.
struct Chunk {
  std::uint64_t offset = 0;  // bytes from the buffer's start
  std::uint64_t bytes = 0;
};
// Whole 2 MiB blocks: an eighth of GPU memory, at most 1 GiB, so two chunks
// in flight use a quarter of the GPU at most.
std::uint64_t default_chunk_bytes(std::uint64_t gpu_bytes);
// [0, buffer_bytes) in chunks of chunk_bytes (rounded up to 2 MiB), the last
// one shorter. Throws UsageError for a zero size.
std::vector<Chunk> split_into_chunks(std::uint64_t buffer_bytes, std::uint64_t chunk_bytes);

// Value of element `index` after `passes` streaming passes over the buffer.
GMEM_HD inline std::uint32_t value_after_passes(std::uint64_t index, std::uint32_t seed,
                                                std::uint32_t passes) {
  std::uint32_t value = pattern_value(index, seed);
  for (std::uint32_t pass = 0; pass < passes; ++pass) value = stream_pass_update(value, pass);
  return value;
}

}  // namespace gmem_samples::oversubscription
