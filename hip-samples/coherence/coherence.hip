// CPU and GPU take turns on one malloc'd buffer, each checking every value
// the other side wrote; then both hammer one counter with system-scope
// atomics at the same time; then they pass a message back and forth through
// a flag with acquire/release ordering. Every phase is verified.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>

#include "coherence_model.hpp"
#include "hip_common.hpp"

namespace {

using namespace gmem_samples;
using namespace gmem_samples::coherence;

constexpr const char* kUsage =
    "usage: coherence [--elements N] [--steps S] [--atomic-adds K] [--ping-rounds R] [--device D]\n"
    "  --elements N     32-bit elements in the shared buffer (default 16777216 = 64 MiB)\n"
    "  --steps S        alternating CPU/GPU update steps after the fill (default 8)\n"
    "  --atomic-adds K  atomic increments per GPU and per CPU thread (default 1000)\n"
    "  --ping-rounds R  CPU<->GPU message round trips (default 100)\n"
    "  --device D       GPU to use (default 0)\n";

// Checks that the buffer holds the state after `step - 1`, then applies `step`.
__global__ void gpu_check_and_step(std::uint32_t* data, std::uint64_t count, std::uint32_t step,
                                   unsigned long long* mismatches) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  unsigned long long local_mismatches = 0;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < count; i += stride) {
    const std::uint32_t seen = data[i];
    if (seen != value_after(i, step - 1)) ++local_mismatches;
    data[i] = apply_step(seen, i, step);
  }
  if (local_mismatches != 0) atomicAdd_system(mismatches, local_mismatches);
}

__global__ void gpu_atomic_adds(unsigned long long* counter, std::uint32_t adds_per_thread) {
  for (std::uint32_t k = 0; k < adds_per_thread; ++k) atomicAdd_system(counter, 1ull);
}

// Shared control block for the ping-pong, on its own page.
struct PingPong {
  std::uint32_t flag;       // odd: CPU sent a message, even: GPU answered
  std::uint32_t message;    // written by the CPU before the odd flag
  std::uint32_t reply;      // written by the GPU before the even flag
  std::uint32_t gpu_error;  // 0 ok, 1 timed out, 2 wrong message
  std::uint32_t abort;      // set by the CPU if it gives up, so the GPU stops too
};

constexpr std::uint32_t kGpuErrorTimeout = 1;
constexpr std::uint32_t kGpuErrorBadMessage = 2;
constexpr std::uint32_t message_for_round(std::uint32_t round) { return round * 7u + 1u; }
constexpr std::uint32_t reply_for_message(std::uint32_t message) { return message * 2u + 5u; }

__global__ void gpu_pong(PingPong* control, std::uint32_t rounds, std::uint64_t max_polls) {
  for (std::uint32_t round = 0; round < rounds; ++round) {
    std::uint64_t polls = 0;
    // Bounded wait: a lost write must fail the sample, never hang the GPU.
    while (__hip_atomic_load(&control->flag, __ATOMIC_ACQUIRE, __HIP_MEMORY_SCOPE_SYSTEM) !=
           ping_value(round)) {
      if (++polls > max_polls ||
          __hip_atomic_load(&control->abort, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_SYSTEM) != 0) {
        control->gpu_error = kGpuErrorTimeout;
        __threadfence_system();
        return;
      }
      __builtin_amdgcn_s_sleep(64);
    }
    const std::uint32_t message = control->message;
    if (message != message_for_round(round)) {
      control->gpu_error = kGpuErrorBadMessage;
      __threadfence_system();
      return;
    }
    control->reply = reply_for_message(message);
    __hip_atomic_store(&control->flag, pong_value(round), __ATOMIC_RELEASE,
                       __HIP_MEMORY_SCOPE_SYSTEM);
  }
}

struct FreeDeleter {
  void operator()(void* pointer) const { std::free(pointer); }
};

template <typename T>
std::unique_ptr<T, FreeDeleter> malloc_array(std::uint64_t count, std::size_t alignment = 0) {
  void* pointer = alignment ? std::aligned_alloc(alignment, ((count * sizeof(T) + alignment - 1) /
                                                             alignment) * alignment)
                            : std::malloc(count * sizeof(T));
  if (pointer == nullptr) throw std::runtime_error("malloc of " + std::to_string(count * sizeof(T)) + " bytes failed");
  return std::unique_ptr<T, FreeDeleter>(static_cast<T*>(pointer));
}

bool run_alternating_steps(std::uint32_t* data, std::uint64_t count, std::uint32_t steps,
                           ResultLine& result) {
  auto mismatches = malloc_array<unsigned long long>(1);
  parallel_for(count, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) data[i] = initial_value(i);
  });
  std::printf("  %s\n", describe_step(0).c_str());
  const unsigned block = 256;
  WallTimer timer;
  for (std::uint32_t step = 1; step <= steps; ++step) {
    std::uint64_t wrong = 0;
    if (side_of_step(step) == Side::kGpu) {
      *mismatches = 0;
      hipLaunchKernelGGL(gpu_check_and_step, dim3(grid_for(count, block, 4096)), dim3(block), 0,
                         nullptr, data, count, step, mismatches.get());
      GMEM_HIP_CHECK_LAUNCH();
      GMEM_HIP_CHECK(hipDeviceSynchronize());
      wrong = *mismatches;
    } else {
      std::atomic<std::uint64_t> cpu_mismatches{0};
      parallel_for(count, [&](std::size_t begin, std::size_t end) {
        std::uint64_t local = 0;
        for (std::size_t i = begin; i < end; ++i) {
          if (data[i] != value_after(i, step - 1)) ++local;
          data[i] = apply_step(data[i], i, step);
        }
        cpu_mismatches += local;
      });
      wrong = cpu_mismatches.load();
    }
    std::printf("  %-60s %s\n", describe_step(step).c_str(),
                wrong == 0 ? "ok" : ("MISMATCH x" + std::to_string(wrong)).c_str());
    if (wrong != 0) {
      result.add("failed_step", static_cast<std::uint64_t>(step));
      return false;
    }
  }
  auto bad = first_mismatch(data, count, [steps](std::uint64_t i) { return value_after(i, steps); });
  result.add("steps", static_cast<std::uint64_t>(steps)).add("steps_s", timer.seconds(), 3);
  if (bad) {
    std::printf("  final CPU check: element %llu is wrong\n", static_cast<unsigned long long>(*bad));
    return false;
  }
  std::printf("  final CPU check of all %llu elements: ok\n", static_cast<unsigned long long>(count));
  return true;
}

bool run_concurrent_atomics(std::uint32_t adds_per_thread, ResultLine& result) {
  auto counter = malloc_array<unsigned long long>(1, 4096);
  *counter = 0;
  const unsigned gpu_blocks = 64, gpu_block_size = 256;
  const unsigned cpu_threads = std::max(1u, std::thread::hardware_concurrency());
  hipLaunchKernelGGL(gpu_atomic_adds, dim3(gpu_blocks), dim3(gpu_block_size), 0, nullptr,
                     counter.get(), adds_per_thread);
  GMEM_HIP_CHECK_LAUNCH();
  // The kernel is asynchronous: the CPU adds while it runs.
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < cpu_threads; ++t)
    workers.emplace_back([&] {
      for (std::uint32_t k = 0; k < adds_per_thread; ++k)
        __atomic_fetch_add(counter.get(), 1ull, __ATOMIC_SEQ_CST);
    });
  for (auto& worker : workers) worker.join();
  GMEM_HIP_CHECK(hipDeviceSynchronize());
  const std::uint64_t expected = expected_atomic_total(std::uint64_t{gpu_blocks} * gpu_block_size,
                                                       adds_per_thread, cpu_threads, adds_per_thread);
  const std::uint64_t seen = __atomic_load_n(counter.get(), __ATOMIC_SEQ_CST);
  std::printf("  %u GPU threads and %u CPU threads x %u system-scope atomic adds: counter %llu, "
              "expected %llu: %s\n",
              gpu_blocks * gpu_block_size, cpu_threads, adds_per_thread,
              static_cast<unsigned long long>(seen), static_cast<unsigned long long>(expected),
              seen == expected ? "ok" : "MISMATCH");
  result.add("atomic_total", seen);
  return seen == expected;
}

bool run_ping_pong(int device, std::uint32_t rounds, ResultLine& result) {
  auto control = malloc_array<PingPong>(1, 4096);
  *control = PingPong{0, 0, 0, 0, 0};
  // Keep the control page in host memory and let the GPU map it in place, so
  // each flag write does not migrate the page back and forth.
  const hipError_t advise_host =
      hipMemAdvise(control.get(), 4096, hipMemAdviseSetPreferredLocation, hipCpuDeviceId);
  const hipError_t advise_map = hipMemAdvise(control.get(), 4096, hipMemAdviseSetAccessedBy, device);
  if (advise_host != hipSuccess || advise_map != hipSuccess)
    std::printf("  note: hipMemAdvise on the control page failed (%s); pages may migrate\n",
                hipGetErrorName(advise_host != hipSuccess ? advise_host : advise_map));

  constexpr std::uint64_t kMaxGpuPolls = 20'000'000;  // >= seconds with s_sleep
  hipLaunchKernelGGL(gpu_pong, dim3(1), dim3(1), 0, nullptr, control.get(), rounds, kMaxGpuPolls);
  GMEM_HIP_CHECK_LAUNCH();

  WallTimer timer;
  bool ok = true;
  std::uint32_t completed = 0;
  for (std::uint32_t round = 0; round < rounds && ok; ++round) {
    control->message = message_for_round(round);
    __atomic_store_n(&control->flag, ping_value(round), __ATOMIC_RELEASE);
    WallTimer wait;
    while (__atomic_load_n(&control->flag, __ATOMIC_ACQUIRE) != pong_value(round)) {
      if (__atomic_load_n(&control->gpu_error, __ATOMIC_ACQUIRE) != 0 || wait.seconds() > 10.0) {
        ok = false;
        break;
      }
      std::this_thread::yield();
    }
    if (ok && control->reply != reply_for_message(message_for_round(round))) ok = false;
    if (ok) ++completed;
  }
  __atomic_store_n(&control->abort, 1u, __ATOMIC_RELEASE);
  GMEM_HIP_CHECK(hipDeviceSynchronize());
  const double seconds = timer.seconds();
  if (control->gpu_error != 0)
    std::printf("  GPU side reported %s\n",
                control->gpu_error == kGpuErrorTimeout ? "a timeout" : "a wrong message");
  std::printf("  %u/%u message round trips through a flag (acquire/release, system scope): %s",
              completed, rounds, ok ? "ok" : "FAILED");
  if (completed != 0) std::printf(", %.1f us per round trip", seconds / completed * 1e6);
  std::printf("\n");
  result.add("round_trips", static_cast<std::uint64_t>(completed));
  if (completed != 0) result.add("round_trip_us", seconds / completed * 1e6, 1);
  return ok && completed == rounds;
}

int run(ResultLine& result, int argc, char** argv) {
  CommandLine args(argc, argv, {"elements", "steps", "atomic-adds", "ping-rounds", "device"}, {});
  const std::uint64_t count = parse_unsigned(args.value_or("elements", "16777216"), "--elements");
  const auto steps = static_cast<std::uint32_t>(parse_unsigned(args.value_or("steps", "8"), "--steps"));
  const auto adds =
      static_cast<std::uint32_t>(parse_unsigned(args.value_or("atomic-adds", "1000"), "--atomic-adds"));
  const auto rounds =
      static_cast<std::uint32_t>(parse_unsigned(args.value_or("ping-rounds", "100"), "--ping-rounds"));
  const int device = static_cast<int>(parse_unsigned(args.value_or("device", "0"), "--device"));
  if (count == 0 || steps == 0 || steps > 1000)
    throw UsageError("--elements must be >= 1 and --steps between 1 and 1000");

  const GpuInfo gpu = require_xnack_gpu(device);
  print_gpu(gpu);
  GMEM_HIP_CHECK(hipSetDevice(device));

  auto data = malloc_array<std::uint32_t>(count);
  std::printf("alternating updates of %s of malloc'd memory:\n",
              format_gib(count * sizeof(std::uint32_t)).c_str());
  bool ok = run_alternating_steps(data.get(), count, steps, result);
  std::printf("concurrent atomics on one malloc'd counter:\n");
  ok = run_concurrent_atomics(adds, result) && ok;
  std::printf("message passing through malloc'd memory:\n");
  ok = run_ping_pong(device, rounds, result) && ok;
  std::printf(ok ? "verified: every step, the atomic total and every message\n"
                 : "FAILED: see the lines above\n");
  return ok ? kExitVerified : kExitMismatch;
}

}  // namespace

int main(int argc, char** argv) {
  return run_sample_main("coherence", kUsage,
                         [&](ResultLine& result) { return run(result, argc, argv); });
}
