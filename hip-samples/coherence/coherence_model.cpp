#include "coherence_model.hpp"

namespace gmem_samples::coherence {

std::uint64_t expected_atomic_total(std::uint64_t gpu_threads, std::uint64_t adds_per_gpu_thread,
                                    std::uint64_t cpu_threads, std::uint64_t adds_per_cpu_thread) {
  return gpu_threads * adds_per_gpu_thread + cpu_threads * adds_per_cpu_thread;
}

std::string describe_step(std::uint32_t step) {
  if (step == 0) return "step 0: CPU fills the buffer";
  const bool gpu = side_of_step(step) == Side::kGpu;
  return "step " + std::to_string(step) + ": " + (gpu ? "GPU" : "CPU") + " checks the " +
         (gpu ? "CPU" : "GPU") + "'s values, then " + (gpu ? "x = 3x + step + i" : "x = (x ^ k*step) + 1");
}

}  // namespace gmem_samples::coherence
