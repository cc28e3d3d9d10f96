// State of the fake HSA runtime (fake_hsa_runtime.cpp), a shared library
// with ROCr's entry points that the thunk loads instead of
// libhsa-runtime64. It records every call and answers as the test sets.
// The test reaches the same state by dlopen()ing the same file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <hsa/hsa.h>
#include <hsa/hsa_ext_amd.h>

namespace gmem::thunk::testing {

struct FakeHsaAgent {
  std::uint64_t handle;
  std::uint32_t node_id;  // HSA_AMD_AGENT_INFO_DRIVER_NODE_ID
};

struct FakeHsaCall {
  std::string function;  // "hsa_amd_svm_attributes_set", ...
  std::uintptr_t start = 0;
  std::size_t size = 0;
  std::vector<hsa_amd_svm_attribute_pair_t> attributes;
  std::uint64_t agent = 0;
  std::uint32_t dependency_count = 0;
  std::uint64_t signal = 0;
};

struct FakeHsaRuntime {
  // Answers.
  std::vector<FakeHsaAgent> agents;
  hsa_status_t init_result = HSA_STATUS_SUCCESS;
  hsa_status_t get_result = HSA_STATUS_SUCCESS;
  hsa_status_t set_result = HSA_STATUS_SUCCESS;
  hsa_status_t prefetch_result = HSA_STATUS_SUCCESS;
  // What a prefetch leaves in its completion signal: 0 when the migration
  // is done, negative when the runtime reports it failed.
  hsa_signal_value_t prefetch_completion = 0;

  // Records.
  int init_count = 0;
  int shut_down_count = 0;
  std::vector<FakeHsaCall> calls;
  std::vector<std::uint64_t> live_signals;

  void reset() { *this = FakeHsaRuntime(); }
  std::vector<std::string> function_names() const {
    std::vector<std::string> names;
    for (const FakeHsaCall& call : calls) names.push_back(call.function);
    return names;
  }
};

}  // namespace gmem::thunk::testing

extern "C" gmem::thunk::testing::FakeHsaRuntime* fake_hsa_runtime_state();
