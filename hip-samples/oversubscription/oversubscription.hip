// Streams malloc'd buffers larger than the GPU's memory through a kernel,
// several passes each. The kernel-side memory manager (GMEM, or amdkfd SVM
// on a stock ROCm kernel with HSA_XNACK=1) migrates blocks in on fault and
// evicts others to host memory. Every run is checksummed on the CPU.
#include <cstdlib>
#include <iomanip>
#include <memory>

#include "hip_common.hpp"
#include "oversubscription_plan.hpp"

namespace {

using namespace gmem_samples;
using namespace gmem_samples::oversubscription;

constexpr const char* kUsage =
    "usage: oversubscription [--factors F1,F2,...] [--passes P] [--gpu-memory SIZE] [--device D]\n"
    "  --factors     buffer sizes as multiples of GPU memory (default 0.5,1.5,2,4;\n"
    "                0.5 is the fits-in-memory baseline)\n"
    "  --passes P    streaming passes per buffer (default 3)\n"
    "  --gpu-memory  size factors against SIZE (e.g. 8G) instead of the GPU's total\n"
    "  --device D    GPU to use (default 0)\n";

constexpr std::uint32_t kSeed = 11;

// One read-modify-write pass; 16-byte accesses keep the kernel bandwidth-bound.
__global__ void stream_pass(uint4* data, std::uint64_t vector_count, std::uint32_t pass) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < vector_count; i += stride) {
    uint4 v = data[i];
    v.x = stream_pass_update(v.x, pass);
    v.y = stream_pass_update(v.y, pass);
    v.z = stream_pass_update(v.z, pass);
    v.w = stream_pass_update(v.w, pass);
    data[i] = v;
  }
}

struct RunOutcome {
  bool verified = false;
  std::vector<double> pass_gbps;
};

RunOutcome stream_buffer(const PlannedRun& run, std::uint32_t passes) {
  const std::uint64_t count = run.bytes / sizeof(std::uint32_t);
  std::unique_ptr<std::uint32_t, decltype(&std::free)> buffer(
      static_cast<std::uint32_t*>(std::malloc(run.bytes)), &std::free);
  if (!buffer) throw std::runtime_error("malloc of " + format_gib(run.bytes) + " failed");
  std::uint32_t* data = buffer.get();

  WallTimer fill_timer;
  parallel_for(count, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) data[i] = pattern_value(i, kSeed);
  });
  std::printf("  filled %s on the CPU in %.1f s\n", format_gib(run.bytes).c_str(),
              fill_timer.seconds());

  RunOutcome outcome;
  GpuTimer timer;
  const unsigned block = 256;
  const std::uint64_t vectors = count / 4;
  for (std::uint32_t pass = 0; pass < passes; ++pass) {
    timer.start();
    hipLaunchKernelGGL(stream_pass, dim3(grid_for(vectors, block, 1u << 16)), dim3(block), 0,
                       nullptr, reinterpret_cast<uint4*>(data), vectors, pass);
    GMEM_HIP_CHECK_LAUNCH();
    const double seconds = timer.stop_seconds();
    // Each pass reads and writes the whole buffer once.
    const double gbps = gigabytes_per_second(2 * run.bytes, seconds);
    outcome.pass_gbps.push_back(gbps);
    std::printf("  pass %u: %8.2f s  %8.2f GB/s\n", pass + 1, seconds, gbps);
  }
  GMEM_HIP_CHECK(hipDeviceSynchronize());

  WallTimer check_timer;
  auto expected = [passes](std::uint64_t i) { return value_after_passes(i, kSeed, passes); };
  const std::uint64_t seen = checksum_parallel(data, count);
  const std::uint64_t wanted = checksum_expected_parallel(count, expected);
  outcome.verified = seen == wanted;
  std::printf("  CPU checksum %016llx, expected %016llx: %s (%.1f s)\n",
              static_cast<unsigned long long>(seen), static_cast<unsigned long long>(wanted),
              outcome.verified ? "ok" : "MISMATCH", check_timer.seconds());
  if (!outcome.verified) {
    if (auto bad = first_mismatch(data, count, expected))
      std::printf("  first wrong element %llu (byte offset %s): got %08x, expected %08x\n",
                  static_cast<unsigned long long>(*bad), format_gib(*bad * 4).c_str(), data[*bad],
                  expected(*bad));
  }
  return outcome;
}

int run(ResultLine& result, int argc, char** argv) {
  CommandLine args(argc, argv, {"factors", "passes", "gpu-memory", "device"}, {});
  const auto factors = parse_double_list(args.value_or("factors", "0.5,1.5,2,4"), "--factors");
  const auto passes = static_cast<std::uint32_t>(parse_unsigned(args.value_or("passes", "3"), "--passes"));
  const int device = static_cast<int>(parse_unsigned(args.value_or("device", "0"), "--device"));
  if (passes == 0) throw UsageError("--passes must be at least 1");

  const GpuInfo gpu = require_xnack_gpu(device);
  print_gpu(gpu);
  GMEM_HIP_CHECK(hipSetDevice(device));
  const std::uint64_t gpu_bytes = args.has("gpu-memory")
                                      ? parse_byte_size(*args.value("gpu-memory"))
                                      : gpu.total_bytes;
  const auto host_bytes = host_available_bytes();
  std::printf("sizing against %s of GPU memory; host memory available: %s\n",
              format_gib(gpu_bytes).c_str(),
              host_bytes ? format_gib(*host_bytes).c_str() : "unknown");

  const Plan plan = plan_runs(gpu_bytes, host_bytes, factors);
  for (const auto& note : plan.notes) std::printf("note: %s\n", note.c_str());
  if (plan.runs.empty())
    throw CannotRun("host memory is too small for any requested size (see notes above)");

  bool all_verified = true;
  for (const auto& planned : plan.runs) {
    std::printf("%.2fx GPU memory (%s)%s, %u passes:\n", planned.actual_factor,
                format_gib(planned.bytes).c_str(), planned.capped ? " [capped by host memory]" : "",
                passes);
    const RunOutcome outcome = stream_buffer(planned, passes);
    all_verified &= outcome.verified;
    std::ostringstream key;
    key << "x" << std::fixed << std::setprecision(2) << planned.actual_factor;
    for (std::size_t pass = 0; pass < outcome.pass_gbps.size(); ++pass)
      result.add(key.str() + "_pass" + std::to_string(pass + 1) + "_GBps", outcome.pass_gbps[pass]);
    result.add(key.str() + "_verified", outcome.verified ? "yes" : "no");
  }
  std::printf(all_verified ? "verified: every buffer's checksum matches\n"
                           : "FAILED: a checksum does not match\n");
  return all_verified ? kExitVerified : kExitMismatch;
}

}  // namespace

int main(int argc, char** argv) {
  return run_sample_main("oversubscription", kUsage,
                         [&](ResultLine& result) { return run(result, argc, argv); });
}
