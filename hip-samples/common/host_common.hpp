// Host-side helpers shared by every HIP sample: exit codes, the uniform
// result line, timing, command-line parsing, XNACK detection from the
// architecture name, host memory size, data patterns and checksums.
//
// This header is compiled both by the host compiler (unit tests) and by
// hipcc (samples), so the pattern functions that GPU kernels also use are
// marked GMEM_HD.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__HIPCC__)
#define GMEM_HD __host__ __device__
#else
#define GMEM_HD
#endif

namespace gmem_samples {

// Exit codes shared by all samples; scripts/run-samples reads them.
enum ExitCode : int {
  kExitVerified = 0,       // ran and every check passed
  kExitMismatch = 1,       // ran, but a result was wrong
  kExitError = 2,          // bad arguments or a runtime/HIP error
  kExitCannotRun = 3,  // no GPU, no XNACK or too little host memory: nothing ran
};

// Thrown for bad command-line input; samples print it with their usage.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by CommandLine for --help or -h: the sample prints its usage and
// exits 0, having run nothing.
class HelpRequested : public std::exception {
 public:
  const char* what() const noexcept override { return "help requested"; }
};

// One line per sample run, always in the same shape so it can be collected:
//   RESULT sample=<name> status=<PASS|FAIL|SKIP> key=value ...
class ResultLine {
 public:
  explicit ResultLine(std::string sample) : sample_(std::move(sample)) {}
  ResultLine& add(const std::string& key, const std::string& value);
  ResultLine& add(const std::string& key, double value, int decimals = 2);
  ResultLine& add(const std::string& key, std::uint64_t value);
  std::string format(const std::string& status) const;

 private:
  std::string sample_;
  std::vector<std::pair<std::string, std::string>> fields_;
};

const char* status_for_exit_code(int exit_code);

class WallTimer {
 public:
  WallTimer() : start_(std::chrono::steady_clock::now()) {}
  void restart() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

constexpr double kBytesPerGiB = 1024.0 * 1024.0 * 1024.0;
inline double to_gib(std::uint64_t bytes) { return static_cast<double>(bytes) / kBytesPerGiB; }
// Decimal GB/s, as bandwidth is usually quoted.
double gigabytes_per_second(std::uint64_t bytes, double seconds);
std::string format_gib(std::uint64_t bytes);

// "4096", "64K", "1.5G", "2GiB", "512M" -> bytes. Throws UsageError.
std::uint64_t parse_byte_size(const std::string& text);
double parse_positive_double(const std::string& text, const std::string& what);
std::uint64_t parse_unsigned(const std::string& text, const std::string& what);
// "1,2,3" -> {1,2,3}. Throws UsageError.
std::vector<double> parse_double_list(const std::string& text, const std::string& what);
std::vector<int> parse_int_list(const std::string& text, const std::string& what);

// Minimal "--name=value", "--name value" and "--flag" parser. Options not in
// `known` are rejected so a typo never silently runs the default.
class CommandLine {
 public:
  CommandLine(int argc, const char* const* argv, const std::vector<std::string>& known_options,
              const std::vector<std::string>& known_flags);
  bool has(const std::string& name) const;
  std::optional<std::string> value(const std::string& name) const;
  std::string value_or(const std::string& name, const std::string& fallback) const;

 private:
  std::map<std::string, std::string> values_;
};

// XNACK state as reported in an AMD architecture name such as
// "gfx90a:sramecc+:xnack+". A GPU without the feature listed cannot take
// recoverable page faults in this process, so malloc'd memory is unusable.
enum class XnackMode { kEnabled, kDisabled, kNotReported };
XnackMode xnack_mode_from_arch_name(const std::string& arch_name);

// Whether a GPU can use malloc'd memory in this process. HIP's
// hipDeviceAttributePageableMemoryAccess decides: it is set only when the
// GPU retries faults (XNACK) and the kernel mirrors the process (HMM/SVM).
// The architecture name's xnack flag only explains a refusal or a surprise.
struct MallocAccess {
  bool usable = false;
  std::string explanation;  // why not, or a caveat when usable; may be empty
};
MallocAccess assess_malloc_access(bool pageable_memory_access, const std::string& arch_name);
// "gfx90a:sramecc+:xnack+" -> "gfx90a".
std::string base_arch_name(const std::string& arch_name);

// Figures measured once per run mode (hints on, hints off, a baseline...),
// printed side by side: one row per figure, one column per mode, in the
// order rows and columns were first given. Unset cells show "-".
class SideBySide {
 public:
  explicit SideBySide(std::string row_heading) : row_heading_(std::move(row_heading)) {}
  void set(const std::string& row, const std::string& column, const std::string& text);
  std::string format() const;

 private:
  std::string row_heading_;
  std::vector<std::string> rows_;
  std::vector<std::string> columns_;
  std::map<std::pair<std::string, std::string>, std::string> cells_;
};

// MemAvailable from a /proc/meminfo text, in bytes; nullopt if missing.
std::optional<std::uint64_t> parse_meminfo_available(const std::string& meminfo_text);
// Same, reading /proc/meminfo; nullopt if unreadable.
std::optional<std::uint64_t> host_available_bytes();

// Splits [0, count) into contiguous chunks over hardware threads.
void parallel_for(std::size_t count,
                  const std::function<void(std::size_t begin, std::size_t end)>& body);

// Deterministic test data. Kernels and CPU checks call the same functions.
GMEM_HD inline std::uint32_t pattern_value(std::uint64_t index, std::uint32_t seed) {
  // Knuth's multiplicative hash of the index, mixed with the seed: cheap and
  // different for neighbouring elements, so misplaced pages are caught.
  std::uint64_t x = (index + 1) * 0x9E3779B97F4A7C15ull ^ (static_cast<std::uint64_t>(seed) << 17);
  x ^= x >> 29;
  return static_cast<std::uint32_t>(x);
}

// One streaming pass over a buffer: a full-period LCG step plus the pass
// number, so a skipped or repeated pass changes every element.
GMEM_HD inline std::uint32_t stream_pass_update(std::uint32_t value, std::uint32_t pass) {
  return value * 1664525u + 1013904223u + pass;
}

// Order-independent checksum: the sum over elements of a hash of
// (index, value). Chunks can be summed in any order or in parallel, and a
// value at the wrong index changes the result.
GMEM_HD inline std::uint64_t checksum_term(std::uint64_t index, std::uint32_t value) {
  std::uint64_t x = index * 0xD1B54A32D192ED03ull + value;
  x ^= x >> 31;
  x *= 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  return x;
}

std::uint64_t checksum_range(const std::uint32_t* data, std::uint64_t first_index,
                             std::uint64_t count);
// Parallel checksum of data[0, count).
std::uint64_t checksum_parallel(const std::uint32_t* data, std::uint64_t count);
// Checksum the buffer would have if element i held expected(i).
std::uint64_t checksum_expected_parallel(std::uint64_t count,
                                         const std::function<std::uint32_t(std::uint64_t)>& expected);

// First index where data[i] != expected(i), or nullopt. Parallel.
std::optional<std::uint64_t> first_mismatch(const std::uint32_t* data, std::uint64_t count,
                                            const std::function<std::uint32_t(std::uint64_t)>& expected);

}  // namespace gmem_samples
