// Backend selection and execution through the kernel boundary, with the
// kernel replaced by a recording double.
#include <cerrno>
#include <cstring>
#include <memory>

#include <gtest/gtest.h>

#include "fake_kernel.h"
#include "fake_sysfs.h"
#include "session.h"

namespace gmem::thunk {
namespace {

using testing::FakeKernel;
using testing::FakeSysfs;

constexpr std::size_t kPage = 4096;
void* const kBuffer = reinterpret_cast<void*>(0x7f0000200000);
constexpr std::uint64_t kSize = 0x200000;
// These cases are about the syscall and kfd backends: no HSA runtime loads,
// so automatic selection goes on to libhsakmt (rocr_backend_test.cpp has
// the rocr backend).
constexpr const char kNoHsaRuntime[] = "/nonexistent/libhsa-runtime64.so.1";

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override { sysfs_.add_gmem_machine(); }

  Status open(BackendRequest request) {
    SessionOptions options;
    options.sysfs_root = sysfs_.root();
    options.request = request;
    options.page_size = kPage;
    options.hsa_runtime = kNoHsaRuntime;
    return Session::open(kernel_, options, &session_, &report_);
  }

  FakeSysfs sysfs_;
  FakeKernel kernel_;
  std::unique_ptr<Session> session_;
  SelectionReport report_;
};

// --- Backend selection ---

TEST_F(SessionTest, AutoPicksSyscallWhenTheProbeIsNotEnosys) {
  kernel_.hmadvise_results = {EINVAL};
  ASSERT_TRUE(open(BackendRequest::automatic).ok());
  EXPECT_EQ(session_->backend(), Backend::syscall);
  // The probe is exactly hmadvise(-1, 0, 0, 0).
  ASSERT_EQ(kernel_.hmadvise_calls.size(), 1u);
  EXPECT_EQ(kernel_.hmadvise_calls[0].hnid, -1);
  EXPECT_EQ(kernel_.hmadvise_calls[0].start, 0u);
  EXPECT_EQ(kernel_.hmadvise_calls[0].len, 0u);
  EXPECT_EQ(kernel_.hmadvise_calls[0].behavior, 0);
  EXPECT_EQ(kernel_.open_calls, 0);  // KFD not needed
  session_.reset();
  EXPECT_EQ(kernel_.close_calls, 0);
}

TEST_F(SessionTest, AutoTreatsProbeSuccessAsPresent) {
  kernel_.hmadvise_results = {0};
  ASSERT_TRUE(open(BackendRequest::automatic).ok());
  EXPECT_EQ(session_->backend(), Backend::syscall);
}

TEST_F(SessionTest, AutoIgnoresTheSyscallNumberWithoutGmemSysfs) {
  // Kernels from 6.13 on have setxattrat at the provisional number: it
  // answers the probe with EINVAL, but there is no GMEM sysfs directory.
  FakeSysfs stock;
  stock.add_stock_machine();
  kernel_.hmadvise_results = {EINVAL};
  SessionOptions options;
  options.sysfs_root = stock.root();
  options.page_size = kPage;
  options.hsa_runtime = kNoHsaRuntime;
  Status status = Session::open(kernel_, options, &session_, &report_);
  ASSERT_TRUE(status.ok()) << status.message;
  EXPECT_EQ(session_->backend(), Backend::kfd_svm);
  EXPECT_TRUE(kernel_.hmadvise_calls.empty());  // not even probed
}

TEST_F(SessionTest, AutoFallsBackToKfdOnEnosys) {
  kernel_.hmadvise_results = {ENOSYS};
  Status status = open(BackendRequest::automatic);
  ASSERT_TRUE(status.ok()) << status.message;
  EXPECT_EQ(session_->backend(), Backend::kfd_svm);
  EXPECT_EQ(kernel_.open_calls, 1);
  EXPECT_EQ(kernel_.version_calls, 1);
  EXPECT_EQ(kernel_.properties_calls, 1);
  // The SVM probe asks GET_ATTR for the granularity of one page.
  ASSERT_EQ(kernel_.get_attr_calls.size(), 1u);
  EXPECT_EQ(kernel_.get_attr_calls[0].size, kPage);
  ASSERT_EQ(kernel_.get_attr_calls[0].attribute_count, 1u);
  EXPECT_EQ(kernel_.get_attr_calls[0].attributes[0].type, 7u);  // GRANULARITY
  EXPECT_EQ(kernel_.close_calls, 0);
  session_.reset();
  EXPECT_EQ(kernel_.close_calls, 1);  // the open is balanced at close
  ASSERT_GE(report_.steps.size(), 3u);
  EXPECT_NE(report_.steps.front().find("ENOSYS"), std::string::npos);
  EXPECT_EQ(report_.steps.back(), "backend: kfd");
}

TEST_F(SessionTest, ForcedSyscallOnAKernelWithoutItFails) {
  kernel_.hmadvise_results = {ENOSYS};
  Status status = open(BackendRequest::syscall);
  EXPECT_EQ(status.code, HSAKMT_STATUS_NOT_SUPPORTED);
  EXPECT_NE(status.message.find("GMEM_THUNK_BACKEND=syscall"), std::string::npos);
  EXPECT_EQ(kernel_.open_calls, 0);
  EXPECT_EQ(session_, nullptr);
}

TEST_F(SessionTest, ForcedKfdSkipsTheProbeEvenOnAGmemKernel) {
  ASSERT_TRUE(open(BackendRequest::kfd_svm).ok());
  EXPECT_EQ(session_->backend(), Backend::kfd_svm);
  EXPECT_TRUE(kernel_.hmadvise_calls.empty());
}

TEST_F(SessionTest, KfdBelowSvmVersionIsRefusedAndClosed) {
  kernel_.version = {1, 4};
  Status status = open(BackendRequest::kfd_svm);
  EXPECT_EQ(status.code, HSAKMT_STATUS_NOT_SUPPORTED);
  EXPECT_NE(status.message.find("1.4"), std::string::npos) << status.message;
  EXPECT_EQ(kernel_.close_calls, 1);
  EXPECT_TRUE(kernel_.get_attr_calls.empty());
}

TEST_F(SessionTest, KfdAtExactlyTheSvmVersionIsAccepted) {
  kernel_.version = {1, 5};
  EXPECT_TRUE(open(BackendRequest::kfd_svm).ok());
}

TEST_F(SessionTest, KfdWithAnotherMajorVersionIsAMismatch) {
  kernel_.version = {2, 0};
  EXPECT_EQ(open(BackendRequest::kfd_svm).code, HSAKMT_STATUS_DRIVER_MISMATCH);
  EXPECT_EQ(kernel_.close_calls, 1);
}

TEST_F(SessionTest, KfdThatCannotOpenReportsBothBackends) {
  kernel_.hmadvise_results = {ENOSYS};
  kernel_.open_result = HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
  Status status = open(BackendRequest::automatic);
  EXPECT_EQ(status.code, HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED);
  EXPECT_NE(status.message.find("no hmadvise system call"), std::string::npos);
  EXPECT_NE(status.message.find("/dev/kfd"), std::string::npos);
  EXPECT_EQ(kernel_.close_calls, 0);  // nothing was opened
}

TEST_F(SessionTest, KfdWhoseNodeCountDiffersFromSysfsIsRefused) {
  kernel_.libhsakmt_node_count = 2;
  Status status = open(BackendRequest::kfd_svm);
  EXPECT_EQ(status.code, HSAKMT_STATUS_ERROR);
  EXPECT_NE(status.message.find("libhsakmt sees 2 nodes but sysfs has 3"),
            std::string::npos);
  EXPECT_EQ(kernel_.close_calls, 1);
}

TEST_F(SessionTest, KfdWithoutSvmIsRefusedAndClosed) {
  kernel_.get_attr_result = HSAKMT_STATUS_ERROR;
  Status status = open(BackendRequest::kfd_svm);
  EXPECT_EQ(status.code, HSAKMT_STATUS_NOT_SUPPORTED);
  EXPECT_NE(status.message.find("SVM GET_ATTR probe failed"), std::string::npos);
  EXPECT_EQ(kernel_.close_calls, 1);
}

TEST_F(SessionTest, BrokenTopologyFailsBeforeTouchingTheKernel) {
  SessionOptions options;
  options.sysfs_root = sysfs_.root() + "/missing";
  options.hsa_runtime = kNoHsaRuntime;
  Status status = Session::open(kernel_, options, &session_, nullptr);
  EXPECT_EQ(status.code, HSAKMT_STATUS_ERROR);
  EXPECT_FALSE(kernel_.touched_kernel());
}

TEST(BackendRequestParsing, AcceptsTheFourNamesAndRejectsOthers) {
  BackendRequest request = BackendRequest::kfd_svm;
  EXPECT_TRUE(parse_backend_request(nullptr, &request).ok());
  EXPECT_EQ(request, BackendRequest::automatic);
  request = BackendRequest::kfd_svm;
  EXPECT_TRUE(parse_backend_request("", &request).ok());
  EXPECT_EQ(request, BackendRequest::automatic);
  EXPECT_TRUE(parse_backend_request("auto", &request).ok());
  EXPECT_EQ(request, BackendRequest::automatic);
  EXPECT_TRUE(parse_backend_request("syscall", &request).ok());
  EXPECT_EQ(request, BackendRequest::syscall);
  EXPECT_TRUE(parse_backend_request("rocr", &request).ok());
  EXPECT_EQ(request, BackendRequest::rocr_svm);
  EXPECT_TRUE(parse_backend_request("kfd", &request).ok());
  EXPECT_EQ(request, BackendRequest::kfd_svm);
  Status status = parse_backend_request("KFD", &request);
  EXPECT_EQ(status.code, HSAKMT_STATUS_INVALID_PARAMETER);
  EXPECT_NE(status.message.find("expected auto, syscall, rocr or kfd"), std::string::npos);
}

// --- Execution: what reaches the kernel, byte for byte ---

TEST_F(SessionTest, SyscallBackendPassesTheExactArguments) {
  kernel_.hmadvise_results = {EINVAL, 0};
  ASSERT_TRUE(open(BackendRequest::automatic).ok());
  Status status = session_->advise(
      {1, reinterpret_cast<std::uintptr_t>(kBuffer), kSize - 100, HSA_GMEM_HINT_PREFETCH});
  ASSERT_TRUE(status.ok()) << status.message;
  ASSERT_EQ(kernel_.hmadvise_calls.size(), 2u);
  const auto& call = kernel_.hmadvise_calls[1];
  EXPECT_EQ(call.hnid, 2);
  EXPECT_EQ(call.start, 0x7f0000200000u);
  EXPECT_EQ(call.len, kSize);  // rounded up
  EXPECT_EQ(call.behavior, 26);
  EXPECT_TRUE(kernel_.set_attr_calls.empty());
}

TEST_F(SessionTest, SyscallErrnoBecomesStatusAndMessage) {
  struct Case {
    int error_number;
    HSAKMT_STATUS status;
    const char* name;
  };
  const Case cases[] = {
      {EINVAL, HSAKMT_STATUS_INVALID_PARAMETER, "EINVAL"},
      {ENODEV, HSAKMT_STATUS_INVALID_NODE_UNIT, "ENODEV"},
      {ENOMEM, HSAKMT_STATUS_NO_MEMORY, "ENOMEM"},
      {EBUSY, HSAKMT_STATUS_UNAVAILABLE, "EBUSY"},
      {EFAULT, HSAKMT_STATUS_ERROR, "EFAULT"},
      {EPERM, HSAKMT_STATUS_ERROR, "EPERM"},
      {EACCES, HSAKMT_STATUS_ERROR, "EACCES"},
  };
  kernel_.hmadvise_results = {0};
  ASSERT_TRUE(open(BackendRequest::syscall).ok());
  for (const Case& test : cases) {
    kernel_.hmadvise_default = test.error_number;
    Status status = session_->advise({2, reinterpret_cast<std::uintptr_t>(kBuffer),
                                      kSize, HSA_GMEM_HINT_PIN});
    EXPECT_EQ(status.code, test.status) << test.name;
    EXPECT_NE(status.message.find(test.name), std::string::npos) << status.message;
    EXPECT_NE(status.message.find("hmadvise(3, 0x7f0000200000, 0x200000, HMADV_PIN)"),
              std::string::npos)
        << status.message;
  }
}

TEST_F(SessionTest, KfdBackendPassesTheExactAttributeBytes) {
  ASSERT_TRUE(open(BackendRequest::kfd_svm).ok());
  ASSERT_TRUE(session_->advise({1, reinterpret_cast<std::uintptr_t>(kBuffer), kSize,
                                HSA_GMEM_HINT_ACCESSED_BY}).ok());
  ASSERT_EQ(kernel_.set_attr_calls.size(), 1u);
  const testing::SvmRecord& call = kernel_.set_attr_calls[0];
  EXPECT_EQ(call.start, kBuffer);
  EXPECT_EQ(call.size, kSize);
  ASSERT_EQ(call.attribute_count, 1u);
  // {HSA_SVM_ATTR_ACCESS_IN_PLACE = 3, KFD node 1}: libhsakmt wants node ids.
  const std::uint32_t expected[] = {3, 1};
  EXPECT_EQ(0, std::memcmp(call.attributes.data(), expected, sizeof(expected)));
}

TEST_F(SessionTest, KfdFailureKeepsLibhsakmtStatusAndAddsErrno) {
  ASSERT_TRUE(open(BackendRequest::kfd_svm).ok());
  kernel_.set_attr_result = HSAKMT_STATUS_ERROR;
  kernel_.set_attr_errno = EINVAL;
  Status status = session_->advise({1, reinterpret_cast<std::uintptr_t>(kBuffer), kSize,
                                    HSA_GMEM_HINT_PREFETCH});
  EXPECT_EQ(status.code, HSAKMT_STATUS_ERROR);
  EXPECT_NE(status.message.find("hsaKmtSVMSetAttr(0x7f0000200000, 0x200000, "
                                "{PREFETCH_LOC=1})"),
            std::string::npos)
      << status.message;
  EXPECT_NE(status.message.find("EINVAL"), std::string::npos);
}

TEST_F(SessionTest, KfdPinIsNoEquivalentAndCallsNothing) {
  ASSERT_TRUE(open(BackendRequest::kfd_svm).ok());
  Status status = session_->advise({1, reinterpret_cast<std::uintptr_t>(kBuffer), kSize,
                                    HSA_GMEM_HINT_PIN});
  EXPECT_EQ(status.code, HSAKMT_STATUS_NOT_IMPLEMENTED);
  EXPECT_EQ(status.code, HSA_GMEM_STATUS_NO_EQUIVALENT);
  EXPECT_NE(status.message.find("PIN has no KFD SVM equivalent"), std::string::npos);
  EXPECT_TRUE(kernel_.set_attr_calls.empty());
  EXPECT_TRUE(kernel_.madvise_calls.empty());
}

TEST_F(SessionTest, KfdDiscardUsesMadvise) {
  ASSERT_TRUE(open(BackendRequest::kfd_svm).ok());
  ASSERT_TRUE(session_->advise({HSA_GMEM_NO_NODE,
                                reinterpret_cast<std::uintptr_t>(kBuffer), 1,
                                HSA_GMEM_HINT_DONTNEED}).ok());
  ASSERT_EQ(kernel_.madvise_calls.size(), 1u);
  EXPECT_EQ(kernel_.madvise_calls[0].start, kBuffer);
  EXPECT_EQ(kernel_.madvise_calls[0].len, kPage);
  EXPECT_EQ(kernel_.madvise_calls[0].advice, 4);
  EXPECT_TRUE(kernel_.set_attr_calls.empty());

  kernel_.madvise_result = ENOMEM;
  Status status = session_->advise({HSA_GMEM_NO_NODE,
                                    reinterpret_cast<std::uintptr_t>(kBuffer), 1,
                                    HSA_GMEM_HINT_DONTNEED});
  EXPECT_EQ(status.code, HSAKMT_STATUS_NO_MEMORY);
  EXPECT_NE(status.message.find("madvise("), std::string::npos);
}

TEST_F(SessionTest, BadInputNeverReachesTheKernel) {
  for (BackendRequest request : {BackendRequest::syscall, BackendRequest::kfd_svm}) {
    FakeKernel fresh;
    SessionOptions options;
    options.sysfs_root = sysfs_.root();
    options.request = request;
    options.page_size = kPage;
    options.hsa_runtime = kNoHsaRuntime;
    std::unique_ptr<Session> session;
    ASSERT_TRUE(Session::open(fresh, options, &session, nullptr).ok());
    const std::size_t probe_calls = fresh.hmadvise_calls.size();
    const std::size_t probe_get_attr = fresh.get_attr_calls.size();
    const std::uintptr_t start = reinterpret_cast<std::uintptr_t>(kBuffer);
    const AdviceRequest bad[] = {
        {1, 0, kSize, HSA_GMEM_HINT_PREFETCH},
        {1, start, 0, HSA_GMEM_HINT_PREFETCH},
        {1, start + 1, kSize, HSA_GMEM_HINT_PREFETCH},
        {1, start, ~0ULL, HSA_GMEM_HINT_PREFETCH},
        {9, start, kSize, HSA_GMEM_HINT_PREFETCH},
        {0, start, kSize, HSA_GMEM_HINT_NO_ACCESS},
        {HSA_GMEM_NO_NODE, start, kSize, HSA_GMEM_HINT_PREFERRED_LOC},
        {1, start, kSize, 42u},
    };
    for (const AdviceRequest& each : bad) EXPECT_FALSE(session->advise(each).ok());
    EXPECT_EQ(fresh.hmadvise_calls.size(), probe_calls);
    EXPECT_EQ(fresh.get_attr_calls.size(), probe_get_attr);
    EXPECT_TRUE(fresh.set_attr_calls.empty());
    EXPECT_TRUE(fresh.madvise_calls.empty());
  }
}

}  // namespace
}  // namespace gmem::thunk
