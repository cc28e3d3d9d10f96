// The exported C API and the C++ header, on a fake kernel and sysfs.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <dlfcn.h>

#include "fake_kernel.h"
#include "fake_runtimes/fake_hip_runtime.h"
#include "fake_sysfs.h"
#include "gmem/hmadvise.hpp"
#include "gmem/hsakmt_hmadvise.h"
#include "test_hooks.h"

extern "C" HSAKMT_STATUS c_caller_advise_with_raw_hint(HSAuint32 node, void* start,
                                                      HSAuint64 size, uint32_t raw_hint);
extern "C" const char* c_caller_hint_name(uint32_t raw_hint);

namespace gmem::thunk {
namespace {

using testing::FakeKernel;
using testing::FakeSysfs;
using testing::ForwardingKernel;

// Points the library at a fake kernel (owned by the test, so it can be
// inspected) and a fake sysfs, sets GMEM_THUNK_BACKEND, and undoes all of
// it, including any open left behind, at the end.
class CApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sysfs_.add_gmem_machine();
    testing::set_sysfs_root(sysfs_.root());
    // No HSA runtime: these cases are about the syscall and kfd backends.
    testing::set_hsa_runtime("/nonexistent/libhsa-runtime64.so.1");
    testing::set_kernel_factory([this] {
      return std::unique_ptr<KernelInterface>(new ForwardingKernel(kernel_));
    });
    unsetenv("GMEM_THUNK_BACKEND");
  }
  void TearDown() override {
    while (hsaKmtGmemClose() == HSAKMT_STATUS_SUCCESS) {
    }
    testing::set_kernel_factory(nullptr);
    testing::set_sysfs_root("");
    testing::set_hsa_runtime("");
    testing::set_hip_runtime(std::nullopt);
    hsaKmtGmemGetAsyncError();  // nothing carries over to the next case
    unsetenv("GMEM_THUNK_BACKEND");
  }

  FakeSysfs sysfs_;
  FakeKernel kernel_;
  void* const buffer_ = reinterpret_cast<void*>(0x7f0000400000);
};

TEST_F(CApiTest, EverythingNeedsOpenFirst) {
  HSAuint32 count = 0;
  HSA_GMEM_NODE_INFO info{};
  EXPECT_EQ(hsaKmtGmemAdvise(1, buffer_, 4096, HSA_GMEM_HINT_PREFETCH),
            HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED);
  EXPECT_NE(std::string(hsaKmtGmemLastErrorMessage()).find("hsaKmtGmemOpen"),
            std::string::npos);
  EXPECT_EQ(hsaKmtGmemGetNodeCount(&count), HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED);
  EXPECT_EQ(hsaKmtGmemGetNodeInfo(0, &info), HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED);
  EXPECT_EQ(hsaKmtGmemClose(), HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED);
  HSA_GMEM_BACKEND backend = HSA_GMEM_BACKEND_KFD_SVM;
  EXPECT_EQ(hsaKmtGmemGetBackend(&backend), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(backend, HSA_GMEM_BACKEND_NONE);
  EXPECT_FALSE(kernel_.touched_kernel());
}

TEST_F(CApiTest, OpenIsReferenceCountedAndSelectsOnce) {
  kernel_.hmadvise_results = {ENOSYS};
  ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS);
  ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(kernel_.hmadvise_calls.size(), 1u);  // probed once
  EXPECT_EQ(kernel_.open_calls, 1);
  ASSERT_EQ(hsaKmtGmemClose(), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(kernel_.close_calls, 0);
  EXPECT_EQ(hsaKmtGmemAdvise(1, buffer_, 4096, HSA_GMEM_HINT_PREFETCH), HSAKMT_STATUS_SUCCESS);
  ASSERT_EQ(hsaKmtGmemClose(), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(kernel_.close_calls, 1);
  EXPECT_EQ(hsaKmtGmemAdvise(1, buffer_, 4096, HSA_GMEM_HINT_PREFETCH),
            HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED);
}

TEST_F(CApiTest, EnvironmentVariableForcesTheBackend) {
  setenv("GMEM_THUNK_BACKEND", "kfd", 1);
  ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS);
  HSA_GMEM_BACKEND backend = HSA_GMEM_BACKEND_NONE;
  ASSERT_EQ(hsaKmtGmemGetBackend(&backend), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(backend, HSA_GMEM_BACKEND_KFD_SVM);
  EXPECT_TRUE(kernel_.hmadvise_calls.empty());
}

TEST_F(CApiTest, AutoOnAGmemKernelSelectsTheSyscall) {
  kernel_.hmadvise_results = {EINVAL};
  ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS);
  HSA_GMEM_BACKEND backend = HSA_GMEM_BACKEND_NONE;
  ASSERT_EQ(hsaKmtGmemGetBackend(&backend), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(backend, HSA_GMEM_BACKEND_SYSCALL);
  ASSERT_EQ(hsaKmtGmemAdvise(2, buffer_, 8192, HSA_GMEM_HINT_DONTNEED), HSAKMT_STATUS_SUCCESS);
  ASSERT_EQ(kernel_.hmadvise_calls.size(), 2u);
  EXPECT_EQ(kernel_.hmadvise_calls[1].hnid, 3);
  EXPECT_EQ(kernel_.hmadvise_calls[1].start, 0x7f0000400000u);
  EXPECT_EQ(kernel_.hmadvise_calls[1].len, 8192u);
  EXPECT_EQ(kernel_.hmadvise_calls[1].behavior, 4);
}

TEST_F(CApiTest, BadEnvironmentValueFailsOpenWithAMessage) {
  setenv("GMEM_THUNK_BACKEND", "ioctl", 1);
  EXPECT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_INVALID_PARAMETER);
  EXPECT_NE(std::string(hsaKmtGmemLastErrorMessage()).find("\"ioctl\""), std::string::npos);
  EXPECT_FALSE(kernel_.touched_kernel());
}

TEST_F(CApiTest, FailedOpenLeavesTheLibraryClosed) {
  kernel_.hmadvise_results = {ENOSYS};
  kernel_.version = {1, 3};
  EXPECT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_NOT_SUPPORTED);
  EXPECT_EQ(kernel_.close_calls, 1);
  EXPECT_EQ(hsaKmtGmemClose(), HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED);
}

TEST_F(CApiTest, NodeQueriesTranslateBetweenNumberings) {
  ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS);
  HSAuint32 count = 0;
  ASSERT_EQ(hsaKmtGmemGetNodeCount(&count), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(count, 3u);

  HSA_GMEM_NODE_INFO info{};
  info.StructSize = sizeof(info);
  ASSERT_EQ(hsaKmtGmemGetNodeInfo(2, &info), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(info.NodeId, 2u);
  EXPECT_EQ(info.GpuId, 0xBBBBu);
  EXPECT_EQ(info.GmemNodeId, 3);
  EXPECT_EQ(info.IsGpu, 1u);
  ASSERT_EQ(hsaKmtGmemGetNodeInfo(0, &info), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(info.GpuId, 0u);
  EXPECT_EQ(info.IsGpu, 0u);
  EXPECT_EQ(hsaKmtGmemGetNodeInfo(3, &info), HSAKMT_STATUS_INVALID_NODE_UNIT);

  HSAuint32 node = 99;
  ASSERT_EQ(hsaKmtGmemNodeFromGpuId(0xAAAA, &node), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(node, 1u);
  EXPECT_EQ(hsaKmtGmemNodeFromGpuId(0x1234, &node), HSAKMT_STATUS_INVALID_NODE_UNIT);
  ASSERT_EQ(hsaKmtGmemNodeFromGmemNode(3, &node), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(node, 2u);
  EXPECT_EQ(hsaKmtGmemNodeFromGmemNode(-1, &node), HSAKMT_STATUS_INVALID_NODE_UNIT);

  EXPECT_EQ(hsaKmtGmemGetNodeCount(nullptr), HSAKMT_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(hsaKmtGmemGetNodeInfo(0, nullptr), HSAKMT_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(hsaKmtGmemNodeFromGpuId(0xAAAA, nullptr), HSAKMT_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(hsaKmtGmemNodeFromGmemNode(2, nullptr), HSAKMT_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(hsaKmtGmemGetBackend(nullptr), HSAKMT_STATUS_INVALID_PARAMETER);
}

TEST_F(CApiTest, HipDeviceOrdinalsFollowTheVisibilityVariablesAtOpen) {
  // Two GPUs (nodes 1 and 2); HIP shows only ROCr's second one.
  setenv("HIP_VISIBLE_DEVICES", "1", 1);
  ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS);
  unsetenv("HIP_VISIBLE_DEVICES");  // read at open: later changes do not count
  HSAuint32 count = 0;
  ASSERT_EQ(hsaKmtGmemGetHipDeviceCount(&count), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(count, 1u);
  HSAuint32 node = 99;
  ASSERT_EQ(hsaKmtGmemNodeFromHipDevice(0, &node), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(node, 2u);
  EXPECT_EQ(hsaKmtGmemNodeFromHipDevice(1, &node), HSAKMT_STATUS_INVALID_NODE_UNIT);
  EXPECT_NE(std::string(hsaKmtGmemLastErrorMessage()).find("no HIP device 1 (1 visible"),
            std::string::npos);
  EXPECT_EQ(hsaKmtGmemNodeFromHipDevice(-1, &node), HSAKMT_STATUS_INVALID_NODE_UNIT);
  EXPECT_EQ(hsaKmtGmemNodeFromHipDevice(0, nullptr), HSAKMT_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(gmem::node_from_hip_device(0), 2u);
  hsaKmtGmemClose();

  ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(gmem::hip_device_count(), 2u);
  EXPECT_EQ(gmem::node_from_hip_device(1), 2u);
}

TEST_F(CApiTest, StructuresAreFilledOnlyUpToTheCallersStructSize) {
  ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS);
  HSA_GMEM_NODE_INFO info{};
  EXPECT_EQ(hsaKmtGmemGetNodeInfo(1, &info), HSAKMT_STATUS_INVALID_PARAMETER);
  EXPECT_NE(std::string(hsaKmtGmemLastErrorMessage()).find("StructSize is 0"),
            std::string::npos);
  // A caller built against a later, larger structure gets what exists now,
  // and StructSize says how much that was; its extra bytes stay untouched.
  struct {
    HSA_GMEM_NODE_INFO info;
    HSAuint32 later_field;
  } larger{};
  larger.info.StructSize = sizeof(larger);
  larger.later_field = 0x5a5a5a5a;
  ASSERT_EQ(hsaKmtGmemGetNodeInfo(1, &larger.info), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(larger.info.StructSize, sizeof(HSA_GMEM_NODE_INFO));
  EXPECT_EQ(larger.info.GpuId, 0xAAAAu);
  EXPECT_EQ(larger.later_field, 0x5a5a5a5au);
}

TEST_F(CApiTest, VersionMatchesTheHeaderAndNeedsNoOpen) {
  HSA_GMEM_VERSION version{};
  version.StructSize = sizeof(version);
  ASSERT_EQ(hsaKmtGmemGetVersion(&version), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(version.Major, static_cast<HSAuint32>(HSA_GMEM_VERSION_MAJOR));
  EXPECT_EQ(version.Minor, static_cast<HSAuint32>(HSA_GMEM_VERSION_MINOR));
  EXPECT_EQ(version.Patch, static_cast<HSAuint32>(HSA_GMEM_VERSION_PATCH));
  EXPECT_EQ(gmem::library_version().Minor, version.Minor);
  EXPECT_EQ(hsaKmtGmemGetVersion(nullptr), HSAKMT_STATUS_INVALID_PARAMETER);
}

TEST_F(CApiTest, LastErrorMessageIsPerThreadAndClearedOnSuccess) {
  setenv("GMEM_THUNK_BACKEND", "kfd", 1);
  ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(hsaKmtGmemAdvise(1, buffer_, 4096, HSA_GMEM_HINT_PIN), HSAKMT_STATUS_NOT_IMPLEMENTED);
  const std::string pin_message = hsaKmtGmemLastErrorMessage();
  EXPECT_NE(pin_message.find("no KFD SVM equivalent"), std::string::npos);

  std::string other_thread_message = "unset";
  std::thread([&] { other_thread_message = hsaKmtGmemLastErrorMessage(); }).join();
  EXPECT_EQ(other_thread_message, "");
  EXPECT_EQ(hsaKmtGmemLastErrorMessage(), pin_message);

  EXPECT_EQ(hsaKmtGmemAdvise(1, buffer_, 4096, HSA_GMEM_HINT_PREFETCH), HSAKMT_STATUS_SUCCESS);
  EXPECT_STREQ(hsaKmtGmemLastErrorMessage(), "");
}

TEST_F(CApiTest, HintNames) {
  EXPECT_STREQ(hsaKmtGmemHintName(HSA_GMEM_HINT_PREFETCH), "PREFETCH");
  EXPECT_STREQ(hsaKmtGmemHintName(HSA_GMEM_HINT_UNSET_NO_ACCESS), "UNSET_NO_ACCESS");
  EXPECT_EQ(hsaKmtGmemHintName(static_cast<HSA_GMEM_HINT>(0)), nullptr);
}

TEST_F(CApiTest, AnyThirtyTwoBitHintValueFromCIsRefused) {
  setenv("GMEM_THUNK_BACKEND", "kfd", 1);
  ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS);
  for (std::uint32_t raw : {0u, 13u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu}) {
    EXPECT_EQ(c_caller_advise_with_raw_hint(1, buffer_, 4096, raw),
              HSAKMT_STATUS_INVALID_PARAMETER) << raw;
    EXPECT_NE(std::string(hsaKmtGmemLastErrorMessage()).find("unknown hint value " +
                                                             std::to_string(raw)),
              std::string::npos) << hsaKmtGmemLastErrorMessage();
    EXPECT_EQ(c_caller_hint_name(raw), nullptr) << raw;
  }
  EXPECT_TRUE(kernel_.set_attr_calls.empty());
  EXPECT_STREQ(c_caller_hint_name(11), "PIN");
}

// --- C++ header ---

TEST_F(CApiTest, CppHelpersReachTheKernelWithTheRightHint) {
  setenv("GMEM_THUNK_BACKEND", "kfd", 1);
  gmem::library opened;
  EXPECT_EQ(gmem::active_backend(), gmem::backend::kfd_svm);
  gmem::prefetch(buffer_, 4096, 1);
  gmem::set_preferred_location(buffer_, 4096, 0);
  gmem::set_read_mostly(buffer_, 4096, 2);
  gmem::discard(buffer_, 4096);
  ASSERT_EQ(kernel_.set_attr_calls.size(), 3u);
  const std::uint32_t prefetch_gpu1[] = {1, 1};
  const std::uint32_t preferred_cpu[] = {0, 0};
  const std::uint32_t read_mostly[] = {5, 0x20};
  EXPECT_EQ(0, std::memcmp(kernel_.set_attr_calls[0].attributes.data(), prefetch_gpu1, 8));
  EXPECT_EQ(0, std::memcmp(kernel_.set_attr_calls[1].attributes.data(), preferred_cpu, 8));
  EXPECT_EQ(0, std::memcmp(kernel_.set_attr_calls[2].attributes.data(), read_mostly, 8));
  ASSERT_EQ(kernel_.madvise_calls.size(), 1u);
  EXPECT_EQ(gmem::node_from_gpu_id(0xBBBB), 2u);
  EXPECT_EQ(gmem::node_from_gmem_node(2), 1u);
  EXPECT_EQ(gmem::node_info(1).GpuId, 0xAAAAu);
}

TEST_F(CApiTest, CppErrorsAreExceptionsWithStatusAndMessage) {
  setenv("GMEM_THUNK_BACKEND", "kfd", 1);
  gmem::library opened;
  try {
    gmem::pin(buffer_, 4096, 1);
    FAIL() << "pin on the KFD backend must throw";
  } catch (const gmem::error& error) {
    EXPECT_TRUE(error.no_equivalent());
    EXPECT_EQ(error.status(), HSAKMT_STATUS_NOT_IMPLEMENTED);
    EXPECT_EQ(&error.code().category(), &gmem::hsakmt_category());
    EXPECT_STREQ(error.code().category().name(), "hsakmt");
    EXPECT_NE(std::string(error.what()).find("no KFD SVM equivalent"), std::string::npos);
  }
  try {
    gmem::set_accessed_by(buffer_, 4096, 0);
    FAIL() << "accessed-by on the CPU node must throw";
  } catch (const gmem::error& error) {
    EXPECT_FALSE(error.no_equivalent());
    EXPECT_EQ(error.status(), HSAKMT_STATUS_INVALID_NODE_UNIT);
    EXPECT_NE(std::string(error.what()).find("needs a GPU node"), std::string::npos);
  }
  EXPECT_THROW(gmem::node_from_gpu_id(0x1234), gmem::error);
}

TEST_F(CApiTest, CppLibraryThrowsWhenOpenFails) {
  setenv("GMEM_THUNK_BACKEND", "syscall", 1);
  kernel_.hmadvise_results = {ENOSYS};
  try {
    gmem::library opened;
    FAIL() << "opening must throw";
  } catch (const gmem::error& error) {
    EXPECT_EQ(error.status(), HSAKMT_STATUS_NOT_SUPPORTED);
  }
  EXPECT_EQ(gmem::active_backend(), gmem::backend::none);
}

}  // namespace
}  // namespace gmem::thunk

namespace gmem::thunk {
namespace {

testing::FakeHipRuntime* fake_hip() {
  static testing::FakeHipRuntime* runtime = [] {
    void* handle = dlopen(GMEM_FAKE_HIP_RUNTIME, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return static_cast<testing::FakeHipRuntime*>(nullptr);
    auto state = reinterpret_cast<testing::FakeHipRuntime* (*)()>(
        dlsym(handle, "fake_hip_runtime_state"));
    return state != nullptr ? state() : nullptr;
  }();
  return runtime;
}

// Stream-ordered prefetch through the fake HIP runtime, on the syscall
// backend (a GMEM kernel) whose calls the fake kernel records.
class PrefetchAsyncTest : public CApiTest {
 protected:
  void SetUp() override {
    CApiTest::SetUp();
    hip_ = fake_hip();
    ASSERT_NE(hip_, nullptr) << "cannot load " << GMEM_FAKE_HIP_RUNTIME;
    hip_->reset();
    testing::set_hip_runtime(GMEM_FAKE_HIP_RUNTIME);
    kernel_.hmadvise_results = {EINVAL};  // the probe: a GMEM kernel
    ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS) << hsaKmtGmemLastErrorMessage();
  }
  void TearDown() override {
    for (auto& [stream, queue] : hip_->streams) hip_->run(stream);
    CApiTest::TearDown();
  }
  std::size_t advice_calls() const { return kernel_.hmadvise_calls.size() - 1; }

  testing::FakeHipRuntime* hip_ = nullptr;
  void* const stream_a_ = reinterpret_cast<void*>(0xa000);
  void* const stream_b_ = reinterpret_cast<void*>(0xb000);
};

TEST_F(PrefetchAsyncTest, TheMigrationHappensWhenTheStreamReachesIt) {
  ASSERT_EQ(hsaKmtGmemPrefetchAsync(1, buffer_, 8192, stream_a_), HSAKMT_STATUS_SUCCESS)
      << hsaKmtGmemLastErrorMessage();
  EXPECT_EQ(advice_calls(), 0u);  // queued, not done
  EXPECT_EQ(hip_->pending(stream_a_), 1u);
  EXPECT_EQ(hip_->run(stream_b_), 0u);  // another stream does not run it
  ASSERT_EQ(hip_->run(stream_a_), 1u);
  ASSERT_EQ(advice_calls(), 1u);
  const auto& call = kernel_.hmadvise_calls.back();
  EXPECT_EQ(call.hnid, 2);
  EXPECT_EQ(call.start, reinterpret_cast<unsigned long>(buffer_));
  EXPECT_EQ(call.len, 8192u);
  EXPECT_EQ(call.behavior, 26);  // MADV_PREFETCH
  EXPECT_EQ(hsaKmtGmemGetAsyncError(), HSAKMT_STATUS_SUCCESS);
}

TEST_F(PrefetchAsyncTest, PrefetchesOnOneStreamRunInQueueOrder) {
  ASSERT_EQ(hsaKmtGmemPrefetchAsync(1, buffer_, 4096, stream_a_), HSAKMT_STATUS_SUCCESS);
  ASSERT_EQ(hsaKmtGmemPrefetchAsync(2, buffer_, 4096, stream_a_), HSAKMT_STATUS_SUCCESS);
  ASSERT_EQ(hsaKmtGmemPrefetchAsync(0, buffer_, 4096, stream_a_), HSAKMT_STATUS_SUCCESS);
  ASSERT_EQ(hip_->run(stream_a_), 3u);
  ASSERT_EQ(advice_calls(), 3u);
  EXPECT_EQ(kernel_.hmadvise_calls[1].hnid, 2);
  EXPECT_EQ(kernel_.hmadvise_calls[2].hnid, 3);
  EXPECT_EQ(kernel_.hmadvise_calls[3].hnid, 0);
}

TEST_F(PrefetchAsyncTest, BadInputIsRefusedAtOnceAndNothingIsQueued) {
  EXPECT_EQ(hsaKmtGmemPrefetchAsync(1, static_cast<char*>(buffer_) + 1, 4096, stream_a_),
            HSAKMT_STATUS_MEMORY_ALIGNMENT);
  EXPECT_EQ(hsaKmtGmemPrefetchAsync(9, buffer_, 4096, stream_a_),
            HSAKMT_STATUS_INVALID_NODE_UNIT);
  EXPECT_EQ(hsaKmtGmemPrefetchAsync(HSA_GMEM_NO_NODE, buffer_, 4096, stream_a_),
            HSAKMT_STATUS_INVALID_NODE_UNIT);
  EXPECT_EQ(hip_->launch_calls, 0);
  EXPECT_EQ(advice_calls(), 0u);
}

TEST_F(PrefetchAsyncTest, AQueuedPrefetchKeepsTheLibraryOpenUntilItRuns) {
  ASSERT_EQ(hsaKmtGmemPrefetchAsync(1, buffer_, 4096, stream_a_), HSAKMT_STATUS_SUCCESS);
  ASSERT_EQ(hsaKmtGmemClose(), HSAKMT_STATUS_SUCCESS);  // the program's own close
  HSA_GMEM_BACKEND backend = HSA_GMEM_BACKEND_NONE;
  ASSERT_EQ(hsaKmtGmemGetBackend(&backend), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(backend, HSA_GMEM_BACKEND_SYSCALL);  // still open
  hip_->run(stream_a_);
  EXPECT_EQ(advice_calls(), 1u);
  ASSERT_EQ(hsaKmtGmemGetBackend(&backend), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(backend, HSA_GMEM_BACKEND_NONE);  // the last reference is gone
}

TEST_F(PrefetchAsyncTest, AFailedMigrationIsReportedOnceByGetAsyncError) {
  kernel_.hmadvise_default = ENOMEM;
  ASSERT_EQ(hsaKmtGmemPrefetchAsync(2, buffer_, 4096, stream_a_), HSAKMT_STATUS_SUCCESS);
  hip_->run(stream_a_);
  EXPECT_EQ(hsaKmtGmemGetAsyncError(), HSAKMT_STATUS_NO_MEMORY);
  EXPECT_NE(std::string(hsaKmtGmemLastErrorMessage()).find("ENOMEM"), std::string::npos);
  EXPECT_EQ(hsaKmtGmemGetAsyncError(), HSAKMT_STATUS_SUCCESS);  // cleared
  EXPECT_THROW(
      {
        gmem::prefetch_async(buffer_, 4096, 2, stream_a_);
        hip_->run(stream_a_);
        gmem::check_async_error();
      },
      gmem::error);
}

TEST_F(PrefetchAsyncTest, ARefusedLaunchFailsAndReleasesItsReference) {
  hip_->launch_result = 1;  // hipErrorInvalidValue
  EXPECT_EQ(hsaKmtGmemPrefetchAsync(1, buffer_, 4096, stream_a_), HSAKMT_STATUS_ERROR);
  EXPECT_NE(std::string(hsaKmtGmemLastErrorMessage()).find("hipLaunchHostFunc failed"),
            std::string::npos);
  EXPECT_EQ(hsaKmtGmemClose(), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(hsaKmtGmemClose(), HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED);
}

TEST_F(PrefetchAsyncTest, WithoutAHipRuntimeTheAsyncFormIsNotSupported) {
  testing::set_hip_runtime("/nonexistent/libamdhip64.so");
  EXPECT_EQ(hsaKmtGmemPrefetchAsync(1, buffer_, 4096, stream_a_),
            HSAKMT_STATUS_NOT_SUPPORTED);
  EXPECT_NE(std::string(hsaKmtGmemLastErrorMessage()).find("cannot load the HIP runtime"),
            std::string::npos);
  EXPECT_EQ(hsaKmtGmemClose(), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(hsaKmtGmemClose(), HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED);
}

}  // namespace
}  // namespace gmem::thunk
