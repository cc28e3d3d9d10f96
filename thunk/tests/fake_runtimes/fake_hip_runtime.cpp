// A stand-in for libamdhip64 with the one entry point the thunk uses.
#include "fake_hip_runtime.h"

using gmem::thunk::testing::FakeHipRuntime;

namespace {
FakeHipRuntime& state() {
  static FakeHipRuntime instance;
  return instance;
}
}  // namespace

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

FAKE_EXPORT FakeHipRuntime* fake_hip_runtime_state() { return &state(); }

// hipError_t hipLaunchHostFunc(hipStream_t, hipHostFn_t, void*).
FAKE_EXPORT int hipLaunchHostFunc(void* stream, void (*function)(void*), void* data) {
  ++state().launch_calls;
  if (state().launch_result != 0) return state().launch_result;
  state().streams[stream].push_back({function, data});
  return 0;
}
