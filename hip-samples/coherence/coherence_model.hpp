// The update sequence of the coherence sample, shared by its kernels and
// its CPU checks. CPU and GPU alternate: step 0 is the CPU's initial fill,
// odd steps run on the GPU, even steps (> 0) on the CPU. Each side first
// checks that it sees exactly what the other side wrote.
#pragma once

#include <cstdint>
#include <string>

#include "host_common.hpp"

namespace gmem_samples::coherence {

enum class Side { kCpu, kGpu };

GMEM_HD inline Side side_of_step(std::uint32_t step) {
  return (step % 2 == 1) ? Side::kGpu : Side::kCpu;
}

// Value of element `index` after the initial fill (step 0).
GMEM_HD inline std::uint32_t initial_value(std::uint64_t index) { return pattern_value(index, 7); }

// Applies step `step` (>= 1) to one element. GPU and CPU steps use different
// arithmetic so a step executed on the wrong side or twice is visible.
GMEM_HD inline std::uint32_t apply_step(std::uint32_t value, std::uint64_t index,
                                        std::uint32_t step) {
  if (side_of_step(step) == Side::kGpu)
    return value * 3u + step + static_cast<std::uint32_t>(index);
  return (value ^ (0x5bd1e995u * step)) + 1u;
}

// Value of element `index` once steps 0..last_step have all run.
GMEM_HD inline std::uint32_t value_after(std::uint64_t index, std::uint32_t last_step) {
  std::uint32_t value = initial_value(index);
  for (std::uint32_t step = 1; step <= last_step; ++step) value = apply_step(value, index, step);
  return value;
}

// Final counter after the concurrent system-scope atomics phase.
std::uint64_t expected_atomic_total(std::uint64_t gpu_threads, std::uint64_t adds_per_gpu_thread,
                                    std::uint64_t cpu_threads, std::uint64_t adds_per_cpu_thread);

// The flag ping-pong: the CPU writes odd values, the GPU answers with the
// next even value. Returns the value the GPU must wait for in `round`.
GMEM_HD inline std::uint32_t ping_value(std::uint32_t round) { return 2 * round + 1; }
GMEM_HD inline std::uint32_t pong_value(std::uint32_t round) { return 2 * round + 2; }

std::string describe_step(std::uint32_t step);

}  // namespace gmem_samples::coherence
