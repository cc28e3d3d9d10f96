// Stream ordering through the HIP runtime of the calling program, found at
// run time so the library itself never links HIP: a program that passes a
// hipStream_t has libamdhip64 loaded already.
#pragma once

#include <string>

#include "status.h"

namespace gmem::thunk {

// Environment variable naming the HIP runtime library to use when the
// program's own cannot be found (a soname or a path).
inline constexpr const char kHipRuntimeEnvironmentVariable[] = "GMEM_THUNK_HIP_RUNTIME";

class HipStreams {
 public:
  using HostFunction = void (*)(void* data);

  // `library` empty: the program's HIP runtime (its global symbols, else an
  // already loaded libamdhip64); otherwise that library is loaded.
  static Status find(const std::string& library, HipStreams* streams);

  // hipLaunchHostFunc(stream, function, data): `function(data)` runs after
  // the work queued on `stream` before it, and work queued later waits for
  // it to return.
  Status enqueue(void* stream, HostFunction function, void* data) const;

 private:
  using LaunchHostFunc = int (*)(void* stream, HostFunction function, void* data);
  LaunchHostFunc launch_host_func_ = nullptr;
};

}  // namespace gmem::thunk
