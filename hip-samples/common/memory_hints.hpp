// MemoryHints: the placement hints the samples give, on the project's thunk
// (hsakmt-gmem's C API), addressed by HIP device ordinal and hipStream_t.
//
//   MemoryHints hints(HintsMode::kOn);         // opens the thunk, closes at scope end
//   hints.prefetch_async(weights, bytes, 0, stream);
//   if (!hints.pin(hot, hot_bytes, 0)) ...     // this kernel cannot pin: see declined()
//
// HintsMode::kOff gives no hint at all and never opens the thunk, so the
// same program runs once with hints and once without and the difference is
// the hints' effect. With hints on, every failure throws HintError with the
// thunk's message, except a hint the running kernel has no equivalent for
// (PIN on a stock ROCm kernel): that call returns false and the hint is
// listed in declined(), for the sample to print.
//
// Host code without HIP headers (streams are passed as void*), so it is
// unit-tested without a GPU; thunk types stay in memory_hints_thunk.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace gmem_samples {

// HIP's hipCpuDeviceId: host memory instead of a GPU.
constexpr int kHostDevice = -1;

enum class HintsMode { kOn, kOff };
const char* hints_mode_name(HintsMode mode);  // "on", "off"
// "--hints" values: "on", "off", or "both" (on, then off). Throws UsageError.
std::vector<HintsMode> parse_hints_modes(const std::string& text);

class HintError : public std::runtime_error {
 public:
  HintError(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }  // the HSAKMT_STATUS

 private:
  int status_;
};

// Hints apply to whole pages: [start, start + bytes) widened to the pages it
// touches, which is what the thunk accepts (page-aligned start).
struct PageSpan {
  std::uintptr_t start = 0;
  std::uint64_t bytes = 0;
};
PageSpan page_span(const void* start, std::size_t bytes, std::size_t page_size);

class ThunkApi;  // memory_hints_thunk.hpp
// The real thunk: forwards to hsakmt-gmem's exported C functions.
std::unique_ptr<ThunkApi> thunk_c_api();

class MemoryHints {
 public:
  explicit MemoryHints(HintsMode mode);
  // For tests: hints through `api` instead of the library.
  MemoryHints(HintsMode mode, std::unique_ptr<ThunkApi> api);
  // Unpins what is still pinned, then closes the thunk. Failures here are
  // printed on stderr (a destructor cannot throw them).
  ~MemoryHints();
  MemoryHints(const MemoryHints&) = delete;
  MemoryHints& operator=(const MemoryHints&) = delete;

  HintsMode mode() const { return mode_; }
  bool enabled() const { return mode_ == HintsMode::kOn; }
  // "on: hsakmt-gmem, rocr backend" or "off: no hints given".
  std::string describe() const;

  // Each returns true when the hint was given, false when hints are off or
  // the running kernel has no equivalent (then declined() says which).
  // `device` is a HIP ordinal or kHostDevice.
  bool prefetch(const void* start, std::size_t bytes, int device);
  // Ordered on `stream` (a hipStream_t; nullptr is the null stream).
  bool prefetch_async(const void* start, std::size_t bytes, int device, void* stream);
  bool set_preferred_location(const void* start, std::size_t bytes, int device);
  bool set_accessed_by(const void* start, std::size_t bytes, int gpu);
  bool set_read_mostly(const void* start, std::size_t bytes);
  bool unset_read_mostly(const void* start, std::size_t bytes);
  // Keeps the range resident on `device` until unpin() or destruction.
  bool pin(const void* start, std::size_t bytes, int device);
  bool unpin(const void* start, std::size_t bytes, int device);

  // Throws HintError for the first stream-ordered prefetch that failed
  // since the last call. Call after synchronizing the streams.
  void check_async();

  std::uint64_t hints_given() const { return given_; }
  const std::vector<std::string>& declined() const { return declined_; }

 private:
  struct Pinned {
    std::uintptr_t start;
    std::uint64_t bytes;
    int device;
  };
  bool give(int hint, const char* what, const void* start, std::size_t bytes, int device);
  std::uint32_t node_of(int device);
  [[noreturn]] void fail(int status, const std::string& what);

  HintsMode mode_;
  std::unique_ptr<ThunkApi> api_;
  bool opened_ = false;
  std::string backend_name_;
  std::size_t page_size_ = 4096;
  std::uint64_t given_ = 0;
  std::vector<std::string> declined_;
  std::vector<Pinned> pinned_;
};

}  // namespace gmem_samples
