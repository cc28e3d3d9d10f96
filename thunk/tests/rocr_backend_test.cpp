// The rocr backend against a fake HSA runtime library: the thunk loads it
// with dlopen() exactly as it loads libhsa-runtime64, and the fake records
// each ROCr call with its arguments.
#include <dlfcn.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fake_kernel.h"
#include "fake_runtimes/fake_hsa_runtime.h"
#include "fake_sysfs.h"
#include "session.h"

namespace gmem::thunk {
namespace {

using testing::FakeHsaAgent;
using testing::FakeHsaRuntime;
using testing::FakeKernel;
using testing::FakeSysfs;

constexpr std::size_t kPage = 4096;
constexpr std::uintptr_t kBuffer = 0x7f0000600000;
constexpr std::uint64_t kSize = 0x200000;
constexpr std::uint64_t kCpuAgent = 0x100, kGpu1Agent = 0x200, kGpu2Agent = 0x300;

FakeHsaRuntime* fake_runtime() {
  static FakeHsaRuntime* runtime = [] {
    void* handle = dlopen(GMEM_FAKE_HSA_RUNTIME, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return static_cast<FakeHsaRuntime*>(nullptr);
    auto state = reinterpret_cast<FakeHsaRuntime* (*)()>(
        dlsym(handle, "fake_hsa_runtime_state"));
    return state != nullptr ? state() : nullptr;
  }();
  return runtime;
}

class RocrBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_ = fake_runtime();
    ASSERT_NE(runtime_, nullptr) << "cannot load " << GMEM_FAKE_HSA_RUNTIME;
    runtime_->reset();
    runtime_->agents = {{kCpuAgent, 0}, {kGpu1Agent, 1}, {kGpu2Agent, 2}};
    sysfs_.add_stock_machine();
  }
  void TearDown() override {
    session_.reset();
    if (runtime_ != nullptr) runtime_->reset();
  }

  Status open(BackendRequest request,
              const std::string& library = GMEM_FAKE_HSA_RUNTIME) {
    SessionOptions options;
    options.sysfs_root = sysfs_.root();
    options.request = request;
    options.page_size = kPage;
    options.hsa_runtime = library;
    return Session::open(kernel_, options, &session_, &report_);
  }

  // Opens on the rocr backend and forgets the calls of the selection.
  void open_rocr() {
    Status status = open(BackendRequest::rocr_svm);
    ASSERT_TRUE(status.ok()) << status.message;
    ASSERT_EQ(session_->backend(), Backend::rocr_svm);
    runtime_->calls.clear();
  }

  Status advise(std::uint32_t node, std::uint32_t hint, std::uint64_t size = kSize) {
    return session_->advise({node, kBuffer, size, hint});
  }

  FakeHsaRuntime* runtime_ = nullptr;
  FakeSysfs sysfs_;
  FakeKernel kernel_;
  std::unique_ptr<Session> session_;
  SelectionReport report_;
};

// --- Selection ---

TEST_F(RocrBackendTest, AutoPicksRocrOnAStockKernelAndShutsItDownAtClose) {
  ASSERT_TRUE(open(BackendRequest::automatic).ok());
  EXPECT_EQ(session_->backend(), Backend::rocr_svm);
  EXPECT_EQ(runtime_->function_names(),
            (std::vector<std::string>{"hsa_init", "hsa_iterate_agents",
                                      "hsa_amd_svm_attributes_get"}));
  // The SVM probe asks for the migration granularity of one page.
  const auto& probe = runtime_->calls[2];
  EXPECT_EQ(probe.size, kPage);
  ASSERT_EQ(probe.attributes.size(), 1u);
  EXPECT_EQ(probe.attributes[0].attribute, HSA_AMD_SVM_ATTRIB_MIGRATION_GRANULARITY);
  EXPECT_EQ(kernel_.open_calls, 0);  // libhsakmt is not needed
  EXPECT_EQ(report_.steps.back(), "backend: rocr");
  session_.reset();
  EXPECT_EQ(runtime_->init_count, 0);
  EXPECT_EQ(runtime_->shut_down_count, 1);
}

TEST_F(RocrBackendTest, AutoOnAGmemKernelKeepsTheSyscallAndNeverStartsRocr) {
  FakeSysfs gmem;
  gmem.add_gmem_machine();
  kernel_.hmadvise_results = {EINVAL};
  SessionOptions options;
  options.sysfs_root = gmem.root();
  options.hsa_runtime = GMEM_FAKE_HSA_RUNTIME;
  ASSERT_TRUE(Session::open(kernel_, options, &session_, nullptr).ok());
  EXPECT_EQ(session_->backend(), Backend::syscall);
  EXPECT_TRUE(runtime_->calls.empty());
}

TEST_F(RocrBackendTest, ForcedRocrWithoutTheRuntimeLibraryFails) {
  Status status = open(BackendRequest::rocr_svm, "/nonexistent/libhsa-runtime64.so.1");
  EXPECT_EQ(status.code, HSAKMT_STATUS_NOT_SUPPORTED);
  EXPECT_NE(status.message.find("cannot load the HSA runtime /nonexistent/"),
            std::string::npos)
      << status.message;
  EXPECT_EQ(kernel_.open_calls, 0);  // forced: no fallback to libhsakmt
}

TEST_F(RocrBackendTest, ALibraryWithoutTheSvmApiIsRefused) {
  Status status = open(BackendRequest::rocr_svm, "libm.so.6");
  EXPECT_EQ(status.code, HSAKMT_STATUS_NOT_SUPPORTED);
  EXPECT_NE(status.message.find("lacks the SVM API (missing hsa_init,"), std::string::npos)
      << status.message;
}

TEST_F(RocrBackendTest, FailedHsaInitFallsBackToKfdAndSaysWhy) {
  runtime_->init_result = HSA_STATUS_ERROR_OUT_OF_RESOURCES;
  Status status = open(BackendRequest::automatic);
  ASSERT_TRUE(status.ok()) << status.message;
  EXPECT_EQ(session_->backend(), Backend::kfd_svm);
  EXPECT_EQ(runtime_->shut_down_count, 0);  // nothing to balance
  bool explained = false;
  for (const std::string& step : report_.steps)
    explained |= step.find("hsa_init() failed: HSA_STATUS_ERROR_OUT_OF_RESOURCES") !=
                 std::string::npos;
  EXPECT_TRUE(explained);
}

TEST_F(RocrBackendTest, RuntimeWithoutSvmIsShutDownAgain) {
  runtime_->get_result = HSA_STATUS_ERROR;
  Status status = open(BackendRequest::rocr_svm);
  EXPECT_EQ(status.code, HSAKMT_STATUS_NOT_SUPPORTED);
  EXPECT_NE(status.message.find("SVM attribute probe"), std::string::npos);
  EXPECT_EQ(runtime_->init_count, 0);
  EXPECT_EQ(runtime_->shut_down_count, 1);
}

TEST_F(RocrBackendTest, EveryBackendFailingNamesAllThree) {
  runtime_->init_result = HSA_STATUS_ERROR;
  kernel_.open_result = HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
  Status status = open(BackendRequest::automatic);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message.find("no hmadvise system call"), std::string::npos);
  EXPECT_NE(status.message.find("ROCr SVM backend unusable: hsa_init()"), std::string::npos);
  EXPECT_NE(status.message.find("KFD SVM backend unusable"), std::string::npos);
}

// --- Hints: the exact ROCr calls ---

TEST_F(RocrBackendTest, PrefetchIsAnAsyncPrefetchWaitedForOnItsOwnSignal) {
  open_rocr();
  ASSERT_TRUE(advise(1, HSA_GMEM_HINT_PREFETCH, kSize - 10).ok());
  ASSERT_EQ(runtime_->function_names(),
            (std::vector<std::string>{"hsa_signal_create", "hsa_amd_svm_prefetch_async",
                                      "hsa_signal_wait_scacquire", "hsa_signal_destroy"}));
  const auto& prefetch = runtime_->calls[1];
  EXPECT_EQ(prefetch.start, kBuffer);
  EXPECT_EQ(prefetch.size, kSize);  // rounded up to pages
  EXPECT_EQ(prefetch.agent, kGpu1Agent);
  EXPECT_EQ(prefetch.dependency_count, 0u);
  EXPECT_EQ(prefetch.signal, runtime_->calls[0].signal);
  EXPECT_NE(prefetch.signal, 0u);
  EXPECT_TRUE(runtime_->live_signals.empty());
}

TEST_F(RocrBackendTest, PrefetchToTheCpuNodeTargetsTheCpuAgent) {
  open_rocr();
  ASSERT_TRUE(advise(0, HSA_GMEM_HINT_PREFETCH).ok());
  EXPECT_EQ(runtime_->calls[1].agent, kCpuAgent);
}

TEST_F(RocrBackendTest, DontneedOnAGpuMigratesToSystemMemory) {
  open_rocr();
  ASSERT_TRUE(advise(2, HSA_GMEM_HINT_DONTNEED).ok());
  ASSERT_EQ(runtime_->calls.size(), 4u);
  EXPECT_EQ(runtime_->calls[1].function, "hsa_amd_svm_prefetch_async");
  EXPECT_EQ(runtime_->calls[1].agent, kCpuAgent);
}

TEST_F(RocrBackendTest, AMigrationTheRuntimeReportsFailedIsAnError) {
  open_rocr();
  runtime_->prefetch_completion = -1;
  Status status = advise(1, HSA_GMEM_HINT_PREFETCH);
  EXPECT_EQ(status.code, HSAKMT_STATUS_ERROR);
  EXPECT_NE(status.message.find("completion signal -1"), std::string::npos) << status.message;
  EXPECT_TRUE(runtime_->live_signals.empty());
}

TEST_F(RocrBackendTest, ARefusedPrefetchMapsItsStatusAndFreesTheSignal) {
  open_rocr();
  runtime_->prefetch_result = HSA_STATUS_ERROR_INVALID_AGENT;
  Status status = advise(1, HSA_GMEM_HINT_PREFETCH);
  EXPECT_EQ(status.code, HSAKMT_STATUS_INVALID_NODE_UNIT);
  EXPECT_NE(status.message.find("HSA_STATUS_ERROR_INVALID_AGENT"), std::string::npos);
  EXPECT_EQ(runtime_->function_names().back(), "hsa_signal_destroy");
  EXPECT_TRUE(runtime_->live_signals.empty());
}

TEST_F(RocrBackendTest, EachAttributeHintSetsExactlyOnePair) {
  struct Case {
    std::uint32_t hint;
    std::uint32_t node;
    std::uint64_t attribute;
    std::uint64_t value;
  };
  const Case cases[] = {
      {HSA_GMEM_HINT_PREFERRED_LOC, 1, HSA_AMD_SVM_ATTRIB_PREFERRED_LOCATION, kGpu1Agent},
      {HSA_GMEM_HINT_PREFERRED_LOC, 0, HSA_AMD_SVM_ATTRIB_PREFERRED_LOCATION, kCpuAgent},
      {HSA_GMEM_HINT_UNSET_PREFERRED_LOC, 2, HSA_AMD_SVM_ATTRIB_PREFERRED_LOCATION, 0},
      {HSA_GMEM_HINT_ACCESSED_BY, 2, HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE_IN_PLACE, kGpu2Agent},
      {HSA_GMEM_HINT_UNSET_ACCESSED_BY, 2, HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE, kGpu2Agent},
      {HSA_GMEM_HINT_NO_ACCESS, 1, HSA_AMD_SVM_ATTRIB_AGENT_NO_ACCESS, kGpu1Agent},
      {HSA_GMEM_HINT_UNSET_NO_ACCESS, 1, HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE, kGpu1Agent},
      {HSA_GMEM_HINT_READ_MOSTLY, 1, HSA_AMD_SVM_ATTRIB_READ_MOSTLY, 1},
      {HSA_GMEM_HINT_UNSET_READ_MOSTLY, 0, HSA_AMD_SVM_ATTRIB_READ_MOSTLY, 0},
  };
  open_rocr();
  for (const Case& test : cases) {
    SCOPED_TRACE(hint_name(test.hint));
    runtime_->calls.clear();
    Status status = advise(test.node, test.hint);
    ASSERT_TRUE(status.ok()) << status.message;
    ASSERT_EQ(runtime_->calls.size(), 1u);
    const auto& call = runtime_->calls[0];
    EXPECT_EQ(call.function, "hsa_amd_svm_attributes_set");
    EXPECT_EQ(call.start, kBuffer);
    EXPECT_EQ(call.size, kSize);
    ASSERT_EQ(call.attributes.size(), 1u);
    EXPECT_EQ(call.attributes[0].attribute, test.attribute);
    EXPECT_EQ(call.attributes[0].value, test.value);
  }
}

TEST_F(RocrBackendTest, PinHasNoEquivalentAndCallsNothing) {
  open_rocr();
  for (std::uint32_t hint : {HSA_GMEM_HINT_PIN, HSA_GMEM_HINT_UNPIN}) {
    Status status = advise(1, hint);
    EXPECT_EQ(status.code, HSA_GMEM_STATUS_NO_EQUIVALENT);
    EXPECT_NE(status.message.find("no ROCr SVM equivalent"), std::string::npos);
  }
  EXPECT_TRUE(runtime_->calls.empty());
}

TEST_F(RocrBackendTest, DiscardWithoutANodeIsMadvise) {
  open_rocr();
  ASSERT_TRUE(advise(HSA_GMEM_NO_NODE, HSA_GMEM_HINT_DONTNEED, 1).ok());
  ASSERT_EQ(kernel_.madvise_calls.size(), 1u);
  EXPECT_EQ(kernel_.madvise_calls[0].len, kPage);
  EXPECT_TRUE(runtime_->calls.empty());
}

TEST_F(RocrBackendTest, ANodeRocrDoesNotListIsRefusedBeforeAnyCall) {
  // ROCR_VISIBLE_DEVICES=0 hides the second GPU from ROCr.
  runtime_->agents = {{kCpuAgent, 0}, {kGpu1Agent, 1}};
  open_rocr();
  for (std::uint32_t hint : {HSA_GMEM_HINT_PREFETCH, HSA_GMEM_HINT_ACCESSED_BY}) {
    Status status = advise(2, hint);
    EXPECT_EQ(status.code, HSAKMT_STATUS_INVALID_NODE_UNIT);
    EXPECT_NE(status.message.find("KFD node 2 has no ROCr agent"), std::string::npos);
  }
  EXPECT_TRUE(runtime_->calls.empty());
}

TEST_F(RocrBackendTest, ARefusedSetNamesTheCallAndTheRuntimeStatus) {
  open_rocr();
  runtime_->set_result = HSA_STATUS_ERROR_INVALID_ARGUMENT;
  Status status = advise(1, HSA_GMEM_HINT_ACCESSED_BY);
  EXPECT_EQ(status.code, HSAKMT_STATUS_INVALID_PARAMETER);
  EXPECT_NE(status.message.find("hsa_amd_svm_attributes_set(0x7f0000600000, 0x200000, "
                                "{HSA_AMD_SVM_ATTRIB_AGENT_ACCESSIBLE_IN_PLACE=agent of "
                                "KFD node 1}): hsa_amd_svm_attributes_set failed: "
                                "HSA_STATUS_ERROR_INVALID_ARGUMENT"),
            std::string::npos)
      << status.message;
}

TEST_F(RocrBackendTest, BadInputNeverReachesTheRuntime) {
  open_rocr();
  EXPECT_EQ(session_->advise({1, kBuffer + 1, kSize, HSA_GMEM_HINT_PREFETCH}).code,
            HSAKMT_STATUS_MEMORY_ALIGNMENT);
  EXPECT_EQ(session_->advise({7, kBuffer, kSize, HSA_GMEM_HINT_PREFETCH}).code,
            HSAKMT_STATUS_INVALID_NODE_UNIT);
  EXPECT_EQ(session_->advise({0, kBuffer, kSize, HSA_GMEM_HINT_NO_ACCESS}).code,
            HSAKMT_STATUS_INVALID_NODE_UNIT);
  EXPECT_TRUE(runtime_->calls.empty());
}

}  // namespace
}  // namespace gmem::thunk
