// Streams malloc'd buffers larger than the GPU's memory through a kernel,
// several passes each. The kernel-side memory manager (GMEM, or amdkfd SVM
// on a stock ROCm kernel with HSA_XNACK=1) migrates blocks in on fault and
// evicts others to host memory. Every run is checksummed on the CPU.
#include <cstdlib>
#include <iomanip>
#include <memory>

#include "hip_common.hpp"
#include "memory_hints.hpp"
#include "oversubscription_plan.hpp"

namespace {

using namespace gmem_samples;
using namespace gmem_samples::oversubscription;

constexpr const char* kUsage =
    "usage: oversubscription [--factors F1,F2,...] [--passes P] [--gpu-memory SIZE] [--device D]\n"
    "                        [--hints on|off|both] [--chunk SIZE]\n"
    "  --factors     buffer sizes as multiples of GPU memory (default 0.5,1.5,2,4;\n"
    "                0.5 is the fits-in-memory baseline)\n"
    "  --passes P    streaming passes per buffer (default 3)\n"
    "  --gpu-memory  size factors against SIZE (e.g. 8G) instead of the GPU's total\n"
    "  --device D    GPU to use (default 0)\n"
    "  --hints       on: a pass walks the buffer in chunks and prefetches the next\n"
    "                one while the kernel works on this one; off: the same chunks,\n"
    "                paged in on fault; both (default): both, side by side\n"
    "  --chunk SIZE  chunk of a pass (default 1/8 of GPU memory, at most 1G)\n";

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

// Events of one pass, per chunk: "prefetched" orders the kernel after its
// chunk's prefetch, "computed" lets a prefetch wait until the chunk two
// steps back is done, so at most two chunks are in flight.
class ChunkEvents {
 public:
  explicit ChunkEvents(std::size_t count) : prefetched_(count), computed_(count) {
    for (std::size_t i = 0; i < count; ++i) {
      GMEM_HIP_CHECK(hipEventCreateWithFlags(&prefetched_[i], hipEventDisableTiming));
      GMEM_HIP_CHECK(hipEventCreateWithFlags(&computed_[i], hipEventDisableTiming));
    }
  }
  ~ChunkEvents() {
    for (std::size_t i = 0; i < prefetched_.size(); ++i) {
      (void)hipEventDestroy(prefetched_[i]);
      (void)hipEventDestroy(computed_[i]);
    }
  }
  ChunkEvents(const ChunkEvents&) = delete;
  ChunkEvents& operator=(const ChunkEvents&) = delete;
  hipEvent_t prefetched(std::size_t i) { return prefetched_[i]; }
  hipEvent_t computed(std::size_t i) { return computed_[i]; }

 private:
  std::vector<hipEvent_t> prefetched_, computed_;
};

class Streams {
 public:
  Streams() {
    GMEM_HIP_CHECK(hipStreamCreateWithFlags(&compute, hipStreamNonBlocking));
    GMEM_HIP_CHECK(hipStreamCreateWithFlags(&prefetch, hipStreamNonBlocking));
  }
  ~Streams() {
    (void)hipStreamDestroy(compute);
    (void)hipStreamDestroy(prefetch);
  }
  Streams(const Streams&) = delete;
  Streams& operator=(const Streams&) = delete;
  hipStream_t compute = nullptr;
  hipStream_t prefetch = nullptr;
};

// Queues the prefetch of chunk `next` once chunk `next - 2` is done (its
// memory may then be evicted to make room).
void queue_prefetch(MemoryHints& hints, int device, std::uint8_t* base,
                    const std::vector<Chunk>& chunks, std::size_t next, Streams& streams,
                    ChunkEvents& events) {
  if (next >= chunks.size()) return;
  if (next >= 2) GMEM_HIP_CHECK(hipStreamWaitEvent(streams.prefetch, events.computed(next - 2), 0));
  hints.prefetch_async(base + chunks[next].offset, chunks[next].bytes, device, streams.prefetch);
  GMEM_HIP_CHECK(hipEventRecord(events.prefetched(next), streams.prefetch));
}

RunOutcome stream_buffer(const PlannedRun& run, std::uint32_t passes, std::uint64_t chunk_bytes,
                         MemoryHints& hints, int device) {
  const std::uint64_t count = run.bytes / sizeof(std::uint32_t);
  std::unique_ptr<std::uint32_t, decltype(&std::free)> buffer(
      static_cast<std::uint32_t*>(std::aligned_alloc(kSizeGranularity, run.bytes)), &std::free);
  if (!buffer) throw std::runtime_error("allocation of " + format_gib(run.bytes) + " failed");
  std::uint32_t* data = buffer.get();

  WallTimer fill_timer;
  parallel_for(count, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) data[i] = pattern_value(i, kSeed);
  });
  std::printf("  filled %s on the CPU in %.1f s\n", format_gib(run.bytes).c_str(),
              fill_timer.seconds());

  const std::vector<Chunk> chunks = split_into_chunks(run.bytes, chunk_bytes);
  auto* base = reinterpret_cast<std::uint8_t*>(data);
  Streams streams;
  RunOutcome outcome;
  GpuTimer timer(streams.compute);
  const unsigned block = 256;
  for (std::uint32_t pass = 0; pass < passes; ++pass) {
    ChunkEvents events(chunks.size());
    timer.start();
    if (hints.enabled()) {
      // The prefetch stream starts when the pass does.
      GMEM_HIP_CHECK(hipEventRecord(events.computed(0), streams.compute));
      GMEM_HIP_CHECK(hipStreamWaitEvent(streams.prefetch, events.computed(0), 0));
      queue_prefetch(hints, device, base, chunks, 0, streams, events);
    }
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      if (hints.enabled()) {
        queue_prefetch(hints, device, base, chunks, i + 1, streams, events);
        GMEM_HIP_CHECK(hipStreamWaitEvent(streams.compute, events.prefetched(i), 0));
      }
      const std::uint64_t vectors = chunks[i].bytes / sizeof(uint4);
      hipLaunchKernelGGL(stream_pass, dim3(grid_for(vectors, block, 1u << 16)), dim3(block), 0,
                         streams.compute, reinterpret_cast<uint4*>(base + chunks[i].offset),
                         vectors, pass);
      GMEM_HIP_CHECK_LAUNCH();
      GMEM_HIP_CHECK(hipEventRecord(events.computed(i), streams.compute));
    }
    const double seconds = timer.stop_seconds();
    GMEM_HIP_CHECK(hipStreamSynchronize(streams.prefetch));
    hints.check_async();
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
  CommandLine args(argc, argv, {"factors", "passes", "gpu-memory", "device", "hints", "chunk"}, {});
  const auto factors = parse_double_list(args.value_or("factors", "0.5,1.5,2,4"), "--factors");
  const auto passes = static_cast<std::uint32_t>(parse_unsigned(args.value_or("passes", "3"), "--passes"));
  const int device = static_cast<int>(parse_unsigned(args.value_or("device", "0"), "--device"));
  const std::vector<HintsMode> modes = parse_hints_modes(args.value_or("hints", "both"));
  if (passes == 0) throw UsageError("--passes must be at least 1");

  const GpuInfo gpu = require_xnack_gpu(device);
  print_gpu(gpu);
  GMEM_HIP_CHECK(hipSetDevice(device));
  const std::uint64_t gpu_bytes = args.has("gpu-memory")
                                      ? parse_byte_size(*args.value("gpu-memory"))
                                      : gpu.total_bytes;
  const std::uint64_t chunk_bytes = args.has("chunk") ? parse_byte_size(*args.value("chunk"))
                                                      : default_chunk_bytes(gpu_bytes);
  const auto host_bytes = host_available_bytes();
  std::printf("sizing against %s of GPU memory; host memory available: %s; chunks of %s\n",
              format_gib(gpu_bytes).c_str(),
              host_bytes ? format_gib(*host_bytes).c_str() : "unknown",
              format_gib(chunk_bytes).c_str());

  const Plan plan = plan_runs(gpu_bytes, host_bytes, factors);
  for (const auto& note : plan.notes) std::printf("note: %s\n", note.c_str());
  if (plan.runs.empty())
    throw CannotRun("host memory is too small for any requested size (see notes above)");

  bool all_verified = true;
  SideBySide table("buffer, last pass");
  for (const HintsMode mode : modes) {
    MemoryHints hints(mode);
    const std::string column = std::string("hints ") + hints_mode_name(mode);
    std::printf("hints %s%s\n", hints.describe().c_str(),
                hints.enabled() ? " (the next chunk is prefetched while one is computed)" : "");
    for (const auto& planned : plan.runs) {
      std::printf("%.2fx GPU memory (%s)%s, %u passes:\n", planned.actual_factor,
                  format_gib(planned.bytes).c_str(),
                  planned.capped ? " [capped by host memory]" : "", passes);
      const RunOutcome outcome = stream_buffer(planned, passes, chunk_bytes, hints, device);
      all_verified &= outcome.verified;
      std::ostringstream key, row, cell;
      key << "x" << std::fixed << std::setprecision(2) << planned.actual_factor;
      row << std::fixed << std::setprecision(2) << planned.actual_factor << "x";
      cell << std::fixed << std::setprecision(2) << outcome.pass_gbps.back() << " GB/s"
           << (outcome.verified ? "" : " MISMATCH");
      table.set(row.str(), column, cell.str());
      const std::string suffix = hints.enabled() ? "" : "_nohints";
      for (std::size_t pass = 0; pass < outcome.pass_gbps.size(); ++pass)
        result.add(key.str() + "_pass" + std::to_string(pass + 1) + "_GBps" + suffix,
                   outcome.pass_gbps[pass]);
      result.add(key.str() + "_verified" + suffix, outcome.verified ? "yes" : "no");
    }
    for (const std::string& declined : hints.declined())
      std::printf("  not applied on this kernel: %s\n", declined.c_str());
  }
  std::printf("%s", table.format().c_str());
  result.add("hints", args.value_or("hints", "both"));
  std::printf(all_verified ? "verified: every buffer's checksum matches\n"
                           : "FAILED: a checksum does not match\n");
  return all_verified ? kExitVerified : kExitMismatch;
}

}  // namespace

int main(int argc, char** argv) {
  return run_sample_main("oversubscription", kUsage,
                         [&](ResultLine& result) { return run(result, argc, argv); });
}
