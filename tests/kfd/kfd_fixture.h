// Shared by the GPU-less KFD ioctl suites: an open /dev/kfd, the
// AMDKFD_IOC_SVM transport and the SVM backend a test binary asks for.
#ifndef GMEM_TESTS_KFD_KFD_FIXTURE_H
#define GMEM_TESTS_KFD_KFD_FIXTURE_H

#include <fcntl.h>
#include <linux/kfd_ioctl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kfdtest {


constexpr uint32_t kUndefinedLocation = KFD_IOCTL_SVM_LOCATION_UNDEFINED;
constexpr uint32_t kDefaultFlags = KFD_IOCTL_SVM_FLAG_HOST_ACCESS | KFD_IOCTL_SVM_FLAG_COHERENT;
constexpr uint32_t kDefaultGranularity = 9;  // amdgpu.svm_default_granularity: 2 MiB

class KfdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = open("/dev/kfd", O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd_, 0) << "open /dev/kfd: " << strerror(errno);
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
  }

  // AMDKFD_IOC_SVM carries a variable number of attributes after the fixed
  // header; the ioctl number must encode the whole size, as libhsakmt does.
  int Svm(uint32_t op, uint64_t start, uint64_t size,
          std::vector<kfd_ioctl_svm_attribute> *attrs, size_t claimed_nattr = SIZE_MAX) {
    size_t nattr = attrs->size();
    size_t bytes = sizeof(kfd_ioctl_svm_args) + nattr * sizeof(kfd_ioctl_svm_attribute);
    std::vector<uint8_t> buffer(bytes);
    auto *args = reinterpret_cast<kfd_ioctl_svm_args *>(buffer.data());
    args->start_addr = start;
    args->size = size;
    args->op = op;
    args->nattr = claimed_nattr == SIZE_MAX ? nattr : claimed_nattr;
    memcpy(args->attrs, attrs->data(), nattr * sizeof(kfd_ioctl_svm_attribute));
    unsigned long request = _IOC(_IOC_READ | _IOC_WRITE, AMDKFD_IOCTL_BASE, 0x20, bytes);
    int ret = ioctl(fd_, request, args);
    if (ret == 0) memcpy(attrs->data(), args->attrs, nattr * sizeof(kfd_ioctl_svm_attribute));
    return ret == 0 ? 0 : errno;
  }

  int GetAttr(uint64_t start, uint64_t size, std::vector<kfd_ioctl_svm_attribute> *attrs) {
    return Svm(KFD_IOCTL_SVM_OP_GET_ATTR, start, size, attrs);
  }

  int SetAttr(uint64_t start, uint64_t size, std::vector<kfd_ioctl_svm_attribute> attrs) {
    return Svm(KFD_IOCTL_SVM_OP_SET_ATTR, start, size, &attrs);
  }

  static std::vector<kfd_ioctl_svm_attribute> AllQueryableAttrs() {
    return {{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, 0},
            {KFD_IOCTL_SVM_ATTR_PREFETCH_LOC, 0},
            {KFD_IOCTL_SVM_ATTR_SET_FLAGS, 0},
            {KFD_IOCTL_SVM_ATTR_CLR_FLAGS, 0},
            {KFD_IOCTL_SVM_ATTR_GRANULARITY, 0}};
  }

  static void ExpectDefaults(const std::vector<kfd_ioctl_svm_attribute> &attrs) {
    ASSERT_EQ(attrs.size(), 5u);
    EXPECT_EQ(attrs[0].value, kUndefinedLocation);
    EXPECT_EQ(attrs[1].value, kUndefinedLocation);
    EXPECT_EQ(attrs[2].value, kDefaultFlags);
    EXPECT_EQ(attrs[3].value, ~kDefaultFlags);
    EXPECT_EQ(attrs[4].value, kDefaultGranularity);
  }

  int fd_ = -1;
};

struct AlignedBuffer {
  explicit AlignedBuffer(size_t bytes) : size(bytes) {
    if (posix_memalign(&ptr, 4096, bytes)) ptr = nullptr;
    if (ptr) memset(ptr, 0x5a, bytes);
  }
  ~AlignedBuffer() { free(ptr); }
  uint64_t addr() const { return reinterpret_cast<uint64_t>(ptr); }
  void *ptr = nullptr;
  size_t size;
};

}  // namespace kfdtest

#endif  // GMEM_TESTS_KFD_KFD_FIXTURE_H
