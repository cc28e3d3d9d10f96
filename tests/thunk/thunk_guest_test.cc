// The thunk in the guest: on a GMEM kernel it must pick the hmadvise
// backend, and its hints must move data, as the simulated device's
// counters show. The only KFD node without a GPU is the CPU, so the
// thunk's node-addressed calls are checked moving data to host memory; the
// raw system-call wrapper hsaKmtGmemRawHmadvise() addresses the device by
// its GMEM node id.
// Forced onto the KFD backend, the same hints must round-trip through the
// GPU-less /dev/kfd, whose SVM attributes live in GMEM.
#include <fcntl.h>
#include <hsakmt.h>
#include <linux/gmem.h>
#include <linux/test_gmem.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "gmem/hsakmt_hmadvise.h"

namespace {

constexpr size_t kBytes = 4 << 20;
constexpr uint32_t kCpuNode = 0;

class ThunkOnGmem : public ::testing::Test {
 protected:
  void SetUp() override {
    device_ = open("/dev/test_gmem0", O_RDWR | O_CLOEXEC);
    ASSERT_GE(device_, 0) << "/dev/test_gmem0: " << strerror(errno);
    ASSERT_EQ(ioctl(device_, TGM_IOC_ATTACH), 0) << strerror(errno);
    ASSERT_EQ(hsaKmtGmemOpen(), HSAKMT_STATUS_SUCCESS) << hsaKmtGmemLastErrorMessage();
    buffer_ = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(buffer_, MAP_FAILED);
  }
  void TearDown() override {
    if (buffer_ != MAP_FAILED) munmap(buffer_, kBytes);
    hsaKmtGmemClose();
    if (device_ >= 0) close(device_);
  }

  tgm_counters Counters() {
    tgm_counters counters{};
    EXPECT_EQ(ioctl(device_, TGM_IOC_COUNTERS, &counters), 0) << strerror(errno);
    return counters;
  }

  // The device writes @value over the whole buffer, migrating it in.
  void DeviceFill(uint8_t value) {
    tgm_access access{};
    access.addr = reinterpret_cast<uintptr_t>(buffer_);
    access.len = kBytes;
    access.value = value;
    ASSERT_EQ(ioctl(device_, TGM_IOC_FILL, &access), 0) << strerror(errno);
  }

  // The device fills the buffer, then a prefetch hint to the CPU node
  // through the active backend must bring all of it back.
  void PrefetchToTheCpuNode(uint8_t value, tgm_counters *before, tgm_counters *after) {
    DeviceFill(value);
    *before = Counters();
    ASSERT_GE(before->resident, kBytes) << "the fill did not migrate to the device";
    ASSERT_EQ(hsaKmtGmemAdvise(kCpuNode, buffer_, kBytes, HSA_GMEM_HINT_PREFETCH),
              HSAKMT_STATUS_SUCCESS)
        << hsaKmtGmemLastErrorMessage();
    *after = Counters();
    EXPECT_EQ(after->resident, before->resident - kBytes);
    EXPECT_TRUE(BufferIs(value));
  }

  bool BufferIs(uint8_t value) {
    const auto *bytes = static_cast<const uint8_t *>(buffer_);
    for (size_t i = 0; i < kBytes; ++i)
      if (bytes[i] != value) return false;
    return true;
  }

  int device_ = -1;
  void *buffer_ = MAP_FAILED;
};

TEST_F(ThunkOnGmem, PicksTheSyscallBackend) {
  HSA_GMEM_BACKEND backend;
  ASSERT_EQ(hsaKmtGmemGetBackend(&backend), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(backend, HSA_GMEM_BACKEND_SYSCALL);
}

TEST_F(ThunkOnGmem, PrefetchToTheCpuNodeBringsDataBack) {
  tgm_counters before, after;
  PrefetchToTheCpuNode(0x3c, &before, &after);
  if (HasFatalFailure()) return;
  EXPECT_GE(after.migrated_from, before.migrated_from + kBytes / 4096);  // pages
  // Nothing came back through CPU faults: the hint moved it.
  EXPECT_EQ(Counters().migrated_from, after.migrated_from);
}

TEST_F(ThunkOnGmem, RawWrapperPrefetchesToTheDevice) {
  memset(buffer_, 0x5a, kBytes);
  tgm_counters before = Counters();
  ASSERT_EQ(hsaKmtGmemRawHmadvise(static_cast<int>(before.hnid),
                                  reinterpret_cast<uintptr_t>(buffer_), kBytes, HMADV_PREFETCH),
            0)
      << strerror(errno);
  tgm_counters after = Counters();
  EXPECT_EQ(after.resident, before.resident + kBytes);
  EXPECT_EQ(after.faults, before.faults);  // moved by the hint, not by faults
  EXPECT_TRUE(BufferIs(0x5a));
}

TEST_F(ThunkOnGmem, DontneedWithoutANodeDiscards) {
  DeviceFill(0x77);
  ASSERT_GT(Counters().resident, 0u);
  ASSERT_EQ(hsaKmtGmemAdvise(HSA_GMEM_NO_NODE, buffer_, kBytes, HSA_GMEM_HINT_DONTNEED),
            HSAKMT_STATUS_SUCCESS)
      << hsaKmtGmemLastErrorMessage();
  EXPECT_EQ(Counters().resident, 0u);
  EXPECT_TRUE(BufferIs(0));  // anonymous memory reads as zero after a discard
}

TEST_F(ThunkOnGmem, BadInputNeverReachesTheKernel) {
  EXPECT_EQ(hsaKmtGmemAdvise(kCpuNode, nullptr, kBytes, HSA_GMEM_HINT_PREFETCH),
            HSAKMT_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(hsaKmtGmemAdvise(kCpuNode, static_cast<char *>(buffer_) + 1, 4096,
                             HSA_GMEM_HINT_PREFETCH),
            HSAKMT_STATUS_MEMORY_ALIGNMENT);
  EXPECT_EQ(hsaKmtGmemAdvise(999, buffer_, kBytes, HSA_GMEM_HINT_PREFETCH),
            HSAKMT_STATUS_INVALID_NODE_UNIT);
}

class ThunkOnKfd : public ThunkOnGmem {
 protected:
  void SetUp() override {
    ASSERT_EQ(setenv("GMEM_THUNK_BACKEND", "kfd", 1), 0);
    ThunkOnGmem::SetUp();
  }
  void TearDown() override {
    ThunkOnGmem::TearDown();
    unsetenv("GMEM_THUNK_BACKEND");
  }

  // One SVM attribute of the buffer, read back through libhsakmt.
  HSAuint32 SvmAttr(HSA_SVM_ATTR_TYPE type) {
    HSA_SVM_ATTRIBUTE attr = {static_cast<HSAuint32>(type), 0};
    EXPECT_EQ(hsaKmtSVMGetAttr(buffer_, kBytes, 1, &attr), HSAKMT_STATUS_SUCCESS);
    return attr.value;
  }

  // GMEM's view of the buffer's attributes, as the simulated device sees it.
  std::vector<tgm_range> GmemRanges() {
    std::vector<tgm_range> ranges(8);
    tgm_ranges query{};
    query.addr = reinterpret_cast<uintptr_t>(buffer_);
    query.len = kBytes;
    query.ptr = reinterpret_cast<uintptr_t>(ranges.data());
    query.max = ranges.size();
    EXPECT_EQ(ioctl(device_, TGM_IOC_RANGES, &query), 0) << strerror(errno);
    ranges.resize(std::min<size_t>(query.count, ranges.size()));
    return ranges;
  }
};

TEST_F(ThunkOnKfd, UsesTheKfdBackendWhenAsked) {
  HSA_GMEM_BACKEND backend;
  ASSERT_EQ(hsaKmtGmemGetBackend(&backend), HSAKMT_STATUS_SUCCESS);
  EXPECT_EQ(backend, HSA_GMEM_BACKEND_KFD_SVM);
}

TEST_F(ThunkOnKfd, PreferredLocationRoundTrips) {
  ASSERT_EQ(hsaKmtGmemAdvise(kCpuNode, buffer_, kBytes, HSA_GMEM_HINT_PREFERRED_LOC),
            HSAKMT_STATUS_SUCCESS)
      << hsaKmtGmemLastErrorMessage();
  EXPECT_EQ(SvmAttr(HSA_SVM_ATTR_PREFERRED_LOC), 0u) << "system memory";
  auto ranges = GmemRanges();
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_GE(ranges[0].preferred, 0) << "a host node in GMEM";

  ASSERT_EQ(hsaKmtGmemAdvise(kCpuNode, buffer_, kBytes, HSA_GMEM_HINT_UNSET_PREFERRED_LOC),
            HSAKMT_STATUS_SUCCESS)
      << hsaKmtGmemLastErrorMessage();
  EXPECT_EQ(SvmAttr(HSA_SVM_ATTR_PREFERRED_LOC), 0xffffffffu);
  for (const auto &r : GmemRanges()) EXPECT_EQ(r.preferred, -1);
}

TEST_F(ThunkOnKfd, ReadMostlyRoundTrips) {
  ASSERT_EQ(hsaKmtGmemAdvise(kCpuNode, buffer_, kBytes, HSA_GMEM_HINT_READ_MOSTLY),
            HSAKMT_STATUS_SUCCESS)
      << hsaKmtGmemLastErrorMessage();
  EXPECT_TRUE(SvmAttr(HSA_SVM_ATTR_SET_FLAGS) & HSA_SVM_FLAG_GPU_READ_MOSTLY);
  auto ranges = GmemRanges();
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].read_mostly, 1);

  ASSERT_EQ(hsaKmtGmemAdvise(kCpuNode, buffer_, kBytes, HSA_GMEM_HINT_UNSET_READ_MOSTLY),
            HSAKMT_STATUS_SUCCESS)
      << hsaKmtGmemLastErrorMessage();
  EXPECT_FALSE(SvmAttr(HSA_SVM_ATTR_SET_FLAGS) & HSA_SVM_FLAG_GPU_READ_MOSTLY);
  for (const auto &r : GmemRanges()) EXPECT_EQ(r.read_mostly, 0);
}

TEST_F(ThunkOnKfd, PrefetchToTheCpuNodeBringsDataBack) {
  tgm_counters before, after;
  PrefetchToTheCpuNode(0x5e, &before, &after);
  if (HasFatalFailure()) return;
  EXPECT_EQ(SvmAttr(HSA_SVM_ATTR_PREFETCH_LOC), 0u) << "system memory";
}

}  // namespace
