#include "oversubscription_plan.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace gmem_samples::oversubscription {
namespace {

std::string factor_text(double factor) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << factor << "x";
  return out.str();
}

std::uint64_t round_down_to_granule(double bytes) {
  const auto whole = static_cast<std::uint64_t>(bytes);
  return whole / kSizeGranularity * kSizeGranularity;
}

}  // namespace

Plan plan_runs(std::uint64_t gpu_bytes, std::optional<std::uint64_t> host_available_bytes,
               const std::vector<double>& factors, double host_fraction) {
  if (gpu_bytes == 0) throw UsageError("GPU memory size is 0: cannot size the buffers");
  if (!(host_fraction > 0.0 && host_fraction <= 1.0))
    throw UsageError("host memory fraction must be in (0, 1]");
  Plan plan;
  std::optional<std::uint64_t> host_limit;
  if (host_available_bytes) {
    host_limit = round_down_to_granule(static_cast<double>(*host_available_bytes) * host_fraction);
  } else {
    plan.notes.push_back("host memory size unknown (/proc/meminfo unreadable): runs are not capped");
  }

  for (double factor : factors) {
    if (!(factor > 0.0) || !std::isfinite(factor))
      throw UsageError("oversubscription factor must be positive, got " + std::to_string(factor));
    PlannedRun run;
    run.requested_factor = factor;
    run.bytes = round_down_to_granule(factor * static_cast<double>(gpu_bytes));
    if (run.bytes == 0) run.bytes = kSizeGranularity;

    if (host_limit && run.bytes > *host_limit) {
      const std::string need = "needs " + format_gib(run.bytes) + " but " +
                               std::to_string(static_cast<int>(host_fraction * 100)) + "% of the " +
                               format_gib(*host_available_bytes) + " available host memory is " +
                               format_gib(*host_limit);
      if (factor > 1.0 && *host_limit > gpu_bytes) {
        run.bytes = *host_limit;
        run.capped = true;
      } else {
        plan.notes.push_back(factor_text(factor) + " skipped: " + need);
        continue;
      }
      bool repeats_earlier = false;
      for (const auto& earlier : plan.runs) repeats_earlier |= earlier.bytes == run.bytes;
      if (repeats_earlier) {
        plan.notes.push_back(factor_text(factor) + " skipped: " + need +
                             ", and that size was already run");
        continue;
      }
      run.actual_factor = static_cast<double>(run.bytes) / static_cast<double>(gpu_bytes);
      plan.notes.push_back(factor_text(factor) + " capped to " + factor_text(run.actual_factor) +
                           ": " + need);
    } else {
      run.actual_factor = static_cast<double>(run.bytes) / static_cast<double>(gpu_bytes);
    }
    plan.runs.push_back(run);
  }
  return plan;
}

std::uint64_t default_chunk_bytes(std::uint64_t gpu_bytes) {
  const std::uint64_t eighth = gpu_bytes / 8 / kSizeGranularity * kSizeGranularity;
  return std::min<std::uint64_t>(std::max(eighth, kSizeGranularity), 1ull << 30);
}

std::vector<Chunk> split_into_chunks(std::uint64_t buffer_bytes, std::uint64_t chunk_bytes) {
  if (buffer_bytes == 0 || chunk_bytes == 0) throw UsageError("chunk and buffer sizes must be > 0");
  const std::uint64_t step = (chunk_bytes + kSizeGranularity - 1) / kSizeGranularity * kSizeGranularity;
  std::vector<Chunk> chunks;
  for (std::uint64_t offset = 0; offset < buffer_bytes; offset += step)
    chunks.push_back(Chunk{offset, std::min(step, buffer_bytes - offset)});
  return chunks;
}

}  // namespace gmem_samples::oversubscription
