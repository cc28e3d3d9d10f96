// State of the fake HIP runtime (fake_hip_runtime.cpp): hipLaunchHostFunc
// queues host functions per stream, and a test runs a stream's queue when
// it wants the stream to "reach" them.
#pragma once

#include <cstddef>
#include <deque>
#include <map>

namespace gmem::thunk::testing {

struct FakeHipRuntime {
  using HostFunction = void (*)(void*);
  struct Queued {
    HostFunction function;
    void* data;
  };

  int launch_result = 0;  // hipError_t hipLaunchHostFunc returns
  int launch_calls = 0;
  std::map<void*, std::deque<Queued>> streams;

  // Runs what `stream` holds, in order; returns how many ran.
  std::size_t run(void* stream) {
    std::size_t count = 0;
    auto& queue = streams[stream];
    while (!queue.empty()) {
      Queued next = queue.front();
      queue.pop_front();
      next.function(next.data);
      ++count;
    }
    return count;
  }
  std::size_t pending(void* stream) { return streams[stream].size(); }
  void reset() { *this = FakeHipRuntime(); }
};

}  // namespace gmem::thunk::testing

extern "C" gmem::thunk::testing::FakeHipRuntime* fake_hip_runtime_state();
