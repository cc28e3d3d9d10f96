// A stand-in for libhsa-runtime64 with the entry points the thunk's rocr
// backend resolves. Nothing here touches a device.
#include "fake_hsa_runtime.h"

#include <map>

using gmem::thunk::testing::FakeHsaCall;
using gmem::thunk::testing::FakeHsaRuntime;

namespace {

FakeHsaRuntime& state() {
  static FakeHsaRuntime instance;
  return instance;
}

// Signal handles are numbered; the value lives here.
std::map<std::uint64_t, hsa_signal_value_t>& signal_values() {
  static std::map<std::uint64_t, hsa_signal_value_t> values;
  return values;
}

FakeHsaCall named(const char* function) {
  FakeHsaCall call;
  call.function = function;
  return call;
}

void record(FakeHsaCall call) { state().calls.push_back(std::move(call)); }

}  // namespace

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

FAKE_EXPORT FakeHsaRuntime* fake_hsa_runtime_state() { return &state(); }

FAKE_EXPORT hsa_status_t hsa_init() {
  record(named("hsa_init"));
  if (state().init_result == HSA_STATUS_SUCCESS) ++state().init_count;
  return state().init_result;
}

FAKE_EXPORT hsa_status_t hsa_shut_down() {
  record(named("hsa_shut_down"));
  if (state().init_count == 0) return HSA_STATUS_ERROR_NOT_INITIALIZED;
  --state().init_count;
  ++state().shut_down_count;
  return HSA_STATUS_SUCCESS;
}

FAKE_EXPORT hsa_status_t hsa_iterate_agents(
    hsa_status_t (*callback)(hsa_agent_t agent, void* data), void* data) {
  record(named("hsa_iterate_agents"));
  if (state().init_count == 0) return HSA_STATUS_ERROR_NOT_INITIALIZED;
  for (const auto& agent : state().agents) {
    hsa_status_t status = callback(hsa_agent_t{agent.handle}, data);
    if (status == HSA_STATUS_INFO_BREAK) return HSA_STATUS_SUCCESS;
    if (status != HSA_STATUS_SUCCESS) return status;
  }
  return HSA_STATUS_SUCCESS;
}

FAKE_EXPORT hsa_status_t hsa_agent_get_info(hsa_agent_t agent,
                                            hsa_agent_info_t attribute,
                                            void* value) {
  if (static_cast<int>(attribute) != HSA_AMD_AGENT_INFO_DRIVER_NODE_ID)
    return HSA_STATUS_ERROR_INVALID_ARGUMENT;
  for (const auto& known : state().agents) {
    if (known.handle == agent.handle) {
      *static_cast<std::uint32_t*>(value) = known.node_id;
      return HSA_STATUS_SUCCESS;
    }
  }
  return HSA_STATUS_ERROR_INVALID_AGENT;
}

FAKE_EXPORT hsa_status_t hsa_signal_create(hsa_signal_value_t initial_value,
                                           uint32_t, const hsa_agent_t*,
                                           hsa_signal_t* signal) {
  static std::uint64_t next_handle = 0x5000;
  signal->handle = ++next_handle;
  signal_values()[signal->handle] = initial_value;
  state().live_signals.push_back(signal->handle);
  FakeHsaCall call = named("hsa_signal_create");
  call.signal = signal->handle;
  record(call);
  return HSA_STATUS_SUCCESS;
}

FAKE_EXPORT hsa_status_t hsa_signal_destroy(hsa_signal_t signal) {
  FakeHsaCall call = named("hsa_signal_destroy");
  call.signal = signal.handle;
  record(call);
  auto& live = state().live_signals;
  for (auto it = live.begin(); it != live.end(); ++it) {
    if (*it == signal.handle) {
      live.erase(it);
      signal_values().erase(signal.handle);
      return HSA_STATUS_SUCCESS;
    }
  }
  return HSA_STATUS_ERROR_INVALID_SIGNAL;
}

FAKE_EXPORT hsa_signal_value_t hsa_signal_wait_scacquire(
    hsa_signal_t signal, hsa_signal_condition_t, hsa_signal_value_t, uint64_t,
    hsa_wait_state_t) {
  FakeHsaCall call = named("hsa_signal_wait_scacquire");
  call.signal = signal.handle;
  record(call);
  return signal_values()[signal.handle];
}

FAKE_EXPORT hsa_status_t hsa_amd_svm_attributes_set(
    void* ptr, size_t size, hsa_amd_svm_attribute_pair_t* attributes,
    size_t count) {
  FakeHsaCall call = named("hsa_amd_svm_attributes_set");
  call.start = reinterpret_cast<std::uintptr_t>(ptr);
  call.size = size;
  call.attributes.assign(attributes, attributes + count);
  record(call);
  return state().set_result;
}

FAKE_EXPORT hsa_status_t hsa_amd_svm_attributes_get(
    void* ptr, size_t size, hsa_amd_svm_attribute_pair_t* attributes,
    size_t count) {
  FakeHsaCall call = named("hsa_amd_svm_attributes_get");
  call.start = reinterpret_cast<std::uintptr_t>(ptr);
  call.size = size;
  call.attributes.assign(attributes, attributes + count);
  record(call);
  return state().get_result;
}

FAKE_EXPORT hsa_status_t hsa_amd_svm_prefetch_async(
    void* ptr, size_t size, hsa_agent_t agent, uint32_t dependency_count,
    const hsa_signal_t*, hsa_signal_t completion) {
  FakeHsaCall call = named("hsa_amd_svm_prefetch_async");
  call.start = reinterpret_cast<std::uintptr_t>(ptr);
  call.size = size;
  call.agent = agent.handle;
  call.dependency_count = dependency_count;
  call.signal = completion.handle;
  record(call);
  if (state().prefetch_result != HSA_STATUS_SUCCESS) return state().prefetch_result;
  // The migration "finishes" at once; a waiter sees the final value.
  if (completion.handle != 0) signal_values()[completion.handle] = state().prefetch_completion;
  return HSA_STATUS_SUCCESS;
}
