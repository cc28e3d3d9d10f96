// Plain malloc() and new[] arrays passed straight to a GPU kernel: no
// hipMalloc, no hipMemcpy, no registration. The GPU faults the pages in on
// first touch (XNACK) and the CPU reads the result in place.
#include <atomic>
#include <cstdlib>
#include <memory>

#include "hip_common.hpp"

namespace {

using namespace gmem_samples;

constexpr const char* kUsage =
    "usage: malloc_vector_add [--elements N] [--device D]\n"
    "  --elements N  floats per array (default 67108864 = 256 MiB per array)\n"
    "  --device D    GPU to use (default 0)\n";

__global__ void vector_add(const float* a, const float* b, float* sum, std::uint64_t count) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < count; i += stride)
    sum[i] = a[i] + b[i];
}

// Small integers keep float sums exact, so the check can demand equality.
float input_a(std::uint64_t i) { return static_cast<float>(pattern_value(i, 1) % 4096u); }
float input_b(std::uint64_t i) { return static_cast<float>(pattern_value(i, 2) % 4096u); }

int run(ResultLine& result, int argc, char** argv) {
  CommandLine args(argc, argv, {"elements", "device"}, {});
  const std::uint64_t count = parse_unsigned(args.value_or("elements", "67108864"), "--elements");
  const int device = static_cast<int>(parse_unsigned(args.value_or("device", "0"), "--device"));
  if (count == 0) throw UsageError("--elements must be at least 1");

  const GpuInfo gpu = require_xnack_gpu(device);
  print_gpu(gpu);
  GMEM_HIP_CHECK(hipSetDevice(device));

  // Three allocation styles on purpose: the GPU cannot tell them apart.
  const std::uint64_t bytes = count * sizeof(float);
  float* a = static_cast<float*>(std::malloc(bytes));
  std::unique_ptr<float[]> b(new float[count]);
  float* sum = static_cast<float*>(std::malloc(bytes));
  if (a == nullptr || sum == nullptr) {
    std::free(a);
    std::free(sum);
    throw std::runtime_error("malloc of " + format_gib(bytes) + " failed");
  }
  std::unique_ptr<float, decltype(&std::free)> a_owner(a, &std::free);
  std::unique_ptr<float, decltype(&std::free)> sum_owner(sum, &std::free);

  parallel_for(count, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      a[i] = input_a(i);
      b[i] = input_b(i);
      sum[i] = -1.0f;  // touched on the CPU so the GPU must migrate or map it
    }
  });

  GpuTimer timer;
  const unsigned block = 256;
  double seconds[2] = {0.0, 0.0};
  for (int run = 0; run < 2; ++run) {  // run 0 faults pages in, run 1 finds them resident
    timer.start();
    hipLaunchKernelGGL(vector_add, dim3(grid_for(count, block)), dim3(block), 0, nullptr, a,
                       b.get(), sum, count);
    GMEM_HIP_CHECK_LAUNCH();
    seconds[run] = timer.stop_seconds();
  }
  GMEM_HIP_CHECK(hipDeviceSynchronize());

  std::atomic<std::uint64_t> mismatches{0};
  std::atomic<std::uint64_t> first_bad{count};
  parallel_for(count, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      if (sum[i] != input_a(i) + input_b(i)) {
        if (mismatches++ == 0) first_bad = i;
      }
    }
  });

  const std::uint64_t moved = 3 * bytes;
  std::printf("vector_add over %llu floats (3 x %s of malloc'd memory)\n",
              static_cast<unsigned long long>(count), format_gib(bytes).c_str());
  std::printf("  first launch (pages fault in): %8.3f ms  %7.2f GB/s\n", seconds[0] * 1e3,
              gigabytes_per_second(moved, seconds[0]));
  std::printf("  second launch (resident):      %8.3f ms  %7.2f GB/s\n", seconds[1] * 1e3,
              gigabytes_per_second(moved, seconds[1]));
  result.add("elements", count)
      .add("first_ms", seconds[0] * 1e3, 3)
      .add("second_ms", seconds[1] * 1e3, 3)
      .add("second_GBps", gigabytes_per_second(moved, seconds[1]))
      .add("mismatches", mismatches.load());
  if (mismatches.load() != 0) {
    const std::uint64_t i = first_bad.load();
    std::printf("MISMATCH: %llu wrong elements, first at %llu: got %g, expected %g\n",
                static_cast<unsigned long long>(mismatches.load()),
                static_cast<unsigned long long>(i), static_cast<double>(sum[i]),
                static_cast<double>(input_a(i) + input_b(i)));
    return kExitMismatch;
  }
  std::printf("verified: every element equals a[i] + b[i] on the CPU\n");
  return kExitVerified;
}

}  // namespace

int main(int argc, char** argv) {
  return run_sample_main("malloc_vector_add", kUsage,
                         [&](ResultLine& result) { return run(result, argc, argv); });
}
